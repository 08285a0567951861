//! Pipeline parallelism: a model split by layers into stages on devices, the hidden state handed
//! from stage to stage over links, timed by the discrete-event queue.
//!
//! Two halves share the stage list ([`Assignment`]) and the links ([`Network`]):
//!
//! * **Numbers** ([`PipelineForward`]): the real model runs stage by stage
//!   ([`Model::embed`] on the first, [`Model::run_layers`] on each, [`Model::head`] on the last),
//!   each stage with its own KV caches (one [`Session`] per stage), and every hand-off crosses
//!   its link: quantised to the wire format (f32, fp16, int8) and, on a wireless link, sent block
//!   by block with link adaptation and HARQ, a block still lost after the last transmission
//!   arriving as zeros. With f32 on error-free links the logits are bit for bit those of one
//!   device.
//! * **Time** ([`simulate`]): B samples (requests) each prefill a prompt and generate tokens,
//!   grouped into micro-batches ([`Workload::micro_batch`]; by default ⌈B / stages⌉ samples,
//!   one micro-batch per stage); a micro-batch's step visits the stages in order as one job per
//!   stage (the weights read once for its samples, each sample attending over its own KV
//!   cache), its tokens (or logits, [`Return`]) returning to the source device to start the
//!   next step (a ring when the source also holds the head, as in MDI-LLM). Each device and
//!   each directed link is a first-come-first-served resource: a job starts at
//!   `max(arrival, resource free)` and events are processed in time order through
//!   [`EventQueue`], so at most one job runs per resource and ties resolve deterministically.
//!   Compute is the roofline of the device profile on `llm::cost` (per unit: embedding rows,
//!   blocks with their KV reads for the samples' current context, head), multiplied by the
//!   device's background-load factor at the job's start; a device also spends its profile's
//!   per-message cost (fixed + per byte) on every message it sends or receives, before and
//!   after the stage's compute. A transfer of b bytes occupies its link for `b / bandwidth`
//!   (wired) or the realised HARQ airtime (wireless), and arrives the link's latency (wired)
//!   or fixed cost (wireless) later: that delay does not hold up the messages behind it. With
//!   several micro-batches in flight the stages overlap: MDI-LLM's *recurrent pipeline
//!   parallelism* (one sample per micro-batch), EdgeShard's pipelined throughput mode.
//!
//! A [`Balancer`] may move stage boundaries while the run goes on (LinguaLinked's runtime load
//! balancer); a sample adopts the new stages at its next step, and the KV caches of every moved
//! unit are shipped over the link between the old and the new device at that moment.
//!
//! [`Model::embed`]: airinfer_llm::model::Model::embed
//! [`Model::run_layers`]: airinfer_llm::model::Model::run_layers
//! [`Model::head`]: airinfer_llm::model::Model::head
//! [`Session`]: airinfer_llm::model::Session

use crate::des::{EventQueue, Time};
use crate::device::{DeviceProfile, Precision};
use crate::links::handoff::FadingState;
pub use crate::links::handoff::{HandoffLink as Link, Network, Wire};
pub use crate::links::medium::Medium;
use crate::links::medium::SharedAir;
use airinfer_llm::config::LlamaConfig;
use airinfer_llm::cost::{block_cost, head_cost, Shard, WeightFormat};
use airinfer_phy::rng;
use airinfer_plan::pipeline::{blocks_of, Assignment, PartitionError, PartitionProblem};
use serde::Serialize;
use std::collections::BTreeMap;
use std::ops::Range;

/// A background-load factor per device, piecewise constant in simulated time: `(from_s,
/// factor)` steps in increasing time; compute started at t runs `factor(t)` times slower.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Background {
    /// Steps of each device (empty: factor 1 throughout).
    pub steps: Vec<Vec<(f64, f64)>>,
}

impl Background {
    /// Factor of device `d` at `t_s`.
    pub fn factor(&self, d: usize, t_s: f64) -> f64 {
        self.steps
            .get(d)
            .and_then(|s| s.iter().rev().find(|(from, _)| *from <= t_s))
            .map_or(1.0, |x| x.1)
    }
}

/// What returns to the source device after the last stage, per sample and step. (A hidden
/// state returns when the plan puts the head on the source, as MDI-LLM's ring does: the last
/// hand-off carries it.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Return {
    /// The sampled token id (4 bytes): the last stage samples.
    #[default]
    Token,
    /// The logits of the last position, in the hand-off wire format: the source samples.
    Logits,
}

/// What the planners optimise: the time of one decode step (the papers' objective), the time
/// to first token, the time of a whole request (first token plus every later step), or a mix.
/// Stage and transfer times are linear in the per-unit times and bytes, so every mix is one
/// partition problem whose unit times and hand-off bytes are the weighted sums (the weights
/// normalised to 1, so that the per-message latency is counted once).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PlanObjective {
    /// One decode step at the workload's mean context.
    #[default]
    Decode,
    /// The prefill of the prompt (time to first token).
    Ttft,
    /// Time to first token plus `gen_tokens − 1` decode steps.
    Request,
    /// `w · TTFT + (1 − w) · decode step`, w in [0, 1].
    Mix(f64),
}

impl PlanObjective {
    /// Weight of the prefill in the normalised mix for `w`.
    pub fn ttft_weight(self, w: &Workload) -> f64 {
        match self {
            PlanObjective::Decode => 0.0,
            PlanObjective::Ttft => 1.0,
            PlanObjective::Request => 1.0 / w.gen_tokens.max(1) as f64,
            PlanObjective::Mix(x) => x,
        }
    }
}

/// Where the model may be cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Between blocks: units are the embedding, the blocks, the head.
    #[default]
    Block,
    /// Also between a block's attention and MLP halves (LinguaLinked cuts its graph anywhere):
    /// units are the embedding, then per block its attention half (sends the attention branch
    /// on) and its MLP half (adds the branch and the block's input to the residual stream, runs
    /// the MLP), then the head. The block's input reaches the MLP half over a residual link
    /// from the unit before the attention half.
    Half,
}

/// How the timing model sees the model and the devices.
#[derive(Debug, Clone)]
pub struct CostSetup {
    /// Architecture.
    pub cfg: LlamaConfig,
    /// Weight storage.
    pub weights: WeightFormat,
    /// Arithmetic.
    pub precision: Precision,
    /// Bytes per cached K/V value (2: f16 caches, as llama.cpp keeps them).
    pub kv_bytes: f64,
    /// Device profiles.
    pub profiles: Vec<DeviceProfile>,
    /// Hidden-state wire format.
    pub wire: Wire,
    /// What returns to the source after the last stage.
    pub ret: Return,
    /// Where the model may be cut.
    pub split: Split,
}

/// What a unit of the model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// The token embedding.
    Embed,
    /// A whole block.
    Block(usize),
    /// A block's attention half.
    Attn(usize),
    /// A block's MLP half.
    Mlp(usize),
    /// Final norm and output head.
    Head,
}

impl CostSetup {
    /// Units of the model: embedding, blocks (or half-blocks), head.
    pub fn n_units(&self) -> usize {
        match self.split {
            Split::Block => self.cfg.n_layer + 2,
            Split::Half => 2 * self.cfg.n_layer + 2,
        }
    }

    /// What unit `u` is.
    pub fn unit(&self, u: usize) -> Unit {
        let n = self.n_units();
        if u == 0 {
            Unit::Embed
        } else if u + 1 >= n {
            Unit::Head
        } else {
            match self.split {
                Split::Block => Unit::Block(u - 1),
                Split::Half if u % 2 == 1 => Unit::Attn((u - 1) / 2),
                Split::Half => Unit::Mlp((u - 1) / 2),
            }
        }
    }

    /// Blocks (layer indices) touched by a range of units.
    pub fn layers_of(&self, units: &Range<usize>) -> Range<usize> {
        match self.split {
            Split::Block => blocks_of(self.cfg.n_layer, units),
            Split::Half => {
                let l = self.cfg.n_layer;
                let a = (units.start.max(1) - 1) / 2;
                let b = units.end.saturating_sub(1).div_ceil(2).min(l);
                a.min(l)..b.max(a.min(l))
            }
        }
    }

    /// The residual links of the unit graph, `(from, to)`, each carrying a hidden state: with
    /// half-blocks, block l's input goes from the unit before its attention half straight to
    /// its MLP half.
    pub fn residual_links(&self) -> Vec<(usize, usize)> {
        match self.split {
            Split::Block => Vec::new(),
            Split::Half => (0..self.cfg.n_layer).map(|l| (2 * l, 2 * l + 2)).collect(),
        }
    }

    /// Roofline time of unit `u` on device `d` for `t` new tokens after `past` cached ones.
    pub fn unit_time_s(&self, d: usize, u: usize, t: usize, past: usize) -> f64 {
        self.unit_time_batch_s(d, u, 1, t, past)
    }

    /// Roofline time of unit `u` on device `d` for a micro-batch of `b` samples, each with `t`
    /// new tokens after `past` cached ones: the weights are read once for the batch, every
    /// sample attends over its own KV cache (b × the per-sample FLOPs and KV traffic), the head
    /// computes one row of logits per sample.
    pub fn unit_time_batch_s(&self, d: usize, u: usize, b: usize, t: usize, past: usize) -> f64 {
        self.unit_time_groups_s(d, u, &[(b, t, past)])
    }

    /// Roofline time of unit `u` on device `d` for a micro-batch of mixed samples: `groups`
    /// lists `(count, t, past)`, `count` samples each with `t` new tokens after `past` cached
    /// ones (a prefill and decode steps in one batch, as continuous batching runs them). The
    /// weights are read once; FLOPs and KV traffic add up over the samples; the head computes
    /// one row per sample.
    pub fn unit_time_groups_s(&self, d: usize, u: usize, groups: &[(usize, usize, usize)]) -> f64 {
        let c = &self.cfg;
        let p = &self.profiles[d];
        let samples: usize = groups.iter().map(|g| g.0).sum();
        // Σ over the groups of count × (per-sample FLOPs, per-sample KV bytes) of `f`
        let per = |f: &dyn Fn(usize, usize) -> (f64, f64)| {
            groups.iter().fold((0.0, 0.0), |(a, b), &(n, t, past)| {
                let (x, y) = f(t, past);
                (a + n as f64 * x, b + n as f64 * y)
            })
        };
        let (flops, bytes, kernels) = match self.unit(u) {
            // embedding: read one row per token
            Unit::Embed => {
                let rows: usize = groups.iter().map(|&(n, t, _)| n * t).sum();
                (
                    0.0,
                    rows as f64 * c.n_embd as f64 * self.weights.bits() / 8.0,
                    1,
                )
            }
            Unit::Head => {
                let h = head_cost(c, samples, self.weights);
                (h.flops, h.weight_bytes, 1)
            }
            Unit::Block(_) => {
                let full = Shard::full(c);
                let w = block_cost(c, &full, 1, 0, self.weights, self.kv_bytes).weight_bytes;
                let (f, kv) = per(&|t, past| {
                    let k = block_cost(c, &full, t, past, self.weights, self.kv_bytes);
                    (k.flops, k.kv_read_bytes + k.kv_write_bytes)
                });
                (f, w + kv, 7)
            }
            // the halves: the block's attention (its matrices and all of its KV traffic) and
            // its MLP (the matrices of a block without heads)
            Unit::Attn(_) => {
                let (full, mlp) = (Shard::full(c), Self::mlp_shard(c));
                let w = block_cost(c, &full, 1, 0, self.weights, self.kv_bytes).weight_bytes
                    - block_cost(c, &mlp, 1, 0, self.weights, 0.0).weight_bytes;
                let (f, kv) = per(&|t, past| {
                    let k = block_cost(c, &full, t, past, self.weights, self.kv_bytes);
                    let m = block_cost(c, &mlp, t, past, self.weights, 0.0);
                    (k.flops - m.flops, k.kv_read_bytes + k.kv_write_bytes)
                });
                (f, w + kv, 4)
            }
            Unit::Mlp(_) => {
                let mlp = Self::mlp_shard(c);
                let w = block_cost(c, &mlp, 1, 0, self.weights, 0.0).weight_bytes;
                let (f, _) =
                    per(&|t, past| (block_cost(c, &mlp, t, past, self.weights, 0.0).flops, 0.0));
                (f, w, 3)
            }
        };
        p.compute_time_s(flops, bytes, kernels, self.precision)
    }

    /// A block's MLP alone, as a shard without heads.
    fn mlp_shard(c: &LlamaConfig) -> Shard {
        Shard {
            q_heads: 0,
            kv_heads: 0,
            ffn_cols: c.n_ff,
        }
    }

    /// Weight bytes of unit `u`.
    pub fn unit_weight_bytes(&self, u: usize) -> f64 {
        let c = &self.cfg;
        let (v, d) = (c.vocab_size as f64, c.n_embd as f64);
        let bytes = |s: Shard| s.matrix_weights(c) as f64 * self.weights.bits() / 8.0;
        match self.unit(u) {
            Unit::Embed => v * d * self.weights.bits() / 8.0,
            Unit::Head => v * d * self.weights.bits() / 8.0 + 4.0 * d,
            Unit::Block(_) => bytes(Shard::full(c)) + 8.0 * d,
            Unit::Attn(_) => bytes(Shard::full(c)) - bytes(Self::mlp_shard(c)) + 4.0 * d,
            Unit::Mlp(_) => bytes(Self::mlp_shard(c)) + 4.0 * d,
        }
    }

    /// KV-cache bytes of unit `u` for `samples` sequences of `ctx` positions.
    pub fn unit_kv_bytes(&self, u: usize, samples: usize, ctx: usize) -> f64 {
        let c = &self.cfg;
        match self.unit(u) {
            Unit::Block(_) | Unit::Attn(_) => {
                2.0 * c.n_head_kv as f64
                    * c.head_dim as f64
                    * self.kv_bytes
                    * (samples * ctx) as f64
            }
            _ => 0.0,
        }
    }

    /// Bytes of the hidden state for `t` tokens on the wire.
    pub fn hidden_bytes(&self, t: usize) -> f64 {
        self.wire.bytes(t * self.cfg.n_embd)
    }

    /// Bytes returning to the source per sample and step.
    pub fn return_bytes(&self) -> f64 {
        match self.ret {
            Return::Token => 4.0,
            Return::Logits => self.wire.bytes(self.cfg.vocab_size),
        }
    }

    /// The planners' view, for one micro-batch of [`Workload::plan_batch`] samples: per-unit
    /// times and hand-off bytes of a decode step at the workload's mean context, of the prefill
    /// of the prompt, or their mix (`objective`); memory per unit (weights + KV caches for
    /// every sample at full context), capacity `memory_fraction ×` each profile's, expected
    /// link times.
    pub fn problem(
        &self,
        names: &[String],
        net: &Network,
        w: &Workload,
        source: usize,
        memory_fraction: f64,
        objective: PlanObjective,
    ) -> Result<PartitionProblem, PartitionError> {
        let n = self.n_units();
        let m = self.profiles.len();
        if m == 0 {
            return Err(PartitionError::Invalid {
                field: "devices".into(),
                reason: "no devices".into(),
            });
        }
        if net.n() != m {
            return Err(PartitionError::Invalid {
                field: "links".into(),
                reason: format!("{} × {} links for {m} devices", net.n(), net.n()),
            });
        }
        if !(memory_fraction > 0.0 && memory_fraction <= 1.0) {
            return Err(PartitionError::Invalid {
                field: "memory_fraction".into(),
                reason: format!("{memory_fraction}: must be in (0, 1]"),
            });
        }
        let wt = objective.ttft_weight(w);
        if !(0.0..=1.0).contains(&wt) {
            return Err(PartitionError::Invalid {
                field: "objective".into(),
                reason: format!("mix weight {wt}: must be in [0, 1]"),
            });
        }
        let wd = 1.0 - wt;
        let b = w.plan_batch(m);
        let past = w.prompt_tokens + w.gen_tokens / 2;
        let ctx = w.prompt_tokens + w.gen_tokens;
        let bf = b as f64;
        let hidden = wt * bf * self.hidden_bytes(w.prompt_tokens) + wd * bf * self.hidden_bytes(1);
        let mut out_bytes = vec![hidden; n];
        out_bytes[n - 1] = bf * self.return_bytes();
        let (mut lat, mut bw) = (vec![vec![0.0; m]; m], vec![vec![f64::MAX; m]; m]);
        for i in 0..m {
            for j in 0..m {
                if i != j {
                    (lat[i][j], bw[i][j]) = net.links[i][j].planner_terms();
                }
            }
        }
        let time = |d: usize, u: usize| {
            let mut t = 0.0;
            if wt > 0.0 {
                t += wt * self.unit_time_batch_s(d, u, b, w.prompt_tokens, 0);
            }
            if wd > 0.0 {
                t += wd * self.unit_time_batch_s(d, u, b, 1, past);
            }
            t
        };
        Ok(PartitionProblem {
            devices: names.to_vec(),
            compute_s: (0..m)
                .map(|d| (0..n).map(|u| time(d, u)).collect())
                .collect(),
            memory: (0..n)
                .map(|u| self.unit_weight_bytes(u) + self.unit_kv_bytes(u, w.samples, ctx))
                .collect(),
            capacity: self
                .profiles
                .iter()
                .map(|p| p.mem_capacity * memory_fraction)
                .collect(),
            out_bytes,
            residual: self
                .residual_links()
                .into_iter()
                .map(|(u, v)| (u, v, hidden))
                .collect(),
            latency_s: lat,
            bandwidth: bw,
            source,
        })
    }
}

/// What the timed run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Workload {
    /// Samples (requests) in flight, all arriving at time 0.
    pub samples: usize,
    /// Prompt tokens of each sample (prefilled in one step).
    pub prompt_tokens: usize,
    /// Tokens each sample generates (the first comes out of the prefill).
    pub gen_tokens: usize,
    /// Samples per micro-batch: a stage runs the micro-batch's samples as one batch (weights
    /// read once, a KV cache per sample). 0: as many as fill the pipeline, ⌈samples / stages⌉
    /// (one micro-batch per stage); 1: every sample on its own (MDI-LLM's recurrent pipeline).
    pub micro_batch: usize,
    /// The run starts with the weights in storage: each device reads the units it holds (its
    /// stages' first, in order, then any pre-loaded overlap) at its profile's
    /// `storage_bandwidth`, while it computes; a unit runs once it is loaded. A unit a
    /// rebalance moves to a device that does not hold it is read then. Off: weights resident.
    pub cold_start: bool,
}

impl Workload {
    /// The micro-batch size the timed run uses on a plan of `stages` stages.
    pub fn batch_for(&self, stages: usize) -> usize {
        let b = if self.micro_batch == 0 {
            self.samples.div_ceil(stages.max(1))
        } else {
            self.micro_batch
        };
        b.clamp(1, self.samples.max(1))
    }

    /// The micro-batch size the planners assume before the plan is known, with `devices`
    /// devices: as [`Self::batch_for`] with one stage per device.
    pub fn plan_batch(&self, devices: usize) -> usize {
        self.batch_for(devices)
    }
}

/// A busy interval of a device or a link.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Busy {
    /// `"dev3"` or `"link 0→2"`.
    pub resource: String,
    /// First sample of the micro-batch.
    pub sample: usize,
    /// Step of that sample (0 = prefill).
    pub step: usize,
    /// Start, s.
    pub start_s: f64,
    /// End, s.
    pub end_s: f64,
}

/// A runtime load balancer: sees the measured per-stage compute of the last step and may return
/// new stages (same devices, same order).
pub trait Balancer {
    /// Called whenever the first micro-batch finishes a step; `measured[i]` is stage i's last
    /// compute time, `batch` the micro-batch's samples.
    fn observe(
        &mut self,
        now_s: f64,
        stages: &Assignment,
        measured: &[f64],
        batch: usize,
    ) -> Option<Assignment>;
}

/// Outcome of a timed run.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineReport {
    /// Time each sample's first token reached the source, s.
    pub ttft_s: Vec<f64>,
    /// Arrival time of every token of every sample at the source, s.
    pub token_times_s: Vec<Vec<f64>>,
    /// Mean time between a sample's consecutive tokens, s (mean over samples).
    pub per_token_s: f64,
    /// Generated tokens / time of the last one.
    pub throughput_tok_s: f64,
    /// Tokens per second in steady state: tokens that arrived between the last first token and
    /// the first last token, over that window (the whole run when the window is empty).
    pub steady_tok_s: f64,
    /// Busy fraction of each device over the steady-state window.
    pub utilisation: Vec<f64>,
    /// Weights + KV caches held by each device at the end, bytes.
    pub memory_bytes: Vec<f64>,
    /// Every busy interval (when recorded).
    pub timeline: Vec<Busy>,
    /// Bytes sent over links.
    pub bytes_sent: f64,
    /// Stages in force at the end.
    pub final_stages: Assignment,
    /// Times at which the balancer moved boundaries.
    pub rebalances_s: Vec<f64>,
    /// Samples per micro-batch.
    pub micro_batch: usize,
    /// When the last device finished loading its weights, s (0 unless the run starts cold).
    pub loaded_s: f64,
}

#[derive(Debug, Clone, Copy)]
enum Ev {
    /// Micro-batch `mb` arrives at stage `stage` of assignment version `ver` for step `step`.
    Arrive {
        mb: usize,
        step: usize,
        stage: usize,
        ver: usize,
    },
    /// The micro-batch's tokens reached the source.
    Token { mb: usize, step: usize },
    /// Stage `stage`'s job is done: its `hidden` (and, from the last stage, `back`) bytes go
    /// on the links now (on a shared channel, sends are booked in time order).
    Sent {
        mb: usize,
        step: usize,
        stage: usize,
        ver: usize,
        hidden: f64,
        back: f64,
    },
}

fn bad(field: &str, reason: impl Into<String>) -> PartitionError {
    PartitionError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// The sends of a done stage job (`sent`, an [`Ev::Sent`]) at `at`: its hidden state to each
/// next stage, its tokens to the source from the last stage.
fn send_on(
    links: &mut Links,
    q: &mut EventQueue<Ev>,
    versions: &[Assignment],
    routes: &[Routes],
    sent: Ev,
    at: Time,
    first: usize,
) {
    let Ev::Sent {
        mb,
        step,
        stage,
        ver,
        hidden,
        back,
    } = sent
    else {
        return;
    };
    let (a, r) = (&versions[ver], &routes[ver]);
    let d = a.stages[stage].device;
    for &k in &r.out[stage] {
        let arrive = links.send(d, a.stages[k].device, at, hidden, first, step);
        q.schedule(
            arrive,
            0,
            Ev::Arrive {
                mb,
                step,
                stage: k,
                ver,
            },
        );
    }
    if stage + 1 == a.stages.len() {
        let arrive = links.send(d, a.stages[0].device, at, back, first, step);
        q.schedule(arrive, 0, Ev::Token { mb, step });
    }
}

/// Run `w` on `stages` through `net` (see the module doc). `preloaded[d]`, when given, are the
/// units device d holds weights for (LinguaLinked's overlap); otherwise each holds its stages'.
/// `record` keeps the timeline.
#[allow(clippy::too_many_arguments)]
pub fn simulate(
    cost: &CostSetup,
    net: &Network,
    stages: &Assignment,
    w: &Workload,
    background: &Background,
    mut balancer: Option<&mut dyn Balancer>,
    preloaded: Option<&[Range<usize>]>,
    seed: u64,
    record: bool,
) -> Result<PipelineReport, PartitionError> {
    let m = cost.profiles.len();
    let n = cost.n_units();
    if w.samples == 0 || w.prompt_tokens == 0 || w.gen_tokens == 0 {
        return Err(bad(
            "workload",
            "samples, prompt and generated tokens must be positive",
        ));
    }
    if net.n() != m {
        return Err(bad("links", format!("{} devices, {m} profiles", net.n())));
    }
    if stages.stages.is_empty() {
        return Err(bad("stages", "no stages"));
    }
    stages.check_cover(n, m)?;
    // cold start: when each unit is in each device's memory (∞: not held)
    let mut devs = Devices::new(m, n);
    devs.cold = w.cold_start;
    if w.cold_start {
        for (d, p) in cost.profiles.iter().enumerate() {
            let own: Vec<usize> = stages
                .stages
                .iter()
                .filter(|s| s.device == d)
                .flat_map(|s| s.units.clone())
                .collect();
            devs.loaded[d] = vec![Time::MAX; n];
            if own.is_empty() && preloaded.is_none_or(|p| p.get(d).is_none_or(|r| r.is_empty())) {
                continue;
            }
            if p.storage_bandwidth <= 0.0 {
                return Err(bad(
                    "storage_bandwidth",
                    format!("device {d} has none: a cold start reads the weights from storage"),
                ));
            }
            let extra = preloaded
                .and_then(|p| p.get(d))
                .map(|r| r.clone().filter(|u| !own.contains(u)).collect::<Vec<_>>())
                .unwrap_or_default();
            // read one after the other from t = 0
            for u in own.into_iter().chain(extra) {
                devs.load(cost, d, u, Time::ZERO);
            }
        }
    }
    let loaded_s = devs
        .storage_free
        .iter()
        .map(|t| t.secs())
        .fold(0.0, f64::max);
    let batch = w.batch_for(stages.stages.len());
    let n_mb = w.samples.div_ceil(batch);
    // samples of micro-batch k
    let members = |k: usize| k * batch..((k + 1) * batch).min(w.samples);
    let mut versions: Vec<Assignment> = vec![stages.clone()];
    let residual = cost.residual_links();
    let mut routes = vec![Routes::new(stages, &residual, n)];
    // inputs arrived so far of a stage's job that waits for several (residual links)
    let mut pending: BTreeMap<(usize, usize, usize, usize), usize> = BTreeMap::new();
    let mut q: EventQueue<Ev> = EventQueue::new();
    let mut links = Links::new(net, seed, record);
    let mut token_times: Vec<Vec<f64>> = vec![Vec::new(); w.samples];
    let mut mb_ver = vec![0usize; n_mb];
    let mut measured = vec![0.0f64; stages.stages.len()];
    let mut rebalances = Vec::new();
    for k in 0..n_mb {
        q.schedule(
            Time::ZERO,
            0,
            Ev::Arrive {
                mb: k,
                step: 0,
                stage: 0,
                ver: 0,
            },
        );
    }
    while let Some((now_t, ev)) = q.pop() {
        let now = now_t.secs();
        match ev {
            Ev::Arrive {
                mb,
                step,
                stage,
                ver,
            } => {
                let a = &versions[ver];
                let r = &routes[ver];
                if r.need(stage) > 1 {
                    let got = pending.entry((mb, step, stage, ver)).or_insert(0);
                    *got += 1;
                    if *got < r.need(stage) {
                        continue;
                    }
                    pending.remove(&(mb, step, stage, ver));
                }
                let b = members(mb).len();
                let (t, past) = if step == 0 {
                    (w.prompt_tokens, 0)
                } else {
                    (1, w.prompt_tokens + step - 1)
                };
                let d = a.stages[stage].device;
                let job = devs.run_stage(
                    (cost, background),
                    (a, r),
                    stage,
                    &[(b, t, past)],
                    step == 0,
                    now_t,
                );
                let (start, done, compute, hidden, back) =
                    (job.start, job.done, job.compute_s, job.hidden, job.back);
                if mb == 0 && ver == mb_ver[0] && stage < measured.len() {
                    measured[stage] = compute;
                }
                let first = members(mb).start;
                if record {
                    links.timeline.push(Busy {
                        resource: format!("dev{d}"),
                        sample: first,
                        step,
                        start_s: start.secs(),
                        end_s: done.secs(),
                    });
                }
                let sent = Ev::Sent {
                    mb,
                    step,
                    stage,
                    ver,
                    hidden,
                    back,
                };
                if links.air.shared() {
                    q.schedule(done, 0, sent);
                } else {
                    // each link its own: booking now, in the order jobs are run, is the same
                    send_on(&mut links, &mut q, &versions, &routes, sent, done, first);
                }
            }
            Ev::Sent { mb, .. } => {
                let first = members(mb).start;
                send_on(&mut links, &mut q, &versions, &routes, ev, now_t, first);
            }
            Ev::Token { mb, step } => {
                for s in members(mb) {
                    token_times[s].push(now);
                }
                if mb == 0 {
                    if let Some(bal) = balancer.as_deref_mut() {
                        let cur = versions.last().expect("one version").clone();
                        if let Some(new) = bal.observe(now, &cur, &measured, batch) {
                            if new != cur {
                                // ship the KV caches of moved units, old device → new device
                                let (od, nd) = (cur.device_of_units(n), new.device_of_units(n));
                                let ctx = w.prompt_tokens + step;
                                for u in 0..n {
                                    if od[u] != nd[u] {
                                        let kv = cost.unit_kv_bytes(u, w.samples, ctx);
                                        links.send(od[u], nd[u], now_t, kv, usize::MAX, step);
                                    }
                                }
                                measured = vec![0.0; new.stages.len()];
                                routes.push(Routes::new(&new, &residual, n));
                                versions.push(new);
                                rebalances.push(now);
                            }
                        }
                    }
                }
                if step + 1 < w.gen_tokens {
                    mb_ver[mb] = versions.len() - 1;
                    q.schedule(
                        now_t,
                        0,
                        Ev::Arrive {
                            mb,
                            step: step + 1,
                            stage: 0,
                            ver: mb_ver[mb],
                        },
                    );
                }
            }
        }
    }
    let ttft: Vec<f64> = token_times.iter().map(|t| t[0]).collect();
    let end = token_times
        .iter()
        .map(|t| *t.last().expect("tokens"))
        .fold(0.0, f64::max);
    let per_token_s = if w.gen_tokens > 1 {
        token_times
            .iter()
            .map(|t| (t[t.len() - 1] - t[0]) / (t.len() - 1) as f64)
            .sum::<f64>()
            / w.samples as f64
    } else {
        f64::NAN
    };
    let total = (w.samples * w.gen_tokens) as f64;
    let lo = ttft.iter().cloned().fold(0.0, f64::max);
    let hi = token_times
        .iter()
        .map(|t| *t.last().expect("tokens"))
        .fold(f64::INFINITY, f64::min);
    let (lo, hi) = if hi > lo { (lo, hi) } else { (0.0, end) };
    let in_window = token_times
        .iter()
        .flatten()
        .filter(|&&t| t > lo && t <= hi)
        .count();
    let span = (hi - lo).max(f64::MIN_POSITIVE);
    let utilisation = devs
        .busy
        .iter()
        .map(|iv| {
            iv.iter()
                .map(|&(a, b)| (b.secs().min(hi) - a.secs().max(lo)).max(0.0))
                .sum::<f64>()
                / span
                + 0.0
        })
        .collect();
    let fin = versions.last().expect("one version").clone();
    let ctx = w.prompt_tokens + w.gen_tokens;
    let dev_units = fin.device_of_units(n);
    let memory_bytes = (0..m)
        .map(|d| {
            let held: Vec<usize> = match preloaded {
                Some(p) => p.get(d).cloned().unwrap_or(0..0).collect(),
                None => (0..n).filter(|&u| dev_units[u] == d).collect(),
            };
            // `+ 0.0`: an empty f64 sum is −0
            held.iter().map(|&u| cost.unit_weight_bytes(u)).sum::<f64>()
                + (0..n)
                    .filter(|&u| dev_units[u] == d)
                    .map(|u| cost.unit_kv_bytes(u, w.samples, ctx))
                    .sum::<f64>()
                + 0.0
        })
        .collect();
    Ok(PipelineReport {
        ttft_s: ttft,
        per_token_s,
        throughput_tok_s: total / end.max(f64::MIN_POSITIVE),
        steady_tok_s: in_window as f64 / span,
        utilisation,
        memory_bytes,
        timeline: links.timeline,
        bytes_sent: links.bytes_sent,
        final_stages: fin,
        rebalances_s: rebalances,
        token_times_s: token_times,
        micro_batch: batch,
        loaded_s,
    })
}

mod forward;
mod resources;
pub use forward::{HandoffStats, PipelineForward};
pub(crate) use resources::{Devices, Links, Routes};

#[cfg(test)]
mod tests;
