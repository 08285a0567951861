//! Tests of the device-to-device channels.

use super::*;
use crate::rng::stream;

#[test]
#[allow(clippy::needless_range_loop)]
fn d2d_links_are_reciprocal_and_follow_the_path_loss() {
    let cfg = D2dConfig {
        positions_m: vec![[0.0, 0.0], [10.0, 0.0], [0.0, 100.0], [30.0, 40.0]],
        antennas: 2,
        small_scale: SmallScale::Rayleigh,
        large_scale: LargeScale::LogDistance {
            pl0_db: 40.0,
            d0_m: 1.0,
            exponent: 3.0,
            shadowing_db: 0.0,
            distances_m: vec![],
        },
    };
    let mut rng = stream(90, &[]);
    let draws = 4000;
    let mut power = vec![vec![0.0; 4]; 4];
    for _ in 0..draws {
        let l = cfg.realise(&mut rng).unwrap();
        for i in 0..4 {
            assert_eq!(l.h[i][i].norm(), 0.0);
            for j in 0..4 {
                assert_eq!(l.h[i][j], l.h[j][i].transpose());
                power[i][j] += l.h[i][j].norm_squared() / 4.0 / draws as f64;
            }
        }
    }
    // mean entry power = path gain 10^(−(40 + 30 log10 d)/10)
    for (i, j, d) in [
        (0usize, 1usize, 10.0f64),
        (0, 2, 100.0),
        (0, 3, 50.0),
        (1, 3, (400.0f64 + 1600.0).sqrt()),
    ] {
        let want = 10f64.powf(-(40.0 + 30.0 * d.log10()) / 10.0);
        // Monte-Carlo: mean of 4000·4 Exp entries, rel. SE 1/√16 000 = 0.79 %: 0.05 ≈ 6.3 SE
        assert!(
            (power[i][j] / want - 1.0).abs() < 0.05,
            "{i}-{j}: {} vs {want}",
            power[i][j]
        );
    }
    // the slope: 10× the distance costs 30 dB
    let slope = 10.0 * (power[0][1] / power[0][2]).log10();
    // Monte-Carlo: 4.34 dB·√2·0.79 % = 0.049 dB SE of the difference: 0.5 dB ≈ 10 SE
    assert!((slope - 30.0).abs() < 0.5, "{slope}");
    // Rician with K → ∞ is the deterministic line of sight, unit power per entry
    let los = D2dConfig {
        small_scale: SmallScale::Rician {
            k_factor_db: 80.0,
            aoa_deg: vec![],
        },
        large_scale: LargeScale::Unit,
        ..cfg.clone()
    };
    let l = los.realise(&mut rng).unwrap();
    // the scattered part has variance 1/(1+K) = 1e-8, σ = 1e-4 per entry: 1e-3 is 10 σ
    assert!(l.h[0][3].iter().all(|v| (v.norm() - 1.0).abs() < 1e-3));
    // bad input
    let one = D2dConfig {
        positions_m: vec![[0.0, 0.0]],
        ..cfg.clone()
    };
    assert!(one.realise(&mut rng).is_err());
    let nan = D2dConfig {
        positions_m: vec![[0.0, 0.0], [f64::NAN, 1.0]],
        ..cfg.clone()
    };
    assert!(nan.realise(&mut rng).is_err());
    let fixed = D2dConfig {
        large_scale: LargeScale::Fixed {
            gains_db: vec![0.0; 5],
        },
        ..cfg
    };
    assert!(fixed.realise(&mut rng).is_err()); // 4 devices have 6 pairs
}
