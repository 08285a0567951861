//! Element-wise helpers (RMSNorm, softmax) and the linear layers on [`PackedMatrix`]es.

use crate::kernels::{self, PackedMatrix, QActs, QK};

/// `out = x / rms(x) ⊙ w`.
pub fn rmsnorm(out: &mut [f32], x: &[f32], w: &[f32], eps: f32) {
    let ss: f32 = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let inv = 1.0 / (ss + eps).sqrt();
    for ((o, xv), wv) in out.iter_mut().zip(x).zip(w) {
        *o = xv * inv * wv;
    }
}

/// RMSNorm of every `w.len()`-wide row of `x`.
/// (Rows split over the threads when there are many; each row is computed the same way.)
pub(super) fn rmsnorm_rows(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    use rayon::prelude::*;
    let mut out = vec![0.0f32; x.len()];
    if x.len() >= 64 * w.len() {
        out.par_chunks_mut(w.len())
            .zip(x.par_chunks(w.len()))
            .for_each(|(o, r)| rmsnorm(o, r, w, eps));
    } else {
        for (o, r) in out.chunks_mut(w.len()).zip(x.chunks(w.len())) {
            rmsnorm(o, r, w, eps);
        }
    }
    out
}

/// In-place numerically stable softmax.
pub fn softmax(x: &mut [f32]) {
    let m = x.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let mut s = 0.0f32;
    for v in x.iter_mut() {
        *v = (*v - m).exp();
        s += *v;
    }
    let inv = 1.0 / s;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// `out (T × rows) = x (T × cols) · Wᵀ`: the quantised mat-vec for one token, the GEMM for
/// several (integer for quantised weights, f32 for dense ones).
/// Leaves the quantised activation of a single token in `xq` for [`linear_q`] to reuse.
pub(super) fn linear(w: &PackedMatrix, x: &[f32], t: usize, out: &mut [f32], xq: &mut QActs) {
    if w.rows == 0 {
        return;
    }
    if w.cols == 0 {
        out.fill(0.0);
        return;
    }
    if t == 1 && !gemm_decode() {
        w.matvec(x, xq, out);
    } else {
        w.matmul(x, t, out);
    }
}

/// `out[i·rows + r] = Σ |summand|` behind element (i, r) of [`linear`]'s result, for the path
/// `linear` takes: with quantised weights the block terms `|d_w·d_x·Σ u·q|` and offset terms
/// `|m·d_x·Σ q|` of each token's 8-bit activation (the mat-vec and the integer GEMM add the
/// same terms), with dense ones the f32 products `|w·x|`.
pub(super) fn linear_magnitudes(
    w: &PackedMatrix,
    x: &[f32],
    xq: &QActs,
    t: usize,
    out: &mut [f32],
) {
    if w.rows == 0 || w.cols == 0 {
        out.fill(0.0);
        return;
    }
    if t == 1 && !gemm_decode() && w.packing() != kernels::Packing::Dense {
        w.matvec_q_magnitudes(xq, out);
    } else if w.gemm_is_f32() {
        w.matmul_magnitudes(x, t, out);
    } else {
        let mut q = QActs::default();
        for (xi, oi) in x.chunks_exact(w.cols).zip(out.chunks_exact_mut(w.rows)) {
            q.quantize_into(xi);
            w.matvec_q_magnitudes(&q, oi);
        }
    }
}

/// `AIRINFER_GEMM_DECODE=1` makes single-token steps take the prefill's GEMMs instead of the
/// mat-vec kernels: slower, bit-for-bit the prefill arithmetic (the same 8-bit activations, the
/// blocks added in the GEMM's order).
fn gemm_decode() -> bool {
    static F: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *F.get_or_init(|| std::env::var("AIRINFER_GEMM_DECODE").is_ok_and(|v| v == "1"))
}

/// The jobs with their outputs as slices (what the kernels' multi-matrix calls take).
fn slices<'a>(
    jobs: &'a mut [(&PackedMatrix, &mut Vec<f32>)],
) -> Vec<(&'a PackedMatrix, &'a mut [f32])> {
    jobs.iter_mut()
        .map(|(w, o)| (*w, o.as_mut_slice()))
        .collect()
}

/// Several [`linear`]s of the same input; with quantised weights, one activation quantisation
/// for all of them (and for one token one parallel region).
pub(super) fn linear_many(
    jobs: &mut [(&PackedMatrix, &mut Vec<f32>)],
    x: &[f32],
    t: usize,
    xq: &mut QActs,
) {
    let cols = x.len() / t.max(1);
    let all_quantised = jobs
        .iter()
        .all(|(w, _)| w.packing() != kernels::Packing::Dense && w.cols == cols);
    if t == 1 && all_quantised && cols.is_multiple_of(QK) && !gemm_decode() {
        xq.quantize_into(x);
        kernels::matvec_q_multi(&mut slices(jobs), xq);
    } else if t > 1 && all_quantised && !kernels::f32_prefill() {
        // one quantisation of the activations for all the GEMMs
        kernels::matmul_q_multi(&mut slices(jobs), x, t);
    } else {
        for (w, o) in jobs.iter_mut() {
            linear(w, x, t, o, xq);
        }
    }
}
