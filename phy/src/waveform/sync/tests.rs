use super::*;
use crate::rng::stream;
use crate::waveform::impair::{apply_cfo, awgn};
use crate::waveform::ofdm::{demodulate, demodulate_from, pack_reals, unpack_reals};
use crate::waveform::tdl::{apply_multipath, frequency_response, TdlChannel, TdlProfile};
use rand::Rng;

fn cfg256() -> OfdmConfig {
    OfdmConfig {
        n_fft: 256,
        cp_len: 32,
        n_used: 200,
        pilot_spacing: 8,
        sample_rate_hz: 7.68e6,
    }
}

/// `lead` zeros, header, data symbols, 200 zeros (noise is added by the caller).
fn burst(cfg: &OfdmConfig, lead: usize, data: &[Vec<C64>]) -> Vec<C64> {
    let mut x = vec![C64::new(0.0, 0.0); lead];
    x.extend(header(cfg).unwrap());
    x.extend(modulate(cfg, data).unwrap());
    x.extend(vec![C64::new(0.0, 0.0); 200]);
    x
}

/// QPSK-like payload (±1/√2) filling `n_sym` symbols.
fn random_data<R: Rng + ?Sized>(cfg: &OfdmConfig, n_sym: usize, rng: &mut R) -> Vec<f64> {
    (0..2 * cfg.n_data() * n_sym)
        .map(|_| {
            if rng.random::<bool>() {
                0.5f64.sqrt()
            } else {
                -(0.5f64.sqrt())
            }
        })
        .collect()
}

/// Whether an FFT window starting at `w0` is ISI-free for a preamble whose CP starts at
/// `cp_start`, through a channel of `n_taps` taps.
fn cp_safe(cfg: &OfdmConfig, w0: usize, cp_start: usize, n_taps: usize) -> bool {
    w0 + 1 >= cp_start + n_taps && w0 <= cp_start + cfg.cp_len
}

#[test]
fn preamble_has_two_identical_halves_and_data_power() {
    for cfg in [OfdmConfig::default(), cfg256()] {
        let p = preamble(&cfg).unwrap();
        assert_eq!(p.len(), cfg.symbol_len());
        let l = cfg.n_fft / 2;
        let u = &p[cfg.cp_len..];
        // f64 IFFT of unit carriers: ~ε·log₂N per sample (≈ 1e-15), energy sums of ≤ 256
        // terms ≈ n_used: ≲ 1e-12; the metric is a ratio of such sums
        for i in 0..l {
            assert!((u[i] - u[i + l]).norm() < 1e-12);
        }
        let e: f64 = u.iter().map(|v| v.norm_sqr()).sum();
        assert!((e - cfg.n_used as f64).abs() < 1e-9);
        let t = training_symbol(&cfg).unwrap();
        assert_eq!(t.len(), cfg.n_used);
        assert!(t.iter().all(|v| v.re.abs() == 1.0 && v.im == 0.0));
        assert_eq!(header(&cfg).unwrap().len(), 2 * cfg.symbol_len());
        // Noise-free metric is 1 on the whole plateau.
        let (_, m) = timing_metric(&cfg, &p).unwrap();
        assert_eq!(m.len(), cfg.cp_len + 1);
        assert!(m.iter().all(|&v| (v - 1.0).abs() < 1e-9));
    }
}

#[test]
fn bad_inputs_are_errors() {
    let cfg = OfdmConfig::default();
    assert!(matches!(
        detect(&cfg, &[], 1.5),
        Err(WaveformError::InvalidParameter {
            field: "threshold",
            ..
        })
    ));
    assert!(detect(&cfg, &[], f64::NAN).is_err());
    let mut nan = vec![C64::new(0.0, 0.0); 200];
    nan[7] = C64::new(f64::NAN, 0.0);
    assert!(matches!(
        detect(&cfg, &nan, 0.5),
        Err(WaveformError::InvalidParameter { field: "rx", .. })
    ));
    let wild = SyncResult {
        fft_start: usize::MAX - 10,
        start: usize::MAX,
        metric: 1.0,
        cfo_hz: 0.0,
    };
    assert!(refine_timing(&cfg, &nan, &wild).is_err());
    let near = SyncResult {
        fft_start: 0,
        ..wild
    };
    assert!(refine_timing(&cfg, &nan[..150], &near).is_err()); // too short
    let long = vec![C64::new(f64::NAN, 0.0); 1000];
    assert!(refine_timing(&cfg, &long, &near).is_err()); // non-finite
    assert_eq!(detect(&cfg, &[], 0.5).unwrap(), None);
    assert_eq!(detect(&cfg, &[C64::new(0.0, 0.0); 500], 0.5).unwrap(), None);
    let bad = OfdmConfig {
        n_fft: 12,
        ..cfg.clone()
    };
    assert!(detect(&bad, &[C64::new(0.0, 0.0); 500], 0.5).is_err());
    assert!(preamble(&bad).is_err() && header(&bad).is_err());
    let mut s = vec![C64::new(1.0, 0.0); 4];
    assert!(correct_cfo(&mut s, f64::NAN, 1.0, 0).is_err());
    assert!(correct_cfo(&mut s, 1.0, 0.0, 0).is_err());
    let k = training_symbol(&cfg).unwrap();
    assert!(estimate_channel(&cfg, &k[1..], &k).is_err());
    let mut z = k.clone();
    z[3] = C64::new(0.0, 0.0);
    assert!(matches!(
        estimate_channel(&cfg, &k, &z),
        Err(WaveformError::InvalidParameter { field: "known", .. })
    ));
    assert!(equalize(&k, &k[1..]).is_err());
    let mut sym = k.clone();
    assert!(correct_common_phase(&cfg, &mut sym[1..], &k).is_err());
    let np = OfdmConfig {
        pilot_spacing: 0,
        ..cfg
    };
    assert!(correct_common_phase(&np, &mut sym, &k).is_err());
}

/// Noise-free, flat channel: timing on the plateau centre, CFO exact, and after correction
/// the data come back to 1e-9. Through a TDL channel shorter than the CP the timing stays
/// ISI-free and the data come back to within the tiny CFO bias of the ISI-touched plateau
/// edges.
#[test]
fn noiseless_sync_chain() {
    let cfg = OfdmConfig::default();
    let mut rng = stream(4, &[1]);
    let x = random_data(&cfg, 6, &mut rng);
    let grid = pack_reals(&cfg, &x).unwrap();
    let lead = 137;
    let tx = burst(&cfg, lead, &grid);
    let sl = cfg.symbol_len();
    for eps in [-0.4, -0.1, 0.0, 0.1, 0.4] {
        let cfo = eps * cfg.subcarrier_spacing_hz();
        for tdl in [false, true] {
            let h = if tdl {
                TdlChannel::realise(TdlProfile::B, 20e-9, cfg.sample_rate_hz, &mut rng).unwrap()
            } else {
                vec![C64::new(0.8, -0.6)]
            };
            let mut rx =
                apply_cfo(&apply_multipath(&tx, &h), cfo, cfg.sample_rate_hz, 1.1).unwrap();
            let r = detect(&cfg, &rx, 0.5).unwrap().expect("detected");
            assert!(cp_safe(&cfg, r.fft_start, lead, h.len()), "{r:?}");
            // noise-free the metric is 1 on the plateau; 0.9 leaves room for the TDL
            // transient at its edges (a structural threshold, not a rounding tolerance)
            assert!(r.metric > 0.9);
            let cfo_err = (r.cfo_hz - cfo).abs() / cfg.subcarrier_spacing_hz();
            // flat: exact up to f64 rounding of the correlation's angle (~1e-16). TUNED (TDL):
            // the bias comes from the channel's transient inside the correlation window and
            // depends on the drawn TDL-B realisation (seeded); measured ≤ 3e-4, not derived
            let tol = if tdl { 2e-3 } else { 1e-9 };
            assert!(cfo_err < tol, "eps {eps} tdl {tdl}: {cfo_err}");
            if !tdl {
                assert!(r.fft_start.abs_diff(lead + cfg.cp_len / 2) <= 1, "{r:?}");
                assert_eq!(r.start, r.fft_start + cfg.cp_len / 2);
            }
            // The refined timing is exact without noise in a flat channel and stays
            // CP-safe through the TDL channel.
            let f = refine_timing(&cfg, &rx, &r).unwrap();
            assert!(cp_safe(&cfg, f.fft_start, lead, h.len()), "{f:?}");
            if !tdl {
                assert_eq!(f.fft_start, lead + cfg.cp_len / 2);
                assert_eq!(f.start, lead + cfg.cp_len);
            }
            assert_eq!(f.cfo_hz, r.cfo_hz);
            let r = f;
            correct_cfo(&mut rx, r.cfo_hz, cfg.sample_rate_hz, 0).unwrap();
            let y = demodulate_from(&cfg, &rx, r.fft_start, 2 + grid.len()).unwrap();
            let hh = estimate_channel(&cfg, &y[1], &training_symbol(&cfg).unwrap()).unwrap();
            let mut eq = Vec::new();
            for (j, s) in y[2..].iter().enumerate() {
                let mut s = s.clone();
                let phi = correct_common_phase(&cfg, &mut s, &hh).unwrap();
                if !tdl {
                    // exact CFO: rounding only
                    assert!(phi.abs() < 1e-9);
                }
                assert!(r.fft_start + (j + 2) * sl + cfg.n_fft <= rx.len());
                eq.push(equalize(&s, &hh).unwrap());
            }
            let back = unpack_reals(&cfg, &eq, x.len()).unwrap();
            // flat: f64 rounding (~1e-15). TDL: a residual CFO δ ≤ 2e-3 (above) leaves ICI of
            // ≈ πδ/√3 ≤ 4e-3 rms on the data and on the LS estimate; 0.05 is a loose multiple
            // of that (measured ≤ 2.1e-3)
            let tol = if tdl { 0.05 } else { 1e-9 };
            for (a, b) in back.iter().zip(&x) {
                assert!((a - b).abs() < tol, "eps {eps} tdl {tdl}: {a} vs {b}");
            }
        }
    }
}

/// Detection statistics over 200 trials with 0..=500 samples of leading noise and a random
/// CFO of up to ±0.45 subcarrier spacings.
struct DetectionStats {
    /// Fraction of trials whose coarse (Schmidl–Cox only) FFT window is CP-safe.
    coarse_safe: f64,
    /// Same after [`refine_timing`].
    fine_safe: f64,
    /// RMS error of the coarse / refined `fft_start` w.r.t. the plateau centre (detected
    /// trials only).
    coarse_rms: f64,
    fine_rms: f64,
    missed: usize,
}

fn detection_stats(cfg: &OfdmConfig, snr_db: f64, threshold: f64) -> DetectionStats {
    let mut rng = stream(4, &[2, cfg.n_fft as u64, snr_db.to_bits()]);
    let sigma2 = 10f64.powf(-snr_db / 10.0);
    let trials = 200;
    let (mut coarse_ok, mut fine_ok, mut missed) = (0, 0, 0);
    let (mut se_c, mut se_f) = (0.0, 0.0);
    for _ in 0..trials {
        let lead = rng.random_range(0..=500usize);
        let x = random_data(cfg, 4, &mut rng);
        let grid = pack_reals(cfg, &x).unwrap();
        let tx = burst(cfg, lead, &grid);
        // Random CFO within ±0.45 subcarrier spacings.
        let cfo = (rng.random::<f64>() - 0.5) * 0.9 * cfg.subcarrier_spacing_hz();
        let phase0 = rng.random::<f64>() * 2.0 * PI;
        let tx = apply_cfo(&tx, cfo, cfg.sample_rate_hz, phase0).unwrap();
        let rx = awgn(&tx, sigma2, &mut rng).unwrap();
        let centre = (lead + cfg.cp_len / 2) as f64;
        match detect(cfg, &rx, threshold).unwrap() {
            Some(r) => {
                se_c += (r.fft_start as f64 - centre).powi(2);
                if cp_safe(cfg, r.fft_start, lead, 1) {
                    coarse_ok += 1;
                }
                // A wild coarse estimate may put the search range outside the buffer.
                match refine_timing(cfg, &rx, &r) {
                    Ok(f) => {
                        se_f += (f.fft_start as f64 - centre).powi(2);
                        if cp_safe(cfg, f.fft_start, lead, 1) {
                            fine_ok += 1;
                        }
                    }
                    Err(_) => se_f += (r.fft_start as f64 - centre).powi(2),
                }
            }
            None => missed += 1,
        }
    }
    let detected = (trials - missed).max(1) as f64;
    DetectionStats {
        coarse_safe: coarse_ok as f64 / trials as f64,
        fine_safe: fine_ok as f64 / trials as f64,
        coarse_rms: (se_c / detected).sqrt(),
        fine_rms: (se_f / detected).sqrt(),
        missed,
    }
}

/// Flat AWGN channel, SNR 0/5/10/20 dB, 200 trials each, 64- and 256-point numerologies.
/// Required: the refined timing is CP-safe in ≥ 99 % of trials at ≥ 5 dB; the
/// Schmidl–Cox-only estimate in ≥ 97 % at 5 dB and ≥ 99 % at ≥ 10 dB.
#[test]
fn detection_lands_in_the_cp_safe_window() {
    for cfg in [OfdmConfig::default(), cfg256()] {
        for snr_db in [0.0, 5.0, 10.0, 20.0] {
            let st = detection_stats(&cfg, snr_db, 0.1);
            eprintln!(
                    "n_fft {:>3} SNR {snr_db:>4} dB: CP-safe coarse {:.3} / refined {:.3}; RMS timing error coarse {:.2} / refined {:.2} samples; missed {}",
                    cfg.n_fft, st.coarse_safe, st.fine_safe, st.coarse_rms, st.fine_rms, st.missed
                );
            // requirements (see above), not tolerances: with 200 trials, ≥ 0.99 allows 2
            // misses (measured: 0–1 coarse, 0 refined); seeded f64 processing, so the counts
            // do not depend on the machine. At 0 dB: measured 0.915 (64) and 0.98 (256)
            if snr_db >= 5.0 {
                assert!(st.fine_safe >= 0.99, "n_fft {} SNR {snr_db}", cfg.n_fft);
                let need = if snr_db >= 10.0 { 0.99 } else { 0.97 };
                assert!(st.coarse_safe >= need, "n_fft {} SNR {snr_db}", cfg.n_fft);
            } else {
                assert!(st.fine_safe >= 0.75, "n_fft {} SNR {snr_db}", cfg.n_fft);
            }
        }
    }
}

/// Noise alone (no preamble, 800 samples) rarely crosses a threshold of 0.4 (a preamble at
/// 5 dB gives ≈ 0.5).
#[test]
fn false_alarms_are_rare() {
    let cfg = OfdmConfig::default();
    let mut rng = stream(4, &[6]);
    let mut alarms = 0;
    for _ in 0..200 {
        let rx = awgn(&vec![C64::new(0.0, 0.0); 800], 1.0, &mut rng).unwrap();
        if detect(&cfg, &rx, 0.4).unwrap().is_some() {
            alarms += 1;
        }
    }
    eprintln!("false alarms at threshold 0.4: {alarms}/200");
    // requirement, not a tolerance (measured 0/200; seeded, machine-independent)
    assert!(alarms <= 1, "{alarms}");
}

/// RMS CFO error (in subcarrier spacings) over `trials` bursts at a known CFO.
fn cfo_rms(cfg: &OfdmConfig, eps: f64, snr_db: f64, trials: usize) -> f64 {
    let mut rng = stream(4, &[3, eps.to_bits(), snr_db.to_bits()]);
    let sigma2 = 10f64.powf(-snr_db / 10.0);
    let cfo = eps * cfg.subcarrier_spacing_hz();
    let mut se = 0.0;
    for _ in 0..trials {
        let lead = rng.random_range(50..=150usize);
        let x = random_data(cfg, 2, &mut rng);
        let tx = burst(cfg, lead, &pack_reals(cfg, &x).unwrap());
        let phase0 = rng.random::<f64>() * 2.0 * PI;
        let rx = awgn(
            &apply_cfo(&tx, cfo, cfg.sample_rate_hz, phase0).unwrap(),
            sigma2,
            &mut rng,
        )
        .unwrap();
        let r = detect(cfg, &rx, 0.0)
            .unwrap()
            .expect("threshold 0 always detects");
        let e = (r.cfo_hz - cfo) / cfg.subcarrier_spacing_hz();
        se += e * e;
    }
    (se / trials as f64).sqrt()
}

#[test]
fn cfo_estimate_rms_error_falls_with_snr() {
    let cfg = OfdmConfig::default();
    for eps in [-0.4, -0.1, 0.1, 0.4] {
        let mut prev = f64::INFINITY;
        for snr_db in [0.0, 5.0, 10.0, 20.0] {
            let rms = cfo_rms(&cfg, eps, snr_db, 200);
            // Reference 1/(π sqrt(L·SNR_t)), SNR_t the time-domain SNR.
            let snr_t = 10f64.powf(snr_db / 10.0) * cfg.n_used as f64 / cfg.n_fft as f64;
            let reference = 1.0 / (PI * ((cfg.n_fft / 2) as f64 * snr_t).sqrt());
            eprintln!(
                    "eps {eps:+.1} SNR {snr_db:>4} dB: CFO RMS error {rms:.5} subcarriers (1/(π√(L·SNR)) = {reference:.5})"
                );
            assert!(rms < prev, "eps {eps}: not falling at {snr_db} dB");
            // Below ≈ 5 dB the 64-point preamble is in its threshold region (timing
            // outliers), so the reference bound is only checked from 5 dB up. The reference is
            // Schmidl & Cox's own high-SNR variance 1/(π²·L·SNR); the RMS over 200 trials has
            // rel. SE ≈ 1/√400 = 5 %, so 2× is ≫ the noise (measured 0.85–1.08× reference)
            if snr_db >= 5.0 {
                assert!(rms < 2.0 * reference, "eps {eps} SNR {snr_db}: {rms}");
            }
            prev = rms;
        }
        // 1.6× the 20 dB reference (0.0062; measured ≤ 0.0058): ≈ 12 SE of the RMS above it
        assert!(prev < 0.01, "eps {eps}: {prev} at 20 dB");
    }
}

/// 20 dB, CFO ±0.4 subcarriers: detection, CFO correction, LS channel estimation and pilot
/// common-phase correction bring the data-carrier MSE to what the noise allows (noise on
/// the data plus on the LS estimate ≈ 2σ² for a unit channel), far below the uncorrected
/// MSE.
#[test]
fn corrected_symbols_match_after_sync() {
    let cfg = OfdmConfig::default();
    let mut rng = stream(4, &[4]);
    let snr_db = 20.0;
    let sigma2 = 10f64.powf(-snr_db / 10.0);
    let sl = cfg.symbol_len();
    for eps in [-0.4, 0.4] {
        let cfo = eps * cfg.subcarrier_spacing_hz();
        let mut mse = 0.0;
        let mut mse_raw = 0.0;
        let mut count = 0.0;
        for _ in 0..50 {
            let x = random_data(&cfg, 8, &mut rng);
            let grid = pack_reals(&cfg, &x).unwrap();
            let lead = 100;
            let tx = burst(&cfg, lead, &grid);
            let mut rx = awgn(
                &apply_cfo(&tx, cfo, cfg.sample_rate_hz, 0.3).unwrap(),
                sigma2,
                &mut rng,
            )
            .unwrap();
            let r = detect(&cfg, &rx, 0.3).unwrap().expect("detected");
            let y_raw = demodulate(&cfg, &rx, lead + 2 * sl, 8).unwrap();
            correct_cfo(&mut rx, r.cfo_hz, cfg.sample_rate_hz, 0).unwrap();
            let y = demodulate_from(&cfg, &rx, r.fft_start, 10).unwrap();
            let h = estimate_channel(&cfg, &y[1], &training_symbol(&cfg).unwrap()).unwrap();
            for (s, (ys, yr)) in grid.iter().zip(y[2..].iter().zip(&y_raw)) {
                let mut ys = ys.clone();
                correct_common_phase(&cfg, &mut ys, &h).unwrap();
                let eq = equalize(&ys, &h).unwrap();
                for &d in &cfg.data_carriers() {
                    mse += (eq[d] - s[d]).norm_sqr();
                    mse_raw += (yr[d] - s[d]).norm_sqr();
                    count += 1.0;
                }
            }
        }
        mse /= count;
        mse_raw /= count;
        eprintln!(
            "eps {eps}: corrected MSE {mse:.5}, uncorrected {mse_raw:.3}, 2σ² = {:.5}",
            2.0 * sigma2
        );
        // expected ≈ 2.25σ²: σ² on the data, σ² on the LS estimate and ≈ σ²/4 from the
        // common phase estimated on 4 noisy pilots (phase variance 2σ²/(2·4)); measured
        // 2.24σ². The estimate noise is shared per burst (≈ 2400 and 400 independent draws):
        // SE ≈ 0.036σ², so 2.5σ² is ≈ 7 SE above the expectation
        assert!(mse < 2.0 * sigma2 * 1.25, "eps {eps}: {mse}");
        // effect size: measured ≈ 90×
        assert!(mse_raw > 50.0 * mse);
    }
}

/// Signal-to-ISI ratio of the training symbol demodulated with its FFT window at
/// `w0` from the noise-free received burst `y` (training useful part of the direct path at
/// `t0`), against the ideal `H_k X_k e^{−j2πk(t0−w0)/N}`.
fn training_sir(cfg: &OfdmConfig, y: &[C64], h: &[C64], t0: usize, w0: usize) -> f64 {
    let rx = demodulate_from(cfg, y, w0, 1).unwrap();
    let hf = frequency_response(cfg, h).unwrap();
    let known = training_symbol(cfg).unwrap();
    let b = t0 as f64 - w0 as f64;
    let (mut sig, mut isi) = (0.0, 0.0);
    for (((k, yv), hv), xv) in cfg
        .used_frequencies()
        .iter()
        .zip(&rx[0])
        .zip(&hf)
        .zip(&known)
    {
        let ideal = hv * xv * C64::from_polar(1.0, -2.0 * PI * *k as f64 * b / cfg.n_fft as f64);
        sig += ideal.norm_sqr();
        isi += (yv - ideal).norm_sqr();
    }
    sig / isi.max(1e-300)
}

/// Through multipath (TDL-A 30 ns and TDL-C 50 ns at 20 MHz: up to 10 and 14 of the CP's 17
/// tap positions) at 10 dB, 200 trials each: the refined FFT window keeps the
/// signal-to-ISI ratio of the (noise-free) training symbol ≥ 30 dB in ≥ 97 % of trials.
#[test]
fn detection_through_tdl_channel() {
    let cfg = OfdmConfig::default();
    let sl = cfg.symbol_len();
    let sigma2 = 0.1;
    for (profile, ds) in [(TdlProfile::A, 30e-9f64), (TdlProfile::C, 50e-9)] {
        let mut rng = stream(4, &[5, ds.to_bits()]);
        let ch = TdlChannel::new(profile, ds, cfg.sample_rate_hz).unwrap();
        let trials = 200;
        let (mut good_c, mut good_f) = (0, 0);
        let mut sirs = Vec::new();
        for _ in 0..trials {
            let lead = rng.random_range(0..=500usize);
            let grid = pack_reals(&cfg, &random_data(&cfg, 2, &mut rng)).unwrap();
            let h = ch.draw(&mut rng);
            // Normalise the realisation so the test is about timing, not deep fades.
            let g = h.iter().map(|v| v.norm_sqr()).sum::<f64>().sqrt();
            let h: Vec<C64> = h.iter().map(|v| v / g).collect();
            let y = apply_multipath(&burst(&cfg, lead, &grid), &h);
            let rx = awgn(&y, sigma2, &mut rng).unwrap();
            let r = detect(&cfg, &rx, 0.3).unwrap().expect("detected");
            let f = refine_timing(&cfg, &rx, &r).unwrap();
            let t0 = lead + sl + cfg.cp_len;
            let sir_c = training_sir(&cfg, &y, &h, t0, r.fft_start + sl);
            let sir_f = training_sir(&cfg, &y, &h, t0, f.fft_start + sl);
            good_c += usize::from(sir_c >= 1e3);
            good_f += usize::from(sir_f >= 1e3);
            sirs.push(10.0 * sir_f.log10());
        }
        sirs.sort_by(|a, b| a.total_cmp(b));
        eprintln!(
                "{profile:?} {:.0} ns ({} taps), 10 dB: SIR ≥ 30 dB coarse {good_c}/{trials}, refined {good_f}/{trials}; refined SIR min {:.1} dB, median {:.1} dB",
                ds * 1e9,
                ch.n_taps(),
                sirs[0],
                sirs[trials / 2]
            );
        // requirement (doc comment), not a tolerance: measured 200/200 for both profiles
        assert!(
            good_f * 100 >= 97 * trials,
            "{profile:?}: {good_f}/{trials}"
        );
    }
}
