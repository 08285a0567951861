//! The f32 GEMMs through the `gemm` crate (dense weights, attention).

use super::PackedMatrix;

impl PackedMatrix {
    /// `Y (t × rows) = X (t × cols) · Wᵀ`: the integer GEMM for quantised weights (8-bit
    /// activations, `qgemm.rs`), f32 through the tuned GEMM for dense ones (and for all with
    /// [`super::f32_prefill`]).
    pub fn matmul(&self, x: &[f32], t: usize, y: &mut [f32]) {
        assert_eq!(x.len(), t * self.cols);
        assert_eq!(y.len(), t * self.rows);
        if t == 0 || self.rows == 0 {
            return;
        }
        if self.cols == 0 {
            y.fill(0.0);
            return;
        }
        if !self.gemm_is_f32() {
            return self.matmul_q(x, t, y);
        }
        let w = self.dense();
        sgemm_abt(t, self.rows, self.cols, x, w, y);
    }
}

impl PackedMatrix {
    /// Whether [`PackedMatrix::matmul`] multiplies in f32 (dense weights, or
    /// `AIRINFER_F32_PREFILL=1`), else with 8-bit activations.
    pub fn gemm_is_f32(&self) -> bool {
        self.packing == super::Packing::Dense || super::f32_prefill()
    }
}

/// `C (m × n) = A (m × k) · Bᵀ` where B is `n × k` row-major; all f32, row-major, overwrites C.
pub fn sgemm_abt(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    let threads = rayon::current_num_threads();
    let par = if threads > 1 && m * n * k > 64 * 64 * 64 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    sgemm_abt_with(m, n, k, a, b, c, par)
}

/// As [`sgemm_abt`], on the calling thread only (for use inside an outer parallel loop).
pub fn sgemm_abt_serial(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    sgemm_abt_with(m, n, k, a, b, c, gemm::Parallelism::None)
}

fn sgemm_abt_with(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    par: gemm::Parallelism,
) {
    assert!(a.len() >= m * k && b.len() >= n * k && c.len() >= m * n);
    // Bᵀ (k × n) read from B's n × k row-major storage: row stride 1, column stride k
    gemm_strided(m, n, k, a, b, (1, k as isize), c, par);
}

/// `C (m × n) = A (m × k) · R`, R (k × n) read from `r` with (row, column) strides `rs`;
/// A and C row-major. Callers check that every index is inside the slices.
#[allow(clippy::too_many_arguments)]
fn gemm_strided(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    r: &[f32],
    rs: (isize, isize),
    c: &mut [f32],
    par: gemm::Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c[..m * n].fill(0.0);
        return;
    }
    // SAFETY: the callers' asserts bound every index the kernel touches: dst is m×n with row
    // stride n, lhs is m×k with row stride k, rhs is k×n with the given strides inside `r`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            r.as_ptr(),
            rs.1,
            rs.0,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        );
    }
}

/// `C (m × n) = A (m × k) · B` where B is `k × n` row-major; overwrites C. Serial.
pub fn sgemm_ab(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    gemm_strided(m, n, k, a, b, (n as isize, 1), c, gemm::Parallelism::None);
}
