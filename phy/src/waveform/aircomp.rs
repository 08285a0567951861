//! Over-the-air computation at waveform level: K single-antenna devices send their real vectors
//! on the data carriers of OFDM symbols at the same time, each pre-equalising its own channel
//! per subcarrier, and a single-antenna receiver reads the sum off the FFT of the superposition.
//!
//! Per used subcarrier c the transceiver is exactly the symbol-level design
//! ([`aircomp::zero_forcing`] on the 1 × 1 channels `H_k[c]`, signal variance `v_k`, per-carrier
//! power `P·n_fft/n_used`, noise σ²), so with ideal synchronisation and a channel inside the
//! cyclic prefix the waveform path must reproduce its closed-form MSE. What the symbol level
//! cannot see:
//! * a device's arrival-time offset τ_k inside the CP turns into a phase ramp
//!   `e^{−j2π f_c τ_k / N}` it did not pre-equalise: the misalignment adds
//!   `v_k |a H b e^{−jθ} − 1|²` per carrier (closed form in [`predicted_mse_with_offsets`]);
//! * a carrier-frequency offset rotates the device's symbols and leaks power into the other
//!   carriers (inter-carrier interference);
//! * clipping, phase noise, multipath longer than the CP, ADC quantisation.
//!
//! Correction, as AirComp needs it (every transmitter fixes its own impairment before the
//! signals add up): each device estimates its CFO from the receiver's Schmidl–Cox preamble
//! (received through its own channel and noise) and counter-rotates what it sends; the receiver
//! measures each device's channel from a training symbol the device sends alone (least squares
//! per carrier), fits the two things the device's own channel knowledge lacks — its arrival
//! delay (the phase slope across carriers) and a common phase — and feeds them back; the device
//! pre-equalises its channel with that delay ramp and phase. (Pre-equalising the raw
//! per-carrier estimate instead makes the misalignment `|e/H|²` heavy-tailed in deep fades.)

use super::impair::{apply_cfo, awgn, clip, delay_samples, phase_noise, Impairments};
use super::ofdm::{demodulate, modulate, pack_reals, unpack_reals, OfdmConfig};
use super::sync::{detect, estimate_channel, header, refine_timing, training_symbol};
use super::tdl::{apply_multipath, frequency_response, TdlChannel};
use super::WaveformError;
use crate::aircomp::{self, Problem, ReceiveDirection};
use crate::radio::{Radio, RadioError};
use crate::{CMat, C64};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// One waveform-level all-reduce set-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtaOfdmConfig {
    /// Numerology.
    pub ofdm: OfdmConfig,
    /// Mean transmit power of each device per sample.
    pub power: f64,
    /// Receiver noise power per sample (= per subcarrier: the FFT is unitary).
    pub noise_var: f64,
    /// Impairments of each device (its length is K).
    pub devices: Vec<Impairments>,
    /// Estimate and correct CFO and timing (see the module doc); false = design on the
    /// nominal channels and send uncorrected.
    pub correct: bool,
}

/// Symbols between a device's two training symbols in the correction (its fine CFO comes from
/// their phase advance): each device sends `TRAINING_GAP + 1` symbols alone.
pub const TRAINING_GAP: usize = 8;

/// What an all-reduce delivered.
#[derive(Debug, Clone)]
pub struct OtaOfdmOutcome {
    /// The receiver's estimate of Σ_k x_k.
    pub estimate: Vec<f64>,
    /// Measured mean squared error per real value.
    pub measured_mse: f64,
    /// The symbol-level closed form per real value for the channels the design used.
    pub predicted_mse: f64,
    /// OFDM symbols sent.
    pub symbols: usize,
    /// Samples the receiver read.
    pub samples: usize,
}

/// The software part of a radio link: each device's burst through its own impairment chain
/// (clipping → CFO → phase noise → multipath `taps[k]` → timing offset), summed. The emulator
/// adds receiver noise and ADC after this; a single-TX-channel SDR transmits the sum.
pub fn through_channels<R: Rng + ?Sized>(
    bursts: &[Vec<C64>],
    devices: &[Impairments],
    taps: &[Vec<C64>],
    sample_rate_hz: f64,
    rng: &mut R,
) -> Result<Vec<C64>, WaveformError> {
    if bursts.len() != devices.len() || taps.len() != devices.len() {
        return Err(WaveformError::invalid(
            "devices",
            format!(
                "{} bursts, {} impairment sets, {} channels",
                bursts.len(),
                devices.len(),
                taps.len()
            ),
        ));
    }
    let mut sum: Vec<C64> = Vec::new();
    for ((x, d), h) in bursts.iter().zip(devices).zip(taps) {
        d.validate()?;
        let mut y = match d.clip_amplitude {
            Some(a) => clip(x, a)?,
            None => x.clone(),
        };
        if d.cfo_hz != 0.0 {
            y = apply_cfo(&y, d.cfo_hz, sample_rate_hz, 0.0)?;
        }
        if d.phase_noise_linewidth_hz > 0.0 {
            y = phase_noise(&y, d.phase_noise_linewidth_hz, sample_rate_hz, rng)?;
        }
        y = apply_multipath(&y, h);
        if d.timing_offset_samples > 0.0 {
            y = delay_samples(&y, d.timing_offset_samples)?;
        }
        if sum.len() < y.len() {
            sum.resize(y.len(), C64::new(0.0, 0.0));
        }
        for (s, v) in sum.iter_mut().zip(&y) {
            *s += v;
        }
    }
    Ok(sum)
}

/// The simulated radio: [`through_channels`], then receiver AWGN and the receiver ADC of
/// device 0's impairment set (the receiver's, by convention).
pub struct Emulator<'a, R: Rng> {
    /// Each device's impairments.
    pub devices: &'a [Impairments],
    /// Each device's channel taps.
    pub taps: &'a [Vec<C64>],
    /// Noise power per sample.
    pub noise_var: f64,
    /// Sample rate, Hz.
    pub sample_rate_hz: f64,
    /// Noise and phase-noise draws.
    pub rng: R,
}

impl<R: Rng> Radio for Emulator<'_, R> {
    fn name(&self) -> String {
        "emulator".into()
    }
    fn configure(&mut self, s: &crate::radio::RadioSettings) -> Result<(), RadioError> {
        if !(s.sample_rate.is_finite() && s.sample_rate > 0.0) {
            return Err(RadioError::Setting {
                setting: "sample_rate".into(),
                reason: format!("{}: must be positive", s.sample_rate),
            });
        }
        self.sample_rate_hz = s.sample_rate;
        Ok(())
    }
    fn tx_channels(&self) -> usize {
        self.devices.len()
    }
    fn transceive(
        &mut self,
        bursts: &[Vec<C64>],
        rx_len: usize,
    ) -> Result<crate::radio::Received, RadioError> {
        let dev = |e: WaveformError| RadioError::Device(e.to_string());
        let mut y = through_channels(
            bursts,
            self.devices,
            self.taps,
            self.sample_rate_hz,
            &mut self.rng,
        )
        .map_err(dev)?;
        y.resize(rx_len, C64::new(0.0, 0.0));
        let y = match self.devices.first() {
            Some(d) => d.apply_receiver(&y, self.noise_var, &mut self.rng),
            None => awgn(&y, self.noise_var, &mut self.rng),
        }
        .map_err(dev)?;
        Ok(crate::radio::Received {
            samples: y,
            time_ns: None,
        })
    }
}

/// Draw each device's channel taps: its TDL profile, or one Rayleigh tap without multipath.
pub fn draw_taps<R: Rng + ?Sized>(
    cfg: &OtaOfdmConfig,
    rng: &mut R,
) -> Result<Vec<Vec<C64>>, WaveformError> {
    cfg.devices
        .iter()
        .map(|d| match &d.tdl {
            Some(t) => Ok(
                TdlChannel::new(t.profile, t.delay_spread_s, cfg.ofdm.sample_rate_hz)?.draw(rng),
            ),
            None => Ok(vec![crate::channel::cn01(rng)]),
        })
        .collect()
}

/// Per used carrier: (a, b_k, closed-form MSE per complex symbol) of the symbol-level ZF design.
fn design(
    cfg: &OtaOfdmConfig,
    h: &[Vec<C64>],
    var: &[f64],
) -> Result<Vec<(C64, Vec<C64>, f64)>, WaveformError> {
    let k = h.len();
    let pc = cfg.power * cfg.ofdm.n_fft as f64 / cfg.ofdm.n_used as f64;
    let power = vec![pc; k];
    (0..cfg.ofdm.n_used)
        .map(|c| {
            let ch: Vec<CMat> = h.iter().map(|hk| CMat::from_element(1, 1, hk[c])).collect();
            let p = Problem {
                channels: &ch,
                signal_var: var,
                power: &power,
                noise_var: cfg.noise_var,
                streams: 1,
            };
            let t = aircomp::zero_forcing(&p, ReceiveDirection::Eigen)
                .map_err(|e| WaveformError::invalid("channels", e.to_string()))?;
            Ok((
                t.receive_beamformer[(0, 0)].conj(),
                t.precoders.iter().map(|b| b[(0, 0)]).collect(),
                t.analytic_mse,
            ))
        })
        .collect()
}

/// Mean over the data carriers of the design's MSE per real value, when device k's signal
/// arrives with an extra phase ramp `e^{−j2π f_c τ_k / N}` (integer τ_k inside the CP) that the
/// design did not include: noise `σ²|a|²` plus misalignment `Σ_k v_k |a H_k b_k e^{−jθ} − 1|²`.
pub fn predicted_mse_with_offsets(
    cfg: &OtaOfdmConfig,
    h: &[Vec<C64>],
    var: &[f64],
    offsets: &[f64],
) -> Result<f64, WaveformError> {
    // without CFO there is no interference and every symbol is alike
    predicted_mse_impaired(cfg, h, var, offsets, &vec![0.0; h.len()], 1)
}

/// [`predicted_mse_with_offsets`] with carrier-frequency offsets too: device k's samples turn by
/// `e^{j2π ε_k n/N}` from the burst's first sample (`ε_k = cfo_hz[k]·N/fs` subcarrier spacings,
/// uncorrected) before its channel, over `symbols` OFDM symbols whose data carriers are all
/// filled. In symbol m (FFT window from `n₀ = m·(N+cp) + cp`) carrier c of device k arrives as
/// `e^{j2π ε_k n₀/N} Σ_{c'} β_k(f_{c'} − f_c) X_k[c']` with
/// `β_k(d) = (1/N) Σ_{n<N} e^{j2π(d+ε_k)n/N}` (`β_k(0)` is the common attenuation and phase,
/// the rest inter-carrier interference), so the expected error per carrier is the noise
/// `σ²|a_c|²`, each device's misalignment `v_k |a_c H_k[c] b_k[c] β_k(0) e^{jφ} − 1|²`, its data
/// ICI `Σ_{c' data ≠ c} v_k |a_c H_k[c] b_k[c'] β_k(f_{c'} − f_c)|²`, and the pilots' ICI, which
/// is deterministic and adds coherently over the devices.
pub fn predicted_mse_impaired(
    cfg: &OtaOfdmConfig,
    h: &[Vec<C64>],
    var: &[f64],
    offsets: &[f64],
    cfo_hz: &[f64],
    symbols: usize,
) -> Result<f64, WaveformError> {
    let d = design(cfg, h, var)?;
    let o = &cfg.ofdm;
    let k = h.len();
    if offsets.len() != k || cfo_hz.len() != k || var.len() != k {
        return Err(WaveformError::invalid(
            "devices",
            format!(
                "{k} channels, {} variances, {} offsets, {} CFOs",
                var.len(),
                offsets.len(),
                cfo_hz.len()
            ),
        ));
    }
    let freqs = o.used_frequencies();
    let n = o.n_fft as f64;
    let data = o.data_carriers();
    let pilots = o.pilot_carriers();
    let pv = super::ofdm::pilot_values(o);
    let tau = std::f64::consts::TAU;
    let eps: Vec<f64> = cfo_hz.iter().map(|f| f * n / o.sample_rate_hz).collect();
    // β_k(d) for every carrier distance d the used band holds, per device
    let span = freqs.iter().max().unwrap_or(&0) - freqs.iter().min().unwrap_or(&0);
    let table: Vec<Vec<C64>> = eps
        .iter()
        .map(|&e| {
            (-span..=span)
                .map(|dd| {
                    (0..o.n_fft)
                        .map(|t| C64::from_polar(1.0, tau * (dd as f64 + e) * t as f64 / n))
                        .sum::<C64>()
                        / n
                })
                .collect()
        })
        .collect();
    let beta = |j: usize, dd: i64| -> C64 { table[j][(dd + span) as usize] };
    // the timing offsets as phase ramps on the channels
    let heff: Vec<Vec<C64>> = (0..k)
        .map(|j| {
            (0..o.n_used)
                .map(|c| h[j][c] * C64::from_polar(1.0, -tau * freqs[c] as f64 * offsets[j] / n))
                .collect()
        })
        .collect();
    let mut total = 0.0;
    for m in 0..symbols {
        let n0 = (m * o.symbol_len() + o.cp_len) as f64;
        let rot: Vec<C64> = eps
            .iter()
            .map(|e| C64::from_polar(1.0, tau * e * n0 / n))
            .collect();
        for &c in &data {
            let (a, _, _) = &d[c];
            let mut mse = cfg.noise_var * a.norm_sqr();
            let mut pilot_ici = C64::new(0.0, 0.0);
            for j in 0..k {
                let g = a * heff[j][c];
                let own = g * d[c].1[j] * beta(j, 0) * rot[j];
                mse += var[j] * (own - 1.0).norm_sqr();
                for &c2 in &data {
                    if c2 != c {
                        let b = beta(j, freqs[c2] - freqs[c]);
                        mse += var[j] * (g * d[c2].1[j] * b).norm_sqr();
                    }
                }
                for (&p, v) in pilots.iter().zip(&pv) {
                    pilot_ici += g * d[p].1[j] * beta(j, freqs[p] - freqs[c]) * rot[j] * v;
                }
            }
            total += mse + pilot_ici.norm_sqr();
        }
    }
    Ok(total / (symbols * data.len()) as f64 / 2.0)
}

/// One all-reduce of `partials` (K real vectors of one length) through `radio`, with channels
/// `taps` (from [`draw_taps`]). `rng` draws the sync estimation noise (the correction's own
/// measurements go through an emulated link at `noise_var`).
pub fn ota_sum<R: Rng + ?Sized>(
    cfg: &OtaOfdmConfig,
    partials: &[&[f64]],
    taps: &[Vec<C64>],
    radio: &mut dyn Radio,
    rng: &mut R,
) -> Result<OtaOfdmOutcome, WaveformError> {
    let o = &cfg.ofdm;
    o.validate()?;
    let k = partials.len();
    if k == 0 || k != cfg.devices.len() || k != taps.len() {
        return Err(WaveformError::invalid(
            "devices",
            format!(
                "{k} partial vectors, {} impairment sets, {} channels (need K ≥ 1 of each)",
                cfg.devices.len(),
                taps.len()
            ),
        ));
    }
    for (name, v) in [("power", cfg.power), ("noise_var", cfg.noise_var)] {
        if !(v.is_finite() && v > 0.0) {
            return Err(WaveformError::invalid(
                name,
                format!("{v}: must be positive"),
            ));
        }
    }
    let n = partials[0].len();
    if partials.iter().any(|p| p.len() != n) || n == 0 {
        return Err(WaveformError::invalid(
            "partials",
            "the K vectors must be non-empty and of one length",
        ));
    }
    let fs = o.sample_rate_hz;
    // as at symbol level: each device removes its mean (sent digitally as side information)
    // and the design sees the variance of the centred values per complex carrier (two reals)
    let means: Vec<f64> = partials
        .iter()
        .map(|x| x.iter().sum::<f64>() / n as f64)
        .collect();
    let var: Vec<f64> = partials
        .iter()
        .zip(&means)
        .map(|(x, m)| (2.0 * x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n as f64).max(1e-30))
        .collect();
    let nominal: Vec<Vec<C64>> = taps
        .iter()
        .map(|t| frequency_response(o, t))
        .collect::<Result<_, _>>()?;
    // what the devices pre-equalise, and the CFO each removes
    let (h_design, cfo_hat) = if cfg.correct {
        correction(cfg, taps, rng)?
    } else {
        (nominal.clone(), vec![0.0; k])
    };
    let d = design(cfg, &h_design, &var)?;
    let mut bursts = Vec::with_capacity(k);
    let mut symbols = 0;
    for (i, x) in partials.iter().enumerate() {
        let centred: Vec<f64> = x.iter().map(|v| v - means[i]).collect();
        let mut grid = pack_reals(o, &centred)?;
        symbols = grid.len();
        for sym in grid.iter_mut() {
            for (c, v) in sym.iter_mut().enumerate() {
                *v *= d[c].1[i];
            }
        }
        let mut burst = modulate(o, &grid)?;
        if cfo_hat[i] != 0.0 {
            burst = apply_cfo(&burst, -cfo_hat[i], fs, 0.0)?;
        }
        bursts.push(burst);
    }
    let len = symbols * o.symbol_len();
    let rx = radio
        .transceive(&bursts, len + 2 * o.cp_len + 64)
        .map_err(|e| WaveformError::invalid("radio", e.to_string()))?;
    let y = demodulate(o, &rx.samples, 0, symbols)?;
    let est_grid: Vec<Vec<C64>> = y
        .iter()
        .map(|sym| sym.iter().enumerate().map(|(c, v)| d[c].0 * v).collect())
        .collect();
    let mean_sum: f64 = means.iter().sum();
    let estimate: Vec<f64> = unpack_reals(o, &est_grid, n)?
        .into_iter()
        .map(|v| v + mean_sum)
        .collect();
    let truth: Vec<f64> = (0..n)
        .map(|j| partials.iter().map(|p| p[j]).sum())
        .collect();
    let measured_mse = estimate
        .iter()
        .zip(&truth)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        / n as f64;
    let data = o.data_carriers();
    let predicted_mse = data.iter().map(|&c| d[c].2).sum::<f64>() / data.len() as f64 / 2.0;
    Ok(OtaOfdmOutcome {
        estimate,
        measured_mse,
        predicted_mse,
        symbols,
        samples: rx.samples.len(),
    })
}

/// The estimates a corrected system works with: each device's CFO from the receiver's preamble
/// (sent through the device's own impaired link, noise `noise_var`), and each device's effective
/// channel (multipath × timing ramp, after its CFO pre-correction) from a training symbol it
/// sends alone, by least squares at the receiver's FFT window.
fn correction<R: Rng + ?Sized>(
    cfg: &OtaOfdmConfig,
    taps: &[Vec<C64>],
    rng: &mut R,
) -> Result<(Vec<Vec<C64>>, Vec<f64>), WaveformError> {
    let o = &cfg.ofdm;
    let fs = o.sample_rate_hz;
    let hdr = header(o)?;
    let known = training_symbol(o)?;
    let scale = cfg.power.sqrt() * (o.n_fft as f64 / o.n_used as f64).sqrt();
    let tx: Vec<C64> = hdr.iter().map(|v| v * scale).collect();
    let mut h = Vec::with_capacity(taps.len());
    let mut cfo = Vec::with_capacity(taps.len());
    for (d, t) in cfg.devices.iter().zip(taps) {
        // downlink: the device hears the receiver's header with its own CFO (sign reversed:
        // the device's oscillator is off by cfo_hz) after some idle samples
        let mut dl = vec![C64::new(0.0, 0.0); 40];
        dl.extend(apply_multipath(&tx, t));
        dl.extend(vec![C64::new(0.0, 0.0); o.symbol_len()]);
        let dl = apply_cfo(&dl, -d.cfo_hz, fs, 0.0)?;
        let dl = awgn(&dl, cfg.noise_var, rng)?;
        let est = match detect(o, &dl, 0.3)? {
            Some(s) => -refine_timing(o, &dl, &s)?.cfo_hz,
            None => 0.0,
        };
        // uplink: the device sends the training symbol alone, CFO pre-corrected, twice,
        // TRAINING_GAP symbols apart: the receiver reads the residual CFO off the phase advance between
        // the two (a fine estimate the preamble's half-symbol correlation cannot give)
        let zero = vec![C64::new(0.0, 0.0); o.n_used];
        let mut grid = vec![known.clone()];
        grid.extend(std::iter::repeat_n(zero, TRAINING_GAP - 1));
        grid.push(known.clone());
        let solo = modulate(o, &grid)?
            .into_iter()
            .map(|v| v * scale)
            .collect::<Vec<_>>();
        let solo = apply_cfo(&solo, -est, fs, 0.0)?;
        let one = [d.clone()];
        let rxs = through_channels(&[solo], &one, std::slice::from_ref(t), fs, rng)?;
        let mut rxs = awgn(&rxs, cfg.noise_var, rng)?;
        rxs.resize(
            (TRAINING_GAP + 1) * o.symbol_len() + o.cp_len + 64,
            C64::new(0.0, 0.0),
        );
        let y = demodulate(o, &rxs, 0, TRAINING_GAP + 1)?;
        let advance: C64 = y[TRAINING_GAP]
            .iter()
            .zip(&y[0])
            .map(|(b, a)| b * a.conj())
            .sum();
        let dt = (TRAINING_GAP * o.symbol_len()) as f64 / fs;
        let fine = advance.arg() / (2.0 * std::f64::consts::PI * dt);
        cfo.push(est + fine);
        let he = estimate_channel(o, &y[0], &known)?;
        // the device knows its own channel (reciprocity); the training tells the receiver the
        // two numbers that channel knowledge misses: the arrival delay (the phase slope of
        // ĥ / H across adjacent carriers) and the common phase, fed back to the device
        let hn = frequency_response(o, t)?;
        let z: Vec<C64> = he.iter().zip(&hn).map(|(a, b)| a / (b * scale)).collect();
        // maximum likelihood for one delay and one phase: maximise |Σ_i w_i z_i e^{+j2π f_i τ/N}|
        // (w_i = |H_i|², the inverse noise variance of z_i) over τ, on a grid over the CP and
        // then by golden-section search; the phase is the argument at the maximum. (The angle
        // of adjacent-carrier products, the simple estimator, multiplies the noise by the
        // carrier index at the band edges.)
        let f = o.used_frequencies();
        let nf = o.n_fft as f64;
        let wz: Vec<C64> = z.iter().zip(&hn).map(|(a, b)| a * b.norm_sqr()).collect();
        let f_min = f.iter().copied().min().unwrap_or(0);
        let score = |tau: f64| -> C64 {
            // e^{j2π f τ/N} by recurrence over the consecutive carrier indices
            let step = C64::from_polar(1.0, 2.0 * std::f64::consts::PI * tau / nf);
            let mut r = C64::from_polar(1.0, 2.0 * std::f64::consts::PI * f_min as f64 * tau / nf);
            let mut at = f_min;
            let mut acc = C64::new(0.0, 0.0);
            for (i, &fi) in f.iter().enumerate() {
                while at < fi {
                    r *= step;
                    at += 1;
                }
                acc += wz[i] * r;
            }
            acc
        };
        let reach = o.cp_len as f64 + 4.0;
        let step = 0.5;
        let mut tau = 0.0;
        let mut best = f64::NEG_INFINITY;
        let mut g = -reach;
        while g <= reach {
            let v = score(g).norm_sqr();
            if v > best {
                best = v;
                tau = g;
            }
            g += step;
        }
        let (mut lo, mut hi) = (tau - step, tau + step);
        let phi = (5f64.sqrt() - 1.0) / 2.0;
        for _ in 0..30 {
            let a = hi - phi * (hi - lo);
            let b = lo + phi * (hi - lo);
            if score(a).norm_sqr() < score(b).norm_sqr() {
                lo = a;
            } else {
                hi = b;
            }
        }
        let tau = (lo + hi) / 2.0;
        let ramp =
            |i: usize| C64::from_polar(1.0, -2.0 * std::f64::consts::PI * f[i] as f64 * tau / nf);
        let common = score(tau);
        let phase = C64::from_polar(1.0, common.arg());
        h.push((0..z.len()).map(|i| hn[i] * ramp(i) * phase).collect());
    }
    Ok((h, cfo))
}

#[cfg(test)]
pub(crate) mod tests;
