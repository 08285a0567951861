//! AirComp at waveform level (`phy::waveform`): every token's all-reduce is an OFDM burst per
//! device, pre-equalised per subcarrier, through the software emulator or, with a radio, through
//! real hardware ([`HilLink`]).
//!
//! Airtime per token: the AP's beacon (Schmidl–Cox header, 2 symbols) and the data symbols at
//! the OFDM sample rate, the devices' training symbols (K × (TRAINING_GAP + 1) symbols) once per
//! coherence block when `correct`, the side information and the downlink as at symbol level.

use super::aircomp::{deliver_token, finish_tokens};
use super::{Call, Carried, Design, Link, RadioConfig, SchemeError, SchemeKind};
use airinfer_phy::radio::Radio;
use airinfer_phy::rng::{self, component};
use airinfer_phy::waveform::aircomp::{ota_sum, Emulator, OtaOfdmConfig, TRAINING_GAP};
use airinfer_phy::waveform::hil::{ChainReport, HilLink};
use airinfer_phy::waveform::impair::Impairments;
use airinfer_phy::waveform::ofdm::OfdmConfig;
use airinfer_phy::waveform::tdl::TdlChannel;
use airinfer_phy::waveform::WaveformError;
use airinfer_phy::C64;
use std::sync::{Arc, Mutex};

/// A radio shared by the collectives of a run (one hardware device, used one all-reduce at a
/// time), with the first failure it reported: an all-reduce cannot return an error, so a failed
/// transceive delivers zeros and the run reads [`SharedRadio::failure`] afterwards.
pub struct SharedRadio {
    radio: Mutex<Box<dyn Radio + Send>>,
    failure: Mutex<Option<String>>,
}

impl SharedRadio {
    /// Share `radio`.
    pub fn new(radio: Box<dyn Radio + Send>) -> Arc<SharedRadio> {
        Arc::new(SharedRadio {
            radio: Mutex::new(radio),
            failure: Mutex::new(None),
        })
    }

    /// The first failure, if any.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn fail(&self, e: String) {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(e);
    }
}

/// The waveform level's set-up. Single-antenna devices and AP; device d's channel is the 1 × 1
/// channel of the fading process (the one the symbol level sees) or, with a TDL profile in its
/// impairments, taps drawn per coherence block (large-scale gain applied).
pub struct WaveformLevel {
    /// Numerology (sample rate = the channel bandwidth).
    pub ofdm: OfdmConfig,
    /// Impairments of each device.
    pub devices: Vec<Impairments>,
    /// Estimate and correct CFO and timing.
    pub correct: bool,
    /// Peak amplitude of hardware frames (DAC full scale 1).
    pub amplitude: f64,
    /// Hardware (None: the emulator).
    pub radio: Option<Arc<SharedRadio>>,
}

/// The waveform-level AirComp link.
pub struct Waveform {
    radio: RadioConfig,
    level: WaveformLevel,
    trained_block: Option<u64>,
    /// The RF-chain calibration of the last hardware all-reduce.
    pub chain: Option<ChainReport>,
}

impl Waveform {
    /// Carry `scheme` with `design` at waveform level for `k` devices; only AirComp with
    /// zero-forcing on single-antenna devices and AP, with the channels estimated by the
    /// waveform itself, can be.
    pub fn new(
        scheme: SchemeKind,
        design: Design,
        radio: &RadioConfig,
        w: WaveformLevel,
        k: usize,
    ) -> Result<Waveform, SchemeError> {
        let bad = |m: String| Err(SchemeError::Invalid(m));
        if scheme != SchemeKind::Aircomp {
            return bad(format!(
                "the waveform level carries AirComp, not {scheme:?}"
            ));
        }
        let r = radio;
        if r.rx_antennas != 1 || r.tx_antennas != 1 || r.streams != 1 {
            return bad(format!(
                "the waveform level has single-antenna devices and AP: rx_antennas = {}, \
                 tx_antennas = {}, streams = {} must all be 1",
                r.rx_antennas, r.tx_antennas, r.streams
            ));
        }
        if design != Design::Zf {
            return bad(format!(
                "the waveform level designs zero-forcing per subcarrier, not {design:?}"
            ));
        }
        if r.csi_error_var != 0.0 {
            return bad(
                "the waveform level estimates its channels itself (correct = true): csi_error_var must be 0"
                    .into(),
            );
        }
        w.ofdm
            .validate()
            .map_err(|e| SchemeError::Invalid(e.to_string()))?;
        if w.devices.len() != k {
            return bad(format!(
                "{} impairment sets for {k} devices",
                w.devices.len()
            ));
        }
        for d in &w.devices {
            d.validate()
                .map_err(|e| SchemeError::Invalid(e.to_string()))?;
            if let Some(t) = &d.tdl {
                TdlChannel::new(t.profile, t.delay_spread_s, w.ofdm.sample_rate_hz)
                    .map_err(|e| SchemeError::Invalid(e.to_string()))?;
            }
        }
        if !(w.amplitude > 0.0 && w.amplitude <= 1.0) {
            return bad(format!("amplitude = {}: must be in (0, 1]", w.amplitude));
        }
        Ok(Waveform {
            radio: radio.clone(),
            level: w,
            trained_block: None,
            chain: None,
        })
    }
}

impl Link for Waveform {
    fn carry(&mut self, call: Call<'_>, buffers: &mut [Vec<f32>]) -> Carried {
        let (start, width, n_tokens) = (call.start.secs(), call.width, call.n_tokens);
        let medium = call
            .medium
            .expect("an all-reduce through the AP has its channel");
        let w = &self.level;
        let k = buffers.len();
        let noise_var = self.radio.noise_var();
        let cfg = OtaOfdmConfig {
            ofdm: w.ofdm.clone(),
            power: 1.0,
            noise_var,
            devices: w.devices.clone(),
            correct: w.correct,
        };
        let fs = w.ofdm.sample_rate_hz;
        let sym_s = w.ofdm.symbol_len() as f64 / fs;
        let mut pred = 0.0;
        // every device transmits as long as the others: one on-time for all
        let mut on_s = 0.0;
        let mut t = start;
        let mut out = vec![vec![0f32; width * n_tokens]; k];
        for tok in 0..n_tokens {
            let h = medium.channels_at(t, &mut call.streams.fading);
            let block = medium.block_at(t, call.round);
            let taps: Vec<Vec<C64>> = (0..k)
                .map(|d| match &w.devices[d].tdl {
                    None => vec![h[d][(0, 0)]],
                    Some(spec) => {
                        let mut r = rng::stream(
                            medium.seed(),
                            &[component::FADING, 0x7D1, block, d as u64],
                        );
                        let g = self.radio.gains.get(d).map_or(1.0, |g| g.sqrt());
                        TdlChannel::new(spec.profile, spec.delay_spread_s, fs)
                            .expect("validated in Waveform::new")
                            .draw(&mut r)
                            .into_iter()
                            .map(|v| v * g)
                            .collect()
                    }
                })
                .collect();
            let xs: Vec<Vec<f64>> = buffers
                .iter()
                .map(|b| {
                    b[tok * width..(tok + 1) * width]
                        .iter()
                        .map(|&v| v as f64)
                        .collect()
                })
                .collect();
            let refs: Vec<&[f64]> = xs.iter().map(|v| v.as_slice()).collect();
            let r = match &w.radio {
                None => {
                    let mut e = Emulator {
                        devices: &cfg.devices,
                        taps: &taps,
                        noise_var,
                        sample_rate_hz: fs,
                        rng: &mut call.streams.wave,
                    };
                    ota_sum(&cfg, &refs, &taps, &mut e, &mut call.streams.noise)
                }
                Some(shared) => {
                    let mut guard = shared.radio.lock().unwrap_or_else(|p| p.into_inner());
                    let mut link = HilLink::new(
                        &mut **guard,
                        cfg.ofdm.clone(),
                        &cfg.devices,
                        &taps,
                        noise_var,
                        &mut call.streams.wave,
                    );
                    link.amplitude = w.amplitude;
                    let r = ota_sum(&cfg, &refs, &taps, &mut link, &mut call.streams.noise);
                    self.chain = link.last.clone();
                    if let Err(WaveformError::InvalidParameter { field: "radio", .. }) = &r {
                        shared.fail(r.as_ref().err().map(|e| e.to_string()).unwrap_or_default());
                    }
                    r
                }
            };
            let symbols = w.ofdm.symbols_for_reals(width);
            let est: Vec<f32> = match r {
                Ok(o) => {
                    pred += o.predicted_mse * width as f64;
                    o.estimate.into_iter().map(|v| v as f32).collect()
                }
                // a channel the design cannot serve, or a radio failure: nothing arrives
                Err(_) => vec![0f32; width],
            };
            let downlink_s =
                deliver_token(&est, &self.radio, &h, call.streams, &mut out, tok, width);
            let mut air = (2 + symbols) as f64 * sym_s;
            // each device: its data symbols (the beacon is the AP's), its training, its side info
            let mut on = symbols as f64 * sym_s;
            if w.correct && self.trained_block != Some(block) {
                self.trained_block = Some(block);
                air += (k * (TRAINING_GAP + 1)) as f64 * sym_s;
                on += (TRAINING_GAP + 1) as f64 * sym_s;
            }
            let side_bits = 4.0 * (8 * k) as f64;
            on += 32.0 / self.radio.side_info_bits_per_use / self.radio.bandwidth_hz;
            on_s += on;
            air += side_bits / self.radio.side_info_bits_per_use / self.radio.bandwidth_hz
                + downlink_s;
            t += air;
        }
        finish_tokens(buffers, out, start, t, pred, on_s, &vec![1.0; k])
    }

    fn round_overhead_s(&self) -> f64 {
        self.radio.round_overhead_s
    }
}
