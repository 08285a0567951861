//! Tests of the fading models, estimation and the MAC.

use super::*;
use crate::rng::stream;

#[test]
fn rayleigh_power_is_exponential_with_mean_one() {
    let mac = Mac::new(MacConfig {
        devices: 4,
        rx_antennas: 4,
        tx_antennas: 2,
        small_scale: SmallScale::Rayleigh,
        rx_correlation: 0.0,
        tx_correlation: 0.0,
    })
    .unwrap();
    let mut rng = stream(1, &[1]);
    let mut p = Vec::new();
    for _ in 0..5000 {
        for h in mac.small_scale(&mut rng) {
            p.extend(h.iter().map(|v| v.norm_sqr()));
        }
    }
    let n = p.len() as f64;
    let mean = p.iter().sum::<f64>() / n;
    // Monte-Carlo: Exp(1) has σ = 1, so 5 standard errors of the mean over n draws
    // (n = 5000·4·4·2 = 160 000 i.i.d. entries; was a bare 0.01 = 4 SE)
    assert!((mean - 1.0).abs() < 5.0 / n.sqrt(), "mean {mean}");
    // exponential: P(|h|² > x) = e^{−x}; check at x = 0.5, 1, 2, 3 (binomial 5σ)
    for x in [0.5f64, 1.0, 2.0, 3.0] {
        let frac = p.iter().filter(|&&v| v > x).count() as f64 / n;
        let want = (-x).exp();
        assert!(
            (frac - want).abs() < 5.0 * (want * (1.0 - want) / n).sqrt(),
            "x={x}: {frac} vs {want}"
        );
    }
}

#[test]
fn rician_k_factor_is_recovered_from_moments() {
    for k_db in [0.0f64, 6.0, 10.0] {
        let mac = Mac::new(MacConfig {
            devices: 1,
            rx_antennas: 1,
            tx_antennas: 1,
            small_scale: SmallScale::Rician {
                k_factor_db: k_db,
                aoa_deg: vec![20.0],
            },
            rx_correlation: 0.0,
            tx_correlation: 0.0,
        })
        .unwrap();
        let mut rng = stream(2, &[k_db as u64]);
        let s: Vec<f64> = (0..200_000)
            .map(|_| mac.small_scale(&mut rng)[0][(0, 0)].norm_sqr())
            .collect();
        let n = s.len() as f64;
        let m2 = s.iter().sum::<f64>() / n;
        let m4 = s.iter().map(|v| v * v).sum::<f64>() / n;
        // moment estimator: K = sqrt(2 m2² − m4) / (m2 − sqrt(2 m2² − m4))
        let a = (2.0 * m2 * m2 - m4).max(0.0).sqrt();
        let k_est = a / (m2 - a);
        let k = 10f64.powf(k_db / 10.0);
        // Monte-Carlo: Var|h|² = (1+2K)/(1+K)² ≤ 3/4, SE ≤ 0.0019 at n = 2e5: ≥ 5.2 SE
        assert!((m2 - 1.0).abs() < 0.01);
        // delta method on (m2, m4) with the Rician moments: rel. SE of K̂ is 1.16 % (0 dB),
        // 0.49 % (6 dB), 0.38 % (10 dB) at n = 2e5, so 0.08 is ≥ 6.9 SE
        assert!((k_est / k - 1.0).abs() < 0.08, "K {k} estimated {k_est}");
    }
}

#[test]
fn bessel_j0_matches_tables() {
    // Abramowitz & Stegun Table 9.1 and its zeros
    for (x, want) in [
        (0.0, 1.0),
        (1.0, 0.7651976866),
        (2.0, 0.2238907791),
        (5.0, -0.1775967713),
        (10.0, -0.2459357645),
        (20.0, 0.1670246643),
    ] {
        // table values to 10 digits; bessel_j0's documented error < 1e-8 (the Hankel fit
        // beyond 8): 10× that
        assert!(
            (bessel_j0(x) - want).abs() < 1e-7,
            "J0({x}) = {}",
            bessel_j0(x)
        );
    }
    // the first zero to f64 digits; the power series is exact to rounding: the documented 1e-8
    assert!(bessel_j0(2.404825557695773).abs() < 1e-8);
}

#[test]
fn jakes_time_correlation_follows_j0() {
    let mac = Mac::new(MacConfig {
        devices: 200,
        rx_antennas: 4,
        tx_antennas: 1,
        small_scale: SmallScale::Rayleigh,
        rx_correlation: 0.0,
        tx_correlation: 0.0,
    })
    .unwrap();
    let fd = 100.0;
    for tau in [0.5e-3, 1e-3, 2e-3, 4e-3] {
        let mut rng = stream(3, &[(tau * 1e6) as u64]);
        let mut acc = C64::new(0.0, 0.0);
        let mut n = 0.0;
        for _ in 0..25 {
            let mut p =
                FadingProcess::new(&mac, TimeModel::Jakes { doppler_hz: fd }, &mut rng).unwrap();
            let h0: Vec<CMat> = p.at(0.0, &mut rng).to_vec();
            let h1: Vec<CMat> = p.at(tau, &mut rng).to_vec();
            for (a, b) in h0.iter().zip(&h1) {
                for (x, y) in a.iter().zip(b.iter()) {
                    acc += y * x.conj();
                    n += 1.0;
                }
            }
        }
        let rho = acc.re / n;
        let want = bessel_j0(2.0 * std::f64::consts::PI * fd * tau);
        // Monte-Carlo: n = 25·200·4 = 20 000 pairs, Var Re(y x*) = (1+ρ²)/2 ≤ 1, SE ≤ 0.0071:
        // 0.03 ≥ 4.2 SE
        assert!((rho - want).abs() < 0.03, "tau {tau}: {rho} vs {want}");
    }
}

#[test]
fn block_fading_is_constant_within_a_block_and_changes_across() {
    let mac = Mac::new(MacConfig {
        devices: 2,
        rx_antennas: 2,
        tx_antennas: 1,
        small_scale: SmallScale::Rayleigh,
        rx_correlation: 0.0,
        tx_correlation: 0.0,
    })
    .unwrap();
    let mut rng = stream(4, &[]);
    let mut p = FadingProcess::new(
        &mac,
        TimeModel::Block {
            coherence_time_s: 1e-3,
        },
        &mut rng,
    )
    .unwrap();
    let a = p.at(0.1e-3, &mut rng).to_vec();
    let b = p.at(0.9e-3, &mut rng).to_vec();
    let c = p.at(1.1e-3, &mut rng).to_vec();
    assert_eq!(a, b);
    assert_ne!(b, c);
}

#[test]
fn path_loss_slope_and_noise_power() {
    let ls = LargeScale::LogDistance {
        pl0_db: 40.0,
        d0_m: 1.0,
        exponent: 3.5,
        shadowing_db: 0.0,
        distances_m: vec![10.0, 100.0],
    };
    let g = ls.gains(2, &mut stream(5, &[])).unwrap();
    let slope = 10.0 * (g[0] / g[1]).log10();
    // closed form, exact up to f64 rounding of powf/log10 (~1e-14)
    assert!((slope - 35.0).abs() < 1e-9, "10·n dB per decade: {slope}");
    // with shadowing: regression of 2000 draws recovers the exponent
    let d: Vec<f64> = (0..2000).map(|i| 5.0 + i as f64 * 0.25).collect();
    let ls = LargeScale::LogDistance {
        pl0_db: 40.0,
        d0_m: 1.0,
        exponent: 3.0,
        shadowing_db: 6.0,
        distances_m: d.clone(),
    };
    let g = ls.gains(d.len(), &mut stream(6, &[])).unwrap();
    let xs: Vec<f64> = d.iter().map(|v| v.log10()).collect();
    let ys: Vec<f64> = g.iter().map(|v| -10.0 * v.log10()).collect();
    let (mx, my) = (
        xs.iter().sum::<f64>() / xs.len() as f64,
        ys.iter().sum::<f64>() / ys.len() as f64,
    );
    let b = xs
        .iter()
        .zip(&ys)
        .map(|(x, y)| (x - mx) * (y - my))
        .sum::<f64>()
        / xs.iter().map(|x| (x - mx).powi(2)).sum::<f64>();
    // Monte-Carlo: least-squares slope SE = σ_sh/√Σ(x−x̄)² = 6 dB/√297 → 0.035 in the
    // exponent; 0.15 ≈ 4.3 SE
    assert!(
        (b / 10.0 - 3.0).abs() < 0.15,
        "fitted exponent {}",
        b / 10.0
    );
    // 3GPP InH LOS at 10 m, 3.5 GHz: 32.4 + 17.3 + 20·log10(3.5) (closed form, f64 rounding)
    assert!(
        (Scenario::InhLos.path_loss_db(10.0, 3.5) - (32.4 + 17.3 + 20.0 * 3.5f64.log10())).abs()
            < 1e-9
    );
    assert!(
        Scenario::UmiNlos.path_loss_db(100.0, 3.5) >= Scenario::UmiLos.path_loss_db(100.0, 3.5)
    );
    // −174 dBm/Hz + 70 dB (10 MHz) + 7 dB (closed form, f64 rounding)
    assert!((noise_power_dbm(10e6, 7.0).unwrap() - (-97.0)).abs() < 1e-9);
}

#[test]
fn spatial_correlation_is_exponential() {
    let mac = Mac::new(MacConfig {
        devices: 1,
        rx_antennas: 3,
        tx_antennas: 1,
        small_scale: SmallScale::Rayleigh,
        rx_correlation: 0.7,
        tx_correlation: 0.0,
    })
    .unwrap();
    let mut rng = stream(7, &[]);
    let mut c01 = C64::new(0.0, 0.0);
    let mut c02 = C64::new(0.0, 0.0);
    let n = 60_000;
    for _ in 0..n {
        let h = &mac.small_scale(&mut rng)[0];
        c01 += h[(0, 0)] * h[(1, 0)].conj();
        c02 += h[(0, 0)] * h[(2, 0)].conj();
    }
    // Monte-Carlo: Var Re(h_i h_j*) = (1+ρ²)/2 over n = 60 000 draws: SE 0.0035 (ρ = 0.7)
    // and 0.0032 (ρ = 0.49), so 0.02 ≥ 5.7 SE
    assert!((c01.re / n as f64 - 0.7).abs() < 0.02);
    assert!((c02.re / n as f64 - 0.49).abs() < 0.02);
}

#[test]
fn invalid_parameters_are_errors() {
    let base = MacConfig {
        devices: 2,
        rx_antennas: 2,
        tx_antennas: 1,
        small_scale: SmallScale::Rayleigh,
        rx_correlation: 0.0,
        tx_correlation: 0.0,
    };
    assert!(Mac::new(MacConfig {
        devices: 0,
        ..base.clone()
    })
    .is_err());
    assert!(Mac::new(MacConfig {
        rx_antennas: 0,
        ..base.clone()
    })
    .is_err());
    assert!(Mac::new(MacConfig {
        rx_correlation: 1.5,
        ..base.clone()
    })
    .is_err());
    assert!(Mac::new(MacConfig {
        small_scale: SmallScale::Rician {
            k_factor_db: f64::NAN,
            aoa_deg: vec![]
        },
        ..base.clone()
    })
    .is_err());
    assert!(noise_power_dbm(-1.0, 5.0).is_err());
    assert!(noise_power_dbm(f64::NAN, 5.0).is_err());
    assert!(pilot_error_var(0, 10.0).is_err());
    let ls = LargeScale::LogDistance {
        pl0_db: 40.0,
        d0_m: 1.0,
        exponent: 3.0,
        shadowing_db: 0.0,
        distances_m: vec![10.0],
    };
    assert!(ls.gains(2, &mut stream(0, &[])).is_err(), "length mismatch");
    let ls = LargeScale::LogDistance {
        pl0_db: 40.0,
        d0_m: 1.0,
        exponent: 3.0,
        shadowing_db: 0.0,
        distances_m: vec![-1.0],
    };
    assert!(ls.gains(1, &mut stream(0, &[])).is_err());
    let toml_like = r#"{"devices": 2, "rx_antennas": 4, "small_scale": {"model": "rician", "k_factor_db": 3.0}, "bogus": 1}"#;
    assert!(
        serde_json::from_str::<MacConfig>(toml_like).is_err(),
        "unknown keys are errors"
    );
}
