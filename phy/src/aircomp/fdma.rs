//! Uncoded FDMA: the analog baseline of Zhang et al. 2025 without superposition. The band is
//! split into K orthogonal sub-channels; device k sends `B_k s_k` alone on its own, the AP
//! equalises each with `A_kᴴ` and adds the K estimates.
//!
//! Conventions (so that it compares with AirComp on the same [`Problem`]): `noise_var` σ² is the
//! noise of one full-band channel use. A sub-channel has 1/K of the band, so with the same
//! transmit power its noise is σ²/K per use, and one symbol per device takes K full-band channel
//! uses of airtime. Zero-forcing per device along the SVD `H_k = U S Vᴴ`:
//! `B_k = V_L diag(b_i)`, `A_k = U_L diag(1/(s_i b_i))` with the power split `b_i² ∝ 1/s_i`
//! that minimises `Σ_i 1/(s_i b_i)²` under `σ_k² Σ_i b_i² = P_k`, which gives
//!
//! `MSE_k = (σ²/K) σ_k² (Σ_{i≤L} 1/s_i)² / P_k`, `MSE = Σ_k MSE_k`.

use super::{AirCompError, Problem};
use crate::channel::cn01;
use crate::{CMat, C64};

/// An uncoded-FDMA transceiver set.
#[derive(Debug, Clone)]
pub struct FdmaDesign {
    /// Combiner A_k (N_r × L) of each device's sub-channel.
    pub combiners: Vec<CMat>,
    /// Precoder B_k (N_t × L) of each device.
    pub precoders: Vec<CMat>,
    /// MSE contributed by each device.
    pub per_device_mse: Vec<f64>,
    /// Total MSE of the sum per symbol (closed form).
    pub analytic_mse: f64,
    /// Full-band channel uses per symbol (K).
    pub airtime_factor: usize,
}

/// The per-device zero-forcing FDMA design.
pub fn uncoded_fdma(p: &Problem) -> Result<FdmaDesign, AirCompError> {
    p.validate()?;
    let k = p.channels.len();
    let l = p.streams;
    let sub_noise = p.noise_var / k as f64;
    let mut combiners = Vec::with_capacity(k);
    let mut precoders = Vec::with_capacity(k);
    let mut per_device_mse = Vec::with_capacity(k);
    for (d, h) in p.channels.iter().enumerate() {
        let (nr, nt) = h.shape();
        let svd = h.clone().svd(true, true);
        let (Some(u), Some(vt)) = (svd.u, svd.v_t) else {
            return Err(AirCompError::Invalid(format!("device {d}: SVD failed")));
        };
        let mut idx: Vec<usize> = (0..svd.singular_values.len()).collect();
        idx.sort_by(|&i, &j| svd.singular_values[j].total_cmp(&svd.singular_values[i]));
        let s: Vec<f64> = idx[..l].iter().map(|&i| svd.singular_values[i]).collect();
        if s.iter().any(|&v| v.is_nan() || v <= 0.0) {
            return Err(AirCompError::Invalid(format!(
                "device {d}: channel rank below L = {l}; uncoded FDMA cannot invert it"
            )));
        }
        let inv_sum: f64 = s.iter().map(|v| 1.0 / v).sum();
        let sv = p.signal_var[d];
        // b_i² = (P/σ_k²) (1/s_i) / Σ_j 1/s_j ; a zero-variance device sends nothing useful but
        // still needs a finite design: give it the whole budget as if σ_k² = 1
        let scale = p.power[d] / if sv > 0.0 { sv } else { 1.0 };
        let b: Vec<f64> = s.iter().map(|&v| (scale / v / inv_sum).sqrt()).collect();
        let bk = CMat::from_fn(nt, l, |r, c| vt[(idx[c], r)].conj() * b[c]);
        let ak = CMat::from_fn(nr, l, |r, c| u[(r, idx[c])] * (1.0 / (s[c] * b[c])));
        per_device_mse.push(sub_noise * ak.norm_squared());
        combiners.push(ak);
        precoders.push(bk);
    }
    Ok(FdmaDesign {
        analytic_mse: per_device_mse.iter().sum(),
        combiners,
        precoders,
        per_device_mse,
        airtime_factor: k,
    })
}

/// Monte-Carlo MSE of an FDMA design over `symbols` symbols, s_k ~ CN(0, σ_k² I).
pub fn simulate_fdma_mse<R: rand::Rng + ?Sized>(
    p: &Problem,
    d: &FdmaDesign,
    symbols: usize,
    rng: &mut R,
) -> f64 {
    let k = p.channels.len();
    let sn = (p.noise_var / k as f64).sqrt();
    // effective per-device maps AᴴHB (L × L) and combiners, flattened per symbol
    let eff: Vec<CMat> = p
        .channels
        .iter()
        .zip(&d.combiners)
        .zip(&d.precoders)
        .map(|((h, a), b)| a.adjoint() * h * b)
        .collect();
    let l = p.streams;
    let mut err2 = 0.0;
    for _ in 0..symbols {
        let mut e = vec![C64::new(0.0, 0.0); l];
        for ((m, a), &sv) in eff.iter().zip(&d.combiners).zip(p.signal_var) {
            let s: Vec<C64> = (0..l).map(|_| cn01(rng) * sv.sqrt()).collect();
            let n: Vec<C64> = (0..a.nrows()).map(|_| cn01(rng) * sn).collect();
            for (j, ej) in e.iter_mut().enumerate() {
                let mut v = -s[j];
                for (i, si) in s.iter().enumerate() {
                    v += m[(j, i)] * si;
                }
                for (r, nr) in n.iter().enumerate() {
                    v += a[(r, j)].conj() * nr;
                }
                *ej += v;
            }
        }
        err2 += e.iter().map(|v| v.norm_sqr()).sum::<f64>();
    }
    err2 / symbols as f64
}

/// Uncoded-FDMA sum of K real vectors: each device removes its mean (side information),
/// packs pairs of reals into complex symbols over L streams and sends them on its own
/// sub-channel with the per-device ZF design computed from the CSI; the AP equalises each
/// sub-channel and adds the K estimates. `channel_uses` counts full-band uses (K per symbol).
pub fn fdma_sum<R: rand::Rng + ?Sized>(
    partials: &[&[f32]],
    link: &super::OtaLink,
    rng: &mut R,
) -> Result<super::OtaOutcome, AirCompError> {
    let channels = link.channels;
    let k = partials.len();
    let (n, csi) = super::check_partials(partials, link)?;
    let l = link.streams.max(1);
    let uses = n.div_ceil(2).div_ceil(l);
    let (means, var) = super::centre_stats(partials);
    let believed = Problem {
        channels: csi,
        signal_var: &var,
        power: link.power,
        noise_var: link.noise_var,
        streams: l,
    };
    let d = uncoded_fdma(&believed)?;
    let truth = Problem {
        channels,
        ..believed
    };
    truth.validate()?;
    let sn = (link.noise_var / k as f64).sqrt();
    let mut est = CMat::zeros(l, uses);
    let mut true_mse = 0.0;
    for (dev, (((x, m), h), (a, b))) in partials
        .iter()
        .zip(&means)
        .zip(channels)
        .zip(d.combiners.iter().zip(&d.precoders))
        .enumerate()
    {
        let s = super::pack(x, *m, l, uses);
        let noise = crate::channel::cn_matrix(h.nrows(), uses, rng) * C64::new(sn, 0.0);
        let eff = a.adjoint() * h * b;
        est += &eff * s + a.adjoint() * noise;
        // closed form on the true channel: mismatch + this sub-channel's noise
        true_mse += var[dev] * (eff - CMat::identity(l, l)).norm_squared()
            + link.noise_var / k as f64 * a.norm_squared();
    }
    let estimate = super::unpack(&est, means.iter().sum(), n);
    Ok(super::OtaOutcome {
        estimate,
        channel_uses: uses * k,
        side_info_bytes: 8 * k,
        analytic_mse: d.analytic_mse,
        true_mse,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::cn_matrix;
    use crate::rng::stream;

    #[test]
    fn fdma_matches_its_closed_form_and_budgets() {
        for (k, nr, nt, l) in [
            (2, 1, 1, 1),
            (4, 4, 1, 1),
            (8, 16, 1, 1),
            (4, 4, 2, 2),
            (16, 4, 4, 2),
        ] {
            let mut rng = stream(70, &[k as u64, nr as u64, l as u64]);
            let h: Vec<CMat> = (0..k).map(|_| cn_matrix(nr, nt, &mut rng)).collect();
            let var: Vec<f64> = (0..k).map(|i| 0.5 + 0.2 * i as f64).collect();
            let pw: Vec<f64> = (0..k).map(|i| 1.5 - 0.05 * i as f64).collect();
            for snr_db in [-10.0f64, 10.0, 30.0] {
                let p = Problem {
                    channels: &h,
                    signal_var: &var,
                    power: &pw,
                    noise_var: 10f64.powf(-snr_db / 10.0),
                    streams: l,
                };
                let d = uncoded_fdma(&p).unwrap();
                // closed form from the singular values, computed independently
                let want: f64 = h
                    .iter()
                    .zip(var.iter().zip(&pw))
                    .map(|(hk, (&s, &pk))| {
                        let mut sv: Vec<f64> = hk.singular_values().iter().copied().collect();
                        sv.sort_by(|a, b| b.total_cmp(a));
                        let inv: f64 = sv[..l].iter().map(|v| 1.0 / v).sum();
                        p.noise_var / k as f64 * s * inv * inv / pk
                    })
                    .sum();
                // two f64 evaluations of the same closed form (SVDs of ≤ 16 × 4 matrices):
                // rounding ~1e-15·κ; 1e-9 is headroom for the conditioning
                assert!((d.analytic_mse / want - 1.0).abs() < 1e-9);
                for ((hk, a), (b, (&s, &pk))) in h
                    .iter()
                    .zip(&d.combiners)
                    .zip(d.precoders.iter().zip(var.iter().zip(&pw)))
                {
                    // exact inversion and budget in f64: ~ε_f64·κ(H_k), ≪ 1e-9 for small random
                    // channels
                    let e = a.adjoint() * hk * b - CMat::identity(l, l);
                    assert!(e.norm() < 1e-9);
                    assert!((s * b.norm_squared() / pk - 1.0).abs() < 1e-9);
                }
                let sim = simulate_fdma_mse(&p, &d, 100_000, &mut rng);
                // Monte-Carlo: circular Gaussian error, |e|² over ≤ 2 streams has rel. SE
                // ≤ 1/√N = 0.32 % at N = 1e5: 0.03 ≥ 9.5 SE
                assert!(
                    (sim / d.analytic_mse - 1.0).abs() < 0.03,
                    "K={k} N_r={nr} L={l} SNR={snr_db}: {sim} vs {}",
                    d.analytic_mse
                );
            }
        }
    }

    #[test]
    fn fdma_is_k_single_device_aircomps_at_a_kth_of_the_noise() {
        // device k alone on the whole band is AirComp with K = 1 (ZF along its principal
        // direction is optimal then); on a 1/K sub-channel its noise is σ²/K
        let k = 16;
        let mut rng = stream(71, &[]);
        let h: Vec<CMat> = (0..k).map(|_| cn_matrix(8, 1, &mut rng)).collect();
        let var: Vec<f64> = (0..k).map(|i| 1.0 + i as f64 * 0.1).collect();
        let pw = vec![1.0; k];
        let p = Problem {
            channels: &h,
            signal_var: &var,
            power: &pw,
            noise_var: 0.1,
            streams: 1,
        };
        let f = uncoded_fdma(&p).unwrap();
        assert_eq!(f.airtime_factor, k);
        let mut total = 0.0;
        for d in 0..k {
            let single = Problem {
                channels: &h[d..d + 1],
                signal_var: &var[d..d + 1],
                power: &pw[d..d + 1],
                noise_var: 0.1 / k as f64,
                streams: 1,
            };
            let z = crate::aircomp::zero_forcing(&single, crate::aircomp::ReceiveDirection::Eigen)
                .unwrap();
            // the same closed form by two f64 routes (eigen vs SVD of an 8 × 1 channel): ~1e-15
            assert!((z.analytic_mse / f.per_device_mse[d] - 1.0).abs() < 1e-9);
            total += z.analytic_mse;
        }
        // f64 sum of 16 terms
        assert!((total / f.analytic_mse - 1.0).abs() < 1e-9);
        let rank_deficient = vec![CMat::zeros(2, 2); 2];
        assert!(uncoded_fdma(&Problem {
            channels: &rank_deficient,
            signal_var: &[1.0, 1.0],
            power: &[1.0, 1.0],
            noise_var: 1.0,
            streams: 1
        })
        .is_err());
    }

    #[test]
    fn fdma_sum_of_real_vectors_has_the_closed_form_error() {
        let k = 3;
        let mut rng = stream(72, &[]);
        let h: Vec<CMat> = (0..k).map(|_| cn_matrix(4, 1, &mut rng)).collect();
        let n = 20_000;
        let xs: Vec<Vec<f32>> = (0..k)
            .map(|d| {
                (0..n)
                    .map(|_| rand::Rng::random::<f32>(&mut rng) * (d + 1) as f32)
                    .collect()
            })
            .collect();
        let refs: Vec<&[f32]> = xs.iter().map(|v| v.as_slice()).collect();
        let link = crate::aircomp::OtaLink {
            channels: &h,
            csi: None,
            power: &[1.0, 1.0, 1.0],
            noise_var: 0.05,
            streams: 1,
        };
        let out = fdma_sum(&refs, &link, &mut rng).unwrap();
        assert_eq!(out.channel_uses, k * n / 2);
        // perfect CSI: the same f64 formula on the same design (equal up to rounding)
        assert!((out.true_mse / out.analytic_mse - 1.0).abs() < 1e-9);
        let err = (0..n)
            .map(|i| {
                let t: f64 = xs.iter().map(|v| v[i] as f64).sum();
                (out.estimate[i] as f64 - t).powi(2)
            })
            .sum::<f64>()
            / n as f64;
        // Monte-Carlo: Gaussian error per real (noise only after exact inversion), rel. SE
        // √(2/n) = 1 % at n = 20 000: 0.05 = 5 SE
        assert!(
            (err / (out.true_mse / 2.0) - 1.0).abs() < 0.05,
            "{err} vs {}",
            out.true_mse / 2.0
        );
    }
}
