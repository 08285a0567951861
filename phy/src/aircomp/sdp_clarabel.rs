//! The SDR's SDP through clarabel (a general conic interior-point solver), behind the optional
//! cargo feature `clarabel`: the reference our own solver ([`super::sdp`]) is cross-checked
//! against. clarabel's SDP cones need BLAS/LAPACK, which this feature links (system OpenBLAS,
//! `libopenblas-dev`), so the default build does not use it.

use super::AirCompError;
use crate::{CMat, C64};
use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettingsBuilder, DefaultSolver, IPSolver, SolverStatus, SupportedConeT,
};

extern "C" {
    fn openblas_set_num_threads(n: std::os::raw::c_int);
}

/// OpenBLAS's own threads only spin and yield on the small dense blocks of these SDPs (and
/// would compete with the Monte-Carlo threads): run BLAS on the calling thread.
fn single_threaded_blas() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: a plain setter exported by the OpenBLAS that `openblas-src` links.
    ONCE.call_once(|| unsafe { openblas_set_num_threads(1) });
}

/// clarabel's answer: the primal matrix, its objective and the dual objective (both in the
/// original scale), the status and the iterations.
#[derive(Debug, Clone)]
pub struct ClarabelSolution {
    /// The primal matrix M.
    pub m: CMat,
    /// clarabel's primal objective tr(M).
    pub primal: f64,
    /// clarabel's dual objective.
    pub dual: f64,
    /// clarabel's status ("Solved", "AlmostSolved", …).
    pub status: String,
    /// Iterations.
    pub iterations: u32,
}

/// `min tr(M) s.t. tr(M H_kH_kᴴ) ≥ c_k, M ⪰ 0` over complex Hermitian n×n M, via clarabel at
/// tight tolerances (1e-10 on gap and feasibility), with every constraint scaled like
/// [`super::sdp::solve`] does (`c_k` → 1, the largest `tr Q_k` → 1). The same formulation the
/// SDR used before our own solver; kept to cross-check it (`--features clarabel`).
pub fn solve(h: &[CMat], c: &[f64]) -> Result<ClarabelSolution, AirCompError> {
    solve_with(h, c, Tolerance::Tight)
}

/// clarabel's stopping rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tolerance {
    /// 1e-10 on gap and feasibility (the cross-check).
    Tight,
    /// clarabel's defaults (1e-8), as the SDR used before our own solver (the speed baseline).
    Default,
}

/// [`solve`] with a chosen stopping rule.
#[allow(clippy::needless_range_loop)]
pub fn solve_with(
    h: &[CMat],
    c: &[f64],
    tolerance: Tolerance,
) -> Result<ClarabelSolution, AirCompError> {
    single_threaded_blas();
    let n = h[0].nrows();
    if c.iter().any(|&v| v.is_nan() || v <= 0.0) {
        return Err(AirCompError::Invalid(
            "clarabel cross-check: every right-hand side must be > 0".into(),
        ));
    }
    let rho = h
        .iter()
        .zip(c)
        .map(|(hk, ck)| hk.norm_squared() / ck)
        .fold(0.0, f64::max);
    let q: Vec<CMat> = h
        .iter()
        .zip(c)
        .map(|(hk, ck)| hk * hk.adjoint() * C64::new(1.0 / (ck * rho), 0.0))
        .collect();
    let c = vec![1.0; q.len()];
    // variables: A_ij (i ≤ j) then B_ij (i < j), M = A + jB, A symmetric, B skew
    let mut a_idx = vec![vec![usize::MAX; n]; n];
    let mut nv = 0;
    for j in 0..n {
        for i in 0..=j {
            a_idx[i][j] = nv;
            a_idx[j][i] = nv;
            nv += 1;
        }
    }
    let mut b_idx = vec![vec![usize::MAX; n]; n];
    for j in 0..n {
        for i in 0..j {
            b_idx[i][j] = nv;
            nv += 1;
        }
    }
    // objective tr(M) = Σ A_ii
    let mut cost = vec![0.0; nv];
    for (i, row) in a_idx.iter().enumerate() {
        cost[row[i]] = 1.0;
    }
    let (mut ri, mut ci, mut vals, mut rhs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // tr(M Q) = Σ_i A_ii Qr_ii + 2 Σ_{i<j} (A_ij Qr_ij + B_ij Qi_ij)  ≥ c   →   −tr(MQ) + s = −c, s ≥ 0
    for (k, (qk, &ck)) in q.iter().zip(&c).enumerate() {
        for i in 0..n {
            for j in i..n {
                let (w, z) = (if i == j { 1.0 } else { 2.0 }, qk[(i, j)]);
                if z.re != 0.0 {
                    ri.push(k);
                    ci.push(a_idx[i][j]);
                    vals.push(-w * z.re);
                }
                if i < j && z.im != 0.0 {
                    ri.push(k);
                    ci.push(b_idx[i][j]);
                    vals.push(-w * z.im);
                }
            }
        }
        rhs.push(-ck);
    }
    // X = [[A, −Bᵀ…]] ⪰ 0 in clarabel's scaled upper-triangle, column-major vectorisation:
    // s = svec(X) = −(−svec(X(x))) → rows with −coefficients, b = 0
    let m2 = 2 * n;
    let mut row = q.len();
    let sqrt2 = std::f64::consts::SQRT_2;
    for col in 0..m2 {
        for r in 0..=col {
            let w = if r == col { 1.0 } else { sqrt2 };
            // entry X[r][col] as ±(one variable), or 0
            let entry: Option<(usize, f64)> = match (r < n, col < n) {
                (true, true) => Some((a_idx[r][col], 1.0)),
                (false, false) => Some((a_idx[r - n][col - n], 1.0)),
                (true, false) => {
                    // X[r][n+j] = −B_rj
                    let j = col - n;
                    if r < j {
                        Some((b_idx[r][j], -1.0))
                    } else if r > j {
                        Some((b_idx[j][r], 1.0))
                    } else {
                        None
                    }
                }
                (false, true) => unreachable!("upper triangle: r ≤ col"),
            };
            if let Some((v, sgn)) = entry {
                ri.push(row);
                ci.push(v);
                vals.push(-w * sgn);
            }
            rhs.push(0.0);
            row += 1;
        }
    }
    let a = CscMatrix::new_from_triplets(row, nv, ri, ci, vals);
    let pmat = CscMatrix::zeros((nv, nv));
    let cones = vec![
        SupportedConeT::NonnegativeConeT(q.len()),
        SupportedConeT::PSDTriangleConeT(m2),
    ];
    // faer's supernodal LDL is ~10× faster than the default QDLDL once the PSD block is large
    let method = if n >= 12 { "faer" } else { "qdldl" };
    let mut settings = DefaultSettingsBuilder::default();
    settings
        .direct_solve_method(method.into())
        .verbose(false)
        .max_iter(500);
    if tolerance == Tolerance::Tight {
        settings
            .tol_gap_abs(1e-10)
            .tol_gap_rel(1e-10)
            .tol_feas(1e-10)
            .tol_ktratio(1e-9);
    }
    let settings = settings
        .build()
        .map_err(|e| AirCompError::Invalid(format!("clarabel settings: {e:?}")))?;
    let mut solver = DefaultSolver::new(&pmat, &cost, &a, &rhs, &cones, settings)
        .map_err(|e| AirCompError::Invalid(format!("clarabel: {e:?}")))?;
    solver.solve();
    let sol = &solver.solution;
    if !matches!(
        sol.status,
        SolverStatus::Solved | SolverStatus::AlmostSolved
    ) {
        return Err(AirCompError::Invalid(format!(
            "clarabel did not solve the SDR: {:?}",
            sol.status
        )));
    }
    let x = &sol.x;
    let m = CMat::from_fn(n, n, |i, j| {
        let re = x[a_idx[i][j]];
        let im = match i.cmp(&j) {
            std::cmp::Ordering::Less => x[b_idx[i][j]],
            std::cmp::Ordering::Greater => -x[b_idx[j][i]],
            std::cmp::Ordering::Equal => 0.0,
        };
        C64::new(re / rho, im / rho)
    });
    Ok(ClarabelSolution {
        primal: sol.obj_val / rho,
        dual: sol.obj_val_dual / rho,
        m,
        status: format!("{:?}", sol.status),
        iterations: sol.iterations,
    })
}
