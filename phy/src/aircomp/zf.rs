//! Zero-forcing designs: inversion along principal eigen-directions or the sum of the devices'
//! channel directions, along any given directions, the single-stream ZF precoders, and a local
//! refinement of the receive directions.

use super::{bad, mse, AirCompError, Problem, ReceiveDirection, Transceiver};
use crate::{CMat, C64};

/// Top-`l` eigenvectors of a Hermitian matrix (columns, by decreasing eigenvalue).
pub(crate) fn top_eigenvectors(m: &CMat, l: usize) -> CMat {
    let eig = m.clone().symmetric_eigen();
    let mut idx: Vec<usize> = (0..eig.eigenvalues.len()).collect();
    idx.sort_by(|&i, &j| eig.eigenvalues[j].total_cmp(&eig.eigenvalues[i]));
    CMat::from_fn(m.nrows(), l, |r, c| eig.eigenvectors[(r, idx[c])])
}

/// Zero-forcing inversion: `A = c·G` with orthonormal G (N_r × L), `B_k = (AᴴH_k)ᴴ(AᴴH_kH_kᴴA)⁻¹`
/// so that AᴴH_kB_k = I; the scale `c² = max_k σ_k² tr((GᴴH_kH_kᴴG)⁻¹) / P_k` is the smallest that
/// meets every budget, which minimises the remaining MSE `σ² c² L`.
pub fn zero_forcing(p: &Problem, dir: ReceiveDirection) -> Result<Transceiver, AirCompError> {
    p.validate()?;
    let l = p.streams;
    let nr = p.channels[0].nrows();
    let gram = || -> CMat {
        let mut acc = CMat::zeros(nr, nr);
        for h in p.channels {
            acc.gemm(C64::new(1.0, 0.0), h, &h.adjoint(), C64::new(1.0, 0.0));
        }
        acc
    };
    let g = match dir {
        ReceiveDirection::Eigen => top_eigenvectors(&gram(), l),
        ReceiveDirection::SumDirections => {
            let mut sum = CMat::zeros(nr, 1);
            for h in p.channels {
                // principal direction of H_k: h/‖h‖ for one transmit antenna, else the top eigenvector
                let u = if h.ncols() == 1 && h.norm() > 0.0 {
                    h / C64::new(h.norm(), 0.0)
                } else {
                    top_eigenvectors(&(h * h.adjoint()), 1)
                };
                // align phases so that directions add up
                let ph = u[(0, 0)];
                let rot = if ph.norm() > 0.0 {
                    ph.conj() / ph.norm()
                } else {
                    C64::new(1.0, 0.0)
                };
                sum += u * rot;
            }
            let n = sum.norm();
            let first = if n > 0.0 {
                sum / C64::new(n, 0.0)
            } else {
                top_eigenvectors(&gram(), 1)
            };
            if l == 1 {
                first
            } else {
                // complete with eigen-directions, orthonormalised
                let mut cols = vec![first];
                let e = top_eigenvectors(&gram(), nr);
                for c in 0..nr {
                    if cols.len() == l {
                        break;
                    }
                    let mut v: CMat = CMat::from_fn(nr, 1, |r, _| e[(r, c)]);
                    for u in &cols {
                        let proj = (u.adjoint() * &v)[(0, 0)];
                        v -= u * proj;
                    }
                    let n = v.norm();
                    if n > 1e-9 {
                        cols.push(v / C64::new(n, 0.0));
                    }
                }
                CMat::from_fn(nr, l, |r, c| cols[c][(r, 0)])
            }
        }
    };
    zf_with_directions(p, &g)
}

/// Zero-forcing transceiver along given receive directions G (N_r × L, any scaling):
/// `A = c·G`, `B_k = (1/c)(GᴴH_k)ᴴ(GᴴH_kH_kᴴG)⁻¹` with the smallest `c² = max_k σ_k² tr((GᴴH_kH_kᴴG)⁻¹)/P_k`
/// that meets every budget; MSE `σ² c² ‖G‖²_F`.
pub fn zf_with_directions(p: &Problem, g: &CMat) -> Result<Transceiver, AirCompError> {
    let l = g.ncols();
    if l == 1 {
        return zf_single_stream(p, g);
    }
    let mut c2: f64 = 0.0;
    let mut inv = Vec::with_capacity(p.channels.len());
    for (i, h) in p.channels.iter().enumerate() {
        let gh = g.adjoint() * h; // L × N_t
        let m = &gh * gh.adjoint();
        let mi = m.clone().try_inverse().ok_or_else(|| AirCompError::Invalid(format!("device {i}: its channel is rank-deficient along the receive directions (AᴴH_kH_kᴴA singular)")))?;
        let t: f64 = (0..l).map(|j| mi[(j, j)].re).sum();
        if !(t.is_finite() && t > 0.0) {
            return bad(format!(
                "device {i}: its channel is rank-deficient along the receive directions"
            ));
        }
        c2 = c2.max(p.signal_var[i] * t / p.power[i]);
        inv.push((gh, mi));
    }
    if c2 <= 0.0 {
        c2 = 1e-30; // every signal variance is zero: any tiny scale works
    }
    let c = c2.sqrt();
    let a = g * C64::new(c, 0.0);
    let b: Vec<CMat> = inv
        .iter()
        .map(|(gh, mi)| gh.adjoint() * mi * C64::new(1.0 / c, 0.0))
        .collect();
    let analytic_mse = mse(p, &a, &b);
    Transceiver {
        receive_beamformer: a,
        precoders: b,
        analytic_mse,
    }
    .finite("zero-forcing")
}

/// [`zf_with_directions`] for one stream: `t_k = 1/|gᴴh_k|²` with h_k = H_k's only column when
/// N_t = 1, `b_k = (gᴴH_k)ᴴ/(c |gᴴH_k|²)` in general.
fn zf_single_stream(p: &Problem, g: &CMat) -> Result<Transceiver, AirCompError> {
    let mut c2: f64 = 0.0;
    let mut gh = Vec::with_capacity(p.channels.len());
    for (i, h) in p.channels.iter().enumerate() {
        let row = g.adjoint() * h; // 1 × N_t
        let n2 = row.norm_squared();
        if !n2.is_finite() {
            return bad(format!(
                "device {i}: |aᴴH_k|² overflows f64 (channel coefficients too large to represent)"
            ));
        }
        if n2 <= 0.0 {
            return bad(format!(
                "device {i}: its channel is orthogonal to the receive direction (aᴴH_k = 0)"
            ));
        }
        c2 = c2.max(p.signal_var[i] / (n2 * p.power[i]));
        gh.push((row, n2));
    }
    if c2 <= 0.0 {
        c2 = 1e-30;
    }
    let c = c2.sqrt();
    let a = g * C64::new(c, 0.0);
    let b: Vec<CMat> = gh
        .iter()
        .map(|(row, n2)| row.adjoint() * C64::new(1.0 / (c * n2), 0.0))
        .collect();
    let analytic_mse = mse(p, &a, &b);
    Transceiver {
        receive_beamformer: a,
        precoders: b,
        analytic_mse,
    }
    .finite("zero-forcing")
}

/// Zero-forcing precoders `b_k = (aᴴH_k)ᴴ / ‖aᴴH_k‖²` for a single-stream receive beamformer.
pub fn zf_precoders(p: &Problem, a: &CMat) -> Vec<CMat> {
    p.channels
        .iter()
        .map(|h| {
            let ah = a.adjoint() * h;
            let g = ah.norm_squared();
            if g > 0.0 {
                ah.adjoint() * C64::new(1.0 / g, 0.0)
            } else {
                CMat::zeros(h.ncols(), 1)
            }
        })
        .collect()
}

/// Local refinement of a zero-forcing design's receive directions G (any L): its exact MSE is
/// `σ² ‖G‖²_F max_k w_k tr((GᴴQ_kG)⁻¹)` (w_k = σ_k²/P_k, Q_k = H_kH_kᴴ), invariant to the scale of
/// G. The max is smoothed as a p-norm, `φ(G) = ln‖G‖² + (1/p) ln Σ_k (w_k t_k)^p`, with
/// `∂t_k/∂G* = −Q_kGX_k⁻²`, and minimised by normalised gradient descent with Armijo
/// backtracking while p grows 4 → 256 (a stage ends when φ stops falling). Every candidate is
/// scored by the exact MSE; the result is never worse than `start` (which must be a ZF design
/// for `p`).
pub fn refine_zf_directions(p: &Problem, start: Transceiver, iterations: usize) -> Transceiver {
    refine_stages(p, start, iterations, &[4.0, 16.0, 64.0, 256.0])
}

/// [`refine_zf_directions`] from a start that is already near a local optimum of the exact
/// MSE (the previous design on the same channel, e.g. the last token of a coherence block):
/// only the two sharpest smoothing stages, whose optimum is the max's; never worse than `start`.
pub fn refine_zf_directions_warm(
    p: &Problem,
    start: Transceiver,
    iterations: usize,
) -> Transceiver {
    refine_stages(p, start, iterations, &[64.0, 256.0])
}

fn refine_stages(
    p: &Problem,
    start: Transceiver,
    iterations: usize,
    stages: &[f64],
) -> Transceiver {
    let w: Vec<f64> = p
        .signal_var
        .iter()
        .zip(p.power)
        .map(|(s, pw)| s / pw)
        .collect();
    let l = start.receive_beamformer.ncols();
    let active: Vec<usize> = (0..w.len()).filter(|&k| w[k] > 0.0).collect();
    if active.is_empty() {
        return start;
    }
    // φ and its gradient w.r.t. G* at g (None if some X_k is singular), through the channels
    // themselves: R_k = H_kᴴG (N_t × L), X_k = R_kᴴR_k, Q_kGX_k⁻² = H_k(R_kX_k⁻²)
    let eval = |g: &CMat, pexp: f64, grad: bool| -> Option<(f64, CMat, f64)> {
        let mut logs = Vec::with_capacity(active.len());
        let mut parts = Vec::new();
        for &k in &active {
            let h = &p.channels[k];
            let r = h.ad_mul(g);
            let x = r.ad_mul(&r);
            let xi = x.try_inverse()?;
            let t: f64 = (0..l).map(|j| xi[(j, j)].re).sum();
            if !(t.is_finite() && t > 0.0) {
                return None;
            }
            logs.push(pexp * (w[k] * t).ln());
            if grad {
                parts.push((h * (r * (&xi * &xi)), t));
            }
        }
        let mx = logs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = logs.iter().map(|u| (u - mx).exp()).sum();
        let n2 = g.norm_squared();
        let phi = n2.ln() + (mx + sum.ln()) / pexp;
        // the exact ZF MSE along g over σ²: ‖g‖² max_k w_k t_k
        let exact = n2 * (mx / pexp).exp();
        let mut gr = CMat::zeros(g.nrows(), l);
        if grad {
            gr = g * C64::new(1.0 / n2, 0.0);
            for (u, (m, t)) in logs.iter().zip(&parts) {
                let soft = (u - mx).exp() / sum;
                gr -= m * C64::new(soft / t, 0.0);
            }
        }
        Some((phi, gr, exact))
    };
    let mut g = start.receive_beamformer.clone();
    g /= C64::new(g.norm(), 0.0);
    // the best directions by the exact MSE (scored from the t_k the smoothing computes anyway)
    let mut best_g: Option<(f64, CMat)> = None;
    let per_stage = (iterations.max(stages.len()) / stages.len()).max(1);
    for &pexp in stages {
        // steps along the unit gradient direction: near a singular X_k the gradient's norm
        // is huge, and a step proportional to it never passes the Armijo test
        let mut step = 0.5;
        for _ in 0..per_stage {
            let Some((phi, gr, exact)) = eval(&g, pexp, true) else {
                break;
            };
            if best_g.as_ref().is_none_or(|(b, _)| exact < *b) {
                best_g = Some((exact, g.clone()));
            }
            let gn = gr.norm();
            if gn.is_nan() || gn <= 1e-12 {
                break;
            }
            let dir = gr / C64::new(gn, 0.0);
            let mut moved = None;
            for _ in 0..40 {
                let mut c = &g - &dir * C64::new(step, 0.0);
                let cn = c.norm();
                if cn == 0.0 {
                    step *= 0.5;
                    continue;
                }
                c /= C64::new(cn, 0.0);
                if let Some((pc, _, exact)) = eval(&c, pexp, false) {
                    if pc <= phi - 1e-4 * step * gn {
                        if best_g.as_ref().is_none_or(|(b, _)| exact < *b) {
                            best_g = Some((exact, c.clone()));
                        }
                        g = c;
                        moved = Some(phi - pc);
                        step = (step * 2.0).min(1.0);
                        break;
                    }
                }
                step *= 0.5;
            }
            let Some(fall) = moved else { break };
            // φ is a log: a fall below 1e-7 changes the MSE by less than 1e-7 relative
            if fall < 1e-7 {
                break;
            }
        }
    }
    match best_g.map(|(_, g)| zf_with_directions(p, &g)) {
        Some(Ok(t)) if t.analytic_mse < start.analytic_mse => t,
        _ => start,
    }
}
