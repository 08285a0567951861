//! `[system]` (`kind = "systems"`) and its links.

use airinfer_sim::schemes::pipeline::{PlanObjective, Return, Split, Wire};
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
            slowdown: Vec::new(),
            perplexity: false,
            micro_batch: 0,
            objective: PlanObjective::Decode,
            ret: Return::Token,
            split: Split::Block,
            cold_start: false,
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
    /// Wireless SNR, dB (default `channel.snr_db`).
    pub snr_db: Option<f64>,
    /// Wireless transport block, bytes.
    pub block_bytes: Option<usize>,
}
