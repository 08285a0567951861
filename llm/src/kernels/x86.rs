//! AVX2 (+FMA, F16C) and AVX-512 VNNI kernels of the quantised block dots.

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
                    acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(d * dx), acc[r]);
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
