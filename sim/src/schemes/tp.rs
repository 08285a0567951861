//! Tensor parallelism over the air: an [`llm::tp::Collective`] that sends every all-reduce of the
//! real forward pass through a `phy` link and advances a simulated clock.
//!
//! Timing model (lockstep, as Megatron-style TP is): between two reduction sites each device
//! computes its shard of that half-block (attention: Q, K, V, attention, O; MLP: gate, up, down),
//! timed by the roofline of its [`DeviceProfile`] on the analytic cost of `llm::cost`. The
//! all-reduce starts when the slowest device is done (the others idle), takes the scheme's
//! airtime plus a fixed per-round cost, and every device resumes when the sum has come back.
//! The output head runs on device 0 after the last block ([`TpCollective::finish_forward`]).
//!
//! Channel uses: a call carries `n_tokens · n_embd` reals per device. AirComp and FDMA send them
//! token by token, two reals per complex symbol (L streams per use), the channel read at the
//! simulated time each token goes out (so a long prefill meets new realisations when it outlasts
//! the coherence time) and the transceivers redesigned for every token (the design needs the
//! token's per-device variances). Each device also sends its token's mean and variance digitally
//! (2 × 16 bits at `side_info_bits_per_use`, devices one after another). Digital all-reduce sends
//! the whole call at once through `phy::digital::digital_all_reduce` (uplink MCS from each device's
//! MRC SNR `P‖h_k‖²/σ²`, HARQ, residual losses, broadcast back). The sum returns to every device
//! through the downlink model (ideal by default) — for digital, through its own broadcast.
//! The D2D ring (`Ring`) needs no AP: reduce-scatter then all-gather over links k → k+1 at
//! their Shannon rates, requantising at every reduce-scatter hop.

use airinfer_llm::config::LlamaConfig;
use airinfer_llm::cost::{Shard, WeightFormat};
use airinfer_llm::tp::{ideal_sum, Collective, ReduceCtx, ReduceSite, TpPlan};
use airinfer_phy::aircomp::{self, Downlink, OtaLink, Problem, ReceiveDirection, Transceiver};
use airinfer_phy::channel::{self, FadingProcess, Mac, MacConfig, SmallScale, TimeModel};
use airinfer_phy::digital::{self, Access, BlerModel, DigitalLink, Quantiser};
use airinfer_phy::radio::Radio;
use airinfer_phy::rng::{self, component};
use airinfer_phy::waveform::aircomp::{ota_sum, Emulator, OtaOfdmConfig, TRAINING_GAP};
use airinfer_phy::waveform::hil::{ChainReport, HilLink};
use airinfer_phy::waveform::impair::Impairments;
use airinfer_phy::waveform::ofdm::OfdmConfig;
use airinfer_phy::waveform::tdl::TdlChannel;
use airinfer_phy::waveform::WaveformError;
use airinfer_phy::{CMat, C64};
use serde::{Deserialize, Serialize};

use crate::device::{DeviceProfile, Precision};

/// How the all-reduce is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum SchemeKind {
    /// Exact sum, no airtime.
    Ideal,
    /// Quantise, send with link adaptation and HARQ, sum at the AP, broadcast.
    Digital,
    /// Uncoded analog FDMA: one sub-channel per device.
    Fdma,
    /// Digital device-to-device ring all-reduce (reduce-scatter + all-gather, as
    /// distributed-llama does over a LAN): every hop requantises, links at Shannon rate.
    Ring,
    /// Over-the-air computation.
    Aircomp,
}

/// AirComp transceiver design.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Design {
    /// Zero-forcing, principal eigen-direction.
    Zf,
    /// Zero-forcing, sum of channel directions.
    ZfSum,
    /// MMSE by alternating optimisation.
    Mmse,
    /// SCA (near-SDR, no SDP).
    Fast,
    /// SDR with clarabel (slow: one SDP per token and site).
    Sdr,
}

/// The radio side of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadioConfig {
    /// AP antennas N_r.
    pub rx_antennas: usize,
    /// Antennas per device N_t.
    pub tx_antennas: usize,
    /// Streams L (AirComp / FDMA).
    pub streams: usize,
    /// Small-scale fading.
    pub small_scale: SmallScale,
    /// Evolution in time.
    pub time: TimeModel,
    /// Transmit SNR P/σ² per device and channel use (unit large-scale gain), dB.
    pub snr_db: f64,
    /// Large-scale (path-loss) gain of each device towards the AP, linear (empty: all 1).
    #[serde(default)]
    pub gains: Vec<f64>,
    /// Bandwidth = complex symbol rate, Hz.
    pub bandwidth_hz: f64,
    /// Fixed cost per all-reduce round (synchronisation, pilots, CSI), s.
    pub round_overhead_s: f64,
    /// CSI error variance (relative to unit channel power); 0 = perfect CSI.
    pub csi_error_var: f64,
    /// Bits per channel use of the digital side information (AirComp / FDMA).
    pub side_info_bits_per_use: f64,
    /// Digital: number format.
    pub quantiser: Quantiser,
    /// Digital: uplink access.
    pub access: Access,
    /// Digital: values per transport block.
    pub block_values: usize,
    /// Digital: BLER target of link adaptation.
    pub target_bler: f64,
    /// Digital: transmissions per block at most.
    pub max_tx: u32,
    /// How the AirComp / FDMA estimate returns to the devices.
    pub downlink: Downlink,
}

impl Default for RadioConfig {
    fn default() -> Self {
        RadioConfig {
            rx_antennas: 4,
            tx_antennas: 1,
            streams: 1,
            small_scale: SmallScale::Rayleigh,
            time: TimeModel::Block {
                coherence_time_s: 10e-3,
            },
            snr_db: 20.0,
            gains: Vec::new(),
            bandwidth_hz: 10e6,
            round_overhead_s: 50e-6,
            csi_error_var: 0.0,
            side_info_bits_per_use: 2.0,
            quantiser: Quantiser::Int8 { block: 32 },
            access: Access::Ofdma,
            block_values: 1024,
            target_bler: 0.1,
            max_tx: 4,
            downlink: Downlink::Ideal,
        }
    }
}

/// Compute timing of the shards.
#[derive(Debug, Clone)]
pub struct ComputeModel {
    /// Profile of each device.
    pub profiles: Vec<DeviceProfile>,
    /// Arithmetic used.
    pub precision: Precision,
    /// The model.
    pub cfg: LlamaConfig,
    /// Each device's shard.
    pub shards: Vec<Shard>,
    /// Weight storage format.
    pub weights: WeightFormat,
    /// Bytes per cached K/V value.
    pub kv_bytes: f64,
}

impl ComputeModel {
    /// From a plan.
    pub fn new(
        cfg: &LlamaConfig,
        plan: &TpPlan,
        profiles: Vec<DeviceProfile>,
        precision: Precision,
        weights: WeightFormat,
    ) -> ComputeModel {
        ComputeModel {
            shards: (0..plan.heads.len())
                .map(|k| Shard::of_plan(plan, k))
                .collect(),
            profiles,
            precision,
            cfg: cfg.clone(),
            weights,
            kv_bytes: 4.0,
        }
    }

    /// Time device `k` needs for the half-block ending at `site`, for `t` tokens after `past`.
    pub fn site_time_s(&self, k: usize, site: ReduceSite, t: usize, past: usize) -> f64 {
        let c = &self.cfg;
        let s = &self.shards[k];
        let (d, hd) = (c.n_embd as f64, c.head_dim as f64);
        let tf = t as f64;
        let bits = self.weights.bits() / 8.0;
        let (flops, bytes, kernels) = match site {
            ReduceSite::AttnOutput => {
                let w = 2.0 * d * s.q_heads as f64 * hd + 2.0 * d * s.kv_heads as f64 * hd;
                let attended = tf * past as f64 + tf * (tf + 1.0) / 2.0;
                let kv = 2.0 * s.kv_heads as f64 * hd * self.kv_bytes * (past + t) as f64;
                (
                    2.0 * tf * w + 4.0 * s.q_heads as f64 * hd * attended,
                    w * bits + kv,
                    5,
                )
            }
            ReduceSite::MlpDown => {
                let w = 3.0 * d * s.ffn_cols as f64;
                (2.0 * tf * w, w * bits, 3)
            }
        };
        if flops == 0.0 {
            return 0.0;
        }
        self.profiles[k].compute_time_s(flops, bytes, kernels, self.precision)
    }

    /// Output head for `rows` positions on device 0.
    pub fn head_time_s(&self, rows: usize) -> f64 {
        if rows == 0 {
            return 0.0;
        }
        let h = airinfer_llm::cost::head_cost(&self.cfg, rows, self.weights);
        self.profiles[0].compute_time_s(h.flops, h.weight_bytes, 1, self.precision)
    }
}

/// Error statistics of one reduction site.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct SiteStats {
    /// Σ squared error (averaged over devices).
    pub err2: f64,
    /// Σ squared exact sum.
    pub sig2: f64,
    /// Values reduced.
    pub values: u64,
    /// Σ the closed-form (symbol-level) error the design predicts, for the values that had one.
    pub pred2: f64,
    /// Values with a prediction (AirComp and FDMA uplinks).
    pub pred_values: u64,
}

impl SiteStats {
    /// The closed-form prediction of [`SiteStats::nmse`] (uplink; NaN unless every value had
    /// one).
    pub fn predicted_nmse(&self) -> f64 {
        if self.pred_values == self.values && self.sig2 > 0.0 {
            self.pred2 / self.sig2
        } else {
            f64::NAN
        }
    }

    /// MSE normalised by the signal power.
    pub fn nmse(&self) -> f64 {
        if self.sig2 > 0.0 {
            self.err2 / self.sig2
        } else {
            0.0
        }
    }
}

/// A span of the timeline (for Gantt charts and breakdowns).
#[derive(Debug, Clone, Serialize)]
pub struct Span {
    /// Device index, or K for the channel.
    pub lane: usize,
    /// "compute", "idle", "air".
    pub kind: &'static str,
    /// Start, s.
    pub start_s: f64,
    /// End, s.
    pub end_s: f64,
}

/// Per-device totals.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Breakdown {
    /// Compute time per device, s.
    pub compute_s: Vec<f64>,
    /// Idle time per device (waiting for the slowest device or the channel), s.
    pub idle_s: Vec<f64>,
    /// Airtime including round overheads, s.
    pub airtime_s: f64,
    /// All-reduce rounds.
    pub rounds: u64,
}

/// A radio shared by the collectives of a run (one hardware device, used one all-reduce at a
/// time), with the first failure it reported: an all-reduce cannot return an error, so a failed
/// transceive delivers zeros and the run reads [`SharedRadio::failure`] afterwards.
pub struct SharedRadio {
    radio: std::sync::Mutex<Box<dyn Radio + Send>>,
    failure: std::sync::Mutex<Option<String>>,
}

impl SharedRadio {
    /// Share `radio`.
    pub fn new(radio: Box<dyn Radio + Send>) -> std::sync::Arc<SharedRadio> {
        std::sync::Arc::new(SharedRadio {
            radio: std::sync::Mutex::new(radio),
            failure: std::sync::Mutex::new(None),
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

/// AirComp at waveform level (`phy::waveform`): every token's all-reduce is an OFDM burst per
/// device, pre-equalised per subcarrier, through the software emulator or, with `radio`, through
/// real hardware ([`HilLink`]). Single-antenna devices and AP; device d's channel is the 1 × 1
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
    pub radio: Option<std::sync::Arc<SharedRadio>>,
}

/// The collective.
pub struct TpCollective {
    scheme: SchemeKind,
    design: Design,
    radio: RadioConfig,
    compute: ComputeModel,
    mac: Mac,
    fading: FadingProcess,
    seed: u64,
    rng_fading: rng::Rng,
    rng_noise: rng::Rng,
    rng_csi: rng::Rng,
    rng_design: rng::Rng,
    ready: Vec<f64>,
    /// Totals since the last [`TpCollective::reset_totals`].
    pub totals: Breakdown,
    /// Per-site error statistics (attention output, MLP down).
    pub stats: [SiteStats; 2],
    /// Spans recorded while `record` is on.
    pub timeline: Vec<Span>,
    /// Record spans.
    pub record: bool,
    waveform: Option<WaveformLevel>,
    rng_wave: rng::Rng,
    trained_block: Option<u64>,
    /// The error the design predicted for the last transmit (Σ per real), if it had one.
    pending_pred: Option<f64>,
    /// The RF-chain calibration of the last hardware all-reduce.
    pub chain: Option<ChainReport>,
}

/// The transceiver design `design` as the closure `over_the_air_sum` calls (SDR draws its
/// randomisation from `rng`).
fn design_fn(
    design: Design,
    rng: &mut rng::Rng,
) -> impl Fn(&Problem) -> Result<Transceiver, aircomp::AirCompError> + '_ {
    let rng = std::cell::RefCell::new(rng);
    move |p: &Problem| match design {
        Design::Zf => aircomp::zero_forcing(p, ReceiveDirection::Eigen),
        Design::ZfSum => aircomp::zero_forcing(p, ReceiveDirection::SumDirections),
        Design::Mmse => aircomp::mmse(p, 50),
        Design::Fast => aircomp::fast(p, 100),
        Design::Sdr => aircomp::sdr(p, 50, &mut **rng.borrow_mut()).map(|d| d.transceiver),
    }
}

/// Invalid scheme set-up.
#[derive(Debug, thiserror::Error)]
pub enum SchemeError {
    /// A parameter is out of range.
    #[error("{0}")]
    Invalid(String),
}

impl TpCollective {
    /// Build for `compute.shards.len()` devices; every random draw from streams of `seed`.
    pub fn new(
        scheme: SchemeKind,
        design: Design,
        radio: RadioConfig,
        compute: ComputeModel,
        seed: u64,
    ) -> Result<TpCollective, SchemeError> {
        let k = compute.shards.len();
        let bad = |m: String| Err(SchemeError::Invalid(m));
        if compute.profiles.len() != k {
            return bad(format!(
                "{} device profiles for {k} devices",
                compute.profiles.len()
            ));
        }
        if !(radio.bandwidth_hz.is_finite() && radio.bandwidth_hz > 0.0) {
            return bad(format!(
                "bandwidth_hz = {}: must be positive",
                radio.bandwidth_hz
            ));
        }
        if !radio.snr_db.is_finite() {
            return bad(format!("snr_db = {}: must be finite", radio.snr_db));
        }
        if !(radio.round_overhead_s.is_finite() && radio.round_overhead_s >= 0.0) {
            return bad(format!(
                "round_overhead_s = {}: must be ≥ 0",
                radio.round_overhead_s
            ));
        }
        if !(radio.csi_error_var.is_finite() && radio.csi_error_var >= 0.0) {
            return bad(format!(
                "csi_error_var = {}: must be ≥ 0",
                radio.csi_error_var
            ));
        }
        if !(radio.side_info_bits_per_use.is_finite() && radio.side_info_bits_per_use > 0.0) {
            return bad(format!(
                "side_info_bits_per_use = {}: must be positive",
                radio.side_info_bits_per_use
            ));
        }
        if radio.streams == 0
            || radio.streams > radio.rx_antennas
            || radio.streams > radio.tx_antennas
        {
            return bad(format!(
                "streams = {}: need 1 ≤ L ≤ min(N_r = {}, N_t = {})",
                radio.streams, radio.rx_antennas, radio.tx_antennas
            ));
        }
        if radio.block_values == 0 || !(0.0..1.0).contains(&radio.target_bler) || radio.max_tx == 0
        {
            return bad(format!(
                "digital: block_values = {}, target_bler = {}, max_tx = {}: need ≥ 1, [0, 1), ≥ 1",
                radio.block_values, radio.target_bler, radio.max_tx
            ));
        }
        if !radio.gains.is_empty()
            && (radio.gains.len() != k || radio.gains.iter().any(|g| !(g.is_finite() && *g > 0.0)))
        {
            return bad(format!(
                "gains: {:?} for {k} devices (need none, or one positive gain per device)",
                radio.gains
            ));
        }
        if let Downlink::Analog { snr, .. } = &radio.downlink {
            if snr.len() != k {
                return bad(format!("downlink: {} SNRs for {k} devices", snr.len()));
            }
        }
        aircomp::deliver(&[0.0], k, &radio.downlink, &mut rng::stream(0, &[]))
            .map_err(|e| SchemeError::Invalid(e.to_string()))?;
        let mac = Mac::new(MacConfig {
            devices: k,
            rx_antennas: radio.rx_antennas,
            tx_antennas: radio.tx_antennas,
            small_scale: radio.small_scale.clone(),
            rx_correlation: 0.0,
            tx_correlation: 0.0,
        })
        .map_err(|e| SchemeError::Invalid(e.to_string()))?;
        let mut rng_fading = rng::stream(seed, &[component::FADING]);
        let fading = FadingProcess::new(&mac, radio.time, &mut rng_fading)
            .map_err(|e| SchemeError::Invalid(e.to_string()))?;
        Ok(TpCollective {
            scheme,
            design,
            compute,
            mac,
            fading,
            seed,
            rng_fading,
            rng_noise: rng::stream(seed, &[component::NOISE]),
            rng_csi: rng::stream(seed, &[component::CSI]),
            rng_design: rng::stream(seed, &[component::RANDOMISATION]),
            ready: vec![0.0; k],
            totals: Breakdown {
                compute_s: vec![0.0; k],
                idle_s: vec![0.0; k],
                ..Default::default()
            },
            stats: [SiteStats::default(); 2],
            timeline: Vec::new(),
            record: false,
            radio,
            waveform: None,
            rng_wave: rng::stream(seed, &[component::NOISE, 0x3A7E]),
            trained_block: None,
            pending_pred: None,
            chain: None,
        })
    }

    /// Carry AirComp at waveform level (see [`WaveformLevel`]).
    pub fn with_waveform(mut self, w: WaveformLevel) -> Result<TpCollective, SchemeError> {
        let bad = |m: String| Err(SchemeError::Invalid(m));
        let k = self.ready.len();
        if self.scheme != SchemeKind::Aircomp {
            return bad(format!(
                "the waveform level carries AirComp, not {:?}",
                self.scheme
            ));
        }
        let r = &self.radio;
        if r.rx_antennas != 1 || r.tx_antennas != 1 || r.streams != 1 {
            return bad(format!(
                "the waveform level has single-antenna devices and AP: rx_antennas = {}, \
                 tx_antennas = {}, streams = {} must all be 1",
                r.rx_antennas, r.tx_antennas, r.streams
            ));
        }
        if self.design != Design::Zf {
            return bad(format!(
                "the waveform level designs zero-forcing per subcarrier, not {:?}",
                self.design
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
        self.waveform = Some(w);
        Ok(self)
    }

    /// The compute model (profiles, shards).
    pub fn compute(&self) -> &ComputeModel {
        &self.compute
    }

    /// The seed this collective draws from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Simulated time now (every device synchronised after a forward), s.
    pub fn now_s(&self) -> f64 {
        self.ready.iter().cloned().fold(0.0, f64::max)
    }

    /// Zero the per-device totals and the timeline (the clock keeps running).
    pub fn reset_totals(&mut self) {
        let k = self.ready.len();
        self.totals = Breakdown {
            compute_s: vec![0.0; k],
            idle_s: vec![0.0; k],
            ..Default::default()
        };
        self.timeline.clear();
    }

    fn span(&mut self, lane: usize, kind: &'static str, start_s: f64, end_s: f64) {
        if self.record && end_s > start_s {
            self.timeline.push(Span {
                lane,
                kind,
                start_s,
                end_s,
            });
        }
    }

    /// After a forward call: the output head on device 0 for `logits_rows` positions; the other
    /// devices wait for the next token.
    pub fn finish_forward(&mut self, logits_rows: usize) {
        let t = self.compute.head_time_s(logits_rows);
        let start = self.now_s();
        self.totals.compute_s[0] += t;
        self.span(0, "compute", start, start + t);
        let end = start + t;
        for k in 0..self.ready.len() {
            if k > 0 {
                self.totals.idle_s[k] += end - self.ready[k];
                let r = self.ready[k];
                self.span(k, "idle", r, end);
            }
            self.ready[k] = end;
        }
    }

    fn channels_at(&mut self, t_s: f64) -> Vec<CMat> {
        let g: Vec<CMat> = self.fading.at(t_s, &mut self.rng_fading).to_vec();
        g.into_iter()
            .enumerate()
            .map(|(k, gk)| {
                let h = self.mac.compose(k, gk);
                match self.radio.gains.get(k) {
                    Some(g) => h * airinfer_phy::C64::new(g.sqrt(), 0.0),
                    None => h,
                }
            })
            .collect()
    }

    /// Shannon rates of the ring links k → k+1 (N_t × N_t Rayleigh D2D channels with MRT/MRC
    /// gain ‖G‖²_F, unit large-scale gain), redrawn per coherence block (per round with Jakes).
    /// The coherence block at `t_s` (per round with Jakes).
    fn block_at(&self, t_s: f64) -> u64 {
        match self.radio.time {
            TimeModel::Block { coherence_time_s } => (t_s / coherence_time_s).floor() as u64,
            TimeModel::Jakes { .. } => self.totals.rounds,
        }
    }

    fn ring_rates(&self, start: f64, k: usize, noise_var: f64) -> Vec<f64> {
        let block = self.block_at(start);
        let mut r = rng::stream(self.seed, &[component::FADING, 0xD2D, block]);
        let n = self.radio.tx_antennas;
        (0..k)
            .map(|_| {
                let g = channel::cn_matrix(n, n, &mut r).norm_squared();
                digital::shannon_rate(self.radio.bandwidth_hz, g / noise_var, 0.0)
                    .expect("validated bandwidth")
                    .max(1e-3)
            })
            .collect()
    }

    /// Send one call's partials; returns the airtime (s) and writes what each device receives.
    fn transmit(
        &mut self,
        start: f64,
        width: usize,
        n_tokens: usize,
        buffers: &mut [Vec<f32>],
    ) -> f64 {
        let k = buffers.len();
        let noise_var = 10f64.powf(-self.radio.snr_db / 10.0);
        let power = vec![1.0; k];
        match self.scheme {
            SchemeKind::Ideal => {
                ideal_sum(buffers);
                0.0
            }
            SchemeKind::Digital => {
                let h = self.channels_at(start);
                let snr_db: Vec<f64> = h
                    .iter()
                    .map(|hk| 10.0 * (hk.norm_squared().max(1e-30) / noise_var).log10())
                    .collect();
                let link = DigitalLink {
                    access: self.radio.access,
                    bandwidth_hz: self.radio.bandwidth_hz,
                    uplink_snr_db: snr_db.clone(),
                    downlink_snr_db: snr_db,
                    quantiser: self.radio.quantiser,
                    block_values: self.radio.block_values,
                    bler: BlerModel::default(),
                    target_bler: self.radio.target_bler,
                    max_tx: self.radio.max_tx,
                    overhead_s: 0.0,
                };
                let refs: Vec<&[f32]> = buffers.iter().map(|b| b.as_slice()).collect();
                let out = digital::digital_all_reduce(&refs, &link, &mut self.rng_noise)
                    .expect("digital link parameters are validated in TpCollective::new");
                for (b, v) in buffers.iter_mut().zip(out.per_device) {
                    b.copy_from_slice(&v);
                }
                out.airtime.total_s()
            }
            SchemeKind::Ring => {
                let rates = self.ring_rates(start, k, noise_var);
                let q = self.radio.quantiser;
                let n = buffers[0].len();
                let bits = q.bits(n);
                let chunk = n.div_ceil(k);
                let mut out = vec![vec![0f32; n]; k];
                for c in 0..k {
                    let (lo, hi) = ((c * chunk).min(n), ((c + 1) * chunk).min(n));
                    if lo == hi {
                        continue;
                    }
                    // reduce-scatter: chunk c starts at device c+1 and ends, summed, at device c
                    let mut dev = (c + 1) % k;
                    let mut acc: Vec<f32> = buffers[dev][lo..hi].to_vec();
                    for _ in 0..k - 1 {
                        let sent = q.roundtrip(&acc);
                        dev = (dev + 1) % k;
                        acc = sent
                            .iter()
                            .zip(&buffers[dev][lo..hi])
                            .map(|(a, b)| a + b)
                            .collect();
                    }
                    // all-gather: the owner keeps its sum, the others receive it quantised once
                    let gathered = q.roundtrip(&acc);
                    for (d, o) in out.iter_mut().enumerate() {
                        let v = if d == c { &acc } else { &gathered };
                        o[lo..hi].copy_from_slice(v);
                    }
                }
                for (b, o) in buffers.iter_mut().zip(out) {
                    b.copy_from_slice(&o);
                }
                digital::ring_allreduce_airtime(bits, &rates, 0.0).expect("ring rates are positive")
            }
            SchemeKind::Aircomp if self.waveform.is_some() => {
                self.transmit_waveform(start, width, n_tokens, buffers)
            }
            SchemeKind::Fdma | SchemeKind::Aircomp => {
                let mut pred = 0.0;
                let mut t = start;
                let mut out = vec![vec![0f32; width * n_tokens]; k];
                for tok in 0..n_tokens {
                    let h = self.channels_at(t);
                    let csi: Option<Vec<CMat>> = (self.radio.csi_error_var > 0.0).then(|| {
                        h.iter()
                            .map(|hk| {
                                channel::estimate(hk, self.radio.csi_error_var, &mut self.rng_csi)
                                    .expect("validated")
                            })
                            .collect()
                    });
                    let refs: Vec<&[f32]> = buffers
                        .iter()
                        .map(|b| &b[tok * width..(tok + 1) * width])
                        .collect();
                    let link = OtaLink {
                        channels: &h,
                        csi: csi.as_deref(),
                        power: &power,
                        noise_var,
                        streams: self.radio.streams,
                    };
                    let r = if self.scheme == SchemeKind::Fdma {
                        aircomp::fdma_sum(&refs, &link, &mut self.rng_noise)
                    } else {
                        let f = design_fn(self.design, &mut self.rng_design);
                        aircomp::over_the_air_sum(&refs, &link, f, &mut self.rng_noise)
                    };
                    let (est, uses, side) = match r {
                        Ok(o) => {
                            // per complex symbol → per real value
                            pred += o.true_mse / 2.0 * width as f64;
                            (o.estimate, o.channel_uses, o.side_info_bytes)
                        }
                        // a design that cannot serve this realisation (e.g. rank-deficient):
                        // nothing arrives this token
                        Err(_) => (vec![0f32; width], width.div_ceil(2), 8 * k),
                    };
                    let delivered =
                        aircomp::deliver(&est, k, &self.radio.downlink, &mut self.rng_noise)
                            .expect("validated downlink");
                    for (o, v) in out.iter_mut().zip(delivered.per_device) {
                        o[tok * width..(tok + 1) * width].copy_from_slice(&v);
                    }
                    // side info: each device's mean and variance, 8 bytes as f32, sent as 2 × fp16
                    let side_bits = 4.0 * side as f64;
                    let air = uses as f64 / self.radio.bandwidth_hz
                        + side_bits / self.radio.side_info_bits_per_use / self.radio.bandwidth_hz
                        + delivered.airtime_s;
                    t += air;
                }
                for (b, o) in buffers.iter_mut().zip(out) {
                    b.copy_from_slice(&o);
                }
                self.pending_pred = Some(pred);
                t - start
            }
        }
    }

    /// [`TpCollective::transmit`] for AirComp at waveform level: token by token, one OFDM
    /// all-reduce ([`ota_sum`]) each. Airtime per token: the AP's beacon (Schmidl–Cox header,
    /// 2 symbols) and the data symbols at the OFDM sample rate, the devices' training symbols
    /// (K × (TRAINING_GAP + 1) symbols) once per coherence block when `correct`, the side
    /// information and the downlink as at symbol level.
    fn transmit_waveform(
        &mut self,
        start: f64,
        width: usize,
        n_tokens: usize,
        buffers: &mut [Vec<f32>],
    ) -> f64 {
        let w = self.waveform.take().expect("called at waveform level");
        let k = buffers.len();
        let noise_var = 10f64.powf(-self.radio.snr_db / 10.0);
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
        let mut t = start;
        let mut out = vec![vec![0f32; width * n_tokens]; k];
        for tok in 0..n_tokens {
            let h = self.channels_at(t);
            let block = self.block_at(t);
            let taps: Vec<Vec<C64>> = (0..k)
                .map(|d| match &w.devices[d].tdl {
                    None => vec![h[d][(0, 0)]],
                    Some(spec) => {
                        let mut r =
                            rng::stream(self.seed, &[component::FADING, 0x7D1, block, d as u64]);
                        let g = self.radio.gains.get(d).map_or(1.0, |g| g.sqrt());
                        TdlChannel::new(spec.profile, spec.delay_spread_s, fs)
                            .expect("validated in with_waveform")
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
                        rng: &mut self.rng_wave,
                    };
                    ota_sum(&cfg, &refs, &taps, &mut e, &mut self.rng_noise)
                }
                Some(shared) => {
                    let mut guard = shared.radio.lock().unwrap_or_else(|p| p.into_inner());
                    let mut link = HilLink::new(
                        &mut **guard,
                        cfg.ofdm.clone(),
                        &cfg.devices,
                        &taps,
                        noise_var,
                        &mut self.rng_wave,
                    );
                    link.amplitude = w.amplitude;
                    let r = ota_sum(&cfg, &refs, &taps, &mut link, &mut self.rng_noise);
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
            let delivered = aircomp::deliver(&est, k, &self.radio.downlink, &mut self.rng_noise)
                .expect("validated downlink");
            for (o, v) in out.iter_mut().zip(delivered.per_device) {
                o[tok * width..(tok + 1) * width].copy_from_slice(&v);
            }
            let mut air = (2 + symbols) as f64 * sym_s;
            if w.correct && self.trained_block != Some(block) {
                self.trained_block = Some(block);
                air += (k * (TRAINING_GAP + 1)) as f64 * sym_s;
            }
            let side_bits = 4.0 * (8 * k) as f64;
            air += side_bits / self.radio.side_info_bits_per_use / self.radio.bandwidth_hz
                + delivered.airtime_s;
            t += air;
        }
        for (b, o) in buffers.iter_mut().zip(out) {
            b.copy_from_slice(&o);
        }
        self.pending_pred = Some(pred);
        self.waveform = Some(w);
        t - start
    }
}

impl Collective for TpCollective {
    fn all_reduce(&mut self, ctx: &ReduceCtx, buffers: &mut [Vec<f32>]) {
        let k = buffers.len();
        // compute of the half-block that ends here
        for d in 0..k {
            let t = self.compute.site_time_s(d, ctx.site, ctx.n_tokens, ctx.pos);
            let r = self.ready[d];
            self.span(d, "compute", r, r + t);
            self.ready[d] += t;
            self.totals.compute_s[d] += t;
        }
        let start = self.now_s();
        for d in 0..k {
            self.totals.idle_s[d] += start - self.ready[d];
            let r = self.ready[d];
            self.span(d, "idle", r, start);
        }
        // the exact sum, for the error statistics
        let n = buffers[0].len();
        let mut exact = vec![0f64; n];
        for b in buffers.iter() {
            for (e, v) in exact.iter_mut().zip(b) {
                *e += *v as f64;
            }
        }
        let air = if k == 1 && self.scheme != SchemeKind::Ideal {
            // one device: nothing to reduce, nothing sent
            0.0
        } else {
            let a = self.transmit(start, ctx.width, ctx.n_tokens, buffers);
            if self.scheme == SchemeKind::Ideal {
                a
            } else {
                a + self.radio.round_overhead_s
            }
        };
        let s = &mut self.stats[match ctx.site {
            ReduceSite::AttnOutput => 0,
            ReduceSite::MlpDown => 1,
        }];
        for (i, e) in exact.iter().enumerate() {
            let err: f64 = buffers
                .iter()
                .map(|b| (b[i] as f64 - e).powi(2))
                .sum::<f64>()
                / k as f64;
            s.err2 += err;
            s.sig2 += e * e;
        }
        s.values += n as u64;
        if let Some(p) = self.pending_pred.take() {
            s.pred2 += p;
            s.pred_values += n as u64;
        }
        self.totals.airtime_s += air;
        self.totals.rounds += 1;
        self.span(k, "air", start, start + air);
        for r in self.ready.iter_mut() {
            *r = start + air;
        }
    }
}

/// Bytes each device of `plan` needs: its shard of `cfg` at `weight_bits` per weight, the
/// replicated embedding and output head, and an f16 KV cache of `positions` cached positions
/// (summed over sequences).
pub fn memory_per_device(
    cfg: &LlamaConfig,
    plan: &TpPlan,
    weight_bits: f64,
    positions: usize,
) -> Vec<f64> {
    (0..plan.n_devices())
        .map(|d| {
            let s = Shard::of_plan(plan, d);
            let w = cfg.n_layer as f64 * s.matrix_weights(cfg) as f64 * weight_bits / 8.0;
            let emb = cfg.vocab_size as f64 * cfg.n_embd as f64 * weight_bits / 8.0
                * if cfg.tied_embeddings { 1.0 } else { 2.0 };
            let kv = 2.0
                * cfg.n_layer as f64
                * s.kv_heads as f64
                * cfg.head_dim as f64
                * 2.0
                * positions as f64;
            w + emb + kv
        })
        .collect()
}

/// Whether every device of `plan` holds its shard of `cfg` (`weight_bits` per weight; the
/// embedding and output head replicated) and an f16 KV cache of `past` positions in its memory.
pub fn fits_memory(
    cfg: &LlamaConfig,
    plan: &TpPlan,
    profiles: &[DeviceProfile],
    weight_bits: f64,
    past: usize,
) -> bool {
    memory_per_device(cfg, plan, weight_bits, past)
        .iter()
        .zip(profiles)
        .all(|(m, p)| *m <= p.mem_capacity)
}

/// Decode `tokens` tokens of `cfg` (after `past` cached positions) through `c`: every block's two
/// all-reduces carry pseudo-random activations of the model's width (a fixed generator of
/// `seed`), then the output head. Read the time from `c.now_s()` and `c.totals`.
pub fn simulate_decode(
    c: &mut TpCollective,
    cfg: &LlamaConfig,
    past: usize,
    tokens: usize,
    seed: u64,
) {
    for t in 0..tokens {
        simulate_forward(
            c,
            cfg,
            1,
            past + t,
            1,
            seed ^ (t as u64).wrapping_mul(0x9E37),
        );
    }
}

/// One forward call of `n_tokens` positions after `past` through `c` (a prefill, or a batch of
/// decode steps), then the head for `logits_rows` positions; activations as in
/// [`simulate_decode`].
pub fn simulate_forward(
    c: &mut TpCollective,
    cfg: &LlamaConfig,
    n_tokens: usize,
    past: usize,
    logits_rows: usize,
    seed: u64,
) {
    let k = c.compute().shards.len();
    let mut s = 0x2545_F491_4F6C_DD1Du64 ^ seed;
    for layer in 0..cfg.n_layer {
        for site in [ReduceSite::AttnOutput, ReduceSite::MlpDown] {
            let mut bufs: Vec<Vec<f32>> = (0..k)
                .map(|_| {
                    (0..n_tokens * cfg.n_embd)
                        .map(|_| {
                            s ^= s << 13;
                            s ^= s >> 7;
                            s ^= s << 17;
                            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                        })
                        .collect()
                })
                .collect();
            let ctx = ReduceCtx {
                layer,
                site,
                n_tokens,
                pos: past,
                width: cfg.n_embd,
            };
            c.all_reduce(&ctx, &mut bufs);
        }
    }
    c.finish_forward(logits_rows);
}

#[cfg(test)]
mod tests;
