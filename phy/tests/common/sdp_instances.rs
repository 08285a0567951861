//! The SDR cross-check's random instances, shared by `sdp_crosscheck.rs` (against clarabel,
//! `--features clarabel`) and `sdp_reference.rs` (against the values clarabel gave once, in the
//! default suite). An instance is a function of its index alone, so both regenerate the same
//! channels: K 2–16 devices, N_r 1–32, N_t 1–4, Rayleigh or Rician fading, a spread of
//! path losses up to 60 dB (ill-conditioned), near-rank-deficient channels (every device in a
//! common 1- or 2-dimensional subspace plus 1e-6 noise), unequal power budgets and signal
//! variances.

use airinfer_phy::channel::cn_matrix;
use airinfer_phy::rng::stream;
use airinfer_phy::{CMat, C64};
use rand::Rng;

/// One instance: `min tr M s.t. tr(M H_kH_kᴴ) ≥ c_k` with `c_k = σ_k²/P_k`.
pub struct Instance {
    pub index: u64,
    pub kind: &'static str,
    pub h: Vec<CMat>,
    pub c: Vec<f64>,
}

impl Instance {
    pub fn describe(&self) -> String {
        format!(
            "instance {} ({}, K = {}, N_r = {}, N_t = {})",
            self.index,
            self.kind,
            self.h.len(),
            self.h[0].nrows(),
            self.h[0].ncols()
        )
    }
}

const KINDS: [&str; 4] = [
    "rayleigh",
    "rician",
    "ill-conditioned",
    "near-rank-deficient",
];

/// Instance `index` (deterministic).
pub fn instance(index: u64) -> Instance {
    let mut rng = stream(0x5d9, &[index]);
    let k = rng.random_range(2..=16usize);
    let nr = rng.random_range(1..=32usize);
    let nt = rng.random_range(1..=4usize);
    let kind = KINDS[(index % 4) as usize];
    let mut h: Vec<CMat> = match kind {
        "rician" => {
            // K-factor 0–10 dB, a line-of-sight term a_r(θ)a_t(φ)ᴴ per device
            (0..k)
                .map(|_| {
                    let kf = 10f64.powf(rng.random_range(0.0..1.0));
                    let (th, ph): (f64, f64) =
                        (rng.random_range(-1.5..1.5), rng.random_range(-1.5..1.5));
                    let los = CMat::from_fn(nr, nt, |i, j| {
                        C64::from_polar(
                            1.0,
                            std::f64::consts::PI * (i as f64 * th.sin() - j as f64 * ph.sin()),
                        )
                    });
                    let nlos = cn_matrix(nr, nt, &mut rng);
                    los * C64::new((kf / (kf + 1.0)).sqrt(), 0.0)
                        + nlos * C64::new((1.0 / (kf + 1.0)).sqrt(), 0.0)
                })
                .collect()
        }
        "near-rank-deficient" => {
            let r = rng.random_range(1..=2usize).min(nr);
            let basis = cn_matrix(nr, r, &mut rng);
            (0..k)
                .map(|_| {
                    &basis * cn_matrix(r, nt, &mut rng)
                        + cn_matrix(nr, nt, &mut rng) * C64::new(1e-6, 0.0)
                })
                .collect()
        }
        _ => (0..k).map(|_| cn_matrix(nr, nt, &mut rng)).collect(),
    };
    if kind == "ill-conditioned" {
        // path losses spread over 0–60 dB
        for hk in &mut h {
            let loss_db: f64 = rng.random_range(0.0..60.0);
            *hk *= C64::new(10f64.powf(-loss_db / 20.0), 0.0);
        }
    }
    // unequal signal variances and power budgets
    let c: Vec<f64> = (0..k)
        .map(|_| {
            let var: f64 = rng.random_range(0.2..5.0);
            let power: f64 = rng.random_range(0.1..10.0);
            var / power
        })
        .collect();
    Instance { index, kind, h, c }
}

/// Check a solution's certificate independently of the solver: M Hermitian PSD, every
/// constraint met, y ≥ 0 with `I − Σ y_k Q_k` PSD (smallest eigenvalue), the objectives
/// recomputed, and the relative gap. Returns the recomputed (primal, dual).
pub fn check_certificate(inst: &Instance, m: &CMat, y: &[f64], gap_tol: f64) -> (f64, f64) {
    let n = m.nrows();
    let what = inst.describe();
    assert!(
        (m - m.adjoint()).norm() <= 1e-12 * m.norm(),
        "{what}: M not Hermitian"
    );
    let eig = m.clone().symmetric_eigenvalues();
    let top = eig.iter().cloned().fold(0.0, f64::max);
    assert!(
        eig.iter().all(|&l| l >= -1e-12 * top),
        "{what}: M has eigenvalue {:?} < 0",
        eig.iter().cloned().fold(f64::INFINITY, f64::min)
    );
    for (k, (hk, ck)) in inst.h.iter().zip(&inst.c).enumerate() {
        let t: f64 = {
            let x = hk.adjoint() * m * hk;
            (0..x.nrows()).map(|i| x[(i, i)].re).sum()
        };
        assert!(
            t >= ck * (1.0 - 1e-12),
            "{what}: constraint {k}: {t} < {ck}"
        );
    }
    assert!(
        y.iter().all(|&v| v >= 0.0),
        "{what}: y has a negative entry"
    );
    let mut s = CMat::identity(n, n);
    for (hk, &yk) in inst.h.iter().zip(y) {
        s -= hk * hk.adjoint() * C64::new(yk, 0.0);
    }
    let smin = s
        .symmetric_eigenvalues()
        .iter()
        .cloned()
        .fold(f64::INFINITY, f64::min);
    // S is verified positive definite by Cholesky in the solver; an eigenvalue solver's own
    // rounding is ~1e-15·‖Σ y_k Q_k‖ ≤ 1e-15·n
    assert!(
        smin >= -1e-12,
        "{what}: I − Σ y_k Q_k has eigenvalue {smin}"
    );
    let primal: f64 = (0..n).map(|i| m[(i, i)].re).sum();
    let dual: f64 = y.iter().zip(&inst.c).map(|(a, b)| a * b).sum();
    assert!(
        (primal - dual) <= gap_tol * primal,
        "{what}: relative gap {} > {gap_tol}",
        (primal - dual) / primal
    );
    (primal, dual)
}
