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
        assert!(x.len() % QK == 0, "activation length {} not a multiple of {QK}", x.len());
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

/// How a [`PackedMatrix`] stores its weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// 4-bit unsigned codes, 16 bytes per block (low nibbles = elements 0..15, high = 16..31);
    /// `w = scale · u + bias` (Q4_1: bias = m; Q4_0: bias = −8·d).
    Nibbles,
    /// 8-bit signed codes, 32 bytes per block; `w = scale · q` (Q8_0).
    Bytes,
    /// Plain f32 (F32, F16, BF16 tensors, or any row length not a multiple of 32).
    Dense,
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
    /// `rows · cols/32` block scales.
    scale: Vec<f32>,
    /// `rows · cols/32` block offsets (Nibbles only).
    bias: Vec<f32>,
    /// Codes: 16 (Nibbles) or 32 (Bytes) per block.
    codes: Vec<u8>,
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
            scale: vec![],
            bias: vec![],
            codes: vec![],
            dense,
        }
    }

    /// Nibble-packed weights from per-block scale, bias and 16 code bytes per block.
    pub fn from_nibbles(
        rows: usize,
        cols: usize,
        scale: Vec<f32>,
        bias: Vec<f32>,
        codes: Vec<u8>,
    ) -> PackedMatrix {
        let nb = rows * cols / QK;
        assert!(cols % QK == 0 && scale.len() == nb && bias.len() == nb && codes.len() == nb * 16);
        PackedMatrix {
            rows,
            cols,
            packing: Packing::Nibbles,
            scale,
            bias,
            codes,
            dense: OnceLock::new(),
        }
    }

    /// Byte-packed (Q8_0-like) weights from per-block scale and 32 signed codes per block.
    pub fn from_bytes(rows: usize, cols: usize, scale: Vec<f32>, codes: Vec<i8>) -> PackedMatrix {
        let nb = rows * cols / QK;
        assert!(cols % QK == 0 && scale.len() == nb && codes.len() == nb * QK);
        let codes = codes.into_iter().map(|c| c as u8).collect();
        PackedMatrix {
            rows,
            cols,
            packing: Packing::Bytes,
            scale,
            bias: vec![],
            codes,
            dense: OnceLock::new(),
        }
    }

    /// The storage kind.
    pub fn packing(&self) -> Packing {
        self.packing
    }

    /// Bytes held in the quantised (decode) form.
    pub fn quantised_bytes(&self) -> usize {
        self.codes.len() + 4 * (self.scale.len() + self.bias.len())
            + if self.packing == Packing::Dense { 4 * self.rows * self.cols } else { 0 }
    }

    /// Row `r` dequantised into `out` (length `cols`).
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        assert_eq!(out.len(), self.cols);
        let nb = self.cols / QK;
        match self.packing {
            Packing::Dense => out.copy_from_slice(&self.dense()[r * self.cols..(r + 1) * self.cols]),
            Packing::Nibbles => {
                for b in 0..nb {
                    let i = r * nb + b;
                    let (s, m) = (self.scale[i], self.bias[i]);
                    let c = &self.codes[i * 16..(i + 1) * 16];
                    for j in 0..16 {
                        out[b * QK + j] = s * (c[j] & 0x0F) as f32 + m;
                        out[b * QK + j + 16] = s * (c[j] >> 4) as f32 + m;
                    }
                }
            }
            Packing::Bytes => {
                for b in 0..nb {
                    let i = r * nb + b;
                    let s = self.scale[i];
                    for j in 0..QK {
                        out[b * QK + j] = s * (self.codes[i * QK + j] as i8) as f32;
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
        let nb = self.cols / QK;
        assert_eq!(xq.blocks(), nb);
        assert_eq!(out.len(), self.rows);
        let kernel = select_kernel();
        par_rows(out, |r0, chunk| {
            for (i, o) in chunk.iter_mut().enumerate() {
                let r = r0 + i;
                let sc = &self.scale[r * nb..(r + 1) * nb];
                *o = match self.packing {
                    Packing::Nibbles => {
                        let bi = &self.bias[r * nb..(r + 1) * nb];
                        let codes = &self.codes[r * nb * 16..(r + 1) * nb * 16];
                        let v = kernel.nibbles(codes, sc, xq);
                        v + dot_f32(bi, &xq.dsum)
                    }
                    Packing::Bytes => {
                        let codes = &self.codes[r * nb * QK..(r + 1) * nb * QK];
                        kernel.bytes(codes, sc, xq)
                    }
                    Packing::Dense => unreachable!(),
                };
            }
        });
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
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c[..m * n].fill(0.0);
        return;
    }
    // SAFETY: the asserts above bound every index the kernel touches: dst is m×n with row stride
    // n, lhs is m×k with row stride k, rhs (= Bᵀ) is k×n read with row stride 1 and column
    // stride k from B's n×k row-major storage.
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
            b.as_ptr(),
            k as isize,
            1,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        );
    }
}

/// `C (m × n) = A (m × k) · B` where B is `k × n` row-major; overwrites C.
pub fn sgemm_ab(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c[..m * n].fill(0.0);
        return;
    }
    // SAFETY: as in `sgemm_abt`, with rhs read with row stride n and column stride 1.
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
            b.as_ptr(),
            1,
            n as isize,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

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
#[derive(Clone, Copy)]
enum Kernel {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

fn select_kernel() -> Kernel {
    static K: OnceLock<bool> = OnceLock::new();
    let avx2 = *K.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::env::var_os("AIRINFER_NO_SIMD").is_none()
                && is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    });
    #[cfg(target_arch = "x86_64")]
    if avx2 {
        return Kernel::Avx2;
    }
    let _ = avx2;
    Kernel::Portable
}

impl Kernel {
    /// Σ_b scale[b] · d_x[b] · Σ_i u[b,i] · q_x[b,i] for nibble codes.
    #[inline]
    fn nibbles(self, codes: &[u8], scale: &[f32], x: &QActs) -> f32 {
        match self {
            Kernel::Portable => nibbles_portable(codes, scale, x),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: Avx2 is only selected when the CPU reports avx2 and fma.
            Kernel::Avx2 => unsafe { x86::nibbles_avx2(codes, scale, x) },
        }
    }

    /// Σ_b scale[b] · d_x[b] · Σ_i q_w[b,i] · q_x[b,i] for signed byte codes.
    #[inline]
    fn bytes(self, codes: &[u8], scale: &[f32], x: &QActs) -> f32 {
        match self {
            Kernel::Portable => bytes_portable(codes, scale, x),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: Avx2 is only selected when the CPU reports avx2 and fma.
            Kernel::Avx2 => unsafe { x86::bytes_avx2(codes, scale, x) },
        }
    }
}

fn nibbles_portable(codes: &[u8], scale: &[f32], x: &QActs) -> f32 {
    let mut s = 0.0f32;
    for b in 0..scale.len() {
        let c = &codes[b * 16..b * 16 + 16];
        let q = &x.qs[b * QK..b * QK + QK];
        let mut acc = 0i32;
        for j in 0..16 {
            acc += (c[j] & 0x0F) as i32 * q[j] as i32;
            acc += (c[j] >> 4) as i32 * q[j + 16] as i32;
        }
        s += scale[b] * x.d[b] * acc as f32;
    }
    s
}

fn bytes_portable(codes: &[u8], scale: &[f32], x: &QActs) -> f32 {
    let mut s = 0.0f32;
    for b in 0..scale.len() {
        let c = &codes[b * QK..b * QK + QK];
        let q = &x.qs[b * QK..b * QK + QK];
        let mut acc = 0i32;
        for j in 0..QK {
            acc += (c[j] as i8) as i32 * q[j] as i32;
        }
        s += scale[b] * x.d[b] * acc as f32;
    }
    s
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{QActs, QK};
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    /// # Safety
    /// Requires avx2+fma; `codes.len() ≥ 16·nb`, `x.qs.len() ≥ 32·nb`, `x.d.len() ≥ nb`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn nibbles_avx2(codes: &[u8], scale: &[f32], x: &QActs) -> f32 {
        let nb = scale.len();
        assert!(codes.len() >= nb * 16 && x.qs.len() >= nb * QK && x.d.len() >= nb);
        let mask = _mm_set1_epi8(0x0F);
        let ones = _mm256_set1_epi16(1);
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        let cp = codes.as_ptr();
        let qp = x.qs.as_ptr();
        let mut b = 0;
        while b + 2 <= nb {
            let raw0 = _mm_loadu_si128(cp.add(b * 16) as *const __m128i);
            let raw1 = _mm_loadu_si128(cp.add(b * 16 + 16) as *const __m128i);
            let u0 = _mm256_set_m128i(
                _mm_and_si128(_mm_srli_epi16(raw0, 4), mask),
                _mm_and_si128(raw0, mask),
            );
            let u1 = _mm256_set_m128i(
                _mm_and_si128(_mm_srli_epi16(raw1, 4), mask),
                _mm_and_si128(raw1, mask),
            );
            let q0 = _mm256_loadu_si256(qp.add(b * QK) as *const __m256i);
            let q1 = _mm256_loadu_si256(qp.add(b * QK + QK) as *const __m256i);
            let p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(u0, q0), ones);
            let p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(u1, q1), ones);
            let s0 = _mm256_set1_ps(*scale.get_unchecked(b) * *x.d.get_unchecked(b));
            let s1 = _mm256_set1_ps(*scale.get_unchecked(b + 1) * *x.d.get_unchecked(b + 1));
            acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), s0, acc0);
            acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), s1, acc1);
            b += 2;
        }
        if b < nb {
            let raw0 = _mm_loadu_si128(cp.add(b * 16) as *const __m128i);
            let u0 = _mm256_set_m128i(
                _mm_and_si128(_mm_srli_epi16(raw0, 4), mask),
                _mm_and_si128(raw0, mask),
            );
            let q0 = _mm256_loadu_si256(qp.add(b * QK) as *const __m256i);
            let p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(u0, q0), ones);
            let s0 = _mm256_set1_ps(*scale.get_unchecked(b) * *x.d.get_unchecked(b));
            acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), s0, acc0);
        }
        hsum(_mm256_add_ps(acc0, acc1))
    }

    /// # Safety
    /// Requires avx2+fma; `codes.len() ≥ 32·nb`, `x.qs.len() ≥ 32·nb`, `x.d.len() ≥ nb`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn bytes_avx2(codes: &[u8], scale: &[f32], x: &QActs) -> f32 {
        let nb = scale.len();
        assert!(codes.len() >= nb * QK && x.qs.len() >= nb * QK && x.d.len() >= nb);
        let ones = _mm256_set1_epi16(1);
        let mut acc0 = _mm256_setzero_ps();
        let cp = codes.as_ptr();
        let qp = x.qs.as_ptr();
        for b in 0..nb {
            let w = _mm256_loadu_si256(cp.add(b * QK) as *const __m256i);
            let q = _mm256_loadu_si256(qp.add(b * QK) as *const __m256i);
            // |w| · (q with w's sign): maddubs needs an unsigned left operand.
            let aw = _mm256_sign_epi8(w, w);
            let sq = _mm256_sign_epi8(q, w);
            let p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sq), ones);
            let s = _mm256_set1_ps(*scale.get_unchecked(b) * *x.d.get_unchecked(b));
            acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), s, acc0);
        }
        hsum(acc0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn random_nibble_matrix(rows: usize, cols: usize, seed: &mut u64) -> PackedMatrix {
        let nb = rows * cols / QK;
        let scale = (0..nb).map(|_| lcg(seed) * 0.1).collect();
        let bias = (0..nb).map(|_| lcg(seed) * 0.5).collect();
        let codes = (0..nb * 16).map(|_| (lcg(seed).abs() * 255.0) as u8).collect();
        PackedMatrix::from_nibbles(rows, cols, scale, bias, codes)
    }

    fn random_byte_matrix(rows: usize, cols: usize, seed: &mut u64) -> PackedMatrix {
        let nb = rows * cols / QK;
        let scale = (0..nb).map(|_| lcg(seed) * 0.1).collect();
        // include the extreme code −128 that a hostile or odd file may hold
        let codes = (0..nb * QK)
            .map(|i| if i % 97 == 0 { -128 } else { (lcg(seed) * 127.0) as i8 })
            .collect();
        PackedMatrix::from_bytes(rows, cols, scale, codes)
    }

    /// Reference: dequantise W and the quantised x, then a plain f64 dot product.
    fn reference(w: &PackedMatrix, xq: &QActs) -> Vec<f32> {
        let xd: Vec<f64> = (0..w.cols)
            .map(|i| xq.d[i / QK] as f64 * xq.qs[i] as f64)
            .collect();
        let mut row = vec![0.0f32; w.cols];
        (0..w.rows)
            .map(|r| {
                w.dequantize_row(r, &mut row);
                row.iter().zip(&xd).map(|(a, b)| *a as f64 * b).sum::<f64>() as f32
            })
            .collect()
    }

    #[test]
    fn quantized_matvec_matches_reference_on_every_kernel() {
        let mut seed = 7u64;
        for &(rows, cols) in &[(1, 32), (3, 64), (70, 96), (130, 576)] {
            for m in [random_nibble_matrix(rows, cols, &mut seed), random_byte_matrix(rows, cols, &mut seed)] {
                let x: Vec<f32> = (0..cols).map(|_| lcg(&mut seed) * 3.0).collect();
                let xq = QActs::quantize(&x);
                let want = reference(&m, &xq);
                let mut got = vec![0.0; rows];
                m.matvec_q(&xq, &mut got);
                let mut portable = vec![0.0; rows];
                let nb = cols / QK;
                for r in 0..rows {
                    portable[r] = match m.packing {
                        Packing::Nibbles => {
                            nibbles_portable(&m.codes[r * nb * 16..], &m.scale[r * nb..(r + 1) * nb], &xq)
                                + dot_f32(&m.bias[r * nb..(r + 1) * nb], &xq.dsum)
                        }
                        _ => bytes_portable(&m.codes[r * nb * QK..], &m.scale[r * nb..(r + 1) * nb], &xq),
                    };
                }
                for r in 0..rows {
                    let tol = 1e-4 * (1.0 + want[r].abs());
                    assert!((got[r] - want[r]).abs() < tol, "{:?} {rows}x{cols} r{r}: {} vs {}", m.packing, got[r], want[r]);
                    assert!((portable[r] - want[r]).abs() < tol);
                }
            }
        }
    }

    #[test]
    fn activation_quantisation_error_is_within_half_a_step() {
        let mut seed = 3u64;
        let x: Vec<f32> = (0..256).map(|_| lcg(&mut seed) * 10.0).collect();
        let q = QActs::quantize(&x);
        for (i, v) in x.iter().enumerate() {
            let d = q.d[i / QK];
            let back = d * q.qs[i] as f32;
            assert!((back - v).abs() <= 0.5 * d + 1e-6);
        }
        let zero = QActs::quantize(&[0.0; 32]);
        assert_eq!(zero.d[0], 0.0);
        assert!(zero.qs.iter().all(|&q| q == 0));
    }

    #[test]
    fn gemm_matches_naive_and_is_thread_count_independent() {
        let mut seed = 11u64;
        let (t, rows, cols) = (37, 130, 96);
        let m = random_nibble_matrix(rows, cols, &mut seed);
        let x: Vec<f32> = (0..t * cols).map(|_| lcg(&mut seed)).collect();
        let w = m.dense().to_vec();
        let mut want = vec![0.0f64; t * rows];
        for i in 0..t {
            for r in 0..rows {
                want[i * rows + r] = (0..cols).map(|c| x[i * cols + c] as f64 * w[r * cols + c] as f64).sum();
            }
        }
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let mut y = vec![0.0f32; t * rows];
                m.matmul(&x, t, &mut y);
                y
            })
        };
        let y1 = run(1);
        let y2 = run(2);
        assert_eq!(y1, y2, "GEMM result depends on the thread count");
        for (a, b) in y1.iter().zip(&want) {
            assert!((*a as f64 - b).abs() < 1e-4 * (1.0 + b.abs()));
        }
    }
}
