//! The systems side by side: every planner and every tensor-parallel scheme behind one name, run
//! on the same model, devices, links and clock. Shared by `airinfer plan --system …` and
//! `kind = "systems"` experiments.

use crate::device::{DeviceProfile, Precision};
use crate::schemes::pipeline::{
    simulate, Background, Balancer, CostSetup, Network, PipelineReport, PlanObjective, Return,
    Split, Workload,
};
use crate::schemes::tp::{
    memory_per_device, simulate_forward, ComputeModel, Design, RadioConfig, SchemeKind,
    TpCollective,
};
use airinfer_llm::config::LlamaConfig;
use airinfer_llm::cost::WeightFormat;
use airinfer_llm::tp::TpPlan;
use airinfer_plan::edgeshard::{
    CloudEdgeOpt, EdgeShardLatency, EdgeShardLatencyReuse, EdgeShardThroughput,
};
use airinfer_plan::lingualinked::{self, LinguaLinked, Objective};
use airinfer_plan::pipeline::{gb, Assignment, PartitionError, PartitionProblem, Partitioner};
use airinfer_plan::simple::{BestSingle, EvenSplit, Mdi, SingleDevice};
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// Every system airinfer compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", value(rename_all = "kebab-case"))]
pub enum System {
    /// Tensor parallelism, all-reduce by over-the-air computation (Zhang et al. 2025).
    AircompTp,
    /// Tensor parallelism, digital all-reduce through the AP.
    DigitalTp,
    /// EdgeShard, latency-optimal DP (Zhang et al. 2024).
    EdgeshardLatency,
    /// EdgeShard, throughput-optimal DP.
    EdgeshardThroughput,
    /// EdgeShard's latency problem as published, over (layer, device): a device may hold
    /// several stages (solved exactly with the memory limits).
    EdgeshardLatencyReuse,
    /// EdgeShard's "Cloud-Edge-Opt" baseline: the latency-optimal split between the source and
    /// the last device (the cloud server) alone.
    CloudEdgeOpt,
    /// LinguaLinked: MILP assignment (latency objective), overlap and optional load balancer
    /// (Zhao et al. 2023).
    Lingualinked,
    /// LinguaLinked's MILP with the pipeline-period objective.
    LingualinkedThroughput,
    /// MDI-LLM: ring with recurrent pipeline parallelism (Macario 2024).
    Mdi,
    /// Everything on the source device.
    Single,
    /// The fastest single device that holds the model.
    BestSingle,
    /// Blocks split evenly over the devices.
    Even,
    /// Blocks split evenly between the source and the last device (EdgeShard's
    /// "Cloud-Edge-Even": the last device is the cloud server).
    CloudEdgeEven,
}

impl System {
    /// Whether it splits by layers.
    pub fn is_pipeline(self) -> bool {
        !matches!(self, System::AircompTp | System::DigitalTp)
    }

    /// Name as written in files.
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// The planner of a pipeline system; `memory_fraction` scales the problem's capacities for
    /// LinguaLinked (pass 1 when they are already scaled, as [`Setup::problem`] does).
    pub fn partitioner(self, memory_fraction: f64) -> Option<Box<dyn Partitioner>> {
        Some(match self {
            System::AircompTp | System::DigitalTp => return None,
            System::EdgeshardLatency => Box::new(EdgeShardLatency),
            System::EdgeshardThroughput => Box::new(EdgeShardThroughput),
            System::EdgeshardLatencyReuse => Box::new(EdgeShardLatencyReuse),
            System::CloudEdgeOpt => Box::new(CloudEdgeOpt { cloud: None }),
            System::Lingualinked => Box::new(LinguaLinked {
                objective: Objective::Latency,
                memory_fraction,
            }),
            System::LingualinkedThroughput => Box::new(LinguaLinked {
                objective: Objective::Bottleneck,
                memory_fraction,
            }),
            System::Mdi => Box::new(Mdi::default()),
            System::Single => Box::new(SingleDevice),
            System::BestSingle => Box::new(BestSingle),
            System::Even => Box::new(EvenSplit::default()),
            System::CloudEdgeEven => Box::new(CloudEdgeEven),
        })
    }
}

/// [`EvenSplit`] over the source and the last device.
struct CloudEdgeEven;

impl Partitioner for CloudEdgeEven {
    fn name(&self) -> &'static str {
        "cloud-edge-even"
    }
    fn partition(&self, p: &PartitionProblem) -> Result<Assignment, PartitionError> {
        let last = p.n_devices().saturating_sub(1);
        let devices = if last == p.source {
            vec![p.source]
        } else {
            vec![p.source, last]
        };
        EvenSplit {
            devices: Some(devices),
        }
        .partition(p)
    }
}

/// One slow-down of a device: from `from_s` on, its compute takes `factor` times longer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slowdown {
    /// Device index.
    pub device: usize,
    /// Simulated time it starts, s.
    pub from_s: f64,
    /// Compute-time multiplier (1 = back to normal).
    pub factor: f64,
}

/// Everything a system run needs.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Architecture.
    pub cfg: LlamaConfig,
    /// Weight storage.
    pub weights: WeightFormat,
    /// Arithmetic.
    pub precision: Precision,
    /// Device names and profiles.
    pub names: Vec<String>,
    /// Profiles.
    pub profiles: Vec<DeviceProfile>,
    /// Links of the pipeline systems (and how their wireless links share the air).
    pub net: Network,
    /// The radio of the tensor-parallel systems.
    pub radio: RadioConfig,
    /// AirComp transceiver design.
    pub design: Design,
    /// Requests and lengths.
    pub workload: Workload,
    /// The device holding the prompt and sampling.
    pub source: usize,
    /// Fraction of each device's memory the model may use.
    pub memory_fraction: f64,
    /// Hidden-state wire format of pipeline hand-offs.
    pub wire: crate::schemes::pipeline::Wire,
    /// LinguaLinked: units pre-loaded into each neighbour (0: no overlap).
    pub overlap: usize,
    /// LinguaLinked: run the load balancer every this many of sample 0's tokens (0: off).
    pub balance_every: usize,
    /// Background load.
    pub slowdowns: Vec<Slowdown>,
    /// What the pipeline planners minimise.
    pub objective: PlanObjective,
    /// What returns to the source after a pipeline's last stage.
    pub ret: Return,
    /// Where pipelines may cut the model.
    pub split: Split,
}

/// What a system run reports.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// System.
    pub system: System,
    /// Stages (pipeline systems).
    pub stages: Option<Assignment>,
    /// The planner's prediction for one sample alone (per decode step), s.
    pub predicted_latency_s: f64,
    /// The planner's predicted pipeline period for one micro-batch, s (`micro_batch /
    /// period` tokens per second).
    pub predicted_period_s: f64,
    /// The plan's time to first token for one micro-batch alone, s (prefill through the stages
    /// and the return, from the same cost model).
    pub predicted_ttft_s: f64,
    /// Samples per micro-batch in the timed run (pipeline systems; TP decodes all at once).
    pub micro_batch: usize,
    /// When the last device finished loading its weights on a cold start, s (else 0).
    pub loaded_s: f64,
    /// Time to first token (mean over samples), s.
    pub ttft_s: f64,
    /// Time per generated token of one sample, s.
    pub per_token_s: f64,
    /// Steady-state tokens per second with all samples in flight.
    pub tok_s: f64,
    /// Bytes held per device.
    pub memory_bytes: Vec<f64>,
    /// Busy fraction of each device in steady state (pipeline).
    pub utilisation: Vec<f64>,
    /// Times the balancer moved boundaries.
    pub rebalances: usize,
    /// The timed run (pipeline systems).
    #[serde(skip)]
    pub report: Option<PipelineReport>,
}

impl Setup {
    /// The pipeline cost model.
    pub fn cost(&self) -> CostSetup {
        CostSetup {
            cfg: self.cfg.clone(),
            weights: self.weights,
            precision: self.precision,
            kv_bytes: 2.0,
            profiles: self.profiles.clone(),
            wire: self.wire,
            ret: self.ret,
            split: self.split,
        }
    }

    /// The planners' problem.
    pub fn problem(&self) -> Result<PartitionProblem, PartitionError> {
        self.problem_for(self.objective)
    }

    /// The planners' problem for `objective`.
    pub fn problem_for(
        &self,
        objective: PlanObjective,
    ) -> Result<PartitionProblem, PartitionError> {
        self.cost().problem(
            &self.names,
            &self.net,
            &self.workload,
            self.source,
            self.memory_fraction,
            objective,
        )
    }

    fn background(&self) -> Background {
        let mut steps = vec![Vec::new(); self.profiles.len()];
        for s in &self.slowdowns {
            if let Some(v) = steps.get_mut(s.device) {
                v.push((s.from_s, s.factor));
            }
        }
        for v in &mut steps {
            v.sort_by(|a: &(f64, f64), b| a.0.total_cmp(&b.0));
        }
        Background { steps }
    }

    /// Check what the systems need beyond the planners' own checks.
    pub fn validate(&self) -> Result<(), PartitionError> {
        let m = self.profiles.len();
        let bad = |f: &str, r: String| PartitionError::Invalid {
            field: f.into(),
            reason: r,
        };
        if m == 0 {
            return Err(bad("devices", "no devices".into()));
        }
        if self.source >= m {
            return Err(bad(
                "source",
                format!("device {} of {m} devices", self.source),
            ));
        }
        for (i, row) in self.net.links.iter().enumerate() {
            for (j, l) in row.iter().enumerate() {
                if i != j {
                    l.validate()
                        .map_err(|e| bad(&format!("links[{i}→{j}]"), e))?;
                }
            }
        }
        for (i, s) in self.slowdowns.iter().enumerate() {
            if s.device >= m || !(s.factor.is_finite() && s.factor > 0.0) || !s.from_s.is_finite() {
                return Err(bad(
                    &format!("slowdown[{i}]"),
                    format!(
                        "device {} factor {} from {} s: need an existing device, a positive factor, a finite time",
                        s.device, s.factor, s.from_s
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// LinguaLinked's runtime balancer on the simulated devices: every `every` tokens it scales each
/// stage's predicted unit times by the measured/predicted ratio of that stage and moves the
/// boundaries inside the overlap ([`lingualinked::rebalance`]).
struct OverlapBalancer {
    problem: PartitionProblem,
    preloaded: Vec<Range<usize>>,
    every: usize,
    seen: usize,
    cost: CostSetup,
    workload: Workload,
}

impl Balancer for OverlapBalancer {
    fn observe(
        &mut self,
        _now: f64,
        cur: &Assignment,
        measured: &[f64],
        batch: usize,
    ) -> Option<Assignment> {
        self.seen += 1;
        if !self.seen.is_multiple_of(self.every) || measured.iter().any(|&m| m <= 0.0) {
            return None;
        }
        // the ratio measured / nominal of each device (its background load right now)
        let past = self.workload.prompt_tokens + self.seen.saturating_sub(1);
        let mut p = self.problem.clone();
        for (s, &m) in cur.stages.iter().zip(measured) {
            let nominal: f64 = s
                .units
                .clone()
                .map(|u| self.cost.unit_time_batch_s(s.device, u, batch, 1, past))
                .sum();
            if nominal > 0.0 {
                let r = m / nominal;
                for v in p.compute_s[s.device].iter_mut() {
                    *v *= r;
                }
            }
        }
        // rebalancing keeps the stages (and their count): the pre-loaded ranges still apply
        Some(lingualinked::rebalance(&p, cur, &self.preloaded))
    }
}

/// Plan and time `system` on `setup`.
pub fn run(
    system: System,
    setup: &Setup,
    seed: u64,
    record: bool,
) -> Result<Outcome, PartitionError> {
    setup.validate()?;
    if !system.is_pipeline() {
        return tp(system, setup, seed);
    }
    // the problem's capacities are already `memory_fraction` of each device's memory
    let planner = system
        .partitioner(1.0)
        .expect("a pipeline system has a planner");
    let (a, p, workload) = plan_batched(system, &*planner, setup)?;
    let setup = &Setup {
        workload,
        ..setup.clone()
    };
    // what the run is judged by: decode steps (the balancer's view too) and the first token,
    // whatever the planner minimised
    let p = if setup.objective == PlanObjective::Decode {
        p
    } else {
        setup.problem_for(PlanObjective::Decode)?
    };
    let cost = setup.cost();
    let background = setup.background();
    let mut preloaded_dev: Option<Vec<Range<usize>>> = None;
    let mut balancer = None;
    if matches!(
        system,
        System::Lingualinked | System::LingualinkedThroughput
    ) && setup.overlap > 0
    {
        let pre = lingualinked::overlap(&p, &a, setup.overlap);
        // per device (each device holds one stage in LinguaLinked)
        let mut per_dev = vec![0..0; setup.profiles.len()];
        for (s, r) in a.stages.iter().zip(&pre) {
            per_dev[s.device] = r.clone();
        }
        preloaded_dev = Some(per_dev);
        if setup.balance_every > 0 {
            balancer = Some(OverlapBalancer {
                problem: p.clone(),
                preloaded: pre,
                every: setup.balance_every,
                seen: 0,
                cost: cost.clone(),
                workload: setup.workload,
            });
        }
    }
    let r = simulate(
        &cost,
        &setup.net,
        &a,
        &setup.workload,
        &background,
        balancer.as_mut().map(|b| b as &mut dyn Balancer),
        preloaded_dev.as_deref(),
        seed,
        record,
    )?;
    let ttft = r.ttft_s.iter().sum::<f64>() / r.ttft_s.len() as f64;
    let p_ttft = setup.problem_for(PlanObjective::Ttft)?;
    Ok(Outcome {
        system,
        predicted_latency_s: a.latency_s(&p),
        predicted_period_s: a.bottleneck_s(&p),
        predicted_ttft_s: a.latency_s(&p_ttft),
        micro_batch: r.micro_batch,
        loaded_s: r.loaded_s,
        stages: Some(a),
        ttft_s: ttft,
        per_token_s: r.per_token_s,
        tok_s: r.steady_tok_s,
        memory_bytes: r.memory_bytes.clone(),
        utilisation: r.utilisation.clone(),
        rebalances: r.rebalances_s.len(),
        report: Some(r),
    })
}

/// Whether a system's planner minimises the pipeline period.
fn plans_throughput(system: System) -> bool {
    matches!(
        system,
        System::EdgeshardThroughput | System::LingualinkedThroughput
    )
}

/// The plan, its problem and the workload with the micro-batch size it runs. A set
/// `micro_batch` is kept (planned for one micro-batch of that size). Otherwise (ours) the size
/// b (of 1..=B; beyond 16 requests, of a log-spaced set) with the best closed-form throughput
/// `min(b / period, B / round trip)` is chosen, period and round trip being the plan's
/// [`Assignment::bottleneck_s`] and [`Assignment::latency_s`] on the problem of a micro-batch
/// of b (the exact steady state of the timed run when unit times do not depend on the
/// context): a throughput planner plans for every b, the others plan once for one request
/// (their objective) and only the batching is chosen. Ties go to the smaller b.
fn plan_batched(
    system: System,
    planner: &dyn Partitioner,
    setup: &Setup,
) -> Result<(Assignment, PartitionProblem, Workload), PartitionError> {
    let w = setup.workload;
    let cost = setup.cost();
    let with = |b: usize| -> Result<(Workload, PartitionProblem), PartitionError> {
        let wb = Workload {
            micro_batch: b,
            ..w
        };
        let p = cost.problem(
            &setup.names,
            &setup.net,
            &wb,
            setup.source,
            setup.memory_fraction,
            setup.objective,
        )?;
        p.validate()?;
        Ok((wb, p))
    };
    if w.micro_batch > 0 || w.samples == 1 {
        let (wb, p) = with(w.micro_batch.max(1))?;
        let a = planner.partition(&p)?;
        return Ok((a, p, wb));
    }
    let fixed = if plans_throughput(system) {
        None
    } else {
        Some(planner.partition(&with(1)?.1)?)
    };
    // every size up to 16 requests; beyond, powers of two, one micro-batch per k stages for
    // k up to one more than the devices, and all at once (each a plan for a throughput planner)
    let sizes: Vec<usize> = if w.samples <= 16 {
        (1..=w.samples).collect()
    } else {
        let m = setup.profiles.len();
        let mut v: Vec<usize> = (0..usize::BITS)
            .map(|i| 1usize << i)
            .take_while(|&b| b < w.samples)
            .chain((1..=m + 1).map(|k| w.samples.div_ceil(k)))
            .chain([w.samples])
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let mut best: Option<(f64, Assignment, PartitionProblem, Workload)> = None;
    for b in sizes {
        let (wb, p) = with(b)?;
        let a = match &fixed {
            Some(a) => a.clone(),
            None => match planner.partition(&p) {
                Ok(a) => a,
                // memory does not depend on b: a size that does not plan is skipped
                Err(PartitionError::Infeasible(_)) => continue,
                Err(e) => return Err(e),
            },
        };
        let est = (b as f64 / a.bottleneck_s(&p)).min(w.samples as f64 / a.latency_s(&p));
        if best.as_ref().is_none_or(|x| est > x.0) {
            best = Some((est, a, p, wb));
        }
    }
    match best {
        Some((_, a, p, wb)) => Ok((a, p, wb)),
        None => Err(PartitionError::Infeasible(format!(
            "{}: no micro-batch size of 1..={} can be planned",
            system.name(),
            w.samples
        ))),
    }
}

/// Tensor parallelism over every device with equal shares: the batch of B prompts prefilled in
/// one call (B·P positions), then B decode positions per step, every all-reduce through the
/// scheme.
fn tp(system: System, s: &Setup, seed: u64) -> Result<Outcome, PartitionError> {
    let w = &s.workload;
    let ctx = w.prompt_tokens + w.gen_tokens;
    let (mut c, _, memory_bytes) = equal_tp(system, s, w.samples * ctx, seed)?;
    simulate_forward(
        &mut c,
        &s.cfg,
        w.samples * w.prompt_tokens,
        0,
        w.samples,
        seed,
    );
    let ttft = c.now_s();
    for step in 1..w.gen_tokens {
        simulate_forward(
            &mut c,
            &s.cfg,
            w.samples,
            w.prompt_tokens + step - 1,
            w.samples,
            seed ^ step as u64,
        );
    }
    let per_token = if w.gen_tokens > 1 {
        (c.now_s() - ttft) / (w.gen_tokens - 1) as f64
    } else {
        f64::NAN
    };
    Ok(Outcome {
        system,
        stages: None,
        predicted_latency_s: f64::NAN,
        predicted_period_s: f64::NAN,
        predicted_ttft_s: f64::NAN,
        micro_batch: w.samples,
        loaded_s: 0.0,
        ttft_s: ttft,
        per_token_s: per_token,
        tok_s: w.samples as f64 / per_token,
        memory_bytes,
        utilisation: c
            .totals
            .compute_s
            .iter()
            .map(|x| x / c.now_s().max(f64::MIN_POSITIVE))
            .collect(),
        rebalances: 0,
        report: None,
    })
}

/// Tensor parallelism over every device of `s` with equal shares, its memory checked for
/// `positions` cached positions per device: the collective, the plan and each device's bytes.
fn equal_tp(
    system: System,
    s: &Setup,
    positions: usize,
    seed: u64,
) -> Result<(TpCollective, TpPlan, Vec<f64>), PartitionError> {
    let k = s.profiles.len();
    let plan =
        TpPlan::from_shares(&s.cfg, &vec![1.0; k], 32).map_err(|e| PartitionError::Invalid {
            field: "devices".into(),
            reason: e.to_string(),
        })?;
    let memory = memory_per_device(&s.cfg, &plan, s.weights.bits(), positions);
    for (d, m) in memory.iter().enumerate() {
        let cap = s.profiles[d].mem_capacity * s.memory_fraction;
        if *m > cap {
            return Err(PartitionError::Infeasible(format!(
                "tensor parallelism: device {d} ({}) needs {} but can give {}",
                s.names[d],
                gb(*m),
                gb(cap)
            )));
        }
    }
    let compute = ComputeModel::new(&s.cfg, &plan, s.profiles.clone(), s.precision, s.weights);
    let kind = match system {
        System::AircompTp => SchemeKind::Aircomp,
        _ => SchemeKind::Digital,
    };
    let c = TpCollective::new(kind, s.design, s.radio.clone(), compute, seed)
        .map_err(|e| PartitionError::Solver(e.to_string()))?;
    Ok((c, plan, memory))
}

/// Stages as text: `0:0-9 1:9-20 2:20-32` (device:units).
pub fn stages_text(a: &Assignment) -> String {
    a.stages
        .iter()
        .map(|s| format!("{}:{}-{}", s.device, s.units.start, s.units.end))
        .collect::<Vec<_>>()
        .join(" ")
}

mod serve;
pub use serve::{serve, serving_plan, ServingSetup};

#[cfg(test)]
mod tests;
