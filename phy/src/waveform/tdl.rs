//! 3GPP tapped-delay-line (TDL) multipath channels on the sample grid.
//!
//! # Profiles
//!
//! The non-line-of-sight profiles TDL-A, TDL-B and TDL-C of 3GPP TR 38.901 v17.0.0, §7.7.2,
//! Tables 7.7.2-1, 7.7.2-2 and 7.7.2-3 ("TDL-A/B/C"): 23, 23 and 24 Rayleigh-faded paths with
//! *normalised* delays `τ_n,model` (unit RMS delay spread) and powers in dB. Following §7.7.3,
//! the delays are scaled by the desired RMS delay spread: `τ_n = τ_n,model · DS_desired` (e.g.
//! 10 ns "very short" … 1000 ns "very long", Table 7.7.3-1). Powers are normalised to sum to 1.
//!
//! # Realisation on the sample grid
//!
//! One realisation is a block-fading (static over the burst, no Doppler) impulse response:
//! each path gets an independent gain `g_n ~ CN(0, p_n)` and is placed at `τ_n·fs` samples by
//! **windowed-sinc (band-limited) interpolation**: path `n` contributes
//! `g_n · κ_n[m]` to sample tap `m`, where `κ_n[m] ∝ sinc(m − τ_n fs) · w((m − τ_n fs)/K)`
//! with a Hann window `w` of half-width `K` ([`DEFAULT_SINC_HALF_WIDTH`] = 4 samples), causally
//! truncated to `m ≥ 0`, and normalised to `Σ_m κ_n[m]² = 1`. A path on an integer sample
//! delay therefore occupies exactly one tap, and the expected total power is exactly
//! `Σ_m E|h[m]|² = Σ_n p_n = 1` for every delay spread and sample rate. The response has at
//! most `⌊τ_max fs⌋ + K + 1` taps (`τ_max fs + 1` when every delay falls on a sample, e.g. a
//! single tap for zero delay spread). Windowed-sinc rather than linear interpolation because a
//! linear split between neighbouring taps is a low-pass filter (−10 dB at 0.4 fs for a
//! half-sample delay) that would colour the channel across a wide OFDM band.
//!
//! # Frequency response
//!
//! On an OFDM grid, a channel of at most `cp_len + 1` taps acts per subcarrier as
//! `H_k = Σ_m h[m] e^{−j2πkm/N}` ([`frequency_response`]); with the unitary DFT of
//! [`super::ofdm`] the demodulated value is exactly `H_k X_k`.
//!
//! Reference: 3GPP TR 38.901 v17.0.0 (2022-03), "Study on channel model for frequencies from
//! 0.5 to 100 GHz", §7.7.2–7.7.3.

use super::ofdm::OfdmConfig;
use super::{check_non_negative, check_positive, WaveformError};
use crate::C64;
use rand::Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

/// Default half-width (samples) of the windowed-sinc interpolator placing fractional path
/// delays on the sample grid.
pub const DEFAULT_SINC_HALF_WIDTH: usize = 4;

/// TR 38.901 Table 7.7.2-1 (TDL-A): normalised delays.
const TDL_A_DELAYS: [f64; 23] = [
    0.0000, 0.3819, 0.4025, 0.5868, 0.4610, 0.5375, 0.6708, 0.5750, 0.7618, 1.5375, 1.8978, 2.2242,
    2.1718, 2.4942, 2.5119, 3.0582, 4.0810, 4.4579, 4.5695, 4.7966, 5.0066, 5.3043, 9.6586,
];
/// TR 38.901 Table 7.7.2-1 (TDL-A): powers in dB.
const TDL_A_POWERS_DB: [f64; 23] = [
    -13.4, 0.0, -2.2, -4.0, -6.0, -8.2, -9.9, -10.5, -7.5, -15.9, -6.6, -16.7, -12.4, -15.2, -10.8,
    -11.3, -12.7, -16.2, -18.3, -18.9, -16.6, -19.9, -29.7,
];
/// TR 38.901 Table 7.7.2-2 (TDL-B): normalised delays.
const TDL_B_DELAYS: [f64; 23] = [
    0.0000, 0.1072, 0.2155, 0.2095, 0.2870, 0.2986, 0.3752, 0.5055, 0.3681, 0.3697, 0.5700, 0.5283,
    1.1021, 1.2756, 1.5474, 1.7842, 2.0169, 2.8294, 3.0219, 3.6187, 4.1067, 4.2790, 4.7834,
];
/// TR 38.901 Table 7.7.2-2 (TDL-B): powers in dB.
const TDL_B_POWERS_DB: [f64; 23] = [
    0.0, -2.2, -4.0, -3.2, -9.8, -1.2, -3.4, -5.2, -7.6, -3.0, -8.9, -9.0, -4.8, -5.7, -7.5, -1.9,
    -7.6, -12.2, -9.8, -11.4, -14.9, -9.2, -11.3,
];
/// TR 38.901 Table 7.7.2-3 (TDL-C): normalised delays.
// 0.6366 is a published table entry, not an approximation of 2/π.
#[allow(clippy::approx_constant)]
const TDL_C_DELAYS: [f64; 24] = [
    0.0000, 0.2099, 0.2219, 0.2329, 0.2176, 0.6366, 0.6448, 0.6560, 0.6584, 0.7935, 0.8213, 0.9336,
    1.2285, 1.3083, 2.1704, 2.7105, 4.2589, 4.6003, 5.4902, 5.6077, 6.3065, 6.6374, 7.0427, 8.6523,
];
/// TR 38.901 Table 7.7.2-3 (TDL-C): powers in dB.
const TDL_C_POWERS_DB: [f64; 24] = [
    -4.4, -1.2, -3.5, -5.2, -2.5, 0.0, -2.2, -3.9, -7.4, -7.1, -10.7, -11.1, -5.1, -6.8, -8.7,
    -13.2, -13.9, -13.9, -15.8, -17.1, -16.0, -15.7, -21.6, -22.8,
];

/// A TR 38.901 NLOS tapped-delay-line profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TdlProfile {
    /// TDL-A, Table 7.7.2-1.
    #[serde(rename = "TDL-A", alias = "A")]
    A,
    /// TDL-B, Table 7.7.2-2.
    #[serde(rename = "TDL-B", alias = "B")]
    B,
    /// TDL-C, Table 7.7.2-3.
    #[serde(rename = "TDL-C", alias = "C")]
    C,
}

impl TdlProfile {
    /// Normalised path delays `τ_n,model` (multiply by the RMS delay spread in seconds).
    pub fn normalised_delays(self) -> &'static [f64] {
        match self {
            TdlProfile::A => &TDL_A_DELAYS,
            TdlProfile::B => &TDL_B_DELAYS,
            TdlProfile::C => &TDL_C_DELAYS,
        }
    }

    /// Path powers in dB, as published (not normalised).
    pub fn powers_db(self) -> &'static [f64] {
        match self {
            TdlProfile::A => &TDL_A_POWERS_DB,
            TdlProfile::B => &TDL_B_POWERS_DB,
            TdlProfile::C => &TDL_C_POWERS_DB,
        }
    }

    /// Linear path powers normalised to sum to one.
    pub fn normalised_powers(self) -> Vec<f64> {
        let p: Vec<f64> = self
            .powers_db()
            .iter()
            .map(|db| 10f64.powf(db / 10.0))
            .collect();
        let s: f64 = p.iter().sum();
        p.into_iter().map(|v| v / s).collect()
    }

    /// RMS delay spread of the normalised profile (≈ 1 by construction of the tables).
    pub fn normalised_rms_delay_spread(self) -> f64 {
        let p = self.normalised_powers();
        let d = self.normalised_delays();
        let mean: f64 = p.iter().zip(d).map(|(p, d)| p * d).sum();
        let m2: f64 = p.iter().zip(d).map(|(p, d)| p * d * d).sum();
        (m2 - mean * mean).max(0.0).sqrt()
    }
}

/// One path placed on the sample grid.
#[derive(Debug, Clone, PartialEq)]
struct GridPath {
    /// Standard deviation of the real and imaginary parts of the path gain: `sqrt(p_n / 2)`.
    sigma: f64,
    /// First sample tap the kernel touches.
    first: usize,
    /// Unit-energy interpolation kernel.
    kernel: Vec<f64>,
}

/// A TDL channel model placed on a sample grid (the deterministic part); [`TdlChannel::draw`]
/// produces independent Rayleigh realisations of its sample-spaced impulse response.
#[derive(Debug, Clone, PartialEq)]
pub struct TdlChannel {
    profile: TdlProfile,
    delay_spread_s: f64,
    sample_rate_hz: f64,
    paths: Vec<GridPath>,
    n_taps: usize,
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        (PI * x).sin() / (PI * x)
    }
}

impl TdlChannel {
    /// Places `profile`, scaled to RMS delay spread `delay_spread_s` (≥ 0), on the grid of
    /// `sample_rate_hz` with the default interpolator half-width.
    pub fn new(
        profile: TdlProfile,
        delay_spread_s: f64,
        sample_rate_hz: f64,
    ) -> Result<Self, WaveformError> {
        Self::with_half_width(
            profile,
            delay_spread_s,
            sample_rate_hz,
            DEFAULT_SINC_HALF_WIDTH,
        )
    }

    /// Like [`Self::new`] with a chosen windowed-sinc half-width `half_width` (1 ..= 64
    /// samples).
    pub fn with_half_width(
        profile: TdlProfile,
        delay_spread_s: f64,
        sample_rate_hz: f64,
        half_width: usize,
    ) -> Result<Self, WaveformError> {
        check_non_negative("delay_spread_s", delay_spread_s)?;
        check_positive("sample_rate_hz", sample_rate_hz)?;
        if !(1..=64).contains(&half_width) {
            return Err(WaveformError::invalid(
                "half_width",
                format!("must be in 1..=64, got {half_width}"),
            ));
        }
        let max_delay = profile
            .normalised_delays()
            .iter()
            .fold(0.0f64, |a, &b| a.max(b))
            * delay_spread_s
            * sample_rate_hz;
        if max_delay >= 1e6 {
            return Err(WaveformError::invalid(
                "delay_spread_s",
                format!(
                    "delay spread × sample rate gives a {max_delay}-sample channel (limit 1e6)"
                ),
            ));
        }
        let k = half_width as f64;
        let powers = profile.normalised_powers();
        let mut n_taps = 1;
        let mut paths = Vec::with_capacity(powers.len());
        for (&d, &p) in profile.normalised_delays().iter().zip(&powers) {
            let tau = d * delay_spread_s * sample_rate_hz;
            let (first, kernel) = if tau.fract() == 0.0 {
                (tau as usize, vec![1.0])
            } else {
                let first = (tau - k).ceil().max(0.0) as usize;
                let last = (tau + k).floor() as usize;
                let mut kern: Vec<f64> = (first..=last)
                    .map(|m| {
                        let x = m as f64 - tau;
                        sinc(x) * 0.5 * (1.0 + (PI * x / k).cos())
                    })
                    .collect();
                let e: f64 = kern.iter().map(|v| v * v).sum();
                let s = 1.0 / e.sqrt();
                kern.iter_mut().for_each(|v| *v *= s);
                (first, kern)
            };
            n_taps = n_taps.max(first + kernel.len());
            paths.push(GridPath {
                sigma: (p / 2.0).sqrt(),
                first,
                kernel,
            });
        }
        Ok(TdlChannel {
            profile,
            delay_spread_s,
            sample_rate_hz,
            paths,
            n_taps,
        })
    }

    /// One independent realisation (Rayleigh gain per path) of the sample-spaced impulse
    /// response, `n_taps()` long, with `E Σ|h[m]|² = 1`.
    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> Vec<C64> {
        let mut h = vec![C64::new(0.0, 0.0); self.n_taps];
        for path in &self.paths {
            let g = C64::new(
                path.sigma * rng.sample::<f64, _>(StandardNormal),
                path.sigma * rng.sample::<f64, _>(StandardNormal),
            );
            for (t, &w) in h[path.first..].iter_mut().zip(&path.kernel) {
                *t += g * w;
            }
        }
        h
    }

    /// Convenience: [`Self::new`] followed by one [`Self::draw`].
    pub fn realise<R: Rng + ?Sized>(
        profile: TdlProfile,
        delay_spread_s: f64,
        sample_rate_hz: f64,
        rng: &mut R,
    ) -> Result<Vec<C64>, WaveformError> {
        Ok(Self::new(profile, delay_spread_s, sample_rate_hz)?.draw(rng))
    }

    /// Number of sample taps of every realisation.
    pub fn n_taps(&self) -> usize {
        self.n_taps
    }

    /// Expected power `E|h[m]|²` of every sample tap (the power-delay profile on the grid);
    /// sums to 1.
    pub fn mean_tap_powers(&self) -> Vec<f64> {
        let mut p = vec![0.0; self.n_taps];
        for path in &self.paths {
            let pw = 2.0 * path.sigma * path.sigma;
            for (t, &w) in p[path.first..].iter_mut().zip(&path.kernel) {
                *t += pw * w * w;
            }
        }
        p
    }

    /// The profile.
    pub fn profile(&self) -> TdlProfile {
        self.profile
    }

    /// The RMS delay spread in seconds.
    pub fn delay_spread_s(&self) -> f64 {
        self.delay_spread_s
    }

    /// The sample rate in Hz.
    pub fn sample_rate_hz(&self) -> f64 {
        self.sample_rate_hz
    }
}

/// Linear convolution `y = h * x`; `y.len() = x.len() + taps.len() − 1` (all zeros of length
/// `x.len()` for an empty `taps`).
pub fn apply_multipath(x: &[C64], taps: &[C64]) -> Vec<C64> {
    if taps.is_empty() {
        return vec![C64::new(0.0, 0.0); x.len()];
    }
    if x.is_empty() {
        return Vec::new();
    }
    let mut y = vec![C64::new(0.0, 0.0); x.len() + taps.len() - 1];
    for (m, &h) in taps.iter().enumerate() {
        if h == C64::new(0.0, 0.0) {
            continue;
        }
        for (yv, &xv) in y[m..].iter_mut().zip(x) {
            *yv += h * xv;
        }
    }
    y
}

/// Frequency response `H_k = Σ_m h[m] e^{−j2πkm/N}` of sample taps `taps` on the used carriers
/// of `cfg` (order of [`OfdmConfig::used_carriers`]). For `taps.len() ≤ cp_len + 1` this is
/// exactly the per-carrier gain the demodulator sees.
pub fn frequency_response(cfg: &OfdmConfig, taps: &[C64]) -> Result<Vec<C64>, WaveformError> {
    cfg.validate()?;
    let n = cfg.n_fft as f64;
    Ok(cfg
        .used_frequencies()
        .iter()
        .map(|&k| {
            taps.iter()
                .enumerate()
                .map(|(m, &h)| {
                    // Reduce k·m mod N exactly before converting to an angle.
                    let km = (k * m as i64).rem_euclid(cfg.n_fft as i64) as f64;
                    h * C64::from_polar(1.0, -2.0 * PI * km / n)
                })
                .sum()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use crate::waveform::fft_unitary;
    use crate::waveform::ofdm::{demodulate, modulate};

    const ALL: [TdlProfile; 3] = [TdlProfile::A, TdlProfile::B, TdlProfile::C];

    #[test]
    fn tables_have_published_shape_and_unit_delay_spread() {
        assert_eq!(TdlProfile::A.normalised_delays().len(), 23);
        assert_eq!(TdlProfile::B.normalised_delays().len(), 23);
        assert_eq!(TdlProfile::C.normalised_delays().len(), 24);
        for p in ALL {
            assert_eq!(p.normalised_delays().len(), p.powers_db().len());
            // Strongest path is 0 dB in every table.
            assert_eq!(p.powers_db().iter().cloned().fold(f64::MIN, f64::max), 0.0);
            let s: f64 = p.normalised_powers().iter().sum();
            // f64 sum of ≤ 24 terms: ~1e-15
            assert!((s - 1.0).abs() < 1e-12);
            // The tables are normalised to unit RMS delay spread, to the precision they are
            // printed with (TR 38.901: delays to 4 digits, powers to 0.1 dB): ~1e-3
            let ds = p.normalised_rms_delay_spread();
            assert!((ds - 1.0).abs() < 1e-3, "{p:?}: DS {ds}");
        }
    }

    #[test]
    fn bad_parameters_are_errors() {
        let field = |r: Result<TdlChannel, WaveformError>| match r {
            Err(WaveformError::InvalidParameter { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(TdlChannel::new(TdlProfile::A, -1e-9, 20e6)),
            "delay_spread_s"
        );
        assert_eq!(
            field(TdlChannel::new(TdlProfile::A, f64::NAN, 20e6)),
            "delay_spread_s"
        );
        assert_eq!(
            field(TdlChannel::new(TdlProfile::A, 1.0, 20e6)),
            "delay_spread_s"
        );
        assert_eq!(
            field(TdlChannel::new(TdlProfile::A, 1e-7, 0.0)),
            "sample_rate_hz"
        );
        assert_eq!(
            field(TdlChannel::with_half_width(TdlProfile::A, 1e-7, 1e6, 0)),
            "half_width"
        );
    }

    #[test]
    fn serde_names() {
        let s = serde_json::to_string(&TdlProfile::B).unwrap();
        assert_eq!(s, "\"TDL-B\"");
        assert_eq!(
            serde_json::from_str::<TdlProfile>("\"C\"").unwrap(),
            TdlProfile::C
        );
        assert!(serde_json::from_str::<TdlProfile>("\"TDL-D\"").is_err());
    }

    #[test]
    fn zero_delay_spread_is_flat_rayleigh() {
        let ch = TdlChannel::new(TdlProfile::C, 0.0, 20e6).unwrap();
        assert_eq!(ch.n_taps(), 1);
        // f64 sums: ~1e-15
        assert!((ch.mean_tap_powers()[0] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn average_power_is_one() {
        let mut rng = stream(2, &[1]);
        for p in ALL {
            for ds in [10e-9, 100e-9, 300e-9] {
                let ch = TdlChannel::new(p, ds, 30.72e6).unwrap();
                let mp = ch.mean_tap_powers();
                // f64 sums: ~1e-15
                assert!((mp.iter().sum::<f64>() - 1.0).abs() < 1e-12);
                let n = 20_000;
                let mut per_tap = vec![0.0; ch.n_taps()];
                for _ in 0..n {
                    for (acc, h) in per_tap.iter_mut().zip(ch.draw(&mut rng)) {
                        *acc += h.norm_sqr() / n as f64;
                    }
                }
                let total: f64 = per_tap.iter().sum();
                // Monte-Carlo: the total power is gᴴGg with g ~ CN(0, diag P) the path gains and
                // G the Gram matrix of their unit-energy kernels on the grid, so its variance is
                // Σ_pq P_p P_q G_pq² (≤ 1): 5 SE over n draws. (The bare 0.02 it replaces was
                // only 2.8 SE when the kernels overlap, as at 10 ns.)
                let mut var = 0.0;
                for a in &ch.paths {
                    for b in &ch.paths {
                        let g: f64 = (0..ch.n_taps)
                            .map(|m| {
                                let wa = m.checked_sub(a.first).and_then(|i| a.kernel.get(i));
                                let wb = m.checked_sub(b.first).and_then(|i| b.kernel.get(i));
                                wa.zip(wb).map_or(0.0, |(x, y)| x * y)
                            })
                            .sum();
                        var += 4.0 * a.sigma.powi(2) * b.sigma.powi(2) * g * g;
                    }
                }
                let se = (var / n as f64).sqrt();
                assert!(
                    (total - 1.0).abs() < 5.0 * se,
                    "{p:?} {ds}: {total} (SE {se})"
                );
                // Per-tap powers follow the gridded power-delay profile. Each tap is complex
                // Gaussian, its power exponential: rel. SE 1/√n = 0.71 %, so 0.03 ≈ 4.2 SE (and
                // the 0.02 floor is looser still for weak taps)
                for (a, b) in per_tap.iter().zip(&mp) {
                    assert!((a - b).abs() < 0.03 * b.max(0.02), "{a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn grid_delay_spread_follows_the_scaling() {
        // With a fine grid (DS = 20 samples), the gridded PDP's RMS delay spread ≈ DS.
        let fs = 1e9;
        let ds = 20e-9;
        for p in ALL {
            let ch = TdlChannel::new(p, ds, fs).unwrap();
            let mp = ch.mean_tap_powers();
            let mean: f64 = mp.iter().enumerate().map(|(m, v)| m as f64 * v).sum();
            let m2: f64 = mp.iter().enumerate().map(|(m, v)| (m * m) as f64 * v).sum();
            let rms = (m2 - mean * mean).sqrt() / fs;
            // deterministic: gridding adds the interpolation kernel's own spread (a few
            // samples²) to DS² = 400 samples², and the tables' DS is 1 to ~1e-3: well inside 5 %
            assert!((rms / ds - 1.0).abs() < 0.05, "{p:?}: {rms}");
        }
    }

    #[test]
    fn frequency_response_is_fft_of_taps_and_what_demodulate_sees() {
        let cfg = OfdmConfig::default();
        let mut rng = stream(2, &[2]);
        // 30 ns × 20 MHz: TDL-A spans 5.8 samples + interpolator → fits the 16-sample CP.
        for p in ALL {
            let ch = TdlChannel::new(p, 30e-9, cfg.sample_rate_hz).unwrap();
            assert!(ch.n_taps() <= cfg.cp_len + 1, "{p:?}: {}", ch.n_taps());
            for _ in 0..5 {
                let h = ch.draw(&mut rng);
                let hf = frequency_response(&cfg, &h).unwrap();
                // FFT of zero-padded taps (unitary FFT × sqrt(N) = plain DFT).
                let mut buf = vec![C64::new(0.0, 0.0); cfg.n_fft];
                buf[..h.len()].copy_from_slice(&h);
                fft_unitary(&mut buf, false);
                let s = (cfg.n_fft as f64).sqrt();
                // two f64 DFTs of the same ≤ 17 taps: ~ε·log₂N·‖h‖ ≈ 1e-15
                for (&b, v) in cfg.used_carriers().iter().zip(&hf) {
                    assert!((buf[b] * s - v).norm() < 1e-12);
                }
                // Through the modem: Y_k = H_k X_k exactly.
                let grid: Vec<Vec<C64>> = (0..4)
                    .map(|_| {
                        (0..cfg.n_used)
                            .map(|_| C64::new(rng.random::<f64>() - 0.5, rng.random::<f64>() - 0.5))
                            .collect()
                    })
                    .collect();
                let x = modulate(&cfg, &grid).unwrap();
                let y = apply_multipath(&x, &h);
                let rx = demodulate(&cfg, &y, 0, 4).unwrap();
                // the taps fit the CP, so this is exact up to f64 rounding (~1e-15); 1e-9 is loose
                for (ys, xs) in rx.iter().zip(&grid) {
                    for ((yv, xv), hv) in ys.iter().zip(xs).zip(&hf) {
                        assert!((yv - hv * xv).norm() < 1e-9);
                    }
                }
            }
        }
    }

    #[test]
    fn multipath_convolution_basics() {
        let x = vec![C64::new(1.0, 0.0), C64::new(2.0, -1.0)];
        let h = vec![C64::new(0.5, 0.0), C64::new(0.0, 1.0), C64::new(1.0, 0.0)];
        let y = apply_multipath(&x, &h);
        assert_eq!(y.len(), 4);
        assert_eq!(y[0], C64::new(0.5, 0.0));
        assert_eq!(y[1], C64::new(1.0, -0.5) + C64::new(0.0, 1.0));
        assert_eq!(apply_multipath(&x, &[]).len(), 2);
        assert!(apply_multipath(&[], &h).is_empty());
    }
}
