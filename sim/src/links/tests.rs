//! The seam's contract, checked for every link `build` makes: shapes, the sum at high SNR, the
//! airtime, which links predict their error, and determinism in the seed.

use super::*;
use crate::des::Time;
use fdma::Fdma;

fn partials(k: usize, n: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut s = 0x9E37_79B9_7F4A_7C15u64 ^ seed;
    (0..k)
        .map(|_| {
            (0..n)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
                .collect()
        })
        .collect()
}

const KINDS: [SchemeKind; 5] = [
    SchemeKind::Ideal,
    SchemeKind::Digital,
    SchemeKind::Ring,
    SchemeKind::Fdma,
    SchemeKind::Aircomp,
];

/// Carry `buffers` (tokens of `width` values) once through the link of `kind` with `design` on
/// `radio`, channel and streams of `seed`, starting at 1 ms.
fn carry_with(
    kind: SchemeKind,
    design: Design,
    radio: &RadioConfig,
    seed: u64,
    width: usize,
    buffers: &mut [Vec<f32>],
) -> Carried {
    let k = buffers.len();
    radio.validate(k).unwrap();
    let mut streams = Streams::new(seed);
    let mut medium = Medium::new(radio, k, seed, &mut streams).unwrap();
    let n_tokens = buffers[0].len() / width;
    build(kind, design, radio).carry(
        Call {
            start: Time(1_000_000),
            width,
            n_tokens,
            round: 0,
            medium: Some(&mut medium),
            streams: &mut streams,
        },
        buffers,
    )
}

/// Carry `buffers` once through the link of `kind` at `snr_db` (fp16, zf_sum), 64 values per
/// token.
fn carry(kind: SchemeKind, snr_db: f64, seed: u64, buffers: &mut [Vec<f32>]) -> Carried {
    let radio = RadioConfig {
        snr_db,
        quantiser: Quantiser::Fp16,
        ..RadioConfig::default()
    };
    carry_with(kind, Design::ZfSum, &radio, seed, 64, buffers)
}

#[test]
fn every_link_delivers_the_sum_to_every_device_at_high_snr() {
    let k = 4;
    for kind in KINDS {
        let mut b = partials(k, 3 * 64, 1);
        let exact: Vec<f64> = (0..b[0].len())
            .map(|i| b.iter().map(|v| v[i] as f64).sum())
            .collect();
        let sig2: f64 = exact.iter().map(|e| e * e).sum();
        let c = carry(kind, 60.0, 7, &mut b);
        assert_eq!(b.len(), k, "{kind:?}");
        for (d, v) in b.iter().enumerate() {
            assert_eq!(v.len(), exact.len(), "{kind:?}");
            let err2: f64 = v
                .iter()
                .zip(&exact)
                .map(|(x, e)| (*x as f64 - e).powi(2))
                .sum();
            // fp16 or 60 dB of analog noise: far below 1e-3 of the signal
            assert!(
                err2 < 1e-3 * sig2,
                "{kind:?}, device {d}: NMSE {}",
                err2 / sig2
            );
        }
        assert_eq!(
            c.airtime == Time::ZERO,
            kind == SchemeKind::Ideal,
            "{kind:?}"
        );
        // the analog links predict their error from their closed form, the others do not
        let analog = matches!(kind, SchemeKind::Fdma | SchemeKind::Aircomp);
        assert_eq!(c.predicted_err2.is_some(), analog, "{kind:?}");
        if let Some(p) = c.predicted_err2 {
            assert!(p.is_finite() && p > 0.0, "{kind:?}: {p}");
        }
        let overhead = build(kind, Design::ZfSum, &RadioConfig::default()).round_overhead_s();
        assert_eq!(overhead == 0.0, kind == SchemeKind::Ideal, "{kind:?}");
    }
}

#[test]
fn a_link_is_a_pure_function_of_its_inputs_and_seed() {
    for kind in KINDS {
        let run = |seed| {
            let mut b = partials(3, 2 * 64, 5);
            let c = carry(kind, 10.0, seed, &mut b);
            (b, c)
        };
        let (a, ca) = run(11);
        let (b, cb) = run(11);
        assert_eq!(a, b, "{kind:?}");
        assert_eq!(ca, cb, "{kind:?}");
        if matches!(
            kind,
            SchemeKind::Digital | SchemeKind::Fdma | SchemeKind::Aircomp
        ) {
            // noise and fading come from the seed's streams: what arrives or when (digital at
            // 10 dB may decode every block, but its MCS follows the seed's channel)
            let (c, cc) = run(12);
            assert!(a != c || ca.airtime != cc.airtime, "{kind:?}");
        }
    }
}

#[test]
fn snrs_beyond_what_f64_noise_powers_represent_are_refused() {
    for snr_db in [-300.0, 0.0, 300.0] {
        let r = RadioConfig {
            snr_db,
            ..RadioConfig::default()
        };
        assert!(r.validate(2).is_ok(), "{snr_db}");
    }
    // 10^(−1e308/10) is 0 and 10^(3100/10) overflows: both were accepted before and broke the
    // links (a panic in the digital link, NMSE 1 and perplexity 5e50 through AirComp)
    for snr_db in [300.5, -301.0, 3100.0, 1e308, f64::INFINITY, f64::NAN] {
        let r = RadioConfig {
            snr_db,
            ..RadioConfig::default()
        };
        let e = r.validate(2).unwrap_err().to_string();
        assert!(
            e.contains("snr_db") && e.contains("±300 dB"),
            "{snr_db}: {e}"
        );
    }
}

#[test]
fn a_hand_off_crosses_the_same_seam_wire_format_then_link() {
    use handoff::{Handoff, HandoffLink, Wire};
    let x: Vec<f32> = partials(1, 1000, 3).remove(0);
    let mut streams = Streams::new(9);
    let mut go = |link: &HandoffLink, wire: Wire, payload: &mut Vec<f32>| {
        let call = Call {
            start: Time::ZERO,
            width: payload.len(),
            n_tokens: 1,
            round: 0,
            medium: None,
            streams: &mut streams,
        };
        Handoff { link, wire }.carry(call, std::slice::from_mut(payload))
    };
    // f32 over an ideal link: bit for bit, no time
    let mut p = x.clone();
    let c = go(&HandoffLink::Ideal, Wire::F32, &mut p);
    assert_eq!(
        (p.as_slice(), c.airtime, c.lost_blocks),
        (x.as_slice(), Time::ZERO, 0)
    );
    // int8 over a wire: the quantiser's round trip, latency + bytes / bandwidth
    let wired = HandoffLink::Wired {
        bandwidth: 1e6,
        latency_s: 1e-3,
    };
    let mut p = x.clone();
    let c = go(&wired, Wire::Int8, &mut p);
    assert_eq!(p, Quantiser::Int8 { block: 32 }.roundtrip(&x));
    let bytes = Wire::Int8.bytes(x.len());
    assert_eq!(c.airtime, Time::from_secs(1e-3 + bytes / 1e6));
    // the sender's transmitter: the bytes' time on the wire, not the latency
    assert_eq!(c.tx_s, vec![bytes / 1e6]);
    // a radio link at −30 dB with one transmission: blocks are lost, and read as zeros
    let lossy = HandoffLink::Wireless {
        bandwidth_hz: 1e6,
        snr_db: -30.0,
        bler: Default::default(),
        target_bler: 0.1,
        max_tx: 1,
        block_bytes: 400,
        overhead_s: 0.0,
        fading: None,
    };
    let mut p = x.clone();
    let c = go(&lossy, Wire::F32, &mut p);
    assert!(c.lost_blocks > 0);
    let zero_blocks = p
        .chunks(100)
        .filter(|b| b.iter().all(|v| *v == 0.0))
        .count();
    assert_eq!(zero_blocks, c.lost_blocks);
    for (a, b) in p.chunks(100).zip(x.chunks(100)) {
        assert!(a.iter().all(|v| *v == 0.0) || a == b);
    }
}

#[test]
fn transmit_time_per_device_meets_each_links_closed_form() {
    let (k, width, n_tokens) = (4usize, 64usize, 3usize);
    let b_hz = RadioConfig::default().bandwidth_hz;
    let bpu = RadioConfig::default().side_info_bits_per_use;
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1e-9);
    // exact: nobody transmits
    let mut b = partials(k, width * n_tokens, 2);
    assert_eq!(carry(SchemeKind::Ideal, 20.0, 3, &mut b).tx_s, vec![0.0; k]);
    // AirComp and FDMA (one stream): per token, ⌈width/2⌉ channel uses for every device at
    // once, then each device's 32 bits of side information at `side_info_bits_per_use`
    let per_token = width.div_ceil(2) as f64 / b_hz + 32.0 / bpu / b_hz;
    for kind in [SchemeKind::Aircomp, SchemeKind::Fdma] {
        let mut b = partials(k, width * n_tokens, 2);
        let c = carry(kind, 30.0, 3, &mut b);
        assert_eq!(c.tx_s.len(), k);
        for t in &c.tx_s {
            if kind == SchemeKind::Aircomp {
                assert!(close(*t, n_tokens as f64 * per_token), "{kind:?}: {t}");
            }
            // nobody transmits longer than the reduction lasts
            assert!(*t > 0.0 && *t <= c.airtime.secs() + 1e-9, "{kind:?}: {t}");
        }
    }
    // the ring: 2(K − 1) steps of bits/K at each device's own link rate; the slowest link sets
    // the step, so the longest transmitter time is the airtime
    let mut b = partials(k, width * n_tokens, 2);
    let c = carry(SchemeKind::Ring, 20.0, 3, &mut b);
    let radio = RadioConfig {
        snr_db: 20.0,
        quantiser: Quantiser::Fp16,
        ..RadioConfig::default()
    };
    let rates = ring::Ring::new(&radio).rates(3, 0, k);
    let bits = Quantiser::Fp16.bits(width * n_tokens) as f64;
    for (t, r) in c.tx_s.iter().zip(&rates) {
        assert!(close(*t, 6.0 * bits / 4.0 / r), "{t}");
    }
    let longest = c.tx_s.iter().cloned().fold(0.0, f64::max);
    assert!(
        (longest - c.airtime.secs()).abs() <= 0.5e-9,
        "{longest} vs {:?}",
        c.airtime
    );
    // digital: each device's uplink time; with TDMA (and CSMA) they take turns within the
    // airtime
    for access in [Access::Tdma, Access::Ofdma, Access::Csma] {
        let radio = RadioConfig {
            access,
            quantiser: Quantiser::Fp16,
            ..RadioConfig::default()
        };
        let mut streams = Streams::new(5);
        let mut medium = Medium::new(&radio, k, 5, &mut streams).unwrap();
        let mut b = partials(k, width * n_tokens, 2);
        let c = build(SchemeKind::Digital, Design::ZfSum, &radio).carry(
            Call {
                start: Time::ZERO,
                width,
                n_tokens,
                round: 0,
                medium: Some(&mut medium),
                streams: &mut streams,
            },
            &mut b,
        );
        assert!(c.tx_s.iter().all(|t| *t > 0.0), "{access:?}");
        let on = match access {
            Access::Tdma | Access::Csma => c.tx_s.iter().sum::<f64>(),
            Access::Ofdma => c.tx_s.iter().cloned().fold(0.0, f64::max),
        };
        assert!(
            on <= c.airtime.secs() + 1e-9,
            "{access:?}: {on} vs {:?}",
            c.airtime
        );
    }
}

/// Measured squared error of the sum at the AP over 100 tokens of 128 values, and the link's
/// prediction, for `streams` streams on a 4 × 4 MIMO MAC (ideal downlink: every device holds
/// the AP's estimate).
fn measured_and_predicted(
    kind: SchemeKind,
    design: Design,
    streams: usize,
    seed: u64,
) -> (f64, f64) {
    let radio = RadioConfig {
        rx_antennas: 4,
        tx_antennas: 4,
        streams,
        snr_db: 10.0,
        downlink: Broadcast::Ideal,
        ..RadioConfig::default()
    };
    let (err2, c) = one_call(kind, design, &radio, 3, 128, 100, seed);
    (err2, c.predicted_err2.expect("analog links predict"))
}

#[test]
fn the_predicted_error_meets_the_measured_one_for_every_stream_count() {
    // A channel use carries 2L reals, so the per-value prediction is the design's MSE per use
    // over 2L (it was over 2: L× too high for L > 1). 3 seeds × 12 800 values per case: the
    // squared error of a Gaussian-like error has relative standard deviation √(2/N) ≈ 0.7 %
    // over 38 400 values; 8 % is > 10σ yet far below the factor 2 or 4 of a wrong L.
    let cases = [
        (SchemeKind::Aircomp, Design::Zf),
        (SchemeKind::Aircomp, Design::ZfSum),
        (SchemeKind::Aircomp, Design::Mmse),
        (SchemeKind::Aircomp, Design::Sca),
        (SchemeKind::Fdma, Design::Zf),
    ];
    for (kind, design) in cases {
        for l in [1, 2, 4] {
            let (mut m, mut p) = (0.0, 0.0);
            for seed in 1..=3 {
                let (a, b) = measured_and_predicted(kind, design, l, seed);
                m += a;
                p += b;
            }
            assert!(
                (m / p - 1.0).abs() < 0.08,
                "{kind:?} {design:?} L = {l}: measured {m:.4e}, predicted {p:.4e} (ratio {:.3})",
                m / p
            );
        }
    }
}

/// One call of `n_tokens` tokens of `width` values through `kind` on `radio` (channel and
/// streams of `seed`): the squared error of device 0's copy of the sum, the carried record.
fn one_call(
    kind: SchemeKind,
    design: Design,
    radio: &RadioConfig,
    k: usize,
    width: usize,
    n_tokens: usize,
    seed: u64,
) -> (f64, Carried) {
    let mut b = partials(k, width * n_tokens, seed ^ 0x5EED);
    let exact: Vec<f64> = (0..b[0].len())
        .map(|i| b.iter().map(|v| v[i] as f64).sum())
        .collect();
    let c = carry_with(kind, design, radio, seed, width, &mut b);
    let err2 = b[0]
        .iter()
        .zip(&exact)
        .map(|(x, e)| (*x as f64 - e).powi(2))
        .sum();
    (err2, c)
}

#[test]
fn equal_energy_fdma_pays_k_times_the_error_of_full_power_as_the_closed_form_says() {
    // Uncoded FDMA, one antenna per device, N_r = 8, ZF per sub-band: device k's error per real
    // value is σ²_sub·v/(P_k‖h_k‖²) with σ²_sub = σ²/K. At full power (P_k = 1) the K devices
    // sum to σ²·v·E[1/‖h‖²] — flat in K; held to AirComp's energy (P_k = 1/K) each device's is
    // K× that: K σ² v E[1/‖h‖²] in all, with E[1/‖h‖²] = 1/(N_r − 1) for h ~ CN(0, I_{N_r})
    // and v = 1/12 for the uniform partials.
    let nr = 8;
    let base = RadioConfig {
        rx_antennas: nr,
        snr_db: 10.0,
        downlink: Broadcast::Ideal,
        ..RadioConfig::default()
    };
    let sigma2 = base.noise_var();
    let width = 576;
    for k in [2usize, 4, 8] {
        let realisations = 3200 / k as u64;
        let (mut power, mut energy) = (0.0, 0.0);
        for seed in 0..realisations {
            let (p, cp) = one_call(SchemeKind::Fdma, Design::Zf, &base, k, width, 1, seed);
            let held = RadioConfig {
                held_equal: HeldEqual::Energy,
                ..base.clone()
            };
            let (e, ce) = one_call(SchemeKind::Fdma, Design::Zf, &held, k, width, 1, seed);
            // same channel and noise draws: the error scales by exactly K (f32 rounding of
            // the estimate aside), the energy is AirComp's (1/K of full power's), same airtime
            assert!((e / p / k as f64 - 1.0).abs() < 1e-4, "K = {k}: {e} vs {p}");
            assert!((ce.tx_energy[0] * k as f64 / cp.tx_energy[0] - 1.0).abs() < 1e-12);
            assert_eq!(ce.airtime, cp.airtime);
            power += p;
            energy += e;
        }
        let per_value = |x: f64| x / (realisations as f64 * width as f64);
        let closed = sigma2 / 12.0 / (nr as f64 - 1.0);
        // 1/‖h‖² of Gamma(8, 1) has relative std √(1/(7·6))·7 − … ≈ 0.41 per draw; 3200 device
        // draws per K: 0.7 % standard error, plus the noise's; 5 % is > 5 SE and far from K×
        assert!(
            (per_value(power) / closed - 1.0).abs() < 0.05,
            "K = {k}, full power: {} vs {closed}",
            per_value(power)
        );
        assert!(
            (per_value(energy) / (k as f64 * closed) - 1.0).abs() < 0.05,
            "K = {k}, equal energy: {} vs {}",
            per_value(energy),
            k as f64 * closed
        );
    }
}

#[test]
fn equal_airtime_baselines_fit_in_aircomps_uplink() {
    let k = 4;
    let width = 576;
    let base = RadioConfig {
        snr_db: 20.0,
        downlink: Broadcast::Ideal,
        round_overhead_s: 0.0,
        ..RadioConfig::default()
    };
    let (on_s, air_s) = base.aircomp_uplink_s(k, width);
    // AirComp's own uplink is the reference: 288 uses + 16 side-info uses per device
    let (_, ca) = one_call(SchemeKind::Aircomp, Design::Zf, &base, k, width, 1, 3);
    assert!((ca.airtime.secs() - air_s).abs() < 1e-9);
    assert!((ca.tx_s[0] - on_s).abs() < 1e-12);
    // uncoded FDMA held to it: ⌊288/4⌋ = 72 sub-band uses = 144 values per device go over the
    // air, the other 432 are lost (the AP takes each device's mean): the same airtime
    let held = |h: HeldEqual| RadioConfig {
        held_equal: h,
        ..base.clone()
    };
    let fdma = Fdma::new(&held(HeldEqual::Airtime));
    assert_eq!(fdma.values_in_aircomps_airtime(k, width), 144);
    let (e, cf) = one_call(
        SchemeKind::Fdma,
        Design::Zf,
        &held(HeldEqual::Airtime),
        k,
        width,
        1,
        3,
    );
    assert!((cf.airtime.secs() - air_s).abs() < 1e-9, "{:?}", cf.airtime);
    // its error is the lost values' (their spread about the mean, ≈ K·v = 1/3 per value) plus
    // the kept ones' noise, and its prediction says so
    let pred = cf.predicted_err2.unwrap();
    assert!((e / pred - 1.0).abs() < 0.1, "{e} vs {pred}");
    assert!(e / width as f64 > 0.7 * 432.0 / 576.0 * k as f64 / 12.0);
    // digital at Shannon rate held to AirComp's airtime (OFDMA: every device for all of it):
    // the bits per value the budget buys from each device's rate, the uplink within the budget
    for h in [HeldEqual::Airtime, HeldEqual::Energy] {
        let radio = RadioConfig {
            rate: airinfer_phy::digital::Rate::Shannon,
            ..held(h)
        };
        let (_, cd) = one_call(SchemeKind::Digital, Design::Zf, &radio, k, width, 1, 3);
        let budget = if h == HeldEqual::Airtime { air_s } else { on_s };
        // the channels the link saw: same seed, same start
        let mut streams = Streams::new(3);
        let mut medium = Medium::new(&radio, k, 3, &mut streams).unwrap();
        let hs = medium.channels_at(1e-3, &mut streams.fading);
        let want: f64 = radio
            .mrc_snr_db(&hs)
            .iter()
            .map(|snr_db| {
                let lin = k as f64 * 10f64.powf(snr_db / 10.0);
                let bits = radio.bandwidth_hz / k as f64 * (1.0 + lin).log2() * budget;
                radio
                    .quantiser
                    .fitting(width, bits)
                    .map_or(0.0, |q| q.bits(width) as f64 / width as f64)
            })
            .sum::<f64>()
            / k as f64;
        assert_eq!(cd.bits_per_value, Some(want), "{h:?}");
        assert!(want > 0.0 && want < 9.0, "{h:?}: {want} bits per value");
        for t in &cd.tx_s {
            assert!(*t <= budget * (1.0 + 1e-12), "{h:?}: {t} > {budget}");
        }
    }
}

#[test]
fn aircomps_digital_downlink_is_the_digital_broadcast() {
    // AirComp with the digital downlink pays the broadcast of its estimate at the weakest
    // device's rate: at Shannon rate, quantiser bits / (B log2(1 + min_k SNR_k)) on top of the
    // uplink of the ideal downlink
    let k = 4;
    let width = 576;
    let ideal = RadioConfig {
        downlink: Broadcast::Ideal,
        rate: airinfer_phy::digital::Rate::Shannon,
        ..RadioConfig::default()
    };
    let digital = RadioConfig {
        downlink: Broadcast::Digital,
        ..ideal.clone()
    };
    let (_, ci) = one_call(SchemeKind::Aircomp, Design::Zf, &ideal, k, width, 1, 8);
    let (ed, cd) = one_call(SchemeKind::Aircomp, Design::Zf, &digital, k, width, 1, 8);
    let mut streams = Streams::new(8);
    let mut medium = Medium::new(&digital, k, 8, &mut streams).unwrap();
    let hs = medium.channels_at(1e-3, &mut streams.fading);
    let weakest = digital
        .mrc_snr_db(&hs)
        .into_iter()
        .fold(f64::INFINITY, f64::min);
    let rate = digital.bandwidth_hz * (1.0 + 10f64.powf(weakest / 10.0)).log2();
    let want = digital.quantiser.bits(width) as f64 / rate;
    let got = cd.airtime.secs() - ci.airtime.secs();
    // two clock roundings to the nanosecond
    assert!((got - want).abs() <= 1e-9, "{got} vs {want}");
    // the devices hold the quantised estimate: int8 adds its error to the uplink's
    assert!(ed > 0.0);
    // a device's transmit power (a planned assignment's) scales its uplink energy only: the
    // AP's broadcast takes as long as before
    let weak = |r: &RadioConfig| RadioConfig {
        tx_power: vec![0.01; k],
        ..r.clone()
    };
    let (_, wi) = one_call(
        SchemeKind::Aircomp,
        Design::Zf,
        &weak(&ideal),
        k,
        width,
        1,
        8,
    );
    let (_, wd) = one_call(
        SchemeKind::Aircomp,
        Design::Zf,
        &weak(&digital),
        k,
        width,
        1,
        8,
    );
    assert!(((wd.airtime.secs() - wi.airtime.secs()) - want).abs() <= 1e-9);
    assert!((wd.tx_energy[0] / cd.tx_energy[0] - 0.01).abs() < 1e-12);
    // the analog broadcast takes ⌈width/2⌉ symbols at the band's rate
    let analog = RadioConfig {
        downlink: Broadcast::Analog,
        ..ideal.clone()
    };
    let (_, ca) = one_call(SchemeKind::Aircomp, Design::Zf, &analog, k, width, 1, 8);
    let got = ca.airtime.secs() - ci.airtime.secs();
    assert!((got - 288.0 / 10e6).abs() <= 1e-9, "{got}");
}

#[test]
fn a_devices_transmit_power_is_a_gain_on_its_uplink() {
    // Sending at p × the reference power through h is, to the receiver, the reference power
    // through √p·h: the same design problem, the same noise, the same error.
    let k = 4;
    let f = [0.3, 1.0, 0.05, 0.6];
    let base = RadioConfig {
        downlink: Broadcast::Ideal,
        snr_db: 15.0,
        ..RadioConfig::default()
    };
    for (kind, design) in [
        (SchemeKind::Aircomp, Design::Zf),
        (SchemeKind::Aircomp, Design::Sca),
        (SchemeKind::Aircomp, Design::Mmse),
        (SchemeKind::Fdma, Design::Zf),
    ] {
        let (ep, _) = one_call(
            kind,
            design,
            &RadioConfig {
                tx_power: f.to_vec(),
                ..base.clone()
            },
            k,
            576,
            4,
            21,
        );
        let (eg, _) = one_call(
            kind,
            design,
            &RadioConfig {
                gains: f.to_vec(),
                ..base.clone()
            },
            k,
            576,
            4,
            21,
        );
        // the uplink channels are the same products h·√p (the downlink, ideal here, is the
        // only place the two differ): equal up to rounding; 1e-3 leaves room for an iterative
        // design's stopping rule, far below the 17 % ZF differed by when the power was not a
        // gain (its receive direction ignored the powers)
        assert!(
            (ep / eg - 1.0).abs() < 1e-3,
            "{kind:?} {design:?}: {ep} vs {eg}"
        );
    }
}

#[test]
fn digital_over_csma_sends_what_tdma_sends_and_pays_the_contention() {
    // the same channel, MCS and HARQ draws as TDMA: what arrives and each device's transmit
    // time are TDMA's, the airtime is the contended uplink plus the AP's contended broadcast
    use airinfer_phy::csma;
    let k = 4;
    let width = 576;
    for held_equal in [HeldEqual::Power, HeldEqual::Airtime] {
        let radio = |access| RadioConfig {
            access,
            held_equal,
            snr_db: 5.0,
            ..RadioConfig::default()
        };
        let (et, ct) = one_call(
            SchemeKind::Digital,
            Design::Zf,
            &radio(Access::Tdma),
            k,
            width,
            2,
            9,
        );
        let (ec, cc) = one_call(
            SchemeKind::Digital,
            Design::Zf,
            &radio(Access::Csma),
            k,
            width,
            2,
            9,
        );
        assert_eq!(ec, et, "{held_equal:?}");
        assert_eq!(cc.tx_s, ct.tx_s, "{held_equal:?}");
        assert_eq!(cc.bits_per_value, ct.bits_per_value, "{held_equal:?}");
        assert_eq!(cc.lost_blocks, ct.lost_blocks, "{held_equal:?}");
        assert!(
            cc.airtime > ct.airtime,
            "{held_equal:?}: {:?} vs {:?}",
            cc.airtime,
            ct.airtime
        );
        // the uplink: the devices' transmit times contended; TDMA's airtime is their sum plus
        // the broadcast, which CSMA pays as one station's message
        let up = csma::wifi_shared_channel_time_s(&ct.tx_s).unwrap();
        let down_tdma = ct.airtime.secs() - ct.tx_s.iter().sum::<f64>();
        let down = csma::wifi_channel_time_s(down_tdma, 1).unwrap();
        // Carried's airtime is whole nanoseconds: ±1 ns each
        assert!(
            (cc.airtime.secs() - up - down).abs() < 2e-9,
            "{held_equal:?}: {:?} vs {up} + {down}",
            cc.airtime
        );
        assert_eq!(
            build(SchemeKind::Digital, Design::Zf, &radio(Access::Csma)).round_overhead_s(),
            radio(Access::Csma).round_overhead_s
        );
    }
}

#[test]
fn aircomp_over_csma_pays_one_channel_access_and_trigger_per_round() {
    // all devices at once on a Wi-Fi channel: the AP wins the channel (DIFS + one station's
    // mean back-off) and triggers the uplink (a preamble-length frame + SIFS) every round;
    // the call itself is unchanged
    use airinfer_phy::csma::WIFI_TRIGGER_ACCESS_S;
    let radio = |access| RadioConfig {
        access,
        round_overhead_s: 50e-6,
        ..RadioConfig::default()
    };
    assert!((WIFI_TRIGGER_ACCESS_S - (34e-6 + 7.5 * 9e-6 + 40e-6 + 16e-6)).abs() < 1e-15);
    for access in [Access::Tdma, Access::Ofdma, Access::Csma] {
        let got = build(SchemeKind::Aircomp, Design::Zf, &radio(access)).round_overhead_s();
        let want = 50e-6
            + if access == Access::Csma {
                WIFI_TRIGGER_ACCESS_S
            } else {
                0.0
            };
        assert_eq!(got, want, "{access:?}");
    }
    let (eo, co) = one_call(
        SchemeKind::Aircomp,
        Design::Zf,
        &radio(Access::Ofdma),
        4,
        128,
        2,
        5,
    );
    let (ec, cc) = one_call(
        SchemeKind::Aircomp,
        Design::Zf,
        &radio(Access::Csma),
        4,
        128,
        2,
        5,
    );
    assert_eq!((eo, co), (ec, cc));
}
