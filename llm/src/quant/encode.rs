//! Quantisers of the 5-bit and k-quant formats by ggml's reference rules (what
//! `llama-quantize` writes without an importance matrix), so that tests and tools can build
//! files of every type the engine reads. Layouts as in [`super::blocks`]. Written from the
//! rules' description (ggml-quants.c's `quantize_row_*_ref`); the test compares the bytes with
//! `llama-quantize --pure` on the same weights.

use half::f16;

/// ggml's `nearest_int`: round half to even by the 1.5·2²³ trick (|v| < 2²²).
fn nearest_int(v: f32) -> i32 {
    let t = v + 12_582_912.0;
    (t.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

fn f16_bytes(v: f32) -> [u8; 2] {
    f16::from_f32(v).to_le_bytes()
}

fn f16_round(v: f32) -> f32 {
    f16::from_f32(v).to_f32()
}

/// The value of largest magnitude (the first such, with its sign) and that magnitude.
fn signed_absmax(x: &[f32]) -> (f32, f32) {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    (max, amax)
}

/// Q5_0: `d = max / −16`, `q = min(31, trunc(x/d + 16.5))`.
pub fn quantize_q5_0(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len() / 32 * 22);
    for b in x.chunks_exact(32) {
        let (max, _) = signed_absmax(b);
        let d = max / -16.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let q: Vec<u8> = b
            .iter()
            .map(|v| ((v * id + 16.5) as i8).min(31) as u8)
            .collect();
        out.extend_from_slice(&f16_bytes(d));
        put_q5(&mut out, &q);
    }
    out
}

/// Q5_1: `d = (max − min)/31`, `m = min`, `q = trunc((x − min)/d + 0.5)`.
pub fn quantize_q5_1(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len() / 32 * 24);
    for b in x.chunks_exact(32) {
        let min = b.iter().fold(f32::MAX, |m, &v| if v < m { v } else { m });
        let max = b.iter().fold(-f32::MAX, |m, &v| if v > m { v } else { m });
        let d = (max - min) / 31.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let q: Vec<u8> = b.iter().map(|v| ((v - min) * id + 0.5) as u8).collect();
        out.extend_from_slice(&f16_bytes(d));
        out.extend_from_slice(&f16_bytes(min));
        put_q5(&mut out, &q);
    }
    out
}

/// The fifth bits (u32) and the nibbles of 32 five-bit codes.
fn put_q5(out: &mut Vec<u8>, q: &[u8]) {
    let mut qh = 0u32;
    for (j, &v) in q.iter().enumerate() {
        qh |= (((v & 0x10) >> 4) as u32) << j;
    }
    out.extend_from_slice(&qh.to_le_bytes());
    out.extend((0..16).map(|j| (q[j] & 0x0F) | ((q[j + 16] & 0x0F) << 4)));
}

/// Q8_K: `d = max / −127` per 256 (f32), `q = min(127, round(x/d))`, sums per 16.
pub fn quantize_q8_k(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len() / 256 * 292);
    for b in x.chunks_exact(256) {
        let (max, amax) = signed_absmax(b);
        if amax == 0.0 {
            out.extend_from_slice(&0f32.to_le_bytes());
            out.extend(std::iter::repeat_n(0u8, 256 + 32));
            continue;
        }
        let iscale = -127.0 / max;
        let q: Vec<i8> = b
            .iter()
            .map(|v| nearest_int(iscale * v).min(127) as i8)
            .collect();
        out.extend_from_slice(&(1.0 / iscale).to_le_bytes());
        out.extend(q.iter().map(|&v| v as u8));
        for g in q.chunks_exact(16) {
            let s: i16 = g.iter().map(|&v| v as i16).sum();
            out.extend_from_slice(&s.to_le_bytes());
        }
    }
    out
}

/// ggml's `make_qkx2_quants`: codes `0..=nmax` and a scale and (negated) min for `x`, the
/// affine fit minimising the weighted squared (or, `use_mad`, absolute) error over
/// `nstep + 1` trial scales.
#[allow(clippy::too_many_arguments)]
fn make_qkx2_quants(
    x: &[f32],
    nmax: i32,
    w: &[f32],
    l_out: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> (f32, f32) {
    let err = |d: f32| if use_mad { d.abs() } else { d * d };
    let n = x.len();
    let (mut min, mut max) = (x[0], x[0]);
    let mut sum_w = w[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l_out.fill(0);
        return (0.0, -min);
    }
    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for i in 0..n {
        let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
        l_out[i] = l as u8;
        let diff = scale * l as f32 + min - x[i];
        best_error += w[i] * err(diff);
    }
    let mut aux = [0u8; 32];
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for i in 0..n {
            let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            aux[i] = l as u8;
            let lf = l as f32;
            sum_l += w[i] * lf;
            sum_l2 += w[i] * lf * lf;
            sum_xl += w[i] * lf * x[i];
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0.0f32;
            for i in 0..n {
                let diff = this_scale * aux[i] as f32 + this_min - x[i];
                cur_error += w[i] * err(diff);
            }
            if cur_error < best_error {
                l_out[..n].copy_from_slice(&aux[..n]);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// ggml's `make_qx_quants` with `rmse_type = 1` (weights x²): signed codes `−nmax..nmax−1`
/// (stored `+ nmax`) and a scale, the best of 19 trial scales.
fn make_qx_quants(x: &[f32], nmax: i32, l_out: &mut [i8]) -> f32 {
    let (max, amax) = signed_absmax(x);
    if amax < 1e-15 {
        l_out.fill(0);
        return 0.0;
    }
    let fit = |iscale: f32, l_out: Option<&mut [i8]>| {
        let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
        let mut ls = [0i32; 16];
        for (i, &v) in x.iter().enumerate() {
            let l = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
            ls[i] = l;
            let w = v * v;
            sumlx += w * v * l as f32;
            suml2 += w * l as f32 * l as f32;
        }
        if let Some(o) = l_out {
            for (i, oi) in o.iter_mut().enumerate() {
                *oi = (ls[i] + nmax) as i8;
            }
        }
        (sumlx, suml2)
    };
    let (sumlx, suml2) = fit(-(nmax as f32) / max, Some(&mut *l_out));
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        let iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        let (sumlx, suml2) = fit(iscale, None);
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            fit(iscale, Some(&mut *l_out));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// Scale and min codes of sub-block `j` from the 12-byte packing.
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Q4_K (`nmax` 15) and Q5_K (31): per sub-block of 32 an affine fit (weights `rms + |x|`),
/// the eight scales and mins quantised to 6 bits against their maxima, then the codes
/// recomputed from the quantised scales.
fn quantize_k4(x: &[f32], five: bool) -> Vec<u8> {
    let nmax = if five { 31 } else { 15 };
    let (rmin, nstep) = if five { (-0.5, 15) } else { (-1.0, 20) };
    let mut out = Vec::with_capacity(x.len() / 256 * if five { 176 } else { 144 });
    for b in x.chunks_exact(256) {
        let mut l = [0u8; 256];
        let (mut scales, mut mins) = ([0.0f32; 8], [0.0f32; 8]);
        let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
        for j in 0..8 {
            let xs = &b[32 * j..32 * j + 32];
            let sum_x2: f32 = xs.iter().fold(0.0, |s, v| s + v * v);
            let av_x = (sum_x2 / 32.0).sqrt();
            let w: Vec<f32> = xs.iter().map(|v| av_x + v.abs()).collect();
            let (s, m) = make_qkx2_quants(
                xs,
                nmax,
                &w,
                &mut l[32 * j..32 * j + 32],
                rmin,
                0.1,
                nstep,
                false,
            );
            scales[j] = s;
            mins[j] = m;
            if s > max_scale {
                max_scale = s;
            }
            if m > max_min {
                max_min = m;
            }
        }
        let inv_scale = if max_scale > 0.0 {
            63.0 / max_scale
        } else {
            0.0
        };
        let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
        let mut sc = [0u8; 12];
        for j in 0..8 {
            let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
            let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
            if j < 4 {
                sc[j] = ls;
                sc[j + 4] = lm;
            } else {
                sc[j + 4] = (ls & 0x0F) | ((lm & 0x0F) << 4);
                sc[j - 4] |= (ls >> 4) << 6;
                sc[j] |= (lm >> 4) << 6;
            }
        }
        let (d, dmin) = (f16_round(max_scale / 63.0), f16_round(max_min / 63.0));
        for j in 0..8 {
            let (s, m) = scale_min_k4(j, &sc);
            let dj = d * s as f32;
            if dj == 0.0 {
                continue;
            }
            let dm = dmin * m as f32;
            for i in 0..32 {
                l[32 * j + i] = nearest_int((b[32 * j + i] + dm) / dj).clamp(0, nmax) as u8;
            }
        }
        out.extend_from_slice(&f16_bytes(max_scale / 63.0));
        out.extend_from_slice(&f16_bytes(max_min / 63.0));
        out.extend_from_slice(&sc);
        if five {
            let mut qh = [0u8; 32];
            let mut qs = [0u8; 128];
            for (pair, n) in (0..256).step_by(64).enumerate() {
                let (m1, m2) = (1u8 << (2 * pair), 2u8 << (2 * pair));
                for j in 0..32 {
                    let (mut l1, mut l2) = (l[n + j], l[n + j + 32]);
                    if l1 > 15 {
                        l1 -= 16;
                        qh[j] |= m1;
                    }
                    if l2 > 15 {
                        l2 -= 16;
                        qh[j] |= m2;
                    }
                    qs[32 * pair + j] = l1 | (l2 << 4);
                }
            }
            out.extend_from_slice(&qh);
            out.extend_from_slice(&qs);
        } else {
            for n in (0..256).step_by(64) {
                out.extend((0..32).map(|j| l[n + j] | (l[n + j + 32] << 4)));
            }
        }
    }
    out
}

/// Q4_K by ggml's reference rule.
pub fn quantize_q4_k(x: &[f32]) -> Vec<u8> {
    quantize_k4(x, false)
}

/// Q5_K by ggml's reference rule.
pub fn quantize_q5_k(x: &[f32]) -> Vec<u8> {
    quantize_k4(x, true)
}

/// Q6_K: per 16 values a signed fit (`make_qx_quants`, 32 levels), the sixteen scales
/// quantised to i8 against the largest, the codes recomputed from them.
pub fn quantize_q6_k(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len() / 256 * 210);
    for b in x.chunks_exact(256) {
        let mut l = [0i8; 256];
        let mut scales = [0.0f32; 16];
        let (mut max_scale, mut max_abs_scale) = (0.0f32, 0.0f32);
        for ib in 0..16 {
            let s = make_qx_quants(&b[16 * ib..16 * ib + 16], 32, &mut l[16 * ib..16 * ib + 16]);
            scales[ib] = s;
            if s.abs() > max_abs_scale {
                max_abs_scale = s.abs();
                max_scale = s;
            }
        }
        if max_abs_scale < 1e-15 {
            out.extend(std::iter::repeat_n(0u8, 210));
            continue;
        }
        let iscale = -128.0 / max_scale;
        let d = f16_round(1.0 / iscale);
        let sc: Vec<i8> = scales
            .iter()
            .map(|s| nearest_int(iscale * s).min(127) as i8)
            .collect();
        for j in 0..16 {
            let dj = d * sc[j] as f32;
            if dj == 0.0 {
                continue;
            }
            for i in 0..16 {
                l[16 * j + i] = (nearest_int(b[16 * j + i] / dj).clamp(-32, 31) + 32) as i8;
            }
        }
        let l: Vec<u8> = l.iter().map(|&v| v as u8).collect();
        let (mut ql, mut qh) = ([0u8; 128], [0u8; 64]);
        for (half, j) in (0..256).step_by(128).enumerate() {
            for i in 0..32 {
                let q = |o: usize| l[j + i + o];
                ql[64 * half + i] = (q(0) & 15) | ((q(64) & 15) << 4);
                ql[64 * half + i + 32] = (q(32) & 15) | ((q(96) & 15) << 4);
                qh[32 * half + i] =
                    (q(0) >> 4) | ((q(32) >> 4) << 2) | ((q(64) >> 4) << 4) | ((q(96) >> 4) << 6);
            }
        }
        out.extend_from_slice(&ql);
        out.extend_from_slice(&qh);
        out.extend(sc.iter().map(|&v| v as u8));
        out.extend_from_slice(&f16_bytes(1.0 / iscale));
    }
    out
}

/// Q2_K: per 16 values an affine fit of 2-bit codes (weights `|x|`, absolute error), the
/// sixteen scales and mins quantised to 4 bits against their maxima, codes recomputed.
pub fn quantize_q2_k(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len() / 256 * 84);
    for b in x.chunks_exact(256) {
        let mut l = [0u8; 256];
        let (mut scales, mut mins) = ([0.0f32; 16], [0.0f32; 16]);
        let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
        for j in 0..16 {
            let xs = &b[16 * j..16 * j + 16];
            let w: Vec<f32> = xs.iter().map(|v| v.abs()).collect();
            let (s, m) =
                make_qkx2_quants(xs, 3, &w, &mut l[16 * j..16 * j + 16], -0.5, 0.1, 15, true);
            scales[j] = s;
            mins[j] = m;
            if s > max_scale {
                max_scale = s;
            }
            if m > max_min {
                max_min = m;
            }
        }
        let mut sc = [0u8; 16];
        let d = if max_scale > 0.0 {
            let iscale = 15.0 / max_scale;
            for j in 0..16 {
                sc[j] = nearest_int(iscale * scales[j]) as u8;
            }
            max_scale / 15.0
        } else {
            0.0
        };
        let dmin = if max_min > 0.0 {
            let iscale = 15.0 / max_min;
            for j in 0..16 {
                sc[j] |= (nearest_int(iscale * mins[j]) << 4) as u8;
            }
            max_min / 15.0
        } else {
            0.0
        };
        let (df, dminf) = (f16_round(d), f16_round(dmin));
        for j in 0..16 {
            let dj = df * (sc[j] & 0x0F) as f32;
            if dj == 0.0 {
                continue;
            }
            let dm = dminf * (sc[j] >> 4) as f32;
            for i in 0..16 {
                l[16 * j + i] = nearest_int((b[16 * j + i] + dm) / dj).clamp(0, 3) as u8;
            }
        }
        out.extend_from_slice(&sc);
        for j in (0..256).step_by(128) {
            out.extend((0..32).map(|i| {
                l[j + i] | (l[j + i + 32] << 2) | (l[j + i + 64] << 4) | (l[j + i + 96] << 6)
            }));
        }
        out.extend_from_slice(&f16_bytes(d));
        out.extend_from_slice(&f16_bytes(dmin));
    }
    out
}

/// ggml's `make_q3_quants` with `do_rmse`: signed codes `−nmax..nmax−1` (stored `+ nmax`) fitted
/// by up to five rounds of coordinate descent on the x²-weighted error; returns the scale.
fn make_q3_quants(x: &[f32], nmax: i32, l_out: &mut [i8]) -> f32 {
    let (max, amax) = signed_absmax(x);
    if amax < 1e-15 {
        l_out.fill(0);
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    let mut l = [0i32; 16];
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for (i, &v) in x.iter().enumerate() {
        l[i] = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
        let w = v * v;
        sumlx += w * v * l[i] as f32;
        suml2 += w * l[i] as f32 * l[i] as f32;
    }
    for _ in 0..5 {
        let mut changed = 0;
        for (i, &v) in x.iter().enumerate() {
            let w = v * v;
            let mut slx = sumlx - w * v * l[i] as f32;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * l[i] as f32 * l[i] as f32;
                let new_l = nearest_int(v * sl2 / slx).clamp(-nmax, nmax - 1);
                if new_l != l[i] {
                    slx += w * v * new_l as f32;
                    sl2 += w * new_l as f32 * new_l as f32;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        l[i] = new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        changed += 1;
                    }
                }
            }
        }
        if changed == 0 {
            break;
        }
    }
    for (o, li) in l_out.iter_mut().zip(&l) {
        *o = (li + nmax) as i8;
    }
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}

/// Q3_K: per 16 values a signed 3-bit fit (`make_q3_quants`), the sixteen scales quantised to
/// 6 bits against the largest, codes recomputed; the third bits go to `hmask`.
pub fn quantize_q3_k(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len() / 256 * 110);
    for b in x.chunks_exact(256) {
        let mut l = [0i8; 256];
        let mut scales = [0.0f32; 16];
        let (mut max_scale, mut amax) = (0.0f32, 0.0f32);
        for j in 0..16 {
            scales[j] = make_q3_quants(&b[16 * j..16 * j + 16], 4, &mut l[16 * j..16 * j + 16]);
            if scales[j].abs() > amax {
                amax = scales[j].abs();
                max_scale = scales[j];
            }
        }
        let mut sc = [0u8; 12];
        let d = if max_scale != 0.0 {
            let iscale = -32.0 / max_scale;
            for j in 0..16 {
                let v = ((nearest_int(iscale * scales[j]) as i8).clamp(-32, 31) + 32) as u8;
                if j < 8 {
                    sc[j] = v & 0x0F;
                } else {
                    sc[j - 8] |= (v & 0x0F) << 4;
                }
                sc[j % 4 + 8] |= (v >> 4) << (2 * (j / 4));
            }
            1.0 / iscale
        } else {
            0.0
        };
        let df = f16_round(d);
        for j in 0..16 {
            let lo = if j < 8 { sc[j] & 0x0F } else { sc[j - 8] >> 4 };
            let s = (lo | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) as i32 - 32;
            let dj = df * s as f32;
            if dj == 0.0 {
                continue;
            }
            for i in 0..16 {
                l[16 * j + i] = (nearest_int(b[16 * j + i] / dj).clamp(-4, 3) + 4) as i8;
            }
        }
        let mut hmask = [0u8; 32];
        let mut lu = [0u8; 256];
        for j in 0..256 {
            let mut v = l[j] as u8;
            if v > 3 {
                hmask[j % 32] |= 1 << (j / 32);
                v -= 4;
            }
            lu[j] = v;
        }
        out.extend_from_slice(&hmask);
        for j in (0..256).step_by(128) {
            out.extend((0..32).map(|i| {
                lu[j + i] | (lu[j + i + 32] << 2) | (lu[j + i + 64] << 4) | (lu[j + i + 96] << 6)
            }));
        }
        out.extend_from_slice(&sc);
        out.extend_from_slice(&f16_bytes(d));
    }
    out
}

/// ggml's `best_index_int8`: the index of the code-book value nearest `x` (ties to the upper
/// unless strictly nearer the lower), by bisection of the sorted book.
fn best_index(values: &[i8; 16], x: f32) -> u8 {
    if x <= values[0] as f32 {
        return 0;
    }
    if x >= values[15] as f32 {
        return 15;
    }
    let (mut ml, mut mu) = (0usize, 15usize);
    while mu - ml > 1 {
        let mav = (ml + mu) / 2;
        if x < values[mav] as f32 {
            mu = mav;
        } else {
            ml = mav;
        }
    }
    if x - (values[mu - 1] as f32) < values[mu] as f32 - x {
        (mu - 1) as u8
    } else {
        mu as u8
    }
}

/// ggml's `quantize_row_iq4_nl_impl` as `llama-quantize` calls it (no importance matrix, seven
/// trial scales each side): per 32 values the x²-weighted best scale of the non-linear code
/// book; for IQ4_XS (`super_block` 256) the eight scales then quantised to 6 bits against the
/// largest and the codes recomputed. Writes `d`, (IQ4_XS: `scales_h`, `scales_l`) and the codes.
fn quantize_iq4(x: &[f32], out: &mut Vec<u8>) {
    let values = &super::IQ4_NL;
    let nb = x.len() / 32;
    let mut l = vec![0u8; x.len()];
    let mut scales = vec![0.0f32; nb];
    let (mut max_scale, mut amax_scale) = (0.0f32, 0.0f32);
    let ntry = 7;
    for ib in 0..nb {
        let xb = &x[32 * ib..32 * ib + 32];
        let lb = &mut l[32 * ib..32 * ib + 32];
        let (max, amax) = signed_absmax(xb);
        if amax < 1e-15 {
            scales[ib] = 0.0;
            continue;
        }
        let fit = |id: f32, lb: Option<&mut [u8]>| {
            let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
            let mut ls = [0u8; 32];
            for (j, &v) in xb.iter().enumerate() {
                ls[j] = best_index(values, id * v);
                let q = values[ls[j] as usize] as f32;
                let w = v * v;
                sumqx += w * q * v;
                sumq2 += w * q * q;
            }
            if let Some(lb) = lb {
                lb.copy_from_slice(&ls);
            }
            (sumqx, sumq2)
        };
        let d0 = -max / values[0] as f32;
        let (sumqx, sumq2) = fit(1.0 / d0, Some(lb));
        let mut d = if sumq2 > 0.0 { sumqx / sumq2 } else { 0.0 };
        let mut best = d * sumqx;
        for itry in -ntry..=ntry {
            let id = (itry + values[0] as i32) as f32 / max;
            let (sumqx, sumq2) = fit(id, None);
            if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        scales[ib] = d;
        if d.abs() > amax_scale {
            amax_scale = d.abs();
            max_scale = d;
        }
    }
    if nb > 1 {
        let d = -max_scale / 32.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let (mut scales_h, mut scales_l) = (0u16, [0u8; 4]);
        for ib in 0..nb {
            let li = nearest_int(id * scales[ib]).clamp(-32, 31);
            let dl = d * li as f32;
            let idl = if dl != 0.0 { 1.0 / dl } else { 0.0 };
            for j in 0..32 {
                l[32 * ib + j] = best_index(values, idl * x[32 * ib + j]);
            }
            let li = (li + 32) as u8;
            if ib % 2 == 0 {
                scales_l[ib / 2] = li & 0x0F;
            } else {
                scales_l[ib / 2] |= (li & 0x0F) << 4;
            }
            scales_h |= ((li >> 4) as u16) << (2 * (ib % 8));
        }
        out.extend_from_slice(&f16_bytes(d));
        out.extend_from_slice(&scales_h.to_le_bytes());
        out.extend_from_slice(&scales_l);
    } else {
        out.extend_from_slice(&f16_bytes(scales[0]));
        let id = if scales[0] != 0.0 {
            1.0 / scales[0]
        } else {
            0.0
        };
        for (j, lj) in l.iter_mut().enumerate() {
            *lj = best_index(values, id * x[j]);
        }
    }
    for i in 0..nb {
        out.extend((0..16).map(|j| l[32 * i + j] | (l[32 * i + 16 + j] << 4)));
    }
}

/// IQ4_NL as `llama-quantize` writes it.
pub fn quantize_iq4_nl(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len() / 32 * 18);
    for b in x.chunks_exact(32) {
        quantize_iq4(b, &mut out);
    }
    out
}

/// IQ4_XS as `llama-quantize` writes it.
pub fn quantize_iq4_xs(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(x.len() / 256 * 136);
    for b in x.chunks_exact(256) {
        quantize_iq4(b, &mut out);
    }
    out
}
