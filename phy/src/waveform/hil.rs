//! Hardware in the loop: the waveform-level all-reduce through a real RF chain.
//!
//! [`HilLink`] is a [`Radio`] that [`super::aircomp::ota_sum`] can send through. It wraps the
//! radio that moves the samples (a SoapySDR device, or anything else implementing [`Radio`])
//! and does in software what the bench cannot: each device's burst goes through that device's
//! own simulated channel and impairments ([`through_channels`]), and the receiver noise of the
//! experiment's SNR is added, before the samples meet the hardware. Two ways to use the
//! hardware, chosen from the radio's TX channel count:
//!
//! * **one TX channel** (HackRF, Pluto, a single-channel USRP): the K channelled bursts are summed
//!   in software and sent through the one RF chain;
//! * **at least K TX channels** (USRP B210 / LimeSDR with 2, X310 with 2+, our loopback with up
//!   to 4): device k's channelled burst goes out on TX channel k and the hardware (a combiner,
//!   or the air) does the sum. The chains must be matched — same device, shared LO, equal cables
//!   — because the devices' pre-equalisation knows only their simulated channels; the receiver
//!   measures each chain, equalises their mean response and reports the mismatch
//!   ([`ChainReport::mismatch`]); mismatched chains add `Σ_k var_k |G_k/Ḡ − 1|²` per real and
//!   scale the noise (sent on chain 0) by `|G_0/Ḡ|²`.
//!
//! The RF chain between DAC and ADC (latency, gain, phase, frequency response, LO offset) is not
//! part of the experiment and is calibrated out on every burst: a frame starts with the
//! Schmidl–Cox [`header`] on TX channel 0, then one training symbol alone on each other TX
//! channel in use, then the data. The receiver detects the header in its window (so the RF
//! latency need not be known), corrects the chain's CFO, estimates each chain's response per
//! carrier by least squares, and hands [`super::aircomp::ota_sum`] the data part as an ideal
//! chain would have delivered it: starting at sample 0, divided by the (mean) chain response
//! per carrier and re-modulated. The experiment's noise is added to the data part only (in
//! pre-chain units), so with a clean chain the measured MSE is what the emulator would give;
//! the chain's own noise and estimation error add to it, and that difference is what a HIL run
//! measures.
//!
//! The whole frame is scaled so its largest sample has amplitude [`HilLink::amplitude`]
//! (SoapySDR's CF32 full scale is 1); the calibration absorbs the scale.

use super::aircomp::through_channels;
use super::impair::{awgn, Impairments};
use super::ofdm::{demodulate_from, modulate, OfdmConfig};
use super::sync::{correct_cfo, detect, estimate_channel, header, refine_timing, training_symbol};
use super::WaveformError;
use crate::radio::{Radio, RadioError, RadioSettings, Received};
use crate::C64;
use rand::Rng;

/// Samples the receive window extends past the frame for an unknown RF latency.
pub const DEFAULT_SEARCH: usize = 4096;
/// Schmidl–Cox detection threshold.
const DETECT_THRESHOLD: f64 = 0.3;

/// What the receiver learnt about the RF chain from the last frame.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainReport {
    /// TX channels the frame used (1: summed in software).
    pub tx_channels: usize,
    /// Where the frame started in the receive window (the RF latency), samples.
    pub latency_samples: usize,
    /// The chain's carrier-frequency offset, Hz.
    pub cfo_hz: f64,
    /// Mean power gain of the chain(s) over the used carriers (scale excluded), dB.
    pub gain_db: f64,
    /// Spread of the TX chains' responses around their mean, `mean_j,c |G_j − Ḡ|² / mean |Ḡ|²`
    /// (0 with one TX channel).
    pub mismatch: f64,
}

/// The waveform-level path through real hardware (see the module documentation).
pub struct HilLink<'a, R: Rng> {
    /// What moves the samples.
    pub radio: &'a mut dyn Radio,
    /// The numerology the frames use (as `ota_sum`'s).
    pub ofdm: OfdmConfig,
    /// Each device's simulated impairments.
    pub devices: &'a [Impairments],
    /// Each device's simulated channel taps.
    pub taps: &'a [Vec<C64>],
    /// Receiver noise of the experiment, added in software (pre-chain units).
    pub noise_var: f64,
    /// Peak amplitude of the transmitted samples (DAC full scale = 1).
    pub amplitude: f64,
    /// Extra receive samples for the RF latency.
    pub search: usize,
    /// Noise and phase-noise draws.
    pub rng: R,
    /// The calibration of the last frame.
    pub last: Option<ChainReport>,
}

impl<'a, R: Rng> HilLink<'a, R> {
    /// A link over `radio` with the default amplitude (0.5) and search window.
    pub fn new(
        radio: &'a mut dyn Radio,
        ofdm: OfdmConfig,
        devices: &'a [Impairments],
        taps: &'a [Vec<C64>],
        noise_var: f64,
        rng: R,
    ) -> Self {
        HilLink {
            radio,
            ofdm,
            devices,
            taps,
            noise_var,
            amplitude: 0.5,
            search: DEFAULT_SEARCH,
            rng,
            last: None,
        }
    }

    /// Whether the devices go out on separate TX channels.
    fn separate(&self, k: usize) -> bool {
        k > 1 && self.radio.tx_channels() >= k
    }
}

fn wave(e: WaveformError) -> RadioError {
    RadioError::Device(e.to_string())
}

impl<R: Rng> Radio for HilLink<'_, R> {
    fn name(&self) -> String {
        format!("hil:{}", self.radio.name())
    }
    fn configure(&mut self, s: &RadioSettings) -> Result<(), RadioError> {
        self.radio.configure(s)
    }
    fn tx_channels(&self) -> usize {
        self.devices.len()
    }
    fn transceive(&mut self, bursts: &[Vec<C64>], rx_len: usize) -> Result<Received, RadioError> {
        let o = self.ofdm.clone();
        o.validate().map_err(wave)?;
        let k = bursts.len();
        if !(self.amplitude.is_finite() && self.amplitude > 0.0 && self.amplitude <= 1.0) {
            return Err(RadioError::Setting {
                setting: "amplitude".into(),
                reason: format!("{}: must be in (0, 1]", self.amplitude),
            });
        }
        if self.radio.tx_channels() == 0 {
            return Err(RadioError::Device(format!(
                "{} has no TX channel",
                self.radio.name()
            )));
        }
        let fs = o.sample_rate_hz;
        // the data part of every TX channel: channelled in software, noise on channel 0
        let mut data: Vec<Vec<C64>> = if self.separate(k) {
            (0..k)
                .map(|i| {
                    through_channels(
                        &bursts[i..=i],
                        &self.devices[i..=i],
                        &self.taps[i..=i],
                        fs,
                        &mut self.rng,
                    )
                })
                .collect::<Result<_, _>>()
                .map_err(wave)?
        } else {
            vec![
                through_channels(bursts, self.devices, self.taps, fs, &mut self.rng)
                    .map_err(wave)?,
            ]
        };
        let len = data.iter().map(Vec::len).max().unwrap_or(0).max(rx_len);
        for d in data.iter_mut() {
            d.resize(len, C64::new(0.0, 0.0));
        }
        data[0] = awgn(&data[0], self.noise_var, &mut self.rng).map_err(wave)?;
        let chains = data.len();
        // reference: header on channel 0, a training symbol alone on each further channel, at
        // the mean power of the data
        let sl = o.symbol_len();
        let hdr = header(&o).map_err(wave)?;
        let known = training_symbol(&o).map_err(wave)?;
        let train = modulate(&o, std::slice::from_ref(&known)).map_err(wave)?;
        let ref_len = hdr.len() + (chains - 1) * sl;
        let data_power = data
            .iter()
            .map(|d| d.iter().map(|v| v.norm_sqr()).sum::<f64>())
            .sum::<f64>()
            / len.max(1) as f64;
        let hdr_power = hdr.iter().map(|v| v.norm_sqr()).sum::<f64>() / hdr.len() as f64;
        let r = (data_power / hdr_power).sqrt().max(1e-12);
        let mut frames: Vec<Vec<C64>> = Vec::with_capacity(chains);
        for (j, d) in data.iter().enumerate() {
            let mut f = vec![C64::new(0.0, 0.0); ref_len];
            if j == 0 {
                for (a, b) in f.iter_mut().zip(&hdr) {
                    *a = b * r;
                }
            } else {
                let at = hdr.len() + (j - 1) * sl;
                for (a, b) in f[at..at + sl].iter_mut().zip(&train) {
                    *a = b * r;
                }
            }
            f.extend_from_slice(d);
            frames.push(f);
        }
        let peak = frames
            .iter()
            .flatten()
            .map(|v| v.norm())
            .fold(0.0, f64::max);
        if !(peak.is_finite() && peak > 0.0) {
            return Err(RadioError::Device("nothing to send".into()));
        }
        let scale = self.amplitude / peak;
        for v in frames.iter_mut().flatten() {
            *v *= scale;
        }
        let window = ref_len + len + self.search;
        let mut rx = self.radio.transceive(&frames, window)?;
        // find the frame, remove the chain's CFO, measure each chain
        let coarse = detect(&o, &rx.samples, DETECT_THRESHOLD)
            .map_err(wave)?
            .ok_or_else(|| {
                RadioError::Stream(format!(
                    "no preamble in the {window}-sample receive window of {} (check cabling or \
                     antennas, frequency, gains and the sample rate)",
                    self.radio.name()
                ))
            })?;
        let sync = refine_timing(&o, &rx.samples, &coarse).map_err(wave)?;
        correct_cfo(&mut rx.samples, sync.cfo_hz, fs, 0).map_err(wave)?;
        let fft0 = sync.fft_start;
        let n_data = len.div_ceil(sl);
        let need = fft0 + (1 + chains + n_data) * sl;
        if rx.samples.len() < need {
            rx.samples.resize(need, C64::new(0.0, 0.0));
        }
        let trainings = demodulate_from(&o, &rx.samples, fft0 + sl, chains).map_err(wave)?;
        let g: Vec<Vec<C64>> = trainings
            .iter()
            .map(|y| {
                estimate_channel(&o, y, &known)
                    .map(|h| h.into_iter().map(|v| v / (r * scale)).collect())
            })
            .collect::<Result<_, _>>()
            .map_err(wave)?;
        let mean: Vec<C64> = (0..o.n_used)
            .map(|c| g.iter().map(|gj| gj[c]).sum::<C64>() / chains as f64)
            .collect();
        let mean_power = mean.iter().map(|v| v.norm_sqr()).sum::<f64>() / o.n_used as f64;
        let spread = g
            .iter()
            .flat_map(|gj| gj.iter().zip(&mean).map(|(a, b)| (a - b).norm_sqr()))
            .sum::<f64>()
            / (chains * o.n_used) as f64;
        let ys =
            demodulate_from(&o, &rx.samples, fft0 + (1 + chains) * sl, n_data).map_err(wave)?;
        let eq: Vec<Vec<C64>> = ys
            .iter()
            .map(|y| {
                y.iter()
                    .zip(&mean)
                    .map(|(v, gm)| {
                        if gm.norm_sqr() > 1e-30 {
                            v / (gm * scale)
                        } else {
                            C64::new(0.0, 0.0)
                        }
                    })
                    .collect()
            })
            .collect();
        let mut out = modulate(&o, &eq).map_err(wave)?;
        out.resize(rx_len, C64::new(0.0, 0.0));
        self.last = Some(ChainReport {
            tx_channels: chains,
            latency_samples: sync.start.saturating_sub(o.cp_len),
            cfo_hz: sync.cfo_hz,
            gain_db: 10.0 * mean_power.max(1e-300).log10(),
            mismatch: spread / mean_power.max(1e-300),
        });
        Ok(Received {
            samples: out,
            time_ns: rx.time_ns,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use crate::waveform::aircomp::{draw_taps, ota_sum, Emulator};
    use crate::waveform::impair::apply_cfo;
    use crate::waveform::tdl::apply_multipath;
    use rand_distr::{Distribution, StandardNormal};

    /// A stand-in RF chain: sums its TX channels after each one's own gain taps, then a latency,
    /// a CFO and a little noise.
    struct Chain {
        tx: usize,
        taps: Vec<Vec<C64>>,
        latency: usize,
        cfo_hz: f64,
        fs: f64,
        noise: f64,
        rng: crate::rng::Rng,
    }

    impl Radio for Chain {
        fn name(&self) -> String {
            "test-chain".into()
        }
        fn configure(&mut self, _: &RadioSettings) -> Result<(), RadioError> {
            Ok(())
        }
        fn tx_channels(&self) -> usize {
            self.tx
        }
        fn transceive(&mut self, b: &[Vec<C64>], rx_len: usize) -> Result<Received, RadioError> {
            assert!(b.len() <= self.tx);
            let mut y = vec![C64::new(0.0, 0.0); rx_len];
            for (x, t) in b.iter().zip(&self.taps) {
                for (i, v) in apply_multipath(x, t).into_iter().enumerate() {
                    if i + self.latency < rx_len {
                        y[i + self.latency] += v;
                    }
                }
            }
            let y = apply_cfo(&y, self.cfo_hz, self.fs, 0.0).unwrap();
            Ok(Received {
                samples: awgn(&y, self.noise, &mut self.rng).unwrap(),
                time_ns: None,
            })
        }
    }

    use crate::waveform::aircomp::tests::cfg as setup;

    fn data(k: usize, n: usize, seed: u64) -> Vec<Vec<f64>> {
        let mut r = stream(seed, &[1]);
        (0..k)
            .map(|_| {
                (0..n)
                    .map(|_| 0.3 + Distribution::<f64>::sample(&StandardNormal, &mut r))
                    .collect()
            })
            .collect()
    }

    /// Mean measured MSE through a `Chain` (HIL) and through the emulator on the same channels
    /// and data; and the symbol-level prediction.
    fn compare(tx: usize, chain_taps: Vec<Vec<C64>>, trials: u64) -> (f64, f64, f64, ChainReport) {
        let c = setup(3, 15.0);
        let (mut hil, mut emu, mut pred) = (0.0, 0.0, 0.0);
        let mut report = None;
        for t in 0..trials {
            let mut rng = stream(t, &[7]);
            let taps = draw_taps(&c, &mut rng).unwrap();
            let x = data(3, 3000, t);
            let xs: Vec<&[f64]> = x.iter().map(|v| v.as_slice()).collect();
            let mut chain = Chain {
                tx,
                taps: chain_taps.clone(),
                latency: 300 + 17 * t as usize,
                cfo_hz: 900.0,
                fs: c.ofdm.sample_rate_hz,
                noise: 1e-7,
                rng: stream(t, &[9]),
            };
            let mut link = HilLink::new(
                &mut chain,
                c.ofdm.clone(),
                &c.devices,
                &taps,
                c.noise_var,
                stream(t, &[8]),
            );
            let o = ota_sum(&c, &xs, &taps, &mut link, &mut rng).unwrap();
            hil += o.measured_mse;
            pred += o.predicted_mse;
            report = link.last.clone();
            let mut e = Emulator {
                devices: &c.devices,
                taps: &taps,
                noise_var: c.noise_var,
                sample_rate_hz: c.ofdm.sample_rate_hz,
                rng: stream(t, &[8]),
            };
            emu += ota_sum(&c, &xs, &taps, &mut e, &mut rng)
                .unwrap()
                .measured_mse;
        }
        let n = trials as f64;
        (hil / n, emu / n, pred / n, report.unwrap())
    }

    #[test]
    fn one_tx_chain_is_calibrated_out() {
        // a chain with gain, phase and a two-tap echo; unknown latency; 900 Hz CFO
        let g = vec![vec![C64::from_polar(0.2, 1.1), C64::new(0.05, -0.03)]];
        let (hil, emu, pred, r) = compare(1, g, 30);
        assert_eq!(r.tx_channels, 1);
        // requirement: a timing error of a couple of samples stays inside the 16-sample CP and
        // is fitted as a phase ramp (measured 0)
        assert!(r.latency_samples.abs_diff(300 + 17 * 29) <= 2, "{r:?}");
        // TUNED: Schmidl–Cox bias from the chain's two-tap echo (deterministic at noise 1e-7;
        // measured 28 Hz, ≈ 0.2 Hz for one-tap chains); not derived
        assert!((r.cfo_hz - 900.0).abs() < 50.0, "{r:?}");
        // loose: the echo's power gain 0.04 + 0.0034 is measured to 0.03 dB; 1.5 dB only has to
        // catch a wrong scale (amplitude for power, a lost chain)
        assert!(
            (r.gain_db - 10.0 * (0.04f64 + 0.0034).log10()).abs() < 1.5,
            "{r:?}"
        );
        // TUNED: the emulator sees the same noise draws, so the HIL excess is systematic — the
        // calibration's residual CFO and echo (above) — plus Monte-Carlo (rel. SE √(2/3000) =
        // 2.6 % per trial, 30 trials); not derived (measured +3.2 % and +3.3 %)
        assert!(
            (hil / pred - 1.0).abs() < 0.05,
            "hil {hil} vs predicted {pred}"
        );
        assert!(
            (hil / emu - 1.0).abs() < 0.05,
            "hil {hil} vs emulator {emu}"
        );
    }

    #[test]
    fn separate_tx_chains_sum_in_hardware() {
        let g = vec![vec![C64::from_polar(0.3, -0.4)]; 3];
        let (hil, _, pred, r) = compare(4, g, 30);
        assert_eq!(r.tx_channels, 3);
        // TUNED: matched chains, so this is the calibration's estimation-noise floor (measured
        // 1.4e-5); not derived
        assert!(r.mismatch < 1e-4, "{r:?}");
        // TUNED: Monte-Carlo, rel. SE √(2/3000) = 2.6 % per trial averaged over 30 trials
        // (heavy-tailed ZF MSEs), plus the calibration residuals; not derived (measured +1.4 %)
        assert!(
            (hil / pred - 1.0).abs() < 0.05,
            "hil {hil} vs predicted {pred}"
        );
        // mismatched chains: reported, and they hurt
        let gs = [
            C64::from_polar(0.3, -0.4),
            C64::from_polar(0.3, 0.4),
            C64::from_polar(0.2, -0.4),
        ];
        let g = gs.iter().map(|v| vec![*v]).collect();
        let (bad, _, _, r) = compare(4, g, 30);
        // closed form: device k arrives scaled by G_k / Ḡ, adding var_k |G_k/Ḡ − 1|² per real
        // (unit-variance data), and the noise (sent on chain 0) is scaled by |G_0/Ḡ|² (the
        // matched run's error is all noise: ZF aligns exactly)
        let mean = gs.iter().sum::<C64>() / 3.0;
        let spread = gs.iter().map(|v| (v - mean).norm_sqr()).sum::<f64>() / 3.0;
        let extra: f64 = gs.iter().map(|v| (v / mean - 1.0).norm_sqr()).sum::<f64>()
            + ((gs[0] / mean).norm_sqr() - 1.0) * hil;
        // the measured spread 0.2 carries the ≈ 1.4e-5 estimation floor above: ≈ 1e-4
        // relative, so 0.01 is loose (measured 2.9e-4)
        assert!(
            (r.mismatch / (spread / mean.norm_sqr()) - 1.0).abs() < 0.01,
            "{r:?}"
        );
        // the same noise draws in both runs, so (bad − hil) is mostly the deterministic
        // mismatch term; TUNED: the remaining Monte-Carlo part is not derived (measured +0.6 %)
        assert!(
            ((bad - hil) / extra - 1.0).abs() < 0.05,
            "mismatched {bad} - matched {hil} vs closed form {extra}"
        );
    }

    #[test]
    fn silence_is_a_clear_error() {
        let c = setup(2, 10.0);
        let mut rng = stream(1, &[1]);
        let taps = draw_taps(&c, &mut rng).unwrap();
        let mut dead = Chain {
            tx: 1,
            taps: vec![vec![C64::new(0.0, 0.0)]],
            latency: 0,
            cfo_hz: 0.0,
            fs: 20e6,
            noise: 1e-3,
            rng: stream(1, &[2]),
        };
        let mut link = HilLink::new(
            &mut dead,
            c.ofdm.clone(),
            &c.devices,
            &taps,
            c.noise_var,
            stream(1, &[3]),
        );
        let x = data(2, 500, 1);
        let xs: Vec<&[f64]> = x.iter().map(|v| v.as_slice()).collect();
        let e = ota_sum(&c, &xs, &taps, &mut link, &mut rng).unwrap_err();
        assert!(e.to_string().contains("no preamble"), "{e}");
    }
}
