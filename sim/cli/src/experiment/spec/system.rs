//! `[system]` (`kind = "systems"`) and its links.

use airinfer_sim::schemes::pipeline::{Medium, PlanObjective, Return, Split, Wire};
use airinfer_sim::systems::{Slowdown, System};
use serde::{Deserialize, Serialize};

/// `[system]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SystemSpec {
    /// `aircomp-tp`, `digital-tp`, `edgeshard-latency`, `edgeshard-throughput`, `lingualinked`,
    /// `lingualinked-throughput`, `mdi`, `single`, `best-single`, `even`.
    pub name: System,
    /// Requests in flight (B).
    pub samples: usize,
    /// Prompt tokens per request.
    pub prompt_tokens: usize,
    /// Generated tokens per request.
    pub gen_tokens: usize,
    /// Device holding the prompt and sampling (EdgeShard's source, MDI's starter).
    pub source: usize,
    /// Fraction of each device's memory the model may use.
    pub memory_fraction: f64,
    /// Hidden-state format on pipeline links: `f32`, `f16`, `int8`.
    pub wire: Wire,
    /// LinguaLinked: units each neighbour pre-loads across a boundary.
    pub overlap: usize,
    /// LinguaLinked: balance every this many tokens of sample 0 (0: off).
    pub balance_every: usize,
    /// The link between every pair of devices.
    pub link: LinkSpec,
    /// Links that differ (`from`, `to` set), e.g. the slow path to a cloud server.
    pub links: Vec<LinkSpec>,
    /// Device positions and path loss: when given, every wireless link's mean SNR comes from
    /// the pair's distance (`[system.geometry]`; an explicit `snr_db` on a `[[system.links]]`
    /// entry still wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geometry: Option<GeometrySpec>,
    /// Background load on devices over simulated time.
    pub slowdown: Vec<Slowdown>,
    /// Also run the real model (`model.name` a GGUF or catalogue model) through the system:
    /// perplexity and agreement with its error-free run, using `[eval]`.
    pub perplexity: bool,
    /// Pipeline systems: samples per micro-batch (0: ⌈samples / stages⌉, filling the pipeline
    /// with one micro-batch per stage; 1: each sample alone, as MDI-LLM and LinguaLinked run).
    pub micro_batch: usize,
    /// What the pipeline planners minimise: `"decode"` (one decode step, the papers'),
    /// `"ttft"` (time to first token), `"request"` (first token + every later step) or
    /// `{ mix = w }` (w · TTFT + (1 − w) · decode step).
    pub objective: PlanObjective,
    /// What returns to the source after a pipeline's last stage: `"token"` (4 bytes) or
    /// `"logits"` (the vocabulary in the wire format; the source samples).
    #[serde(rename = "return")]
    pub ret: Return,
    /// Where pipelines may cut the model: `"block"` (between blocks) or `"half"` (also between
    /// a block's attention and MLP halves, with the block's input on a residual link; the
    /// LinguaLinked planners and the simple splits handle it, EdgeShard's refuse it).
    pub split: Split,
    /// Pipeline systems: start with the weights in storage, each device reading its units at
    /// its profile's `storage_bandwidth` while it computes (time to first token includes it).
    pub cold_start: bool,
    /// How the wireless pipeline links share the air: `"dedicated"` (a channel per directed
    /// link, the papers' view), `"tdma"` (one channel, the access point scheduling one transfer
    /// at a time) or `"csma"` (one 802.11 channel, transfers contending with CSMA/CA). Tensor
    /// parallelism's access is `[scheme] access`.
    #[serde(skip_serializing_if = "is_dedicated")]
    pub medium: Medium,
}

fn is_dedicated(m: &Medium) -> bool {
    *m == Medium::Dedicated
}

impl Default for SystemSpec {
    fn default() -> Self {
        SystemSpec {
            name: System::Even,
            samples: 1,
            prompt_tokens: 32,
            gen_tokens: 32,
            source: 0,
            memory_fraction: 1.0,
            wire: Wire::F16,
            overlap: 0,
            balance_every: 0,
            link: LinkSpec::default(),
            links: Vec::new(),
            geometry: None,
            slowdown: Vec::new(),
            perplexity: false,
            micro_batch: 0,
            objective: PlanObjective::Decode,
            ret: Return::Token,
            split: Split::Block,
            cold_start: false,
            medium: Medium::Dedicated,
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
#[serde(default, deny_unknown_fields)]
pub struct LinkSpec {
    /// `ideal`, `wired` or `wireless`.
    #[serde(rename = "type")]
    pub kind: LinkType,
    /// Sender (only in `[[system.links]]`).
    pub from: Option<usize>,
    /// Receiver (only in `[[system.links]]`).
    pub to: Option<usize>,
    /// Only this direction (default: both directions get the link).
    pub one_way: bool,
    /// Wired rate, Mbit/s.
    pub bandwidth_mbps: Option<f64>,
    /// Per-message delay, ms (wired: propagation and switching; wireless: scheduling): it
    /// delays a message without occupying the link.
    pub latency_ms: f64,
    /// Wireless bandwidth, Hz (default `channel.bandwidth_hz`).
    pub bandwidth_hz: Option<f64>,
    /// Wireless SNR, dB (default `channel.snr_db`, or the pair's from `[system.geometry]`);
    /// with `fading`, the mean SNR.
    pub snr_db: Option<f64>,
    /// Wireless transport block, bytes.
    pub block_bytes: Option<usize>,
    /// Wireless small-scale fading: `"rayleigh"` or `"rician"` (default: none, the SNR is
    /// `snr_db` throughout). A transmission starting at simulated time t sees `snr_db +
    /// 10·log10|h(t)|²` (h of unit mean power, one coefficient per pair of devices for both
    /// directions); link adaptation picks the MCS for that SNR (perfect CSI at the
    /// transmitter) and HARQ draws at its BLER. Planners use the rate averaged over the
    /// fading. The real model's hand-offs (`perplexity = true`) draw each message's SNR
    /// independently.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fading: Option<FadingType>,
    /// Rician K-factor, dB (line-of-sight power over scattered power; `fading = "rician"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k_factor_db: Option<f64>,
    /// Block fading: h is constant for this long and independent across intervals, ms. With
    /// neither this nor `doppler_hz`, the `[channel]`'s time model: Jakes at
    /// `channel.doppler_hz` when that is set, else blocks of `channel.coherence_time_s`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coherence_time_ms: Option<f64>,
    /// Jakes fading: h evolves continuously with correlation J₀(2π f_D τ) over a lag τ, f_D
    /// this maximum Doppler frequency, Hz (instead of `coherence_time_ms`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doppler_hz: Option<f64>,
}

/// Small-scale fading of a wireless `[system.link]` / `[[system.links]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FadingType {
    /// h ~ CN(0, 1): |h|² exponential.
    Rayleigh,
    /// A fixed line of sight plus scattering, `k_factor_db` between them.
    Rician,
}

/// `[system.geometry]`: where the devices are. Each pair's mean SNR is `tx_snr_db − pl0_db −
/// 10·exponent·log10(d / d0_m) + X`, d the pair's distance and X ~ N(0, shadowing_db²) dB
/// (log-normal shadowing) drawn once per pair (the same both ways) from the file's `seed` (a
/// fixed deployment: replications and sweep points share it). It applies to every wireless link,
/// `[system.link]` and the `[[system.links]]` without their own `snr_db`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeometrySpec {
    /// Position `[x, y]` of each device, m (one per device).
    pub positions_m: Vec<[f64; 2]>,
    /// SNR at unit large-scale gain (transmit power over the receiver's noise, before path
    /// loss), dB.
    pub tx_snr_db: f64,
    /// Path-loss exponent (2: free space; 3–4: indoor, urban).
    pub exponent: f64,
    /// Path loss at the reference distance `d0_m`, dB.
    pub pl0_db: f64,
    /// Reference distance, m.
    #[serde(default = "one_metre")]
    pub d0_m: f64,
    /// Shadowing standard deviation, dB (0: none).
    #[serde(default)]
    pub shadowing_db: f64,
}

fn one_metre() -> f64 {
    1.0
}
