//! The serving run on the event queue (see the module doc of [`crate::serving`]).

use super::{
    Batching, Failure, Policy, Request, RequestRecord, ServingReport, Summary, SystemEvent,
};
use crate::des::{EventQueue, Time};
use crate::schemes::pipeline::{Background, CostSetup, Devices, Links, Network, Routes};
use crate::systems::stages_text;
use airinfer_plan::pipeline::Assignment;
use airinfer_plan::pipeline::PartitionError;
use std::collections::{BTreeMap, VecDeque};

/// Tensor parallelism's step times on the devices its plan uses.
pub trait TpSteps {
    /// Time of one lockstep step (every device's shard, every all-reduce, the head) of a
    /// micro-batch `groups` (`(count, t, past)`: `count` requests each with `t` new tokens
    /// after `past` cached ones), s.
    fn step_s(&mut self, groups: &[(usize, usize, usize)]) -> f64;
    /// The plan as text (the shares).
    fn plan(&self) -> String;
}

/// A plan for the devices alive (`alive[d]`), in the whole set's device indices.
pub type Replan<'a> = Box<dyn FnMut(&[bool]) -> Result<Assignment, PartitionError> + 'a>;

/// Tensor parallelism re-split over the devices alive: its steps and the time until every
/// device has read the weights of its new share, s.
pub type Resplit<'a> =
    Box<dyn FnMut(&[bool]) -> Result<(Box<dyn TpSteps + 'a>, f64), PartitionError> + 'a>;

/// What runs the batches.
pub enum Executor<'a> {
    /// Stages on devices, hand-offs over links ([`crate::schemes::pipeline`]'s cost model).
    Pipeline {
        /// The cost model.
        cost: &'a CostSetup,
        /// The links and how they share the air.
        net: &'a Network,
        /// The plan at the start.
        stages: Assignment,
        /// Background load.
        background: &'a Background,
        /// The planner, for failures.
        replan: Replan<'a>,
    },
    /// Every device in lockstep.
    Tp {
        /// Step times.
        steps: Box<dyn TpSteps + 'a>,
        /// The re-split, for failures.
        resplit: Resplit<'a>,
    },
}

#[derive(Debug, Clone, Copy)]
enum Ev {
    /// Request `r` arrives.
    Arrival(usize),
    /// A micro-batch's inputs reach stage `stage` of its step.
    Stage {
        slot: usize,
        epoch: u64,
        stage: usize,
    },
    /// Stage `stage` of a micro-batch's step is done: its outputs go on the links.
    Sent {
        slot: usize,
        epoch: u64,
        stage: usize,
    },
    /// A micro-batch's tokens reached the source.
    Token { slot: usize, epoch: u64 },
    /// Failure `i` takes its device away.
    Fail(usize),
    /// Failure `i`'s device is back.
    Rejoin(usize),
    /// Start what waits, in every free place (after an arrival, or once a re-plan is done).
    Ready,
}

/// A micro-batch place in the system.
#[derive(Debug, Clone, Default)]
struct Slot {
    members: Vec<usize>,
    running: bool,
    epoch: u64,
    /// `(count, t, past)` of the step running.
    groups: Vec<(usize, usize, usize)>,
    /// Requests of the step running that prefill.
    prefill: Vec<bool>,
    /// The jobs of its step so far: (start, end, devices busy).
    jobs: Vec<(Time, Time, usize)>,
    /// Per stage of its step, the bytes it sends on: (hidden state, return).
    out: BTreeMap<usize, (f64, f64)>,
}

struct Pipe<'a> {
    cost: &'a CostSetup,
    background: &'a Background,
    /// The plan and its routes; none while no plan fits the devices alive.
    live: Option<(Assignment, Routes)>,
    devs: Devices,
    links: Links<'a>,
    pending: BTreeMap<(usize, u64, usize), usize>,
    replan: Replan<'a>,
}

/// The plan and routes of the steps running (there are steps only while there is a plan).
fn running(live: &Option<(Assignment, Routes)>) -> (&Assignment, &Routes) {
    let (a, r) = live.as_ref().expect("a running step has a plan");
    (a, r)
}

/// Whether an event of `slot` at `epoch` belongs to a step abandoned since (a failure).
fn stale(slots: &[Slot], slot: usize, epoch: u64) -> bool {
    slots.get(slot).is_none_or(|s| s.epoch != epoch)
}

struct Tp<'a> {
    steps: Option<Box<dyn TpSteps + 'a>>,
    free: Time,
    resplit: Resplit<'a>,
}

enum Exec<'a> {
    Pipe(Box<Pipe<'a>>),
    Tp(Tp<'a>),
}

impl<'a> Exec<'a> {
    /// The pipeline (stage and send events come from pipelines only).
    fn pipe(&mut self) -> &mut Pipe<'a> {
        match self {
            Exec::Pipe(p) => p,
            Exec::Tp(_) => unreachable!("stage and send events come from pipelines"),
        }
    }

    fn stages(&self) -> usize {
        match self {
            Exec::Pipe(p) => p.live.as_ref().map_or(0, |(a, _)| a.stages.len()),
            Exec::Tp(_) => 1,
        }
    }

    fn up(&self) -> bool {
        match self {
            Exec::Pipe(p) => p.live.is_some(),
            Exec::Tp(t) => t.steps.is_some(),
        }
    }

    fn plan_text(&self) -> String {
        match self {
            Exec::Pipe(p) => p
                .live
                .as_ref()
                .map_or("none".into(), |(a, _)| stages_text(a)),
            Exec::Tp(t) => t.steps.as_ref().map_or("none".into(), |s| s.plan()),
        }
    }
}

fn bad(field: &str, reason: impl Into<String>) -> PartitionError {
    PartitionError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Serve `requests` (sorted by arrival) on `exec` with `policy`, `devices` devices of which
/// `source` holds the queue, `failures` happening on the way; link draws from `seed`.
pub fn serve(
    exec: Executor<'_>,
    requests: &[Request],
    policy: &Policy,
    failures: &[Failure],
    devices: usize,
    source: usize,
    seed: u64,
) -> Result<ServingReport, PartitionError> {
    if policy.max_batch == 0 {
        return Err(bad(
            "serving.max_batch",
            "0: a batch holds at least one request",
        ));
    }
    if requests.is_empty() {
        return Err(bad("serving.requests", "no requests"));
    }
    for (i, r) in requests.iter().enumerate() {
        if r.prompt_tokens == 0 || r.gen_tokens == 0 || r.arrival_s.is_nan() || r.arrival_s < 0.0 {
            return Err(bad(
                "serving.requests",
                format!("request {i}: needs prompt and output tokens and an arrival time ≥ 0"),
            ));
        }
        if i > 0 && r.arrival_s < requests[i - 1].arrival_s {
            return Err(bad(
                "serving.requests",
                format!("request {i}: not sorted by arrival"),
            ));
        }
    }
    for (i, f) in failures.iter().enumerate() {
        f.check(devices, source)
            .map_err(|(key, why)| bad(&format!("serving.failure[{i}].{key}"), why))?;
    }
    let mut exec = match exec {
        Executor::Pipeline {
            cost,
            net,
            stages,
            background,
            replan,
        } => {
            let n = cost.n_units();
            if net.n() != devices || cost.profiles.len() != devices {
                return Err(bad(
                    "links",
                    format!("{} devices, {devices} expected", net.n()),
                ));
            }
            stages.check_cover(n, devices)?;
            if stages.stages[0].device != source {
                return Err(bad("stages", "the first stage is not on the source"));
            }
            if !failures.is_empty() {
                for (d, p) in cost.profiles.iter().enumerate() {
                    if p.storage_bandwidth <= 0.0 {
                        return Err(bad(
                            "storage_bandwidth",
                            format!("device {d} has none: after a failure weights are read from storage"),
                        ));
                    }
                }
            }
            let routes = Routes::new(&stages, &cost.residual_links(), n);
            // each device holds the weights of its stages
            let mut devs = Devices::new(devices, n);
            devs.hold_only(&stages);
            Exec::Pipe(Box::new(Pipe {
                cost,
                background,
                live: Some((stages, routes)),
                devs,
                links: Links::new(net, seed, false),
                pending: BTreeMap::new(),
                replan,
            }))
        }
        Executor::Tp { steps, resplit } => Exec::Tp(Tp {
            steps: Some(steps),
            free: Time::ZERO,
            resplit,
        }),
    };
    let in_flight = |e: &Exec| {
        if policy.max_in_flight > 0 {
            policy.max_in_flight
        } else {
            e.stages().max(1)
        }
    };
    let plan = exec.plan_text();
    let mut slots = vec![Slot::default(); in_flight(&exec)];
    let mut records: Vec<RequestRecord> = requests.iter().map(|&r| RequestRecord::new(r)).collect();
    let mut kv = vec![false; requests.len()];
    let mut queue: VecDeque<usize> = VecDeque::new();
    let mut alive = vec![true; devices];
    let mut events: Vec<SystemEvent> = Vec::new();
    let mut lost_work_s = 0.0;
    let mut token_log = Vec::new();
    let mut q: EventQueue<Ev> = EventQueue::new();
    for (i, r) in requests.iter().enumerate() {
        q.schedule(Time::from_secs(r.arrival_s), 2, Ev::Arrival(i));
    }
    for (i, f) in failures.iter().enumerate() {
        q.schedule(Time::from_secs(f.at_s), 0, Ev::Fail(i));
        if let Some(r) = f.rejoin_s {
            q.schedule(Time::from_secs(r), 0, Ev::Rejoin(i));
        }
    }

    // start slot k's next step at `now` if it has requests (taking waiting ones first as the
    // batching allows)
    let dispatch = |k: usize,
                    now: Time,
                    slots: &mut Vec<Slot>,
                    queue: &mut VecDeque<usize>,
                    records: &mut Vec<RequestRecord>,
                    kv: &mut Vec<bool>,
                    exec: &mut Exec,
                    q: &mut EventQueue<Ev>| {
        if !exec.up() || slots[k].running {
            return;
        }
        let s = &mut slots[k];
        if policy.batching == Batching::Continuous || s.members.is_empty() {
            while s.members.len() < policy.max_batch {
                match queue.pop_front() {
                    Some(r) => {
                        if records[r].started_s.is_nan() {
                            records[r].started_s = now.secs();
                        }
                        s.members.push(r);
                    }
                    None => break,
                }
            }
        }
        if s.members.is_empty() {
            return;
        }
        // (t, past) of each member: a prefill of the prompt and what it already received, or
        // one decode step
        let mut shape: BTreeMap<(usize, usize), usize> = BTreeMap::new();
        s.prefill.clear();
        for &r in &s.members {
            let rec = &records[r];
            let ctx = rec.request.prompt_tokens + rec.tokens;
            let tp = if kv[r] { (1, ctx - 1) } else { (ctx, 0) };
            s.prefill.push(!kv[r]);
            *shape.entry(tp).or_insert(0) += 1;
        }
        s.groups = shape.into_iter().map(|((t, p), n)| (n, t, p)).collect();
        s.running = true;
        s.jobs.clear();
        s.out.clear();
        let epoch = s.epoch;
        match exec {
            Exec::Pipe(_) => q.schedule(
                now,
                1,
                Ev::Stage {
                    slot: k,
                    epoch,
                    stage: 0,
                },
            ),
            Exec::Tp(t) => {
                let dt = t.steps.as_mut().expect("up").step_s(&s.groups);
                let start = now.max(t.free);
                let done = start.after(Time::from_secs(dt));
                t.free = done;
                s.jobs.push((start, done, devices));
                q.schedule(done, 1, Ev::Token { slot: k, epoch });
            }
        }
    };

    while let Some((now, ev)) = q.pop() {
        match ev {
            Ev::Arrival(r) => {
                if policy.queue_capacity > 0 && queue.len() >= policy.queue_capacity {
                    records[r].rejected = true;
                    continue;
                }
                queue.push_back(r);
                q.schedule(now, 1, Ev::Ready);
            }
            Ev::Stage { slot, epoch, stage } => {
                if stale(&slots, slot, epoch) {
                    continue;
                }
                let p = exec.pipe();
                let (a, r) = running(&p.live);
                if r.need(stage) > 1 {
                    let got = p.pending.entry((slot, epoch, stage)).or_insert(0);
                    *got += 1;
                    if *got < r.need(stage) {
                        continue;
                    }
                    p.pending.remove(&(slot, epoch, stage));
                }
                let s = &mut slots[slot];
                let first = s.prefill.iter().all(|&x| x);
                let job =
                    p.devs
                        .run_stage((p.cost, p.background), (a, r), stage, &s.groups, first, now);
                s.jobs.push((job.start, job.done, 1));
                s.out.insert(stage, (job.hidden, job.back));
                // the sends happen when the job is done, in time order with every other
                // send (a shared channel is first come first served)
                q.schedule(job.done, 1, Ev::Sent { slot, epoch, stage });
            }
            Ev::Sent { slot, epoch, stage } => {
                if stale(&slots, slot, epoch) {
                    continue;
                }
                let p = exec.pipe();
                let (a, r) = running(&p.live);
                let s = &mut slots[slot];
                let (hidden, back) = s.out.remove(&stage).expect("the stage ran");
                let d = a.stages[stage].device;
                let tag = s.members[0];
                for &k in &r.out[stage] {
                    let at = p.links.send(d, a.stages[k].device, now, hidden, tag, 0);
                    q.schedule(
                        at,
                        1,
                        Ev::Stage {
                            slot,
                            epoch,
                            stage: k,
                        },
                    );
                }
                if stage + 1 == a.stages.len() {
                    let at = p.links.send(d, source, now, back, tag, 0);
                    q.schedule(at, 1, Ev::Token { slot, epoch });
                }
            }
            Ev::Token { slot, epoch } => {
                if stale(&slots, slot, epoch) {
                    continue;
                }
                let s = &mut slots[slot];
                s.running = false;
                token_log.push((now.secs(), s.members.len()));
                for (i, &r) in s.members.iter().enumerate() {
                    let rec = &mut records[r];
                    rec.tokens += 1;
                    debug_assert!(rec.tokens <= rec.request.gen_tokens);
                    if rec.tokens == 1 {
                        rec.first_token_s = now.secs();
                    }
                    if rec.tokens == rec.request.gen_tokens {
                        rec.done_s = now.secs();
                    }
                    if s.prefill[i] {
                        kv[r] = true;
                    }
                }
                s.members.retain(|&r| !records[r].finished());
                dispatch(
                    slot,
                    now,
                    &mut slots,
                    &mut queue,
                    &mut records,
                    &mut kv,
                    &mut exec,
                    &mut q,
                );
            }
            Ev::Fail(i) | Ev::Rejoin(i) => {
                let f = failures[i];
                let back = matches!(ev, Ev::Rejoin(_));
                if alive[f.device] != back {
                    alive[f.device] = back;
                    // every micro-batch in flight is abandoned: its requests go back to the
                    // head of the queue, in arrival order, their caches gone
                    let mut retried: Vec<usize> = Vec::new();
                    for s in slots.iter_mut() {
                        if s.running {
                            // what the abandoned step's jobs had computed by now
                            lost_work_s += s
                                .jobs
                                .iter()
                                .map(|&(a, b, n)| {
                                    (b.min(now).secs() - a.secs()).max(0.0) * n as f64
                                })
                                .sum::<f64>();
                        }
                        retried.append(&mut s.members);
                        s.running = false;
                        s.epoch += 1;
                    }
                    retried.sort_unstable();
                    for &r in retried.iter().rev() {
                        records[r].retries += 1;
                        kv[r] = false;
                        queue.push_front(r);
                    }
                    let (start, ready) = replan(&mut exec, &alive, f.device, back, now)?;
                    events.push(SystemEvent {
                        at_s: now.secs(),
                        what: format!("{} dev{}", if back { "rejoin" } else { "fail" }, f.device),
                        plan: exec.plan_text(),
                        retried: retried.len(),
                        ready_s: ready.secs(),
                    });
                    let epoch = slots.iter().map(|s| s.epoch).max().unwrap_or(0);
                    slots = vec![
                        Slot {
                            epoch,
                            ..Slot::default()
                        };
                        in_flight(&exec)
                    ];
                    q.schedule(start, 1, Ev::Ready);
                }
            }
            Ev::Ready => {
                for k in 0..slots.len() {
                    dispatch(
                        k,
                        now,
                        &mut slots,
                        &mut queue,
                        &mut records,
                        &mut kv,
                        &mut exec,
                        &mut q,
                    );
                }
            }
        }
    }
    let summary = Summary::of(&records);
    Ok(ServingReport {
        plan,
        records,
        summary,
        events,
        lost_work_s,
        token_log,
    })
}

/// Re-plan for the devices `alive` after `device` left (or came back, `back`) at `now`, the
/// jobs in flight abandoned: when the system may start again, and when every device has read
/// the weights it lacked. (A pipeline starts at once, each unit running once it is read.)
fn replan(
    exec: &mut Exec,
    alive: &[bool],
    device: usize,
    back: bool,
    now: Time,
) -> Result<(Time, Time), PartitionError> {
    match exec {
        Exec::Pipe(p) => {
            let n = p.cost.n_units();
            // the leaving device's memory is gone; a device coming back starts empty
            p.devs.loaded[device] = vec![Time::MAX; n];
            if back {
                p.devs.free[device] = p.devs.free[device].max(now);
                p.devs.storage_free[device] = p.devs.storage_free[device].max(now);
            }
            p.pending.clear();
            for f in p.devs.free.iter_mut() {
                *f = (*f).min(now);
            }
            let plan = match (p.replan)(alive) {
                Ok(a) => Some(a),
                Err(PartitionError::Infeasible(_)) => None,
                Err(e) => return Err(e),
            };
            let mut ready = now;
            if let Some(a) = &plan {
                // keep what each device holds of its new units, drop the rest, read the missing
                p.devs.hold_only(a);
                for s in &a.stages {
                    for u in s.units.clone() {
                        ready = ready.max(p.devs.load(p.cost, s.device, u, now));
                    }
                }
                p.devs.cold = true;
            }
            p.live = plan.map(|a| {
                let r = Routes::new(&a, &p.cost.residual_links(), n);
                (a, r)
            });
            Ok((now, ready))
        }
        Exec::Tp(t) => match (t.resplit)(alive) {
            Ok((steps, reload_s)) => {
                t.steps = Some(steps);
                let ready = now.after(Time::from_secs(reload_s));
                t.free = ready;
                Ok((ready, ready))
            }
            Err(PartitionError::Infeasible(_)) => {
                t.steps = None;
                Ok((now, now))
            }
            Err(e) => Err(e),
        },
    }
}
