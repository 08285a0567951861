//! Block quantisation formats of GGML: layouts, dequantisation and reference quantisers.
//!
//! * Q8_0: f16 scale `d` + 32 × i8, 34 bytes per block of 32; `x = d · q`.
//! * Q4_0: f16 `d` + 16 bytes of nibbles, 18 bytes; `x = (q − 8) · d`; the low nibble of byte j
//!   is element j, the high nibble element j + 16.
//! * Q4_1: f16 `d`, f16 `m` + 16 bytes of nibbles, 20 bytes; `x = q · d + m`.
//! * F16, BF16, F32: plain little-endian values.
//! * Q5_0, Q5_1, IQ4_NL, IQ4_XS and the k-quants Q2_K … Q8_K: [`blocks`].

mod blocks;
mod encode;
pub use self::blocks::IQ4_NL;
pub use self::encode::{
    quantize_iq4_nl, quantize_iq4_xs, quantize_q2_k, quantize_q3_k, quantize_q4_k, quantize_q5_0,
    quantize_q5_1, quantize_q5_k, quantize_q6_k, quantize_q8_k,
};

use crate::ggml_type::GgmlType;
use half::{bf16, f16};

/// Elements per block of Q4_0 / Q4_1 / Q8_0.
pub const QK: usize = 32;

/// Dequantisation errors.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum QuantError {
    /// The type has no dequantiser here.
    #[error("dequantising {0:?} is not supported (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, IQ4_XS, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K)")]
    Unsupported(GgmlType),
    /// Input and output lengths disagree.
    #[error("{ty:?}: {bytes} bytes cannot hold {elements} elements")]
    Length {
        /// The type.
        ty: GgmlType,
        /// Bytes given.
        bytes: usize,
        /// Elements asked for.
        elements: usize,
    },
}

/// Quantise `x` (a whole number of `ty`'s blocks) to `ty` by ggml's reference rule (what
/// `llama-quantize` writes without an importance matrix): F32, F16, BF16, Q8_0, Q4_0, Q4_1,
/// Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, IQ4_NL, IQ4_XS.
pub fn quantize(ty: GgmlType, x: &[f32]) -> Result<Vec<u8>, QuantError> {
    let bs = ty.block_size();
    if bs == 0 || !x.len().is_multiple_of(bs) {
        return Err(QuantError::Length {
            ty,
            bytes: 0,
            elements: x.len(),
        });
    }
    Ok(match ty {
        GgmlType::F32 => x.iter().flat_map(|v| v.to_le_bytes()).collect(),
        GgmlType::F16 => f32_to_f16_bytes(x),
        GgmlType::BF16 => f32_to_bf16_bytes(x),
        GgmlType::Q8_0 => quantize_q8_0(x),
        GgmlType::Q4_0 => quantize_q4_0(x),
        GgmlType::Q4_1 => quantize_q4_1(x),
        GgmlType::Q5_0 => quantize_q5_0(x),
        GgmlType::Q5_1 => quantize_q5_1(x),
        GgmlType::Q2_K => quantize_q2_k(x),
        GgmlType::Q3_K => quantize_q3_k(x),
        GgmlType::Q4_K => quantize_q4_k(x),
        GgmlType::Q5_K => quantize_q5_k(x),
        GgmlType::Q6_K => quantize_q6_k(x),
        GgmlType::Q8_K => quantize_q8_k(x),
        GgmlType::IQ4_NL => quantize_iq4_nl(x),
        GgmlType::IQ4_XS => quantize_iq4_xs(x),
        other => return Err(QuantError::Unsupported(other)),
    })
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Dequantise `bytes` of type `ty` into `out` (whose length is the element count).
pub fn dequantize(ty: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
    let n = out.len();
    let bs = ty.block_size();
    let expect = if n.is_multiple_of(bs) {
        Some(n / bs * ty.type_size())
    } else {
        None
    };
    let supported = matches!(
        ty,
        GgmlType::F32
            | GgmlType::F16
            | GgmlType::BF16
            | GgmlType::Q8_0
            | GgmlType::Q4_0
            | GgmlType::Q4_1
            | GgmlType::Q5_0
            | GgmlType::Q5_1
            | GgmlType::IQ4_NL
            | GgmlType::IQ4_XS
            | GgmlType::Q2_K
            | GgmlType::Q3_K
            | GgmlType::Q4_K
            | GgmlType::Q5_K
            | GgmlType::Q6_K
            | GgmlType::Q8_K
    );
    if !supported {
        return Err(QuantError::Unsupported(ty));
    }
    if expect != Some(bytes.len()) {
        return Err(QuantError::Length {
            ty,
            bytes: bytes.len(),
            elements: n,
        });
    }
    match ty {
        GgmlType::F32 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        GgmlType::F16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        }
        GgmlType::BF16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = bf16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        }
        GgmlType::Q8_0 => {
            for (o, blk) in out.chunks_exact_mut(QK).zip(bytes.chunks_exact(34)) {
                let d = f16_at(blk, 0);
                for (x, &q) in o.iter_mut().zip(&blk[2..34]) {
                    *x = d * (q as i8) as f32;
                }
            }
        }
        GgmlType::Q4_0 => {
            for (o, blk) in out.chunks_exact_mut(QK).zip(bytes.chunks_exact(18)) {
                let d = f16_at(blk, 0);
                for j in 0..16 {
                    let q = blk[2 + j];
                    o[j] = ((q & 0x0F) as i32 - 8) as f32 * d;
                    o[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
                }
            }
        }
        GgmlType::Q4_1 => {
            for (o, blk) in out.chunks_exact_mut(QK).zip(bytes.chunks_exact(20)) {
                let (d, m) = (f16_at(blk, 0), f16_at(blk, 2));
                for j in 0..16 {
                    let q = blk[4 + j];
                    o[j] = (q & 0x0F) as f32 * d + m;
                    o[j + 16] = (q >> 4) as f32 * d + m;
                }
            }
        }
        GgmlType::Q5_0 | GgmlType::Q5_1 => {
            let with_min = ty == GgmlType::Q5_1;
            for (o, blk) in out
                .chunks_exact_mut(bs)
                .zip(bytes.chunks_exact(ty.type_size()))
            {
                blocks::q5(blk, with_min, o);
            }
        }
        _ => {
            let f: fn(&[u8], &mut [f32]) = match ty {
                GgmlType::IQ4_NL => blocks::iq4_nl,
                GgmlType::IQ4_XS => blocks::iq4_xs,
                GgmlType::Q2_K => blocks::q2_k,
                GgmlType::Q3_K => blocks::q3_k,
                GgmlType::Q4_K => blocks::q4_k,
                GgmlType::Q5_K => blocks::q5_k,
                GgmlType::Q6_K => blocks::q6_k,
                GgmlType::Q8_K => blocks::q8_k,
                _ => unreachable!("checked above"),
            };
            for (o, blk) in out
                .chunks_exact_mut(bs)
                .zip(bytes.chunks_exact(ty.type_size()))
            {
                f(blk, o);
            }
        }
    }
    Ok(())
}

fn check_blocks(x: &[f32]) {
    assert!(
        x.len().is_multiple_of(QK),
        "length {} is not a multiple of {QK}",
        x.len()
    );
}

/// Quantise to Q8_0 (ggml's reference rule: `d = max|x| / 127`, `q = round(x / d)`).
pub fn quantize_q8_0(x: &[f32]) -> Vec<u8> {
    check_blocks(x);
    let mut out = Vec::with_capacity(x.len() / QK * 34);
    for b in x.chunks_exact(QK) {
        let amax = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        out.extend(b.iter().map(|v| (v * id).round() as i8 as u8));
    }
    out
}

/// Quantise to Q4_0 (ggml's reference rule: `d = max / −8` where `max` is the signed value of
/// largest magnitude, `q = min(15, trunc(x/d + 8.5))`).
pub fn quantize_q4_0(x: &[f32]) -> Vec<u8> {
    check_blocks(x);
    let mut out = Vec::with_capacity(x.len() / QK * 18);
    for b in x.chunks_exact(QK) {
        let (mut amax, mut max) = (0.0f32, 0.0f32);
        for &v in b {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        for j in 0..16 {
            let q0 = ((b[j] * id + 8.5) as i32).clamp(0, 15) as u8;
            let q1 = ((b[j + 16] * id + 8.5) as i32).clamp(0, 15) as u8;
            out.push(q0 | (q1 << 4));
        }
    }
    out
}

/// Quantise to Q4_1 (ggml's reference rule: `d = (max − min) / 15`, `m = min`,
/// `q = min(15, trunc((x − min)/d + 0.5))`).
pub fn quantize_q4_1(x: &[f32]) -> Vec<u8> {
    check_blocks(x);
    let mut out = Vec::with_capacity(x.len() / QK * 20);
    for b in x.chunks_exact(QK) {
        let min = b.iter().fold(f32::INFINITY, |m, &v| m.min(v));
        let max = b.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let d = (max - min) / 15.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        out.extend_from_slice(&f16::from_f32(min).to_le_bytes());
        for j in 0..16 {
            let q0 = (((b[j] - min) * id + 0.5) as i32).clamp(0, 15) as u8;
            let q1 = (((b[j + 16] - min) * id + 0.5) as i32).clamp(0, 15) as u8;
            out.push(q0 | (q1 << 4));
        }
    }
    out
}

/// f32 values as little-endian f16 bytes.
pub fn f32_to_f16_bytes(x: &[f32]) -> Vec<u8> {
    x.iter()
        .flat_map(|v| f16::from_f32(*v).to_le_bytes())
        .collect()
}

/// f32 values as little-endian bf16 bytes.
pub fn f32_to_bf16_bytes(x: &[f32]) -> Vec<u8> {
    x.iter()
        .flat_map(|v| bf16::from_f32(*v).to_le_bytes())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
            })
            .collect()
    }

    fn roundtrip(ty: GgmlType, q: Vec<u8>, n: usize) -> Vec<f32> {
        let mut out = vec![0.0; n];
        dequantize(ty, &q, &mut out).unwrap();
        out
    }

    #[test]
    fn hand_built_blocks() {
        // Q8_0: d = 0.5, q = [−3, 4, 0, ...]
        let mut b = f16::from_f32(0.5).to_le_bytes().to_vec();
        let mut qs = [0u8; 32];
        qs[0] = (-3i8) as u8;
        qs[1] = 4;
        b.extend_from_slice(&qs);
        let out = roundtrip(GgmlType::Q8_0, b, 32);
        assert_eq!(&out[..3], &[-1.5, 2.0, 0.0]);
        // Q4_1: d = 2, m = −1, byte 0 = 0x3A → element 0 = 10·2−1 = 19, element 16 = 3·2−1 = 5
        let mut b = f16::from_f32(2.0).to_le_bytes().to_vec();
        b.extend_from_slice(&f16::from_f32(-1.0).to_le_bytes());
        let mut qs = [0u8; 16];
        qs[0] = 0x3A;
        b.extend_from_slice(&qs);
        let out = roundtrip(GgmlType::Q4_1, b, 32);
        assert_eq!((out[0], out[16], out[1]), (19.0, 5.0, -1.0));
        // Q4_0: d = 0.25, byte 0 = 0xF0 → element 0 = (0−8)·0.25 = −2, element 16 = (15−8)·0.25
        let mut b = f16::from_f32(0.25).to_le_bytes().to_vec();
        let mut qs = [0x88u8; 16];
        qs[0] = 0xF0;
        b.extend_from_slice(&qs);
        let out = roundtrip(GgmlType::Q4_0, b, 32);
        assert_eq!((out[0], out[16], out[1]), (-2.0, 1.75, 0.0));
    }

    #[test]
    fn quantisers_are_within_half_a_step() {
        let x = data(32 * 64, 9);
        for (ty, q) in [
            (GgmlType::Q8_0, quantize_q8_0(&x)),
            (GgmlType::Q4_0, quantize_q4_0(&x)),
            (GgmlType::Q4_1, quantize_q4_1(&x)),
        ] {
            let back = roundtrip(ty, q, x.len());
            for (blk, (xb, yb)) in x.chunks(32).zip(back.chunks(32)).enumerate() {
                let amax = xb.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let (mn, mx) = xb
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                        (a.min(v), b.max(v))
                    });
                let step = match ty {
                    GgmlType::Q8_0 => amax / 127.0,
                    GgmlType::Q4_0 => amax / 8.0,
                    _ => (mx - mn) / 15.0,
                };
                for (a, b) in xb.iter().zip(yb) {
                    // half a step plus f16 rounding of the scale (and min); Q4_0's code range
                    // [−8, 7] clips the value opposite the extreme by up to one whole step
                    let half = if ty == GgmlType::Q4_0 && (a.abs() - amax).abs() < 0.5 * step {
                        1.0
                    } else {
                        0.5
                    };
                    // f16 stores d and m to 2⁻¹¹ relative: |q|·d ≤ 2·amax (Q4_1; ≤ amax for
                    // Q8_0, Q4_0) and |m| ≤ amax, so ≤ 3·2⁻¹¹·amax, plus a few f32 roundings
                    // (the bare 2e-3·amax it replaces was 1.4× that)
                    let tol =
                        half * step + (3.0 * 2f32.powi(-11) + 4.0 * f32::EPSILON) * amax + 1e-6;
                    assert!(
                        (a - b).abs() <= tol,
                        "{ty:?} block {blk}: {a} vs {b} (step {step})"
                    );
                }
            }
        }
    }

    #[test]
    fn float_formats_roundtrip() {
        let x = [1.0f32, -2.5, 0.0, 65504.0, 1e-3];
        // round to nearest in the normal range: |error| ≤ u·|x| with u = 2⁻¹¹ (f16, 11-bit
        // significand) and 2⁻⁸ (bf16, 8 bits); these values are all normal (or 0). The bare
        // 1e-3·max(|x|, 1) and 1e-2·max(|x|, 1) they replace let small values drift
        let y = roundtrip(GgmlType::F16, f32_to_f16_bytes(&x), 5);
        for (a, b) in x.iter().zip(&y) {
            assert!((a - b).abs() <= a.abs() * 2f32.powi(-11), "{a} → {b}");
        }
        let y = roundtrip(GgmlType::BF16, f32_to_bf16_bytes(&x), 5);
        for (a, b) in x.iter().zip(&y) {
            assert!((a - b).abs() <= a.abs() * 2f32.powi(-8), "{a} → {b}");
        }
        let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(roundtrip(GgmlType::F32, bytes, 5), x.to_vec());
    }

    /// Every block format against an independent implementation, the `gguf` Python package's
    /// numpy dequantisers, on random blocks (`scripts/quant_fixtures.py` wrote the fixture).
    #[test]
    fn block_formats_match_the_gguf_python_package() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/data/quant_fixtures.json")).unwrap();
        let types = v["types"].as_object().unwrap();
        assert_eq!(types.len(), 12);
        for (name, t) in types {
            let ty = (0..31)
                .filter_map(GgmlType::from_id)
                .find(|g| format!("{g:?}") == *name)
                .unwrap();
            let hex = t["hex"].as_str().unwrap();
            let bytes: Vec<u8> = (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            let want: Vec<f32> = t["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            let mut got = vec![0.0; want.len()];
            dequantize(ty, &bytes, &mut got).unwrap();
            let scale = want.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                // the same products in f32, grouped differently here and there (d·sc·q vs
                // (d·sc)·q): a few ulps of the block's largest value
                assert!(
                    (a - b).abs() <= 4.0 * f32::EPSILON * scale,
                    "{name} value {i}: {a} vs {b}"
                );
            }
        }
    }

    /// Q8_K (which the gguf package does not dequantise): d as f32, then i8 codes.
    #[test]
    fn q8_k_is_its_scale_times_its_codes() {
        let mut b = 0.125f32.to_le_bytes().to_vec();
        b.extend((0..256i32).map(|i| (i - 128) as i8 as u8));
        b.extend([0u8; 32]);
        let out = roundtrip(GgmlType::Q8_K, b, 256);
        for (i, x) in out.iter().enumerate() {
            assert_eq!(*x, 0.125 * (i as f32 - 128.0));
        }
    }

    #[test]
    fn wrong_lengths_and_types_are_errors() {
        let mut out = vec![0.0; 32];
        assert!(matches!(
            dequantize(GgmlType::Q4_1, &[0u8; 19], &mut out),
            Err(QuantError::Length { .. })
        ));
        assert!(matches!(
            dequantize(GgmlType::IQ2_XXS, &[0u8; 66], &mut vec![0.0; 256]),
            Err(QuantError::Unsupported(_))
        ));
        let mut out = vec![0.0; 33];
        assert!(dequantize(GgmlType::Q8_0, &[0u8; 34], &mut out).is_err());
    }

    /// Q8_K (no llama-quantize target to compare with): every value within half a step of
    /// its source, the stored sums of 16 the sums of the codes, an all-zero block all zero.
    #[test]
    fn q8_k_round_trips_within_half_a_step() {
        let mut x = data(512, 9);
        x[256..].fill(0.0);
        let q = quantize(GgmlType::Q8_K, &x).unwrap();
        assert_eq!(q.len(), 2 * 292);
        let mut back = vec![0.0f32; 512];
        dequantize(GgmlType::Q8_K, &q, &mut back).unwrap();
        let d = f32::from_le_bytes([q[0], q[1], q[2], q[3]]).abs();
        for (v, b) in x[..256].iter().zip(&back) {
            assert!(
                (v - b).abs() <= 0.5 * d * (1.0 + 1e-6),
                "{v} vs {b} (step {d})"
            );
        }
        for g in 0..16 {
            let sum: i32 = q[4 + 16 * g..4 + 16 * g + 16]
                .iter()
                .map(|&c| c as i8 as i32)
                .sum();
            let stored = i16::from_le_bytes([q[260 + 2 * g], q[261 + 2 * g]]);
            assert_eq!(sum, stored as i32);
        }
        assert!(back[256..].iter().all(|&v| v == 0.0));
    }

    /// Every quantiser's output dequantises to values near its input, and a length that is not
    /// whole blocks is an error. The bound is one quantisation step of a block spanning
    /// [−2, 2]: range / (levels − 1) (the fitted k-quant scales may clip an extreme value, but
    /// not by a step), and for IQ4 the code book's widest gap, 24 of its 127 units. (The
    /// byte-exact comparison with llama-quantize is in `tests/arch_parity.rs`.)
    #[test]
    fn quantisers_round_trip_roughly_and_check_lengths() {
        let x = data(1024, 4);
        for (ty, levels) in [
            (GgmlType::Q5_0, 32.0),
            (GgmlType::Q5_1, 32.0),
            (GgmlType::Q2_K, 4.0),
            (GgmlType::Q3_K, 8.0),
            (GgmlType::Q4_K, 16.0),
            (GgmlType::Q5_K, 32.0),
            (GgmlType::Q6_K, 64.0),
            (GgmlType::IQ4_NL, 0.0),
            (GgmlType::IQ4_XS, 0.0),
        ] {
            let q = quantize(ty, &x).unwrap();
            assert_eq!(
                q.len(),
                x.len() / ty.block_size() * ty.type_size(),
                "{ty:?}"
            );
            let mut back = vec![0.0f32; x.len()];
            dequantize(ty, &q, &mut back).unwrap();
            let worst = x
                .iter()
                .zip(&back)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            let step = if levels > 0.0 {
                4.0 / (levels - 1.0)
            } else {
                4.0 * 24.0 / 127.0 / 2.0
            };
            assert!(
                worst < step,
                "{ty:?}: worst error {worst}, a step is {step}"
            );
            assert!(
                quantize(ty, &x[..x.len() - 32]).is_err() || ty.block_size() == 32,
                "{ty:?}"
            );
        }
        assert!(quantize(GgmlType::IQ2_XXS, &x).is_err());
    }
}
