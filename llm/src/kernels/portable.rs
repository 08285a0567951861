//! Portable kernels: the f32 dot product and the integer block dots of Q4_0/Q4_1/Q8_0 rows.

use super::repack::Block;
use super::{f16_at, Packing, QActs, QK};

/// f32 dot product (auto-vectorised; 8 independent accumulators).
#[inline]
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let chunks = n / 8;
    for c in 0..chunks {
        for j in 0..8 {
            acc[j] += a[c * 8 + j] * b[c * 8 + j];
        }
    }
    let mut s = 0.0f32;
    for i in chunks * 8..n {
        s += a[i] * b[i];
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + s
}

pub(super) fn q4_portable(row: &[u8], q41: bool, x: &QActs) -> f32 {
    let bb = if q41 { 20 } else { 18 };
    let mut s = 0.0f32;
    for (b, blk) in row.chunks_exact(bb).enumerate() {
        let d = f16_at(blk, 0);
        let (m, c) = if q41 {
            (f16_at(blk, 2), &blk[4..20])
        } else {
            (-8.0 * d, &blk[2..18])
        };
        let q = &x.qs[b * QK..b * QK + QK];
        let mut acc = 0i32;
        for j in 0..16 {
            acc += (c[j] & 0x0F) as i32 * q[j] as i32;
            acc += (c[j] >> 4) as i32 * q[j + 16] as i32;
        }
        s += d * x.d[b] * acc as f32 + m * x.dsum[b];
    }
    s
}

pub(super) fn q8_portable(row: &[u8], x: &QActs) -> f32 {
    let mut s = 0.0f32;
    for (b, blk) in row.chunks_exact(34).enumerate() {
        let q = &x.qs[b * QK..b * QK + QK];
        let mut acc = 0i32;
        for j in 0..QK {
            acc += (blk[2 + j] as i8) as i32 * q[j] as i32;
        }
        s += f16_at(blk, 0) * x.d[b] * acc as f32;
    }
    s
}

/// Any other packing: per block `Σ_h d_h·d_x·Σ_{j∈h} w_j q_j + m·dsum` over the two halves
/// (Q2F: `+ Σ_h m_h·dsum_h`).
pub(super) fn generic_portable(packing: Packing, row: &[u8], x: &QActs) -> f32 {
    let mut s = 0.0f32;
    for (b, blk) in row.chunks_exact(packing.block_bytes()).enumerate() {
        let k = Block::decode(packing, blk);
        let q = &x.qs[b * QK..b * QK + QK];
        let half = |h: usize| -> i32 { (16 * h..16 * h + 16).map(|j| k.w[j] * q[j] as i32).sum() };
        let dx = x.d[b];
        if packing == Packing::Q2F {
            let dh = x.dsum_h[b];
            s += k.d[0] * dx * half(0) as f32
                + k.d[1] * dx * half(1) as f32
                + (k.m[0] * dh[0] + k.m[1] * dh[1]);
        } else if k.d[0] == k.d[1] {
            s += k.d[0] * dx * (half(0) + half(1)) as f32 + k.m[0] * x.dsum[b];
        } else {
            s += k.d[0] * dx * half(0) as f32 + k.d[1] * dx * half(1) as f32;
        }
    }
    s
}
