//! Hot-path kernels.
//!
//! * Decode (one token): weights stay block-quantised (GGML's Q4_0, Q4_1, Q8_0, Q5_0, Q5_1
//!   blocks; the k-quants and IQ4 types repacked losslessly into 32-value blocks, `repack.rs`),
//!   the activation vector is quantised to 8 bits per 32-block (like ggml's Q8_1) and each output
//!   is a sum of integer block dot products, scaled. AVX2 and AVX-512 VNNI with runtime
//!   detection, portable fallback.
//! * Prefill (many tokens): quantised weights meet 8-bit activations (quantised as for decode)
//!   in an integer GEMM (`qgemm.rs`, AVX-512 VNNI / AVX2 / portable, the same bits); dense
//!   (f32) weights are multiplied by the f32 activations with the `gemm` crate's kernels.
//!
//! Every kernel splits work over output rows only, never over the reduction dimension, so results
//! are bit-identical whatever the thread count.
//!
//! Layout: the activation and weight types and the runtime kernel dispatch (`AIRINFER_SIMD`,
//! CPU feature detection) are here; the decode mat-vecs in `matvec.rs`, the prefill GEMMs in
//! `sgemm.rs`, the rounding-error magnitudes in `magnitudes.rs`, the portable kernels in
//! `portable.rs` and the AVX2 / AVX-512 VNNI ones in `x86.rs`.

use rayon::prelude::*;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

mod magnitudes;
mod matvec;
mod portable;
mod qgemm;
mod repack;
mod sgemm;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use self::matvec::matvec_q_multi;
pub use self::portable::dot_f32;
use self::portable::{generic_portable, q4_portable, q8_portable};
pub use self::qgemm::matmul_q_multi;
pub use self::repack::{packing_for, repack_is_identity, repack_row};
pub use self::sgemm::{sgemm_ab, sgemm_abt, sgemm_abt_serial};

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
    /// Per block, `d · Σ q` over elements 0–15 and over 16–31 (the offsets of Q2F, per half).
    pub dsum_h: Vec<[f32; 2]>,
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
        self.dsum_h.resize(nb, [0.0; 2]);
        #[cfg(target_arch = "x86_64")]
        if select_kernel() != Kernel::Portable {
            // SAFETY: the non-portable kernels are selected only when the CPU reports avx2
            unsafe { self.quantize_blocks_avx2(x) };
            return;
        }
        self.quantize_blocks(x);
    }

    /// [`QActs::quantize_blocks`] compiled for AVX2: the same element-wise operations (IEEE
    /// exact, no contraction), so the same bytes and scales.
    ///
    /// # Safety
    /// Needs avx2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn quantize_blocks_avx2(&mut self, x: &[f32]) {
        self.quantize_blocks(x)
    }

    /// The blocks of `x` into the buffers (sized by the caller).
    #[inline(always)]
    fn quantize_blocks(&mut self, x: &[f32]) {
        for b in 0..x.len() / QK {
            let xb: &[f32; QK] = x[b * QK..(b + 1) * QK].try_into().unwrap();
            // eight running maxima (an order-free max: the same value as one fold)
            let mut m8 = [0.0f32; 8];
            for c in xb.chunks_exact(8) {
                for (m, v) in m8.iter_mut().zip(c) {
                    *m = m.max(v.abs());
                }
            }
            let amax = m8.iter().fold(0.0f32, |m, v| m.max(*v));
            let d = amax / 127.0;
            let id = if d > 0.0 { 1.0 / d } else { 0.0 };
            let qb: &mut [i8; QK] = (&mut self.qs[b * QK..(b + 1) * QK]).try_into().unwrap();
            for (q, &v) in qb.iter_mut().zip(xb) {
                *q = round_half_away(v * id).clamp(-127, 127) as i8;
            }
            let s0: i32 = qb[..16].iter().map(|&q| q as i32).sum();
            let s1: i32 = qb[16..].iter().map(|&q| q as i32).sum();
            self.d[b] = d;
            self.dsum[b] = d * (s0 + s1) as f32;
            self.dsum_h[b] = [d * s0 as f32, d * s1 as f32];
        }
    }

    /// Number of 32-blocks.
    pub fn blocks(&self) -> usize {
        self.d.len()
    }
}

/// `v.round() as i32` (halves away from zero; NaN gives 0) for |v| < 2³¹, without the libm
/// call `round` becomes on baseline x86-64: truncate, then step away from zero when the
/// (exact) remainder is at least a half. Vectorises.
#[inline(always)]
fn round_half_away(v: f32) -> i32 {
    let t = v as i32;
    let rem = v - t as f32;
    t + (rem >= 0.5) as i32 - (rem <= -0.5) as i32
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
    /// GGML Q8_0 blocks (34 bytes per 32 weights): f16 `d`, 32 × i8; `w = q·d` (also IQ4_NL,
    /// its code book's values as i8).
    Q8_0,
    /// GGML Q5_0 blocks (22 bytes): f16 `d`, u32 fifth bits, 16 bytes of nibbles; `w = (u−16)·d`.
    Q5_0,
    /// GGML Q5_1 blocks (24 bytes): f16 `d`, f16 `m`, u32 fifth bits, nibbles; `w = u·d + m`.
    Q5_1,
    /// Q4_K repacked (24 bytes): f32 `d`, f32 `m`, nibbles; `w = u·d + m` ([`repack_row`]).
    Q4F,
    /// Q5_K repacked (28 bytes): f32 `d`, f32 `m`, u32 fifth bits, nibbles.
    Q5F,
    /// Q6_K, Q3_K and IQ4_XS repacked (40 bytes): f32 scales of values 0–15 and 16–31, 32 × i8.
    Q8S,
    /// Q2_K repacked (32 bytes): f32 scales of values 0–15 and 16–31, f32 offsets of each,
    /// 16 bytes of nibbles (codes 0–3); `w = u·d_h + m_h`.
    Q2F,
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
            Packing::Q5_0 => 22,
            Packing::Q5_1 | Packing::Q4F => 24,
            Packing::Q2F => 32,
            Packing::Q5F => 28,
            Packing::Q8S => 40,
            Packing::Dense => 0,
        }
    }
}

#[inline(always)]
fn f16_at(b: &[u8], i: usize) -> f32 {
    half::f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Rows of a quantised matrix interleaved block by block, so that the decode kernel's four rows
/// are one contiguous stream (as llama.cpp's repacked 4-row layouts): group `g` holds rows
/// `4g .. 4g + 4`, its block `b` of row `4g + i` at `((g · blocks_per_row + b) · 4 + i)` blocks.
pub const GROUP: usize = 4;

/// A weight matrix of `rows` outputs × `cols` inputs in the layout the kernels want.
/// Row `r` holds the weights that produce output `r` (GGML's layout: `dims[0] = cols`).
#[derive(Debug)]
pub struct PackedMatrix {
    /// Number of outputs.
    pub rows: usize,
    /// Number of inputs (row length).
    pub cols: usize,
    packing: Packing,
    /// The blocks, [`GROUP`] rows interleaved block by block, the rows padded with zero blocks
    /// to a whole group (quantised packings only).
    blocks: Vec<u8>,
    /// Dequantised weights (`rows × cols`, row-major); built at construction for
    /// [`Packing::Dense`], else on first use off the hot paths.
    dense: OnceLock<Vec<f32>>,
    /// The prefill GEMM's layout of a quantised matrix, built on first use (`qgemm.rs`).
    prefill: OnceLock<qgemm::PrefillPack>,
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
            prefill: OnceLock::new(),
        }
    }

    /// A quantised matrix from its blocks (`rows · cols/32` of them, row-major), stored
    /// interleaved by groups of [`GROUP`] rows.
    pub fn from_blocks(
        packing: Packing,
        rows: usize,
        cols: usize,
        blocks: Vec<u8>,
    ) -> PackedMatrix {
        assert!(packing != Packing::Dense && cols.is_multiple_of(QK));
        let (bb, nb) = (packing.block_bytes(), cols / QK);
        assert_eq!(blocks.len(), rows * nb * bb);
        let groups = rows.div_ceil(GROUP);
        let mut inter = vec![0u8; groups * GROUP * nb * bb];
        for r in 0..rows {
            for b in 0..nb {
                let dst = ((r / GROUP * nb + b) * GROUP + r % GROUP) * bb;
                inter[dst..dst + bb]
                    .copy_from_slice(&blocks[(r * nb + b) * bb..(r * nb + b + 1) * bb]);
            }
        }
        let blocks = inter;
        PackedMatrix {
            rows,
            cols,
            packing,
            blocks,
            dense: OnceLock::new(),
            prefill: OnceLock::new(),
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

    /// The blocks of group `g` (rows `4g .. 4g + 4`, interleaved).
    fn group(&self, g: usize) -> &[u8] {
        let gb = GROUP * self.cols / QK * self.packing.block_bytes();
        &self.blocks[g * gb..(g + 1) * gb]
    }

    /// Row `r`'s blocks, gathered (a copy: for the paths off the decode kernels).
    fn row_blocks(&self, r: usize) -> Vec<u8> {
        let (bb, nb) = (self.packing.block_bytes(), self.cols / QK);
        let mut out = Vec::with_capacity(nb * bb);
        for b in 0..nb {
            let at = ((r / GROUP * nb + b) * GROUP + r % GROUP) * bb;
            out.extend_from_slice(&self.blocks[at..at + bb]);
        }
        out
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
            p => {
                for (o, blk) in out
                    .chunks_exact_mut(QK)
                    .zip(self.row_blocks(r).chunks_exact(bb))
                {
                    repack::Block::decode(p, blk).values(o);
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
}

/// The process's prefill arithmetic: 0 not yet chosen (`AIRINFER_F32_PREFILL` decides on first
/// use), 1 8-bit activations, 2 f32.
static PREFILL: AtomicU8 = AtomicU8::new(0);

/// Whether prefill multiplies f32 activations by the dequantised weights (the `gemm` crate's
/// f32 GEMM, the weights dequantised once and cached in f32) instead of 8-bit activations by
/// the weights' codes (the default, as llama.cpp) — slower and 4 bytes per weight more, but
/// continuous: no rounding of activations to 8 bits before the matrices in prefill (decode
/// still quantises). Chosen by [`set_f32_prefill`], else by `AIRINFER_F32_PREFILL=1`.
pub fn f32_prefill() -> bool {
    match PREFILL.load(Ordering::Relaxed) {
        0 => {
            let f = std::env::var("AIRINFER_F32_PREFILL").is_ok_and(|v| v == "1");
            // a concurrent first use reads the same variable; set_f32_prefill wins over it
            let _ = PREFILL.compare_exchange(0, 1 + f as u8, Ordering::Relaxed, Ordering::Relaxed);
            PREFILL.load(Ordering::Relaxed) == 2
        }
        v => v == 2,
    }
}

/// Choose the prefill arithmetic for the process (see [`f32_prefill`]); takes effect for every
/// GEMM that starts afterwards.
pub fn set_f32_prefill(f32: bool) {
    PREFILL.store(1 + f32 as u8, Ordering::Relaxed);
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
        if avx2
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
            && is_x86_feature_detected!("avx512vl")
        {
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
    /// The four rows of one interleaved group of `packing`'s blocks against the quantised
    /// activation.
    #[inline]
    fn rows(self, packing: Packing, group: &[u8], x: &QActs, out: &mut [f32; 4]) {
        match self {
            Kernel::Portable => {
                let bb = packing.block_bytes();
                let nb = group.len() / (GROUP * bb);
                for (r, o) in out.iter_mut().enumerate() {
                    let row: Vec<u8> = (0..nb)
                        .flat_map(|b| &group[(b * GROUP + r) * bb..(b * GROUP + r + 1) * bb])
                        .copied()
                        .collect();
                    *o = match packing {
                        Packing::Q4_0 => q4_portable(&row, false, x),
                        Packing::Q4_1 => q4_portable(&row, true, x),
                        Packing::Q8_0 => q8_portable(&row, x),
                        p => generic_portable(p, &row, x),
                    };
                }
            }
            #[cfg(target_arch = "x86_64")]
            // SAFETY: selected only when the CPU reports avx2, fma and f16c.
            Kernel::Avx2 => unsafe {
                use x86::*;
                match packing {
                    Packing::Q4_0 => rows_avx2::<Q4_0>(group, x, out),
                    Packing::Q4_1 => rows_avx2::<Q4_1>(group, x, out),
                    Packing::Q4F => rows_avx2::<Q4F>(group, x, out),
                    Packing::Q5_0 => rows_avx2::<Q5_0>(group, x, out),
                    Packing::Q5_1 => rows_avx2::<Q5_1>(group, x, out),
                    Packing::Q5F => rows_avx2::<Q5F>(group, x, out),
                    Packing::Q8_0 => rows_avx2::<Q8_0>(group, x, out),
                    Packing::Q8S => rows_avx2::<Q8S>(group, x, out),
                    Packing::Q2F => rows_avx2::<Q2F>(group, x, out),
                    Packing::Dense => unreachable!("dense matrices use the f32 path"),
                }
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: selected only when the CPU reports avx512vnni and avx512vl as well.
            Kernel::Vnni => unsafe {
                use x86::*;
                match packing {
                    Packing::Q4_0 => rows_vnni::<Q4_0>(group, x, out),
                    Packing::Q4_1 => rows_vnni::<Q4_1>(group, x, out),
                    Packing::Q4F => rows_vnni::<Q4F>(group, x, out),
                    Packing::Q5_0 => rows_vnni::<Q5_0>(group, x, out),
                    Packing::Q5_1 => rows_vnni::<Q5_1>(group, x, out),
                    Packing::Q5F => rows_vnni::<Q5F>(group, x, out),
                    Packing::Q8_0 => rows_vnni::<Q8_0>(group, x, out),
                    Packing::Q8S => rows_vnni::<Q8S>(group, x, out),
                    Packing::Q2F => rows_vnni::<Q2F>(group, x, out),
                    Packing::Dense => unreachable!("dense matrices use the f32 path"),
                }
            },
        }
    }
}

#[cfg(test)]
mod tests;
