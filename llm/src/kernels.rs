//! Hot-path kernels.
//!
//! * Decode (one token): weights stay block-quantised (Q4_0, Q4_1, Q8_0 from the GGUF), the
//!   activation vector is quantised to 8 bits per 32-block (like ggml's Q8_1) and each output is a
//!   sum of integer block dot products, scaled. AVX2 with runtime detection, portable fallback.
//! * Prefill (many tokens): weights dequantised once to f32 (lazily, on first use) and multiplied
//!   by the f32 activations with the `gemm` crate's tuned kernels.
//!
//! Every kernel splits work over output rows only, never over the reduction dimension, so results
//! are bit-identical whatever the thread count.

use rayon::prelude::*;
use std::sync::OnceLock;

/// Elements per quantisation block (GGML's QK for Q4_0/Q4_1/Q8_0).
pub const QK: usize = 32;

/// Activations quantised to 8 bits per block of [`QK`]: `x[b*32+i] ≈ d[b] · qs[b*32+i]`, with
/// `dsum[b] = d[b] · Σ_i qs[b*32+i]` kept for the offset term of Q4_0/Q4_1 weights.
#[derive(Debug, Clone, Default)]
pub struct QActs {
    /// Quantised values, `blocks · 32`.
    pub qs: Vec<i8>,
    /// Per-block scale.
    pub d: Vec<f32>,
    /// Per-block `d · Σ q`.
    pub dsum: Vec<f32>,
}

impl QActs {
    /// Quantise `x` (length a multiple of 32) with round-to-nearest, scale `max|x| / 127`.
    pub fn quantize(x: &[f32]) -> QActs {
        let mut a = QActs::default();
        a.quantize_into(x);
        a
    }

    /// As [`QActs::quantize`], reusing this buffer.
    pub fn quantize_into(&mut self, x: &[f32]) {
        assert!(
            x.len().is_multiple_of(QK),
            "activation length {} not a multiple of {QK}",
            x.len()
        );
        let nb = x.len() / QK;
        self.qs.resize(x.len(), 0);
        self.d.resize(nb, 0.0);
        self.dsum.resize(nb, 0.0);
        for b in 0..nb {
            let xb = &x[b * QK..(b + 1) * QK];
            let amax = xb.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            let id = if d > 0.0 { 1.0 / d } else { 0.0 };
            let mut s = 0i32;
            for (q, &v) in self.qs[b * QK..(b + 1) * QK].iter_mut().zip(xb) {
                let r = (v * id).round() as i32;
                *q = r.clamp(-127, 127) as i8;
                s += *q as i32;
            }
            self.d[b] = d;
            self.dsum[b] = d * s as f32;
        }
    }

    /// Number of 32-blocks.
    pub fn blocks(&self) -> usize {
        self.d.len()
    }
}

/// How a [`PackedMatrix`] stores its weights. The quantised packings keep GGML's own block
/// layout (so decode reads exactly the bytes the GGUF holds, one contiguous stream per row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// GGML Q4_0 blocks (18 bytes per 32 weights): f16 `d`, 16 bytes of nibbles; `w = (u−8)·d`.
    Q4_0,
    /// GGML Q4_1 blocks (20 bytes per 32 weights): f16 `d`, f16 `m`, 16 bytes of nibbles;
    /// `w = u·d + m`.
    Q4_1,
    /// GGML Q8_0 blocks (34 bytes per 32 weights): f16 `d`, 32 × i8; `w = q·d`.
    Q8_0,
    /// Plain f32 (F32, F16, BF16 tensors).
    Dense,
}

impl Packing {
    /// Bytes per block of 32 weights (0 for dense).
    pub fn block_bytes(self) -> usize {
        match self {
            Packing::Q4_0 => 18,
            Packing::Q4_1 => 20,
            Packing::Q8_0 => 34,
            Packing::Dense => 0,
        }
    }
}

#[inline(always)]
fn f16_at(b: &[u8], i: usize) -> f32 {
    half::f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// A weight matrix of `rows` outputs × `cols` inputs in the layout the kernels want.
/// Row `r` holds the weights that produce output `r` (GGML's layout: `dims[0] = cols`).
#[derive(Debug)]
pub struct PackedMatrix {
    /// Number of outputs.
    pub rows: usize,
    /// Number of inputs (row length).
    pub cols: usize,
    packing: Packing,
    /// GGML blocks, `rows · cols/32` of them, row-major (quantised packings only).
    blocks: Vec<u8>,
    /// Dequantised weights (`rows × cols`, row-major); built on first GEMM use, or at
    /// construction for [`Packing::Dense`].
    dense: OnceLock<Vec<f32>>,
}

impl PackedMatrix {
    /// A dense f32 matrix (row-major `rows × cols`).
    pub fn from_dense(rows: usize, cols: usize, w: Vec<f32>) -> PackedMatrix {
        assert_eq!(w.len(), rows * cols);
        let dense = OnceLock::new();
        let _ = dense.set(w);
        PackedMatrix {
            rows,
            cols,
            packing: Packing::Dense,
            blocks: vec![],
            dense,
        }
    }

    /// A quantised matrix from GGML blocks (`rows · cols/32` blocks, row-major).
    pub fn from_blocks(
        packing: Packing,
        rows: usize,
        cols: usize,
        blocks: Vec<u8>,
    ) -> PackedMatrix {
        assert!(packing != Packing::Dense && cols.is_multiple_of(QK));
        assert_eq!(blocks.len(), rows * cols / QK * packing.block_bytes());
        PackedMatrix {
            rows,
            cols,
            packing,
            blocks,
            dense: OnceLock::new(),
        }
    }

    /// The storage kind.
    pub fn packing(&self) -> Packing {
        self.packing
    }

    /// Bytes held in the quantised (decode) form.
    pub fn quantised_bytes(&self) -> usize {
        match self.packing {
            Packing::Dense => 4 * self.rows * self.cols,
            _ => self.blocks.len(),
        }
    }

    fn row_blocks(&self, r: usize) -> &[u8] {
        let rb = self.cols / QK * self.packing.block_bytes();
        &self.blocks[r * rb..(r + 1) * rb]
    }

    /// Row `r` dequantised into `out` (length `cols`).
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        assert_eq!(out.len(), self.cols);
        let bb = self.packing.block_bytes();
        match self.packing {
            Packing::Dense => {
                out.copy_from_slice(&self.dense()[r * self.cols..(r + 1) * self.cols])
            }
            Packing::Q4_0 | Packing::Q4_1 => {
                let q41 = self.packing == Packing::Q4_1;
                for (o, blk) in out
                    .chunks_exact_mut(QK)
                    .zip(self.row_blocks(r).chunks_exact(bb))
                {
                    let d = f16_at(blk, 0);
                    let (m, c) = if q41 {
                        (f16_at(blk, 2), &blk[4..20])
                    } else {
                        (-8.0 * d, &blk[2..18])
                    };
                    for j in 0..16 {
                        o[j] = d * (c[j] & 0x0F) as f32 + m;
                        o[j + 16] = d * (c[j] >> 4) as f32 + m;
                    }
                }
            }
            Packing::Q8_0 => {
                for (o, blk) in out
                    .chunks_exact_mut(QK)
                    .zip(self.row_blocks(r).chunks_exact(bb))
                {
                    let d = f16_at(blk, 0);
                    for j in 0..QK {
                        o[j] = d * (blk[2 + j] as i8) as f32;
                    }
                }
            }
        }
    }

    /// All weights dequantised, row-major `rows × cols` (computed once, then cached).
    pub fn dense(&self) -> &[f32] {
        self.dense.get_or_init(|| {
            let mut w = vec![0.0f32; self.rows * self.cols];
            w.par_chunks_mut(self.cols)
                .enumerate()
                .for_each(|(r, row)| self.dequantize_row(r, row));
            w
        })
    }

    /// `out[r] = Σ_c W[r,c] · x[c]` for one f32 activation vector.
    /// Quantised weights use the 8-bit activation path ([`QActs`]); dense weights use f32.
    pub fn matvec(&self, x: &[f32], xq: &mut QActs, out: &mut [f32]) {
        assert_eq!(x.len(), self.cols);
        assert_eq!(out.len(), self.rows);
        match self.packing {
            Packing::Dense => {
                let w = self.dense();
                par_rows(out, |r0, chunk| {
                    for (i, o) in chunk.iter_mut().enumerate() {
                        let r = r0 + i;
                        *o = dot_f32(&w[r * self.cols..(r + 1) * self.cols], x);
                    }
                });
            }
            _ => {
                xq.quantize_into(x);
                self.matvec_q(xq, out);
            }
        }
    }

    /// `out[r] = Σ_c W[r,c] · x[c]` for pre-quantised activations (quantised packings only).
    pub fn matvec_q(&self, xq: &QActs, out: &mut [f32]) {
        matvec_q_multi(&mut [(self, out)], xq);
    }

    /// Rows `r0 .. r0 + out.len()` of the quantised mat-vec, four rows at a time.
    fn rows_q(&self, r0: usize, out: &mut [f32], xq: &QActs, kernel: Kernel) {
        let mut i = 0;
        while i < out.len() {
            let n = (out.len() - i).min(4);
            let r = r0 + i;
            let mut res = [0.0f32; 4];
            // rows beyond the chunk repeat the last row (computed, then discarded)
            let rows = [r, r + 1.min(n - 1), r + 2.min(n - 1), r + 3.min(n - 1)]
                .map(|q| self.row_blocks(q));
            match self.packing {
                Packing::Q4_0 | Packing::Q4_1 => {
                    kernel.q4_rows(rows, self.packing == Packing::Q4_1, xq, &mut res)
                }
                Packing::Q8_0 => kernel.q8_rows(rows, xq, &mut res),
                Packing::Dense => unreachable!("dense matrices use the f32 path"),
            }
            out[i..i + n].copy_from_slice(&res[..n]);
            i += n;
        }
    }

    /// For every row, `Σ_b Σ_g |d_w·d_x·Σ_{j∈g} u_j q_j| + |m_b·dsum_b|` with `g` the eight
    /// groups of four consecutive elements of a block: the magnitudes of the floating-point
    /// summands that the SIMD paths of [`PackedMatrix::matvec_q`] add up for that row (the
    /// portable path adds whole blocks, whose magnitudes this bounds too; Q8_0 has no offset
    /// term). Portable, in f64, rounded up to f32. A diagnostic for rounding-error bounds
    /// ([`crate::tp::Collective::all_reduce_with_magnitudes`]).
    pub fn matvec_q_magnitudes(&self, xq: &QActs, out: &mut [f32]) {
        assert!(self.packing != Packing::Dense, "quantised matrices only");
        assert_eq!(xq.blocks() * QK, self.cols);
        assert_eq!(out.len(), self.rows);
        let bb = self.packing.block_bytes();
        let mut w = [0i32; QK];
        for (r, o) in out.iter_mut().enumerate() {
            let mut s = 0.0f64;
            for (b, blk) in self.row_blocks(r).chunks_exact(bb).enumerate() {
                let d = f16_at(blk, 0) as f64;
                // integer weights in element order, and the offset factor
                let m = match self.packing {
                    Packing::Q8_0 => {
                        for (j, wj) in w.iter_mut().enumerate() {
                            *wj = (blk[2 + j] as i8) as i32;
                        }
                        0.0
                    }
                    _ => {
                        let q41 = self.packing == Packing::Q4_1;
                        let (m, c) = if q41 {
                            (f16_at(blk, 2) as f64, &blk[4..20])
                        } else {
                            (-8.0 * d, &blk[2..18])
                        };
                        for j in 0..16 {
                            w[j] = (c[j] & 0x0F) as i32;
                            w[j + 16] = (c[j] >> 4) as i32;
                        }
                        m
                    }
                };
                let q = &xq.qs[b * QK..b * QK + QK];
                let dd = d * xq.d[b] as f64;
                for g in 0..QK / 4 {
                    let p: i32 = (4 * g..4 * g + 4).map(|j| w[j] * q[j] as i32).sum();
                    s += (dd * p as f64).abs();
                }
                s += (m * xq.dsum[b] as f64).abs();
            }
            *o = round_up(s);
        }
    }

    /// `M (t × rows)`, `M[i, r] = Σ_c |W[r,c] · x[i,c]|`: the magnitudes of the products that
    /// the f32 paths ([`PackedMatrix::matmul`], the dense mat-vec) add up. Portable, in f64,
    /// rounded up to f32.
    pub fn matmul_magnitudes(&self, x: &[f32], t: usize, out: &mut [f32]) {
        assert_eq!(x.len(), t * self.cols);
        assert_eq!(out.len(), t * self.rows);
        let w = self.dense();
        for i in 0..t {
            let xi = &x[i * self.cols..(i + 1) * self.cols];
            for r in 0..self.rows {
                let wr = &w[r * self.cols..(r + 1) * self.cols];
                let s: f64 = wr
                    .iter()
                    .zip(xi)
                    .map(|(a, b)| (*a as f64 * *b as f64).abs())
                    .sum();
                out[i * self.rows + r] = round_up(s);
            }
        }
    }

    /// `Y (t × rows) = X (t × cols) · Wᵀ` in f32 through the tuned GEMM (dequantising W once).
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
        let w = self.dense();
        sgemm_abt(t, self.rows, self.cols, x, w, y);
    }
}

/// A non-negative f64 rounded to an f32 that is not smaller (a bound stays a bound).
fn round_up(s: f64) -> f32 {
    let f = s as f32;
    if (f as f64) < s {
        f32::from_bits(f.to_bits() + 1)
    } else {
        f
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

/// Several quantised mat-vecs against the same activation in one parallel region (e.g. Q, K and
/// V, or gate and up), so that the threads are forked once instead of once per matrix.
pub fn matvec_q_multi(jobs: &mut [(&PackedMatrix, &mut [f32])], xq: &QActs) {
    let kernel = select_kernel();
    let total: usize = jobs.iter().map(|(m, _)| m.rows).sum();
    for (m, out) in jobs.iter() {
        assert!(m.packing != Packing::Dense, "matvec_q on a dense matrix");
        assert_eq!(xq.blocks() * QK, m.cols);
        assert_eq!(out.len(), m.rows);
    }
    let threads = rayon::current_num_threads();
    if threads <= 1 || total < 64 {
        for (m, out) in jobs.iter_mut() {
            m.rows_q(0, out, xq, kernel);
        }
        return;
    }
    // ~4 tasks per thread, in multiples of 4 rows, run by the spinning decode team
    let chunk = (total.div_ceil(threads * 4)).div_ceil(4).max(4) * 4;
    let mut tasks: Vec<(&PackedMatrix, usize, SendPtr, usize)> = Vec::new();
    for (m, out) in jobs.iter_mut() {
        for (i, c) in out.chunks_mut(chunk).enumerate() {
            tasks.push((*m, i * chunk, SendPtr(c.as_mut_ptr()), c.len()));
        }
    }
    crate::spin::SpinTeam::global().run(tasks.len(), threads, &|i| {
        let (m, r0, ptr, len) = &tasks[i];
        // SAFETY: the chunks come from `chunks_mut` of distinct outputs, so task i alone writes
        // these `len` floats, and `run` returns only after every task has finished.
        let c = unsafe { std::slice::from_raw_parts_mut(ptr.0, *len) };
        m.rows_q(*r0, c, xq, kernel);
    });
}

/// A raw output pointer handed to one task of the spinning team.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: each pointer is written by exactly one task (see `matvec_q_multi`).
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// Split `out` into row chunks processed in parallel; `f(first_row, chunk)`.
fn par_rows(out: &mut [f32], f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    let rows = out.len();
    let threads = rayon::current_num_threads();
    // Small matrices are not worth a fork; large ones get ~4 chunks per thread.
    if threads <= 1 || rows < 64 {
        f(0, out);
        return;
    }
    let chunk = rows.div_ceil(threads * 4).max(16);
    out.par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(i, c)| f(i * chunk, c));
}

/// f32 dot product (auto-vectorised; 8 independent accumulators).
#[inline]
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let chunks = n / 8;
    for c in 0..chunks {
        for j in 0..8 {
            acc[j] += a[c * 8 + j] * b[c * 8 + j];
        }
    }
    let mut s = 0.0f32;
    for i in chunks * 8..n {
        s += a[i] * b[i];
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + s
}

/// The integer block-dot kernels, chosen once per process by CPU feature detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Vnni,
}

/// The SIMD levels `AIRINFER_SIMD` may cap the kernels at (to test every path on one machine).
pub const SIMD_LEVELS: [&str; 3] = ["portable", "avx2", "avx512"];

/// The cap set by `AIRINFER_SIMD` (`portable`, `avx2` or `avx512`; unset or empty: none), or
/// an error naming the bad value. Without a cap the kernels use the best path the CPU has;
/// with one, the best path at or below it (a cap above what the CPU has changes nothing).
pub fn simd_cap() -> Result<Option<&'static str>, String> {
    match std::env::var("AIRINFER_SIMD") {
        Err(_) => Ok(None),
        Ok(v) if v.is_empty() => Ok(None),
        Ok(v) => SIMD_LEVELS
            .iter()
            .find(|l| **l == v)
            .map(|l| Some(*l))
            .ok_or_else(|| format!("AIRINFER_SIMD={v:?}: expected one of {SIMD_LEVELS:?}")),
    }
}

/// The kernels this CPU can run, slowest first: portable, then AVX2 (+FMA, F16C), then AVX-512
/// VNNI (which needs AVX2 too).
fn kernels_here() -> Vec<Kernel> {
    #[allow(unused_mut)]
    let mut k = vec![Kernel::Portable];
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c");
        if avx2 {
            k.push(Kernel::Avx2);
        }
        if avx2 && is_x86_feature_detected!("avx512vnni") && is_x86_feature_detected!("avx512vl") {
            k.push(Kernel::Vnni);
        }
    }
    k
}

fn select_kernel() -> Kernel {
    static K: OnceLock<Kernel> = OnceLock::new();
    *K.get_or_init(|| {
        // an invalid value is reported by the CLI at start-up; the library ignores it
        let cap = simd_cap().ok().flatten().unwrap_or("avx512");
        let level = SIMD_LEVELS.iter().position(|l| *l == cap).unwrap_or(2);
        // the kernels are ranked like SIMD_LEVELS: take the best one at or below the cap
        let k = kernels_here();
        k[level.min(k.len() - 1)]
    })
}

/// Name of the kernel this CPU runs (for benchmarks and reports).
pub fn kernel_name() -> &'static str {
    match select_kernel() {
        Kernel::Portable => "portable",
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => "avx2",
        #[cfg(target_arch = "x86_64")]
        Kernel::Vnni => "avx512-vnni",
    }
}

impl Kernel {
    /// Four rows of Q4_0 / Q4_1 blocks against the quantised activation.
    #[inline]
    fn q4_rows(self, rows: [&[u8]; 4], q41: bool, x: &QActs, out: &mut [f32; 4]) {
        match self {
            Kernel::Portable => {
                for r in 0..4 {
                    out[r] = q4_portable(rows[r], q41, x);
                }
            }
            #[cfg(target_arch = "x86_64")]
            // SAFETY: selected only when the CPU reports avx2, fma and f16c.
            Kernel::Avx2 => unsafe {
                if q41 {
                    x86::q4_1_avx2(rows, x, out)
                } else {
                    x86::q4_0_avx2(rows, x, out)
                }
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: selected only when the CPU reports avx512vnni and avx512vl as well.
            Kernel::Vnni => unsafe {
                if q41 {
                    x86::q4_1_vnni(rows, x, out)
                } else {
                    x86::q4_0_vnni(rows, x, out)
                }
            },
        }
    }

    /// Four rows of Q8_0 blocks against the quantised activation.
    #[inline]
    fn q8_rows(self, rows: [&[u8]; 4], x: &QActs, out: &mut [f32; 4]) {
        match self {
            Kernel::Portable => {
                for r in 0..4 {
                    out[r] = q8_portable(rows[r], x);
                }
            }
            #[cfg(target_arch = "x86_64")]
            // SAFETY: selected only when the CPU reports avx2, fma and f16c.
            Kernel::Avx2 => unsafe { x86::q8_0_avx2(rows, x, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: selected only when the CPU reports avx512vnni and avx512vl as well.
            Kernel::Vnni => unsafe { x86::q8_0_vnni(rows, x, out) },
        }
    }
}

fn q4_portable(row: &[u8], q41: bool, x: &QActs) -> f32 {
    let bb = if q41 { 20 } else { 18 };
    let mut s = 0.0f32;
    for (b, blk) in row.chunks_exact(bb).enumerate() {
        let d = f16_at(blk, 0);
        let (m, c) = if q41 {
            (f16_at(blk, 2), &blk[4..20])
        } else {
            (-8.0 * d, &blk[2..18])
        };
        let q = &x.qs[b * QK..b * QK + QK];
        let mut acc = 0i32;
        for j in 0..16 {
            acc += (c[j] & 0x0F) as i32 * q[j] as i32;
            acc += (c[j] >> 4) as i32 * q[j + 16] as i32;
        }
        s += d * x.d[b] * acc as f32 + m * x.dsum[b];
    }
    s
}

fn q8_portable(row: &[u8], x: &QActs) -> f32 {
    let mut s = 0.0f32;
    for (b, blk) in row.chunks_exact(34).enumerate() {
        let q = &x.qs[b * QK..b * QK + QK];
        let mut acc = 0i32;
        for j in 0..QK {
            acc += (blk[2 + j] as i8) as i32 * q[j] as i32;
        }
        s += f16_at(blk, 0) * x.d[b] * acc as f32;
    }
    s
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{QActs, QK};
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    /// 16 code bytes → 32 unsigned 4-bit values in element order (low nibbles, then high).
    #[inline(always)]
    unsafe fn unpack(p: *const u8) -> __m256i {
        let raw = _mm_loadu_si128(p as *const __m128i);
        let mask = _mm_set1_epi8(0x0F);
        _mm256_set_m128i(
            _mm_and_si128(_mm_srli_epi16(raw, 4), mask),
            _mm_and_si128(raw, mask),
        )
    }

    #[inline(always)]
    unsafe fn h2f(p: *const u8) -> f32 {
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(
            u16::from_le_bytes([*p, *p.add(1)]) as i32,
        )))
    }

    macro_rules! q4rows {
        ($name:ident, $feat:literal, $dot:ident, $bb:expr, $q41:expr) => {
            /// # Safety
            /// Needs the target features named. Row lengths are checked against `x`.
            #[target_feature(enable = $feat)]
            pub unsafe fn $name(rows: [&[u8]; 4], x: &QActs, out: &mut [f32; 4]) {
                let nb = rows[0].len() / $bb;
                assert!(x.qs.len() >= nb * QK && x.d.len() >= nb && x.dsum.len() >= nb);
                for r in 0..4 {
                    assert!(rows[r].len() >= nb * $bb);
                }
                let mut acc = [_mm256_setzero_ps(); 4];
                let mut macc = [0.0f32; 4];
                let qp = x.qs.as_ptr();
                for b in 0..nb {
                    let q = _mm256_loadu_si256(qp.add(b * QK) as *const __m256i);
                    let dx = *x.d.get_unchecked(b);
                    let ds = *x.dsum.get_unchecked(b);
                    for r in 0..4 {
                        let blk = rows[r].as_ptr().add(b * $bb);
                        _mm_prefetch(blk.add(8 * $bb) as *const i8, _MM_HINT_T0);
                        // d (and m) as f32 with one conversion
                        let dm = _mm_cvtph_ps(_mm_cvtsi32_si128(if $q41 {
                            i32::from_le_bytes([*blk, *blk.add(1), *blk.add(2), *blk.add(3)])
                        } else {
                            u16::from_le_bytes([*blk, *blk.add(1)]) as i32
                        }));
                        let d = _mm_cvtss_f32(dm);
                        let u = unpack(blk.add($bb - 16));
                        let p = $dot(u, q);
                        acc[r] =
                            _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(d * dx), acc[r]);
                        // offset term: m·Σx (Q4_1) or −8·d·Σx (Q4_0)
                        let m = if $q41 {
                            _mm_cvtss_f32(_mm_movehdup_ps(dm))
                        } else {
                            -8.0 * d
                        };
                        macc[r] += m * ds;
                    }
                }
                for r in 0..4 {
                    out[r] = hsum(acc[r]) + macc[r];
                }
            }
        };
    }

    macro_rules! q8rows {
        ($name:ident, $feat:literal, $dot:ident) => {
            /// # Safety
            /// Needs the target features named. Row lengths are checked against `x`.
            #[target_feature(enable = $feat)]
            pub unsafe fn $name(rows: [&[u8]; 4], x: &QActs, out: &mut [f32; 4]) {
                let nb = rows[0].len() / 34;
                assert!(x.qs.len() >= nb * QK && x.d.len() >= nb);
                for r in 0..4 {
                    assert!(rows[r].len() >= nb * 34);
                }
                let mut acc = [_mm256_setzero_ps(); 4];
                let qp = x.qs.as_ptr();
                for b in 0..nb {
                    let q = _mm256_loadu_si256(qp.add(b * QK) as *const __m256i);
                    let dx = *x.d.get_unchecked(b);
                    for r in 0..4 {
                        let blk = rows[r].as_ptr().add(b * 34);
                        _mm_prefetch(blk.add(8 * 34) as *const i8, _MM_HINT_T0);
                        let w = _mm256_loadu_si256(blk.add(2) as *const __m256i);
                        // |w| · (q with w's sign): the dot instructions need an unsigned left side
                        let p = $dot(_mm256_sign_epi8(w, w), _mm256_sign_epi8(q, w));
                        acc[r] = _mm256_fmadd_ps(
                            _mm256_cvtepi32_ps(p),
                            _mm256_set1_ps(h2f(blk) * dx),
                            acc[r],
                        );
                    }
                }
                for r in 0..4 {
                    out[r] = hsum(acc[r]);
                }
            }
        };
    }

    /// u8 × i8 → 8 × i32 sums of 4 products (maddubs saturates only beyond 2·255·127; our
    /// left sides are ≤ 15 (nibbles) or ≤ 128 (|i8|), so it never does).
    #[inline(always)]
    unsafe fn dot_avx2(u: __m256i, q: __m256i) -> __m256i {
        _mm256_madd_epi16(_mm256_maddubs_epi16(u, q), _mm256_set1_epi16(1))
    }

    #[inline(always)]
    unsafe fn dot_vnni(u: __m256i, q: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, q)
    }

    q4rows!(q4_0_avx2, "avx2,fma,f16c", dot_avx2, 18, false);
    q4rows!(q4_1_avx2, "avx2,fma,f16c", dot_avx2, 20, true);
    q4rows!(
        q4_0_vnni,
        "avx2,fma,f16c,avx512vnni,avx512vl",
        dot_vnni,
        18,
        false
    );
    q4rows!(
        q4_1_vnni,
        "avx2,fma,f16c,avx512vnni,avx512vl",
        dot_vnni,
        20,
        true
    );
    q8rows!(q8_0_avx2, "avx2,fma,f16c", dot_avx2);
    q8rows!(q8_0_vnni, "avx2,fma,f16c,avx512vnni,avx512vl", dot_vnni);
}

#[cfg(test)]
mod tests;
