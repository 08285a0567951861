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
        rate: Rate::Mcs,
        budget_s: None,
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
    for access in [Access::Tdma, Access::Ofdma, Access::Csma] {
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
        let (up, down) = match access {
            Access::Tdma => (4.0 * per_dev, per_dev),
            Access::Ofdma => (bits / (5.5547 * 0.25e6), per_dev),
            // four equal messages contend at n = 4; the AP's broadcast alone
            Access::Csma => (
                4.0 * crate::csma::wifi_channel_time_s(per_dev, 4).unwrap(),
                crate::csma::wifi_channel_time_s(per_dev, 1).unwrap(),
            ),
        };
        // f64 sums of ≤ 16 block times: relative rounding ≲ 16·2⁻⁵³ ≈ 2e-15
        assert!((out.airtime.uplink_s / up - 1.0).abs() < 1e-9, "{access:?}");
        assert!((out.airtime.downlink_s / down - 1.0).abs() < 1e-9);
        assert!((out.airtime.total_s() - up - down - 1e-3).abs() < 1e-12);
    }
}

#[test]
fn csma_sends_tdmas_transmissions_and_pays_the_contention() {
    // the same devices, SNRs and draws: CSMA replaces the schedule, not the link adaptation or
    // HARQ, so every device's transmissions, losses and sum are TDMA's; the uplink is the
    // contended channel time of the devices' transmit times, the broadcast one station's
    let xs = gaussian(4, 5000, 31);
    let refs: Vec<&[f32]> = xs.iter().map(|v| v.as_slice()).collect();
    let mut l = link(3.0, Access::Tdma, 2);
    // unequal devices: different MCS and retransmissions
    l.uplink_snr_db = vec![-8.0, 2.0, 11.0, 20.0];
    let tdma = digital_all_reduce(&refs, &l, &mut stream(4, &[])).unwrap();
    l.access = Access::Csma;
    let csma = digital_all_reduce(&refs, &l, &mut stream(4, &[])).unwrap();
    assert_eq!(csma.uplink_tx_s, tdma.uplink_tx_s);
    assert_eq!(csma.estimate, tdma.estimate);
    assert_eq!(csma.per_device, tdma.per_device);
    assert_eq!(csma.uplink_lost_blocks, tdma.uplink_lost_blocks);
    // the device at −8 dB retransmits (its time exceeds one transmission at the lowest MCS)
    let once = Quantiser::Int8 { block: 32 }.bits(5000) as f64 / (NR_CQI_TABLE1_SE[0] * 1e6);
    assert!(tdma.uplink_tx_s[0] > 1.2 * once, "{:?}", tdma.uplink_tx_s);
    let up = crate::csma::wifi_shared_channel_time_s(&tdma.uplink_tx_s).unwrap();
    let down = crate::csma::wifi_channel_time_s(tdma.airtime.downlink_s, 1).unwrap();
    assert_eq!(csma.airtime.uplink_s, up);
    assert_eq!(csma.airtime.downlink_s, down);
    assert!(csma.airtime.uplink_s > tdma.airtime.uplink_s);
    assert!(csma.airtime.total_s() > tdma.airtime.total_s());
    // under an airtime budget (each device its TDMA slot): the same formats as TDMA
    l.budget_s = Some(vec![2e-3; 4]);
    let csma_b = digital_all_reduce(&refs, &l, &mut stream(4, &[])).unwrap();
    l.access = Access::Tdma;
    let tdma_b = digital_all_reduce(&refs, &l, &mut stream(4, &[])).unwrap();
    assert_eq!(csma_b.bits_per_value, tdma_b.bits_per_value);
    assert!(csma_b.airtime.uplink_s > tdma_b.airtime.uplink_s);
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

/// `n` standard normal values per device from `seed` (Box–Muller).
fn gaussian(k: usize, n: usize, seed: u64) -> Vec<Vec<f32>> {
    use rand::Rng;
    let mut r = stream(seed, &[]);
    (0..k)
        .map(|_| {
            (0..n)
                .map(|_| {
                    let (u, v): (f64, f64) = (r.random(), r.random());
                    ((-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
                })
                .collect()
        })
        .collect()
}

#[test]
fn a_time_budget_sets_the_bits_per_value_and_the_error_follows_from_them() {
    // OFDMA at Shannon rate: device d's sub-band carries C = (B/K)·log2(1 + K·snr)·T bits in
    // its budget T; with one f32 scale per 32 values a b-bit format costs (b + 1) bits per
    // value, so b = ⌊C/n⌋ − 1 (capped at int8's 8), one bit (sign) when only that fits, and
    // nothing below. Its error is then the quantiser's closed form: Δ²/12 per value with
    // Δ = max|x|/(2^(b−1) − 1) per block for b ≥ 3, (1 − 2/π)σ² for the sign.
    let (k, n) = (4, 32 * 256);
    let xs = gaussian(k, n, 9);
    let refs: Vec<&[f32]> = xs.iter().map(|v| v.as_slice()).collect();
    let snr_db = 10.0;
    let rate_bps = 1e6 / k as f64 * (1.0 + k as f64 * 10f64.powf(snr_db / 10.0)).log2();
    for want_bits in [0usize, 1, 3, 5, 8] {
        // budget: exactly enough for (b + 1) bits per value (plus 1e-9 against rounding;
        // b + 1 bits with one scale for the whole vector needs 32 bits more)
        let bits_on_wire = if want_bits == 0 {
            0.5
        } else {
            (want_bits + 1) as f64
        };
        let budget = bits_on_wire * n as f64 / rate_bps * (1.0 + 1e-9);
        let l = DigitalLink {
            rate: Rate::Shannon,
            budget_s: Some(vec![budget; k]),
            block_values: 1024,
            ..link(snr_db, Access::Ofdma, 4)
        };
        let out = digital_all_reduce(&refs, &l, &mut stream(3, &[])).unwrap();
        for d in 0..k {
            let expect = if want_bits == 0 { 0.0 } else { bits_on_wire };
            assert_eq!(out.bits_per_value[d], expect, "b = {want_bits}");
            // within the budget, and the time is what the bits take at the rate
            assert!(out.uplink_tx_s[d] <= budget);
            let t = expect * n as f64 / rate_bps;
            assert!((out.uplink_tx_s[d] - t).abs() <= 1e-9 * t.max(1e-12));
        }
        // the AP's sum against the exact one: Σ of the K independent quantisation errors
        let exact: Vec<f64> = (0..n)
            .map(|i| xs.iter().map(|v| v[i] as f64).sum())
            .collect();
        let err: f64 = out
            .estimate
            .iter()
            .zip(&exact)
            .map(|(e, x)| (*e as f64 - x).powi(2))
            .sum::<f64>()
            / n as f64;
        let predicted: f64 = match want_bits {
            // nothing arrives: the error is the sum itself (K unit variances)
            0 => exact.iter().map(|x| x * x).sum::<f64>() / n as f64,
            1 => k as f64 * (1.0 - 2.0 / std::f64::consts::PI),
            b => {
                let levels = ((1u32 << (b - 1)) - 1) as f64;
                xs.iter()
                    .map(|v| {
                        v.chunks(32)
                            .map(|c| {
                                let amax = c.iter().fold(0f32, |m, x| m.max(x.abs())) as f64;
                                c.len() as f64 * (amax / levels).powi(2) / 12.0
                            })
                            .sum::<f64>()
                    })
                    .sum::<f64>()
                    / n as f64
            }
        };
        // Δ²/12 is the uniform-error approximation (exact in the limit of many steps per
        // block; within a few % from 3 bits on for Gaussian blocks of 32); the sign's scale is
        // a 32-sample mean of |x|, which adds (1 − 2/π)/32 ≈ 3 % to (1 − 2/π); the empirical
        // mean over 4 × 8192 values has a relative spread of ~1 %. 10 % covers these and is far
        // below the factor ≈ 4 between consecutive bit counts.
        assert!(
            (err / predicted - 1.0).abs() < 0.10,
            "b = {want_bits}: error {err:.4e} vs closed form {predicted:.4e}"
        );
    }
}

#[test]
fn the_formats_that_fit_a_budget_narrow_one_bit_at_a_time() {
    let q = Quantiser::Int8 { block: 32 };
    let n = 320;
    let tensor = usize::MAX;
    // int8 itself: 8 bits + 1 bit of scale per value
    assert_eq!(q.fitting(n, 9.0 * n as f64), Some(q));
    // then 8 bits with one scale (8n + 32), then 7 bits per 32 (8n), 7 with one scale, …
    assert_eq!(
        q.fitting(n, 9.0 * n as f64 - 1.0),
        Some(Quantiser::Int {
            bits: 8,
            block: tensor
        })
    );
    assert_eq!(
        q.fitting(n, 8.0 * n as f64 + 31.0),
        Some(Quantiser::Int { bits: 7, block: 32 })
    );
    assert_eq!(
        q.fitting(n, 3.0 * n as f64),
        Some(Quantiser::Int { bits: 2, block: 32 })
    );
    assert_eq!(
        q.fitting(n, 3.0 * n as f64 - 1.0),
        Some(Quantiser::Int {
            bits: 2,
            block: tensor
        })
    );
    assert_eq!(
        q.fitting(n, 2.0 * n as f64),
        Some(Quantiser::Sign { block: 32 })
    );
    assert_eq!(
        q.fitting(n, n as f64 + 32.0),
        Some(Quantiser::Sign { block: tensor })
    );
    assert_eq!(q.fitting(n, n as f64 + 31.0), None);
    // every bit count and block in order of precision: the budget is met, nothing wider is
    let mut last = u64::MAX;
    for budget in (0..=3000).rev() {
        if let Some(f) = q.fitting(n, budget as f64) {
            assert!(f.bits(n) <= budget);
            assert!(f.bits(n) <= last || f == q);
            last = f.bits(n);
        }
    }
    // float formats narrow to integers with the default block
    assert_eq!(
        Quantiser::Fp16.fitting(n, 10.0 * n as f64),
        Some(Quantiser::Int { bits: 9, block: 32 })
    );
    // a generic b-bit format at 8 bits is int8, at 4 bits int4
    let x: Vec<f32> = (0..100).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
    assert_eq!(
        Quantiser::Int { bits: 8, block: 32 }.roundtrip(&x),
        Quantiser::Int8 { block: 32 }.roundtrip(&x)
    );
    assert_eq!(
        Quantiser::Int { bits: 4, block: 32 }.roundtrip(&x),
        Quantiser::Int4 { block: 32 }.roundtrip(&x)
    );
    assert!(Quantiser::Int { bits: 1, block: 32 }.validate().is_err());
    assert!(Quantiser::Int {
        bits: 17,
        block: 32
    }
    .validate()
    .is_err());
    assert!(Quantiser::Int8 { block: 0 }.validate().is_err());
}

#[test]
fn shannon_rate_links_decode_everything_in_bits_over_capacity() {
    let xs = gaussian(4, 1000, 4);
    let refs: Vec<&[f32]> = xs.iter().map(|v| v.as_slice()).collect();
    let l = DigitalLink {
        rate: Rate::Shannon,
        ..link(0.0, Access::Tdma, 4)
    };
    let out = digital_all_reduce(&refs, &l, &mut stream(5, &[])).unwrap();
    assert_eq!(out.uplink_lost_blocks + out.downlink_lost_blocks, 0);
    // TDMA at 0 dB: log2(2) = 1 bit/s/Hz on 1 MHz, 4 devices in turn, then the broadcast
    let bits = Quantiser::Int8 { block: 32 }.bits(256) as f64 * 3.0
        + Quantiser::Int8 { block: 32 }.bits(1000 - 768) as f64;
    assert!((out.airtime.uplink_s / (4.0 * bits / 1e6) - 1.0).abs() < 1e-12);
    assert!((out.airtime.downlink_s / (bits / 1e6) - 1.0).abs() < 1e-12);
}
