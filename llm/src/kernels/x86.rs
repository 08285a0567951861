//! AVX2 (+FMA, F16C) and AVX-512 VNNI kernels of the quantised block dots: one generic
//! four-row kernel over the packings, instantiated per packing and instruction set.

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

/// Byte i = 16 where bit i of `qh` is set, else 0 (the fifth bits of a Q5 block).
#[inline(always)]
unsafe fn fifth_bits(qh: u32) -> __m256i {
    let v = _mm256_set1_epi32(qh as i32);
    // byte i takes byte i/8 of qh (the shuffle works per 128-bit lane; both hold qh)
    let spread = _mm256_shuffle_epi8(
        v,
        _mm256_setr_epi64x(
            0,
            0x0101_0101_0101_0101,
            0x0202_0202_0202_0202,
            0x0303_0303_0303_0303,
        ),
    );
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    let set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    _mm256_and_si256(set, _mm256_set1_epi8(16))
}

#[inline(always)]
unsafe fn f32_at(p: *const u8) -> f32 {
    (p as *const f32).read_unaligned()
}

#[inline(always)]
unsafe fn u32_at(p: *const u8) -> u32 {
    (p as *const u32).read_unaligned()
}

/// The packings as const-generic codes.
pub(super) const Q4_0: u8 = 0;
pub(super) const Q4_1: u8 = 1;
pub(super) const Q4F: u8 = 2;
pub(super) const Q5_0: u8 = 3;
pub(super) const Q5_1: u8 = 4;
pub(super) const Q5F: u8 = 5;
pub(super) const Q8_0: u8 = 6;
pub(super) const Q8S: u8 = 7;
pub(super) const Q2F: u8 = 8;

/// Bytes per 32-value block of packing code `F`.
const fn block_bytes(f: u8) -> usize {
    match f {
        Q4_0 => 18,
        Q4_1 | Q4F => 20 + 4 * (f == Q4F) as usize,
        Q5_0 => 22,
        Q5_1 => 24,
        Q5F => 28,
        Q8_0 => 34,
        Q2F => 32,
        _ => 40,
    }
}

/// The four rows of one interleaved group (block `b` of row `r` at `(4b + r)` blocks) of
/// packing `F` against the quantised activation: per block, a 32-value integer dot (`VNNI`:
/// one `vpdpbusd`; else `vpmaddubsw` + `vpmaddwd`), converted and scaled into 8 f32 lanes per
/// row; the offset terms `m · Σx` (Q4/Q5 formats) summed apart. The group is one forward
/// stream, prefetched 8 blocks ahead.
#[inline(always)]
unsafe fn rows4<const F: u8, const VNNI: bool>(group: &[u8], x: &QActs, out: &mut [f32; 4]) {
    let bb = block_bytes(F);
    let nb = group.len() / (4 * bb);
    assert!(x.qs.len() >= nb * QK && x.d.len() >= nb && x.dsum.len() >= nb);
    assert!(x.dsum_h.len() >= nb);
    assert!(group.len() >= nb * 4 * bb);
    let dot = |u: __m256i, q: __m256i| if VNNI { dot_vnni(u, q) } else { dot_avx2(u, q) };
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut macc = [0.0f32; 4];
    let qp = x.qs.as_ptr();
    for b in 0..nb {
        let q = _mm256_loadu_si256(qp.add(b * QK) as *const __m256i);
        let dx = *x.d.get_unchecked(b);
        let ds = *x.dsum.get_unchecked(b);
        let step = group.as_ptr().add(4 * b * bb);
        // 4·bb bytes per block step (72–160): two lines, 8 steps ahead
        _mm_prefetch(step.add(32 * bb) as *const i8, _MM_HINT_T0);
        _mm_prefetch(step.add(32 * bb + 64) as *const i8, _MM_HINT_T0);
        if bb > 32 {
            _mm_prefetch(step.add(32 * bb + 128) as *const i8, _MM_HINT_T0);
        }
        for r in 0..4 {
            let blk = step.add(r * bb);
            match F {
                Q8_0 | Q8S => {
                    let off = if F == Q8_0 { 2 } else { 8 };
                    let w = _mm256_loadu_si256(blk.add(off) as *const __m256i);
                    // |w| · (q with w's sign): the dot instructions need an unsigned left side
                    let p = dot(_mm256_sign_epi8(w, w), _mm256_sign_epi8(q, w));
                    let scale = if F == Q8_0 {
                        _mm256_set1_ps(h2f(blk) * dx)
                    } else {
                        // lanes 0-3 hold values 0-15, lanes 4-7 values 16-31
                        _mm256_set_m128(
                            _mm_set1_ps(f32_at(blk.add(4)) * dx),
                            _mm_set1_ps(f32_at(blk) * dx),
                        )
                    };
                    acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), scale, acc[r]);
                }
                Q2F => {
                    // scales and offsets per half: lanes 0-3 hold values 0-15, 4-7 16-31
                    let p = dot(unpack(blk.add(16)), q);
                    let scale = _mm256_set_m128(
                        _mm_set1_ps(f32_at(blk.add(4)) * dx),
                        _mm_set1_ps(f32_at(blk) * dx),
                    );
                    acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), scale, acc[r]);
                    let dh = x.dsum_h.get_unchecked(b);
                    macc[r] += f32_at(blk.add(8)) * dh[0] + f32_at(blk.add(12)) * dh[1];
                }
                _ => {
                    // the scale d and offset factor m, then the codes (and fifth bits)
                    let (d, m, codes, qh) = match F {
                        Q4_0 | Q5_0 => {
                            let d = h2f(blk);
                            let m = if F == Q4_0 { -8.0 * d } else { -16.0 * d };
                            (
                                d,
                                m,
                                blk.add(bb - 16),
                                if F == Q5_0 { u32_at(blk.add(2)) } else { 0 },
                            )
                        }
                        Q4_1 | Q5_1 => {
                            let dm = _mm_cvtph_ps(_mm_cvtsi32_si128(u32_at(blk) as i32));
                            let m = _mm_cvtss_f32(_mm_movehdup_ps(dm));
                            let qh = if F == Q5_1 { u32_at(blk.add(4)) } else { 0 };
                            (_mm_cvtss_f32(dm), m, blk.add(bb - 16), qh)
                        }
                        _ => {
                            let qh = if F == Q5F { u32_at(blk.add(8)) } else { 0 };
                            (f32_at(blk), f32_at(blk.add(4)), blk.add(bb - 16), qh)
                        }
                    };
                    let mut u = unpack(codes);
                    if matches!(F, Q5_0 | Q5_1 | Q5F) {
                        u = _mm256_or_si256(u, fifth_bits(qh));
                    }
                    let p = dot(u, q);
                    acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(d * dx), acc[r]);
                    macc[r] += m * ds;
                }
            }
        }
    }
    for r in 0..4 {
        out[r] = hsum(acc[r]) + macc[r];
    }
}

/// # Safety
/// Needs avx2, fma and f16c. Row lengths are checked against `x`.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn rows_avx2<const F: u8>(group: &[u8], x: &QActs, out: &mut [f32; 4]) {
    rows4::<F, false>(group, x, out)
}

/// # Safety
/// Needs avx2, fma, f16c, avx512vnni and avx512vl. Row lengths are checked against `x`.
#[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
pub unsafe fn rows_vnni<const F: u8>(group: &[u8], x: &QActs, out: &mut [f32; 4]) {
    rows4::<F, true>(group, x, out)
}

/// u8 × i8 → 8 × i32 sums of 4 products (maddubs saturates only beyond 2·255·127; our
/// left sides are ≤ 31 (4- and 5-bit codes) or ≤ 128 (|i8|), so it never does).
#[inline(always)]
unsafe fn dot_avx2(u: __m256i, q: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(u, q), _mm256_set1_epi16(1))
}

#[inline(always)]
unsafe fn dot_vnni(u: __m256i, q: __m256i) -> __m256i {
    _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, q)
}
