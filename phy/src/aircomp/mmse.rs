//! MMSE transceivers by alternating optimisation of the receive beamformer and the precoders.

use super::{bad, mse, sca, zero_forcing, AirCompError, Problem, ReceiveDirection, Transceiver};
use crate::{CMat, C64};

/// MMSE transceivers (any number of streams) by alternating optimisation from the best ZF
/// design (eigen, sum-direction or [`sca()`](super::sca())); see [`refine_mmse`].
pub fn mmse(p: &Problem, iterations: usize) -> Result<Transceiver, AirCompError> {
    p.validate()?;
    let mut start = zero_forcing(p, ReceiveDirection::Eigen)?;
    let others = [
        zero_forcing(p, ReceiveDirection::SumDirections)?,
        sca(p, 100)?,
    ];
    for t in others {
        if t.analytic_mse < start.analytic_mse {
            start = t;
        }
    }
    refine_mmse(p, start, iterations)
}

/// Alternating MMSE optimisation from `start`. For fixed A each precoder is the power-limited
/// best response `B_k = (FᴴF + μ_k I)⁻¹Fᴴ`, `F = AᴴH_k`, with μ_k ≥ 0 the smallest value meeting
/// `σ_k² tr(B_kB_kᴴ) ≤ P_k` (found by bisection on the singular values of F); for fixed {B_k},
/// A is the linear MMSE combiner `A = (Σ_k σ_k² H_kB_kB_kᴴH_kᴴ + σ² I)⁻¹ Σ_k σ_k² H_kB_k`.
/// Each step cannot increase the MSE, so the result is never worse than `start`.
pub fn refine_mmse(
    p: &Problem,
    start: Transceiver,
    iterations: usize,
) -> Result<Transceiver, AirCompError> {
    p.validate()?;
    if start.receive_beamformer.ncols() != p.streams
        || start.receive_beamformer.nrows() != p.channels[0].nrows()
        || start.precoders.len() != p.channels.len()
    {
        return bad("refine_mmse: the starting transceiver does not fit the problem");
    }
    let nr = p.channels[0].nrows();
    let l = p.streams;
    let mut a = start.receive_beamformer;
    let mut b = start.precoders;
    let mut best = mse(p, &a, &b);
    for _ in 0..iterations.max(1) {
        let nb: Vec<CMat> = p
            .channels
            .iter()
            .zip(p.signal_var.iter().zip(p.power))
            .map(|(h, (&s, &pw))| best_response_precoder(&(a.adjoint() * h), s, pw))
            .collect();
        let mut cov = CMat::identity(nr, nr) * C64::new(p.noise_var, 0.0);
        let mut cross = CMat::zeros(nr, l);
        for ((h, bk), &s) in p.channels.iter().zip(&nb).zip(p.signal_var) {
            let hb = h * bk;
            cov += &hb * hb.adjoint() * C64::new(s, 0.0);
            cross += hb * C64::new(s, 0.0);
        }
        let na = match cov.try_inverse() {
            Some(ci) => ci * cross,
            None => break,
        };
        let m = mse(p, &na, &nb);
        if m.is_nan() || m > best * (1.0 + 1e-12) {
            break;
        }
        let done = (best - m) <= 1e-12 * best;
        a = na;
        b = nb;
        best = m;
        if done {
            break;
        }
    }
    Transceiver {
        receive_beamformer: a,
        precoders: b,
        analytic_mse: best,
    }
    .finite("MMSE")
}

/// `argmin_B σ²‖FB − I‖²_F s.t. σ² ‖B‖²_F ≤ P` for F (L × N_t): with F = U S Vᴴ,
/// `B = V diag(s_i/(s_i² + μ)) Uᴴ`, μ = 0 when the pseudo-inverse fits the budget.
pub(super) fn best_response_precoder(f: &CMat, sigma2: f64, power: f64) -> CMat {
    let (l, nt) = f.shape();
    if sigma2 == 0.0 || f.norm() == 0.0 {
        return CMat::zeros(nt, l);
    }
    let svd = f.clone().svd(true, true);
    let (Some(u), Some(vt)) = (svd.u, svd.v_t) else {
        return CMat::zeros(nt, l);
    };
    let sv: Vec<f64> = svd.singular_values.iter().copied().collect();
    let smax = sv.iter().cloned().fold(0.0, f64::max);
    let tol = smax * 1e-12;
    let budget = power / sigma2;
    let pw = |mu: f64| -> f64 {
        sv.iter()
            .filter(|&&s| s > tol)
            .map(|&s| (s / (s * s + mu)).powi(2))
            .sum()
    };
    let mu = if pw(0.0) <= budget {
        0.0
    } else {
        let (mut lo, mut hi) = (0.0f64, smax * smax);
        while pw(hi) > budget {
            hi *= 4.0;
        }
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if pw(mid) > budget {
                lo = mid;
            } else {
                hi = mid;
            }
            if hi - lo <= 1e-14 * hi {
                break;
            }
        }
        hi
    };
    let r = sv.len();
    let d = CMat::from_fn(r, r, |i, j| {
        if i == j && sv[i] > tol {
            C64::new(sv[i] / (sv[i] * sv[i] + mu), 0.0)
        } else {
            C64::new(0.0, 0.0)
        }
    });
    vt.adjoint() * d * u.adjoint()
}
