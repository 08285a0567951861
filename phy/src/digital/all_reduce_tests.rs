use super::*;
use crate::rng::stream;

fn link(snr_db: f64, access: Access, max_tx: u32) -> DigitalLink {
    DigitalLink {
        access,
        bandwidth_hz: 1e6,
        uplink_snr_db: vec![snr_db; 4],
        downlink_snr_db: vec![snr_db; 4],
        quantiser: Quantiser::Int8 { block: 32 },
        block_values: 256,
        bler: BlerModel::default(),
        target_bler: 0.1,
        max_tx,
        overhead_s: 1e-3,
    }
}

#[test]
fn clean_links_sum_exactly_at_the_top_mcs() {
    let xs: Vec<Vec<f32>> = (0..4)
        .map(|d| {
            (0..1000)
                .map(|i| ((i + 7 * d) as f32 * 0.1).sin())
                .collect()
        })
        .collect();
    let refs: Vec<&[f32]> = xs.iter().map(|v| v.as_slice()).collect();
    let q = Quantiser::Int8 { block: 32 };
    for access in [Access::Tdma, Access::Ofdma] {
        let l = link(60.0, access, 4);
        let out = digital_all_reduce(&refs, &l, &mut stream(1, &[])).unwrap();
        assert_eq!(out.uplink_lost_blocks + out.downlink_lost_blocks, 0);
        // the AP's sum is the sum of what the devices quantised
        // two f32 sums of the same K = 4 terms, each within γ_3·Σ|q_k| of the exact sum in
        // any order (u = 2⁻²⁴): |Δ| ≤ 2γ_3·Σ|q_k| (was a bare 1e-5)
        let gamma3 = 3.0 * 2f64.powi(-24) / (1.0 - 3.0 * 2f64.powi(-24));
        let qs: Vec<Vec<f32>> = xs.iter().map(|v| q.roundtrip(v)).collect();
        for i in 0..1000 {
            let want: f32 = qs.iter().map(|v| v[i]).sum();
            let mag: f64 = qs.iter().map(|v| v[i].abs() as f64).sum();
            assert!((out.estimate[i] as f64 - want as f64).abs() <= 2.0 * gamma3 * mag);
        }
        assert!(out
            .per_device
            .iter()
            .all(|v| v == &q.roundtrip(&out.estimate)));
        // hand-computed airtime: bits / (5.5547 bit/s/Hz · band) with one transmission each
        let bits = q.bits(256) as f64 * 3.0 + q.bits(1000 - 768) as f64;
        let per_dev = bits / (5.5547 * 1e6);
        let up = match access {
            Access::Tdma => 4.0 * per_dev,
            Access::Ofdma => bits / (5.5547 * 0.25e6),
        };
        // f64 sums of ≤ 16 block times: relative rounding ≲ 16·2⁻⁵³ ≈ 2e-15
        assert!((out.airtime.uplink_s / up - 1.0).abs() < 1e-9, "{access:?}");
        assert!((out.airtime.downlink_s / per_dev - 1.0).abs() < 1e-9);
        assert!((out.airtime.total_s() - up - per_dev - 1e-3).abs() < 1e-12);
    }
}

#[test]
fn losses_and_retransmissions_follow_the_bler() {
    // at an SNR where even the lowest MCS fails often: lost fraction = BLER^max_tx and the
    // mean number of transmissions = Σ_{i<N} BLER^i
    let snr = -8.0;
    let l = link(snr, Access::Tdma, 2);
    let b = l.bler.bler(NR_CQI_TABLE1_SE[0], snr);
    assert!(b > 0.3 && b < 0.99, "{b}");
    let n = 256 * 500;
    let xs: Vec<Vec<f32>> = (0..4).map(|_| vec![1.0; n]).collect();
    let refs: Vec<&[f32]> = xs.iter().map(|v| v.as_slice()).collect();
    let out = digital_all_reduce(&refs, &l, &mut stream(2, &[])).unwrap();
    let lost = out.uplink_lost_blocks as f64 / 2000.0;
    // Monte-Carlo: binomial over 2000 blocks with p = b² ≈ 0.23, rel. SE √((1−p)/(np)) ≈ 4 %:
    // 5 SE (the bare 0.1 it replaces was only 2.5 SE)
    let se = ((1.0 - b * b) / (2000.0 * b * b)).sqrt();
    assert!(
        (lost / (b * b) - 1.0).abs() < 5.0 * se,
        "{lost} vs {}",
        b * b
    );
    // every lost block shows as a missing unit in the sum
    let missing: f64 = out.estimate.iter().map(|&v| 4.0 - v as f64).sum::<f64>() / 256.0;
    // exact: 127·fl(1/127) rounds to 1 in f32, so every value is a whole number; any
    // tolerance below ½ means the counts are equal
    assert!((missing - out.uplink_lost_blocks as f64).abs() < 1e-3);
    let bits = Quantiser::Int8 { block: 32 }.bits(256) as f64;
    let mean_tx = out.airtime.uplink_s * NR_CQI_TABLE1_SE[0] * 1e6 / bits / 2000.0;
    // Monte-Carlo: transmissions per block 1 + Bernoulli(b), rel. SE √(b(1−b)/2000)/(1+b)
    // ≈ 0.75 %: 0.05 ≈ 6.6 SE
    assert!((mean_tx / (1.0 + b) - 1.0).abs() < 0.05, "{mean_tx}");
    // bad input
    assert!(digital_all_reduce(&refs[..3], &l, &mut stream(2, &[])).is_err());
    let mut z = l.clone();
    z.block_values = 0;
    assert!(digital_all_reduce(&refs, &z, &mut stream(2, &[])).is_err());
    let mut z = l.clone();
    z.bandwidth_hz = -1.0;
    assert!(digital_all_reduce(&refs, &z, &mut stream(2, &[])).is_err());
}
