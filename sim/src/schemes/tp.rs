//! Tensor parallelism over the air: [`TpCollective`], the `llm::tp::Collective` that sends every
//! all-reduce of the real forward pass through the run's [`Link`] and
//! advances a simulated clock.
//!
//! Timing model (lockstep, as Megatron-style TP is): between two reduction sites each device
//! computes its shard of that half-block (attention: Q, K, V, attention, O; MLP: gate, up, down),
//! timed by the roofline of its [`DeviceProfile`] on the analytic cost of `llm::cost`. The
//! all-reduce starts when the slowest device is done (the others idle), takes the link's
//! airtime plus its fixed per-round cost, and every device resumes when the sum has come back.
//! The clock is the event queue of [`crate::des`] in integer nanoseconds, as for the pipelines:
//! each device's compute ends in an event, the reduction starts at the last of them (the
//! lockstep is what the queue gives when every device waits for the reduction) and ends in one;
//! durations are rounded to the nanosecond when scheduled.
//! The output head runs on device 0 after the last block ([`TpCollective::finish_forward`]).
//! How each scheme carries a call (channel uses, side information, HARQ, the ring's hops) is in
//! its file under [`crate::links`].

use airinfer_llm::config::LlamaConfig;
use airinfer_llm::cost::{Shard, WeightFormat};
use airinfer_llm::tp::{Collective, ReduceCtx, ReduceSite, TpPlan};
use serde::Serialize;

use crate::des::{EventQueue, Time};
use crate::device::{DeviceProfile, Precision};
use crate::links::{self, Call, Link, Medium, Streams};

pub use crate::links::waveform::{SharedRadio, WaveformLevel};
pub use crate::links::{Broadcast, Design, HeldEqual, RadioConfig, SchemeError, SchemeKind};

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

/// What a lane of the timeline is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    /// A device computes (its shard, or the output head).
    Compute,
    /// A device waits (for the slowest device or for the channel).
    Idle,
    /// The channel carries a reduction (or a link a hand-off).
    Air,
}

/// A span of the timeline (for Gantt charts and breakdowns).
#[derive(Debug, Clone, Serialize)]
pub struct Span {
    /// Device index, or K for the channel.
    pub lane: usize,
    /// What the lane does.
    pub kind: SpanKind,
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
    /// Time each device's transmitter was on, s.
    pub tx_s: Vec<f64>,
    /// Transmit energy of each device in units of its full power × 1 s (times its maximum
    /// transmit power: joules).
    pub tx_energy: Vec<f64>,
    /// Σ bits on the wire per value × values, over the reductions of digital links.
    pub wire_bits: f64,
    /// Values reduced over digital links (the denominator of `wire_bits`).
    pub wire_values: u64,
    /// All-reduce rounds.
    pub rounds: u64,
}

/// What happens on a tensor-parallel collective's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TpEvent {
    /// Device d finished its compute.
    Computed(usize),
    /// The reduction's sum is back at every device.
    Reduced,
}

/// The collective: the clock of K devices in lockstep, their compute model, and the link every
/// reduction crosses.
pub struct TpCollective {
    scheme: SchemeKind,
    design: Design,
    radio: RadioConfig,
    compute: ComputeModel,
    medium: Medium,
    streams: Streams,
    link: Box<dyn Link>,
    seed: u64,
    /// The clock: events of this collective in simulated time.
    queue: EventQueue<TpEvent>,
    /// When each device is free.
    ready: Vec<Time>,
    /// Totals since the last [`TpCollective::reset_totals`].
    pub totals: Breakdown,
    /// Per-site error statistics (attention output, MLP down).
    pub stats: [SiteStats; 2],
    /// Spans recorded while `record` is on.
    pub timeline: Vec<Span>,
    /// Record spans.
    pub record: bool,
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
        if compute.profiles.len() != k {
            return Err(SchemeError::Invalid(format!(
                "{} device profiles for {k} devices",
                compute.profiles.len()
            )));
        }
        radio.validate(k)?;
        if scheme == SchemeKind::Ring && radio.held_equal != HeldEqual::Power {
            return Err(SchemeError::Invalid(format!(
                "held_equal = \"{}\" applies to the baselines through the AP (digital, fdma), \
                 not to the device-to-device ring (it has no AirComp counterpart on its links)",
                radio.held_equal.name()
            )));
        }
        let mut streams = Streams::new(seed);
        let medium = Medium::new(&radio, k, seed, &mut streams)?;
        Ok(TpCollective {
            link: links::build(scheme, design, &radio),
            scheme,
            design,
            compute,
            medium,
            streams,
            seed,
            queue: EventQueue::new(),
            ready: vec![Time::ZERO; k],
            totals: Breakdown {
                compute_s: vec![0.0; k],
                idle_s: vec![0.0; k],
                tx_s: vec![0.0; k],
                tx_energy: vec![0.0; k],
                ..Default::default()
            },
            stats: [SiteStats::default(); 2],
            timeline: Vec::new(),
            record: false,
            radio,
        })
    }

    /// Carry AirComp at waveform level (see [`WaveformLevel`]).
    pub fn with_waveform(mut self, w: WaveformLevel) -> Result<TpCollective, SchemeError> {
        let k = self.ready.len();
        let link = links::waveform::Waveform::new(self.scheme, self.design, &self.radio, w, k)?;
        self.link = Box::new(link);
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

    /// Simulated time now (every device synchronised after a forward).
    pub fn now(&self) -> Time {
        self.ready.iter().copied().max().unwrap_or(Time::ZERO)
    }

    /// [`TpCollective::now`] in seconds.
    pub fn now_s(&self) -> f64 {
        self.now().secs()
    }

    /// Zero the per-device totals and the timeline (the clock keeps running).
    pub fn reset_totals(&mut self) {
        let k = self.ready.len();
        self.totals = Breakdown {
            compute_s: vec![0.0; k],
            idle_s: vec![0.0; k],
            tx_s: vec![0.0; k],
            tx_energy: vec![0.0; k],
            ..Default::default()
        };
        self.timeline.clear();
    }

    fn span(&mut self, lane: usize, kind: SpanKind, start: Time, end: Time) {
        if self.record && end > start {
            self.timeline.push(Span {
                lane,
                kind,
                start_s: start.secs(),
                end_s: end.secs(),
            });
        }
    }

    /// Each `(device, duration)` job computes from its device's ready time; the queue hands back
    /// the time the last of them is done (every device waits for it: the lockstep of TP).
    fn compute_then_sync(&mut self, jobs: &[(usize, Time)]) -> Time {
        for &(d, t) in jobs {
            let r = self.ready[d];
            self.span(d, SpanKind::Compute, r, r.after(t));
            self.totals.compute_s[d] += t.secs();
            self.queue.schedule(r.after(t), 0, TpEvent::Computed(d));
        }
        let mut last = self.queue.now();
        while let Some((t, TpEvent::Computed(d))) = self.queue.pop() {
            self.ready[d] = t;
            last = t;
        }
        for d in 0..self.ready.len() {
            let r = self.ready[d];
            self.totals.idle_s[d] += Time(last.0 - r.0).secs();
            self.span(d, SpanKind::Idle, r, last);
            self.ready[d] = last;
        }
        last
    }

    /// After a forward call: the output head on device 0 for `logits_rows` positions; the other
    /// devices wait for the next token.
    pub fn finish_forward(&mut self, logits_rows: usize) {
        let t = Time::from_secs(self.compute.head_time_s(logits_rows));
        self.compute_then_sync(&[(0, t)]);
    }
}

impl Collective for TpCollective {
    fn all_reduce(&mut self, ctx: &ReduceCtx, buffers: &mut [Vec<f32>]) {
        let k = buffers.len();
        // with other devices, each also sends its partial and receives the sum: its profile's
        // device time per message (f32 values' bytes for the per-byte part)
        let bytes = 4.0 * buffers[0].len() as f64;
        let msg: Vec<f64> = (0..k)
            .map(|d| {
                if k > 1 {
                    self.compute.profiles[d].message_s(bytes)
                } else {
                    0.0
                }
            })
            .collect();
        // compute of the half-block that ends here, then the send; the reduction starts when
        // the slowest device is done
        let jobs: Vec<(usize, Time)> = (0..k)
            .map(|d| {
                let s = self.compute.site_time_s(d, ctx.site, ctx.n_tokens, ctx.pos);
                (d, Time::from_secs(s + msg[d]))
            })
            .collect();
        let start = self.compute_then_sync(&jobs);
        // the exact sum, for the error statistics
        let n = buffers[0].len();
        let mut exact = vec![0f64; n];
        for b in buffers.iter() {
            for (e, v) in exact.iter_mut().zip(b) {
                *e += *v as f64;
            }
        }
        // one device: nothing to reduce, nothing sent
        let mut predicted = None;
        let air = if k == 1 {
            Time::ZERO
        } else {
            let call = Call {
                start,
                width: ctx.width,
                n_tokens: ctx.n_tokens,
                round: self.totals.rounds,
                medium: Some(&mut self.medium),
                streams: &mut self.streams,
            };
            let carried = self.link.carry(call, buffers);
            predicted = carried.predicted_err2;
            for (t, c) in self.totals.tx_s.iter_mut().zip(&carried.tx_s) {
                *t += c;
            }
            for (t, c) in self.totals.tx_energy.iter_mut().zip(&carried.tx_energy) {
                *t += c;
            }
            if let Some(b) = carried.bits_per_value {
                self.totals.wire_bits += b * n as f64;
                self.totals.wire_values += n as u64;
            }
            carried
                .airtime
                .after(Time::from_secs(self.link.round_overhead_s()))
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
        if let Some(p) = predicted {
            s.pred2 += p;
            s.pred_values += n as u64;
        }
        self.totals.airtime_s += air.secs();
        self.totals.rounds += 1;
        self.span(k, SpanKind::Air, start, start.after(air));
        // every device resumes when the sum is back
        self.queue.schedule(start.after(air), 0, TpEvent::Reduced);
        let (end, _) = self.queue.pop().expect("the reduction was scheduled");
        for (d, r) in self.ready.iter_mut().enumerate() {
            *r = end.after(Time::from_secs(msg[d]));
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
