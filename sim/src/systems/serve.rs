//! A system serving arriving requests ([`crate::serving`]): planned as [`run`] plans it, for
//! micro-batches of the serving policy's size, and re-planned by the same planner on the
//! devices left after a failure.

use super::*;
use crate::serving::{self, Executor, Failure, Policy, Request, ServingReport, TpSteps};
use std::collections::BTreeMap;

/// What a serving run needs beyond the [`Setup`].
#[derive(Debug, Clone)]
pub struct ServingSetup {
    /// The requests, sorted by arrival.
    pub requests: Vec<Request>,
    /// Scheduler limits.
    pub policy: Policy,
    /// Devices leaving and rejoining.
    pub failures: Vec<Failure>,
}

impl Setup {
    /// The setup restricted to the devices `alive` (kept in order), and the index each kept
    /// device had. The source must be alive.
    pub fn subset(&self, alive: &[bool]) -> (Setup, Vec<usize>) {
        let keep: Vec<usize> = (0..self.profiles.len()).filter(|&d| alive[d]).collect();
        let pick = |v: &[f64]| -> Vec<f64> {
            if v.is_empty() {
                Vec::new()
            } else {
                keep.iter().map(|&d| v[d]).collect()
            }
        };
        let new_index = |d: usize| keep.iter().position(|&k| k == d);
        let mut radio = self.radio.clone();
        radio.gains = pick(&self.radio.gains);
        radio.tx_power = pick(&self.radio.tx_power);
        let s = Setup {
            names: keep.iter().map(|&d| self.names[d].clone()).collect(),
            profiles: keep.iter().map(|&d| self.profiles[d].clone()).collect(),
            net: Network {
                links: keep
                    .iter()
                    .map(|&i| keep.iter().map(|&j| self.net.links[i][j].clone()).collect())
                    .collect(),
                medium: self.net.medium,
            },
            radio,
            source: new_index(self.source).unwrap_or(0),
            slowdowns: self
                .slowdowns
                .iter()
                .filter_map(|s| new_index(s.device).map(|device| Slowdown { device, ..*s }))
                .collect(),
            ..self.clone()
        };
        (s, keep)
    }

    /// The planning workload of a serving policy: micro-batches of `max_batch` requests, as
    /// many in flight as the policy allows (one per device by default), of the setup's lengths.
    fn serving_workload(&self, policy: &Policy) -> Workload {
        let in_flight = if policy.max_in_flight > 0 {
            policy.max_in_flight
        } else {
            self.profiles.len()
        };
        Workload {
            samples: policy.max_batch * in_flight,
            micro_batch: policy.max_batch,
            cold_start: false,
            ..self.workload
        }
    }
}

/// The plan `system`'s planner makes on `setup` for micro-batches of the policy's size.
pub fn serving_plan(
    system: System,
    setup: &Setup,
    policy: &Policy,
) -> Result<Assignment, PartitionError> {
    let planner = system
        .partitioner(1.0)
        .expect("a pipeline system has a planner");
    let s = Setup {
        workload: setup.serving_workload(policy),
        ..setup.clone()
    };
    // a fixed micro-batch (max_batch ≥ 1): plan_batched's one plan for it
    super::plan_batched(system, &*planner, &s).map(|(a, _, _)| a)
}

/// Tensor parallelism's step times: a [`TpCollective`] stepped for a batch (its own clock runs
/// on by the step's time; the fading it sees is a realisation at its clock, not at the serving
/// clock, which also counts idle time). A batch is one call: every request's new tokens after
/// the batch's mean cached context, rounded to 16 positions. Each such shape is simulated for
/// its first [`SAMPLES`] steps (each its own channel realisations) and later steps of the shape
/// take those times in turn (ours: a 40-block model's step is 80 simulated all-reduces, and a
/// serving run has thousands of steps).
struct CollectiveSteps {
    c: TpCollective,
    cfg: LlamaConfig,
    plan: String,
    calls: u64,
    seen: BTreeMap<(usize, usize, usize), (Vec<f64>, usize)>,
}

/// Step times simulated per batch shape.
const SAMPLES: usize = 4;

impl TpSteps for CollectiveSteps {
    fn step_s(&mut self, groups: &[(usize, usize, usize)]) -> f64 {
        let rows: usize = groups.iter().map(|g| g.0).sum();
        let tokens: usize = groups.iter().map(|&(n, t, _)| n * t).sum();
        let past = groups.iter().map(|&(n, _, p)| n * p).sum::<usize>() / rows.max(1);
        let past = (past + 8) / 16 * 16;
        let (times, next) = self.seen.entry((tokens, past, rows)).or_default();
        if times.len() < SAMPLES {
            let before = self.c.now_s();
            self.calls += 1;
            simulate_forward(&mut self.c, &self.cfg, tokens, past, rows, self.calls);
            times.push(self.c.now_s() - before);
            return *times.last().expect("pushed");
        }
        *next = (*next + 1) % SAMPLES;
        times[*next]
    }

    fn plan(&self) -> String {
        self.plan.clone()
    }
}

/// Tensor parallelism with equal shares over `s`'s devices, its memory checked for `positions`
/// cached positions per device.
fn tp_collective(
    system: System,
    s: &Setup,
    positions: usize,
    seed: u64,
) -> Result<(CollectiveSteps, TpPlan), PartitionError> {
    let (c, plan, _) = equal_tp(system, s, positions, seed)?;
    let text = format!("{} equal shares", s.profiles.len());
    Ok((
        CollectiveSteps {
            c,
            cfg: s.cfg.clone(),
            plan: text,
            calls: 0,
            seen: BTreeMap::new(),
        },
        plan,
    ))
}

/// Bytes of matrix weights each device of `plan` holds.
fn shard_bytes(s: &Setup, plan: &TpPlan) -> Vec<f64> {
    (0..plan.n_devices())
        .map(|d| {
            airinfer_llm::cost::Shard::of_plan(plan, d).matrix_weights(&s.cfg) as f64
                * s.cfg.n_layer as f64
                * s.weights.bits()
                / 8.0
        })
        .collect()
}

/// Serve `serving`'s requests with `system` on `setup`.
pub fn serve(
    system: System,
    setup: &Setup,
    serving: &ServingSetup,
    seed: u64,
) -> Result<ServingReport, PartitionError> {
    setup.validate()?;
    let m = setup.profiles.len();
    let policy = &serving.policy;
    let w = setup.serving_workload(policy);
    let positions = w.samples * (w.prompt_tokens + w.gen_tokens);
    if system.is_pipeline() {
        let stages = serving_plan(system, setup, policy)?;
        let cost = setup.cost();
        let background = setup.background();
        let replan = Box::new(
            move |alive: &[bool]| -> Result<Assignment, PartitionError> {
                let (sub, keep) = setup.subset(alive);
                let a = serving_plan(system, &sub, policy)?;
                Ok(Assignment {
                    stages: a
                        .stages
                        .into_iter()
                        .map(|st| airinfer_plan::pipeline::Stage {
                            device: keep[st.device],
                            units: st.units,
                        })
                        .collect(),
                })
            },
        );
        serving::serve(
            Executor::Pipeline {
                cost: &cost,
                net: &setup.net,
                stages,
                background: &background,
                replan,
            },
            &serving.requests,
            policy,
            &serving.failures,
            m,
            setup.source,
            seed,
        )
    } else {
        let (steps, plan) = tp_collective(system, setup, positions, seed)?;
        // what each device holds now, to price the re-split's reads
        let mut held = shard_bytes(setup, &plan);
        let resplit = Box::new(
            move |alive: &[bool]| -> Result<(Box<dyn TpSteps>, f64), PartitionError> {
                let (sub, keep) = setup.subset(alive);
                let (steps, plan) = tp_collective(system, &sub, positions, seed ^ 0x5E5)?;
                let need = shard_bytes(&sub, &plan);
                let mut reload_s: f64 = 0.0;
                let mut now_held = vec![0.0; m];
                for (i, &d) in keep.iter().enumerate() {
                    let bw = setup.profiles[d].storage_bandwidth;
                    let extra = (need[i] - held[d]).max(0.0);
                    if extra > 0.0 {
                        if bw <= 0.0 {
                            return Err(PartitionError::Invalid {
                                field: "storage_bandwidth".into(),
                                reason: format!(
                                    "device {d} has none: a re-split reads weights from storage"
                                ),
                            });
                        }
                        reload_s = reload_s.max(extra / bw);
                    }
                    now_held[d] = need[i];
                }
                held = now_held;
                Ok((Box::new(steps) as Box<dyn TpSteps>, reload_s))
            },
        );
        serving::serve(
            Executor::Tp {
                steps: Box::new(steps),
                resplit,
            },
            &serving.requests,
            policy,
            &serving.failures,
            m,
            setup.source,
            seed,
        )
    }
}
