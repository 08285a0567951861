//! The decode path: quantised (and dense) mat-vecs, split over output rows.

use super::{dot_f32, select_kernel, Kernel, PackedMatrix, Packing, QActs, GROUP, QK};
use rayon::prelude::*;

impl PackedMatrix {
    /// `out[r] = Σ_c W[r,c] · x[c]` for one f32 activation vector.
    /// Quantised weights use the 8-bit activation path ([`QActs`]); dense weights use f32.
    pub fn matvec(&self, x: &[f32], xq: &mut QActs, out: &mut [f32]) {
        assert_eq!(x.len(), self.cols);
        assert_eq!(out.len(), self.rows);
        match self.packing {
            Packing::Dense => {
                let w = self.dense();
                par_rows(out, |r0, chunk| {
                    for (i, o) in chunk.iter_mut().enumerate() {
                        let r = r0 + i;
                        *o = dot_f32(&w[r * self.cols..(r + 1) * self.cols], x);
                    }
                });
            }
            _ => {
                xq.quantize_into(x);
                self.matvec_q(xq, out);
            }
        }
    }

    /// `out[r] = Σ_c W[r,c] · x[c]` for pre-quantised activations (quantised packings only).
    pub fn matvec_q(&self, xq: &QActs, out: &mut [f32]) {
        matvec_q_multi(&mut [(self, out)], xq);
    }

    /// Rows `r0 .. r0 + out.len()` of the quantised mat-vec (`r0` a multiple of [`GROUP`]),
    /// one interleaved group of four rows at a time.
    pub(super) fn rows_q(&self, r0: usize, out: &mut [f32], xq: &QActs, kernel: Kernel) {
        debug_assert!(r0.is_multiple_of(GROUP));
        let mut i = 0;
        while i < out.len() {
            let n = (out.len() - i).min(GROUP);
            let mut res = [0.0f32; GROUP];
            // a last group's padding rows are computed, then discarded
            kernel.rows(self.packing, self.group((r0 + i) / GROUP), xq, &mut res);
            out[i..i + n].copy_from_slice(&res[..n]);
            i += n;
        }
    }
}

/// Several quantised mat-vecs against the same activation in one parallel region (e.g. Q, K and
/// V, or gate and up), so that the threads are forked once instead of once per matrix.
pub fn matvec_q_multi(jobs: &mut [(&PackedMatrix, &mut [f32])], xq: &QActs) {
    let kernel = select_kernel();
    let total: usize = jobs.iter().map(|(m, _)| m.rows).sum();
    for (m, out) in jobs.iter() {
        assert!(m.packing != Packing::Dense, "matvec_q on a dense matrix");
        assert_eq!(xq.blocks() * QK, m.cols);
        assert_eq!(out.len(), m.rows);
    }
    let threads = rayon::current_num_threads();
    if threads <= 1 || total < 64 {
        for (m, out) in jobs.iter_mut() {
            m.rows_q(0, out, xq, kernel);
        }
        return;
    }
    // ~4 tasks per thread, in multiples of 4 rows, run by the spinning decode team
    let chunk = (total.div_ceil(threads * 4)).div_ceil(4).max(4) * 4;
    let mut tasks: Vec<(&PackedMatrix, usize, SendPtr, usize)> = Vec::new();
    for (m, out) in jobs.iter_mut() {
        for (i, c) in out.chunks_mut(chunk).enumerate() {
            tasks.push((*m, i * chunk, SendPtr(c.as_mut_ptr()), c.len()));
        }
    }
    crate::spin::SpinTeam::global().run(tasks.len(), threads, &|i| {
        let (m, r0, ptr, len) = &tasks[i];
        // SAFETY: the chunks come from `chunks_mut` of distinct outputs, so task i alone writes
        // these `len` floats, and `run` returns only after every task has finished.
        let c = unsafe { std::slice::from_raw_parts_mut(ptr.0, *len) };
        m.rows_q(*r0, c, xq, kernel);
    });
}

/// A raw output pointer handed to one task of the spinning team.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: each pointer is written by exactly one task (see `matvec_q_multi`).
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// Split `out` into row chunks processed in parallel; `f(first_row, chunk)`.
fn par_rows(out: &mut [f32], f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    let rows = out.len();
    let threads = rayon::current_num_threads();
    // Small matrices are not worth a fork; large ones get ~4 chunks per thread.
    if threads <= 1 || rows < 64 {
        f(0, out);
        return;
    }
    let chunk = rows.div_ceil(threads * 4).max(16);
    out.par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(i, c)| f(i * chunk, c));
}
