//! EdgeShard planners: joint device selection and model partition by dynamic programming
//! (M. Zhang, J. Cao, X. Shen, Z. Cui, "EdgeShard: Efficient LLM Inference via Collaborative
//! Edge Computing", arXiv:2405.14371, 2024; IEEE Internet of Things Journal 12(10), 2025).
//!
//! EdgeShard cuts the model's chain of units into contiguous shards, picks which of the
//! available devices hold them (devices may stay unused) and in which order, and places the
//! first shard on the device that holds the input. Every chosen device holds exactly one shard,
//! whose units must fit in its memory. Two objectives, each solved exactly:
//!
//! * [`EdgeShardLatency`] minimises [`Assignment::latency_s`] (one sample alone);
//! * [`EdgeShardThroughput`] minimises [`Assignment::bottleneck_s`] (the pipeline period), and
//!   among the assignments with that period the one with the least latency.
//!
//! The paper states its latency problem over (layer, device), so a device may hold several
//! stages (source → server → source → server); [`EdgeShardLatencyReuse`] solves that problem
//! exactly, each device's memory summed over all its stages, by a label-setting search with
//! bounds (module `reuse`); its optimum is never slower than [`EdgeShardLatency`]'s. Its
//! throughput problem uses device sets as the dynamic programme below does. The paper's
//! "Cloud-Edge-Opt" baseline, the latency optimum on the source and one cloud device only, is
//! [`CloudEdgeOpt`].
//!
//! # The recurrence
//!
//! Let `s` be the source, `n` the number of units, and for a device `d` and units `i..j`
//! `C_d(i, j) = Σ_{u=i}^{j−1} compute_s[d][u]`, `M(i, j) = Σ_{u=i}^{j−1} memory[u]`, and
//! `T(d, e, i)` the hand-off from the stage ending at unit `i − 1` on `d` to the next stage on
//! `e`: for the latency its time `transfer_s(d, e, out_bytes[i − 1])`, for the bottleneck the
//! load it puts on its link, `link_load_s` (the serialisation; the latency does not occupy the
//! link). `⊕` is `+` for latency and `max` for the bottleneck. The state is `F(S, d, j)`: the
//! best partial score of an assignment of units `0..j` whose stages use exactly the device set
//! `S ∋ s` and whose last stage is on `d ∈ S` and ends just before unit `j`:
//!
//! ```text
//! F({s}, s, j)      = C_s(0, j)                                        if M(0, j) ≤ cap_s
//! F(S ∪ {e}, e, j)  = min_{i < j, d ∈ S} F(S, d, i) ⊕ T(d, e, i) ⊕ C_e(i, j)
//!                                                     for e ∉ S, if M(i, j) ≤ cap_e
//! optimum           = min_{S, d} F(S, d, n) ⊕ T(d, s, n)               (return to the source)
//! ```
//!
//! Both are exact: the future cost depends only on `(S, d, j)` and `⊕` is monotone. For the
//! bottleneck this needs each resource to appear in one term only, which holds because a
//! device holds at most one stage and, the devices of the chain being distinct, every hand-off
//! uses its own directed link and the return link `d_k → s` is none of them; so
//! [`Assignment::bottleneck_s`] is exactly the `max` of the terms.
//!
//! The minimum over `(i, d)` is split in two to save a factor: for each `(S, e, i)` first
//! `G = min_{d ∈ S} F(S, d, i) ⊕ T(d, e, i)`, then one sweep of `j = i + 1, …, n` accumulates
//! `C_e(i, j)` and `M(i, j)` (the running sums play the part of per-device prefix sums, and
//! reproduce [`Assignment`]'s own sums bit for bit) and stops as soon as the memory is
//! exceeded, memory being monotone in `j`. Sets are bitmasks visited in increasing order, so
//! every `F(S, ·, ·)` is final before it is read. With `m` devices the cost is
//! `O(2^(m−1) · m · n · (m + n))` time and `2^(m−1) · m · (n + 1)` states; at most
//! [`MAX_DEVICES`] devices and [`MAX_DP_STATES`] states are accepted.
//!
//! The memory test is the one of [`Assignment::memory_violation`] (`need > cap · (1 + 1e−12)`),
//! so the planners and that check agree on what fits. Ties are broken deterministically: the
//! first candidate in loop order (sets ascending, then next device, then cut, then previous
//! device, all ascending) wins, comparisons being strict.
//!
//! The throughput planner runs two passes: the bottleneck DP gives the optimal period `B*`;
//! a latency DP that only admits stages of at most `B*` seconds and transfers whose link load
//! is at most `B*` then finds the fastest assignment with that period (the loads are computed
//! identically in both passes, so the optimum of the first pass is admitted by the second).
//!
//! EdgeShard's network model has only the sequential hand-offs between consecutive units, so a
//! problem with residual links is refused.

use crate::pipeline::{Assignment, PartitionError, PartitionProblem, Partitioner, Stage};

mod cloud_edge;
mod reuse;

pub use cloud_edge::CloudEdgeOpt;
pub use reuse::{
    EdgeShardLatencyReuse, MAX_DOMINANCE_TESTS, MAX_LABELS, MAX_REUSE_DEVICES,
    QUANTIZED_MAX_ENTRIES,
};

/// Most devices the planners accept: the state space grows as `2^(m−1)` in the device count.
pub const MAX_DEVICES: usize = 16;

/// Most dynamic-programming states (`2^(m−1) · m · (n + 1)` for `m` devices and `n` units)
/// the planners allocate; each takes 12 bytes.
pub const MAX_DP_STATES: usize = 1 << 26;

/// EdgeShard's latency planner: the assignment with the least [`Assignment::latency_s`], each
/// device holding at most one contiguous stage within its memory, the first on the source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EdgeShardLatency;

/// EdgeShard's throughput planner: the assignment with the least [`Assignment::bottleneck_s`]
/// (the pipeline period), and among those the least [`Assignment::latency_s`], each device
/// holding at most one contiguous stage within its memory, the first on the source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EdgeShardThroughput;

impl Partitioner for EdgeShardLatency {
    fn name(&self) -> &'static str {
        "edgeshard-latency"
    }

    fn partition(&self, p: &PartitionProblem) -> Result<Assignment, PartitionError> {
        check(p)?;
        match solve(p, Objective::Latency { cap: f64::INFINITY })? {
            Some((_, a)) => Ok(a),
            None => Err(PartitionError::Infeasible(why_infeasible(p))),
        }
    }
}

impl Partitioner for EdgeShardThroughput {
    fn name(&self) -> &'static str {
        "edgeshard-throughput"
    }

    fn partition(&self, p: &PartitionProblem) -> Result<Assignment, PartitionError> {
        check(p)?;
        let Some((period, _)) = solve(p, Objective::Bottleneck)? else {
            return Err(PartitionError::Infeasible(why_infeasible(p)));
        };
        match solve(p, Objective::Latency { cap: period })? {
            Some((_, a)) => Ok(a),
            None => Err(PartitionError::Solver(format!(
                "edgeshard-throughput: no assignment with the optimal period {period} s in the \
                 latency pass (internal inconsistency)"
            ))),
        }
    }
}

/// Validate `p` and check it is within EdgeShard's model and the planners' size limits.
fn check(p: &PartitionProblem) -> Result<(), PartitionError> {
    p.validate()?;
    if !p.residual.is_empty() {
        return Err(PartitionError::Invalid {
            field: "residual".into(),
            reason: format!(
                "{} residual link(s): EdgeShard's model has only the sequential hand-offs \
                 between consecutive units",
                p.residual.len()
            ),
        });
    }
    let (n, m) = (p.n_units(), p.n_devices());
    if m > MAX_DEVICES {
        return Err(PartitionError::Invalid {
            field: "devices".into(),
            reason: format!(
                "{m} devices: EdgeShard's dynamic programme is exponential in the device count \
                 and accepts at most {MAX_DEVICES}"
            ),
        });
    }
    let states = (1usize << (m - 1))
        .checked_mul(m)
        .and_then(|x| x.checked_mul(n + 1));
    match states {
        Some(s) if s <= MAX_DP_STATES => Ok(()),
        _ => Err(PartitionError::Invalid {
            field: "devices".into(),
            reason: format!(
                "{m} devices × {n} units need 2^{} · {m} · {} dynamic-programming states, more \
                 than the limit of {MAX_DP_STATES}; use fewer devices",
                m - 1,
                n + 1
            ),
        }),
    }
}

/// What the dynamic programme minimises.
#[derive(Debug, Clone, Copy)]
enum Objective {
    /// Σ of the terms, admitting only terms of at most `cap` seconds (∞: no restriction).
    Latency { cap: f64 },
    /// max of the terms.
    Bottleneck,
}

impl Objective {
    /// `a ⊕ b`.
    fn combine(self, a: f64, b: f64) -> f64 {
        match self {
            Objective::Latency { .. } => a + b,
            Objective::Bottleneck => a.max(b),
        }
    }

    /// Whether a stage or transfer of `term` seconds (its resource's load) is allowed.
    fn admits(self, term: f64) -> bool {
        match self {
            Objective::Latency { cap } => term <= cap,
            Objective::Bottleneck => true,
        }
    }

    /// The term of a transfer of `bytes` from `d` to `e` in this objective, and its link's
    /// load (what `admits` judges): the transfer's time for the latency, the link's load —
    /// the serialisation, without the latency — for the bottleneck.
    fn transfer(self, p: &PartitionProblem, d: usize, e: usize, bytes: f64) -> (f64, f64) {
        let load = p.link_load_s(d, e, bytes);
        match self {
            Objective::Latency { .. } => (p.transfer_s(d, e, bytes), load),
            Objective::Bottleneck => (load, load),
        }
    }
}

/// Parent pointer of a first stage (no predecessor).
const FIRST: u32 = u32::MAX;
/// Bits of a parent pointer that hold the previous device (`MAX_DEVICES` ≤ 16).
const DEV_BITS: u32 = 4;

/// Relative tolerance of the memory test, as in [`Assignment::memory_violation`].
const MEMORY_RTOL: f64 = 1e-12;

/// A vector of `len` copies of `v`, or a solver error if the memory is not available.
fn filled<T: Clone>(len: usize, v: T) -> Result<Vec<T>, PartitionError> {
    let mut out = Vec::new();
    out.try_reserve_exact(len).map_err(|e| {
        PartitionError::Solver(format!(
            "cannot allocate {len} dynamic-programming states: {e}"
        ))
    })?;
    out.resize(len, v);
    Ok(out)
}

/// The set index of a full device mask: `mask` without the source's bit.
fn compress(mask: u32, s: usize) -> usize {
    let low = (1u32 << s) - 1;
    ((mask & low) | ((mask >> (s + 1)) << s)) as usize
}

/// The full device mask of a set index: `r` with the source's bit inserted.
fn expand(r: usize, s: usize) -> u32 {
    let r = r as u32;
    let low = (1u32 << s) - 1;
    (r & low) | ((r >> s) << (s + 1)) | (1u32 << s)
}

/// Run the dynamic programme; `Ok(None)` when no assignment is feasible (or admitted), else
/// the optimal value and an assignment attaining it. `p` must have passed [`check`].
fn solve(
    p: &PartitionProblem,
    obj: Objective,
) -> Result<Option<(f64, Assignment)>, PartitionError> {
    let (n, m, s) = (p.n_units(), p.n_devices(), p.source);
    let sets = 1usize << (m - 1);
    let stride_d = n + 1;
    let stride_r = m * stride_d;
    let idx = |r: usize, d: usize, j: usize| r * stride_r + d * stride_d + j;
    let limit: Vec<f64> = p.capacity.iter().map(|c| c * (1.0 + MEMORY_RTOL)).collect();

    let mut val = filled(sets * stride_r, f64::INFINITY)?;
    let mut par = filled(sets * stride_r, FIRST)?;

    // First stage: units 0..j on the source.
    let (mut c, mut mem) = (0.0, 0.0);
    for j in 1..=n {
        c += p.compute_s[s][j - 1];
        mem += p.memory[j - 1];
        if mem > limit[s] || !obj.admits(c) {
            break;
        }
        val[idx(0, s, j)] = c;
    }

    for r in 0..sets {
        let mask = expand(r, s);
        let k = mask.count_ones() as usize;
        for (e, &limit_e) in limit.iter().enumerate() {
            if mask & (1 << e) != 0 {
                continue;
            }
            let r2 = compress(mask | (1 << e), s);
            let ce = &p.compute_s[e];
            // k stages, each non-empty, cover at least k units.
            for i in k..n {
                let bytes = p.out_bytes[i - 1];
                let mut g = f64::INFINITY;
                let mut gd = usize::MAX;
                for d in 0..m {
                    if mask & (1 << d) == 0 {
                        continue;
                    }
                    let f = val[idx(r, d, i)];
                    if f == f64::INFINITY {
                        continue;
                    }
                    let (t, load) = obj.transfer(p, d, e, bytes);
                    if !obj.admits(load) {
                        continue;
                    }
                    let v = obj.combine(f, t);
                    if v < g {
                        g = v;
                        gd = d;
                    }
                }
                if gd == usize::MAX {
                    continue;
                }
                let from = ((i as u32) << DEV_BITS) | gd as u32;
                let (mut c, mut mem) = (0.0, 0.0);
                for j in i + 1..=n {
                    c += ce[j - 1];
                    mem += p.memory[j - 1];
                    if mem > limit_e || !obj.admits(c) {
                        break;
                    }
                    let v = obj.combine(g, c);
                    let slot = idx(r2, e, j);
                    if v < val[slot] {
                        val[slot] = v;
                        par[slot] = from;
                    }
                }
            }
        }
    }

    // Close the cycle: the last stage's output returns to the source.
    let mut best = f64::INFINITY;
    let mut end: Option<(usize, usize)> = None;
    for r in 0..sets {
        let mask = expand(r, s);
        for d in 0..m {
            if mask & (1 << d) == 0 {
                continue;
            }
            let f = val[idx(r, d, n)];
            if f == f64::INFINITY {
                continue;
            }
            let (t, load) = obj.transfer(p, d, s, p.out_bytes[n - 1]);
            if !obj.admits(load) {
                continue;
            }
            let v = obj.combine(f, t);
            if v < best {
                best = v;
                end = Some((r, d));
            }
        }
    }
    let Some((r, d)) = end else {
        return Ok(None);
    };

    // Follow the parent pointers back to the first stage.
    let (mut mask, mut d, mut j) = (expand(r, s), d, n);
    let mut stages = Vec::new();
    for _ in 0..m {
        let from = par[idx(compress(mask, s), d, j)];
        if from == FIRST {
            stages.push(Stage {
                device: d,
                units: 0..j,
            });
            stages.reverse();
            return Ok(Some((best, Assignment { stages })));
        }
        let i = (from >> DEV_BITS) as usize;
        stages.push(Stage {
            device: d,
            units: i..j,
        });
        mask &= !(1u32 << d);
        d = (from & ((1 << DEV_BITS) - 1)) as usize;
        j = i;
    }
    Err(PartitionError::Solver(
        "edgeshard: broken parent chain in the dynamic programme (internal inconsistency)".into(),
    ))
}

/// Why no assignment fits: the most specific reason found.
fn why_infeasible(p: &PartitionProblem) -> String {
    if let Some(why) = unit_misfit(p) {
        return why;
    }
    format!(
        "the model needs {:.3} GB and the {} devices have {:.3} GB together, but no way of \
         cutting the {} units into contiguous shards, one per device and the first on the \
         source {}, fits every shard in its device's memory",
        p.memory.iter().sum::<f64>() / 1e9,
        p.n_devices(),
        p.capacity.iter().sum::<f64>() / 1e9,
        p.n_units(),
        p.devices[p.source]
    )
}

/// A unit that fits nowhere it may go: the embedding not on the source, or a unit larger than
/// the largest device.
fn unit_misfit(p: &PartitionProblem) -> Option<String> {
    let gb = |b: f64| b / 1e9;
    let s = p.source;
    if p.memory[0] > p.capacity[s] * (1.0 + MEMORY_RTOL) {
        return Some(format!(
            "unit 0 (the embedding) needs {:.3} GB but the source device {} has {:.3} GB",
            gb(p.memory[0]),
            p.devices[s],
            gb(p.capacity[s])
        ));
    }
    let (big, cap) = p
        .capacity
        .iter()
        .enumerate()
        .fold(
            (0, f64::NEG_INFINITY),
            |acc, (d, &c)| {
                if c > acc.1 {
                    (d, c)
                } else {
                    acc
                }
            },
        );
    p.memory
        .iter()
        .enumerate()
        .find(|&(_, &need)| need > cap * (1.0 + MEMORY_RTOL))
        .map(|(u, &need)| {
            format!(
                "unit {u} needs {:.3} GB but the largest device, {}, has {:.3} GB",
                gb(need),
                p.devices[big],
                gb(cap)
            )
        })
}

#[cfg(test)]
mod reuse_tests;
#[cfg(test)]
mod tests;
