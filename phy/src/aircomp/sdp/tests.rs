use super::*;
use crate::channel::cn_matrix;
use crate::rng::stream;

/// n = 1: min m s.t. m|h_k|² ≥ c_k has the closed form m* = max_k c_k/|h_k|².
#[test]
fn scalar_case_matches_closed_form() {
    for seed in 0..20 {
        let mut rng = stream(70, &[seed]);
        let k = 1 + seed as usize % 7;
        let h: Vec<CMat> = (0..k)
            .map(|_| cn_matrix(1, 1 + seed as usize % 3, &mut rng))
            .collect();
        let c: Vec<f64> = (0..k).map(|i| 0.3 + i as f64).collect();
        let exact = h
            .iter()
            .zip(&c)
            .map(|(hk, ck)| ck / hk.norm_squared())
            .fold(0.0, f64::max);
        let sol = solve(&h, &c).unwrap();
        assert!(sol.dual <= exact * (1.0 + 1e-12) && exact <= sol.primal * (1.0 + 1e-12));
        assert!(sol.rel_gap() <= GAP_TOL);
    }
}

/// K = 1: min tr M s.t. tr(M Q) ≥ c has value c/λ_max(Q) (M = c/λ·uuᴴ).
#[test]
fn one_device_matches_the_top_eigenvalue() {
    for seed in 0..10 {
        let mut rng = stream(71, &[seed]);
        let (nr, nt) = (2 + seed as usize, 1 + seed as usize % 4);
        let h = vec![cn_matrix(nr, nt, &mut rng)];
        let q = &h[0] * h[0].adjoint();
        let lmax = q
            .symmetric_eigenvalues()
            .iter()
            .cloned()
            .fold(0.0, f64::max);
        let exact = 2.5 / lmax;
        let sol = solve(&h, &[2.5]).unwrap();
        assert!(
            sol.dual <= exact * (1.0 + 1e-12) && exact <= sol.primal * (1.0 + 1e-12),
            "seed {seed}: [{}, {}] vs {exact}",
            sol.dual,
            sol.primal
        );
    }
}

/// Our Cholesky is a definiteness test; nalgebra's complex one is not (it takes the complex
/// square root of a negative pivot), which is why we have our own.
#[test]
fn cholesky_rejects_indefinite_and_factors_definite_matrices() {
    let mut rng = stream(73, &[0]);
    let g = cn_matrix(6, 6, &mut rng);
    let pd = &g * g.adjoint() + CMat::identity(6, 6) * C64::new(0.1, 0.0);
    let l = cholesky(&pd).expect("positive definite");
    assert!((&l * l.adjoint() - &pd).norm() <= 1e-12 * pd.norm());
    assert!((0..6).all(|i| l[(i, i)].im == 0.0 && l[(i, i)].re > 0.0));
    // one eigenvalue pushed below zero: diag(λ) in a random unitary basis
    let q = pd.clone().qr().q();
    let lam = [3.0, 2.0, 1.0, 0.5, 0.25, -1e-3];
    let d = CMat::from_fn(6, 6, |i, j| {
        if i == j {
            C64::new(lam[i], 0.0)
        } else {
            C64::new(0.0, 0.0)
        }
    });
    let indefinite = &q * d * q.adjoint();
    assert!(cholesky(&indefinite).is_none());
    assert!(
        indefinite.clone().cholesky().is_some(),
        "nalgebra's complex Cholesky now rejects indefinite input: ours could go"
    );
}

#[test]
fn zero_channel_is_infeasible_and_zero_targets_give_zero() {
    let mut rng = stream(72, &[0]);
    let h = vec![cn_matrix(4, 1, &mut rng), CMat::zeros(4, 1)];
    let e = solve(&h, &[1.0, 1.0]).unwrap_err().to_string();
    assert!(e.contains("device 1") && e.contains("zero"), "{e}");
    // the zero channel with a zero target is no constraint at all
    let sol = solve(&h, &[1.0, 0.0]).unwrap();
    assert!(sol.y[1] == 0.0 && sol.rel_gap() <= GAP_TOL);
    let sol = solve(&h, &[0.0, 0.0]).unwrap();
    assert_eq!((sol.primal, sol.dual), (0.0, 0.0));
    assert!(solve(&h, &[1.0, -1.0]).is_err());
    assert!(solve(&h, &[1.0]).is_err());
}
