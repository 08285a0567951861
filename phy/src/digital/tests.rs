use super::*;

#[test]
fn uniform_quantiser_error_is_step_squared_over_twelve() {
    // values uniform in [−1, 1] with one large block: Δ = 1/127 (int8), 1/7 (int4)
    let mut s = 1u64;
    let x: Vec<f32> = (0..200_000)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .chain([1.0f32])
        .collect();
    for (q, levels) in [
        (Quantiser::Int8 { block: x.len() }, 127.0f64),
        (Quantiser::Int4 { block: x.len() }, 7.0),
    ] {
        let y = q.roundtrip(&x);
        let mse = x
            .iter()
            .zip(&y)
            .map(|(a, b)| ((a - b) as f64).powi(2))
            .sum::<f64>()
            / x.len() as f64;
        let step = 1.0 / levels;
        let want = step * step / 12.0;
        // Monte-Carlo: e² of a uniform error has rel. σ √(1/80 − 1/144)·12 = 0.89, SE 0.2 %
        // over 200 001 values: 0.03 ≈ 15 SE
        assert!((mse / want - 1.0).abs() < 0.03, "{q:?}: {mse} vs {want}");
    }
    assert_eq!(Quantiser::Int8 { block: 32 }.bits(64), 8 * 64 + 2 * 32);
    assert_eq!(Quantiser::Fp16.bits(10), 160);
    let y = Quantiser::Fp16.roundtrip(&[1.0, 0.1, 65504.0]);
    // f16 round to nearest: |error| ≤ u·|x| with u = 2⁻¹¹ (was a bare 1e-4 ≈ 2u·0.1); the
    // f32 subtraction is exact (Sterbenz)
    assert!((y[1] - 0.1).abs() <= 0.1 * 2f32.powi(-11) && y[2] == 65504.0);
}

#[test]
fn airtime_hand_cases() {
    // 1 MHz, SNR 3 (2 bit/s/Hz, no gap): 2 Mbit/s per device on the whole band
    let t = reduce_broadcast_airtime(
        Access::Tdma,
        &[1_000_000, 2_000_000],
        &[3.0, 3.0],
        1_000_000,
        1e6,
        0.0,
        1e-3,
    )
    .unwrap();
    // closed forms: a few f64 operations on O(1) values, rounding ~1e-16
    assert!((t.uplink_s - 1.5).abs() < 1e-12);
    assert!((t.downlink_s - 0.5).abs() < 1e-12);
    assert!((t.total_s() - 2.001).abs() < 1e-12);
    // OFDMA: K = 2 halves of the band at SNR 2·1.5 = 3: 1 Mbit/s each, the slower device sets the time
    let t = reduce_broadcast_airtime(
        Access::Ofdma,
        &[1_000_000, 2_000_000],
        &[1.5, 1.5],
        0,
        1e6,
        0.0,
        0.0,
    )
    .unwrap();
    // closed form, f64 rounding
    assert!((t.uplink_s - 2.0).abs() < 1e-12);
    // a 3 dB gap halves the effective SNR: log2(1 + 3/2) bit/s/Hz (f64 rounding of the
    // dB → linear round trip, ~1e-16)
    let r = shannon_rate(1.0, 3.0, 10.0 * 2f64.log10()).unwrap();
    assert!((r - 2.5f64.log2()).abs() < 1e-12);
}

#[test]
fn invalid_parameters_are_errors() {
    assert!(shannon_rate(-1.0, 1.0, 0.0).is_err());
    assert!(shannon_rate(1.0, f64::NAN, 0.0).is_err());
    assert!(reduce_broadcast_airtime(Access::Tdma, &[], &[], 0, 1e6, 0.0, 0.0).is_err());
    assert!(reduce_broadcast_airtime(Access::Tdma, &[1], &[1.0, 2.0], 0, 1e6, 0.0, 0.0).is_err());
    assert!(reduce_broadcast_airtime(Access::Tdma, &[1], &[1.0], 0, 1e6, 0.0, -1.0).is_err());
}

#[test]
fn csma_with_one_device_adds_one_frames_overheads_to_tdma() {
    // K = 1: the uplink is TDMA's payload time plus, per frame, the mean back-off of one
    // station (W − 1)/2 = 7.5 slots of 9 µs, the 40 µs preamble, SIFS 16 µs, the 32 µs ack and
    // DIFS 34 µs (no one to collide with); the broadcast likewise
    let per_frame = 7.5 * 9e-6 + 40e-6 + 16e-6 + 32e-6 + 34e-6;
    // 2 bit/s/Hz on 1 MHz: 2 Mbit/s; 2 kbit → 1 ms (one frame), 24 kbit → 12 ms (three)
    for (bits, frames) in [(2_000u64, 1.0), (24_000, 3.0)] {
        let args = |access| {
            reduce_broadcast_airtime(access, &[bits], &[3.0], bits / 2, 1e6, 0.0, 1e-4).unwrap()
        };
        let (tdma, csma) = (args(Access::Tdma), args(Access::Csma));
        // closed forms on ms-sized values: rounding ~1e-18 s
        assert!((csma.uplink_s - tdma.uplink_s - frames * per_frame).abs() < 1e-12);
        let down_frames = if frames > 1.0 { 2.0 } else { 1.0 };
        assert!((csma.downlink_s - tdma.downlink_s - down_frames * per_frame).abs() < 1e-12);
        assert_eq!(csma.overhead_s, tdma.overhead_s);
    }
}

#[test]
fn access_names_in_files_are_snake_case() {
    for (a, name) in [
        (Access::Tdma, "\"tdma\""),
        (Access::Ofdma, "\"ofdma\""),
        (Access::Csma, "\"csma\""),
    ] {
        assert_eq!(serde_json::to_string(&a).unwrap(), name);
        assert_eq!(serde_json::from_str::<Access>(name).unwrap(), a);
    }
}

#[test]
fn csma_never_beats_tdma() {
    // the same payloads, contended: never less airtime than taking turns (random instances)
    use rand::Rng;
    let mut rng = crate::rng::stream(17, &[0xC5E]);
    for _ in 0..300 {
        let k = rng.random_range(1..=12);
        let bits: Vec<u64> = (0..k).map(|_| rng.random_range(0..200_000)).collect();
        let snr: Vec<f64> = (0..k).map(|_| rng.random_range(0.1..1000.0)).collect();
        let down = rng.random_range(0..200_000);
        let bw = rng.random_range(1e6..80e6);
        let air =
            |access| reduce_broadcast_airtime(access, &bits, &snr, down, bw, 3.0, 0.0).unwrap();
        let (tdma, csma) = (air(Access::Tdma), air(Access::Csma));
        assert!(
            csma.uplink_s >= tdma.uplink_s,
            "{bits:?}: {csma:?} vs {tdma:?}"
        );
        assert!(csma.downlink_s >= tdma.downlink_s);
        if bits.iter().any(|&b| b > 0) {
            assert!(csma.uplink_s > tdma.uplink_s);
        }
    }
}
