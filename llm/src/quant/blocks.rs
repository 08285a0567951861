//! Dequantisers of the 5-bit, non-linear and k-quant block formats, one block at a time, from
//! their layouts (bytes in order; f16 little-endian):
//!
//! * Q5_0 (22 bytes / 32): d, qh (u32: the fifth bit of element j is bit j), qs[16] (low
//!   nibble element j, high nibble element j + 16); `x = d · (q − 16)`.
//! * Q5_1 (24 / 32): d, m, qh, qs[16]; `x = d · q + m`.
//! * IQ4_NL (18 / 32): d, qs[16]; `x = d · T[q]` with the 16-entry non-linear table [`IQ4_NL`].
//! * IQ4_XS (136 / 256): d, scales_h (u16), scales_l[4], qs[128]; eight sub-blocks of 32, each
//!   with a 6-bit scale (low 4 bits from scales_l, high 2 from scales_h) minus 32; codes as IQ4_NL.
//! * Q2_K (84 / 256): scales[16] (low nibble scale, high nibble min, per 16 values), qs[64] (2
//!   bits), d, dmin; `x = d · sc · q − dmin · m`.
//! * Q3_K (110 / 256): hmask[32] (the third bit, inverted sense: a set bit means no −4),
//!   qs[64] (low 2 bits), scales[12] (sixteen 6-bit scales, minus 32), d; `x = d · sc · q`.
//! * Q4_K (144 / 256): d, dmin, scales[12] (eight 6-bit scales and eight 6-bit mins), qs[128];
//!   `x = d · sc · q − dmin · m` per sub-block of 32.
//! * Q5_K (176 / 256): d, dmin, scales[12] as Q4_K, qh[32] (fifth bits), qs[128].
//! * Q6_K (210 / 256): ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16] (i8, per 16
//!   values), d; `x = d · sc · (q − 32)`.
//! * Q8_K (292 / 256): d (f32), qs[256] (i8), bsums[16] (i16, unused here); `x = d · q`.
//!
//! Within a 256-value k-quant block the 2-bit formats (Q2_K, Q3_K) walk two halves of 128
//! values, each as four 32-value groups that take successive 2-bit planes of the same 32
//! bytes; the 4-bit formats take the low then the high nibbles of 32 bytes per 64 values.

use half::f16;

/// Non-linear code book of IQ4_NL and IQ4_XS.
pub const IQ4_NL: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// One Q5_0 (`with_min` false) or Q5_1 block into 32 values.
pub(super) fn q5(blk: &[u8], with_min: bool, out: &mut [f32]) {
    let d = f16_at(blk, 0);
    let (m, at) = if with_min {
        (f16_at(blk, 2), 4)
    } else {
        (0.0, 2)
    };
    let qh = u32_at(blk, at);
    let qs = &blk[at + 4..at + 20];
    for j in 0..16 {
        let hi0 = ((qh >> j) & 1) << 4;
        let hi1 = ((qh >> (j + 16)) & 1) << 4;
        let q0 = ((qs[j] & 0x0F) as u32 | hi0) as f32;
        let q1 = ((qs[j] >> 4) as u32 | hi1) as f32;
        if with_min {
            out[j] = q0 * d + m;
            out[j + 16] = q1 * d + m;
        } else {
            out[j] = (q0 - 16.0) * d;
            out[j + 16] = (q1 - 16.0) * d;
        }
    }
}

/// 16 bytes of IQ4 codes at scale `d` into 32 values.
fn iq4_codes(qs: &[u8], d: f32, out: &mut [f32]) {
    for j in 0..16 {
        out[j] = d * IQ4_NL[(qs[j] & 0x0F) as usize] as f32;
        out[j + 16] = d * IQ4_NL[(qs[j] >> 4) as usize] as f32;
    }
}

/// One IQ4_NL block into 32 values.
pub(super) fn iq4_nl(blk: &[u8], out: &mut [f32]) {
    iq4_codes(&blk[2..18], f16_at(blk, 0), out);
}

/// One IQ4_XS block into 256 values.
pub(super) fn iq4_xs(blk: &[u8], out: &mut [f32]) {
    let d = f16_at(blk, 0);
    let scales_h = u16::from_le_bytes([blk[2], blk[3]]) as u32;
    let scales_l = &blk[4..8];
    for (ib, o) in out.chunks_exact_mut(32).enumerate() {
        let lo = (scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0F;
        let hi = ((scales_h >> (2 * ib)) & 3) << 4;
        let ls = (lo as u32 | hi) as i32 - 32;
        iq4_codes(&blk[8 + 16 * ib..8 + 16 * (ib + 1)], d * ls as f32, o);
    }
}

/// One Q2_K block into 256 values.
pub(super) fn q2_k(blk: &[u8], out: &mut [f32]) {
    let (scales, qs) = (&blk[0..16], &blk[16..80]);
    let (d, dmin) = (f16_at(blk, 80), f16_at(blk, 82));
    let mut s = 0;
    for (half, o) in out.chunks_exact_mut(128).enumerate() {
        let q = &qs[32 * half..32 * half + 32];
        for plane in 0..4 {
            for part in 0..2 {
                let sc = scales[s];
                s += 1;
                let (dl, ml) = (d * (sc & 0x0F) as f32, dmin * (sc >> 4) as f32);
                for l in 0..16 {
                    let v = (q[16 * part + l] >> (2 * plane)) & 3;
                    o[32 * plane + 16 * part + l] = dl * v as f32 - ml;
                }
            }
        }
    }
}

/// Sixteen 6-bit scales of a Q3_K block (minus 32) from its 12 packed bytes: scale i's low 4
/// bits are the low (i < 8) or high (i ≥ 8) nibble of byte i mod 8, its high 2 bits are bits
/// 2⌊i/4⌋ and 2⌊i/4⌋ + 1 of byte 8 + i mod 4.
fn q3_k_scales(p: &[u8]) -> [i32; 16] {
    let mut sc = [0i32; 16];
    for (i, s) in sc.iter_mut().enumerate() {
        let lo = if i < 8 { p[i] & 0x0F } else { p[i - 8] >> 4 };
        let hi = (p[8 + i % 4] >> (2 * (i / 4))) & 3;
        *s = (lo | (hi << 4)) as i32 - 32;
    }
    sc
}

/// One Q3_K block into 256 values.
pub(super) fn q3_k(blk: &[u8], out: &mut [f32]) {
    let (hmask, qs) = (&blk[0..32], &blk[32..96]);
    let sc = q3_k_scales(&blk[96..108]);
    let d = f16_at(blk, 108);
    let mut s = 0;
    for (half, o) in out.chunks_exact_mut(128).enumerate() {
        let q = &qs[32 * half..32 * half + 32];
        for plane in 0..4 {
            let bit = 1u8 << (4 * half + plane);
            for part in 0..2 {
                let dl = d * sc[s] as f32;
                s += 1;
                for l in 0..16 {
                    let i = 16 * part + l;
                    let low = ((q[i] >> (2 * plane)) & 3) as i32;
                    let v = low - if hmask[i] & bit != 0 { 0 } else { 4 };
                    o[32 * plane + i] = dl * v as f32;
                }
            }
        }
    }
}

/// Scale and min of sub-block `j` (0..8) of Q4_K / Q5_K from their 12 packed bytes: for j < 4
/// the low 6 bits of bytes j and j + 4; else the nibbles of byte j + 4 topped with the high 2
/// bits of bytes j − 4 and j.
fn k4_scale_min(p: &[u8], j: usize) -> (f32, f32) {
    if j < 4 {
        ((p[j] & 63) as f32, (p[j + 4] & 63) as f32)
    } else {
        let sc = (p[j + 4] & 0x0F) | ((p[j - 4] >> 6) << 4);
        let m = (p[j + 4] >> 4) | ((p[j] >> 6) << 4);
        (sc as f32, m as f32)
    }
}

/// One Q4_K block into 256 values.
pub(super) fn q4_k(blk: &[u8], out: &mut [f32]) {
    let (d, dmin) = (f16_at(blk, 0), f16_at(blk, 2));
    let (scales, qs) = (&blk[4..16], &blk[16..144]);
    for (g, o) in out.chunks_exact_mut(64).enumerate() {
        let q = &qs[32 * g..32 * g + 32];
        let (s1, m1) = k4_scale_min(scales, 2 * g);
        let (s2, m2) = k4_scale_min(scales, 2 * g + 1);
        let (d1, mn1, d2, mn2) = (d * s1, dmin * m1, d * s2, dmin * m2);
        for l in 0..32 {
            o[l] = d1 * (q[l] & 0x0F) as f32 - mn1;
            o[l + 32] = d2 * (q[l] >> 4) as f32 - mn2;
        }
    }
}

/// One Q5_K block into 256 values.
pub(super) fn q5_k(blk: &[u8], out: &mut [f32]) {
    let (d, dmin) = (f16_at(blk, 0), f16_at(blk, 2));
    let (scales, qh, qs) = (&blk[4..16], &blk[16..48], &blk[48..176]);
    for (g, o) in out.chunks_exact_mut(64).enumerate() {
        let q = &qs[32 * g..32 * g + 32];
        let (s1, m1) = k4_scale_min(scales, 2 * g);
        let (s2, m2) = k4_scale_min(scales, 2 * g + 1);
        let (d1, mn1, d2, mn2) = (d * s1, dmin * m1, d * s2, dmin * m2);
        let (b1, b2) = (1u8 << (2 * g), 1u8 << (2 * g + 1));
        for l in 0..32 {
            let h1 = if qh[l] & b1 != 0 { 16 } else { 0 };
            let h2 = if qh[l] & b2 != 0 { 16 } else { 0 };
            o[l] = d1 * ((q[l] & 0x0F) + h1) as f32 - mn1;
            o[l + 32] = d2 * ((q[l] >> 4) + h2) as f32 - mn2;
        }
    }
}

/// One Q6_K block into 256 values.
pub(super) fn q6_k(blk: &[u8], out: &mut [f32]) {
    let (ql, qh, scales) = (&blk[0..128], &blk[128..192], &blk[192..208]);
    let d = f16_at(blk, 208);
    for (half, o) in out.chunks_exact_mut(128).enumerate() {
        let (l4, h2) = (
            &ql[64 * half..64 * half + 64],
            &qh[32 * half..32 * half + 32],
        );
        let sc = &scales[8 * half..8 * half + 8];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((l4[l] & 0x0F) | ((h2[l] & 3) << 4)) as i32 - 32;
            let q2 = ((l4[l + 32] & 0x0F) | (((h2[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((l4[l] >> 4) | (((h2[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((l4[l + 32] >> 4) | (((h2[l] >> 6) & 3) << 4)) as i32 - 32;
            o[l] = d * (sc[is] as i8) as f32 * q1 as f32;
            o[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
            o[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
            o[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
        }
    }
}

/// One Q8_K block into 256 values.
pub(super) fn q8_k(blk: &[u8], out: &mut [f32]) {
    let d = f32::from_le_bytes([blk[0], blk[1], blk[2], blk[3]]);
    for (o, &q) in out.iter_mut().zip(&blk[4..260]) {
        *o = d * (q as i8) as f32;
    }
}
