//! The sections of the experiment file and their defaults: `[model]`, `[eval]`, `[devices]`,
//! `[channel]`, `[scheme]`, `[waveform]`, `[allreduce]`, `[latency]`, `[plan]`. A section with
//! no required key takes `#[serde(default)]` as a whole: a missing key gets the value of its
//! section's `Default`.

use super::plots::{PlotSpec, TableSpec};
use super::system::SystemSpec;
use airinfer_phy::digital::{Access, Rate};
use airinfer_phy::waveform::impair::Impairments;
use airinfer_phy::waveform::ofdm::OfdmConfig;
use airinfer_sim::device::{DeviceProfile, Precision};
use airinfer_sim::schemes::tp::{Broadcast, Design, HeldEqual, SchemeKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What one run computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The real model (GGUF) with every all-reduce through the scheme: perplexity, agreement
    /// with the error-free run, NMSE per reduction site, time to first token, ms per token (as
    /// `airinfer eval --scheme`).
    Eval,
    /// Per-token decode time from the analytic cost model of a preset (also models too large to
    /// run here, e.g. Llama-2-70B) and the simulated all-reduce (as `airinfer table1`).
    Latency,
    /// One all-reduce of i.i.d. Gaussian vectors through the scheme, repeated over independent
    /// channel realisations: NMSE of the sum and airtime.
    Allreduce,
    /// Joint model assignment by stochastic SCA (as `airinfer plan`): the convergence trace and
    /// the baselines' expected MSE.
    Plan,
    /// One system (`[system] name`: a tensor-parallel scheme or a pipeline planner) planned and
    /// timed on the devices and links: stages, time to first token, per-token time, throughput
    /// with B requests in flight, memory per device; with `perplexity = true`, the real model's
    /// perplexity and agreement through the system's links.
    Systems,
    /// One system serving requests that arrive over time (`[serving]`: Poisson, bursty or a
    /// trace), with queueing, batching and device failures: time to first token, time per
    /// output token and end-to-end latency (p50 / p95 / p99), throughput, retries.
    Serving,
}

/// Replications when the file gives none (`Spec` has a required key, so no `Default`).
fn one() -> usize {
    1
}

/// One experiment file (or one run of it, after its sweep settings are applied).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Results go to `results/<name>/` (default: the file's stem).
    #[serde(default)]
    pub name: Option<String>,
    /// Free text, shown by `check` and kept in the metadata.
    #[serde(default)]
    pub description: String,
    /// A name for the point in legends and tables; sweep it beside what it names (in a
    /// `[[sweep.zip]]` group). Not part of any computation.
    #[serde(default)]
    pub label: Option<String>,
    /// What each run computes.
    pub kind: Kind,
    /// Campaign seed: run r of every point draws from streams of (seed, r) — common random
    /// numbers across the sweep points.
    /// A TOML integer (0 ..= 2⁶³−1) or a decimal string for the whole u64 range.
    #[serde(default, deserialize_with = "seed_u64")]
    pub seed: u64,
    /// Independent replications of every point.
    #[serde(default = "one")]
    pub replications: usize,
    /// The model.
    #[serde(default)]
    pub model: ModelSpec,
    /// Evaluation text and lengths (`kind = "eval"`).
    #[serde(default)]
    pub eval: EvalSpec,
    /// The devices.
    #[serde(default)]
    pub devices: DevicesSpec,
    /// The radio channel.
    #[serde(default)]
    pub channel: ChannelSpec,
    /// How the all-reduce is carried.
    #[serde(default)]
    pub scheme: SchemeSpec,
    /// Monte-Carlo size (`kind = "allreduce"`).
    #[serde(default)]
    pub allreduce: AllreduceSpec,
    /// Symbol or waveform level, emulator or SoapySDR (AirComp in `allreduce`, `eval`,
    /// `latency`).
    #[serde(default)]
    pub waveform: WaveformSpec,
    /// Decode-time simulation (`kind = "latency"`).
    #[serde(default)]
    pub latency: LatencySpec,
    /// Joint model assignment (`kind = "plan"`).
    #[serde(default)]
    pub plan: PlanSpec,
    /// The system compared (`kind = "systems"`).
    #[serde(default)]
    pub system: SystemSpec,
    /// Arrivals, scheduling and failures (`kind = "serving"`).
    #[serde(default)]
    pub serving: super::ServingSpec,
    /// Figures drawn from the results.
    #[serde(default)]
    pub plot: Vec<PlotSpec>,
    /// The table printed at the end.
    #[serde(default)]
    pub table: TableSpec,
}

/// `[model]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSpec {
    /// `eval`: a catalogue model (`smollm2-135m`, fetched on first use) or a GGUF path relative
    /// to the experiment file. `latency`, `allreduce`, `plan`: a cost preset (`llama2-7b`,
    /// `llama2-13b`, `llama2-70b`, `llama3-8b`, `llama3-70b`, `smollm2-135m`, …).
    pub name: String,
    /// Model share of each device (heads and FFN columns in proportion); default equal. Numbers
    /// (one per device, unit transmit power), or an assignment by name planned with the run's
    /// channel, devices and `[plan]` energy budget: `"sca"` (the joint design: stochastic SCA,
    /// seeded by the file's `seed`), `"uniform"`, `"compute"` (FP16 peak) or `"memory"`
    /// (capacity) proportional. A named assignment also sets each device's transmit power to
    /// what its energy budget leaves (its uplink only) and writes `share_<k>`,
    /// `tx_power_mw_<k>` and `shares_feasible` columns (a baseline that breaks an energy,
    /// memory or latency cap is projected onto the caps; `eval`, `latency`; AirComp at symbol
    /// level). The plan's transceivers are the SCA design whatever `scheme.design` runs.
    pub shares: Option<SharesSpec>,
    /// Bits per weight including scales for the cost model (`latency`, `plan`): Q4_1 = 5,
    /// Q8_0 = 8.5, F16 = 16.
    pub weight_bits: f64,
    /// The real model's prefill arithmetic (`eval`, `systems` with perplexity): `"f32"` (the
    /// default in experiments, ours: continuous, so an ideal all-reduce reproduces the single
    /// device and a channel's error is not mixed with the 8-bit quantiser's rounding flips) or
    /// `"int8"` (8-bit activations against the weights' codes, as llama.cpp and `airinfer eval`
    /// by default; faster). One per campaign: it cannot be swept.
    #[serde(skip_serializing_if = "is_f32_prefill")]
    pub prefill: Option<PrefillArith>,
}

/// Left out of the serialised spec (and so of run hashes) when it is the default, f32: the
/// runs made before the option keep their hashes.
fn is_f32_prefill(p: &Option<PrefillArith>) -> bool {
    *p != Some(PrefillArith::Int8)
}

/// `[model] prefill`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrefillArith {
    /// f32 activations times the dequantised weights.
    F32,
    /// 8-bit activations times the weights' integer codes.
    Int8,
}

impl ModelSpec {
    /// Whether this campaign's prefill is f32 (the default in experiments).
    pub fn f32_prefill(&self) -> bool {
        self.prefill != Some(PrefillArith::Int8)
    }
}

impl Default for ModelSpec {
    fn default() -> Self {
        ModelSpec {
            name: "smollm2-135m".into(),
            shares: None,
            weight_bits: 5.0,
            prefill: None,
        }
    }
}

/// `[model] shares`: numbers, or an assignment by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SharesSpec {
    /// One share per device.
    Numbers(Vec<f64>),
    /// `sca`, `uniform`, `compute` or `memory`.
    Named(String),
}

/// The names `[model] shares` accepts.
pub const SHARE_NAMES: [&str; 4] = ["sca", "uniform", "compute", "memory"];

/// `[eval]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalSpec {
    /// A catalogue text (`lee-news`, `wikitext-2`) or a UTF-8 file relative to the experiment.
    pub text: String,
    /// Tokens per perplexity chunk (llama.cpp's protocol: the second half of each is scored).
    pub ctx_tokens: usize,
    /// Chunks evaluated (default: as many as the text holds).
    pub chunks: Option<usize>,
    /// Use only the first N tokens of the text.
    pub max_tokens: Option<usize>,
    /// Sliding-window perplexity with this stride instead of chunks.
    pub sliding_stride: Option<usize>,
    /// Prompt of the latency run (time to first token).
    pub prompt_tokens: usize,
    /// Tokens generated in the latency run (ms per token).
    pub gen_tokens: usize,
}

impl Default for EvalSpec {
    fn default() -> Self {
        EvalSpec {
            text: "lee-news".into(),
            ctx_tokens: 128,
            chunks: None,
            max_tokens: None,
            sliding_stride: None,
            prompt_tokens: 32,
            gen_tokens: 8,
        }
    }
}

/// `[devices]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DevicesSpec {
    /// Number of devices K (default: the number of profiles, else of shares, else 1).
    pub count: Option<usize>,
    /// Profile names: one for every device, or one per device (library: sim/plan/data/devices.toml).
    pub profiles: Vec<String>,
    /// More profiles from a TOML file of `[name]` tables (relative to the experiment file).
    pub profiles_file: Option<String>,
    /// Profiles defined inline: `[devices.custom.my-phone]` with the library's fields.
    pub custom: BTreeMap<String, DeviceProfile>,
    /// Arithmetic of the matrix products (f32, f16, int8).
    pub precision: Precision,
    /// Device time per message sent or received, s, for every device (replaces the profiles'
    /// `msg_overhead_s`; sweepable): what a runtime spends per hop or per all-reduce.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_overhead_s: Option<f64>,
}

impl Default for DevicesSpec {
    fn default() -> Self {
        DevicesSpec {
            count: None,
            profiles: vec!["jetson-orin-nano".into()],
            profiles_file: None,
            custom: BTreeMap::new(),
            precision: Precision::default(),
            msg_overhead_s: None,
        }
    }
}

/// `[channel]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelSpec {
    /// AP antennas N_r.
    pub rx_antennas: usize,
    /// Antennas per device N_t.
    pub tx_antennas: usize,
    /// Streams L (AirComp / FDMA), 1 ≤ L ≤ min(N_r, N_t).
    pub streams: usize,
    /// Rician K-factor, dB (absent: Rayleigh).
    pub rician_k_db: Option<f64>,
    /// Block fading: a new independent realisation every coherence time, s.
    pub coherence_time_s: f64,
    /// Continuous Jakes (Gauss–Markov) evolution with this Doppler frequency instead, Hz.
    pub doppler_hz: Option<f64>,
    /// Transmit SNR P/σ² per device and channel use at 0 dB large-scale gain, dB.
    pub snr_db: f64,
    /// Large-scale gain of each device, dB (one value for all, one per device, or none = 0 dB).
    pub gains_db: Vec<f64>,
    /// Bandwidth = complex symbol rate, Hz.
    pub bandwidth_hz: f64,
    /// Fixed cost per all-reduce round (synchronisation, pilots, CSI), s.
    pub round_overhead_s: f64,
    /// Channel-estimation error variance (entries have unit power); 0 = perfect CSI.
    pub csi_error_var: f64,
}

impl Default for ChannelSpec {
    fn default() -> Self {
        ChannelSpec {
            rx_antennas: 4,
            tx_antennas: 1,
            streams: 1,
            rician_k_db: None,
            coherence_time_s: 10e-3,
            doppler_hz: None,
            snr_db: 20.0,
            gains_db: Vec::new(),
            bandwidth_hz: 10e6,
            round_overhead_s: 50e-6,
            csi_error_var: 0.0,
        }
    }
}

/// Wire format of the digital schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuantSpec {
    /// IEEE half.
    Fp16,
    /// bfloat16.
    Bf16,
    /// int8 with an f32 scale per `quant_block` values.
    Int8,
    /// int4 with an f32 scale per `quant_block` values.
    Int4,
    /// int8 with one f32 scale for the whole tensor (the paper's plain 8-bit quantisation).
    Int8Tensor,
}

/// `[scheme]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchemeSpec {
    /// ideal, digital, fdma, ring or aircomp.
    pub kind: SchemeKind,
    /// AirComp transceiver design: zf, zf_sum, mmse, sca or sdr (`fast` is the old name of sca).
    pub design: Design,
    /// Digital / ring (and the digital downlink): fp16, bf16, int8, int4 or int8_tensor.
    pub quantiser: QuantSpec,
    /// Values per scale of int8 / int4.
    pub quant_block: usize,
    /// Digital uplink access: tdma, ofdma or csma (802.11 DCF contention on one Wi-Fi channel;
    /// AirComp then pays the AP's channel access and trigger frame every round).
    pub access: Access,
    /// Digital: values per transport block.
    pub block_values: usize,
    /// Digital: BLER target of link adaptation.
    pub target_bler: f64,
    /// Digital: transmissions per block at most (HARQ).
    pub max_tx: u32,
    /// Digital: `mcs` (NR CQI link adaptation, HARQ, residual losses) or `shannon` (capacity,
    /// error-free: the paper's baseline).
    pub rate: Rate,
    /// What a baseline is held equal to against AirComp on the same channel: `power` (per
    /// channel use), `energy` (per all-reduce) or `airtime` (of the uplink). Applies to
    /// digital and fdma; AirComp is the reference and ideal has no radio (both ignore it:
    /// the value is recorded with their runs); the ring refuses anything but `power`.
    pub held_equal: HeldEqual,
    /// How the AP returns the AirComp / FDMA estimate: `digital` (the digital all-reduce's
    /// broadcast, default), `analog` or `ideal` (no airtime, no error).
    pub downlink: Broadcast,
}

impl Default for SchemeSpec {
    fn default() -> Self {
        SchemeSpec {
            kind: SchemeKind::Aircomp,
            design: Design::Sca,
            quantiser: QuantSpec::Int8,
            quant_block: 32,
            access: Access::Ofdma,
            block_values: 1024,
            target_bler: 0.1,
            max_tx: 4,
            rate: Rate::Mcs,
            held_equal: HeldEqual::Power,
            downlink: Broadcast::Digital,
        }
    }
}

/// At which level AirComp is simulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Complex symbols, perfect synchronisation (`phy::aircomp`).
    #[default]
    Symbol,
    /// OFDM waveforms with impairments, through the emulator or a radio (`phy::waveform`).
    Waveform,
}

/// `[waveform]`: the waveform-level path of AirComp.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WaveformSpec {
    /// `symbol` (default) or `waveform`.
    pub level: Level,
    /// `emulator` (default), or SoapySDR device arguments such as `driver=uhd` (needs a build
    /// with `--features soapy`); used by the points at waveform level. `airinfer run --radio
    /// ARGS` sets it (and the level too, unless the file sweeps the level).
    pub radio: String,
    /// Estimate and correct each device's CFO and timing before it transmits.
    pub correct: bool,
    /// DFT size (sample rate = `channel.bandwidth_hz`).
    pub n_fft: usize,
    /// Cyclic prefix, samples.
    pub cp_len: usize,
    /// Used subcarriers (even, around an empty DC).
    pub n_used: usize,
    /// Every n-th used carrier is a pilot (0: none).
    pub pilot_spacing: usize,
    /// Impairments: one set for every device, or one per device (none: ideal).
    pub impairments: Vec<Impairments>,
    /// Hardware: centre frequency, Hz.
    pub frequency_hz: f64,
    /// Hardware: transmit gain, dB.
    pub tx_gain_db: f64,
    /// Hardware: receive gain, dB.
    pub rx_gain_db: f64,
    /// Hardware: peak amplitude of a frame (DAC full scale 1).
    pub amplitude: f64,
}

impl Default for WaveformSpec {
    fn default() -> Self {
        let ofdm = OfdmConfig::default();
        WaveformSpec {
            level: Level::Symbol,
            radio: "emulator".into(),
            correct: true,
            n_fft: ofdm.n_fft,
            cp_len: ofdm.cp_len,
            n_used: ofdm.n_used,
            pilot_spacing: ofdm.pilot_spacing,
            impairments: Vec::new(),
            frequency_hz: 2.45e9,
            tx_gain_db: 0.0,
            rx_gain_db: 0.0,
            amplitude: 0.5,
        }
    }
}

impl WaveformSpec {
    /// Whether the radio is hardware (SoapySDR device arguments) rather than the emulator.
    pub fn is_hardware(&self) -> bool {
        self.radio != "emulator"
    }
}

/// `[allreduce]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AllreduceSpec {
    /// Independent channel realisations (each with fresh noise and data).
    pub realisations: usize,
    /// Values per device in one all-reduce (default: the model's hidden size, one token).
    pub values: Option<usize>,
    /// Standard deviation of each device's i.i.d. N(0, σ²) values (one for all or one per
    /// device; default 1): unequal partials, as a transformer's activations make them.
    pub device_std: Vec<f64>,
}

impl Default for AllreduceSpec {
    fn default() -> Self {
        AllreduceSpec {
            realisations: 200,
            values: None,
            device_std: Vec::new(),
        }
    }
}

/// `[latency]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LatencySpec {
    /// Positions already in the KV cache when the first simulated token is decoded.
    pub past_tokens: usize,
    /// Decoded tokens simulated (averaged).
    pub tokens: usize,
}

impl Default for LatencySpec {
    fn default() -> Self {
        LatencySpec {
            past_tokens: 128,
            tokens: 2,
        }
    }
}

/// `[plan]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlanSpec {
    /// Stochastic SCA iterations.
    pub iterations: usize,
    /// Channel realisations of the expected MSE along the trace.
    pub validation: usize,
    /// Per-token energy budget of each device, mJ (one for all, or one per device; none: the
    /// compute energy of an equal share plus half the energy of sending every all-reduce at
    /// the device's maximum power, so that the energy constraint binds). A single number is
    /// one for all (so a sweep can give plain numbers).
    #[serde(deserialize_with = "one_or_many")]
    pub energy_mj: Vec<f64>,
    /// Signal model of the partial sums: `paper` (Zhang et al.: the variance does not depend
    /// on the share) or `share_scaled` (ours: variance ∝ share).
    pub signal: airinfer_plan::SignalModel,
    /// Per-token compute-latency budget, ms (none: no latency constraint).
    pub latency_ms: Option<f64>,
}

impl Default for PlanSpec {
    fn default() -> Self {
        PlanSpec {
            iterations: 300,
            validation: 128,
            energy_mj: Vec::new(),
            signal: airinfer_plan::SignalModel::Paper,
            latency_ms: None,
        }
    }
}

/// A number or a list of numbers, as a list.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum V {
        One(f64),
        Many(Vec<f64>),
    }
    match V::deserialize(d) {
        Ok(V::One(x)) => Ok(vec![x]),
        Ok(V::Many(v)) => Ok(v),
        Err(_) => Err(serde::de::Error::custom(
            "expected a number (mJ, one for all devices) or a list of numbers",
        )),
    }
}

/// A seed: a non-negative TOML integer, or a string of decimal digits for values past TOML's
/// signed 64-bit integers (up to u64::MAX).
fn seed_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a non-negative integer, or a decimal string up to 18446744073709551615")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("{v}: a seed is non-negative")))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<u64, E> {
            v.trim().parse::<u64>().map_err(|_| {
                E::custom(format!(
                    "{v:?}: not a decimal integer in 0..=18446744073709551615"
                ))
            })
        }
    }
    d.deserialize_any(V)
}
