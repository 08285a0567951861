//! The SDR's semidefinite programme, solved by our own primal–dual interior-point method.
//!
//! Primal (P) and dual (D), over complex Hermitian n×n matrices, with `Q_k = H_kH_kᴴ`:
//!
//! ```text
//! (P)  min tr(M)   s.t. tr(M Q_k) − s_k = c_k,  M ⪰ 0, s ≥ 0
//! (D)  max cᵀy     s.t. S = I − Σ_k y_k Q_k ⪰ 0,  y ≥ 0
//! ```
//!
//! The method is the HKM primal–dual path-following method with Mehrotra's predictor–corrector
//! (as in SDPT3 and CSDP), specialised to this structure: the Schur complement is only K×K,
//! `B_kl = Re tr(Q_k M Q_l S⁻¹) + δ_kl s_k/y_k`, and every product with a `Q_k` goes through its
//! n×N_t factor `H_k`, so an iteration costs O(n³ + n²T + nT²) with `T = Σ_k N_t`. The iterates
//! stay dual feasible (S is recomputed from y, never updated); the primal start is feasible too.
//!
//! **Certificate.** The answer is a pair that brackets the optimum by weak duality: a dual
//! point y ≥ 0 whose `S = I − Σ y_k Q_k` is verified positive definite by a Cholesky
//! factorisation of the freshly computed matrix (so `cᵀy ≤ opt`), and a primal matrix
//! `M ⪰ 0` scaled to meet every constraint exactly in the original data (so `tr M ≥ opt`).
//! [`SdpSolution::rel_gap`] is `(tr M − cᵀy)/tr M`; [`solve`] returns only when it is at most
//! [`GAP_TOL`], and says why otherwise.

use super::AirCompError;
use crate::{CMat, C64};
use nalgebra::DMatrix;

/// The relative duality gap [`solve`] certifies.
pub const GAP_TOL: f64 = 1e-7;
/// The gap the iterations aim for (10× below [`GAP_TOL`], so the certificate in the original
/// data, recomputed after the last step, still holds).
const GAP_TARGET: f64 = 1e-8;
/// Iterations before giving up (typical solves take 12–30).
const MAX_ITER: u32 = 100;
/// Fraction of the step to the boundary of the cone.
const STEP_FRACTION: f64 = 0.98;

/// A solved SDP with its certificate.
#[derive(Debug, Clone)]
pub struct SdpSolution {
    /// The primal matrix M ⪰ 0, feasible: `tr(M Q_k) ≥ c_k` for every k (in f64).
    pub m: CMat,
    /// `tr M`: an upper bound on the optimal value.
    pub primal: f64,
    /// `cᵀy`: a lower bound on the optimal value.
    pub dual: f64,
    /// The dual multipliers y ≥ 0 (`I − Σ y_k Q_k ⪰ 0` verified).
    pub y: Vec<f64>,
    /// Interior-point iterations.
    pub iterations: u32,
}

impl SdpSolution {
    /// `(primal − dual) / primal`, 0 when both are 0.
    pub fn rel_gap(&self) -> f64 {
        if self.primal > 0.0 {
            (self.primal - self.dual) / self.primal
        } else {
            0.0
        }
    }
}

fn bad<T>(msg: impl Into<String>) -> Result<T, AirCompError> {
    Err(AirCompError::Invalid(msg.into()))
}

/// Solve `min tr(M) s.t. tr(M H_kH_kᴴ) ≥ c_k, M ⪰ 0` (n×n Hermitian M, `h[k]` n×t_k) to a
/// certified relative duality gap ≤ [`GAP_TOL`].
///
/// Errors: mismatched sizes; a `c_k` negative or not finite; a non-finite channel entry; a
/// device with `c_k > 0` and a zero channel (no M reaches it: the SDP is infeasible); no
/// certificate within the iteration limit.
pub fn solve(h: &[CMat], c: &[f64]) -> Result<SdpSolution, AirCompError> {
    if h.is_empty() {
        return bad("SDP: no constraints (K = 0)");
    }
    if h.len() != c.len() {
        return bad(format!(
            "SDP: {} channels but {} right-hand sides",
            h.len(),
            c.len()
        ));
    }
    let n = h[0].nrows();
    if n == 0 {
        return bad("SDP: channels have 0 rows (N_r = 0)");
    }
    let mut active = Vec::new();
    for (k, (hk, &ck)) in h.iter().zip(c).enumerate() {
        if hk.nrows() != n {
            return bad(format!(
                "SDP: channel {k} has {} rows, channel 0 has {n}",
                hk.nrows()
            ));
        }
        if !(ck.is_finite() && ck >= 0.0) {
            return bad(format!(
                "SDP: right-hand side {k} is {ck}; must be finite and ≥ 0"
            ));
        }
        if hk.iter().any(|v| !(v.re.is_finite() && v.im.is_finite())) {
            return bad(format!("SDP: channel {k} holds a non-finite entry"));
        }
        if ck > 0.0 {
            let e = hk.norm_squared();
            if e == 0.0 || hk.ncols() == 0 {
                return bad(format!(
                    "SDP infeasible: device {k}'s channel is zero, so no receive beamformer reaches it"
                ));
            }
            if !e.is_finite() {
                return bad(format!("SDP: channel {k}'s energy overflows f64"));
            }
            active.push(k);
        }
    }
    if active.is_empty() {
        // every constraint reads tr(M Q_k) ≥ 0: M = 0 is optimal, y = 0 certifies it
        return Ok(SdpSolution {
            m: CMat::zeros(n, n),
            primal: 0.0,
            dual: 0.0,
            y: vec![0.0; h.len()],
            iterations: 0,
        });
    }
    // normalise: Q̄_k = Q_k / (c_k ρ) with ρ = max_k tr(Q_k)/c_k, so every right-hand side is 1 and
    // the largest tr Q̄_k is 1; X = ρM solves min tr X s.t. tr(X Q̄_k) ≥ 1
    let rho = active
        .iter()
        .map(|&k| h[k].norm_squared() / c[k])
        .fold(0.0, f64::max);
    let blocks: Vec<(usize, usize)> = {
        let mut off = 0;
        active
            .iter()
            .map(|&k| {
                let b = (off, h[k].ncols());
                off += h[k].ncols();
                b
            })
            .collect()
    };
    let t_all: usize = blocks.iter().map(|b| b.1).sum();
    let mut hs = CMat::zeros(n, t_all);
    for (&k, &(off, w)) in active.iter().zip(&blocks) {
        let f = C64::new(1.0 / (c[k] * rho).sqrt(), 0.0);
        for j in 0..w {
            for i in 0..n {
                hs[(i, off + j)] = h[k][(i, j)] * f;
            }
        }
    }
    let hs_h = hs.adjoint();
    let core = Core {
        n,
        hs,
        hs_h,
        blocks,
    };
    let (x, y, iterations) = core.run()?;
    certify(h, c, &active, rho, &x, &y, iterations)
}

/// The normalised problem: `min tr X s.t. tr(X Q̄_k) ≥ 1`, `Q̄_k = Hs_k Hs_kᴴ` (block k of hs).
struct Core {
    n: usize,
    hs: CMat,
    /// `Hsᴴ`, kept for the products.
    hs_h: CMat,
    blocks: Vec<(usize, usize)>,
}

/// Step length to the boundary: the largest α with `Z + αΔ ⪰ 0` (∞ when Δ ⪰ 0), from the
/// smallest eigenvalue of `L⁻¹ΔL⁻ᴴ` (Z = LLᴴ; `linv` = L⁻¹).
fn max_step(linv: &CMat, linv_h: &CMat, d: &CMat) -> f64 {
    let v = herm(&zmul(&zmul(linv, d), linv_h));
    // a full step (α = 1 after the step fraction) needs only α_max ≥ 1/STEP_FRACTION: one
    // Cholesky of I + V/STEP_FRACTION answers that, far cheaper than the eigenvalues
    let n = v.nrows();
    let full = CMat::identity(n, n) + &v * C64::new(1.0 / STEP_FRACTION, 0.0);
    if cholesky(&full).is_some() {
        return 1.0 / STEP_FRACTION;
    }
    let lmin = v
        .symmetric_eigenvalues()
        .iter()
        .cloned()
        .fold(f64::INFINITY, f64::min);
    if lmin >= 0.0 {
        f64::INFINITY
    } else {
        -1.0 / lmin
    }
}

/// The lower Cholesky factor L (A = LLᴴ) of a Hermitian matrix, or None unless every pivot is
/// real, finite and positive, i.e. unless A is positive definite (up to rounding). nalgebra's
/// `cholesky()` cannot serve as that test for complex matrices: it takes the complex square
/// root of a negative pivot and carries on.
fn cholesky(a: &CMat) -> Option<CMat> {
    let n = a.nrows();
    let mut l = CMat::zeros(n, n);
    for j in 0..n {
        let mut d = a[(j, j)].re;
        for k in 0..j {
            d -= l[(j, k)].norm_sqr();
        }
        if !(d.is_finite() && d > 0.0) {
            return None;
        }
        let djj = d.sqrt();
        l[(j, j)] = C64::new(djj, 0.0);
        for i in j + 1..n {
            let mut v = a[(i, j)];
            for k in 0..j {
                v -= l[(i, k)] * l[(j, k)].conj();
            }
            l[(i, j)] = v / djj;
        }
    }
    Some(l)
}

/// L⁻¹ and L⁻ᴴ of a Cholesky factor.
fn tri_inverse(l: &CMat) -> (CMat, CMat) {
    let n = l.nrows();
    let inv = l
        .solve_lower_triangular(&CMat::identity(n, n))
        .expect("a Cholesky factor is nonsingular");
    let inv_h = inv.adjoint();
    (inv, inv_h)
}

/// `A·B` through matrixmultiply's complex gemm (packed, SIMD kernels chosen at run time),
/// several times faster than nalgebra's generic complex product at these sizes.
pub(crate) fn zmul(a: &CMat, b: &CMat) -> CMat {
    assert_eq!(a.ncols(), b.nrows(), "zmul: inner dimensions");
    let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
    let mut c = CMat::zeros(m, n);
    if m == 0 || n == 0 || k == 0 {
        return c;
    }
    // SAFETY: DMatrix storage is contiguous and column-major (element (i, j) at i + j·nrows),
    // so the pointers with strides (1, nrows) cover exactly m×k, k×n and m×n elements;
    // Complex<f64> is #[repr(C)] {re, im}, the layout of matrixmultiply's c64 = [f64; 2]; `c`
    // is a fresh allocation, aliasing neither input.
    unsafe {
        matrixmultiply::zgemm(
            matrixmultiply::CGemmOption::Standard,
            matrixmultiply::CGemmOption::Standard,
            m,
            k,
            n,
            [1.0, 0.0],
            a.as_ptr().cast::<[f64; 2]>(),
            1,
            m as isize,
            b.as_ptr().cast::<[f64; 2]>(),
            1,
            k as isize,
            [0.0, 0.0],
            c.as_mut_ptr().cast::<[f64; 2]>(),
            1,
            m as isize,
        );
    }
    c
}

fn herm(m: &CMat) -> CMat {
    (m + m.adjoint()) * C64::new(0.5, 0.0)
}

fn re_trace_prod(a: &CMat, b: &CMat) -> f64 {
    // Re tr(AB) = Σ_ij Re(A_ij B_ji)
    let n = a.nrows();
    let mut s = 0.0;
    for i in 0..n {
        for j in 0..n {
            let (x, y) = (a[(i, j)], b[(j, i)]);
            s += x.re * y.re - x.im * y.im;
        }
    }
    s
}

impl Core {
    fn k(&self) -> usize {
        self.blocks.len()
    }

    /// `S = I − Σ y_k Q̄_k`.
    fn slack(&self, y: &[f64]) -> CMat {
        let mut s = CMat::identity(self.n, self.n);
        s -= self.weighted_gram(y);
        s
    }

    /// `Σ_k w_k Q̄_k = Hs diag(w_k per block) Hsᴴ`.
    fn weighted_gram(&self, w: &[f64]) -> CMat {
        let mut hw = self.hs.clone();
        for (&(off, width), &wk) in self.blocks.iter().zip(w) {
            for j in off..off + width {
                hw.column_mut(j).scale_mut(wk);
            }
        }
        herm(&zmul(&hw, &self.hs_h))
    }

    /// `tr(X Q̄_k)` for every k: the real diagonal sums of `Hsᴴ X Hs` per block.
    fn traces(&self, x: &CMat) -> Vec<f64> {
        self.block_traces(&zmul(x, &self.hs))
    }

    /// [`Core::traces`] from `X·Hs` already at hand.
    fn block_traces(&self, xh: &CMat) -> Vec<f64> {
        self.blocks
            .iter()
            .map(|&(off, w)| {
                let mut t = 0.0;
                for j in off..off + w {
                    for i in 0..self.n {
                        let (a, b) = (self.hs[(i, j)], xh[(i, j)]);
                        t += a.re * b.re + a.im * b.im;
                    }
                }
                t
            })
            .collect()
    }

    /// Mehrotra predictor–corrector with the HKM direction. Returns (X, y, iterations).
    fn run(&self) -> Result<(CMat, Vec<f64>, u32), AirCompError> {
        let (n, kk) = (self.n, self.k());
        let tr_q: Vec<f64> = self
            .blocks
            .iter()
            .map(|&(off, w)| {
                (off..off + w)
                    .map(|j| self.hs.column(j).norm_squared())
                    .sum()
            })
            .collect();
        let min_tr = tr_q.iter().cloned().fold(f64::INFINITY, f64::min);
        // a feasible, roughly centred start: X = ξI with every surplus ≥ 1, S ⪰ I/2
        let xi = 2.0 / min_tr;
        let mut x = CMat::identity(n, n) * C64::new(xi, 0.0);
        let mut s: Vec<f64> = tr_q.iter().map(|t| xi * t - 1.0).collect();
        let mut y: Vec<f64> = tr_q.iter().map(|t| 0.5 / (kk as f64 * t)).collect();
        let nu = (n + kk) as f64;
        let mut best: Option<(f64, CMat, Vec<f64>, u32)> = None;
        let mut stop = "the iteration limit";
        for it in 0..MAX_ITER {
            let sm = self.slack(&y);
            let Some(chol_s) = cholesky(&sm) else {
                stop = "the dual slack losing definiteness in f64";
                break;
            };
            let Some(chol_x) = cholesky(&x) else {
                stop = "the primal matrix losing definiteness in f64";
                break;
            };
            let (lx_inv, lx_inv_h) = tri_inverse(&chol_x);
            let (ls_inv, ls_inv_h) = tri_inverse(&chol_s);
            let xh = zmul(&x, &self.hs);
            let tx = self.block_traces(&xh);
            // certified gap of this iterate: X scaled to meet every constraint, against Σy
            let scale = tx.iter().map(|t| 1.0 / t).fold(1.0, f64::max);
            let p = scale * (0..n).map(|i| x[(i, i)].re).sum::<f64>();
            let d: f64 = y.iter().sum();
            let gap = (p - d) / p;
            if best.as_ref().is_none_or(|b| gap < b.0) {
                best = Some((gap, x.clone(), y.clone(), it));
            }
            let best_it = best.as_ref().map_or(it, |b| b.3);
            if gap <= GAP_TARGET {
                return Ok((x, y, it));
            }
            if it >= best_it + 5 && best.as_ref().is_some_and(|b| b.0 <= GAP_TOL) {
                stop = "no progress in 5 iterations";
                break; // rounding floor reached below the certified tolerance
            }
            let mu =
                (re_trace_prod(&x, &sm) + s.iter().zip(&y).map(|(a, b)| a * b).sum::<f64>()) / nu;
            let sinv = herm(&zmul(&ls_inv_h, &ls_inv));
            // Schur complement B_kl = Re tr(Q_k X Q_l S⁻¹) + δ_kl s_k/y_k via the T×T products
            let p_mat = zmul(&self.hs_h, &xh);
            let sh = zmul(&sinv, &self.hs);
            let r_mat = zmul(&self.hs_h, &sh);
            let mut b = DMatrix::<f64>::zeros(kk, kk);
            for (a, &(oa, wa)) in self.blocks.iter().enumerate() {
                for (bb, &(ob, wb)) in self.blocks.iter().enumerate().skip(a) {
                    let mut v = 0.0;
                    for i in oa..oa + wa {
                        for j in ob..ob + wb {
                            let (pp, rr) = (p_mat[(i, j)], r_mat[(i, j)]);
                            v += pp.re * rr.re + pp.im * rr.im;
                        }
                    }
                    b[(a, bb)] = v;
                    b[(bb, a)] = v;
                }
                b[(a, a)] += s[a] / y[a];
            }
            let tr_qs: Vec<f64> = self
                .blocks
                .iter()
                .map(|&(off, w)| (off..off + w).map(|j| r_mat[(j, j)].re).sum())
                .collect();
            let Some(chol_b) = b.cholesky() else {
                stop = "a singular Schur complement";
                break;
            };
            // one Newton direction for centring σ and corrector terms (Cx, corr)
            let direction = |sigma: f64,
                             cx: Option<&CMat>,
                             corr: Option<&[f64]>|
             -> (CMat, Vec<f64>, CMat, Vec<f64>) {
                let cq = cx.map(|m| self.traces(m));
                let rhs = nalgebra::DVector::<f64>::from_fn(kk, |k, _| {
                    let mut r = 1.0 - sigma * mu * (tr_qs[k] - 1.0 / y[k]);
                    if let Some(cq) = &cq {
                        r += cq[k];
                    }
                    if let Some(corr) = corr {
                        r -= corr[k];
                    }
                    r
                });
                let dy = chol_b.solve(&rhs);
                let dy: Vec<f64> = dy.iter().cloned().collect();
                let dmat = self.weighted_gram(&dy);
                // ΔX = herm(σμS⁻¹ − X − Cx + X D S⁻¹), ΔS = −D
                let mut dx = &sinv * C64::new(sigma * mu, 0.0) - &x;
                if let Some(cx) = cx {
                    dx -= cx;
                }
                dx += zmul(&zmul(&x, &dmat), &sinv);
                let dx = herm(&dx);
                let ds: Vec<f64> = (0..kk)
                    .map(|k| {
                        sigma * mu / y[k] - s[k] - corr.map_or(0.0, |c| c[k]) - s[k] * dy[k] / y[k]
                    })
                    .collect();
                (dx, ds, -dmat, dy)
            };
            let steps = |dx: &CMat, ds: &[f64], dsm: &CMat, dy: &[f64]| -> (f64, f64) {
                let mut ap = max_step(&lx_inv, &lx_inv_h, dx);
                let mut ad = max_step(&ls_inv, &ls_inv_h, dsm);
                for k in 0..kk {
                    if ds[k] < 0.0 {
                        ap = ap.min(-s[k] / ds[k]);
                    }
                    if dy[k] < 0.0 {
                        ad = ad.min(-y[k] / dy[k]);
                    }
                }
                (ap, ad)
            };
            // predictor (affine scaling)
            let (dx_a, ds_a, dsm_a, dy_a) = direction(0.0, None, None);
            let (ap, ad) = steps(&dx_a, &ds_a, &dsm_a, &dy_a);
            let (ap, ad) = (ap.min(1.0), ad.min(1.0));
            let x_a = &x + &dx_a * C64::new(ap, 0.0);
            let s_mat_a = &sm + &dsm_a * C64::new(ad, 0.0);
            let mu_a = (re_trace_prod(&x_a, &s_mat_a)
                + (0..kk)
                    .map(|k| (s[k] + ap * ds_a[k]) * (y[k] + ad * dy_a[k]))
                    .sum::<f64>())
                / nu;
            let sigma = (mu_a / mu).clamp(0.0, 1.0).powi(3);
            // corrector: second-order terms of the predictor
            let cx = zmul(&zmul(&dx_a, &dsm_a), &sinv);
            let corr: Vec<f64> = (0..kk).map(|k| ds_a[k] * dy_a[k] / y[k]).collect();
            let (dx, ds, dsm, dy) = direction(sigma, Some(&cx), Some(&corr));
            let (ap, ad) = steps(&dx, &ds, &dsm, &dy);
            let ap = (STEP_FRACTION * ap).min(1.0);
            let ad = (STEP_FRACTION * ad).min(1.0);
            x = herm(&(&x + &dx * C64::new(ap, 0.0)));
            for k in 0..kk {
                s[k] += ap * ds[k];
                y[k] += ad * dy[k];
            }
            if ap < 1e-12 && ad < 1e-12 {
                stop = "a stalled step";
                break;
            }
        }
        match best {
            Some((gap, x, y, it)) if gap <= GAP_TOL => Ok((x, y, it + 1)),
            Some((gap, ..)) => bad(format!(
                "SDP: no certificate (stopped by {stop}; best relative gap {gap:.2e} > {GAP_TOL:.0e})"
            )),
            None => bad(format!("SDP: no certificate (stopped by {stop} at the start)")),
        }
    }
}

/// The certificate in the original data: M = X/ρ scaled to meet every constraint; y mapped back
/// and, if rounding puts `I − Σ y_k Q_k` on the boundary, shrunk until its Cholesky succeeds.
fn certify(
    h: &[CMat],
    c: &[f64],
    active: &[usize],
    rho: f64,
    x: &CMat,
    y_norm: &[f64],
    iterations: u32,
) -> Result<SdpSolution, AirCompError> {
    let n = x.nrows();
    let mut m = x * C64::new(1.0 / rho, 0.0);
    let mut scale: f64 = 1.0;
    for &k in active {
        let hm = h[k].adjoint() * &m * &h[k];
        let t: f64 = (0..hm.nrows()).map(|i| hm[(i, i)].re).sum();
        if t.is_nan() || t <= 0.0 {
            return bad(format!(
                "SDP: the solution does not reach device {k} (numerical breakdown)"
            ));
        }
        scale = scale.max(c[k] / t);
    }
    m *= C64::new(scale, 0.0);
    let primal: f64 = (0..n).map(|i| m[(i, i)].re).sum();
    let mut y = vec![0.0; h.len()];
    for (&k, &yk) in active.iter().zip(y_norm) {
        y[k] = yk.max(0.0) / (c[k] * rho);
    }
    let slack = |y: &[f64]| {
        let mut s = CMat::identity(n, n);
        for (hk, &yk) in h.iter().zip(y) {
            if yk > 0.0 {
                s.gemm(C64::new(-yk, 0.0), hk, &hk.adjoint(), C64::new(1.0, 0.0));
            }
        }
        herm(&s)
    };
    let eps = f64::EPSILON;
    let gamma = |m: usize| m as f64 * eps / (1.0 - m as f64 * eps);
    let t_all: usize = h.iter().map(|hk| hk.ncols()).sum();
    let mut shrink = 0.0;
    for attempt in 0..=12 {
        let yt: Vec<f64> = y.iter().map(|v| v * (1.0 - shrink)).collect();
        // a Cholesky that completes in f64 proves S + E ≻ 0 with ‖E‖₂ ≤ n·γ_{n+1}·max_i S_ii
        // (Demmel); S itself carries the rounding of I − Σ y_k Q_k, ≤ γ_T·(1 + Σ y_k tr Q_k).
        // Shifting by twice both makes the test one-sided: success proves S ⪰ 0.
        let st = slack(&yt);
        let maxdiag = (0..n).map(|i| st[(i, i)].re).fold(0.0, f64::max);
        let load: f64 = h
            .iter()
            .zip(&yt)
            .map(|(hk, yk)| yk * hk.norm_squared())
            .sum();
        let shift = 2.0 * (n as f64 * gamma(n + 1) * maxdiag + gamma(t_all + 1) * (1.0 + load));
        let shifted = st - CMat::identity(n, n) * C64::new(shift, 0.0);
        if cholesky(&shifted).is_some() {
            let dual: f64 = yt.iter().zip(c).map(|(a, b)| a * b).sum();
            let sol = SdpSolution {
                m,
                primal,
                dual,
                y: yt,
                iterations,
            };
            let gap = sol.rel_gap();
            if gap > GAP_TOL {
                return bad(format!(
                    "SDP: certified relative gap {gap:.2e} > {GAP_TOL:.0e} after {iterations} iterations"
                ));
            }
            return Ok(sol);
        }
        shrink = 1e-13 * 10f64.powi(attempt);
    }
    bad("SDP: no dual point certifies the bound (numerical breakdown)")
}

#[cfg(test)]
mod tests;
