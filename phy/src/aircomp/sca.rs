//! The SCA design (successive convex approximation of the single-stream ZF receive beamformer),
//! public as [`sca()`] (called `fast` before; the CLI and TOML name is `sca` too).

use super::zf::top_eigenvectors;
use super::{
    keep_best, mse, refine_zf_directions, refine_zf_directions_warm, scale_to_budgets,
    zero_forcing, zf_precoders, zf_with_directions, AirCompError, Problem, ReceiveDirection,
    Transceiver,
};
use crate::{CMat, C64};

/// The SCA design: a single-stream design of near-SDR quality without an SDP: successive convex
/// approximation of `min ‖a‖² s.t. aᴴQ_ka ≥ c_k` (Q_k = H_kH_kᴴ, c_k = σ_k²/P_k). Each step
/// replaces aᴴQ_ka by its tangent lower bound at the current point, `2Re(a_tᴴQ_ka) − a_tᴴQ_ka_t`,
/// and solves the resulting minimum-norm problem exactly in its dual (coordinate ascent over K
/// multipliers); every iterate is feasible and the MSE never increases. Starts from ZF (eigen).
///
/// For L > 1 streams: the best ZF design (eigen or sum directions) refined by
/// [`refine_zf_directions`].
pub fn sca(p: &Problem, iterations: usize) -> Result<Transceiver, AirCompError> {
    p.validate()?;
    if p.streams != 1 {
        return Ok(refine_zf_directions(p, multi_stream_start(p)?, iterations));
    }
    let q: Vec<CMat> = p.channels.iter().map(|h| h * h.adjoint()).collect();
    let c: Vec<f64> = p
        .signal_var
        .iter()
        .zip(p.power)
        .map(|(s, pw)| s / pw)
        .collect();
    let start = zero_forcing(p, ReceiveDirection::Eigen)?;
    let mut a = start.receive_beamformer.clone();
    let mut best = a.norm_squared();
    let k = q.len();
    for _ in 0..iterations.max(1) {
        // halfspaces Re(g_kᴴ a) ≥ d_k
        let g: Vec<CMat> = q.iter().map(|qk| qk * &a * C64::new(2.0, 0.0)).collect();
        let d: Vec<f64> = q
            .iter()
            .zip(&c)
            .map(|(qk, &ck)| ck + (a.adjoint() * qk * &a)[(0, 0)].re)
            .collect();
        let gram: Vec<Vec<f64>> = (0..k)
            .map(|i| {
                (0..k)
                    .map(|j| (g[i].adjoint() * &g[j])[(0, 0)].re)
                    .collect()
            })
            .collect();
        let mut lambda = vec![0.0f64; k];
        for _sweep in 0..300 {
            let mut change = 0.0f64;
            for j in 0..k {
                if gram[j][j] <= 0.0 {
                    continue;
                }
                let others: f64 = (0..k)
                    .filter(|&i| i != j)
                    .map(|i| lambda[i] * gram[j][i])
                    .sum();
                let new = ((d[j] - 0.5 * others) / (0.5 * gram[j][j])).max(0.0);
                change = change.max((new - lambda[j]).abs());
                lambda[j] = new;
            }
            if change < 1e-12 {
                break;
            }
        }
        let mut next = CMat::zeros(a.nrows(), 1);
        for (l, gk) in lambda.iter().zip(&g) {
            next += gk * C64::new(0.5 * l, 0.0);
        }
        let Some(next) = scale_to_budgets(&next, p.channels, &c) else {
            break;
        };
        let n2 = next.norm_squared();
        if n2 >= best * (1.0 - 1e-10) {
            break;
        }
        best = n2;
        a = next;
    }
    let b = zf_precoders(p, &a);
    let analytic_mse = mse(p, &a, &b);
    Transceiver {
        receive_beamformer: a,
        precoders: b,
        analytic_mse,
    }
    .finite("SCA")
}

/// The best zero-forcing start for L > 1 streams: the eigen- and sum-directions, and the
/// principal directions of `Σ_k Q_k/‖H_k‖²_F` (every device's channel weighted equally, so
/// that a weak device's subspace is not left out, as the plain eigen-directions do when a few
/// strong line-of-sight channels dominate Σ_k Q_k).
pub(crate) fn multi_stream_start(p: &Problem) -> Result<Transceiver, AirCompError> {
    let nr = p.channels[0].nrows();
    let mut balanced = CMat::zeros(nr, nr);
    for h in p.channels {
        let n2 = h.norm_squared();
        if n2 > 0.0 {
            balanced.gemm(C64::new(1.0 / n2, 0.0), h, &h.adjoint(), C64::new(1.0, 0.0));
        }
    }
    let candidates = [
        zero_forcing(p, ReceiveDirection::Eigen),
        zero_forcing(p, ReceiveDirection::SumDirections),
        zf_with_directions(p, &top_eigenvectors(&balanced, p.streams)),
    ];
    let mut best: Option<Transceiver> = None;
    let mut first_err = None;
    for c in candidates {
        match c {
            Ok(t) => keep_best(&mut best, t),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    best.ok_or_else(|| first_err.expect("three candidates"))
}

/// [`sca()`] warm-started from the receive directions `previous` of an earlier design on the
/// same channel (the AP redesigns for every token's variances while the channel holds still
/// over a coherence block): for L > 1 the ZF design along `previous` refined by
/// [`refine_zf_directions_warm`], falling back to the cold [`sca()`] when `previous` does not
/// fit or cannot serve a device; for L = 1 the cold design (its iterations are cheap).
pub fn sca_warm(
    p: &Problem,
    iterations: usize,
    previous: &CMat,
) -> Result<Transceiver, AirCompError> {
    p.validate()?;
    let fits = previous.nrows() == p.channels[0].nrows() && previous.ncols() == p.streams;
    if p.streams == 1 || !fits {
        return sca(p, iterations);
    }
    match zf_with_directions(p, previous) {
        Ok(start) => Ok(refine_zf_directions_warm(p, start, iterations)),
        Err(_) => sca(p, iterations),
    }
}
