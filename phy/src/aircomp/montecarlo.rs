//! Monte-Carlo estimates of a transceiver's MSE.

use super::{Problem, Transceiver};
use crate::channel::cn_matrix;
use crate::{CMat, C64};

/// Monte-Carlo MSE of a transceiver: `symbols` independent uses, Gaussian s_k ~ CN(0, σ_k² I).
pub fn simulate_mse<R: rand::Rng + ?Sized>(
    p: &Problem,
    t: &Transceiver,
    symbols: usize,
    rng: &mut R,
) -> f64 {
    let l = t.receive_beamformer.ncols();
    let nr = p.channels[0].nrows();
    if l == 1 {
        return simulate_mse_single_stream(p, t, symbols, rng);
    }
    let mut y = cn_matrix(nr, symbols, rng) * C64::new(p.noise_var.sqrt(), 0.0);
    let mut sum = CMat::zeros(l, symbols);
    for ((h, bk), &s) in p.channels.iter().zip(&t.precoders).zip(p.signal_var) {
        let sk = cn_matrix(l, symbols, rng) * C64::new(s.sqrt(), 0.0);
        y += (h * bk) * &sk;
        sum += sk;
    }
    let est = t.receive_beamformer.adjoint() * y;
    (est - sum).norm_squared() / symbols as f64
}

/// [`simulate_mse`] for one stream: blocks of 96 channel uses in structure-of-arrays f32, the
/// received signal formed antenna by antenna (`y_i = Σ_k v_ik s_k + n_i`, `v_k = H_kb_k`) and
/// combined with aᴴ, every loop running over the 96 uses so that it vectorises; Gaussian draws
/// from [`crate::fastrng::Normals`] seeded from `rng`. Squared errors are accumulated in f64.
fn simulate_mse_single_stream<R: rand::Rng + ?Sized>(
    p: &Problem,
    t: &Transceiver,
    symbols: usize,
    rng: &mut R,
) -> f64 {
    let nr = p.channels[0].nrows();
    let k = p.channels.len();
    let mut v = Vec::with_capacity(k * nr);
    for (h, bk) in p.channels.iter().zip(&t.precoders) {
        let hb = h * bk;
        v.extend((0..nr).map(|i| (hb[(i, 0)].re as f32, hb[(i, 0)].im as f32)));
    }
    let a: Vec<(f32, f32)> = (0..nr)
        .map(|i| {
            let z = t.receive_beamformer[(i, 0)];
            (z.re as f32, z.im as f32)
        })
        .collect();
    // per real component: CN(0, σ²) has variance σ²/2
    let sd: Vec<f32> = p
        .signal_var
        .iter()
        .map(|s| (s / 2.0).sqrt() as f32)
        .collect();
    let sn = (p.noise_var / 2.0).sqrt() as f32;
    let mut g = crate::fastrng::Normals::from_rng(rng);
    // noise then signals: (N_r + K) × 2 × BLOCK normals per block
    let mut z = vec![0f32; (nr + k) * 2 * BLOCK];
    let mut err2 = 0.0f64;
    let mut left = symbols;
    while left > 0 {
        let n = left.min(BLOCK);
        err2 += simulate_block(&mut g, &mut z, &v, &a, &sd, sn, n);
        left -= n;
    }
    err2 / symbols as f64
}

const BLOCK: usize = 96;

fn simulate_block(
    g: &mut crate::fastrng::Normals,
    z: &mut [f32],
    v: &[(f32, f32)],
    a: &[(f32, f32)],
    sd: &[f32],
    sn: f32,
    n: usize,
) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::simd::avx2() {
            // SAFETY: the CPU has the features the function is compiled for.
            return unsafe { simulate_block_avx2(g, z, v, a, sd, sn, n) };
        }
    }
    simulate_block_portable(g, z, v, a, sd, sn, n)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn simulate_block_avx2(
    g: &mut crate::fastrng::Normals,
    z: &mut [f32],
    v: &[(f32, f32)],
    a: &[(f32, f32)],
    sd: &[f32],
    sn: f32,
    n: usize,
) -> f64 {
    simulate_block_portable(g, z, v, a, sd, sn, n)
}

#[inline(always)]
fn simulate_block_portable(
    g: &mut crate::fastrng::Normals,
    z: &mut [f32],
    v: &[(f32, f32)],
    a: &[(f32, f32)],
    sd: &[f32],
    sn: f32,
    n: usize,
) -> f64 {
    let nr = a.len();
    g.fill(z, 1.0);
    let (noise, sig) = z.split_at_mut(nr * 2 * BLOCK);
    // est = Σ_i conj(a_i) y_i = Σ_i conj(a_i) n_i + Σ_k (Σ_i conj(a_i) v_ik) s_k, evaluated
    // antenna by antenna as the receiver does: y_i first, then the combiner
    let mut er = [0f32; BLOCK];
    let mut ei = [0f32; BLOCK];
    let mut sum_r = [0f32; BLOCK];
    let mut sum_i = [0f32; BLOCK];
    let mut yr = [0f32; BLOCK];
    let mut yi = [0f32; BLOCK];
    // scale the signals once
    for (d, &s) in sd.iter().enumerate() {
        let blk = &mut sig[d * 2 * BLOCK..(d + 1) * 2 * BLOCK];
        for x in blk.iter_mut() {
            *x *= s;
        }
        let (re, im) = blk.split_at(BLOCK);
        for j in 0..BLOCK {
            sum_r[j] += re[j];
            sum_i[j] += im[j];
        }
    }
    for (i, &(ar, ai)) in a.iter().enumerate() {
        let (nre, nim) = noise[i * 2 * BLOCK..(i + 1) * 2 * BLOCK].split_at(BLOCK);
        for j in 0..BLOCK {
            yr[j] = sn * nre[j];
            yi[j] = sn * nim[j];
        }
        for d in 0..sd.len() {
            let (vr, vi) = v[d * nr + i];
            let (sr, si) = sig[d * 2 * BLOCK..(d + 1) * 2 * BLOCK].split_at(BLOCK);
            for j in 0..BLOCK {
                yr[j] += vr * sr[j] - vi * si[j];
                yi[j] += vr * si[j] + vi * sr[j];
            }
        }
        // conj(a_i) y_i
        for j in 0..BLOCK {
            er[j] += ar * yr[j] + ai * yi[j];
            ei[j] += ar * yi[j] - ai * yr[j];
        }
    }
    let mut acc = 0.0f64;
    for j in 0..n {
        let dr = er[j] - sum_r[j];
        let di = ei[j] - sum_i[j];
        acc += (dr * dr + di * di) as f64;
    }
    acc
}
