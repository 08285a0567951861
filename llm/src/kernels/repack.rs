//! The decode packings beyond GGML's own Q4_0 / Q4_1 / Q8_0 blocks, and the lossless repacking
//! of the other GGML types into them at load time.
//!
//! Every packing is a row of 32-value blocks, so a tensor-parallel column slice needs only
//! 32-alignment whatever the file's block size (a k-quant's is 256), and one kernel shape (a
//! 32-value integer dot against the 8-bit activation block, then one or two scales and an
//! offset) serves every type. The repacked values are exactly the file's: each k-quant's
//! sub-block scale `d · sc` (an f16 times a 6- or 8-bit integer) is exact in f32, and its
//! integer codes are kept as they are.
//!
//! | file type | packing | bytes / 32 | file's bytes / 32 |
//! | --- | --- | ---: | ---: |
//! | Q5_0, Q5_1 | the same (GGML's blocks) | 22, 24 | 22, 24 |
//! | Q4_K | `Q4F`: f32 `d`, f32 `m`, 16 bytes of nibbles | 24 | 18 |
//! | Q5_K | `Q5F`: f32 `d`, f32 `m`, u32 fifth bits, 16 bytes of nibbles | 28 | 22 |
//! | Q6_K, Q3_K, IQ4_XS | `Q8S`: f32 scale of values 0–15, of 16–31, 32 × i8 | 40 | 26.25, 13.75, 17 |
//! | IQ4_NL | Q8_0 (the code book's values as i8, the same f16 `d`) | 34 | 18 |
//! | Q2_K | `Q2F`: f32 scale and f32 offset of values 0–15 and of 16–31, nibbles | 32 | 10.5 |

use super::{f16_at, Packing, QK};
use crate::ggml_type::GgmlType;
use crate::quant::IQ4_NL;

/// The packing the kernels read a GGML type in (`None`: held as f32).
pub fn packing_for(ty: GgmlType) -> Option<Packing> {
    Some(match ty {
        GgmlType::Q4_0 => Packing::Q4_0,
        GgmlType::Q4_1 => Packing::Q4_1,
        GgmlType::Q8_0 | GgmlType::IQ4_NL => Packing::Q8_0,
        GgmlType::Q5_0 => Packing::Q5_0,
        GgmlType::Q5_1 => Packing::Q5_1,
        GgmlType::Q4_K => Packing::Q4F,
        GgmlType::Q5_K => Packing::Q5F,
        GgmlType::Q6_K | GgmlType::Q3_K | GgmlType::IQ4_XS => Packing::Q8S,
        GgmlType::Q2_K => Packing::Q2F,
        _ => return None,
    })
}

/// Whether `ty`'s packing is its own GGML blocks (a row slices without repacking).
pub fn repack_is_identity(ty: GgmlType) -> bool {
    matches!(
        ty,
        GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0 | GgmlType::Q5_0 | GgmlType::Q5_1
    )
}

fn put_f32(out: &mut Vec<u8>, v: f32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Nibbles `u[0..32]` in the kernels' order: byte j holds element j (low) and j + 16 (high).
fn put_nibbles(out: &mut Vec<u8>, u: &[u8; QK]) {
    out.extend((0..16).map(|j| u[j] | (u[j + 16] << 4)));
}

/// A Q8S block: scales of elements 0–15 and 16–31, then the 32 values.
fn put_q8s(out: &mut Vec<u8>, s0: f32, s1: f32, v: &[i8]) {
    put_f32(out, s0);
    put_f32(out, s1);
    out.extend(v.iter().map(|&q| q as u8));
}

/// Scale and min of sub-block `j` of Q4_K / Q5_K (GGML's 12-byte packing of eight 6-bit pairs).
fn k4_scale_min(p: &[u8], j: usize) -> (u8, u8) {
    if j < 4 {
        (p[j] & 63, p[j + 4] & 63)
    } else {
        (
            (p[j + 4] & 0x0F) | ((p[j - 4] >> 6) << 4),
            (p[j + 4] >> 4) | ((p[j] >> 6) << 4),
        )
    }
}

/// Sixteen Q3_K scales (minus 32) from its 12 packed bytes.
fn q3_k_scales(p: &[u8]) -> [i32; 16] {
    let mut sc = [0i32; 16];
    for (i, s) in sc.iter_mut().enumerate() {
        let lo = if i < 8 { p[i] & 0x0F } else { p[i - 8] >> 4 };
        let hi = (p[8 + i % 4] >> (2 * (i / 4))) & 3;
        *s = (lo | (hi << 4)) as i32 - 32;
    }
    sc
}

/// Append one row of `ty` (GGML bytes, a whole number of its blocks) in `ty`'s packing
/// ([`packing_for`]).
pub fn repack_row(ty: GgmlType, src: &[u8], out: &mut Vec<u8>) {
    let bb = ty.type_size();
    assert!(src.len().is_multiple_of(bb), "a row of whole {ty:?} blocks");
    match ty {
        GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0 | GgmlType::Q5_0 | GgmlType::Q5_1 => {
            out.extend_from_slice(src)
        }
        GgmlType::IQ4_NL => {
            for blk in src.chunks_exact(bb) {
                out.extend_from_slice(&blk[0..2]);
                out.extend((0..QK).map(|j| {
                    let c = if j < 16 {
                        blk[2 + j] & 15
                    } else {
                        blk[2 + j - 16] >> 4
                    };
                    IQ4_NL[c as usize] as u8
                }));
            }
        }
        GgmlType::IQ4_XS => {
            for blk in src.chunks_exact(bb) {
                let d = f16_at(blk, 0);
                let scales_h = u16::from_le_bytes([blk[2], blk[3]]) as u32;
                for ib in 0..8 {
                    let lo = (blk[4 + ib / 2] >> (4 * (ib % 2))) & 0x0F;
                    let hi = ((scales_h >> (2 * ib)) & 3) << 4;
                    let s = d * ((lo as u32 | hi) as i32 - 32) as f32;
                    let qs = &blk[8 + 16 * ib..8 + 16 * (ib + 1)];
                    let v: Vec<i8> = (0..QK)
                        .map(|j| {
                            let c = if j < 16 { qs[j] & 15 } else { qs[j - 16] >> 4 };
                            IQ4_NL[c as usize]
                        })
                        .collect();
                    put_q8s(out, s, s, &v);
                }
            }
        }
        GgmlType::Q4_K | GgmlType::Q5_K => {
            let q5 = ty == GgmlType::Q5_K;
            for blk in src.chunks_exact(bb) {
                let (d, dmin) = (f16_at(blk, 0), f16_at(blk, 2));
                let scales = &blk[4..16];
                let (qh, qs) = if q5 {
                    (&blk[16..48], &blk[48..176])
                } else {
                    (&blk[0..0], &blk[16..144])
                };
                for j in 0..8 {
                    // sub-block j: the low (j even) or high nibbles of the 32 bytes of pair j/2
                    let q = &qs[32 * (j / 2)..32 * (j / 2) + 32];
                    let (sc, mn) = k4_scale_min(scales, j);
                    let mut u = [0u8; QK];
                    let mut hbits = 0u32;
                    for (l, ul) in u.iter_mut().enumerate() {
                        *ul = if j % 2 == 0 { q[l] & 15 } else { q[l] >> 4 };
                        if q5 && qh[l] & (1 << j) != 0 {
                            hbits |= 1 << l;
                        }
                    }
                    put_f32(out, d * sc as f32);
                    put_f32(out, -(dmin * mn as f32));
                    if q5 {
                        out.extend_from_slice(&hbits.to_le_bytes());
                    }
                    put_nibbles(out, &u);
                }
            }
        }
        GgmlType::Q6_K => {
            for blk in src.chunks_exact(bb) {
                let (ql, qh, scales) = (&blk[0..128], &blk[128..192], &blk[192..208]);
                let d = f16_at(blk, 208);
                let mut v = [0i8; 256];
                for half in 0..2 {
                    let (l4, h2) = (&ql[64 * half..], &qh[32 * half..]);
                    let o = &mut v[128 * half..];
                    for l in 0..32 {
                        o[l] = ((l4[l] & 15) | ((h2[l] & 3) << 4)) as i8 - 32;
                        o[l + 32] = ((l4[l + 32] & 15) | (((h2[l] >> 2) & 3) << 4)) as i8 - 32;
                        o[l + 64] = ((l4[l] >> 4) | (((h2[l] >> 4) & 3) << 4)) as i8 - 32;
                        o[l + 96] = ((l4[l + 32] >> 4) | (((h2[l] >> 6) & 3) << 4)) as i8 - 32;
                    }
                }
                // scale g covers values 16g .. 16g + 16
                for b in 0..8 {
                    let s = |g: usize| d * (scales[g] as i8) as f32;
                    put_q8s(out, s(2 * b), s(2 * b + 1), &v[32 * b..32 * b + 32]);
                }
            }
        }
        GgmlType::Q2_K => {
            for blk in src.chunks_exact(bb) {
                let (scales, qs) = (&blk[0..16], &blk[16..80]);
                let (d, dmin) = (f16_at(blk, 80), f16_at(blk, 82));
                // value 32·p + l of half h (0–127, 128–255): bits 2p of byte l of the half's
                // 32 code bytes; scale/min byte 8h + 2p + l/16 covers 16 values
                for h in 0..2 {
                    let q = &qs[32 * h..32 * h + 32];
                    for p in 0..4 {
                        let mut u = [0u8; QK];
                        for (l, ul) in u.iter_mut().enumerate() {
                            *ul = (q[l] >> (2 * p)) & 3;
                        }
                        let s0 = scales[8 * h + 2 * p];
                        let s1 = scales[8 * h + 2 * p + 1];
                        put_f32(out, d * (s0 & 0x0F) as f32);
                        put_f32(out, d * (s1 & 0x0F) as f32);
                        put_f32(out, -(dmin * (s0 >> 4) as f32));
                        put_f32(out, -(dmin * (s1 >> 4) as f32));
                        put_nibbles(out, &u);
                    }
                }
            }
        }
        GgmlType::Q3_K => {
            for blk in src.chunks_exact(bb) {
                let (hmask, qs) = (&blk[0..32], &blk[32..96]);
                let sc = q3_k_scales(&blk[96..108]);
                let d = f16_at(blk, 108);
                let mut v = [0i8; 256];
                for half in 0..2 {
                    let q = &qs[32 * half..32 * half + 32];
                    for plane in 0..4 {
                        let bit = 1u8 << (4 * half + plane);
                        for i in 0..32 {
                            let low = ((q[i] >> (2 * plane)) & 3) as i8;
                            v[128 * half + 32 * plane + i] =
                                low - if hmask[i] & bit != 0 { 0 } else { 4 };
                        }
                    }
                }
                for b in 0..8 {
                    let s = |g: usize| d * sc[g] as f32;
                    put_q8s(out, s(2 * b), s(2 * b + 1), &v[32 * b..32 * b + 32]);
                }
            }
        }
        other => panic!("{other:?} has no packing (see packing_for)"),
    }
}

/// One 32-value block of any quantised packing, decoded: the integer codes in element order,
/// the scale of elements 0–15 and of 16–31, and the offset factor `m` of each (a value is
/// `scale · w + m`; the mat-vec's offset term is `m · d_x · Σ q`, over the whole block when the
/// two are one, i.e. for every packing but Q2F).
pub(super) struct Block {
    pub w: [i32; QK],
    pub d: [f32; 2],
    pub m: [f32; 2],
}

fn nibbles(c: &[u8], w: &mut [i32; QK]) {
    for j in 0..16 {
        w[j] = (c[j] & 0x0F) as i32;
        w[j + 16] = (c[j] >> 4) as i32;
    }
}

fn f32_at(b: &[u8], i: usize) -> f32 {
    f32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

fn fifth_bits(qh: u32, w: &mut [i32; QK]) {
    for (j, wj) in w.iter_mut().enumerate() {
        *wj |= (((qh >> j) & 1) << 4) as i32;
    }
}

impl Block {
    /// Decode `blk`, one block of `packing`.
    pub fn decode(packing: Packing, blk: &[u8]) -> Block {
        let mut w = [0i32; QK];
        let u32_at = |i: usize| u32::from_le_bytes([blk[i], blk[i + 1], blk[i + 2], blk[i + 3]]);
        let (d, m): ([f32; 2], f32) = match packing {
            Packing::Q4_0 => {
                nibbles(&blk[2..18], &mut w);
                let d = f16_at(blk, 0);
                ([d, d], -8.0 * d)
            }
            Packing::Q4_1 => {
                nibbles(&blk[4..20], &mut w);
                let d = f16_at(blk, 0);
                ([d, d], f16_at(blk, 2))
            }
            Packing::Q4F => {
                nibbles(&blk[8..24], &mut w);
                let d = f32_at(blk, 0);
                ([d, d], f32_at(blk, 4))
            }
            Packing::Q5_0 => {
                nibbles(&blk[6..22], &mut w);
                fifth_bits(u32_at(2), &mut w);
                let d = f16_at(blk, 0);
                ([d, d], -16.0 * d)
            }
            Packing::Q5_1 => {
                nibbles(&blk[8..24], &mut w);
                fifth_bits(u32_at(4), &mut w);
                let d = f16_at(blk, 0);
                ([d, d], f16_at(blk, 2))
            }
            Packing::Q5F => {
                nibbles(&blk[12..28], &mut w);
                fifth_bits(u32_at(8), &mut w);
                let d = f32_at(blk, 0);
                ([d, d], f32_at(blk, 4))
            }
            Packing::Q8_0 => {
                for (j, wj) in w.iter_mut().enumerate() {
                    *wj = (blk[2 + j] as i8) as i32;
                }
                let d = f16_at(blk, 0);
                ([d, d], 0.0)
            }
            Packing::Q8S => {
                for (j, wj) in w.iter_mut().enumerate() {
                    *wj = (blk[8 + j] as i8) as i32;
                }
                ([f32_at(blk, 0), f32_at(blk, 4)], 0.0)
            }
            Packing::Q2F => {
                nibbles(&blk[16..32], &mut w);
                let m = [f32_at(blk, 8), f32_at(blk, 12)];
                return Block {
                    w,
                    d: [f32_at(blk, 0), f32_at(blk, 4)],
                    m,
                };
            }
            Packing::Dense => unreachable!("dense matrices have no blocks"),
        };
        Block { w, d, m: [m, m] }
    }

    /// The 32 values.
    pub fn values(&self, out: &mut [f32]) {
        for (j, o) in out.iter_mut().enumerate().take(QK) {
            *o = self.d[j / 16] * self.w[j] as f32 + self.m[j / 16];
        }
    }
}
