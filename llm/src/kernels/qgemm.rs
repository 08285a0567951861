//! The prefill path for quantised weights: an integer GEMM of 8-bit activations against the
//! weights' integer codes, as llama.cpp multiplies (its Q8 activations against the blocks), in
//! place of dequantising the weights to f32.
//!
//! Each token's activation row is quantised exactly as the decode path quantises it
//! ([`QActs`]: 8 bits per 32-block, scale `max|x| / 127`), and each output is, per block, the
//! exact integer dot of the weight codes with the 8-bit values, scaled — the decode path's
//! terms, so the error bounds of [`PackedMatrix::matvec_q_magnitudes`] hold for it too. The
//! floating-point part is the same sequence of operations for every token and row whatever the
//! instruction set, so the AVX-512 VNNI, AVX2 and portable paths give the same bits; work is
//! split over output rows only, so the thread count changes nothing either.
//!
//! Layout (built once per matrix, on first use, from the decode blocks): every row's codes as
//! bytes in element order (unsigned codes for the offset formats — `w = d·u + m` — and signed
//! values for Q8_0 / Q8S), the per-block scales and offsets beside them. Activations are laid
//! out in tiles of `tt` tokens (16 for AVX-512, 8 for AVX2): per block and per 4-value chunk,
//! the tile's tokens side by side, so one vector holds one chunk of every token of the tile and
//! a row's 4 codes are broadcast against it (`vpdpbusd`: 64 products per instruction).
//!
//! With unsigned codes the activation is the signed operand. Signed codes need an unsigned
//! partner: the AVX-512 path adds 128 to the activation (`q ^ 0x80`) and takes `128·Σw` off
//! again in the integers; the AVX2 path moves the weight's sign onto the activation
//! (`vpsignb`), as ggml does. Both give the exact integer `Σ w·q`.

use super::repack::Block;
use super::{select_kernel, Kernel, PackedMatrix, Packing, QActs, QK};
use rayon::prelude::*;

/// Weight rows per kernel call.
const R: usize = 4;
/// 4-value chunks per 32-block.
const CHUNKS: usize = QK / 4;
/// Tokens whose activation tiles stay in the cache while a task passes over every weight row.
const TOKEN_CHUNK: usize = 128;

/// A quantised matrix in the prefill layout (see the module documentation).
#[derive(Debug)]
pub(super) struct PrefillPack {
    /// Q8_0 / Q8S: the codes are signed values, there is no offset term.
    signed: bool,
    /// Q8S, Q2F: elements 0–15 and 16–31 of a block have their own scales (and Q2F its own
    /// offsets).
    two: bool,
    /// Rows rounded up to a whole number of kernel row groups (the extra rows are zero).
    rows_padded: usize,
    cols: usize,
    nb: usize,
    /// `rows_padded × cols` codes, row-major, element order.
    codes: Vec<u8>,
    /// Per row and block: the scale of elements 0–15 and of 16–31 (equal unless `two`).
    d: Vec<[f32; 2]>,
    /// Per row and block: the offset factor `m` of elements 0–15 and of 16–31 (unsigned
    /// formats; equal unless `two`).
    m: Vec<[f32; 2]>,
    /// Per row and block (signed formats): `128 · Σ w` over elements 0–15 and 16–31 when
    /// `two`, else over the whole block in `[0]`.
    s: Vec<[i32; 2]>,
}

impl PrefillPack {
    fn build(w: &PackedMatrix) -> PrefillPack {
        let (signed, two) = match w.packing {
            Packing::Q8_0 => (true, false),
            Packing::Q8S => (true, true),
            Packing::Q2F => (false, true),
            Packing::Dense => unreachable!("dense matrices use the f32 GEMM"),
            _ => (false, false),
        };
        let (cols, nb) = (w.cols, w.cols / QK);
        let rows_padded = w.rows.div_ceil(R) * R;
        let mut codes = vec![0u8; rows_padded * cols];
        let mut d = vec![[0.0f32; 2]; rows_padded * nb];
        let mut m = vec![[0.0f32; 2]; rows_padded * nb];
        let mut s = vec![[0i32; 2]; rows_padded * nb];
        let bb = w.packing.block_bytes();
        codes
            .par_chunks_mut(cols)
            .zip(d.par_chunks_mut(nb))
            .zip(m.par_chunks_mut(nb))
            .zip(s.par_chunks_mut(nb))
            .take(w.rows)
            .enumerate()
            .for_each(|(r, (((c, d), m), s))| {
                for (b, blk) in w.row_blocks(r).chunks_exact(bb).enumerate() {
                    let k = Block::decode(w.packing, blk);
                    for (o, &v) in c[b * QK..(b + 1) * QK].iter_mut().zip(&k.w) {
                        *o = if signed { v as i8 as u8 } else { v as u8 };
                    }
                    d[b] = k.d;
                    m[b] = k.m;
                    let sum = |js: std::ops::Range<usize>| 128 * k.w[js].iter().sum::<i32>();
                    s[b] = if two {
                        [sum(0..16), sum(16..32)]
                    } else {
                        [sum(0..32), 0]
                    };
                }
            });
        PrefillPack {
            signed,
            two,
            rows_padded,
            cols,
            nb,
            codes,
            d,
            m,
            s,
        }
    }
}

/// `t` activation rows quantised and laid out in tiles of `tt` tokens (the last tile padded
/// with zero tokens).
struct Tiles {
    tt: usize,
    nb: usize,
    n: usize,
    /// Per tile, block, chunk: `tt` tokens × 4 values.
    q: Vec<i8>,
    /// Per tile, block: the `tt` tokens' block scales.
    dx: Vec<f32>,
    /// Per tile, block: the `tt` tokens' `d · Σ q`.
    ds: Vec<f32>,
    /// The same over elements 0–15 and over 16–31 (for Q2F's offsets per half).
    ds_h: [Vec<f32>; 2],
}

impl Tiles {
    fn build(x: &[f32], t: usize, cols: usize, tt: usize) -> Tiles {
        let nb = cols / QK;
        let n = t.div_ceil(tt);
        let mut q = vec![0i8; n * nb * QK * tt];
        let mut dx = vec![0.0f32; n * nb * tt];
        let mut ds = vec![0.0f32; n * nb * tt];
        let mut ds0 = vec![0.0f32; n * nb * tt];
        let mut ds1 = vec![0.0f32; n * nb * tt];
        q.par_chunks_mut(nb * QK * tt)
            .zip(dx.par_chunks_mut(nb * tt))
            .zip(ds.par_chunks_mut(nb * tt))
            .zip(ds0.par_chunks_mut(nb * tt))
            .zip(ds1.par_chunks_mut(nb * tt))
            .enumerate()
            .for_each(|(tile, ((((q, dx), ds), ds0), ds1))| {
                let mut a = QActs::default();
                for i in 0..tt.min(t - tile * tt) {
                    let tok = tile * tt + i;
                    a.quantize_into(&x[tok * cols..(tok + 1) * cols]);
                    for b in 0..nb {
                        for k in 0..CHUNKS {
                            let at = ((b * CHUNKS + k) * tt + i) * 4;
                            q[at..at + 4]
                                .copy_from_slice(&a.qs[b * QK + 4 * k..b * QK + 4 * k + 4]);
                        }
                        dx[b * tt + i] = a.d[b];
                        ds[b * tt + i] = a.dsum[b];
                        [ds0[b * tt + i], ds1[b * tt + i]] = a.dsum_h[b];
                    }
                }
            });
        Tiles {
            tt,
            nb,
            n,
            q,
            dx,
            ds,
            ds_h: [ds0, ds1],
        }
    }
}

impl PackedMatrix {
    /// The prefill layout of this (quantised) matrix, built on first use.
    pub(super) fn prefill_pack(&self) -> &PrefillPack {
        self.prefill.get_or_init(|| PrefillPack::build(self))
    }

    /// `Y (t × rows) = X (t × cols) · Wᵀ` by the integer GEMM (quantised packings only).
    pub(super) fn matmul_q(&self, x: &[f32], t: usize, y: &mut [f32]) {
        self.matmul_q_with(select_kernel(), x, t, y)
    }

    /// [`PackedMatrix::matmul_q`] on the given kernel path.
    pub(super) fn matmul_q_with(&self, kernel: Kernel, x: &[f32], t: usize, y: &mut [f32]) {
        gemm_many(kernel, &mut [(self, y)], x, t)
    }

    /// `y (t × rows)` from activations already tiled for `kernel`.
    fn gemm_tiles(&self, kernel: Kernel, tiles: &Tiles, t: usize, y: &mut [f32]) {
        let tt = kernel.gemm_tile();
        assert!(tiles.tt == tt && tiles.nb * QK == self.cols && y.len() == t * self.rows);
        assert!(tiles.n == t.div_ceil(tt));
        let p = self.prefill_pack();
        let rows = self.rows;
        let groups = p.rows_padded / R;
        let threads = rayon::current_num_threads();
        if tiles.n >= 2 * threads {
            // enough tokens: each task owns whole token tiles, i.e. whole rows of `y`, and
            // passes over every weight row for a chunk of its tiles at a time
            let per_task = tiles.n.div_ceil(threads);
            y.par_chunks_mut(per_task * tt * rows)
                .enumerate()
                .for_each(|(ci, yc)| {
                    let first = ci * per_task;
                    let n = yc.len().div_ceil(tt * rows);
                    let mut buf = [0.0f32; R * 16];
                    for c0 in (0..n).step_by(TOKEN_CHUNK / tt) {
                        let c1 = (c0 + TOKEN_CHUNK / tt).min(n);
                        for g in 0..groups {
                            let nr = R.min(rows - g * R);
                            for k in c0..c1 {
                                kernel.gemm_tile_rows(p, g, tiles, first + k, &mut buf[..R * tt]);
                                for i in 0..tt.min(yc.len() / rows - k * tt) {
                                    let at = (k * tt + i) * rows + g * R;
                                    for r in 0..nr {
                                        yc[at + r] = buf[r * tt + i];
                                    }
                                }
                            }
                        }
                    }
                });
            return;
        }
        // few tokens: tasks own rows; their outputs are gathered transposed (row-major by weight
        // row), then put in place
        let tp = tiles.n * tt;
        let mut yt = vec![0.0f32; p.rows_padded * tp];
        let per_task = groups.div_ceil(threads * 4).max(1);
        yt.par_chunks_mut(per_task * R * tp)
            .enumerate()
            .for_each(|(ci, chunk)| {
                let g0 = ci * per_task;
                let mut buf = [0.0f32; R * 16];
                for gi in 0..chunk.len() / (R * tp) {
                    for tile in 0..tiles.n {
                        kernel.gemm_tile_rows(p, g0 + gi, tiles, tile, &mut buf[..R * tt]);
                        for r in 0..R {
                            let at = (gi * R + r) * tp + tile * tt;
                            chunk[at..at + tt].copy_from_slice(&buf[r * tt..(r + 1) * tt]);
                        }
                    }
                }
            });
        y.par_chunks_mut(rows).enumerate().for_each(|(i, yr)| {
            for (r, o) in yr.iter_mut().enumerate() {
                *o = yt[r * tp + i];
            }
        });
    }
}

/// Several integer GEMMs of the same `t` activation rows `x` (e.g. Q, K and V, or gate and
/// up), the activations quantised and tiled once: `jobs[j].1 = x · jobs[j].0ᵀ`. The matrices
/// must be quantised ([`PackedMatrix::gemm_is_f32`] false) with `x`'s row length.
pub fn matmul_q_multi(jobs: &mut [(&PackedMatrix, &mut [f32])], x: &[f32], t: usize) {
    gemm_many(select_kernel(), jobs, x, t)
}

/// [`matmul_q_multi`] on the given kernel path.
fn gemm_many(kernel: Kernel, jobs: &mut [(&PackedMatrix, &mut [f32])], x: &[f32], t: usize) {
    let Some(cols) = jobs.first().map(|(m, _)| m.cols) else {
        return;
    };
    for (m, y) in jobs.iter() {
        assert!(!m.gemm_is_f32() && m.cols == cols && y.len() == t * m.rows);
    }
    assert_eq!(x.len(), t * cols);
    if t == 0 {
        return;
    }
    let tiles = Tiles::build(x, t, cols, kernel.gemm_tile());
    for (m, y) in jobs.iter_mut() {
        if m.rows > 0 {
            m.gemm_tiles(kernel, &tiles, t, y);
        }
    }
}

impl Kernel {
    /// Tokens per activation tile of this kernel's GEMM.
    fn gemm_tile(self) -> usize {
        match self {
            Kernel::Portable => 8,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => 8,
            #[cfg(target_arch = "x86_64")]
            Kernel::Vnni => 16,
        }
    }

    /// Rows `R·g .. R·g + R` against tile `tile`: `out[r · tt + i]` for row `R·g + r`, token
    /// `tile · tt + i`.
    fn gemm_tile_rows(self, p: &PrefillPack, g: usize, a: &Tiles, tile: usize, out: &mut [f32]) {
        assert!((g + 1) * R <= p.rows_padded && tile < a.n && a.nb == p.nb);
        assert!(out.len() == R * a.tt && a.tt == self.gemm_tile());
        assert!(a.ds.len() == a.dx.len() && a.ds_h.iter().all(|v| v.len() == a.dx.len()));
        assert!(p.m.len() == p.d.len() && p.s.len() == p.d.len());
        match self {
            Kernel::Portable => tile_portable(p, g, a, tile, out),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: selected only when the CPU reports avx2 and fma; the bounds are asserted.
            Kernel::Avx2 => unsafe {
                match (p.signed, p.two) {
                    (false, false) => x86::tile_avx2::<false, false>(p, g, a, tile, out),
                    (false, true) => x86::tile_avx2::<false, true>(p, g, a, tile, out),
                    (true, false) => x86::tile_avx2::<true, false>(p, g, a, tile, out),
                    (true, true) => x86::tile_avx2::<true, true>(p, g, a, tile, out),
                }
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: selected only when the CPU reports avx512f/bw/vnni; bounds asserted.
            Kernel::Vnni => unsafe {
                match (p.signed, p.two) {
                    (false, false) => x86::tile_vnni::<false, false>(p, g, a, tile, out),
                    (false, true) => x86::tile_vnni::<false, true>(p, g, a, tile, out),
                    (true, false) => x86::tile_vnni::<true, false>(p, g, a, tile, out),
                    (true, true) => x86::tile_vnni::<true, true>(p, g, a, tile, out),
                }
            },
        }
    }
}

/// The reference order of operations every path follows, per row and token: per block (and
/// per half when `two`) `acc = fma(I, d_x·d, acc)` with `I` the exact integer dot, and
/// `macc = fma(dsum, m, macc)` for the offset; the result `acc + macc`.
fn tile_portable(p: &PrefillPack, g: usize, a: &Tiles, tile: usize, out: &mut [f32]) {
    let (tt, nb) = (a.tt, p.nb);
    let halves = if p.two { 2 } else { 1 };
    let span = QK / halves;
    for r in 0..R {
        let row = g * R + r;
        let codes = &p.codes[row * p.cols..(row + 1) * p.cols];
        for i in 0..tt {
            let (mut acc, mut macc) = (0.0f32, 0.0f32);
            for b in 0..nb {
                let xb = (tile * nb + b) * tt + i;
                let dx = a.dx[xb];
                for h in 0..halves {
                    let mut dot = 0i32;
                    for j in h * span..(h + 1) * span {
                        let c = codes[b * QK + j];
                        let w = if p.signed { c as i8 as i32 } else { c as i32 };
                        let at = (((tile * nb + b) * CHUNKS + j / 4) * tt + i) * 4 + j % 4;
                        dot += w * a.q[at] as i32;
                    }
                    acc = (dot as f32).mul_add(dx * p.d[row * nb + b][h], acc);
                }
                let m = p.m[row * nb + b];
                if p.two && !p.signed {
                    macc = a.ds_h[0][xb].mul_add(m[0], macc);
                    macc = a.ds_h[1][xb].mul_add(m[1], macc);
                } else if !p.signed {
                    macc = a.ds[xb].mul_add(m[0], macc);
                }
            }
            out[r * tt + i] = acc + macc;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{PrefillPack, Tiles, CHUNKS, R};
    use crate::kernels::QK;
    use std::arch::x86_64::*;

    /// The 4 codes of row `row`, block `b`, chunk `k` as one 32-bit lane value.
    #[inline(always)]
    unsafe fn codes4(p: &PrefillPack, row: usize, b: usize, k: usize) -> i32 {
        (p.codes.as_ptr().add(row * p.cols + b * QK + 4 * k) as *const i32).read_unaligned()
    }

    /// # Safety
    /// Needs avx512f, avx512bw, avx512vnni and fma; `g`, `tile` and `out` inside their
    /// buffers and `a.tt == 16` (asserted by the caller and here).
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,fma,avx2")]
    pub(super) unsafe fn tile_vnni<const SIGNED: bool, const TWO: bool>(
        p: &PrefillPack,
        g: usize,
        a: &Tiles,
        tile: usize,
        out: &mut [f32],
    ) {
        let nb = p.nb;
        assert!(a.tt == 16 && out.len() >= R * 16 && a.nb == nb);
        assert!((g + 1) * R * p.cols <= p.codes.len() && (g + 1) * R * nb <= p.d.len());
        assert!((tile + 1) * nb * QK * 16 <= a.q.len() && (tile + 1) * nb * 16 <= a.dx.len());
        let halves = if TWO { 2 } else { 1 };
        let per = CHUNKS / halves;
        let mut acc = [_mm512_setzero_ps(); R];
        let mut macc = [_mm512_setzero_ps(); R];
        let qbase = a.q.as_ptr().add(tile * nb * QK * 16);
        let xbase = tile * nb * 16;
        let flip = _mm512_set1_epi8(-128);
        for b in 0..nb {
            let dx = _mm512_loadu_ps(a.dx.as_ptr().add(xbase + b * 16));
            for h in 0..halves {
                let mut ia = [_mm512_setzero_si512(); R];
                if SIGNED {
                    for (r, v) in ia.iter_mut().enumerate() {
                        *v = _mm512_set1_epi32(-p.s.get_unchecked((g * R + r) * nb + b)[h]);
                    }
                }
                for k in h * per..(h + 1) * per {
                    let q = _mm512_loadu_si512(qbase.add((b * CHUNKS + k) * 64) as *const _);
                    let q = if SIGNED { _mm512_xor_si512(q, flip) } else { q };
                    for (r, v) in ia.iter_mut().enumerate() {
                        let w = _mm512_set1_epi32(codes4(p, g * R + r, b, k));
                        *v = if SIGNED {
                            _mm512_dpbusd_epi32(*v, q, w)
                        } else {
                            _mm512_dpbusd_epi32(*v, w, q)
                        };
                    }
                }
                for r in 0..R {
                    let d = p.d.get_unchecked((g * R + r) * nb + b)[h];
                    let dd = _mm512_mul_ps(dx, _mm512_set1_ps(d));
                    acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[r]), dd, acc[r]);
                }
            }
            if !SIGNED {
                // the offsets: per half (Q2F) or per block
                for h in 0..halves {
                    let ds = if TWO { &a.ds_h[h] } else { &a.ds };
                    let ds = _mm512_loadu_ps(ds.as_ptr().add(xbase + b * 16));
                    for (r, v) in macc.iter_mut().enumerate() {
                        let m = p.m.get_unchecked((g * R + r) * nb + b)[h];
                        *v = _mm512_fmadd_ps(ds, _mm512_set1_ps(m), *v);
                    }
                }
            }
        }
        for r in 0..R {
            _mm512_storeu_ps(out.as_mut_ptr().add(r * 16), _mm512_add_ps(acc[r], macc[r]));
        }
    }

    /// # Safety
    /// Needs avx2 and fma; `g`, `tile` and `out` inside their buffers and `a.tt == 8`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tile_avx2<const SIGNED: bool, const TWO: bool>(
        p: &PrefillPack,
        g: usize,
        a: &Tiles,
        tile: usize,
        out: &mut [f32],
    ) {
        let nb = p.nb;
        assert!(a.tt == 8 && out.len() >= R * 8 && a.nb == nb);
        assert!((g + 1) * R * p.cols <= p.codes.len() && (g + 1) * R * nb <= p.d.len());
        assert!((tile + 1) * nb * QK * 8 <= a.q.len() && (tile + 1) * nb * 8 <= a.dx.len());
        let halves = if TWO { 2 } else { 1 };
        let per = CHUNKS / halves;
        let mut acc = [_mm256_setzero_ps(); R];
        let mut macc = [_mm256_setzero_ps(); R];
        let qbase = a.q.as_ptr().add(tile * nb * QK * 8);
        let xbase = tile * nb * 8;
        let ones = _mm256_set1_epi16(1);
        for b in 0..nb {
            let dx = _mm256_loadu_ps(a.dx.as_ptr().add(xbase + b * 8));
            for h in 0..halves {
                let mut ia = [_mm256_setzero_si256(); R];
                if SIGNED {
                    // the weight's sign moved onto the activation: |w| · ±q, each pair of
                    // products ≤ 2 · 128 · 127 < 2¹⁵
                    for k in h * per..(h + 1) * per {
                        let q = _mm256_loadu_si256(qbase.add((b * CHUNKS + k) * 32) as *const _);
                        for (r, v) in ia.iter_mut().enumerate() {
                            let w = _mm256_set1_epi32(codes4(p, g * R + r, b, k));
                            let pr = _mm256_maddubs_epi16(
                                _mm256_sign_epi8(w, w),
                                _mm256_sign_epi8(q, w),
                            );
                            *v = _mm256_add_epi32(*v, _mm256_madd_epi16(pr, ones));
                        }
                    }
                } else {
                    // unsigned codes ≤ 31: a pair of products ≤ 2 · 31 · 127, four chunks'
                    // pairs ≤ 31 496 < 2¹⁵, summed in 16 bits before widening
                    for k4 in (h * per..(h + 1) * per).step_by(4) {
                        let mut s16 = [_mm256_setzero_si256(); R];
                        for k in k4..k4 + 4 {
                            let q =
                                _mm256_loadu_si256(qbase.add((b * CHUNKS + k) * 32) as *const _);
                            for (r, v) in s16.iter_mut().enumerate() {
                                let w = _mm256_set1_epi32(codes4(p, g * R + r, b, k));
                                *v = _mm256_add_epi16(*v, _mm256_maddubs_epi16(w, q));
                            }
                        }
                        for r in 0..R {
                            ia[r] = _mm256_add_epi32(ia[r], _mm256_madd_epi16(s16[r], ones));
                        }
                    }
                }
                for r in 0..R {
                    let d = p.d.get_unchecked((g * R + r) * nb + b)[h];
                    let dd = _mm256_mul_ps(dx, _mm256_set1_ps(d));
                    acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia[r]), dd, acc[r]);
                }
            }
            if !SIGNED {
                // the offsets: per half (Q2F) or per block
                for h in 0..halves {
                    let ds = if TWO { &a.ds_h[h] } else { &a.ds };
                    let ds = _mm256_loadu_ps(ds.as_ptr().add(xbase + b * 8));
                    for (r, v) in macc.iter_mut().enumerate() {
                        let m = p.m.get_unchecked((g * R + r) * nb + b)[h];
                        *v = _mm256_fmadd_ps(ds, _mm256_set1_ps(m), *v);
                    }
                }
            }
        }
        for r in 0..R {
            _mm256_storeu_ps(out.as_mut_ptr().add(r * 8), _mm256_add_ps(acc[r], macc[r]));
        }
    }
}
