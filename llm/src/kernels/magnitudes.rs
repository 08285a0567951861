//! The magnitudes `Σ |summand|` behind each output of the mat-vec and GEMM paths (a diagnostic
//! for rounding-error bounds).

use super::{PackedMatrix, Packing, QActs, QK};

impl PackedMatrix {
    /// For every row, `Σ_b Σ_g |d_w·d_x·Σ_{j∈g} u_j q_j| + |m_b·dsum_b|` (Q2F: the offset per
    /// half, `Σ_h |m_h·dsum_h|`) with `g` the eight
    /// groups of four consecutive elements of a block: the magnitudes of the floating-point
    /// summands that the SIMD paths of [`PackedMatrix::matvec_q`] add up for that row (the
    /// portable path adds whole blocks, whose magnitudes this bounds too; Q8_0 has no offset
    /// term). Portable, in f64, rounded up to f32. A diagnostic for rounding-error bounds
    /// ([`crate::tp::Collective::all_reduce_with_magnitudes`]).
    pub fn matvec_q_magnitudes(&self, xq: &QActs, out: &mut [f32]) {
        assert!(self.packing != Packing::Dense, "quantised matrices only");
        assert_eq!(xq.blocks() * QK, self.cols);
        assert_eq!(out.len(), self.rows);
        let bb = self.packing.block_bytes();
        for (r, o) in out.iter_mut().enumerate() {
            let mut s = 0.0f64;
            for (b, blk) in self.row_blocks(r).chunks_exact(bb).enumerate() {
                let k = super::repack::Block::decode(self.packing, blk);
                let q = &xq.qs[b * QK..b * QK + QK];
                for g in 0..QK / 4 {
                    let p: i32 = (4 * g..4 * g + 4).map(|j| k.w[j] * q[j] as i32).sum();
                    let dd = k.d[g / 4] as f64 * xq.d[b] as f64;
                    s += (dd * p as f64).abs();
                }
                if self.packing == Packing::Q2F {
                    for h in 0..2 {
                        s += (k.m[h] as f64 * xq.dsum_h[b][h] as f64).abs();
                    }
                } else {
                    s += (k.m[0] as f64 * xq.dsum[b] as f64).abs();
                }
            }
            *o = round_up(s);
        }
    }

    /// `M (t × rows)`, `M[i, r] = Σ_c |W[r,c] · x[i,c]|`: the magnitudes of the products that
    /// the f32 paths ([`PackedMatrix::matmul`], the dense mat-vec) add up. Portable, in f64,
    /// rounded up to f32.
    pub fn matmul_magnitudes(&self, x: &[f32], t: usize, out: &mut [f32]) {
        assert_eq!(x.len(), t * self.cols);
        assert_eq!(out.len(), t * self.rows);
        let w = self.dense();
        for i in 0..t {
            let xi = &x[i * self.cols..(i + 1) * self.cols];
            for r in 0..self.rows {
                let wr = &w[r * self.cols..(r + 1) * self.cols];
                let s: f64 = wr
                    .iter()
                    .zip(xi)
                    .map(|(a, b)| (*a as f64 * *b as f64).abs())
                    .sum();
                out[i * self.rows + r] = round_up(s);
            }
        }
    }
}

/// A non-negative f64 rounded to an f32 that is not smaller (a bound stays a bound).
fn round_up(s: f64) -> f32 {
    let f = s as f32;
    if (f as f64) < s {
        f32::from_bits(f.to_bits() + 1)
    } else {
        f
    }
}
