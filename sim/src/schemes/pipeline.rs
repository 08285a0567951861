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
//! * **Time** ([`simulate`]): B samples (requests) each prefill a prompt and generate tokens; a
//!   sample's step visits the stages in order, the token returning to the source device to start
//!   the next step (a ring when the source also holds the head, as in MDI-LLM). Each device and
//!   each directed link is a first-come-first-served resource: a job starts at
//!   `max(arrival, resource free)` and events are processed in time order through
//!   [`EventQueue`], so at most one job runs per resource and ties resolve deterministically.
//!   Compute is the roofline of the device profile on `llm::cost` (per unit: embedding rows,
//!   blocks with their KV reads for the sample's current context, head), multiplied by the
//!   device's background-load factor at the job's start. A transfer of b bytes occupies its link
//!   for `latency + b / bandwidth` (wired) or the realised HARQ airtime plus a fixed cost
//!   (wireless). With several samples in flight the stages overlap: MDI-LLM's *recurrent
//!   pipeline parallelism*.
//!
//! A [`Balancer`] may move stage boundaries while the run goes on (LinguaLinked's runtime load
//! balancer); a sample adopts the new stages at its next step, and the KV caches of every moved
//! unit are shipped over the link between the old and the new device at that moment.

use crate::des::{EventQueue, Time};
use crate::device::{DeviceProfile, Precision};
use crate::links::handoff::Handoff;
pub use crate::links::handoff::{HandoffLink as Link, Network, Wire};
use crate::links::{Call, Link as _, Streams};
use airinfer_llm::config::LlamaConfig;
use airinfer_llm::cost::{block_cost, head_cost, Shard, WeightFormat};
use airinfer_llm::model::{Hidden, Logits, Model, ModelError, Session};
use airinfer_llm::tp::IdealCollective;
use airinfer_phy::rng;
use airinfer_plan::pipeline::{blocks_of, Assignment, PartitionError, PartitionProblem, Stage};
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
}

impl CostSetup {
    /// Units of the model: embedding, blocks, head.
    pub fn n_units(&self) -> usize {
        self.cfg.n_layer + 2
    }

    /// Blocks (layer indices) inside a range of units.
    pub fn layers_of(&self, units: &Range<usize>) -> Range<usize> {
        blocks_of(self.cfg.n_layer, units)
    }

    /// Roofline time of unit `u` on device `d` for `t` new tokens after `past` cached ones.
    pub fn unit_time_s(&self, d: usize, u: usize, t: usize, past: usize) -> f64 {
        let c = &self.cfg;
        let p = &self.profiles[d];
        let (flops, bytes, kernels) = if u == 0 {
            // embedding: read t rows
            (
                0.0,
                t as f64 * c.n_embd as f64 * self.weights.bits() / 8.0,
                1,
            )
        } else if u == c.n_layer + 1 {
            let h = head_cost(c, 1, self.weights);
            (h.flops, h.weight_bytes, 1)
        } else {
            let b = block_cost(c, &Shard::full(c), t, past, self.weights, self.kv_bytes);
            (
                b.flops,
                b.weight_bytes + b.kv_read_bytes + b.kv_write_bytes,
                7,
            )
        };
        p.compute_time_s(flops, bytes, kernels, self.precision)
    }

    /// Weight bytes of unit `u`.
    pub fn unit_weight_bytes(&self, u: usize) -> f64 {
        let c = &self.cfg;
        let (v, d) = (c.vocab_size as f64, c.n_embd as f64);
        if u == 0 || u == c.n_layer + 1 {
            v * d * self.weights.bits() / 8.0 + if u > 0 { 4.0 * d } else { 0.0 }
        } else {
            Shard::full(c).matrix_weights(c) as f64 * self.weights.bits() / 8.0 + 8.0 * d
        }
    }

    /// KV-cache bytes of unit `u` for `samples` sequences of `ctx` positions.
    pub fn unit_kv_bytes(&self, u: usize, samples: usize, ctx: usize) -> f64 {
        let c = &self.cfg;
        if u == 0 || u > c.n_layer {
            return 0.0;
        }
        2.0 * c.n_head_kv as f64 * c.head_dim as f64 * self.kv_bytes * (samples * ctx) as f64
    }

    /// Bytes of the hidden state for `t` tokens on the wire.
    pub fn hidden_bytes(&self, t: usize) -> f64 {
        self.wire.bytes(t * self.cfg.n_embd)
    }

    /// The planners' view: per-unit decode time at the workload's mean context, memory per unit
    /// (weights + KV caches for every sample at full context), capacity `memory_fraction ×`
    /// each profile's, expected link times.
    pub fn problem(
        &self,
        names: &[String],
        net: &Network,
        w: &Workload,
        source: usize,
        memory_fraction: f64,
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
        let past = w.prompt_tokens + w.gen_tokens / 2;
        let ctx = w.prompt_tokens + w.gen_tokens;
        let mut out_bytes = vec![self.hidden_bytes(1); n];
        out_bytes[n - 1] = 4.0; // the sampled token id
        let (mut lat, mut bw) = (vec![vec![0.0; m]; m], vec![vec![f64::MAX; m]; m]);
        for i in 0..m {
            for j in 0..m {
                if i != j {
                    (lat[i][j], bw[i][j]) = net.links[i][j].planner_terms();
                }
            }
        }
        Ok(PartitionProblem {
            devices: names.to_vec(),
            compute_s: (0..m)
                .map(|d| (0..n).map(|u| self.unit_time_s(d, u, 1, past)).collect())
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
            residual: Vec::new(),
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
}

/// A busy interval of a device or a link.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Busy {
    /// `"dev3"` or `"link 0→2"`.
    pub resource: String,
    /// Sample.
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
    /// Called whenever sample 0 finishes a step; `measured[i]` is stage i's last compute time.
    fn observe(&mut self, now_s: f64, stages: &Assignment, measured: &[f64]) -> Option<Assignment>;
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
}

#[derive(Debug, Clone, Copy)]
enum Ev {
    /// Sample arrives at stage `stage` of assignment version `ver` for step `step`.
    Arrive {
        sample: usize,
        step: usize,
        stage: usize,
        ver: usize,
    },
    /// The sample's token reached the source.
    Token { sample: usize, step: usize },
}

fn bad(field: &str, reason: impl Into<String>) -> PartitionError {
    PartitionError::Invalid {
        field: field.into(),
        reason: reason.into(),
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
    let source = stages.stages[0].device;
    let mut versions: Vec<Assignment> = vec![stages.clone()];
    let mut q: EventQueue<Ev> = EventQueue::new();
    // when each device and each directed link is free, on the queue's clock (integer ns)
    let mut dev_free = vec![Time::ZERO; m];
    let mut link_free: BTreeMap<(usize, usize), Time> = BTreeMap::new();
    let mut rng = rng::stream(seed, &[rng::component::PACKET, 0x919E]);
    let mut timeline = Vec::new();
    let mut token_times: Vec<Vec<f64>> = vec![Vec::new(); w.samples];
    let mut sample_ver = vec![0usize; w.samples];
    let mut measured = vec![0.0f64; stages.stages.len()];
    let mut bytes_sent = 0.0;
    let mut rebalances = Vec::new();
    let mut busy: Vec<Vec<(Time, Time)>> = vec![Vec::new(); m];
    for s in 0..w.samples {
        q.schedule(
            Time::ZERO,
            0,
            Ev::Arrive {
                sample: s,
                step: 0,
                stage: 0,
                ver: 0,
            },
        );
    }
    // send `bytes` over i → j starting no earlier than `now`: the arrival time
    let mut transfer = |i: usize,
                        j: usize,
                        now: Time,
                        bytes: f64,
                        sample: usize,
                        step: usize,
                        link_free: &mut BTreeMap<(usize, usize), Time>,
                        timeline: &mut Vec<Busy>,
                        bytes_sent: &mut f64|
     -> Time {
        if i == j || bytes <= 0.0 {
            return now;
        }
        let free = link_free.entry((i, j)).or_insert(Time::ZERO);
        let start = now.max(*free);
        let dur = Time::from_secs(net.links[i][j].send(bytes, &mut rng).0);
        let end = start.after(dur);
        *free = end;
        *bytes_sent += bytes;
        if record {
            timeline.push(Busy {
                resource: format!("link {i}→{j}"),
                sample,
                step,
                start_s: start.secs(),
                end_s: end.secs(),
            });
        }
        end
    };
    while let Some((now_t, ev)) = q.pop() {
        let now = now_t.secs();
        match ev {
            Ev::Arrive {
                sample,
                step,
                stage,
                ver,
            } => {
                let a = &versions[ver];
                let st = &a.stages[stage];
                let (t, past) = if step == 0 {
                    (w.prompt_tokens, 0)
                } else {
                    (1, w.prompt_tokens + step - 1)
                };
                let d = st.device;
                let start = now_t.max(dev_free[d]);
                let base: f64 = st
                    .units
                    .clone()
                    .map(|u| cost.unit_time_s(d, u, t, past))
                    .sum();
                let dur = Time::from_secs(base * background.factor(d, start.secs()));
                let done = start.after(dur);
                dev_free[d] = done;
                busy[d].push((start, done));
                if sample == 0 && ver == sample_ver[0] && stage < measured.len() {
                    measured[stage] = dur.secs();
                }
                if record {
                    timeline.push(Busy {
                        resource: format!("dev{d}"),
                        sample,
                        step,
                        start_s: start.secs(),
                        end_s: done.secs(),
                    });
                }
                let (to, bytes) = if stage + 1 < a.stages.len() {
                    (a.stages[stage + 1].device, cost.hidden_bytes(t))
                } else {
                    (source, 4.0)
                };
                let arrive = transfer(
                    d,
                    to,
                    done,
                    bytes,
                    sample,
                    step,
                    &mut link_free,
                    &mut timeline,
                    &mut bytes_sent,
                );
                let ev = if stage + 1 < a.stages.len() {
                    Ev::Arrive {
                        sample,
                        step,
                        stage: stage + 1,
                        ver,
                    }
                } else {
                    Ev::Token { sample, step }
                };
                q.schedule(arrive, 0, ev);
            }
            Ev::Token { sample, step } => {
                token_times[sample].push(now);
                if sample == 0 {
                    if let Some(b) = balancer.as_deref_mut() {
                        let cur = versions.last().expect("one version").clone();
                        if let Some(new) = b.observe(now, &cur, &measured) {
                            if new != cur {
                                // ship the KV caches of moved units, old device → new device
                                let (od, nd) = (cur.device_of_units(n), new.device_of_units(n));
                                let ctx = w.prompt_tokens + step;
                                for u in 0..n {
                                    if od[u] != nd[u] {
                                        let kv = cost.unit_kv_bytes(u, w.samples, ctx);
                                        transfer(
                                            od[u],
                                            nd[u],
                                            now_t,
                                            kv,
                                            usize::MAX,
                                            step,
                                            &mut link_free,
                                            &mut timeline,
                                            &mut bytes_sent,
                                        );
                                    }
                                }
                                measured = vec![0.0; new.stages.len()];
                                versions.push(new);
                                rebalances.push(now);
                            }
                        }
                    }
                }
                if step + 1 < w.gen_tokens {
                    sample_ver[sample] = versions.len() - 1;
                    q.schedule(
                        now_t,
                        0,
                        Ev::Arrive {
                            sample,
                            step: step + 1,
                            stage: 0,
                            ver: sample_ver[sample],
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
    let utilisation = busy
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
        timeline,
        bytes_sent,
        final_stages: fin,
        rebalances_s: rebalances,
        token_times_s: token_times,
    })
}

/// Statistics of the hand-offs of a numeric run.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct HandoffStats {
    /// Σ squared error of what arrived against what was sent.
    pub err2: f64,
    /// Σ squared sent values.
    pub sig2: f64,
    /// Transport blocks lost after HARQ.
    pub lost_blocks: usize,
    /// Hand-offs made.
    pub handoffs: usize,
}

impl HandoffStats {
    /// Normalised MSE of the hand-offs.
    pub fn nmse(&self) -> f64 {
        self.err2 / self.sig2.max(f64::MIN_POSITIVE)
    }
}

/// The real model run stage by stage, hand-offs through the links (see the module doc).
pub struct PipelineForward<'a> {
    model: &'a Model,
    stages: Vec<Stage>,
    layers: Vec<Range<usize>>,
    sessions: Vec<Session>,
    net: &'a Network,
    wire: Wire,
    streams: Streams,
    /// What the hand-offs did so far.
    pub stats: HandoffStats,
}

impl<'a> PipelineForward<'a> {
    /// Stages of `a` on `model` (a single-device split), sessions of `limit` positions.
    pub fn new(
        model: &'a Model,
        a: &Assignment,
        net: &'a Network,
        wire: Wire,
        limit: usize,
        seed: u64,
    ) -> Result<Self, PartitionError> {
        if model.n_devices() != 1 {
            return Err(bad(
                "model",
                "pipeline stages run a single-device (not tensor-parallel) model",
            ));
        }
        a.check_cover(model.cfg.n_layer + 2, net.n())?;
        let layers = a
            .stages
            .iter()
            .map(|s| blocks_of(model.cfg.n_layer, &s.units))
            .collect();
        Ok(PipelineForward {
            model,
            sessions: a.stages.iter().map(|_| model.new_session(limit)).collect(),
            stages: a.stages.clone(),
            layers,
            net,
            wire,
            streams: Streams::new(seed),
            stats: HandoffStats::default(),
        })
    }

    /// Start a new sequence on every stage.
    pub fn reset(&mut self) {
        for s in &mut self.sessions {
            s.reset();
        }
    }

    /// Bytes of KV cache held by each stage.
    pub fn kv_bytes(&self) -> Vec<usize> {
        self.sessions.iter().map(|s| s.kv_bytes(0)).collect()
    }

    /// Hand `h` from stage `i` to stage `i + 1`: quantise, send, zero lost blocks.
    fn handoff(&mut self, i: usize, h: &mut Hidden) {
        let (from, to) = (self.stages[i].device, self.stages[i + 1].device);
        let sent = h.xs[0].clone();
        let x = &mut h.xs[0];
        if from != to {
            // the numbers' path has no clock (`simulate` times the same hand-offs)
            let call = Call {
                start: Time::ZERO,
                width: x.len(),
                n_tokens: 1,
                round: self.stats.handoffs as u64,
                medium: None,
                streams: &mut self.streams,
            };
            let mut handoff = Handoff {
                link: &self.net.links[from][to],
                wire: self.wire,
            };
            let carried = handoff.carry(call, std::slice::from_mut(x));
            self.stats.lost_blocks += carried.lost_blocks;
            self.stats.handoffs += 1;
        }
        for (a, b) in sent.iter().zip(x.iter()) {
            self.stats.err2 += ((a - b) as f64).powi(2);
            self.stats.sig2 += (*a as f64).powi(2);
        }
    }
}

impl airinfer_llm::eval::Forward for PipelineForward<'_> {
    fn vocab(&self) -> usize {
        self.model.cfg.vocab_size
    }

    fn reset(&mut self) {
        PipelineForward::reset(self);
    }

    fn forward(&mut self, tokens: &[u32], want: Logits) -> Result<Vec<f32>, ModelError> {
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let mut h = self.model.embed(self.sessions[0].pos, tokens)?;
        for i in 0..self.stages.len() {
            let layers = self.layers[i].clone();
            self.model
                .run_layers(&mut self.sessions[i], &mut h, layers, &mut IdealCollective)?;
            if i + 1 < self.stages.len() {
                self.handoff(i, &mut h);
            }
        }
        Ok(self.model.head(&h, want))
    }
}

#[cfg(test)]
mod tests;
