//! Over-the-air computation (AirComp) of a sum over a fading MAC.
//!
//! System (Zhang, He, Song, Zhang, Letaief 2025, eq. (5)–(8)): device k sends `B_k s_k`,
//! `s_k ∈ C^L` with `E[s_k s_kᴴ] = σ_k² I`; the AP receives `y = Σ_k H_k B_k s_k + n`,
//! `n ~ CN(0, σ² I)`, and estimates the sum as `ŝ = Aᴴ y`. Its mean-squared error is
//!
//! `MSE(A, {B_k}) = Σ_k σ_k² ‖AᴴH_kB_k − I‖²_F + σ² ‖A‖²_F`,
//!
//! under the per-device power budgets `σ_k² tr(B_kB_kᴴ) ≤ P_k` (per channel use).
//! Designs here: zero-forcing inversion with a simple receive beamformer (principal eigen-
//! directions or the sum of channel directions), and MMSE transceivers by alternating
//! optimisation (not forced to be unbiased, so their MSE is at most the ZF one).

use crate::channel::cn_matrix;
use crate::{CMat, C64};

mod downlink;
pub mod fdma;
pub mod sdp;
#[cfg(feature = "clarabel")]
pub mod sdp_clarabel;
pub mod sdr;
pub use downlink::*;
pub use fdma::{fdma_sum, simulate_fdma_mse, uncoded_fdma, FdmaDesign};
pub use sdr::{sdr, SdrDesign};

/// Invalid AirComp inputs.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AirCompError {
    /// A parameter is out of range or shapes disagree.
    #[error("aircomp: {0}")]
    Invalid(String),
}

fn bad<T>(msg: impl Into<String>) -> Result<T, AirCompError> {
    Err(AirCompError::Invalid(msg.into()))
}

/// What a transceiver design is given.
#[derive(Debug, Clone, Copy)]
pub struct Problem<'a> {
    /// Channel of each device, N_r × N_t.
    pub channels: &'a [CMat],
    /// Signal variance σ_k² of each device's symbols (per complex symbol).
    pub signal_var: &'a [f64],
    /// Power budget P_k of each device per channel use.
    pub power: &'a [f64],
    /// Receiver noise variance σ².
    pub noise_var: f64,
    /// Number of streams L.
    pub streams: usize,
}

impl Problem<'_> {
    /// Check shapes and ranges.
    pub fn validate(&self) -> Result<(), AirCompError> {
        let k = self.channels.len();
        if k == 0 {
            return bad("no devices (K = 0)");
        }
        let (nr, nt) = (self.channels[0].nrows(), self.channels[0].ncols());
        if nr == 0 || nt == 0 {
            return bad(format!(
                "channel matrices are {nr} × {nt}; need N_r ≥ 1 and N_t ≥ 1"
            ));
        }
        for (i, h) in self.channels.iter().enumerate() {
            if h.shape() != (nr, nt) {
                return bad(format!(
                    "channel {i} is {:?}, channel 0 is {:?}",
                    h.shape(),
                    (nr, nt)
                ));
            }
            if h.iter().any(|v| !v.re.is_finite() || !v.im.is_finite()) {
                return bad(format!("channel {i} holds a non-finite entry"));
            }
        }
        if self.signal_var.len() != k || self.power.len() != k {
            return bad(format!(
                "{} signal variances and {} power budgets for {k} devices",
                self.signal_var.len(),
                self.power.len()
            ));
        }
        for (i, (&s, &p)) in self.signal_var.iter().zip(self.power).enumerate() {
            if !(s.is_finite() && s >= 0.0) {
                return bad(format!(
                    "signal variance of device {i} is {s}; must be finite and ≥ 0"
                ));
            }
            if !(p.is_finite() && p > 0.0) {
                return bad(format!(
                    "power budget of device {i} is {p}; must be finite and > 0"
                ));
            }
        }
        if !(self.noise_var.is_finite() && self.noise_var > 0.0) {
            return bad(format!(
                "noise variance {} must be finite and > 0",
                self.noise_var
            ));
        }
        if self.streams == 0 || self.streams > nr || self.streams > nt {
            return bad(format!(
                "{} streams: need 1 ≤ L ≤ min(N_r = {nr}, N_t = {nt})",
                self.streams
            ));
        }
        Ok(())
    }
}

/// A designed transceiver: receive beamformer A (N_r × L), precoders B_k (N_t × L).
#[derive(Debug, Clone)]
pub struct Transceiver {
    /// A.
    pub receive_beamformer: CMat,
    /// B_k per device.
    pub precoders: Vec<CMat>,
    /// MSE by the closed form.
    pub analytic_mse: f64,
}

/// `Σ_k σ_k² ‖AᴴH_kB_k − I‖²_F + σ² ‖A‖²_F`.
pub fn mse(p: &Problem, a: &CMat, b: &[CMat]) -> f64 {
    let l = a.ncols();
    let eye = CMat::identity(l, l);
    let mis: f64 = p
        .channels
        .iter()
        .zip(b)
        .zip(p.signal_var)
        .map(|((h, bk), s)| s * (a.adjoint() * h * bk - &eye).norm_squared())
        .sum();
    mis + p.noise_var * a.norm_squared()
}

/// Power each device spends per channel use: σ_k² tr(B_kB_kᴴ).
pub fn powers(p: &Problem, b: &[CMat]) -> Vec<f64> {
    b.iter()
        .zip(p.signal_var)
        .map(|(bk, s)| s * bk.norm_squared())
        .collect()
}

/// How the zero-forcing design picks the receive direction(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiveDirection {
    /// Principal L eigenvectors of Σ_k H_kH_kᴴ.
    Eigen,
    /// Normalised sum of the devices' principal channel directions (L = 1), topped up with
    /// eigen-directions for L > 1.
    SumDirections,
}

/// Top-`l` eigenvectors of a Hermitian matrix (columns, by decreasing eigenvalue).
fn top_eigenvectors(m: &CMat, l: usize) -> CMat {
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
    Ok(Transceiver {
        receive_beamformer: a,
        precoders: b,
        analytic_mse,
    })
}

/// [`zf_with_directions`] for one stream: `t_k = 1/|gᴴh_k|²` with h_k = H_k's only column when
/// N_t = 1, `b_k = (gᴴH_k)ᴴ/(c |gᴴH_k|²)` in general.
fn zf_single_stream(p: &Problem, g: &CMat) -> Result<Transceiver, AirCompError> {
    let mut c2: f64 = 0.0;
    let mut gh = Vec::with_capacity(p.channels.len());
    for (i, h) in p.channels.iter().enumerate() {
        let row = g.adjoint() * h; // 1 × N_t
        let n2 = row.norm_squared();
        if !(n2.is_finite() && n2 > 0.0) {
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
    Ok(Transceiver {
        receive_beamformer: a,
        precoders: b,
        analytic_mse,
    })
}

/// MMSE transceivers (any number of streams) by alternating optimisation from the best ZF
/// design (eigen, sum-direction or [`fast`]); see [`refine_mmse`].
pub fn mmse(p: &Problem, iterations: usize) -> Result<Transceiver, AirCompError> {
    p.validate()?;
    let mut start = zero_forcing(p, ReceiveDirection::Eigen)?;
    let others = [
        zero_forcing(p, ReceiveDirection::SumDirections)?,
        fast(p, 100)?,
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
    Ok(Transceiver {
        receive_beamformer: a,
        precoders: b,
        analytic_mse: best,
    })
}

/// `argmin_B σ²‖FB − I‖²_F s.t. σ² ‖B‖²_F ≤ P` for F (L × N_t): with F = U S Vᴴ,
/// `B = V diag(s_i/(s_i² + μ)) Uᴴ`, μ = 0 when the pseudo-inverse fits the budget.
fn best_response_precoder(f: &CMat, sigma2: f64, power: f64) -> CMat {
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

/// Scale `a` so that the tightest budget `‖H_kᴴa‖² = aᴴQ_ka ≥ c_k` holds with equality (the ZF
/// precoders' power), or None when one cannot be met (`H_kᴴa = 0` with `c_k > 0`). O(n·N_t) per
/// device through the channel `H_k` itself rather than `Q_k = H_kH_kᴴ`.
pub(crate) fn scale_to_budgets(a: &CMat, h: &[CMat], c: &[f64]) -> Option<CMat> {
    let t = budget_scale(
        h.iter()
            .map(|hk| hk.ad_mul(a).norm_squared())
            .zip(c.iter().copied()),
    )?;
    Some(a * C64::new(t.sqrt(), 0.0))
}

/// The smallest power scale t with `t·g_k ≥ c_k` for every device, from (gain `g_k =
/// ‖H_kᴴa‖²`, budget `c_k`) pairs; None when a budget cannot be met (`g_k = 0 < c_k`) or none
/// needs power (t = 0).
pub(crate) fn budget_scale(gains: impl IntoIterator<Item = (f64, f64)>) -> Option<f64> {
    let mut t: f64 = 0.0;
    for (g, ck) in gains {
        if g <= 0.0 {
            if ck > 0.0 {
                return None;
            }
            continue;
        }
        t = t.max(ck / g);
    }
    (t > 0.0).then_some(t)
}

/// A fast single-stream design of near-SDR quality without an SDP: successive convex
/// approximation of `min ‖a‖² s.t. aᴴQ_ka ≥ c_k` (Q_k = H_kH_kᴴ, c_k = σ_k²/P_k). Each step
/// replaces aᴴQ_ka by its tangent lower bound at the current point, `2Re(a_tᴴQ_ka) − a_tᴴQ_ka_t`,
/// and solves the resulting minimum-norm problem exactly in its dual (coordinate ascent over K
/// multipliers); every iterate is feasible and the MSE never increases. Starts from ZF (eigen).
///
/// For L > 1 streams: the best ZF design (eigen or sum directions) refined by
/// [`refine_zf_directions`].
pub fn fast(p: &Problem, iterations: usize) -> Result<Transceiver, AirCompError> {
    p.validate()?;
    if p.streams != 1 {
        let a = zero_forcing(p, ReceiveDirection::Eigen)?;
        let b = zero_forcing(p, ReceiveDirection::SumDirections)?;
        let start = if b.analytic_mse < a.analytic_mse {
            b
        } else {
            a
        };
        return Ok(refine_zf_directions(p, start, iterations));
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
    Ok(Transceiver {
        receive_beamformer: a,
        precoders: b,
        analytic_mse,
    })
}

/// Local refinement of a zero-forcing design's receive directions G (any L): its exact MSE is
/// `σ² ‖G‖²_F max_k w_k tr((GᴴQ_kG)⁻¹)` (w_k = σ_k²/P_k, Q_k = H_kH_kᴴ), invariant to the scale of
/// G. The max is smoothed as a p-norm, `φ(G) = ln‖G‖² + (1/p) ln Σ_k (w_k t_k)^p`, with
/// `∂t_k/∂G* = −Q_kGX_k⁻²`, and minimised by gradient descent with Armijo backtracking while p
/// grows 4 → 256. Every candidate is scored by the exact MSE; the result is never worse than
/// `start` (which must be a ZF design for `p`).
pub fn refine_zf_directions(p: &Problem, start: Transceiver, iterations: usize) -> Transceiver {
    let q: Vec<CMat> = p.channels.iter().map(|h| h * h.adjoint()).collect();
    let w: Vec<f64> = p
        .signal_var
        .iter()
        .zip(p.power)
        .map(|(s, pw)| s / pw)
        .collect();
    let l = start.receive_beamformer.ncols();
    let active: Vec<usize> = (0..q.len()).filter(|&k| w[k] > 0.0).collect();
    if active.is_empty() {
        return start;
    }
    // φ and its gradient w.r.t. G* at g (None if some X_k is singular)
    let eval = |g: &CMat, pexp: f64, grad: bool| -> Option<(f64, CMat)> {
        let mut logs = Vec::with_capacity(active.len());
        let mut parts = Vec::new();
        for &k in &active {
            let qg = &q[k] * g;
            let x = g.adjoint() * &qg;
            let xi = x.try_inverse()?;
            let t: f64 = (0..l).map(|j| xi[(j, j)].re).sum();
            if !(t.is_finite() && t > 0.0) {
                return None;
            }
            logs.push(pexp * (w[k] * t).ln());
            if grad {
                parts.push((qg * (&xi * &xi), t));
            }
        }
        let mx = logs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = logs.iter().map(|u| (u - mx).exp()).sum();
        let n2 = g.norm_squared();
        let phi = n2.ln() + (mx + sum.ln()) / pexp;
        let mut gr = CMat::zeros(g.nrows(), l);
        if grad {
            gr = g * C64::new(1.0 / n2, 0.0);
            for (u, (m, t)) in logs.iter().zip(&parts) {
                let soft = (u - mx).exp() / sum;
                gr -= m * C64::new(soft / t, 0.0);
            }
        }
        Some((phi, gr))
    };
    let mut best = start;
    let mut g = best.receive_beamformer.clone();
    g /= C64::new(g.norm(), 0.0);
    let per_stage = (iterations.max(4) / 4).max(1);
    for pexp in [4.0, 16.0, 64.0, 256.0] {
        let mut step = 1.0;
        for _ in 0..per_stage {
            let Some((phi, gr)) = eval(&g, pexp, true) else {
                break;
            };
            let gn2 = gr.norm_squared();
            if gn2 < 1e-24 {
                break;
            }
            let mut moved = false;
            for _ in 0..40 {
                let mut c = &g - &gr * C64::new(step, 0.0);
                let cn = c.norm();
                if cn == 0.0 {
                    step *= 0.5;
                    continue;
                }
                c /= C64::new(cn, 0.0);
                if let Some((pc, _)) = eval(&c, pexp, false) {
                    if pc <= phi - 1e-4 * step * gn2 {
                        g = c;
                        moved = true;
                        step *= 2.0;
                        break;
                    }
                }
                step *= 0.5;
            }
            if !moved {
                break;
            }
            if let Ok(t) = zf_with_directions(p, &g) {
                if t.analytic_mse < best.analytic_mse {
                    best = t;
                }
            }
        }
    }
    best
}

/// Monte-Carlo MSE of a transceiver: `symbols` independent uses, Gaussian s_k ~ CN(0, σ_k² I).
pub fn simulate_mse<R: rand::Rng + ?Sized>(
    p: &Problem,
    t: &Transceiver,
    symbols: usize,
    rng: &mut R,
) -> f64 {
    let l = t.receive_beamformer.ncols();
    let nr = p.channels[0].nrows();
    if l == 1 {
        return simulate_mse_single_stream(p, t, symbols, rng);
    }
    let mut y = cn_matrix(nr, symbols, rng) * C64::new(p.noise_var.sqrt(), 0.0);
    let mut sum = CMat::zeros(l, symbols);
    for ((h, bk), &s) in p.channels.iter().zip(&t.precoders).zip(p.signal_var) {
        let sk = cn_matrix(l, symbols, rng) * C64::new(s.sqrt(), 0.0);
        y += (h * bk) * &sk;
        sum += sk;
    }
    let est = t.receive_beamformer.adjoint() * y;
    (est - sum).norm_squared() / symbols as f64
}

/// [`simulate_mse`] for one stream: blocks of 96 channel uses in structure-of-arrays f32, the
/// received signal formed antenna by antenna (`y_i = Σ_k v_ik s_k + n_i`, `v_k = H_kb_k`) and
/// combined with aᴴ, every loop running over the 96 uses so that it vectorises; Gaussian draws
/// from [`crate::fastrng::Normals`] seeded from `rng`. Squared errors are accumulated in f64.
fn simulate_mse_single_stream<R: rand::Rng + ?Sized>(
    p: &Problem,
    t: &Transceiver,
    symbols: usize,
    rng: &mut R,
) -> f64 {
    let nr = p.channels[0].nrows();
    let k = p.channels.len();
    let mut v = Vec::with_capacity(k * nr);
    for (h, bk) in p.channels.iter().zip(&t.precoders) {
        let hb = h * bk;
        v.extend((0..nr).map(|i| (hb[(i, 0)].re as f32, hb[(i, 0)].im as f32)));
    }
    let a: Vec<(f32, f32)> = (0..nr)
        .map(|i| {
            let z = t.receive_beamformer[(i, 0)];
            (z.re as f32, z.im as f32)
        })
        .collect();
    // per real component: CN(0, σ²) has variance σ²/2
    let sd: Vec<f32> = p
        .signal_var
        .iter()
        .map(|s| (s / 2.0).sqrt() as f32)
        .collect();
    let sn = (p.noise_var / 2.0).sqrt() as f32;
    let mut g = crate::fastrng::Normals::from_rng(rng);
    // noise then signals: (N_r + K) × 2 × BLOCK normals per block
    let mut z = vec![0f32; (nr + k) * 2 * BLOCK];
    let mut err2 = 0.0f64;
    let mut left = symbols;
    while left > 0 {
        let n = left.min(BLOCK);
        err2 += simulate_block(&mut g, &mut z, &v, &a, &sd, sn, n);
        left -= n;
    }
    err2 / symbols as f64
}

const BLOCK: usize = 96;

fn simulate_block(
    g: &mut crate::fastrng::Normals,
    z: &mut [f32],
    v: &[(f32, f32)],
    a: &[(f32, f32)],
    sd: &[f32],
    sn: f32,
    n: usize,
) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::simd::avx2() {
            // SAFETY: the CPU has the features the function is compiled for.
            return unsafe { simulate_block_avx2(g, z, v, a, sd, sn, n) };
        }
    }
    simulate_block_portable(g, z, v, a, sd, sn, n)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn simulate_block_avx2(
    g: &mut crate::fastrng::Normals,
    z: &mut [f32],
    v: &[(f32, f32)],
    a: &[(f32, f32)],
    sd: &[f32],
    sn: f32,
    n: usize,
) -> f64 {
    simulate_block_portable(g, z, v, a, sd, sn, n)
}

#[inline(always)]
fn simulate_block_portable(
    g: &mut crate::fastrng::Normals,
    z: &mut [f32],
    v: &[(f32, f32)],
    a: &[(f32, f32)],
    sd: &[f32],
    sn: f32,
    n: usize,
) -> f64 {
    let nr = a.len();
    g.fill(z, 1.0);
    let (noise, sig) = z.split_at_mut(nr * 2 * BLOCK);
    // est = Σ_i conj(a_i) y_i = Σ_i conj(a_i) n_i + Σ_k (Σ_i conj(a_i) v_ik) s_k, evaluated
    // antenna by antenna as the receiver does: y_i first, then the combiner
    let mut er = [0f32; BLOCK];
    let mut ei = [0f32; BLOCK];
    let mut sum_r = [0f32; BLOCK];
    let mut sum_i = [0f32; BLOCK];
    let mut yr = [0f32; BLOCK];
    let mut yi = [0f32; BLOCK];
    // scale the signals once
    for (d, &s) in sd.iter().enumerate() {
        let blk = &mut sig[d * 2 * BLOCK..(d + 1) * 2 * BLOCK];
        for x in blk.iter_mut() {
            *x *= s;
        }
        let (re, im) = blk.split_at(BLOCK);
        for j in 0..BLOCK {
            sum_r[j] += re[j];
            sum_i[j] += im[j];
        }
    }
    for (i, &(ar, ai)) in a.iter().enumerate() {
        let (nre, nim) = noise[i * 2 * BLOCK..(i + 1) * 2 * BLOCK].split_at(BLOCK);
        for j in 0..BLOCK {
            yr[j] = sn * nre[j];
            yi[j] = sn * nim[j];
        }
        for d in 0..sd.len() {
            let (vr, vi) = v[d * nr + i];
            let (sr, si) = sig[d * 2 * BLOCK..(d + 1) * 2 * BLOCK].split_at(BLOCK);
            for j in 0..BLOCK {
                yr[j] += vr * sr[j] - vi * si[j];
                yi[j] += vr * si[j] + vi * sr[j];
            }
        }
        // conj(a_i) y_i
        for j in 0..BLOCK {
            er[j] += ar * yr[j] + ai * yi[j];
            ei[j] += ar * yi[j] - ai * yr[j];
        }
    }
    let mut acc = 0.0f64;
    for j in 0..n {
        let dr = er[j] - sum_r[j];
        let di = ei[j] - sum_i[j];
        acc += (dr * dr + di * di) as f64;
    }
    acc
}

/// The uplink an over-the-air sum goes through.
#[derive(Debug, Clone, Copy)]
pub struct OtaLink<'a> {
    /// True channel of each device (N_r × N_t): what the signals go through.
    pub channels: &'a [CMat],
    /// What the transceiver design is computed from (imperfect CSI, e.g. from
    /// [`crate::channel::estimate`]); `None` means perfect CSI.
    pub csi: Option<&'a [CMat]>,
    /// Power budget of each device per channel use.
    pub power: &'a [f64],
    /// Receiver noise variance σ².
    pub noise_var: f64,
    /// Streams L.
    pub streams: usize,
}

/// Result of one over-the-air sum of real vectors.
#[derive(Debug, Clone)]
pub struct OtaOutcome {
    /// The AP's estimate of Σ_k x_k.
    pub estimate: Vec<f32>,
    /// Channel uses (complex symbols per stream; 2L reals per use).
    pub channel_uses: usize,
    /// Side-information bytes sent digitally (each device's mean and scale as f32).
    pub side_info_bytes: usize,
    /// The design's analytic MSE per complex symbol (of the normalised sum), as the design
    /// believes it from its CSI.
    pub analytic_mse: f64,
    /// The same closed form evaluated on the true channels (equal to `analytic_mse` with
    /// perfect CSI): the MSE the estimate actually has in expectation.
    pub true_mse: f64,
}

/// Over-the-air sum of K real vectors: each device removes its mean (sent digitally as side
/// information, with its variance), packs pairs of reals into complex symbols spread over L
/// streams, precodes with the design computed from the CSI for the devices' variances and
/// budgets; the signals cross the true channels; the AP combines, adds the means back and unpacks.
/// `true_mse` is exact in expectation when the packed symbols are circular and uncorrelated
/// across devices; with zero-forcing and perfect CSI only the noise term remains, which holds
/// for any signal.
pub fn over_the_air_sum<R: rand::Rng + ?Sized>(
    partials: &[&[f32]],
    link: &OtaLink,
    design: impl Fn(&Problem) -> Result<Transceiver, AirCompError>,
    rng: &mut R,
) -> Result<OtaOutcome, AirCompError> {
    let channels = link.channels;
    let k = partials.len();
    let (n, csi) = check_partials(partials, link)?;
    let l = link.streams.max(1);
    let uses = n.div_ceil(2).div_ceil(l);
    let (means, var) = centre_stats(partials);
    let believed = Problem {
        channels: csi,
        signal_var: &var,
        power: link.power,
        noise_var: link.noise_var,
        streams: l,
    };
    let t = design(&believed)?;
    let truth = Problem {
        channels,
        ..believed
    };
    truth.validate()?;
    let true_mse = mse(&truth, &t.receive_beamformer, &t.precoders);
    let nr = channels[0].nrows();
    let mut y = cn_matrix(nr, uses, rng) * C64::new(link.noise_var.sqrt(), 0.0);
    for ((x, &m), (h, bk)) in partials
        .iter()
        .zip(&means)
        .zip(channels.iter().zip(&t.precoders))
    {
        y += (h * bk) * pack(x, m, l, uses);
    }
    let est = t.receive_beamformer.adjoint() * y;
    let estimate = unpack(&est, means.iter().sum(), n);
    Ok(OtaOutcome {
        estimate,
        channel_uses: uses,
        side_info_bytes: 8 * k,
        analytic_mse: t.analytic_mse,
        true_mse,
    })
}

/// Check the partial vectors against the link: one per channel, equal lengths, CSI of the
/// channels' shape. Returns the length and the CSI the design sees.
pub(crate) fn check_partials<'a>(
    partials: &[&[f32]],
    link: &OtaLink<'a>,
) -> Result<(usize, &'a [CMat]), AirCompError> {
    let channels = link.channels;
    let k = partials.len();
    if k != channels.len() {
        return bad(format!(
            "{k} partial vectors for {} channels",
            channels.len()
        ));
    }
    let csi = link.csi.unwrap_or(channels);
    if csi.len() != k
        || csi
            .iter()
            .zip(channels)
            .any(|(a, b)| a.shape() != b.shape())
    {
        return bad("the CSI does not have the shape of the channels");
    }
    let n = partials.first().map_or(0, |v| v.len());
    if partials.iter().any(|v| v.len() != n) {
        return bad("partial vectors differ in length");
    }
    Ok((n, csi))
}

/// Each device's mean, and the variance of its centred complex symbols (two real components
/// each of the device's variance); both 0 for empty vectors.
pub(crate) fn centre_stats(partials: &[&[f32]]) -> (Vec<f64>, Vec<f64>) {
    partials
        .iter()
        .map(|v| {
            if v.is_empty() {
                return (0.0, 0.0);
            }
            let n = v.len() as f64;
            let m = v.iter().map(|&x| x as f64).sum::<f64>() / n;
            let var = 2.0 * v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / n;
            (m, var)
        })
        .unzip()
}

/// `x − mean` as complex symbols on L streams: symbol q = use·L + stream carries reals 2q and
/// 2q + 1 (zero past the end).
pub(crate) fn pack(x: &[f32], mean: f64, l: usize, uses: usize) -> CMat {
    CMat::from_fn(l, uses, |st, u| {
        let q = u * l + st;
        let re = x.get(2 * q).map_or(0.0, |&v| v as f64 - mean);
        let im = x.get(2 * q + 1).map_or(0.0, |&v| v as f64 - mean);
        C64::new(re, im)
    })
}

/// The inverse of [`pack`] for an estimate of a sum: n reals, `offset` (the summed means) added.
pub(crate) fn unpack(est: &CMat, offset: f64, n: usize) -> Vec<f32> {
    let l = est.nrows();
    (0..n)
        .map(|i| {
            let q = i / 2;
            let z = est[(q % l, q / l)];
            ((if i % 2 == 0 { z.re } else { z.im }) + offset) as f32
        })
        .collect()
}

/// One over-the-air all-reduce: the uplink sum ([`over_the_air_sum`]) then the downlink
/// ([`deliver`]) back to every device.
#[derive(Debug, Clone)]
pub struct AllReduceOutcome {
    /// The uplink part.
    pub uplink: OtaOutcome,
    /// What each device ends up with.
    pub per_device: Vec<Vec<f32>>,
    /// Downlink airtime, s.
    pub downlink_airtime_s: f64,
}

/// Uplink over the air, then `downlink` to all K devices.
pub fn over_the_air_all_reduce<R: rand::Rng + ?Sized>(
    partials: &[&[f32]],
    link: &OtaLink,
    design: impl Fn(&Problem) -> Result<Transceiver, AirCompError>,
    downlink: &Downlink,
    rng: &mut R,
) -> Result<AllReduceOutcome, AirCompError> {
    let uplink = over_the_air_sum(partials, link, design, rng)?;
    let d = deliver(&uplink.estimate, partials.len(), downlink, rng)?;
    Ok(AllReduceOutcome {
        uplink,
        per_device: d.per_device,
        downlink_airtime_s: d.airtime_s,
    })
}

#[cfg(test)]
mod tests;
