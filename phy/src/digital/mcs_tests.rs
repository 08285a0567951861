use super::*;

#[test]
fn link_adaptation_and_harq() {
    let m = BlerModel::default();
    // BLER falls with SNR and rises with the MCS
    assert!(m.bler(2.0, 5.0) > m.bler(2.0, 8.0));
    assert!(m.bler(4.0, 10.0) > m.bler(2.0, 10.0));
    // 50 % point: Shannon SNR of SE 1 (0 dB) + 1.5 dB (closed form, f64 rounding)
    assert!((m.bler(1.0, 1.5) - 0.5).abs() < 1e-12);
    // higher SNR never picks a lower CQI
    let mut last = 0;
    for snr in -10..30 {
        let o = mcs_airtime(1_000_000, 1e6, snr as f64, &m, 0.1, 4).unwrap();
        let c = o.cqi.unwrap_or(0);
        assert!(c >= last);
        last = c;
        assert!(o.expected_tx >= 1.0 && o.residual_loss <= 1.0);
    }
    // at a high SNR the top CQI with ~1 transmission: 1 Mbit / (5.5547 · 1 MHz)
    let o = mcs_airtime(1_000_000, 1e6, 40.0, &m, 0.1, 4).unwrap();
    assert_eq!(o.cqi, Some(14));
    // BLER at 40 dB ≈ e^{−2·(40 − 18.1)} ≈ 1e-19: one transmission up to f64 rounding
    assert!((o.airtime_s - 1.0 / 5.5547).abs() < 1e-6);
    // HARQ: expected transmissions Σ b^i for a known BLER (lowest CQI far below threshold)
    let o = mcs_airtime(1000, 1e6, -30.0, &m, 0.1, 3).unwrap();
    assert_eq!(o.cqi, None);
    let b = m.bler(NR_CQI_TABLE1_SE[0], -30.0);
    // closed forms (geometric sum, power) of the same f64 b: rounding ~1e-16
    assert!((o.expected_tx - (1.0 + b + b * b)).abs() < 1e-12);
    assert!((o.residual_loss - b.powi(3)).abs() < 1e-12);
    assert!(mcs_airtime(1, -1.0, 0.0, &m, 0.1, 1).is_err());
    assert!(mcs_airtime(1, 1.0, 0.0, &m, 1.5, 1).is_err());
    assert!(mcs_airtime(1, 1.0, 0.0, &m, 0.1, 0).is_err());
}
