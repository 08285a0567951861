use super::*;
use crate::rng::stream;
use rand::Rng;
use rand_distr::StandardNormal;

fn qpsk_grid<R: Rng + ?Sized>(cfg: &OfdmConfig, n_sym: usize, rng: &mut R) -> Vec<Vec<C64>> {
    let a = std::f64::consts::FRAC_1_SQRT_2;
    (0..n_sym)
        .map(|_| {
            (0..cfg.n_used)
                .map(|_| {
                    let re = if rng.random::<bool>() { a } else { -a };
                    let im = if rng.random::<bool>() { a } else { -a };
                    C64::new(re, im)
                })
                .collect()
        })
        .collect()
}

fn configs() -> Vec<OfdmConfig> {
    vec![
        OfdmConfig::default(),
        OfdmConfig {
            n_fft: 256,
            cp_len: 18,
            n_used: 200,
            pilot_spacing: 0,
            sample_rate_hz: 3.84e6,
        },
        OfdmConfig {
            n_fft: 8,
            cp_len: 0,
            n_used: 6,
            pilot_spacing: 2,
            sample_rate_hz: 1.0,
        },
    ]
}

#[test]
fn validate_names_fields() {
    let ok = OfdmConfig::default();
    assert!(ok.validate().is_ok());
    let field_of = |c: OfdmConfig| match c.validate() {
        Err(WaveformError::InvalidParameter { field, .. }) => field,
        other => panic!("expected an error, got {other:?}"),
    };
    assert_eq!(
        field_of(OfdmConfig {
            n_fft: 48,
            ..ok.clone()
        }),
        "n_fft"
    );
    assert_eq!(
        field_of(OfdmConfig {
            n_fft: 4,
            ..ok.clone()
        }),
        "n_fft"
    );
    assert_eq!(
        field_of(OfdmConfig {
            cp_len: 64,
            ..ok.clone()
        }),
        "cp_len"
    );
    assert_eq!(
        field_of(OfdmConfig {
            n_used: 51,
            ..ok.clone()
        }),
        "n_used"
    );
    assert_eq!(
        field_of(OfdmConfig {
            n_used: 64,
            ..ok.clone()
        }),
        "n_used"
    );
    assert_eq!(
        field_of(OfdmConfig {
            n_used: 2,
            ..ok.clone()
        }),
        "n_used"
    );
    assert_eq!(
        field_of(OfdmConfig {
            pilot_spacing: 1,
            ..ok.clone()
        }),
        "pilot_spacing"
    );
    for fs in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert_eq!(
            field_of(OfdmConfig {
                sample_rate_hz: fs,
                ..ok.clone()
            }),
            "sample_rate_hz"
        );
    }
    // Functions taking a config refuse an invalid one instead of panicking.
    let bad = OfdmConfig { n_fft: 0, ..ok };
    assert!(modulate(&bad, &[]).is_err());
    assert!(demodulate(&bad, &[], 0, 0).is_err());
    assert!(pack_reals(&bad, &[1.0]).is_err());
    assert!(unpack_reals(&bad, &[], 0).is_err());
    assert!(bad.used_carriers().is_empty());
}

#[test]
fn serde_round_trip_and_unknown_fields_rejected() {
    let c = OfdmConfig::default();
    let s = serde_json::to_string(&c).unwrap();
    let back: OfdmConfig = serde_json::from_str(&s).unwrap();
    assert_eq!(back, c);
    let bad = s.replace("\"n_fft\"", "\"nfft_typo\":1,\"n_fft\"");
    assert!(serde_json::from_str::<OfdmConfig>(&bad).is_err());
}

#[test]
fn carrier_layout() {
    let c = OfdmConfig::default();
    let used = c.used_carriers();
    assert_eq!(used.len(), 52);
    assert_eq!(used[0], 64 - 26);
    assert_eq!(used[25], 63);
    assert_eq!(used[26], 1);
    assert_eq!(used[51], 26);
    assert!(!used.contains(&0) && !used.contains(&32));
    assert_eq!(c.pilot_carriers(), vec![0, 13, 26, 39]);
    assert_eq!(c.n_pilots(), 4);
    assert_eq!(c.n_data(), 48);
    assert_eq!(c.data_carriers().len(), 48);
    assert_eq!(pilot_values(&c).len(), 4);
    assert!(pilot_values(&c)
        .iter()
        .all(|v| v.im == 0.0 && v.re.abs() == 1.0));
    assert_eq!(c.symbol_len(), 80);
    // closed forms, one f64 division each (rounding ≤ ½ ulp: 3e-11 and 4e-22)
    assert!((c.subcarrier_spacing_hz() - 312_500.0).abs() < 1e-9);
    assert!((c.symbol_duration_s() - 4e-6).abs() < 1e-18);
}

#[test]
fn modem_round_trip_is_exact() {
    let mut rng = stream(1, &[1]);
    for cfg in configs() {
        let grid: Vec<Vec<C64>> = (0..7)
            .map(|_| {
                (0..cfg.n_used)
                    .map(|_| {
                        C64::new(
                            rng.sample::<f64, _>(StandardNormal),
                            rng.sample::<f64, _>(StandardNormal),
                        )
                    })
                    .collect()
            })
            .collect();
        let x = modulate(&cfg, &grid).unwrap();
        assert_eq!(x.len(), 7 * cfg.symbol_len());
        // CP is a copy of the symbol's tail.
        for s in 0..7 {
            let o = s * cfg.symbol_len();
            for i in 0..cfg.cp_len {
                assert_eq!(x[o + i], x[o + cfg.n_fft + i]);
            }
        }
        let y = demodulate(&cfg, &x, 0, 7).unwrap();
        // f64 FFT round trip: ~ε·log₂N·|x| ≈ 1e-14 for N ≤ 256 and |x| ≲ 5 (also the
        // empty bins below)
        for (a, b) in y.iter().flatten().zip(grid.iter().flatten()) {
            assert!((a - b).norm() < 1e-12, "{a} vs {b}");
        }
        // Unused bins are empty: the symbol is band-limited to the used carriers.
        let mut buf = x[cfg.cp_len..cfg.cp_len + cfg.n_fft].to_vec();
        fft_unitary(&mut buf, false);
        let used = cfg.used_carriers();
        for (b, v) in buf.iter().enumerate() {
            if !used.contains(&b) {
                assert!(v.norm() < 1e-12);
            }
        }
    }
}

#[test]
fn parseval_energy_and_mean_power() {
    let mut rng = stream(1, &[2]);
    for cfg in configs() {
        let grid = qpsk_grid(&cfg, 50, &mut rng);
        let x = modulate(&cfg, &grid).unwrap();
        let carrier_energy: f64 = grid.iter().flatten().map(|v| v.norm_sqr()).sum();
        let useful_energy: f64 = (0..50)
            .flat_map(|s| {
                let o = s * cfg.symbol_len() + cfg.cp_len;
                x[o..o + cfg.n_fft].iter()
            })
            .map(|v| v.norm_sqr())
            .sum();
        // f64: each energy is a sum of ≤ n = 50·N_fft positive terms (error ≤ γ_n·Σ, γ_n ≈
        // n·2⁻⁵³) of values through a unitary FFT (~ε·log₂N each): relative error ≤
        // (n + 8·log₂N)·ε ≈ 2.9e-12 at N = 256 (the bare 1e-12 on the mean power was below
        // that worst case; 1e-10 is loose)
        let n = (50 * cfg.n_fft) as f64;
        let rel = (n + 8.0 * (cfg.n_fft as f64).log2()) * f64::EPSILON;
        assert!((useful_energy - carrier_energy).abs() < 1e-10 * carrier_energy);
        // Unit-power carriers: mean useful sample power n_used / n_fft.
        let p = useful_energy / (50 * cfg.n_fft) as f64;
        let want = cfg.n_used as f64 / cfg.n_fft as f64;
        assert!((p - want).abs() <= rel * want);
    }
}

#[test]
fn pack_unpack_round_trip() {
    let mut rng = stream(1, &[3]);
    for cfg in configs() {
        let cap = 2 * cfg.n_data();
        for n in [0, 1, cap - 1, cap, cap + 1, 5 * cap + 3] {
            let x: Vec<f64> = (0..n).map(|_| rng.random::<f64>() - 0.5).collect();
            let grid = pack_reals(&cfg, &x).unwrap();
            assert_eq!(grid.len(), cfg.symbols_for_reals(n));
            // Pilots in place, padding zero.
            let pv = pilot_values(&cfg);
            for s in &grid {
                for (&p, &v) in cfg.pilot_carriers().iter().zip(&pv) {
                    assert_eq!(s[p], v);
                }
            }
            if let Some(last) = grid.last() {
                let data = cfg.data_carriers();
                let used_reals = n - (grid.len() - 1) * cap;
                let flat: Vec<f64> = data
                    .iter()
                    .flat_map(|&d| [last[d].re, last[d].im])
                    .collect();
                assert!(flat[used_reals..].iter().all(|&v| v == 0.0));
            }
            assert_eq!(unpack_reals(&cfg, &grid, n).unwrap(), x);
            // Through the modem as well.
            let y = demodulate(&cfg, &modulate(&cfg, &grid).unwrap(), 0, grid.len()).unwrap();
            let back = unpack_reals(&cfg, &y, n).unwrap();
            // f64 FFT round trip of values ≤ ½: ~1e-15
            for (a, b) in back.iter().zip(&x) {
                assert!((a - b).abs() < 1e-12);
            }
        }
        // Too few symbols / wrong lengths are errors, not panics.
        assert!(unpack_reals(&cfg, &[], 1).is_err());
        assert!(unpack_reals(&cfg, &[vec![C64::new(0.0, 0.0); 3]], 1).is_err());
    }
}

#[test]
fn bad_lengths_are_errors() {
    let cfg = OfdmConfig::default();
    assert!(matches!(
        modulate(&cfg, &[vec![C64::new(0.0, 0.0); 51]]),
        Err(WaveformError::LengthMismatch {
            field: "symbols",
            ..
        })
    ));
    let x = vec![C64::new(0.0, 0.0); 159];
    assert!(matches!(
        demodulate(&cfg, &x, 0, 2),
        Err(WaveformError::LengthMismatch {
            field: "samples",
            ..
        })
    ));
    assert!(demodulate(&cfg, &x, usize::MAX, 2).is_err());
    assert!(demodulate(&cfg, &x, 0, usize::MAX).is_err());
    assert!(demodulate_from(&cfg, &x, 96, 1).is_err());
    assert_eq!(demodulate_from(&cfg, &x, 95, 1).unwrap().len(), 1);
    assert_eq!(demodulate(&cfg, &x, 79, 1).unwrap().len(), 1);
    assert!(demodulate(&cfg, &x, 80, 1).is_err());
    assert!(demodulate(&cfg, &x, 80, 0).unwrap().is_empty());
}

#[test]
fn backoff_is_a_phase_ramp() {
    let cfg = OfdmConfig::default();
    let mut rng = stream(1, &[4]);
    let grid = qpsk_grid(&cfg, 3, &mut rng);
    let x = modulate(&cfg, &grid).unwrap();
    let b = 5;
    let y = demodulate_from(&cfg, &x, cfg.cp_len - b, 3).unwrap();
    for (ys, xs) in y.iter().zip(&grid) {
        for ((k, yv), xv) in cfg.used_frequencies().iter().zip(ys).zip(xs) {
            let ramp = C64::from_polar(
                1.0,
                -2.0 * std::f64::consts::PI * (*k as f64) * b as f64 / cfg.n_fft as f64,
            );
            // f64 FFT and a phase of ≤ 2π·26·5/64 rad: rounding ~1e-15
            assert!((yv - xv * ramp).norm() < 1e-12);
        }
    }
}

/// AWGN of variance σ² per time sample shows up with variance σ² on every carrier
/// (unitary FFT), independent of the SNR; checked in aggregate to 2 % and per carrier to
/// 8 % over 4000 symbols.
#[test]
fn awgn_per_carrier_error_variance_matches_noise_variance() {
    let cfg = OfdmConfig::default();
    let n_sym = 4000;
    let mut rng = stream(1, &[5]);
    let grid = qpsk_grid(&cfg, n_sym, &mut rng);
    let x = modulate(&cfg, &grid).unwrap();
    for snr_db in [0.0, 10.0, 20.0, 30.0] {
        let sigma2 = 10f64.powf(-snr_db / 10.0); // unit-power carriers
        let rx = crate::waveform::impair::awgn(&x, sigma2, &mut rng).unwrap();
        let y = demodulate(&cfg, &rx, 0, n_sym).unwrap();
        let mut per_carrier = vec![0.0; cfg.n_used];
        for (ys, xs) in y.iter().zip(&grid) {
            for (i, (a, b)) in ys.iter().zip(xs).enumerate() {
                per_carrier[i] += (a - b).norm_sqr() / n_sym as f64;
            }
        }
        let total = per_carrier.iter().sum::<f64>() / cfg.n_used as f64;
        // Monte-Carlo: |noise|² is exponential, rel. SE 1/√(4000·52) = 0.22 % in aggregate
        // (2 % ≈ 9 SE) and 1/√4000 = 1.6 % per carrier (8 % ≈ 5 SE, 208 comparisons)
        assert!(
            (total / sigma2 - 1.0).abs() < 0.02,
            "snr {snr_db}: {total} vs {sigma2}"
        );
        for v in &per_carrier {
            assert!(
                (v / sigma2 - 1.0).abs() < 0.08,
                "snr {snr_db}: {v} vs {sigma2}"
            );
        }
    }
}
