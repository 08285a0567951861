use super::*;
use crate::rng::stream;
use crate::waveform::ofdm::{demodulate, modulate, OfdmConfig};
use crate::waveform::sync::correct_cfo;

fn random_grid<R: Rng + ?Sized>(cfg: &OfdmConfig, n: usize, rng: &mut R) -> Vec<Vec<C64>> {
    let a = std::f64::consts::FRAC_1_SQRT_2;
    (0..n)
        .map(|_| {
            (0..cfg.n_used)
                .map(|_| {
                    C64::new(
                        if rng.random::<bool>() { a } else { -a },
                        if rng.random::<bool>() { a } else { -a },
                    )
                })
                .collect()
        })
        .collect()
}

#[test]
fn bad_inputs_are_errors_naming_the_field() {
    let x = vec![C64::new(1.0, 0.0); 4];
    let mut rng = stream(3, &[0]);
    let field = |e: WaveformError| match e {
        WaveformError::InvalidParameter { field, .. } => field,
        other => panic!("{other:?}"),
    };
    assert_eq!(field(delay_samples(&x, -1.0).unwrap_err()), "d");
    assert_eq!(field(delay_samples(&x, f64::NAN).unwrap_err()), "d");
    assert_eq!(
        field(apply_cfo(&x, f64::NAN, 1.0, 0.0).unwrap_err()),
        "cfo_hz"
    );
    assert_eq!(
        field(apply_cfo(&x, 1.0, 0.0, 0.0).unwrap_err()),
        "sample_rate_hz"
    );
    assert_eq!(
        field(phase_noise(&x, -1.0, 1.0, &mut rng).unwrap_err()),
        "linewidth_hz"
    );
    assert_eq!(field(clip(&x, 0.0).unwrap_err()), "max_amplitude");
    assert_eq!(field(power_limit(&x, -1.0).unwrap_err()), "max_mean_power");
    assert_eq!(field(adc(&x, 0, 1.0).unwrap_err()), "bits");
    assert_eq!(field(adc(&x, 31, 1.0).unwrap_err()), "bits");
    assert_eq!(field(adc(&x, 8, 0.0).unwrap_err()), "full_scale");
    assert_eq!(field(awgn(&x, -0.1, &mut rng).unwrap_err()), "noise_power");
}

#[test]
fn impairments_validate_and_serde() {
    let ideal = Impairments::default();
    assert!(ideal.validate().is_ok());
    assert!(ideal.is_ideal());
    let parsed: Impairments = serde_json::from_str("{}").unwrap();
    assert_eq!(parsed, ideal);
    let full: Impairments = serde_json::from_str(
        r#"{"timing_offset_samples": 3.5, "cfo_hz": -1200.0,
                "phase_noise_linewidth_hz": 100.0,
                "tdl": {"profile": "TDL-A", "delay_spread_s": 3e-8},
                "clip_amplitude": 0.5, "adc": {"bits": 10, "full_scale": 1.0}}"#,
    )
    .unwrap();
    assert!(full.validate().is_ok());
    assert!(!full.is_ideal());
    let back: Impairments = serde_json::from_str(&serde_json::to_string(&full).unwrap()).unwrap();
    assert_eq!(back, full);
    assert!(serde_json::from_str::<Impairments>(r#"{"cfo": 1.0}"#).is_err());
    assert!(serde_json::from_str::<Impairments>(
        r#"{"tdl": {"profile": "TDL-A", "delay_spread_s": 1e-8, "x": 1}}"#
    )
    .is_err());
    let field = |i: Impairments| match i.validate() {
        Err(WaveformError::InvalidParameter { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    let d = Impairments::default();
    assert_eq!(
        field(Impairments {
            timing_offset_samples: -1.0,
            ..d.clone()
        }),
        "timing_offset_samples"
    );
    assert_eq!(
        field(Impairments {
            cfo_hz: f64::INFINITY,
            ..d.clone()
        }),
        "cfo_hz"
    );
    assert_eq!(
        field(Impairments {
            phase_noise_linewidth_hz: -1.0,
            ..d.clone()
        }),
        "phase_noise_linewidth_hz"
    );
    assert_eq!(
        field(Impairments {
            tdl: Some(TdlSpec {
                profile: TdlProfile::B,
                delay_spread_s: -1.0
            }),
            ..d.clone()
        }),
        "tdl.delay_spread_s"
    );
    assert_eq!(
        field(Impairments {
            clip_amplitude: Some(0.0),
            ..d.clone()
        }),
        "clip_amplitude"
    );
    assert_eq!(
        field(Impairments {
            adc: Some(AdcSpec {
                bits: 0,
                full_scale: 1.0
            }),
            ..d.clone()
        }),
        "adc.bits"
    );
    assert_eq!(
        field(Impairments {
            adc: Some(AdcSpec {
                bits: 8,
                full_scale: f64::NAN
            }),
            ..d
        }),
        "adc.full_scale"
    );
}

#[test]
fn ideal_impairments_are_the_identity() {
    let mut rng = stream(3, &[1]);
    let x: Vec<C64> = (0..100).map(|i| C64::new(i as f64, -(i as f64))).collect();
    let imp = Impairments::default();
    let out = imp.apply_device(&x, 1e6, &mut rng).unwrap();
    assert_eq!(out.samples, x);
    assert_eq!(out.taps, vec![C64::new(1.0, 0.0)]);
    assert_eq!(imp.apply_receiver(&x, 0.0, &mut rng).unwrap(), x);
}

#[test]
fn full_chain_runs_and_has_the_documented_length() {
    let mut rng = stream(3, &[2]);
    let imp = Impairments {
        timing_offset_samples: 2.3,
        cfo_hz: 5e3,
        phase_noise_linewidth_hz: 50.0,
        tdl: Some(TdlSpec {
            profile: TdlProfile::C,
            delay_spread_s: 50e-9,
        }),
        clip_amplitude: Some(0.3),
        adc: Some(AdcSpec {
            bits: 8,
            full_scale: 1.0,
        }),
    };
    let x = vec![C64::new(0.2, 0.1); 64];
    let out = imp.apply_device(&x, 20e6, &mut rng).unwrap();
    assert_eq!(out.samples.len(), 64 + out.taps.len() - 1 + 3);
    let rx = imp.apply_receiver(&out.samples, 1e-3, &mut rng).unwrap();
    assert_eq!(rx.len(), out.samples.len());
    // the ADC's full scale is 1: its codes stop half a step inside ±1 (structural bound)
    assert!(rx.iter().all(|v| v.re.abs() < 1.0 && v.im.abs() < 1.0));
}

/// Integer delays are exact shifts. Fractional delays are checked on a band-limited
/// periodic signal (one OFDM symbol's useful part repeated, 52 of 64 bins, i.e. up to
/// 0.41 fs): a window in the middle of the delayed signal demodulates to the ideal phase
/// ramp `X_k e^{−j2πk·d/N}` to −60 dB. (On a CP-OFDM burst, symbol boundaries are not
/// band-limited and any interpolator smears them; the CP absorbs that.)
#[test]
fn timing_offset_integer_and_fractional() {
    let x: Vec<C64> = (0..10).map(|i| C64::new(i as f64, 1.0)).collect();
    let y = delay_samples(&x, 3.0).unwrap();
    assert_eq!(y.len(), 13);
    assert!(y[..3].iter().all(|v| *v == C64::new(0.0, 0.0)));
    assert_eq!(&y[3..], &x[..]);
    assert_eq!(delay_samples(&x, 0.0).unwrap(), x);

    let cfg = OfdmConfig {
        cp_len: 0,
        ..OfdmConfig::default()
    };
    let n = cfg.n_fft;
    let mut rng = stream(3, &[3]);
    let grid = random_grid(&cfg, 1, &mut rng);
    let one = modulate(&cfg, &grid).unwrap();
    let x: Vec<C64> = one.iter().cycle().take(12 * n).cloned().collect();
    for d in [0.25, 0.5, 0.9, 7.75, 100.4] {
        let y = delay_samples(&x, d).unwrap();
        assert_eq!(y.len(), x.len() + d.ceil() as usize);
        // Window at a multiple of n after the integer delay, away from both ends.
        let int = d.floor() as usize;
        let frac = d - int as f64;
        let rx = demodulate(&cfg, &y, int + 5 * n, 1).unwrap();
        let mut err = 0.0;
        let mut pow = 0.0;
        for ((k, yv), xv) in cfg.used_frequencies().iter().zip(&rx[0]).zip(&grid[0]) {
            let ramp = C64::from_polar(1.0, -2.0 * PI * (*k as f64) * frac / n as f64);
            err += (yv - xv * ramp).norm_sqr();
            pow += xv.norm_sqr();
        }
        eprintln!("fractional delay {d}: relative error {:.2e}", err / pow);
        // delay_samples' documented interpolation error is < −70 dB within ±0.41 fs: −60 dB
        // leaves 10×
        assert!(err / pow < 1e-6, "d = {d}: relative error {}", err / pow);
    }
    assert!(delay_samples(&x, 2e9).is_err());
}

#[test]
fn cfo_is_a_rotation_and_correction_undoes_it() {
    let x: Vec<C64> = (0..50).map(|i| C64::new(1.0, i as f64 * 0.1)).collect();
    let fs = 1e6;
    let y = apply_cfo(&x, 1234.5, fs, 0.7).unwrap();
    // f64 rotations of |x| ≤ 5 by phases ≤ 1.1 rad: rounding ~1e-15 (also below)
    for (n, (a, b)) in y.iter().zip(&x).enumerate() {
        assert!((a.norm() - b.norm()).abs() < 1e-12);
        let want = b * C64::from_polar(1.0, 2.0 * PI * 1234.5 * n as f64 / fs + 0.7);
        assert!((a - want).norm() < 1e-12);
    }
    let mut z = y[10..].to_vec();
    correct_cfo(&mut z, 1234.5, fs, 10).unwrap();
    for (a, b) in z.iter().zip(&x[10..]) {
        // Only the constant phase0 remains.
        assert!((a - b * C64::from_polar(1.0, 0.7)).norm() < 1e-12);
    }
}

/// ICI of an uncorrected CFO ε (in subcarriers). Each of 400 random QPSK symbols is sent
/// as its own burst (so the common phase is the same for all). After removing the known
/// common rotation `e^{j2πε(cp/N + (N−1)/(2N))}` and wanted-carrier gain
/// `sin(πε)/(N sin(πε/N))` (what pilots / a channel estimate would do), the residual MSE
/// matches the exact ICI power `Σ_{l≠k} |sin(πε)/(N sin(π(l−k+ε)/N))|²` averaged over the
/// used carriers to 5 %, which for small ε is ≈ (πε)²/3 (a bit less, since only `n_used`
/// carriers interfere). The raw MSE grows monotonically with ε and ∝ ε² (to 15 %);
/// correcting the CFO of a long burst restores every symbol to 1e-9.
#[test]
fn cfo_ici_matches_theory_and_correction_restores() {
    let cfg = OfdmConfig::default();
    let n = cfg.n_fft as f64;
    let mut rng = stream(3, &[4]);
    let n_sym = 400;
    let grid = random_grid(&cfg, n_sym, &mut rng);
    let x = modulate(&cfg, &grid).unwrap();
    let sl = cfg.symbol_len();
    let used_k = cfg.used_frequencies();
    let mut prev_raw = 0.0;
    let mut first_ratio: Option<f64> = None;
    for eps in [0.005, 0.01, 0.02, 0.05, 0.1, 0.2] {
        let cfo = eps * cfg.subcarrier_spacing_hz();
        let cpe = 2.0 * PI * eps * (cfg.cp_len as f64 / n + (n - 1.0) / (2.0 * n));
        let rot = C64::from_polar(1.0, cpe);
        let gain = (PI * eps).sin() / (n * (PI * eps / n).sin());
        let (mut raw, mut ici) = (0.0, 0.0);
        for (s, xs) in grid.iter().enumerate() {
            let burst = apply_cfo(&x[s * sl..(s + 1) * sl], cfo, cfg.sample_rate_hz, 0.0).unwrap();
            let ys = &demodulate(&cfg, &burst, 0, 1).unwrap()[0];
            for (yv, xv) in ys.iter().zip(xs) {
                raw += (yv - xv).norm_sqr();
                ici += (yv * rot.conj() - xv * gain).norm_sqr();
            }
        }
        let m = (n_sym * cfg.n_used) as f64;
        raw /= m;
        ici /= m;
        let mut theory = 0.0;
        for &k in &used_k {
            for &l in &used_k {
                if l != k {
                    let a = (PI * eps).sin() / (n * (PI * ((l - k) as f64 + eps) / n).sin());
                    theory += a * a;
                }
            }
        }
        theory /= used_k.len() as f64;
        let approx = (PI * eps).powi(2) / 3.0;
        // Monte-Carlo: the ICI is a sum of 51 random QPSK terms, |·|² no more spread than
        // exponential: rel. SE ≤ 1/√(400·52) = 0.7 %, so 5 % ≥ 7 SE
        eprintln!(
                "eps {eps}: raw MSE {raw:.3e}, ICI {ici:.3e}, exact ICI {theory:.3e}, (πε)²/3 = {approx:.3e}"
            );
        assert!(
            (ici / theory - 1.0).abs() < 0.05,
            "eps {eps}: ICI {ici} vs theory {theory}"
        );
        // Raw MSE (common phase + ICI) ∝ ε² for small ε. The exact expectation bends below
        // ε² by 11.6 % at ε = 0.2 (|g e^{jφ} − 1|² and the ICI); 15 % leaves 3.4 % ≈ 7 SE of
        // Monte-Carlo (rel. SE of each raw MSE ≈ 0.34 %)
        let ratio = raw / (eps * eps);
        if let Some(r0) = first_ratio {
            assert!(
                (ratio / r0 - 1.0).abs() < 0.15,
                "eps {eps}: {ratio} vs {r0}"
            );
        } else {
            first_ratio = Some(ratio);
        }
        // deterministic: exact / approximation = 0.89–0.93 for these ε
        assert!(
            theory < approx && theory > 0.6 * approx,
            "{theory} vs {approx}"
        );
        assert!(raw > prev_raw, "raw MSE not monotone at eps {eps}");
        prev_raw = raw;
        // A long burst, CFO corrected with the true value: every symbol restored.
        let mut z = apply_cfo(&x, cfo, cfg.sample_rate_hz, 0.0).unwrap();
        correct_cfo(&mut z, cfo, cfg.sample_rate_hz, 0).unwrap();
        let rz = demodulate(&cfg, &z, 0, n_sym).unwrap();
        // f64: phases up to 2π·0.2·312.5 kHz·32 000/20 MHz ≈ 630 rad, rounding ~ε·630 ≈ 1e-13
        for (a, b) in rz.iter().flatten().zip(grid.iter().flatten()) {
            assert!((a - b).norm() < 1e-9);
        }
    }
}

#[test]
fn phase_noise_increments_have_the_wiener_variance() {
    let mut rng = stream(3, &[5]);
    let fs = 1e6;
    let beta = 1e3;
    let x = vec![C64::new(1.0, 0.0); 100_001];
    let y = phase_noise(&x, beta, fs, &mut rng).unwrap();
    assert_eq!(y[0], C64::new(1.0, 0.0));
    // each sample is one from_polar(1, φ) product (no accumulation): |·| = 1 up to ~ε
    assert!(y.iter().all(|v| (v.norm() - 1.0).abs() < 1e-12));
    let incs: Vec<f64> = y.windows(2).map(|w| (w[1] * w[0].conj()).arg()).collect();
    let var = incs.iter().map(|v| v * v).sum::<f64>() / incs.len() as f64;
    let want = 2.0 * PI * beta / fs;
    // Monte-Carlo: Gaussian increments, rel. SE √(2/n) = 0.45 % at n = 1e5: 0.03 ≈ 6.7 SE
    assert!((var / want - 1.0).abs() < 0.03, "{var} vs {want}");
    // Zero linewidth: identity.
    assert_eq!(
        phase_noise(&x[..10], 0.0, fs, &mut rng).unwrap(),
        x[..10].to_vec()
    );
}

#[test]
fn clipping_limits_the_peak_and_power_limit_scales() {
    let cfg = OfdmConfig::default();
    let mut rng = stream(3, &[6]);
    let x = modulate(&cfg, &random_grid(&cfg, 20, &mut rng)).unwrap();
    let peak = x.iter().map(|v| v.norm()).fold(0.0, f64::max);
    let a = 0.5 * peak;
    let y = clip(&x, a).unwrap();
    // v·(a/|v|): |·| = a and arg unchanged up to f64 rounding (~1e-16 on O(1) values)
    assert!(y.iter().all(|v| v.norm() <= a + 1e-12));
    let clipped = x.iter().filter(|v| v.norm() > a).count();
    assert!(clipped > 0);
    for (u, v) in x.iter().zip(&y) {
        if u.norm() <= a {
            assert_eq!(u, v);
        } else {
            assert!((u.arg() - v.arg()).abs() < 1e-12);
        }
    }
    let (z, s) = power_limit(&x, 0.1).unwrap();
    let p = z.iter().map(|v| v.norm_sqr()).sum::<f64>() / z.len() as f64;
    // f64 sums of 1600 terms: ≤ γ_1600·0.1 ≈ 2e-14
    assert!((p - 0.1).abs() < 1e-12 && s < 1.0);
    let (z, s) = power_limit(&x, 10.0).unwrap();
    assert_eq!((z, s), (x.clone(), 1.0));
}

#[test]
fn adc_error_falls_with_bits_about_6db_per_bit() {
    let mut rng = stream(3, &[7]);
    let x = awgn(&vec![C64::new(0.0, 0.0); 20_000], 0.1, &mut rng).unwrap();
    let fs = 4.0 * 0.1f64.sqrt(); // ≈ 5.7σ per rail: practically no overload
    let mut prev = f64::INFINITY;
    for bits in [2, 4, 6, 8, 10, 12] {
        let y = adc(&x, bits, fs).unwrap();
        let mse = x
            .iter()
            .zip(&y)
            .map(|(a, b)| (a - b).norm_sqr())
            .sum::<f64>()
            / x.len() as f64;
        assert!(mse < prev, "bits {bits}");
        if bits >= 6 {
            let step = 2.0 * fs / (1u64 << bits) as f64;
            let want = 2.0 * step * step / 12.0;
            // Monte-Carlo: uniform error per rail (Bennett: exact to e^{−2π²σ²/Δ²} here),
            // e² rel. σ 0.89 over 40 000 values: SE 0.45 %, 0.1 ≈ 22 SE
            assert!(
                (mse / want - 1.0).abs() < 0.1,
                "bits {bits}: {mse} vs {want}"
            );
        }
        prev = mse;
    }
    // Saturation.
    let y = adc(&[C64::new(10.0, -10.0)], 4, 1.0).unwrap();
    assert_eq!(y[0], C64::new(1.0 - 1.0 / 16.0, -1.0 + 1.0 / 16.0));
}

#[test]
fn awgn_has_the_requested_power() {
    let mut rng = stream(3, &[8]);
    let x = vec![C64::new(0.0, 0.0); 200_000];
    let y = awgn(&x, 0.25, &mut rng).unwrap();
    let p = y.iter().map(|v| v.norm_sqr()).sum::<f64>() / y.len() as f64;
    // Monte-Carlo: |n|² exponential, rel. SE 1/√(2e5) = 0.22 %: 0.01 ≈ 4.5 SE
    assert!((p / 0.25 - 1.0).abs() < 0.01);
    let pr = y.iter().map(|v| v.re * v.re).sum::<f64>() / y.len() as f64;
    // one rail: χ²₁, rel. SE √(2/2e5) = 0.32 %: 0.015 ≈ 4.7 SE
    assert!((pr / 0.125 - 1.0).abs() < 0.015);
}
