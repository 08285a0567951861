//! The typed experiment file: what each key means, its unit, its default, and the checks that
//! turn physical nonsense into an error naming the key.

use airinfer_llm::config::LlamaConfig;
use airinfer_llm::cost::presets;
use airinfer_phy::channel::{SmallScale, TimeModel};
use airinfer_phy::digital::{Access, Quantiser};
use airinfer_phy::waveform::impair::Impairments;
use airinfer_phy::waveform::ofdm::OfdmConfig;
use airinfer_phy::waveform::tdl::TdlChannel;
use airinfer_sim::device::{DeviceProfile, Precision, Profiles};
use airinfer_sim::schemes::pipeline::{Link, Network, Wire};
use airinfer_sim::schemes::tp::{Design, RadioConfig, SchemeKind, WaveformLevel};
use airinfer_sim::systems::{Slowdown, System};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
}

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
    #[serde(default)]
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
    /// Figures drawn from the results.
    #[serde(default)]
    pub plot: Vec<PlotSpec>,
    /// The table printed at the end.
    #[serde(default)]
    pub table: TableSpec,
}

/// `[model]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// `eval`: a catalogue model (`smollm2-135m`, fetched on first use) or a GGUF path relative
    /// to the experiment file. `latency`, `allreduce`, `plan`: a cost preset (`llama2-7b`,
    /// `llama2-13b`, `llama2-70b`, `llama3-8b`, `llama3-70b`, `smollm2-135m`, …).
    #[serde(default = "default_model")]
    pub name: String,
    /// Model share of each device (heads and FFN columns in proportion); default equal.
    #[serde(default)]
    pub shares: Option<Vec<f64>>,
    /// Bits per weight including scales for the cost model (`latency`, `plan`): Q4_1 = 5,
    /// Q8_0 = 8.5, F16 = 16.
    #[serde(default = "default_weight_bits")]
    pub weight_bits: f64,
}

fn default_model() -> String {
    "smollm2-135m".into()
}
fn default_weight_bits() -> f64 {
    5.0
}

impl Default for ModelSpec {
    fn default() -> Self {
        ModelSpec {
            name: default_model(),
            shares: None,
            weight_bits: default_weight_bits(),
        }
    }
}

/// `[eval]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSpec {
    /// A catalogue text (`lee-news`, `wikitext-2`) or a UTF-8 file relative to the experiment.
    #[serde(default = "default_text")]
    pub text: String,
    /// Tokens per perplexity chunk (llama.cpp's protocol: the second half of each is scored).
    #[serde(default = "default_ctx")]
    pub ctx_tokens: usize,
    /// Chunks evaluated (default: as many as the text holds).
    #[serde(default)]
    pub chunks: Option<usize>,
    /// Use only the first N tokens of the text.
    #[serde(default)]
    pub max_tokens: Option<usize>,
    /// Sliding-window perplexity with this stride instead of chunks.
    #[serde(default)]
    pub sliding_stride: Option<usize>,
    /// Prompt of the latency run (time to first token).
    #[serde(default = "default_prompt")]
    pub prompt_tokens: usize,
    /// Tokens generated in the latency run (ms per token).
    #[serde(default = "default_gen")]
    pub gen_tokens: usize,
}

fn default_text() -> String {
    "lee-news".into()
}
fn default_ctx() -> usize {
    128
}
fn default_prompt() -> usize {
    32
}
fn default_gen() -> usize {
    8
}

impl Default for EvalSpec {
    fn default() -> Self {
        EvalSpec {
            text: default_text(),
            ctx_tokens: default_ctx(),
            chunks: None,
            max_tokens: None,
            sliding_stride: None,
            prompt_tokens: default_prompt(),
            gen_tokens: default_gen(),
        }
    }
}

/// `[devices]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevicesSpec {
    /// Number of devices K (default: the number of profiles, else of shares, else 1).
    #[serde(default)]
    pub count: Option<usize>,
    /// Profile names: one for every device, or one per device (library: sim/plan/data/devices.toml).
    #[serde(default = "default_profiles")]
    pub profiles: Vec<String>,
    /// More profiles from a TOML file of `[name]` tables (relative to the experiment file).
    #[serde(default)]
    pub profiles_file: Option<String>,
    /// Profiles defined inline: `[devices.custom.my-phone]` with the library's fields.
    #[serde(default)]
    pub custom: BTreeMap<String, DeviceProfile>,
    /// Arithmetic of the matrix products (f32, f16, int8).
    #[serde(default)]
    pub precision: Precision,
}

fn default_profiles() -> Vec<String> {
    vec!["jetson-orin-nano".into()]
}

impl Default for DevicesSpec {
    fn default() -> Self {
        DevicesSpec {
            count: None,
            profiles: default_profiles(),
            profiles_file: None,
            custom: BTreeMap::new(),
            precision: Precision::default(),
        }
    }
}

/// `[channel]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    /// AP antennas N_r.
    #[serde(default = "default_rx")]
    pub rx_antennas: usize,
    /// Antennas per device N_t.
    #[serde(default = "one")]
    pub tx_antennas: usize,
    /// Streams L (AirComp / FDMA), 1 ≤ L ≤ min(N_r, N_t).
    #[serde(default = "one")]
    pub streams: usize,
    /// Rician K-factor, dB (absent: Rayleigh).
    #[serde(default)]
    pub rician_k_db: Option<f64>,
    /// Block fading: a new independent realisation every coherence time, s.
    #[serde(default = "default_coherence")]
    pub coherence_time_s: f64,
    /// Continuous Jakes (Gauss–Markov) evolution with this Doppler frequency instead, Hz.
    #[serde(default)]
    pub doppler_hz: Option<f64>,
    /// Transmit SNR P/σ² per device and channel use at 0 dB large-scale gain, dB.
    #[serde(default = "default_snr")]
    pub snr_db: f64,
    /// Large-scale gain of each device, dB (one value for all, one per device, or none = 0 dB).
    #[serde(default)]
    pub gains_db: Vec<f64>,
    /// Bandwidth = complex symbol rate, Hz.
    #[serde(default = "default_bandwidth")]
    pub bandwidth_hz: f64,
    /// Fixed cost per all-reduce round (synchronisation, pilots, CSI), s.
    #[serde(default = "default_overhead")]
    pub round_overhead_s: f64,
    /// Channel-estimation error variance (entries have unit power); 0 = perfect CSI.
    #[serde(default)]
    pub csi_error_var: f64,
}

fn default_rx() -> usize {
    4
}
fn default_coherence() -> f64 {
    10e-3
}
fn default_snr() -> f64 {
    20.0
}
fn default_bandwidth() -> f64 {
    10e6
}
fn default_overhead() -> f64 {
    50e-6
}

impl Default for ChannelSpec {
    fn default() -> Self {
        ChannelSpec {
            rx_antennas: default_rx(),
            tx_antennas: 1,
            streams: 1,
            rician_k_db: None,
            coherence_time_s: default_coherence(),
            doppler_hz: None,
            snr_db: default_snr(),
            gains_db: Vec::new(),
            bandwidth_hz: default_bandwidth(),
            round_overhead_s: default_overhead(),
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
}

/// `[scheme]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemeSpec {
    /// ideal, digital, fdma, ring or aircomp.
    #[serde(default = "default_scheme")]
    pub kind: SchemeKind,
    /// AirComp transceiver design: zf, zf_sum, mmse, fast (SCA) or sdr.
    #[serde(default = "default_design")]
    pub design: Design,
    /// Digital / ring: fp16, bf16, int8 or int4.
    #[serde(default = "default_quant")]
    pub quantiser: QuantSpec,
    /// Values per scale of int8 / int4.
    #[serde(default = "default_quant_block")]
    pub quant_block: usize,
    /// Digital uplink access: tdma or ofdma.
    #[serde(default = "default_access")]
    pub access: Access,
    /// Digital: values per transport block.
    #[serde(default = "default_block_values")]
    pub block_values: usize,
    /// Digital: BLER target of link adaptation.
    #[serde(default = "default_bler")]
    pub target_bler: f64,
    /// Digital: transmissions per block at most (HARQ).
    #[serde(default = "default_max_tx")]
    pub max_tx: u32,
}

fn default_scheme() -> SchemeKind {
    SchemeKind::Aircomp
}
fn default_design() -> Design {
    Design::Fast
}
fn default_quant() -> QuantSpec {
    QuantSpec::Int8
}
fn default_quant_block() -> usize {
    32
}
fn default_access() -> Access {
    Access::Ofdma
}
fn default_block_values() -> usize {
    1024
}
fn default_bler() -> f64 {
    0.1
}
fn default_max_tx() -> u32 {
    4
}

impl Default for SchemeSpec {
    fn default() -> Self {
        SchemeSpec {
            kind: default_scheme(),
            design: default_design(),
            quantiser: default_quant(),
            quant_block: default_quant_block(),
            access: default_access(),
            block_values: default_block_values(),
            target_bler: default_bler(),
            max_tx: default_max_tx(),
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
#[serde(deny_unknown_fields)]
pub struct WaveformSpec {
    /// `symbol` (default) or `waveform`.
    #[serde(default)]
    pub level: Level,
    /// `emulator` (default), or SoapySDR device arguments such as `driver=uhd` (needs a build
    /// with `--features soapy`); used by the points at waveform level. `airinfer run --radio
    /// ARGS` sets it (and the level too, unless the file sweeps the level).
    #[serde(default = "default_radio")]
    pub radio: String,
    /// Estimate and correct each device's CFO and timing before it transmits.
    #[serde(default = "yes")]
    pub correct: bool,
    /// DFT size (sample rate = `channel.bandwidth_hz`).
    #[serde(default = "default_n_fft")]
    pub n_fft: usize,
    /// Cyclic prefix, samples.
    #[serde(default = "default_cp_len")]
    pub cp_len: usize,
    /// Used subcarriers (even, around an empty DC).
    #[serde(default = "default_n_used")]
    pub n_used: usize,
    /// Every n-th used carrier is a pilot (0: none).
    #[serde(default = "default_pilot_spacing")]
    pub pilot_spacing: usize,
    /// Impairments: one set for every device, or one per device (none: ideal).
    #[serde(default)]
    pub impairments: Vec<Impairments>,
    /// Hardware: centre frequency, Hz.
    #[serde(default = "default_frequency")]
    pub frequency_hz: f64,
    /// Hardware: transmit gain, dB.
    #[serde(default)]
    pub tx_gain_db: f64,
    /// Hardware: receive gain, dB.
    #[serde(default)]
    pub rx_gain_db: f64,
    /// Hardware: peak amplitude of a frame (DAC full scale 1).
    #[serde(default = "default_amplitude")]
    pub amplitude: f64,
}

fn default_radio() -> String {
    "emulator".into()
}
fn default_n_fft() -> usize {
    OfdmConfig::default().n_fft
}
fn default_cp_len() -> usize {
    OfdmConfig::default().cp_len
}
fn default_n_used() -> usize {
    OfdmConfig::default().n_used
}
fn default_pilot_spacing() -> usize {
    OfdmConfig::default().pilot_spacing
}
fn default_frequency() -> f64 {
    2.45e9
}
fn default_amplitude() -> f64 {
    0.5
}

impl Default for WaveformSpec {
    fn default() -> Self {
        WaveformSpec {
            level: Level::Symbol,
            radio: default_radio(),
            correct: true,
            n_fft: default_n_fft(),
            cp_len: default_cp_len(),
            n_used: default_n_used(),
            pilot_spacing: default_pilot_spacing(),
            impairments: Vec::new(),
            frequency_hz: default_frequency(),
            tx_gain_db: 0.0,
            rx_gain_db: 0.0,
            amplitude: default_amplitude(),
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
#[serde(deny_unknown_fields)]
pub struct AllreduceSpec {
    /// Independent channel realisations (each with fresh noise and data).
    #[serde(default = "default_realisations")]
    pub realisations: usize,
    /// Values per device in one all-reduce (default: the model's hidden size, one token).
    #[serde(default)]
    pub values: Option<usize>,
}

fn default_realisations() -> usize {
    200
}

impl Default for AllreduceSpec {
    fn default() -> Self {
        AllreduceSpec {
            realisations: default_realisations(),
            values: None,
        }
    }
}

/// `[latency]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencySpec {
    /// Positions already in the KV cache when the first simulated token is decoded.
    #[serde(default = "default_past")]
    pub past_tokens: usize,
    /// Decoded tokens simulated (averaged).
    #[serde(default = "default_lat_tokens")]
    pub tokens: usize,
}

fn default_past() -> usize {
    128
}
fn default_lat_tokens() -> usize {
    2
}

impl Default for LatencySpec {
    fn default() -> Self {
        LatencySpec {
            past_tokens: default_past(),
            tokens: default_lat_tokens(),
        }
    }
}

/// `[plan]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSpec {
    /// Stochastic SCA iterations.
    #[serde(default = "default_iterations")]
    pub iterations: usize,
    /// Channel realisations of the expected MSE along the trace.
    #[serde(default = "default_validation")]
    pub validation: usize,
    /// Per-token energy budget of each device, mJ (one for all, or one per device).
    #[serde(default = "default_energy")]
    pub energy_mj: Vec<f64>,
    /// Per-token compute-latency budget, ms (none: no latency constraint).
    #[serde(default)]
    pub latency_ms: Option<f64>,
}

fn default_iterations() -> usize {
    300
}
fn default_validation() -> usize {
    128
}
fn default_energy() -> Vec<f64> {
    vec![5.0]
}

impl Default for PlanSpec {
    fn default() -> Self {
        PlanSpec {
            iterations: default_iterations(),
            validation: default_validation(),
            energy_mj: default_energy(),
            latency_ms: None,
        }
    }
}

/// `[system]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemSpec {
    /// `aircomp-tp`, `digital-tp`, `edgeshard-latency`, `edgeshard-throughput`, `lingualinked`,
    /// `lingualinked-throughput`, `mdi`, `single`, `best-single`, `even`.
    #[serde(default = "default_system")]
    pub name: System,
    /// Requests in flight (B).
    #[serde(default = "one")]
    pub samples: usize,
    /// Prompt tokens per request.
    #[serde(default = "default_sys_prompt")]
    pub prompt_tokens: usize,
    /// Generated tokens per request.
    #[serde(default = "default_sys_gen")]
    pub gen_tokens: usize,
    /// Device holding the prompt and sampling (EdgeShard's source, MDI's starter).
    #[serde(default)]
    pub source: usize,
    /// Fraction of each device's memory the model may use.
    #[serde(default = "default_fraction")]
    pub memory_fraction: f64,
    /// Hidden-state format on pipeline links: `f32`, `f16`, `int8`.
    #[serde(default = "default_wire")]
    pub wire: Wire,
    /// LinguaLinked: units each neighbour pre-loads across a boundary.
    #[serde(default)]
    pub overlap: usize,
    /// LinguaLinked: balance every this many tokens of sample 0 (0: off).
    #[serde(default)]
    pub balance_every: usize,
    /// The link between every pair of devices.
    #[serde(default)]
    pub link: LinkSpec,
    /// Links that differ (`from`, `to` set), e.g. the slow path to a cloud server.
    #[serde(default)]
    pub links: Vec<LinkSpec>,
    /// Background load on devices over simulated time.
    #[serde(default)]
    pub slowdown: Vec<Slowdown>,
    /// Also run the real model (`model.name` a GGUF or catalogue model) through the system:
    /// perplexity and agreement with its error-free run, using `[eval]`.
    #[serde(default)]
    pub perplexity: bool,
}

fn default_system() -> System {
    System::Even
}
fn default_sys_prompt() -> usize {
    32
}
fn default_sys_gen() -> usize {
    32
}
fn default_fraction() -> f64 {
    1.0
}
fn default_wire() -> Wire {
    Wire::F16
}

impl Default for SystemSpec {
    fn default() -> Self {
        SystemSpec {
            name: default_system(),
            samples: 1,
            prompt_tokens: default_sys_prompt(),
            gen_tokens: default_sys_gen(),
            source: 0,
            memory_fraction: default_fraction(),
            wire: default_wire(),
            overlap: 0,
            balance_every: 0,
            link: LinkSpec::default(),
            links: Vec::new(),
            slowdown: Vec::new(),
            perplexity: false,
        }
    }
}

/// How two devices are joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LinkType {
    /// No time, no error.
    Ideal,
    /// Fixed rate and per-message latency.
    Wired,
    /// Digital radio: `[channel]` bandwidth and SNR unless given, `[scheme]` target BLER and
    /// HARQ transmissions.
    #[default]
    Wireless,
}

/// `[system.link]` and each `[[system.links]]`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// `ideal`, `wired` or `wireless`.
    #[serde(default, rename = "type")]
    pub kind: LinkType,
    /// Sender (only in `[[system.links]]`).
    #[serde(default)]
    pub from: Option<usize>,
    /// Receiver (only in `[[system.links]]`).
    #[serde(default)]
    pub to: Option<usize>,
    /// Only this direction (default: both directions get the link).
    #[serde(default)]
    pub one_way: bool,
    /// Wired rate, Mbit/s.
    #[serde(default)]
    pub bandwidth_mbps: Option<f64>,
    /// Per-message cost, ms (wired: latency; wireless: scheduling overhead).
    #[serde(default)]
    pub latency_ms: f64,
    /// Wireless bandwidth, Hz (default `channel.bandwidth_hz`).
    #[serde(default)]
    pub bandwidth_hz: Option<f64>,
    /// Wireless SNR, dB (default `channel.snr_db`).
    #[serde(default)]
    pub snr_db: Option<f64>,
    /// Wireless transport block, bytes.
    #[serde(default)]
    pub block_bytes: Option<usize>,
}

/// A scalar or a list of scalars, as the text a CSV cell holds.
fn scalars<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    fn text<E: serde::de::Error>(v: &toml::Value) -> Result<String, E> {
        match v {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => {
                Ok(super::cell_text(v))
            }
            other => Err(E::custom(format!(
                "expected a string, number or boolean, found {}",
                other.type_str()
            ))),
        }
    }
    match toml::Value::deserialize(d)? {
        toml::Value::Array(a) => a.iter().map(text).collect(),
        v => Ok(vec![text(&v)?]),
    }
}

/// A column name or a list of them.
fn names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(
        match OneOrMany::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a column name or a list of column names")
        })? {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        },
    )
}

fn scalar_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    struct W(#[serde(deserialize_with = "scalars")] Vec<String>);
    let m = BTreeMap::<String, W>::deserialize(d)?;
    Ok(m.into_iter().map(|(k, W(v))| (k, v)).collect())
}

fn yes() -> bool {
    true
}
fn default_formats() -> Vec<String> {
    vec!["png".into(), "svg".into()]
}

/// `[[plot]]`: a line chart of the summary (mean over replications, 95 % CI error bars).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlotSpec {
    /// File name without extension, under the results directory.
    pub file: String,
    /// Title (default: "y vs x").
    #[serde(default)]
    pub title: Option<String>,
    /// Column on the x axis (a swept key such as `channel.snr_db`, or a result column).
    pub x: String,
    /// Metric on the y axis.
    pub y: String,
    /// Columns whose values tell the lines apart (a name or a list).
    #[serde(default, deserialize_with = "names")]
    pub series: Vec<String>,
    /// x-axis label (default: the column name).
    #[serde(default)]
    pub x_label: Option<String>,
    /// y-axis label (default: the metric name).
    #[serde(default)]
    pub y_label: Option<String>,
    /// Logarithmic x axis.
    #[serde(default)]
    pub log_x: bool,
    /// Logarithmic y axis.
    #[serde(default)]
    pub log_y: bool,
    /// 95 % confidence intervals over replications as error bars.
    #[serde(default = "yes")]
    pub error_bars: bool,
    /// Output formats: png, svg.
    #[serde(default = "default_formats")]
    pub formats: Vec<String>,
    /// Keep only rows whose column has one of these values: `{ "scheme.kind" = ["aircomp"] }`.
    #[serde(default, deserialize_with = "scalar_map")]
    pub filter: BTreeMap<String, Vec<String>>,
    /// Curves drawn dashed beside the results (e.g. a paper's values).
    #[serde(default)]
    pub reference: Vec<ReferenceSpec>,
}

/// A reference curve of a plot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReferenceSpec {
    /// Legend label.
    pub label: String,
    /// x values.
    pub x: Vec<f64>,
    /// y values (as many as x).
    pub y: Vec<f64>,
}

/// `[table]`: the table printed at the end of a campaign.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// Columns (default: the swept keys, the row keys and every metric).
    #[serde(default)]
    pub columns: Vec<String>,
}

/// A check that failed: the key it concerns and why.
pub type Invalid = (String, String);

fn bad<T>(key: &str, msg: impl Into<String>) -> Result<T, Invalid> {
    Err((key.to_string(), msg.into()))
}

fn positive(key: &str, v: f64) -> Result<(), Invalid> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        bad(key, format!("{v}: must be a positive number"))
    }
}

fn non_negative(key: &str, v: f64) -> Result<(), Invalid> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        bad(key, format!("{v}: must be ≥ 0"))
    }
}

fn at_least_one(key: &str, v: usize) -> Result<(), Invalid> {
    if v >= 1 {
        Ok(())
    } else {
        bad(key, "0: must be at least 1")
    }
}

/// A path as written in the experiment file, resolved against the directory of the file that
/// wrote it.
pub fn relative_to(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// The devices of a run, resolved.
#[derive(Debug, Clone)]
pub struct Devices {
    /// Profile of each device.
    pub profiles: Vec<DeviceProfile>,
    /// Normalised model shares.
    pub shares: Vec<f64>,
}

impl Spec {
    /// Number of devices K.
    pub fn device_count(&self) -> usize {
        let d = &self.devices;
        d.count.unwrap_or(if d.profiles.len() > 1 {
            d.profiles.len()
        } else {
            self.model.shares.as_ref().map_or(1, |s| s.len())
        })
    }

    /// The library (shipped + `profiles_file` + inline) and each device's profile; `dir(key)`
    /// gives the directory relative paths at `key` are taken from.
    pub fn devices(&self, dir: &dyn Fn(&str) -> PathBuf) -> Result<Devices, Invalid> {
        let d = &self.devices;
        let k = self.device_count();
        if k == 0 {
            return bad("devices.count", "0: need at least one device");
        }
        let mut lib = Profiles::builtin();
        if let Some(f) = &d.profiles_file {
            let path = relative_to(&dir("devices.profiles_file"), f);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                (
                    "devices.profiles_file".to_string(),
                    format!("cannot read '{}': {e}", path.display()),
                )
            })?;
            let more = Profiles::parse(&text, &path.display().to_string())
                .map_err(|e| ("devices.profiles_file".to_string(), e.to_string()))?;
            lib.extend(more);
        }
        for (name, p) in &d.custom {
            p.validate("inline profile", name)
                .map_err(|e| (format!("devices.custom.{name}"), e.to_string()))?;
            lib.0.insert(name.clone(), p.clone());
        }
        let names: Vec<&String> = match d.profiles.len() {
            0 => return bad("devices.profiles", "empty: name at least one profile"),
            1 => vec![&d.profiles[0]; k],
            n if n == k => d.profiles.iter().collect(),
            n => {
                return bad(
                    "devices.profiles",
                    format!("{n} profiles for {k} devices (give one for all, or one per device)"),
                )
            }
        };
        let mut profiles = Vec::with_capacity(k);
        for (i, n) in names.iter().enumerate() {
            let key = if d.profiles.len() == 1 {
                "devices.profiles[0]".to_string()
            } else {
                format!("devices.profiles[{i}]")
            };
            let p = lib.get(n).map_err(|_| {
                (
                    key,
                    format!(
                        "'{n}' is not in the device library (known: {}; add it under [devices.custom.{n}] or in a profiles_file)",
                        lib.0.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                )
            })?;
            profiles.push(p.clone());
        }
        let shares = match &self.model.shares {
            None => vec![1.0 / k as f64; k],
            Some(s) if s.len() != k => {
                return bad(
                    "model.shares",
                    format!("{} shares for {k} devices", s.len()),
                )
            }
            Some(s) => {
                for (i, x) in s.iter().enumerate() {
                    non_negative(&format!("model.shares[{i}]"), *x)?;
                }
                let sum: f64 = s.iter().sum();
                if sum <= 0.0 {
                    return bad("model.shares", "all zero: some device must hold the model");
                }
                s.iter().map(|x| x / sum).collect()
            }
        };
        Ok(Devices { profiles, shares })
    }

    /// Large-scale gain of each device, linear.
    pub fn gains(&self, k: usize) -> Result<Vec<f64>, Invalid> {
        let g = &self.channel.gains_db;
        let db = match g.len() {
            0 => vec![0.0; k],
            1 => vec![g[0]; k],
            n if n == k => g.clone(),
            n => {
                return bad(
                    "channel.gains_db",
                    format!("{n} gains for {k} devices (give one for all, or one per device)"),
                )
            }
        };
        for (i, x) in db.iter().enumerate() {
            if !x.is_finite() {
                return bad(&format!("channel.gains_db[{i}]"), "must be finite");
            }
        }
        Ok(db.iter().map(|x| 10f64.powf(x / 10.0)).collect())
    }

    /// The waveform-level set-up for `k` devices (None at symbol level); the hardware radio is
    /// opened by the run.
    pub fn waveform_level(&self, k: usize) -> Result<Option<WaveformLevel>, Invalid> {
        let w = &self.waveform;
        if w.level == Level::Symbol {
            // the radio serves the waveform-level points (a sweep may hold both levels)
            return Ok(None);
        }
        if !matches!(self.kind, Kind::Allreduce | Kind::Eval | Kind::Latency) {
            return bad(
                "waveform.level",
                "the waveform level applies to kinds allreduce, eval and latency",
            );
        }
        if self.scheme.kind != SchemeKind::Aircomp {
            return bad(
                "waveform.level",
                format!(
                    "the waveform level carries AirComp: set scheme.kind = \"aircomp\" (not {:?})",
                    self.scheme.kind
                ),
            );
        }
        if self.scheme.design != Design::Zf {
            return bad(
                "scheme.design",
                "the waveform level designs zero-forcing per subcarrier: set \"zf\"",
            );
        }
        for (key, v) in [
            ("channel.rx_antennas", self.channel.rx_antennas),
            ("channel.tx_antennas", self.channel.tx_antennas),
            ("channel.streams", self.channel.streams),
        ] {
            if v != 1 {
                return bad(
                    key,
                    format!("{v}: the waveform level has single-antenna devices and AP (set 1)"),
                );
            }
        }
        if self.channel.csi_error_var != 0.0 {
            return bad(
                "channel.csi_error_var",
                "the waveform level estimates the channels itself (waveform.correct): set 0",
            );
        }
        if !w.is_hardware() && w.radio.trim().is_empty() {
            return bad(
                "waveform.radio",
                "empty: \"emulator\" or SoapySDR device arguments",
            );
        }
        if w.is_hardware() && !w.radio.contains('=') {
            return bad(
                "waveform.radio",
                format!(
                    "'{}': \"emulator\" or SoapySDR device arguments such as \"driver=uhd\"",
                    w.radio
                ),
            );
        }
        if w.is_hardware() && !cfg!(feature = "soapy") {
            return bad(
                "waveform.radio",
                format!(
                    "'{}': this airinfer was built without SoapySDR; rebuild with \
                     `cargo build --release --features soapy` (needs libsoapysdr-dev)",
                    w.radio
                ),
            );
        }
        positive("waveform.frequency_hz", w.frequency_hz)?;
        for (key, v) in [
            ("waveform.tx_gain_db", w.tx_gain_db),
            ("waveform.rx_gain_db", w.rx_gain_db),
        ] {
            if !v.is_finite() {
                return bad(key, "must be finite");
            }
        }
        if !(w.amplitude > 0.0 && w.amplitude <= 1.0) {
            return bad(
                "waveform.amplitude",
                format!("{}: must be in (0, 1]", w.amplitude),
            );
        }
        let ofdm = OfdmConfig {
            n_fft: w.n_fft,
            cp_len: w.cp_len,
            n_used: w.n_used,
            pilot_spacing: w.pilot_spacing,
            sample_rate_hz: self.channel.bandwidth_hz,
        };
        if let Err(e) = ofdm.validate() {
            return bad("waveform", e.to_string());
        }
        let devices = match w.impairments.len() {
            0 => vec![Impairments::default(); k],
            1 => vec![w.impairments[0].clone(); k],
            n if n == k => w.impairments.clone(),
            n => {
                return bad(
                    "waveform.impairments",
                    format!("{n} sets for {k} devices (one for all, or one per device)"),
                )
            }
        };
        for (i, d) in w.impairments.iter().enumerate() {
            if let Err(e) = d.validate() {
                return bad(&format!("waveform.impairments[{i}]"), e.to_string());
            }
            if let Some(t) = &d.tdl {
                if let Err(e) =
                    TdlChannel::new(t.profile, t.delay_spread_s, self.channel.bandwidth_hz)
                {
                    return bad(&format!("waveform.impairments[{i}].tdl"), e.to_string());
                }
            }
        }
        Ok(Some(WaveformLevel {
            ofdm,
            devices,
            correct: w.correct,
            amplitude: w.amplitude,
            radio: None,
        }))
    }

    /// The radio configuration of the scheme.
    pub fn radio(&self, k: usize) -> Result<RadioConfig, Invalid> {
        let c = &self.channel;
        let s = &self.scheme;
        at_least_one("channel.rx_antennas", c.rx_antennas)?;
        at_least_one("channel.tx_antennas", c.tx_antennas)?;
        at_least_one("channel.streams", c.streams)?;
        if c.streams > c.rx_antennas.min(c.tx_antennas) {
            return bad(
                "channel.streams",
                format!(
                    "{}: need L ≤ min(rx_antennas = {}, tx_antennas = {})",
                    c.streams, c.rx_antennas, c.tx_antennas
                ),
            );
        }
        if !c.snr_db.is_finite() {
            return bad("channel.snr_db", "must be finite");
        }
        positive("channel.bandwidth_hz", c.bandwidth_hz)?;
        positive("channel.coherence_time_s", c.coherence_time_s)?;
        non_negative("channel.round_overhead_s", c.round_overhead_s)?;
        non_negative("channel.csi_error_var", c.csi_error_var)?;
        if let Some(f) = c.doppler_hz {
            non_negative("channel.doppler_hz", f)?;
        }
        if let Some(kf) = c.rician_k_db {
            if !kf.is_finite() {
                return bad("channel.rician_k_db", "must be finite");
            }
        }
        at_least_one("scheme.quant_block", s.quant_block)?;
        at_least_one("scheme.block_values", s.block_values)?;
        if !(0.0..1.0).contains(&s.target_bler) {
            return bad(
                "scheme.target_bler",
                format!("{}: must be in [0, 1)", s.target_bler),
            );
        }
        if s.max_tx == 0 {
            return bad("scheme.max_tx", "0: must be at least 1");
        }
        Ok(RadioConfig {
            rx_antennas: c.rx_antennas,
            tx_antennas: c.tx_antennas,
            streams: c.streams,
            small_scale: match c.rician_k_db {
                None => SmallScale::Rayleigh,
                Some(k) => SmallScale::Rician {
                    k_factor_db: k,
                    aoa_deg: vec![],
                },
            },
            time: match c.doppler_hz {
                Some(f) => TimeModel::Jakes { doppler_hz: f },
                None => TimeModel::Block {
                    coherence_time_s: c.coherence_time_s,
                },
            },
            snr_db: c.snr_db,
            gains: self.gains(k)?,
            bandwidth_hz: c.bandwidth_hz,
            round_overhead_s: c.round_overhead_s,
            csi_error_var: c.csi_error_var,
            quantiser: match s.quantiser {
                QuantSpec::Fp16 => Quantiser::Fp16,
                QuantSpec::Bf16 => Quantiser::Bf16,
                QuantSpec::Int8 => Quantiser::Int8 {
                    block: s.quant_block,
                },
                QuantSpec::Int4 => Quantiser::Int4 {
                    block: s.quant_block,
                },
            },
            access: s.access,
            block_values: s.block_values,
            target_bler: s.target_bler,
            max_tx: s.max_tx,
            ..RadioConfig::default()
        })
    }

    /// The links of a `systems` run among `k` devices.
    pub fn network(&self, k: usize) -> Result<Network, Invalid> {
        let y = &self.system;
        let link = |l: &LinkSpec, key: &str| -> Result<Link, Invalid> {
            let link = match l.kind {
                LinkType::Ideal => Link::Ideal,
                LinkType::Wired => {
                    let mbps = l.bandwidth_mbps.ok_or_else(|| {
                        (
                            format!("{key}.bandwidth_mbps"),
                            "a wired link needs its rate".to_string(),
                        )
                    })?;
                    positive(&format!("{key}.bandwidth_mbps"), mbps)?;
                    non_negative(&format!("{key}.latency_ms"), l.latency_ms)?;
                    Link::Wired {
                        bandwidth: mbps * 1e6 / 8.0,
                        latency_s: l.latency_ms * 1e-3,
                    }
                }
                LinkType::Wireless => {
                    let bw = l.bandwidth_hz.unwrap_or(self.channel.bandwidth_hz);
                    positive(&format!("{key}.bandwidth_hz"), bw)?;
                    non_negative(&format!("{key}.latency_ms"), l.latency_ms)?;
                    let snr = l.snr_db.unwrap_or(self.channel.snr_db);
                    if !snr.is_finite() {
                        return bad(&format!("{key}.snr_db"), "must be finite");
                    }
                    Link::Wireless {
                        bandwidth_hz: bw,
                        snr_db: snr,
                        bler: Default::default(),
                        target_bler: self.scheme.target_bler,
                        max_tx: self.scheme.max_tx,
                        block_bytes: l.block_bytes.unwrap_or(1024),
                        overhead_s: l.latency_ms * 1e-3,
                    }
                }
            };
            link.validate().map_err(|e| (key.to_string(), e))?;
            Ok(link)
        };
        if y.link.from.is_some() || y.link.to.is_some() {
            return bad(
                "system.link",
                "the default link joins every pair: put from/to links in [[system.links]]",
            );
        }
        let mut net = Network::uniform(k, link(&y.link, "system.link")?);
        for (i, l) in y.links.iter().enumerate() {
            let key = format!("system.links[{i}]");
            let (Some(a), Some(b)) = (l.from, l.to) else {
                return bad(&key, "needs from and to (device indices)");
            };
            if a >= k || b >= k || a == b {
                return bad(
                    &key,
                    format!("from = {a}, to = {b}: two different devices of 0..{k}"),
                );
            }
            let x = link(l, &key)?;
            net.links[a][b] = x.clone();
            if !l.one_way {
                net.links[b][a] = x;
            }
        }
        Ok(net)
    }

    /// The cost preset named by `model.name` (latency, allreduce, plan).
    pub fn preset(&self) -> Result<LlamaConfig, Invalid> {
        presets::by_name(&self.model.name).ok_or_else(|| {
            (
                "model.name".to_string(),
                format!(
                    "'{}' is not a cost preset (known: {})",
                    self.model.name,
                    presets::all()
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
    }

    /// The GGUF of an eval run: a catalogue name (None: fetched when the run starts) or an
    /// existing file.
    pub fn model_file(&self, dir: &dyn Fn(&str) -> PathBuf) -> Result<Option<PathBuf>, Invalid> {
        let n = &self.model.name;
        if crate::assets::MODELS
            .iter()
            .any(|a| a.names.contains(&n.as_str()))
        {
            return Ok(None);
        }
        let p = relative_to(&dir("model.name"), n);
        if p.is_file() {
            Ok(Some(p))
        } else {
            bad(
                "model.name",
                format!(
                    "no such model file '{}' (and not a catalogue model: {})",
                    p.display(),
                    crate::assets::MODELS
                        .iter()
                        .map(|a| a.names[0])
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        }
    }

    /// The evaluation text: a catalogue name (None) or an existing file.
    pub fn text_file(&self, dir: &dyn Fn(&str) -> PathBuf) -> Result<Option<PathBuf>, Invalid> {
        let n = &self.eval.text;
        if crate::assets::TEXTS
            .iter()
            .any(|a| a.names.contains(&n.as_str()))
        {
            return Ok(None);
        }
        let p = relative_to(&dir("eval.text"), n);
        if p.is_file() {
            Ok(Some(p))
        } else {
            bad(
                "eval.text",
                format!(
                    "no such text file '{}' (and not a catalogue text: lee-news, wikitext-2)",
                    p.display()
                ),
            )
        }
    }

    /// Every check that needs no model weights.
    pub fn validate(&self, dir: &dyn Fn(&str) -> PathBuf) -> Result<(), Invalid> {
        at_least_one("replications", self.replications)?;
        let devices = self.devices(dir)?;
        let k = devices.profiles.len();
        self.radio(k)?;
        if self.kind == Kind::Systems && self.system.perplexity {
            self.model_file(dir)?;
            self.text_file(dir)?;
        } else if self.kind != Kind::Eval {
            self.preset()?;
            positive("model.weight_bits", self.model.weight_bits)?;
        }
        self.waveform_level(k)?;
        match self.kind {
            Kind::Eval => {
                self.model_file(dir)?;
                self.text_file(dir)?;
                let e = &self.eval;
                if e.ctx_tokens < 2 {
                    return bad(
                        "eval.ctx_tokens",
                        format!("{}: need at least 2", e.ctx_tokens),
                    );
                }
                at_least_one("eval.prompt_tokens", e.prompt_tokens)?;
                at_least_one("eval.gen_tokens", e.gen_tokens)?;
                if let Some(c) = e.chunks {
                    at_least_one("eval.chunks", c)?;
                }
                if let Some(s) = e.sliding_stride {
                    at_least_one("eval.sliding_stride", s)?;
                }
            }
            Kind::Latency => {
                at_least_one("latency.tokens", self.latency.tokens)?;
            }
            Kind::Systems => {
                let y = &self.system;
                at_least_one("system.samples", y.samples)?;
                at_least_one("system.prompt_tokens", y.prompt_tokens)?;
                at_least_one("system.gen_tokens", y.gen_tokens)?;
                if y.source >= k {
                    return bad(
                        "system.source",
                        format!("{}: there are {k} devices (0..{k})", y.source),
                    );
                }
                if !(y.memory_fraction > 0.0 && y.memory_fraction <= 1.0) {
                    return bad(
                        "system.memory_fraction",
                        format!("{}: must be in (0, 1]", y.memory_fraction),
                    );
                }
                if y.balance_every > 0 && y.overlap == 0 {
                    return bad(
                        "system.balance_every",
                        "the load balancer moves boundaries inside the overlap: set system.overlap ≥ 1",
                    );
                }
                for (i, s) in y.slowdown.iter().enumerate() {
                    if s.device >= k {
                        return bad(
                            &format!("system.slowdown[{i}].device"),
                            format!("{}: there are {k} devices", s.device),
                        );
                    }
                    positive(&format!("system.slowdown[{i}].factor"), s.factor)?;
                    non_negative(&format!("system.slowdown[{i}].from_s"), s.from_s)?;
                }
                self.network(k)?;
            }
            Kind::Allreduce => {
                at_least_one("allreduce.realisations", self.allreduce.realisations)?;
                if let Some(v) = self.allreduce.values {
                    at_least_one("allreduce.values", v)?;
                }
            }
            Kind::Plan => {
                let p = &self.plan;
                at_least_one("plan.iterations", p.iterations)?;
                at_least_one("plan.validation", p.validation)?;
                match p.energy_mj.len() {
                    1 => {}
                    n if n == k => {}
                    n => {
                        return bad(
                            "plan.energy_mj",
                            format!("{n} budgets for {k} devices (one for all, or one per device)"),
                        )
                    }
                }
                for (i, e) in p.energy_mj.iter().enumerate() {
                    non_negative(&format!("plan.energy_mj[{i}]"), *e)?;
                }
                if let Some(l) = p.latency_ms {
                    positive("plan.latency_ms", l)?;
                }
            }
        }
        for (i, p) in self.plot.iter().enumerate() {
            if p.file.is_empty() || p.file.contains(['/', '\\']) || p.file.starts_with('.') {
                return bad(
                    &format!("plot[{i}].file"),
                    format!(
                        "'{}': a plain file name without directories or extension",
                        p.file
                    ),
                );
            }
            for (j, f) in p.formats.iter().enumerate() {
                if f != "png" && f != "svg" {
                    return bad(
                        &format!("plot[{i}].formats[{j}]"),
                        format!("'{f}': expected png or svg"),
                    );
                }
            }
            for (j, r) in p.reference.iter().enumerate() {
                if r.x.len() != r.y.len() || r.x.is_empty() {
                    return bad(
                        &format!("plot[{i}].reference[{j}]"),
                        format!(
                            "{} x values and {} y values: need as many, at least one",
                            r.x.len(),
                            r.y.len()
                        ),
                    );
                }
            }
        }
        Ok(())
    }
}
