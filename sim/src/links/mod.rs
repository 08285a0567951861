//! Links: the one seam every exchange of a tensor-parallel all-reduce crosses. Each way of
//! carrying a reduction is one type in one file behind [`Link`]: [`exact`] (the exact sum, no
//! airtime), [`digital`] (quantise, MCS / BLER / HARQ, TDMA, OFDMA or CSMA via the AP, broadcast),
//! [`ring`] (the device-to-device ring all-reduce), [`fdma`] (uncoded analog FDMA), [`aircomp`]
//! (over-the-air computation at symbol level) and [`waveform`] (AirComp as OFDM bursts through the
//! emulator or a SoapySDR radio). A link takes the partials, the simulated time and the run's
//! random streams ([`Call`]) and returns, in place, what each device receives, with the airtime
//! and the error its model predicts ([`Carried`]). [`crate::schemes::tp::TpCollective`] adapts
//! `llm::tp::Collective` to a link and keeps the clock; a new way of reducing is a new file here
//! and one line in [`build`].
//!
//! Pipeline hand-offs (one sender, one receiver, nothing to combine) cross the same trait as
//! [`handoff::Handoff`]: the wire format and a [`handoff::HandoffLink`] (ideal, wired, or a
//! digital radio link with HARQ). The pipelines' timing model moves byte counts over the same
//! links ([`handoff::HandoffLink::send`]).

pub mod aircomp;
pub mod digital;
pub mod exact;
pub mod fdma;
pub mod geometry;
pub mod handoff;
pub mod medium;
pub mod ring;
pub mod waveform;

use crate::des::Time;
use airinfer_phy::channel::{FadingProcess, Mac, MacConfig, SmallScale, TimeModel};
use airinfer_phy::digital::{Access, Quantiser, Rate};
use airinfer_phy::rng::{self, component};
use airinfer_phy::CMat;
use serde::{Deserialize, Serialize};

pub use aircomp::Design;

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

/// What a baseline (digital all-reduce, uncoded FDMA) is held equal to, against AirComp
/// carrying the same call on the same channel. AirComp's reference for a token of `width`
/// values: each device transmits for `U/B + s/B` (U = ⌈width/2L⌉ channel uses, s its side
/// information's uses) at its full power P, and the uplink lasts `U/B + K s/B`
/// ([`RadioConfig::aircomp_uplink_s`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum HeldEqual {
    /// Equal transmit power per channel use: every device at its full power, whatever energy
    /// and airtime the scheme then takes (uncoded FDMA: K× AirComp's airtime and energy).
    #[default]
    Power,
    /// Equal transmit energy per all-reduce. Uncoded FDMA: power P/K on its 1/K sub-band, so
    /// its K× longer transmission spends AirComp's energy (noise per sub-band σ²/K, SNR P/σ²).
    /// Digital: full power for at most AirComp's transmit time, sending what fits (with OFDMA
    /// this is the same budget as `airtime`; with TDMA or CSMA each device's slot gets
    /// AirComp's transmit time, K× the airtime). Our rule for digital: a lower power would buy
    /// more bits per joule at the price of airtime without bound.
    Energy,
    /// Equal uplink airtime. Uncoded FDMA: each device's 1/K sub-band for AirComp's airtime
    /// holds ⌊U/K⌋ channel uses; the values beyond are lost and the AP takes the device's mean
    /// (side information) for them. Digital: the uplink gets AirComp's airtime (OFDMA: every
    /// device for all of it; TDMA: a K-th each; CSMA: a K-th of payload time each, the
    /// contention on top), each device sending what fits — fewer bits per value
    /// ([`Quantiser::fitting`]), one transmission per block.
    Airtime,
}

impl HeldEqual {
    /// Name as written in files.
    pub fn name(self) -> &'static str {
        match self {
            HeldEqual::Power => "power",
            HeldEqual::Energy => "energy",
            HeldEqual::Airtime => "airtime",
        }
    }
}

/// How the AP returns the AirComp / FDMA estimate to every device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Broadcast {
    /// Every device receives the estimate exactly, with no airtime (an idealisation).
    Ideal,
    /// The digital all-reduce's own broadcast: the estimate quantised with the run's
    /// quantiser, sent at the weakest device's rate (`rate`, link adaptation and HARQ as
    /// digital's), so both pay the same downlink.
    #[default]
    Digital,
    /// Analog broadcast (ours): the estimate scaled to unit power as complex symbols at the
    /// band's symbol rate, from the AP's N_r antennas without beamforming (device k's SNR
    /// ‖h_k‖²/(N_r σ²)).
    Analog,
}

/// Bits of side information each AirComp / FDMA device sends per token (its mean and variance
/// as two fp16).
pub const SIDE_INFO_BITS: f64 = 32.0;

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
    /// Transmit power of each device relative to the reference power of `snr_db` (empty: all
    /// 1): what a planned assignment gives each device (`shares = "sca"`). It scales the
    /// device's uplink only; the AP's downlink does not depend on it.
    #[serde(default)]
    pub tx_power: Vec<f64>,
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
    /// Digital: uplink access. `csma` (one Wi-Fi channel) also makes AirComp pay the AP's
    /// channel access and trigger frame every round ([`aircomp::Aircomp`]).
    pub access: Access,
    /// Digital: values per transport block.
    pub block_values: usize,
    /// Digital: BLER target of link adaptation.
    pub target_bler: f64,
    /// Digital: transmissions per block at most.
    pub max_tx: u32,
    /// Digital: rate model (link adaptation + HARQ, or Shannon).
    pub rate: Rate,
    /// How the AirComp / FDMA estimate returns to the devices.
    pub downlink: Broadcast,
    /// What the baselines are held equal to against AirComp.
    pub held_equal: HeldEqual,
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
            tx_power: Vec::new(),
            bandwidth_hz: 10e6,
            round_overhead_s: 50e-6,
            csi_error_var: 0.0,
            side_info_bits_per_use: 2.0,
            quantiser: Quantiser::Int8 { block: 32 },
            access: Access::Ofdma,
            block_values: 1024,
            target_bler: 0.1,
            max_tx: 4,
            rate: Rate::Mcs,
            downlink: Broadcast::Digital,
            held_equal: HeldEqual::Power,
        }
    }
}

impl RadioConfig {
    /// Noise variance σ² for unit transmit power: 10^(−snr_db/10).
    pub fn noise_var(&self) -> f64 {
        10f64.powf(-self.snr_db / 10.0)
    }

    /// Device d's transmit power relative to the reference (1 unless set).
    pub fn power_of(&self, d: usize) -> f64 {
        self.tx_power.get(d).copied().unwrap_or(1.0)
    }

    /// AirComp's channel uses for one token of `width` reals: ⌈width/2L⌉ (2L reals per use).
    pub fn aircomp_uses(&self, width: usize) -> usize {
        width.div_ceil(2).div_ceil(self.streams.max(1))
    }

    /// AirComp's uplink for one token of `width` values from `k` devices at full power: each
    /// device's transmit time and the uplink's airtime, s (the reference of [`HeldEqual`]).
    pub fn aircomp_uplink_s(&self, k: usize, width: usize) -> (f64, f64) {
        let uses = self.aircomp_uses(width) as f64;
        let side = SIDE_INFO_BITS / self.side_info_bits_per_use;
        (
            (uses + side) / self.bandwidth_hz,
            (uses + k as f64 * side) / self.bandwidth_hz,
        )
    }

    /// Each device's SNR on the whole band for one stream beamformed along its channel's
    /// strongest direction and combined at the AP, `P s_max(H_k)²/σ²` in dB (`P‖h_k‖²/σ²`
    /// with one transmit antenna: maximum-ratio combining); the digital links' link adaptation,
    /// and the downlink's by reciprocity.
    pub fn mrc_snr_db(&self, h: &[CMat]) -> Vec<f64> {
        let noise_var = self.noise_var();
        h.iter()
            .map(|hk| 10.0 * (beamformed_gain(hk).max(1e-30) / noise_var).log10())
            .collect()
    }

    /// The digital link of this radio for SNRs `snr_db` (uplink and downlink alike).
    pub fn digital_link(&self, snr_db: Vec<f64>) -> airinfer_phy::digital::DigitalLink {
        airinfer_phy::digital::DigitalLink {
            access: self.access,
            bandwidth_hz: self.bandwidth_hz,
            uplink_snr_db: snr_db.clone(),
            downlink_snr_db: snr_db,
            quantiser: self.quantiser,
            block_values: self.block_values,
            bler: airinfer_phy::digital::BlerModel::default(),
            target_bler: self.target_bler,
            max_tx: self.max_tx,
            overhead_s: 0.0,
            rate: self.rate,
            budget_s: None,
        }
    }

    /// Check the set-up for `k` devices.
    pub fn validate(&self, k: usize) -> Result<(), SchemeError> {
        let bad = |m: String| Err(SchemeError::Invalid(m));
        let radio = self;
        if !(radio.bandwidth_hz.is_finite() && radio.bandwidth_hz > 0.0) {
            return bad(format!(
                "bandwidth_hz = {}: must be positive",
                radio.bandwidth_hz
            ));
        }
        if !(radio.snr_db.is_finite() && radio.snr_db.abs() <= MAX_SNR_DB) {
            return bad(format!(
                "snr_db = {:e}: must be within ±{MAX_SNR_DB} dB (beyond, the noise power \
                 10^(−snr/10) leaves the range of f64 arithmetic)",
                radio.snr_db
            ));
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
        if !radio.tx_power.is_empty()
            && (radio.tx_power.len() != k
                || radio.tx_power.iter().any(|p| !(p.is_finite() && *p > 0.0)))
        {
            return bad(format!(
                "tx_power: {:?} for {k} devices (need none, or one positive power per device)",
                radio.tx_power
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
        radio
            .quantiser
            .validate()
            .map_err(|e| SchemeError::Invalid(e.to_string()))?;
        Ok(())
    }
}

/// Power gain of one stream through `h` beamformed along its strongest singular direction,
/// `s_max(h)²` (`‖h‖²` with a single transmit antenna: maximum-ratio combining).
pub fn beamformed_gain(h: &CMat) -> f64 {
    if h.ncols() == 1 {
        h.norm_squared()
    } else {
        h.singular_values().max().powi(2)
    }
}

/// The largest |SNR| in dB a link accepts: the noise power 10^(−snr/10) and its products with
/// channel gains and signal powers stay normal f64 numbers (10^±30 here, 10^±308 the limit).
pub const MAX_SNR_DB: f64 = 300.0;

/// Invalid scheme set-up.
#[derive(Debug, thiserror::Error)]
pub enum SchemeError {
    /// A parameter is out of range.
    #[error("{0}")]
    Invalid(String),
}

/// The random streams of a run, each derived from (seed, component) so that a result is a pure
/// function of its configuration, whichever links draw from which.
pub struct Streams {
    /// The fading process of the multiple-access channel.
    pub fading: rng::Rng,
    /// Receiver noise, HARQ outcomes, downlink noise.
    pub noise: rng::Rng,
    /// Channel-estimation error.
    pub csi: rng::Rng,
    /// The SDR's Gaussian randomisation.
    pub design: rng::Rng,
    /// The waveform level's own draws (impairments, emulator noise).
    pub wave: rng::Rng,
    /// Pipeline hand-offs' HARQ outcomes on the data path.
    pub packet: rng::Rng,
}

impl Streams {
    /// The streams of `seed`.
    pub fn new(seed: u64) -> Streams {
        Streams {
            fading: rng::stream(seed, &[component::FADING]),
            noise: rng::stream(seed, &[component::NOISE]),
            csi: rng::stream(seed, &[component::CSI]),
            design: rng::stream(seed, &[component::RANDOMISATION]),
            wave: rng::stream(seed, &[component::NOISE, 0x3A7E]),
            packet: rng::stream(seed, &[component::PACKET, 0xF0A2]),
        }
    }
}

/// The fading multiple-access channel between the devices and the AP, evolving in simulated
/// time, with each device's large-scale gain.
pub struct Medium {
    mac: Mac,
    fading: FadingProcess,
    gains: Vec<f64>,
    time: TimeModel,
    seed: u64,
}

impl Medium {
    /// The channel of `radio` for `k` devices; its first realisation from `streams.fading`.
    pub fn new(
        radio: &RadioConfig,
        k: usize,
        seed: u64,
        streams: &mut Streams,
    ) -> Result<Medium, SchemeError> {
        let mac = Mac::new(MacConfig {
            devices: k,
            rx_antennas: radio.rx_antennas,
            tx_antennas: radio.tx_antennas,
            small_scale: radio.small_scale.clone(),
            rx_correlation: 0.0,
            tx_correlation: 0.0,
        })
        .map_err(|e| SchemeError::Invalid(e.to_string()))?;
        let fading = FadingProcess::new(&mac, radio.time, &mut streams.fading)
            .map_err(|e| SchemeError::Invalid(e.to_string()))?;
        Ok(Medium {
            mac,
            fading,
            gains: radio.gains.clone(),
            time: radio.time,
            seed,
        })
    }

    /// Every device's channel (N_r × N_t, large-scale gain applied) at `t_s`.
    pub fn channels_at(&mut self, t_s: f64, fading: &mut rng::Rng) -> Vec<CMat> {
        let g: Vec<CMat> = self.fading.at(t_s, fading).to_vec();
        g.into_iter()
            .enumerate()
            .map(|(k, gk)| {
                let h = self.mac.compose(k, gk);
                match self.gains.get(k) {
                    Some(g) => h * airinfer_phy::C64::new(g.sqrt(), 0.0),
                    None => h,
                }
            })
            .collect()
    }

    /// The coherence block at `t_s` (with Jakes' model, every round is its own block).
    pub fn block_at(&self, t_s: f64, round: u64) -> u64 {
        match self.time {
            TimeModel::Block { coherence_time_s } => (t_s / coherence_time_s).floor() as u64,
            TimeModel::Jakes { .. } => round,
        }
    }

    /// The seed the run's streams derive from (links draw per-block streams of their own).
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

/// One all-reduce call as a link sees it.
pub struct Call<'a> {
    /// Simulated time the reduction starts (links read the channel at `start.secs()` and
    /// later, in continuous time within the call).
    pub start: Time,
    /// Values per token.
    pub width: usize,
    /// Tokens in the call (the partials hold `width · n_tokens` values).
    pub n_tokens: usize,
    /// All-reduce rounds before this one.
    pub round: u64,
    /// The channel between devices and AP (all-reduce links); `None` for a point-to-point
    /// hand-off, whose link carries its own SNR.
    pub medium: Option<&'a mut Medium>,
    /// The run's random streams.
    pub streams: &'a mut Streams,
}

/// What carrying a call cost and what the link's model expected of it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Carried {
    /// Airtime of the reduction (the round's fixed overhead not included), to the nanosecond.
    pub airtime: Time,
    /// Σ over the call's values of the squared error the link's closed form predicts, where it
    /// has one (AirComp, FDMA, the waveform level).
    pub predicted_err2: Option<f64>,
    /// Transport blocks still lost after the last HARQ transmission (digital links).
    pub lost_blocks: usize,
    /// Time each sending device's transmitter was on, s (the AP's downlink not included). For
    /// a hand-off, the one sender's.
    pub tx_s: Vec<f64>,
    /// Transmit energy of each sending device in units of its full power × 1 s (its on-time
    /// times the fraction of full power it sends at).
    pub tx_energy: Vec<f64>,
    /// Bits on the wire per value, averaged over the devices (digital links; None otherwise).
    pub bits_per_value: Option<f64>,
}

/// A way of carrying an exchange between devices: an all-reduce of K partials, or a hand-off
/// of one payload from one device to the next.
pub trait Link: Send {
    /// Carry `buffers` in place: for an all-reduce one partial per device (`call.width ·
    /// call.n_tokens` values each), afterwards `buffers[k]` is what device k received; for a
    /// hand-off the one payload, afterwards what the receiver got.
    fn carry(&mut self, call: Call<'_>, buffers: &mut [Vec<f32>]) -> Carried;

    /// Fixed cost of a round on this link (synchronisation, pilots, CSI), s.
    fn round_overhead_s(&self) -> f64;
}

/// The link of `scheme` (AirComp with transceiver design `design`) for `radio`.
pub fn build(scheme: SchemeKind, design: Design, radio: &RadioConfig) -> Box<dyn Link> {
    match scheme {
        SchemeKind::Ideal => Box::new(exact::Exact),
        SchemeKind::Digital => Box::new(digital::Digital::new(radio)),
        SchemeKind::Ring => Box::new(ring::Ring::new(radio)),
        SchemeKind::Fdma => Box::new(fdma::Fdma::new(radio)),
        SchemeKind::Aircomp => Box::new(aircomp::Aircomp::new(radio, design)),
    }
}

#[cfg(test)]
mod tests;
