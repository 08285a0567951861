//! Bulk standard-normal draws for the Monte-Carlo inner loops, eight lanes at a time.
//!
//! Eight independent xoshiro256++ generators (seeded from a [`crate::rng`] stream, so results
//! stay a function of the configuration) feed a branch-free Box–Muller transform in f32 with
//! polynomial `ln`, `sin` and `cos` (absolute error below 1e-6 on the normals): the same code
//! compiles to AVX2/FMA when the CPU has it and to SSE2 otherwise, chosen at run time.
//! Uniforms have 24 bits, so |z| ≤ √(2·ln 2²⁴) ≈ 5.77 (the missing tail has mass 8e-9).

use rand::RngCore;

const LANES: usize = 8;

/// Eight xoshiro256++ generators in structure-of-arrays form.
#[derive(Debug, Clone)]
pub struct Normals {
    s: [[u64; LANES]; 4],
}

impl Normals {
    /// Seed all lanes from `rng`.
    pub fn from_rng<R: RngCore + ?Sized>(rng: &mut R) -> Normals {
        let mut s = [[0u64; LANES]; 4];
        for lane in 0..LANES {
            loop {
                for w in s.iter_mut() {
                    w[lane] = rng.next_u64();
                }
                if s.iter().any(|w| w[lane] != 0) {
                    break;
                }
            }
        }
        Normals { s }
    }

    /// Fill `out` with independent N(0, 1) samples scaled by `scale`.
    pub fn fill(&mut self, out: &mut [f32], scale: f32) {
        #[cfg(target_arch = "x86_64")]
        {
            if crate::simd::avx512() {
                // SAFETY: the CPU has the features the function is compiled for.
                unsafe { fill_avx512(self, out, scale) };
                return;
            }
            if crate::simd::avx2() {
                // SAFETY: the CPU has the features the function is compiled for.
                unsafe { fill_avx2(self, out, scale) };
                return;
            }
        }
        fill_portable(self, out, scale);
    }
}

#[inline(always)]
fn fill_portable(g: &mut Normals, out: &mut [f32], scale: f32) {
    let mut chunks = out.chunks_exact_mut(2 * LANES);
    for c in &mut chunks {
        let (a, b) = c.split_at_mut(LANES);
        let (z0, z1) = block(g, scale);
        a.copy_from_slice(&z0);
        b.copy_from_slice(&z1);
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let (z0, z1) = block(g, scale);
        for (o, z) in rest.iter_mut().zip(z0.iter().chain(&z1)) {
            *o = *z;
        }
    }
}

/// Advance every lane once: 8 outputs.
#[inline(always)]
fn step(g: &mut Normals) -> [u64; LANES] {
    let mut x = [0u64; LANES];
    let [s0, s1, s2, s3] = &mut g.s;
    for l in 0..LANES {
        x[l] = s0[l]
            .wrapping_add(s3[l])
            .rotate_left(23)
            .wrapping_add(s0[l]);
        let t = s1[l] << 17;
        s2[l] ^= s0[l];
        s3[l] ^= s1[l];
        s1[l] ^= s2[l];
        s0[l] ^= s3[l];
        s2[l] ^= t;
        s3[l] = s3[l].rotate_left(45);
    }
    x
}

/// One step of every lane: 16 normals. The 32-bit halves of lanes 0–3 (low half first) give
/// the eight radii, those of lanes 4–7 the eight angles.
#[inline(always)]
fn block(g: &mut Normals, scale: f32) -> ([f32; LANES], [f32; LANES]) {
    let x = step(g);
    let half = |j: usize, base: usize| -> u32 {
        let w = x[base + j / 2];
        if j.is_multiple_of(2) {
            w as u32
        } else {
            (w >> 32) as u32
        }
    };
    let mut z0 = [0f32; LANES];
    let mut z1 = [0f32; LANES];
    const INV24: f32 = 1.0 / (1u32 << 24) as f32;
    for j in 0..LANES {
        let u1 = (((half(j, 0) >> 8) + 1) as f32) * INV24; // (0, 1]
        let u2 = ((half(j, 4) >> 8) as f32) * INV24 - 0.5; // [−½, ½)
        let r = (-2.0 * ln(u1)).max(0.0).sqrt() * scale;
        // half angle h = π·u2 ∈ [−π/2, π/2): sin 2h = 2 sin h cos h, cos 2h = 1 − 2 sin² h
        let (s, c) = sincos_half_pi(u2);
        z0[j] = r * (2.0 * s * c);
        z1[j] = r * (1.0 - 2.0 * s * s);
    }
    (z0, z1)
}

/// [`fill_portable`] in AVX2/FMA intrinsics (same bits in, same normals out up to FMA rounding).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fill_avx2(g: &mut Normals, out: &mut [f32], scale: f32) {
    use std::arch::x86_64::*;
    #[inline(always)]
    unsafe fn rotl<const L: i32, const R: i32>(x: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_slli_epi64::<L>(x), _mm256_srli_epi64::<R>(x))
    }
    #[inline(always)]
    unsafe fn adv(s: &mut [__m256i; 4]) -> __m256i {
        let r = _mm256_add_epi64(rotl::<23, 41>(_mm256_add_epi64(s[0], s[3])), s[0]);
        let t = _mm256_slli_epi64::<17>(s[1]);
        s[2] = _mm256_xor_si256(s[2], s[0]);
        s[3] = _mm256_xor_si256(s[3], s[1]);
        s[1] = _mm256_xor_si256(s[1], s[2]);
        s[0] = _mm256_xor_si256(s[0], s[3]);
        s[2] = _mm256_xor_si256(s[2], t);
        s[3] = rotl::<45, 19>(s[3]);
        r
    }
    // state word w: lanes 0–3 in p[w], lanes 4–7 in q[w]
    let ld = |w: &[u64; LANES], o: usize| _mm256_loadu_si256(w[o..].as_ptr() as *const __m256i);
    let mut p = [
        ld(&g.s[0], 0),
        ld(&g.s[1], 0),
        ld(&g.s[2], 0),
        ld(&g.s[3], 0),
    ];
    let mut q = [
        ld(&g.s[0], 4),
        ld(&g.s[1], 4),
        ld(&g.s[2], 4),
        ld(&g.s[3], 4),
    ];
    let set = |v: f32| _mm256_set1_ps(v);
    let inv24 = set(1.0 / (1u32 << 24) as f32);
    let vscale = set(scale);
    let mut buf = [0f32; 2 * LANES];
    let mut i = 0;
    while i < out.len() {
        let a = adv(&mut p);
        let b = adv(&mut q);
        // u1 ∈ (0, 1], u2 ∈ [−½, ½)
        let ia = _mm256_add_epi32(_mm256_srli_epi32::<8>(a), _mm256_set1_epi32(1));
        let u1 = _mm256_mul_ps(_mm256_cvtepi32_ps(ia), inv24);
        let ib = _mm256_srli_epi32::<8>(b);
        let u2 = _mm256_fmsub_ps(_mm256_cvtepi32_ps(ib), inv24, set(0.5));
        // ln u1
        let bits = _mm256_castps_si256(u1);
        let off = _mm256_sub_epi32(bits, _mm256_set1_epi32(0x3F35_04F3));
        let e = _mm256_srai_epi32::<23>(off);
        let m = _mm256_castsi256_ps(_mm256_sub_epi32(bits, _mm256_slli_epi32::<23>(e)));
        let t = _mm256_div_ps(_mm256_sub_ps(m, set(1.0)), _mm256_add_ps(m, set(1.0)));
        let t2 = _mm256_mul_ps(t, t);
        let mut pl = set(2.0 / 9.0);
        pl = _mm256_fmadd_ps(pl, t2, set(2.0 / 7.0));
        pl = _mm256_fmadd_ps(pl, t2, set(2.0 / 5.0));
        pl = _mm256_fmadd_ps(pl, t2, set(2.0 / 3.0));
        pl = _mm256_fmadd_ps(pl, t2, set(2.0));
        let lnu = _mm256_fmadd_ps(
            _mm256_cvtepi32_ps(e),
            set(std::f32::consts::LN_2),
            _mm256_mul_ps(t, pl),
        );
        let r = _mm256_mul_ps(
            _mm256_sqrt_ps(_mm256_max_ps(_mm256_mul_ps(set(-2.0), lnu), set(0.0))),
            vscale,
        );
        // sin and cos of π u2
        let x = _mm256_mul_ps(set(std::f32::consts::PI), u2);
        let x2 = _mm256_mul_ps(x, x);
        let mut sp = set(-1.0 / 39_916_800.0);
        sp = _mm256_fmadd_ps(sp, x2, set(1.0 / 362_880.0));
        sp = _mm256_fmadd_ps(sp, x2, set(-1.0 / 5040.0));
        sp = _mm256_fmadd_ps(sp, x2, set(1.0 / 120.0));
        sp = _mm256_fmadd_ps(sp, x2, set(-1.0 / 6.0));
        sp = _mm256_fmadd_ps(sp, x2, set(1.0));
        let sn = _mm256_mul_ps(sp, x);
        let mut cp = set(1.0 / 479_001_600.0);
        cp = _mm256_fmadd_ps(cp, x2, set(-1.0 / 3_628_800.0));
        cp = _mm256_fmadd_ps(cp, x2, set(1.0 / 40_320.0));
        cp = _mm256_fmadd_ps(cp, x2, set(-1.0 / 720.0));
        cp = _mm256_fmadd_ps(cp, x2, set(1.0 / 24.0));
        cp = _mm256_fmadd_ps(cp, x2, set(-0.5));
        let cs = _mm256_fmadd_ps(cp, x2, set(1.0));
        let z0 = _mm256_mul_ps(r, _mm256_mul_ps(set(2.0), _mm256_mul_ps(sn, cs)));
        let z1 = _mm256_mul_ps(
            r,
            _mm256_fnmadd_ps(set(2.0), _mm256_mul_ps(sn, sn), set(1.0)),
        );
        if out.len() - i >= 2 * LANES {
            _mm256_storeu_ps(out[i..].as_mut_ptr(), z0);
            _mm256_storeu_ps(out[i + LANES..].as_mut_ptr(), z1);
        } else {
            _mm256_storeu_ps(buf.as_mut_ptr(), z0);
            _mm256_storeu_ps(buf[LANES..].as_mut_ptr(), z1);
            let n = out.len() - i;
            out[i..].copy_from_slice(&buf[..n]);
        }
        i += 2 * LANES;
    }
    for w in 0..4 {
        _mm256_storeu_si256(g.s[w].as_mut_ptr() as *mut __m256i, p[w]);
        _mm256_storeu_si256(g.s[w][4..].as_mut_ptr() as *mut __m256i, q[w]);
    }
}

/// [`fill_portable`] in AVX-512: two steps of the eight lanes per iteration, 32 normals.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fill_avx512(g: &mut Normals, out: &mut [f32], scale: f32) {
    use std::arch::x86_64::*;
    #[inline(always)]
    unsafe fn adv(s: &mut [__m512i; 4]) -> __m512i {
        let r = _mm512_add_epi64(_mm512_rol_epi64::<23>(_mm512_add_epi64(s[0], s[3])), s[0]);
        let t = _mm512_slli_epi64::<17>(s[1]);
        s[2] = _mm512_xor_si512(s[2], s[0]);
        s[3] = _mm512_xor_si512(s[3], s[1]);
        s[1] = _mm512_xor_si512(s[1], s[2]);
        s[0] = _mm512_xor_si512(s[0], s[3]);
        s[2] = _mm512_xor_si512(s[2], t);
        s[3] = _mm512_rol_epi64::<45>(s[3]);
        r
    }
    let mut st = [
        _mm512_loadu_si512(g.s[0].as_ptr() as *const __m512i),
        _mm512_loadu_si512(g.s[1].as_ptr() as *const __m512i),
        _mm512_loadu_si512(g.s[2].as_ptr() as *const __m512i),
        _mm512_loadu_si512(g.s[3].as_ptr() as *const __m512i),
    ];
    let set = |v: f32| _mm512_set1_ps(v);
    let inv24 = set(1.0 / (1u32 << 24) as f32);
    let vscale = set(scale);
    let mut buf = [0f32; 4 * LANES];
    let mut i = 0;
    while i < out.len() {
        // the portable order: step 1 gives normals 0–15, step 2 normals 16–31; a step whose
        // output is not needed must not be taken (the state has to match the portable path)
        let two = out.len() - i > 2 * LANES;
        let x1 = adv(&mut st);
        let x2 = if two { adv(&mut st) } else { x1 };
        // radii from lanes 0–3 (low 256 bits) of each step, angles from lanes 4–7
        let a = _mm512_shuffle_i64x2::<0b01_00_01_00>(x1, x2);
        let b = _mm512_shuffle_i64x2::<0b11_10_11_10>(x1, x2);
        let ia = _mm512_add_epi32(_mm512_srli_epi32::<8>(a), _mm512_set1_epi32(1));
        let u1 = _mm512_mul_ps(_mm512_cvtepi32_ps(ia), inv24);
        let ib = _mm512_srli_epi32::<8>(b);
        let u2 = _mm512_fmsub_ps(_mm512_cvtepi32_ps(ib), inv24, set(0.5));
        let bits = _mm512_castps_si512(u1);
        let off = _mm512_sub_epi32(bits, _mm512_set1_epi32(0x3F35_04F3));
        let e = _mm512_srai_epi32::<23>(off);
        let m = _mm512_castsi512_ps(_mm512_sub_epi32(bits, _mm512_slli_epi32::<23>(e)));
        let t = _mm512_div_ps(_mm512_sub_ps(m, set(1.0)), _mm512_add_ps(m, set(1.0)));
        let t2 = _mm512_mul_ps(t, t);
        let mut pl = set(2.0 / 9.0);
        pl = _mm512_fmadd_ps(pl, t2, set(2.0 / 7.0));
        pl = _mm512_fmadd_ps(pl, t2, set(2.0 / 5.0));
        pl = _mm512_fmadd_ps(pl, t2, set(2.0 / 3.0));
        pl = _mm512_fmadd_ps(pl, t2, set(2.0));
        let lnu = _mm512_fmadd_ps(
            _mm512_cvtepi32_ps(e),
            set(std::f32::consts::LN_2),
            _mm512_mul_ps(t, pl),
        );
        let r = _mm512_mul_ps(
            _mm512_sqrt_ps(_mm512_max_ps(_mm512_mul_ps(set(-2.0), lnu), set(0.0))),
            vscale,
        );
        let x = _mm512_mul_ps(set(std::f32::consts::PI), u2);
        let x2s = _mm512_mul_ps(x, x);
        let mut sp = set(-1.0 / 39_916_800.0);
        sp = _mm512_fmadd_ps(sp, x2s, set(1.0 / 362_880.0));
        sp = _mm512_fmadd_ps(sp, x2s, set(-1.0 / 5040.0));
        sp = _mm512_fmadd_ps(sp, x2s, set(1.0 / 120.0));
        sp = _mm512_fmadd_ps(sp, x2s, set(-1.0 / 6.0));
        sp = _mm512_fmadd_ps(sp, x2s, set(1.0));
        let sn = _mm512_mul_ps(sp, x);
        let mut cp = set(1.0 / 479_001_600.0);
        cp = _mm512_fmadd_ps(cp, x2s, set(-1.0 / 3_628_800.0));
        cp = _mm512_fmadd_ps(cp, x2s, set(1.0 / 40_320.0));
        cp = _mm512_fmadd_ps(cp, x2s, set(-1.0 / 720.0));
        cp = _mm512_fmadd_ps(cp, x2s, set(1.0 / 24.0));
        cp = _mm512_fmadd_ps(cp, x2s, set(-0.5));
        let cs = _mm512_fmadd_ps(cp, x2s, set(1.0));
        let z0 = _mm512_mul_ps(r, _mm512_mul_ps(set(2.0), _mm512_mul_ps(sn, cs)));
        let z1 = _mm512_mul_ps(
            r,
            _mm512_fnmadd_ps(set(2.0), _mm512_mul_ps(sn, sn), set(1.0)),
        );
        // [z0 step 1, z1 step 1], [z0 step 2, z1 step 2]
        let o1 = _mm512_shuffle_f32x4::<0b01_00_01_00>(z0, z1);
        let o2 = _mm512_shuffle_f32x4::<0b11_10_11_10>(z0, z1);
        if out.len() - i >= 4 * LANES {
            _mm512_storeu_ps(out[i..].as_mut_ptr(), o1);
            _mm512_storeu_ps(out[i + 2 * LANES..].as_mut_ptr(), o2);
        } else {
            _mm512_storeu_ps(buf.as_mut_ptr(), o1);
            _mm512_storeu_ps(buf[2 * LANES..].as_mut_ptr(), o2);
            let n = out.len() - i;
            out[i..].copy_from_slice(&buf[..n]);
        }
        i += 4 * LANES;
    }
    for (w, v) in st.iter().enumerate() {
        _mm512_storeu_si512(g.s[w].as_mut_ptr() as *mut __m512i, *v);
    }
}

/// Natural log for x in (0, 1]: x = m·2^e, m ∈ [√½, √2), ln m = 2 atanh((m−1)/(m+1)).
#[inline(always)]
fn ln(x: f32) -> f32 {
    let bits = x.to_bits();
    // exponent relative to the [√½, √2) mantissa range
    let off = bits.wrapping_sub(0x3F35_04F3); // bits of √½
    let e = (off as i32) >> 23;
    let m = f32::from_bits(bits.wrapping_sub((e as u32) << 23));
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let p = 2.0 / 9.0;
    let p = p * t2 + 2.0 / 7.0;
    let p = p * t2 + 2.0 / 5.0;
    let p = p * t2 + 2.0 / 3.0;
    let p = p * t2 + 2.0;
    e as f32 * std::f32::consts::LN_2 + t * p
}

/// (sin πu, cos πu) for u ∈ [−½, ½] by Taylor polynomials (|error| < 4e-8 before rounding).
#[inline(always)]
fn sincos_half_pi(u: f32) -> (f32, f32) {
    let x = std::f32::consts::PI * u;
    let x2 = x * x;
    let s = -1.0 / 39_916_800.0;
    let s = s * x2 + 1.0 / 362_880.0;
    let s = s * x2 - 1.0 / 5040.0;
    let s = s * x2 + 1.0 / 120.0;
    let s = s * x2 - 1.0 / 6.0;
    let s = (s * x2 + 1.0) * x;
    let c = 1.0 / 479_001_600.0;
    let c = c * x2 - 1.0 / 3_628_800.0;
    let c = c * x2 + 1.0 / 40_320.0;
    let c = c * x2 - 1.0 / 720.0;
    let c = c * x2 + 1.0 / 24.0;
    let c = c * x2 - 0.5;
    let c = c * x2 + 1.0;
    (s, c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    #[test]
    fn polynomials_match_the_library_functions() {
        // ln: ≲ 5u(1 + |ln x|) ≈ 3e-7(1 + |ln x|) from the f32 roundings (u = 2⁻²⁴; the series'
        // truncation 2t¹¹/11 < 1e-9) plus ≤ 1 ulp of the library's ln: 2e-6 leaves ~7× headroom
        for i in 1..=100_000u32 {
            let x = i as f32 / 100_000.0;
            assert!(
                (ln(x) - x.ln()).abs() < 2e-6 * (1.0 + x.ln().abs()),
                "ln {x}"
            );
        }
        for i in 0..=10_000 {
            let u = -0.5 + i as f32 / 10_000.0;
            let (s, c) = sincos_half_pi(u);
            let a = std::f64::consts::PI * u as f64;
            // against f64: truncation ≤ x¹³/13! ≈ 6e-8 at π/2, plus ≲ 6 f32 roundings of O(1)
            // values and of πu (≈ 4e-7 together)
            assert!((s as f64 - a.sin()).abs() < 1e-6 && (c as f64 - a.cos()).abs() < 1e-6);
        }
        // ln 2⁻²⁴ ≈ −16.6: the bound above gives 5u·17.6 ≈ 5e-6; 1e-4 is loose
        assert!((ln(2f32.powi(-24)) - 2f32.powi(-24).ln()).abs() < 1e-4);
    }

    #[test]
    fn samples_are_standard_normal_and_independent() {
        let mut g = Normals::from_rng(&mut stream(3, &[]));
        let n = 1_000_003; // not a multiple of 16: the tail path too
        let mut z = vec![0f32; n];
        g.fill(&mut z, 1.0);
        let nf = n as f64;
        let m1 = z.iter().map(|&v| v as f64).sum::<f64>() / nf;
        let m2 = z.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / nf;
        let m4 = z.iter().map(|&v| (v as f64).powi(4)).sum::<f64>() / nf;
        assert!(m1.abs() < 5.0 / nf.sqrt(), "mean {m1}");
        assert!((m2 - 1.0).abs() < 5.0 * (2.0 / nf).sqrt(), "variance {m2}");
        assert!(
            (m4 - 3.0).abs() < 5.0 * (96.0 / nf).sqrt(),
            "fourth moment {m4}"
        );
        // Kolmogorov–Smirnov against Φ: the 0.1 % critical value is 1.95/√n
        let mut s: Vec<f64> = z.iter().map(|&v| v as f64).collect();
        s.sort_by(f64::total_cmp);
        let phi = |x: f64| 0.5 * erfc(-x / std::f64::consts::SQRT_2);
        let d = s
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let f = phi(x);
                (f - i as f64 / nf)
                    .abs()
                    .max(((i + 1) as f64 / nf - f).abs())
            })
            .fold(0.0, f64::max);
        assert!(d < 1.95 / nf.sqrt(), "KS distance {d}");
        // no correlation between neighbours, between the lanes, nor between the pair members
        for lag in [1usize, 8, 16] {
            let c = z
                .iter()
                .zip(&z[lag..])
                .map(|(a, b)| (*a as f64) * (*b as f64))
                .sum::<f64>()
                / (nf - lag as f64);
            assert!(c.abs() < 5.0 / nf.sqrt(), "lag {lag}: {c}");
        }
        // scale and determinism
        // u = 2⁻²⁴ and the largest radius R = √(−2 ln 2⁻²⁴) (24-bit uniforms) bound the float
        // error of a normal r·w (|w| ≤ 1): the tolerances below are multiples of u·R
        let u = 2f64.powi(-24);
        let r_max = (2.0 * 24.0 * std::f64::consts::LN_2).sqrt();
        let mut a = Normals::from_rng(&mut stream(4, &[]));
        let mut b = Normals::from_rng(&mut stream(4, &[]));
        let (mut x, mut y) = (vec![0f32; 100], vec![0f32; 100]);
        a.fill(&mut x, 1.0);
        b.fill(&mut y, 3.0);
        // fl(3·fl(r·w)) vs fl(fl(3r)·w): 4 roundings of |3rw| ≤ 3R (the subtraction is exact):
        // ≤ 12u·R, 13u·R ≈ 4.5e-6 (was a bare 1e-5)
        assert!(x
            .iter()
            .zip(&y)
            .all(|(p, q)| ((3.0 * p - q).abs() as f64) <= 13.0 * u * r_max));
        // the portable path gives the same numbers as the dispatched one, for every length
        // (also in the state left behind: a second fill must agree too), up to the evaluation
        // order: FMA (AVX2/AVX-512) vs mul + add (portable) in the ln, sin and cos polynomials
        // and the final products. A first-order running-error bound of both orders over all
        // inputs gives |Δz| ≤ 38u·r per normal (34.6u·R at r = R): 40u·R ≈ 1.4e-5 (the bare
        // 1e-5 it replaces was below that worst case)
        let paths_tol = 40.0 * u * r_max;
        for len in [1usize, 15, 16, 17, 31, 32, 33, 100, 1000] {
            let mut a = Normals::from_rng(&mut stream(5, &[len as u64]));
            let mut b = a.clone();
            let (mut x, mut y) = (vec![0f32; len], vec![0f32; len]);
            for _ in 0..2 {
                a.fill(&mut x, 1.0);
                fill_portable(&mut b, &mut y, 1.0);
                assert!(
                    x.iter()
                        .zip(&y)
                        .all(|(p, q)| ((p - q).abs() as f64) <= paths_tol),
                    "len {len}"
                );
            }
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                let mut c = Normals::from_rng(&mut stream(5, &[len as u64]));
                let mut z = vec![0f32; len];
                for _ in 0..2 {
                    // SAFETY: features checked above.
                    unsafe { fill_avx2(&mut c, &mut z, 1.0) };
                }
                assert!(
                    z.iter()
                        .zip(&y)
                        .all(|(p, q)| ((p - q).abs() as f64) <= paths_tol),
                    "avx2 len {len}"
                );
            }
        }
    }

    /// erfc by the Numerical Recipes Chebyshev fit (|rel. error| < 1.2e-7).
    fn erfc(x: f64) -> f64 {
        let z = x.abs();
        let t = 1.0 / (1.0 + 0.5 * z);
        let r = t
            * (-z * z - 1.26551223
                + t * (1.00002368
                    + t * (0.37409196
                        + t * (0.09678418
                            + t * (-0.18628806
                                + t * (0.27886807
                                    + t * (-1.13520398
                                        + t * (1.48851587
                                            + t * (-0.82215223 + t * 0.17087277)))))))))
                .exp();
        if x >= 0.0 {
            r
        } else {
            2.0 - r
        }
    }
}
