use super::*;

fn lcg(seed: &mut u64) -> f32 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

fn random_matrix(packing: Packing, rows: usize, cols: usize, seed: &mut u64) -> PackedMatrix {
    let w: Vec<f32> = (0..rows * cols).map(|_| lcg(seed) * 0.7 + 0.1).collect();
    let mut blocks = match packing {
        Packing::Q4_0 => crate::quant::quantize_q4_0(&w),
        Packing::Q4_1 => crate::quant::quantize_q4_1(&w),
        _ => crate::quant::quantize_q8_0(&w),
    };
    if packing == Packing::Q8_0 {
        // include the extreme code −128, which ggml never writes but a file may hold
        for blk in blocks.chunks_exact_mut(34).step_by(7) {
            blk[5] = 0x80;
        }
    }
    PackedMatrix::from_blocks(packing, rows, cols, blocks)
}

/// Reference, written from GGML's block formulas independently of the kernels: per row
/// `Σ_b d_w·d_x·Σ_j w_j q_j + m_b·dsum_b` in f64 from the stored values (the exact value
/// of what every kernel path rounds).
fn reference(w: &PackedMatrix, xq: &QActs) -> Vec<f64> {
    let bb = w.packing.block_bytes();
    (0..w.rows)
        .map(|r| {
            w.row_blocks(r)
                .chunks_exact(bb)
                .enumerate()
                .map(|(b, blk)| {
                    let d = half::f16::from_le_bytes([blk[0], blk[1]]).to_f64();
                    let q = |j: usize| xq.qs[b * QK + j] as i64;
                    let (acc, m): (i64, f64) = match w.packing {
                        Packing::Q8_0 => {
                            ((0..QK).map(|j| (blk[2 + j] as i8) as i64 * q(j)).sum(), 0.0)
                        }
                        Packing::Q4_0 => (
                            (0..16)
                                .map(|j| {
                                    (blk[2 + j] & 15) as i64 * q(j)
                                        + (blk[2 + j] >> 4) as i64 * q(j + 16)
                                })
                                .sum(),
                            -8.0 * d,
                        ),
                        _ => (
                            (0..16)
                                .map(|j| {
                                    (blk[4 + j] & 15) as i64 * q(j)
                                        + (blk[4 + j] >> 4) as i64 * q(j + 16)
                                })
                                .sum(),
                            half::f16::from_le_bytes([blk[2], blk[3]]).to_f64(),
                        ),
                    };
                    d * xq.d[b] as f64 * acc as f64 + m * xq.dsum[b] as f64
                })
                .sum()
        })
        .collect()
}

/// Every kernel path this CPU has (whatever `AIRINFER_SIMD` says) on `m` against the exact
/// values `want`: each row within γ_n · Σ|summands| with n = 2·blocks + `extra` roundings, and
/// the AVX2 and VNNI paths bit for bit equal. Returns each path's output.
fn check_every_kernel(
    m: &PackedMatrix,
    xq: &QActs,
    want: &[f64],
    extra: usize,
    what: &str,
) -> Vec<(Kernel, Vec<f32>)> {
    let (rows, cols) = (m.rows, m.cols);
    let mut mag = vec![0.0f32; rows];
    m.matvec_q_magnitudes(xq, &mut mag);
    let g = gamma(2 * cols / QK + extra);
    let mut outs = Vec::new();
    for k in kernels_here() {
        let mut got = vec![0.0f32; rows];
        m.rows_q(0, &mut got, xq, k);
        for r in 0..rows {
            let bound = g * mag[r] as f64;
            assert!(
                (got[r] as f64 - want[r]).abs() <= bound,
                "{k:?} {what} {rows}x{cols} row {r}: {} vs exact {} (bound {bound:e})",
                got[r],
                want[r]
            );
        }
        outs.push((k, got));
    }
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = outs.iter().find(|(k, _)| *k == Kernel::Avx2);
        let vnni = outs.iter().find(|(k, _)| *k == Kernel::Vnni);
        if let (Some(a), Some(v)) = (avx2, vnni) {
            assert!(a.1 == v.1, "{what} {rows}x{cols}: AVX2 and VNNI differ");
        }
    }
    outs
}

/// γ_n = n·u/(1 − n·u), u = 2⁻²⁴.
fn gamma(n: usize) -> f64 {
    let nu = n as f64 * 2f64.powi(-24);
    nu / (1.0 - nu)
}

/// Every kernel path against the exact value: the error of a row is at most
/// γ_n · Σ|summands| (recursive summation in any order; n = 2·blocks + 6 roundings on the
/// longest path: one term per block per lane, the offset sum, 3 levels of horizontal sum,
/// the final add, 2 roundings inside a summand), with Σ|summands| from
/// `matvec_q_magnitudes`. The AVX2 and AVX-512 VNNI paths are bit-identical: the same
/// integer dot products (exact; no saturation for these ranges) and the same float ops.
#[test]
fn quantized_matvec_matches_reference_on_every_kernel() {
    let mut seed = 7u64;
    let kernels = kernels_here(); // every path this CPU has, whatever AIRINFER_SIMD says
    eprintln!("kernel paths tested on this CPU: {kernels:?}");
    for &(rows, cols) in &[(1, 32), (3, 64), (70, 96), (130, 576), (9, 1536)] {
        for packing in [Packing::Q4_0, Packing::Q4_1, Packing::Q8_0] {
            let m = random_matrix(packing, rows, cols, &mut seed);
            let x: Vec<f32> = (0..cols).map(|_| lcg(&mut seed) * 3.0).collect();
            let xq = QActs::quantize(&x);
            let want = reference(&m, &xq);
            let mut mag = vec![0.0f32; rows];
            m.matvec_q_magnitudes(&xq, &mut mag);
            let outs = check_every_kernel(&m, &xq, &want, 6, &format!("{:?}", m.packing));
            // the dispatched path (whatever AIRINFER_SIMD selects) is one of them
            let mut got = vec![0.0; rows];
            m.matvec_q(&xq, &mut got);
            assert!(
                outs.iter().any(|(_, o)| *o == got),
                "dispatched path is none of the kernels"
            );
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
        // half a step, plus the f32 roundings of v·(1/d) and d·q (a few ulps of |v| ≤ 10,
        // an ulp of 10 being 9.5e-7)
        assert!((back - v).abs() <= 0.5 * d + 4.0 * f32::EPSILON * 10.0);
    }
    let zero = QActs::quantize(&[0.0; 32]);
    assert_eq!(zero.d[0], 0.0);
    assert!(zero.qs.iter().all(|&q| q == 0));
}

/// The f32 GEMM (dense weights) against an f64 naive product, and the same bits on 1 and 2
/// threads.
#[test]
fn gemm_matches_naive_and_is_thread_count_independent() {
    let mut seed = 11u64;
    let (t, rows, cols) = (37, 130, 96);
    let w: Vec<f32> = (0..rows * cols).map(|_| lcg(&mut seed)).collect();
    let m = PackedMatrix::from_dense(rows, cols, w.clone());
    let x: Vec<f32> = (0..t * cols).map(|_| lcg(&mut seed)).collect();
    let mut want = vec![0.0f64; t * rows];
    for i in 0..t {
        for r in 0..rows {
            want[i * rows + r] = (0..cols)
                .map(|c| x[i * cols + c] as f64 * w[r * cols + c] as f64)
                .sum();
        }
    }
    let y1 = on_threads(1, || matmul(&m, &x, t));
    let y2 = on_threads(2, || matmul(&m, &x, t));
    assert_eq!(y1, y2, "GEMM result depends on the thread count");
    // f32 dot products of `cols` terms in any order: |error| ≤ γ_{cols+1}·Σ|w·x|
    let mut mag = vec![0.0f32; t * rows];
    m.matmul_magnitudes(&x, t, &mut mag);
    let g = gamma(cols + 1);
    for ((a, b), mg) in y1.iter().zip(&want).zip(&mag) {
        assert!((*a as f64 - b).abs() <= g * *mg as f64, "{a} vs {b}");
    }
}

fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

fn matmul(m: &PackedMatrix, x: &[f32], t: usize) -> Vec<f32> {
    let mut y = vec![0.0f32; t * m.rows];
    m.matmul(x, t, &mut y);
    y
}

/// The integer GEMM of a quantised matrix on every kernel path this CPU has, for `t` tokens
/// `x`: each output against `want(token's QActs)` (the exact value, per row) within
/// γ_n · Σ|summands|, n = 2·blocks + `extra`, Σ|summands| from `matvec_q_magnitudes` of
/// that token's quantised activation (the GEMM adds the same block and offset terms, whole
/// blocks or halves, in another order); every path and thread count the same bits.
fn check_gemm_every_kernel(
    m: &PackedMatrix,
    x: &[f32],
    t: usize,
    want: impl Fn(&QActs) -> Vec<f64>,
    extra: usize,
    what: &str,
) {
    let (rows, cols) = (m.rows, m.cols);
    let g = gamma(2 * cols / QK + extra);
    let mut first: Option<Vec<f32>> = None;
    for k in kernels_here() {
        for threads in [1, 2] {
            let got = on_threads(threads, || {
                let mut y = vec![0.0f32; t * rows];
                m.matmul_q_with(k, x, t, &mut y);
                y
            });
            match &first {
                None => first = Some(got),
                Some(f) => assert!(
                    *f == got,
                    "{what} {t}x{rows}x{cols}: {k:?} on {threads} threads differs from the first path"
                ),
            }
        }
    }
    let got = first.unwrap();
    assert_eq!(
        got,
        matmul(m, x, t),
        "{what}: the dispatched GEMM is none of the paths"
    );
    let mut mag = vec![0.0f32; rows];
    for i in 0..t {
        let xq = QActs::quantize(&x[i * cols..(i + 1) * cols]);
        let w = want(&xq);
        m.matvec_q_magnitudes(&xq, &mut mag);
        for r in 0..rows {
            let (y, bound) = (got[i * rows + r] as f64, g * mag[r] as f64);
            assert!(
                (y - w[r]).abs() <= bound,
                "{what} {t}x{rows}x{cols} token {i} row {r}: {y} vs exact {} (bound {bound:e})",
                w[r]
            );
        }
    }
}

/// The prefill GEMM of GGML's own block types against the exact reference, on shapes with a
/// partial last token tile and a partial last row group.
#[test]
fn quantized_gemm_matches_reference_on_every_kernel() {
    let mut seed = 23u64;
    eprintln!("kernel paths tested on this CPU: {:?}", kernels_here());
    // token counts below and above the split by tokens (2 tiles per thread) and the chunk of
    // 128 tokens, a partial last tile, row counts off the groups of 4
    for &(t, rows, cols) in &[
        (1, 5, 32),
        (5, 3, 64),
        (17, 70, 96),
        (37, 130, 576),
        (300, 6, 64),
    ] {
        for packing in [Packing::Q4_0, Packing::Q4_1, Packing::Q8_0] {
            let m = random_matrix(packing, rows, cols, &mut seed);
            let x: Vec<f32> = (0..t * cols).map(|_| lcg(&mut seed) * 3.0).collect();
            check_gemm_every_kernel(
                &m,
                &x,
                t,
                |xq| reference(&m, xq),
                6,
                &format!("{packing:?}"),
            );
        }
    }
}

/// Random blocks of GGML type `ty` for `n` values: random code bytes, f16 scales of a sane size
/// at the format's scale offsets (random bytes there could be inf or NaN).
fn random_file_blocks(ty: crate::ggml_type::GgmlType, n: usize, seed: &mut u64) -> Vec<u8> {
    use crate::ggml_type::GgmlType as T;
    let f16_fields: &[usize] = match ty {
        T::Q5_0 | T::IQ4_NL | T::IQ4_XS => &[0],
        T::Q5_1 | T::Q4_K | T::Q5_K => &[0, 2],
        T::Q3_K => &[108],
        T::Q6_K => &[208],
        T::Q2_K => &[80, 82],
        _ => unreachable!("{ty:?}"),
    };
    let (bs, ts) = (ty.block_size(), ty.type_size());
    let mut b: Vec<u8> = (0..n / bs * ts)
        .map(|_| ((lcg(seed) + 1.0) * 127.9) as u8)
        .collect();
    for blk in b.chunks_exact_mut(ts) {
        for (i, &off) in f16_fields.iter().enumerate() {
            let v = if i == 0 {
                0.02 + 0.01 * lcg(seed)
            } else {
                0.01 * lcg(seed)
            };
            blk[off..off + 2].copy_from_slice(&half::f16::from_f32(v).to_le_bytes());
        }
    }
    b
}

/// The repacked types (Q5_0, Q5_1 as GGML's blocks; Q4_K, Q5_K, Q6_K, Q3_K, Q2_K, IQ4_NL,
/// IQ4_XS repacked into 32-value blocks) on every kernel path against an exact reference computed
/// from the file's own values: `Σ_c v_c · d_x · q_c` in f64, with `v` from the dequantisers
/// (which equal gguf-py's, `quant::tests`), not from the repacker. Bound as for the GGML
/// types, one rounding more (the kernels' offset term uses the f32 `dsum`). The packed
/// matrix's rows also dequantise to the file's values bit for bit.
#[test]
fn repacked_matvec_matches_the_files_values_on_every_kernel() {
    use crate::ggml_type::GgmlType as T;
    let mut seed = 19u64;
    for ty in [
        T::Q5_0,
        T::Q5_1,
        T::Q4_K,
        T::Q5_K,
        T::Q6_K,
        T::Q3_K,
        T::IQ4_NL,
        T::IQ4_XS,
        T::Q2_K,
    ] {
        for &(rows, cols) in &[(1, 256), (7, 512), (66, 768)] {
            let file = random_file_blocks(ty, rows * cols, &mut seed);
            let rb = cols / ty.block_size() * ty.type_size();
            let packing = packing_for(ty).unwrap();
            let mut blocks = Vec::new();
            for r in 0..rows {
                repack_row(ty, &file[r * rb..(r + 1) * rb], &mut blocks);
            }
            let m = PackedMatrix::from_blocks(packing, rows, cols, blocks);
            let mut values = vec![0.0f32; cols];
            let mut row = vec![0.0f32; cols];
            let x: Vec<f32> = (0..cols).map(|_| lcg(&mut seed) * 3.0).collect();
            let xq = QActs::quantize(&x);
            let mut want = vec![0.0f64; rows];
            for r in 0..rows {
                crate::quant::dequantize(ty, &file[r * rb..(r + 1) * rb], &mut values).unwrap();
                m.dequantize_row(r, &mut row);
                assert!(
                    row == values,
                    "{ty:?}: row {r} does not dequantise to the file's values"
                );
                want[r] = (0..cols)
                    .map(|c| values[c] as f64 * xq.d[c / QK] as f64 * xq.qs[c] as f64)
                    .sum();
            }
            check_every_kernel(&m, &xq, &want, 7, &format!("{ty:?}"));
            // the prefill GEMM of the same matrix, 9 tokens
            let t = 9;
            let xs: Vec<f32> = (0..t * cols).map(|_| lcg(&mut seed) * 3.0).collect();
            let mut vals = vec![vec![0.0f32; cols]; rows];
            for (r, v) in vals.iter_mut().enumerate() {
                crate::quant::dequantize(ty, &file[r * rb..(r + 1) * rb], v).unwrap();
            }
            let exact = |xq: &QActs| -> Vec<f64> {
                vals.iter()
                    .map(|v| {
                        (0..cols)
                            .map(|c| v[c] as f64 * xq.d[c / QK] as f64 * xq.qs[c] as f64)
                            .sum()
                    })
                    .collect()
            };
            check_gemm_every_kernel(&m, &xs, t, exact, 7, &format!("{ty:?} GEMM"));
        }
    }
}

/// The libm-free rounding equals `f32::round` (halves away from zero) on halves, their
/// neighbours, signs, NaN and random values; and the activation quantiser built on it gives
/// the same bytes and scales as the plain formula (`round`, one fold for the maximum).
#[test]
fn activation_rounding_equals_round_half_away_from_zero() {
    let mut vals = vec![0.0f32, -0.0, f32::NAN, 127.49999, 127.5, -127.5, 1e9, -1e9];
    for k in -300..=300 {
        let h = k as f32 + 0.5;
        vals.extend([h, -h, h.next_up(), h.next_down(), k as f32]);
    }
    let mut seed = 41u64;
    vals.extend((0..10_000).map(|_| lcg(&mut seed) * 140.0));
    for v in vals {
        assert_eq!(round_half_away(v), v.round() as i32, "{v:e}");
    }
    for scale in [1e-3f32, 1.0, 30.0] {
        let x: Vec<f32> = (0..4096).map(|_| lcg(&mut seed) * scale).collect();
        let q = QActs::quantize(&x);
        for (b, xb) in x.chunks_exact(QK).enumerate() {
            let amax = xb.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            let id = if d > 0.0 { 1.0 / d } else { 0.0 };
            let want: Vec<i8> = xb
                .iter()
                .map(|v| ((v * id).round() as i32).clamp(-127, 127) as i8)
                .collect();
            assert_eq!(&q.qs[b * QK..(b + 1) * QK], &want[..]);
            let s: i32 = want.iter().map(|&v| v as i32).sum();
            assert_eq!((q.d[b], q.dsum[b]), (d, d * s as f32));
        }
    }
}
