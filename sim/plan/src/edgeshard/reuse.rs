//! EdgeShard's latency problem as the paper states it, with device reuse
//! ([`EdgeShardLatencyReuse`]): the assignment with the least [`Assignment::latency_s`] when a
//! device may hold any number of stages.
//!
//! EdgeShard (Zhang et al., arXiv:2405.14371) writes its latency problem over (layer, device):
//! `D(i, j) = min_k D(i − 1, k) + T_comm(k → j) + T_comp(i, j)`, so the chain may come back to a
//! device it has left (source → server → source → server). [`super::EdgeShardLatency`] keeps
//! every device to one stage. Without memory limits the recurrence is a shortest path and
//! exact; with them it is not, since whether unit `i` fits on `j` depends on everything `j`
//! already holds. This planner solves the problem with the memory limits exactly.
//!
//! # The problem
//!
//! A *map* puts every unit `u` on a device `dev(u)`, unit 0 on the source `s`. Its latency is
//! `Σ_u compute_s[dev(u)][u] + Σ_{dev(u) ≠ dev(u+1)} T(dev(u), dev(u+1), out_bytes[u])
//! + T(dev(n−1), s, out_bytes[n−1])`, `T` being [`PartitionProblem::transfer_s`]; it fits when
//! every device's units need at most its capacity (the test of
//! [`Assignment::memory_violation`], `need > cap · (1 + 1e−12)` failing). Runs of units on one
//! device are the stages, so maps and assignments whose consecutive stages are on different
//! devices are the same thing and the latency is [`Assignment::latency_s`].
//!
//! # The search
//!
//! A *label* is a map of units `0..j`; its state is `(j, d)`, `d` the device of unit `j − 1`.
//! It carries its latency so far and its memory per device: the closed stages summed as
//! [`Assignment::memory_per_device`] sums them, then the open stage's running sum, so that the
//! memory test is bit for bit the one of [`Assignment::memory_violation`]. Putting unit `j` on
//! `e` adds `compute_s[e][j]`, plus `T(d, e, out_bytes[j−1])` if `e ≠ d`, and unit `j`'s memory
//! on `e`; a label that overfills `e` is dropped. Layers `j = 1, …, n` are built in turn from
//! the first label (unit 0 on the source); at the end the return to the source is added and
//! the least total wins (the first in label order among equals, comparisons being strict).
//!
//! **Dominance.** The cost of a completion (units `j..n`) depends only on the state and the
//! completion, latency being additive. So a label B can be dropped when a label A of the same
//! state is no slower and can take every completion B can. The test: per device, a *key* is
//! −∞ if the device has room for all remaining memory, +∞ if not even the smallest remaining
//! unit fits it, else its memory used; A covers B if its key is ≤ B's on every device. The
//! candidates of a state are sorted by latency (stable), and one is kept unless a kept label
//! covers it (equal keys found by hashing, the others by a scan). Induction over the layers
//! shows that some kept label always extends to an optimal map: the prefix of an optimal map
//! is either kept or covered by a kept label, which the same completion makes no slower.
//!
//! **Bounds.** A label is also dropped when a lower bound on the latency of each of its
//! feasible completions exceeds an upper bound `U`, the latency of a known feasible
//! assignment: the optimum without reuse ([`super::EdgeShardLatency`], which is feasible here,
//! for at most 10 devices), better relaxed solutions found on the way, and a beam search (the
//! same search keeping 32 labels per state). Both lower bounds are relaxations, so they never
//! exceed a feasible completion:
//!
//! * *Lagrangian.* Memory is priced at `λ_e ≥ 0` per byte of device `e` instead of limited
//!   across stages, each stage still within its device's capacity: a dynamic programme over
//!   stages, `O(n m²)` with sliding-window minima, gives the least priced cost from every
//!   state. A label's bound is that cost (range minima find where its open stage may end,
//!   given its free memory) less the refund `Σ λ_e a_e` with `a_e` at most what the remaining
//!   units can add to `e` (the `k` largest of them, `k` the most that fit) and `Σ a_e` at most
//!   their memory. By weak duality this holds for every `λ ≥ 0`; projected subgradient ascent
//!   on the first label's bound picks `λ`.
//! * *Quantized.* The free memory of the binding devices (those that cannot hold the whole
//!   model), by decreasing price and as many as a table of [`QUANTIZED_MAX_ENTRIES`] entries
//!   allows, is tracked in quanta `q` (the commonest unit memory, or a half or a quarter of it
//!   while the table stays within a quarter of that size): unit `u` takes `⌊m_u / q⌋` quanta
//!   and a label with `f` bytes free has `⌊f / q⌋`. As `Σ ⌊m_u / q⌋ ≤ ⌊Σ m_u / q⌋`, every
//!   feasible completion stays within its budget. A dynamic programme over (unit, device,
//!   budgets), each step a few passes over whole slices, gives the least cost from every
//!   state; binding devices left untracked are priced as above (with the refund), the others
//!   need no price. When every binding device is tracked and the blocks are equal this is
//!   nearly exact, and it is what keeps the label count small when several devices bind.
//!
//! Every test that drops a label on a floating-point bound has a relative margin of `1e−9`
//! (rounding is ≈ 1e−16 per operation), and the quantized table is rounded down to `f32`.
//! The result is therefore optimal up to the rounding of the latency sums, which the planner
//! adds in another order than [`Assignment::latency_s`] does (the tests compare to 1e−12).
//!
//! # Complexity and timings
//!
//! The number of labels is exponential in the worst case (every combination of memory sums on
//! the devices may be on the Pareto front); [`MAX_LABELS`] labels and [`MAX_DOMINANCE_TESTS`]
//! pairwise tests bound the work and turn a blow-up into a [`PartitionError::Solver`] error
//! after a few seconds. A layer of `K` candidates costs `O(K m log n)` for the bounds plus, per
//! state, up to `O(K²)` key comparisons; the set-up `O(400 · n m²)` for the prices and
//! `O(n m² · budgets)` (at most [`QUANTIZED_MAX_ENTRIES`]` · m`) for the quantized table.
//!
//! Release build, one core of a shared machine (`reuse_timing`, three instances each):
//! Llama-like models (an embedding, equal blocks, a head) on devices of which the source holds
//! a third of the model, the "binding" ones a fifth to two fifths each and the rest all of it:
//!
//! | units × devices | binding | time           |
//! |-----------------|---------|----------------|
//! | 34 × 4          | 2       | 2.4–3.9 ms     |
//! | 42 × 5          | 2–3     | 4.3–6.5 ms     |
//! | 82 × 5          | 2       | 7.0–10 ms      |
//! | 82 × 5          | 3       | 8.5–36 ms      |
//! | 82 × 6          | 3–4     | 9.1–18 ms      |
//! | 82 × 8          | 4–6     | 14–24 ms       |
//! | 122 × 6         | 4       | 24–55 ms       |
//! | 82 × 12         | 8       | 25 ms – 2.9 s  |
//! | 82 × 16         | 12      | 33–37 ms       |
//!
//! Without the bounds the labels of the 82 × 5 instances with three binding devices took
//! 10 s or more (or exceeded the limits); with the Lagrangian bound alone, up to 4 s.
//!
//! EdgeShard's network model has only the sequential hand-offs between consecutive units, so a
//! problem with residual links is refused.

use super::{unit_misfit, EdgeShardLatency, MEMORY_RTOL};
use crate::pipeline::{Assignment, PartitionError, PartitionProblem, Partitioner};
use std::collections::VecDeque;

/// Most devices [`EdgeShardLatencyReuse`] accepts (labels carry one memory entry per device).
pub const MAX_REUSE_DEVICES: usize = 64;

/// Most labels [`EdgeShardLatencyReuse`] creates in one search before it gives up with a
/// [`PartitionError::Solver`] error.
pub const MAX_LABELS: usize = 1 << 20;

/// Most pairwise dominance tests [`EdgeShardLatencyReuse`] performs in one search before it
/// gives up with a [`PartitionError::Solver`] error (a few seconds of work).
pub const MAX_DOMINANCE_TESTS: u64 = 1_000_000_000;

/// Most entries (`f32`) of the quantized bound's table (4 MB).
pub const QUANTIZED_MAX_ENTRIES: usize = 1 << 20;

/// Most devices for which the no-reuse planner [`EdgeShardLatency`] (exponential in the device
/// count) runs to give the search its first upper bound.
const INCUMBENT_MAX_DEVICES: usize = 10;

/// Labels per state of the beam search that looks for a better upper bound.
const BEAM: usize = 32;

/// Subgradient steps for the memory prices.
const DUAL_ITERATIONS: usize = 400;

/// Steps without a better bound after which the subgradient step is halved.
const DUAL_STALL: usize = 40;

/// Most units for which the search tabulates the sorted unit memories of every suffix
/// (quadratic in the unit count) for its refunds; beyond, a refund is the free memory.
const FILL_MAX_UNITS: usize = 2000;

/// Relative safety margin of every test that drops a label on a floating-point bound, so that
/// rounding (≈ 1e−16 relative per operation) never drops a label that could win.
const SAFETY: f64 = 1e-9;

/// EdgeShard's latency planner with device reuse: the assignment with the least
/// [`Assignment::latency_s`] over every map of units to devices (unit 0 on the source, each
/// run of units on one device a stage), each device's memory over all its stages within its
/// capacity. Exact (module doc).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EdgeShardLatencyReuse;

impl Partitioner for EdgeShardLatencyReuse {
    fn name(&self) -> &'static str {
        "edgeshard-latency-reuse"
    }

    fn partition(&self, p: &PartitionProblem) -> Result<Assignment, PartitionError> {
        solve(
            p,
            Limits {
                labels: MAX_LABELS,
                tests: MAX_DOMINANCE_TESTS,
            },
        )
    }
}

/// How much work one search may do.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Labels created.
    pub labels: usize,
    /// Pairwise dominance tests.
    pub tests: u64,
}

/// [`EdgeShardLatencyReuse`] with the given search limits.
pub(super) fn solve(p: &PartitionProblem, limits: Limits) -> Result<Assignment, PartitionError> {
    check(p)?;
    // The latency of the fastest feasible assignment known; every assignment without reuse is
    // one with reuse.
    let mut upper = f64::INFINITY;
    if p.n_devices() <= INCUMBENT_MAX_DEVICES {
        if let Ok(a) = EdgeShardLatency.partition(p) {
            upper = a.latency_s(p);
        }
    }
    let mut search = Search::new(p);
    let mu = search.add_lagrangian(&mut upper);
    search.add_quantized(&mu);
    if let Some(a) = search.run(upper, limits, BEAM)? {
        upper = upper.min(a.latency_s(p));
    }
    match search.run(upper, limits, usize::MAX)? {
        Some(a) => Ok(a),
        None => Err(PartitionError::Infeasible(why_infeasible(p))),
    }
}

/// Validate `p` and check it is within the planner's model and size limits.
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
    let m = p.n_devices();
    if m > MAX_REUSE_DEVICES {
        return Err(PartitionError::Invalid {
            field: "devices".into(),
            reason: format!(
                "{m} devices: the reuse planner's labels hold one memory entry per device and \
                 it accepts at most {MAX_REUSE_DEVICES}"
            ),
        });
    }
    Ok(())
}

/// Why no assignment fits: the most specific reason found.
fn why_infeasible(p: &PartitionProblem) -> String {
    unit_misfit(p).unwrap_or_else(|| {
        format!(
            "the model needs {:.3} GB and the {} devices have {:.3} GB together, but no map \
             of the {} units to devices, the first on the source {} and any device holding \
             any number of stages, fits every device's memory",
            p.memory.iter().sum::<f64>() / 1e9,
            p.n_devices(),
            p.capacity.iter().sum::<f64>() / 1e9,
            p.n_units(),
            p.devices[p.source]
        )
    })
}

/// The Lagrangian bound (module doc): memory priced at `lambda[e]` per byte of device `e`
/// instead of limited across stages, each stage within its device's capacity.
struct Bound {
    lambda: Vec<f64>,
    /// Devices by decreasing price (ties by index), for the refund.
    order: Vec<usize>,
    /// `h[j · m + d]`: the least priced cost of units `j..n` and the return to the source
    /// after a stage on `d` that ends with unit `j − 1`, the next stage on another device.
    h: Vec<f64>,
    /// The device of the stage after `(j, d)` in that optimum, and where the best stage on
    /// `e` from unit `j` ends (`end[j · m + e]`): the relaxed solution.
    next: Vec<usize>,
    end: Vec<usize>,
    /// `pre[d · (n + 1) + k]`: priced compute of units `0..k` on `d`.
    pre: Vec<f64>,
    /// Per device `d`, range minima of `pre[d][k] + h[k · m + d]` over `k` (where an open
    /// stage on `d` ends best); empty until [`Search::indexed`].
    ends: Vec<RangeMin>,
    /// Magnitude of the bound's terms, for the rounding margin.
    scale: f64,
}

/// A sparse table: the position of the least value of any range of a fixed list in O(1)
/// (the leftmost among equals).
struct RangeMin {
    vals: Vec<f64>,
    /// `levels[l][i]`: position of the least of `vals[i..i + 2^l]`.
    levels: Vec<Vec<u32>>,
}

impl RangeMin {
    fn new(vals: Vec<f64>) -> Self {
        let len = vals.len();
        let mut levels = vec![(0..len as u32).collect::<Vec<u32>>()];
        let mut span = 1;
        while 2 * span <= len {
            let prev = &levels[levels.len() - 1];
            let level = (0..=len - 2 * span)
                .map(|i| {
                    let (a, b) = (prev[i], prev[i + span]);
                    if vals[b as usize] < vals[a as usize] {
                        b
                    } else {
                        a
                    }
                })
                .collect();
            levels.push(level);
            span *= 2;
        }
        RangeMin { vals, levels }
    }

    /// The position of the least value in `lo..=hi` (`lo ≤ hi < len`).
    fn argmin(&self, lo: usize, hi: usize) -> usize {
        let l = (hi + 1 - lo).ilog2() as usize;
        let level = &self.levels[l];
        let (a, b) = (level[lo], level[hi + 1 - (1 << l)]);
        if self.vals[b as usize] < self.vals[a as usize] {
            b as usize
        } else {
            a as usize
        }
    }
}

/// The quantized bound (module doc): `v[(j · m + d) · size + r]` is the least cost of units
/// `j..n` and the return after unit `j − 1` on `d` when each tracked device `x` has `r_x`
/// quanta left (`r = Σ r_x · stride_x`) and unit `u` takes `⌊memory[u] / quantum⌋` of them,
/// memory priced at `lambda`; rounded down to `f32`.
struct Quantized {
    /// Slot of each device among the tracked ones (`usize::MAX`: untracked).
    slot: Vec<usize>,
    quantum: f64,
    /// Most quanta of each tracked device.
    levels: Vec<usize>,
    /// Stride of each tracked device's budget in a budget index.
    stride: Vec<usize>,
    /// Number of budget vectors.
    size: usize,
    /// Prices of the binding devices left untracked (0 for the others), and the devices by
    /// decreasing price.
    lambda: Vec<f64>,
    order: Vec<usize>,
    v: Vec<f32>,
    /// Magnitude of the bound's terms, for the rounding margin.
    scale: f64,
}

/// The largest `f32` not above `x`.
fn f32_down(x: f64) -> f32 {
    let f = x as f32;
    if f64::from(f) > x {
        f.next_down()
    } else {
        f
    }
}

/// The labels of one search state.
#[derive(Default)]
struct Labels {
    /// Latency so far.
    cost: Vec<f64>,
    /// `m + 1` entries per label: the memory of each device's closed stages (summed as
    /// [`Assignment::memory_per_device`] sums them), then the running sum of the open stage.
    mem: Vec<f64>,
    /// Index of the label in the search's parent arena.
    id: Vec<u32>,
}

impl Labels {
    fn len(&self) -> usize {
        self.cost.len()
    }
}

/// The keys of the labels kept at one state: rows padded with −∞ to a multiple of 4 entries,
/// so that the comparisons run on fixed-size arrays, and a hash index of the rows to find an
/// equal key at once.
#[derive(Default)]
struct Front {
    rows: Vec<f64>,
    /// Key length, and row length.
    dims: usize,
    width: usize,
    len: usize,
    /// Open addressing: row index + 1, 0 for a free slot; at most half full.
    slots: Vec<u32>,
    /// Scratch: the probe, padded.
    probe: Vec<f64>,
}

impl Front {
    /// Empty, for keys of `dims` entries.
    fn reset(&mut self, dims: usize) {
        self.rows.clear();
        self.dims = dims;
        self.width = dims.div_ceil(4) * 4;
        self.len = 0;
        self.slots.clear();
        self.slots.resize(64, 0);
    }

    fn hash(key: &[f64]) -> u64 {
        key.iter().fold(0x243F_6A88_85A3_08D3, |h: u64, v| {
            (h.rotate_left(5) ^ v.to_bits()).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        })
    }

    /// Whether a kept key equals `key` bit for bit.
    fn contains(&self, key: &[f64]) -> bool {
        let mask = self.slots.len() - 1;
        let mut i = Self::hash(key) as usize & mask;
        loop {
            match self.slots[i] {
                0 => return false,
                r => {
                    let at = (r as usize - 1) * self.width;
                    let row = &self.rows[at..at + self.dims];
                    if row.iter().zip(key).all(|(a, b)| a.to_bits() == b.to_bits()) {
                        return true;
                    }
                }
            }
            i = (i + 1) & mask;
        }
    }

    fn insert_slot(slots: &mut [u32], key: &[f64], row: usize) {
        let mask = slots.len() - 1;
        let mut i = Self::hash(key) as usize & mask;
        while slots[i] != 0 {
            i = (i + 1) & mask;
        }
        slots[i] = row as u32 + 1;
    }

    fn push(&mut self, key: &[f64]) {
        self.rows.extend_from_slice(key);
        self.rows.extend(std::iter::repeat_n(
            f64::NEG_INFINITY,
            self.width - key.len(),
        ));
        self.len += 1;
        if 2 * self.len > self.slots.len() {
            let mut slots = vec![0; 2 * self.slots.len()];
            for r in 0..self.len {
                let at = r * self.width;
                Self::insert_slot(&mut slots, &self.rows[at..at + self.dims], r);
            }
            self.slots = slots;
        } else {
            Self::insert_slot(&mut self.slots, key, self.len - 1);
        }
    }

    /// Whether some kept key is ≤ `key` in every entry.
    fn covers(&mut self, key: &[f64]) -> bool {
        self.probe.clear();
        self.probe.extend_from_slice(key);
        self.probe.resize(self.width, f64::NEG_INFINITY);
        match self.width {
            4 => covers_n::<4>(&self.rows, &self.probe),
            8 => covers_n::<8>(&self.rows, &self.probe),
            12 => covers_n::<12>(&self.rows, &self.probe),
            16 => covers_n::<16>(&self.rows, &self.probe),
            w => self
                .rows
                .chunks_exact(w.max(1))
                .any(|r| r.iter().zip(&self.probe).all(|(k, c)| k <= c)),
        }
    }
}

/// Whether a row of `rows` (rows of `N`) is ≤ `probe` in every entry: branch-free within a
/// row and within runs of 8 rows, so that the compiler vectorises it.
fn covers_n<const N: usize>(rows: &[f64], probe: &[f64]) -> bool {
    let (rows, _) = rows.as_chunks::<N>();
    let Some(c) = probe.first_chunk::<N>() else {
        return false;
    };
    rows.chunks(8).any(|run| {
        run.iter().fold(false, |any, r| {
            any | (0..N).fold(true, |ok, x| ok & (r[x] <= c[x]))
        })
    })
}

/// The label-setting search (module doc) and its bounds.
struct Search<'a> {
    p: &'a PartitionProblem,
    n: usize,
    m: usize,
    /// `capacity · (1 + 1e−12)`: the memory test of [`Assignment::memory_violation`].
    limit: Vec<f64>,
    /// `tr[(j · m + d) · m + e]`: hand-off of unit `j − 1`'s output from `d` to `e`.
    tr: Vec<f64>,
    /// `rem[j]`: memory of units `j..n`.
    rem: Vec<f64>,
    /// `min_rem[j]`: the least memory of a unit of `j..n` (∞ for `j = n`).
    min_rem: Vec<f64>,
    /// `mp[k]`: memory of units `0..k`.
    mp: Vec<f64>,
    /// `asc[at[j] + k]` (`desc[at[j] + k]`): memory of the `k` smallest (largest) units of
    /// `j..n`, `k = 0..=n − j`; empty for more than [`FILL_MAX_UNITS`] units.
    asc: Vec<f64>,
    desc: Vec<f64>,
    at: Vec<usize>,
    bounds: Vec<Bound>,
    quantized: Option<Quantized>,
}

impl<'a> Search<'a> {
    fn new(p: &'a PartitionProblem) -> Self {
        let (n, m) = (p.n_units(), p.n_devices());
        let limit: Vec<f64> = p.capacity.iter().map(|c| c * (1.0 + MEMORY_RTOL)).collect();
        let mut tr = vec![0.0; (n + 1) * m * m];
        for j in 1..=n {
            for d in 0..m {
                for e in 0..m {
                    tr[(j * m + d) * m + e] = p.transfer_s(d, e, p.out_bytes[j - 1]);
                }
            }
        }
        let mut rem = vec![0.0; n + 1];
        let mut min_rem = vec![f64::INFINITY; n + 1];
        for j in (0..n).rev() {
            rem[j] = rem[j + 1] + p.memory[j];
            min_rem[j] = min_rem[j + 1].min(p.memory[j]);
        }
        let mut mp = vec![0.0; n + 1];
        for k in 0..n {
            mp[k + 1] = mp[k] + p.memory[k];
        }
        let (mut asc, mut desc, mut at) = (Vec::new(), Vec::new(), Vec::new());
        if n <= FILL_MAX_UNITS {
            for j in 0..=n {
                at.push(asc.len());
                let mut units = p.memory[j..].to_vec();
                units.sort_by(f64::total_cmp);
                let mut sum = 0.0;
                asc.push(sum);
                for &x in &units {
                    sum += x;
                    asc.push(sum);
                }
                sum = 0.0;
                desc.push(sum);
                for &x in units.iter().rev() {
                    sum += x;
                    desc.push(sum);
                }
            }
            at.push(asc.len());
        }
        Search {
            p,
            n,
            m,
            limit,
            tr,
            rem,
            min_rem,
            mp,
            asc,
            desc,
            at,
            bounds: Vec::new(),
            quantized: None,
        }
    }

    /// The Lagrangian bound for prices `lambda`, without its range-minimum tables.
    fn bound(&self, lambda: Vec<f64>) -> Bound {
        let (n, m, p) = (self.n, self.m, self.p);
        let s = p.source;
        let mut pre = Vec::with_capacity(m * (n + 1));
        for (d, &l) in lambda.iter().enumerate() {
            let mut c = 0.0;
            pre.push(c);
            for u in 0..n {
                c += p.compute_s[d][u] + l * p.memory[u];
                pre.push(c);
            }
        }
        let mut h = vec![f64::INFINITY; (n + 1) * m];
        let mut next = vec![usize::MAX; (n + 1) * m];
        let mut end = vec![0; (n + 1) * m];
        for d in 0..m {
            h[n * m + d] = self.tr[(n * m + d) * m + s];
        }
        // The best stage on e from unit j ends before the k in j + 1..=last(e, j) with the
        // least pre[e][k] + h[k][e]. As j falls the window slides left, so a monotone deque
        // per device (positions increasing, values decreasing from front to back) keeps its
        // minimum at the back.
        let mut window: Vec<VecDeque<(usize, f64)>> = (0..m).map(|_| VecDeque::new()).collect();
        let mut stage = vec![f64::INFINITY; m];
        for j in (1..n).rev() {
            for (e, best) in stage.iter_mut().enumerate() {
                let q = &mut window[e];
                let v = pre[e * (n + 1) + j + 1] + h[(j + 1) * m + e];
                while q.front().is_some_and(|&(_, x)| x >= v) {
                    q.pop_front();
                }
                q.push_front((j + 1, v));
                let last = self.last_fitting(j, self.limit[e], e);
                while q.back().is_some_and(|&(k, _)| k > last) {
                    q.pop_back();
                }
                *best = match q.back() {
                    Some(&(k, x)) if x < f64::INFINITY => {
                        end[j * m + e] = k;
                        x - pre[e * (n + 1) + j]
                    }
                    _ => f64::INFINITY,
                };
            }
            for d in 0..m {
                let mut best = f64::INFINITY;
                for (e, &v) in stage.iter().enumerate() {
                    if e == d || v == f64::INFINITY {
                        continue;
                    }
                    let v = self.tr[(j * m + d) * m + e] + v;
                    if v < best {
                        best = v;
                        next[j * m + d] = e;
                    }
                }
                h[j * m + d] = best;
            }
        }
        let finite_max = |xs: &[f64]| {
            xs.iter()
                .filter(|x| x.is_finite())
                .fold(0.0, |a: f64, &x| a.max(x.abs()))
        };
        let scale = finite_max(&h)
            + finite_max(&pre)
            + lambda
                .iter()
                .zip(&self.limit)
                .map(|(l, c)| l * c)
                .sum::<f64>();
        let mut order: Vec<usize> = (0..m).collect();
        order.sort_by(|&a, &b| lambda[b].total_cmp(&lambda[a]));
        Bound {
            lambda,
            order,
            h,
            next,
            end,
            pre,
            ends: Vec::new(),
            scale,
        }
    }

    /// `b` with its range-minimum tables, for bounding many labels.
    fn indexed(&self, mut b: Bound) -> Bound {
        let (n, m) = (self.n, self.m);
        b.ends = (0..m)
            .map(|d| {
                RangeMin::new(
                    (0..=n)
                        .map(|k| b.pre[d * (n + 1) + k] + b.h[k * m + d])
                        .collect(),
                )
            })
            .collect();
        b
    }

    /// The last `k` such that units `j..k` may fit in `free` bytes of device `d` (with room
    /// for rounding: a relaxation may admit more, never less).
    fn last_fitting(&self, j: usize, free: f64, d: usize) -> usize {
        let cap = self.mp[j] + free + SAFETY * (self.limit[d] + self.rem[0]);
        self.mp.partition_point(|&x| x <= cap).clamp(1, self.n + 1) - 1
    }

    /// The least priced cost of the Lagrangian relaxation from a label at `(j, d)` whose device
    /// `d` has `free` bytes: hand over at once, or first extend the open stage up to unit
    /// `k − 1`; that cost and `k` (`j` to hand over at once).
    fn to_go(&self, b: &Bound, j: usize, d: usize, free: f64) -> (f64, usize) {
        let (n, m) = (self.n, self.m);
        let (mut best, mut at) = (b.h[j * m + d], j);
        let last = self.last_fitting(j, free, d);
        if last > j {
            let base = b.pre[d * (n + 1) + j];
            if let Some(ends) = b.ends.get(d) {
                let k = ends.argmin(j + 1, last);
                let v = ends.vals[k] - base;
                if v < best {
                    (best, at) = (v, k);
                }
            } else {
                for k in j + 1..=last {
                    let v = b.pre[d * (n + 1) + k] + b.h[k * m + d] - base;
                    if v < best {
                        (best, at) = (v, k);
                    }
                }
            }
        }
        (best, at)
    }

    /// An upper bound on the memory units `j..n` can add to a device with `free` bytes: the
    /// `k` largest of them, `k` being the most that fit (the `k` smallest).
    fn fill(&self, j: usize, free: f64) -> f64 {
        if free >= self.rem[j] {
            return self.rem[j];
        }
        if self.asc.is_empty() {
            return free.max(0.0);
        }
        let (asc, desc) = (
            &self.asc[self.at[j]..self.at[j + 1]],
            &self.desc[self.at[j]..],
        );
        let k = asc
            .partition_point(|&x| x <= free * (1.0 + SAFETY))
            .saturating_sub(1);
        desc[k].min(free)
    }

    /// The most prices `lambda` (devices in `order` of decreasing price) can refund a label at
    /// `(j, ·)` with memory `eff`: `max Σ λ_e a_e` over `0 ≤ a_e ≤` [`Self::fill`] and
    /// `Σ a_e ≤` the memory of units `j..n` (every remaining byte lands on one device), filled
    /// greedily. With `take`, each device's `a_e` is written there, unpriced devices included
    /// (for the subgradient).
    fn refund(
        &self,
        lambda: &[f64],
        order: &[usize],
        j: usize,
        eff: &[f64],
        mut take: Option<&mut [f64]>,
    ) -> f64 {
        let mut left = self.rem[j];
        let mut total = 0.0;
        for &e in order {
            let l = lambda[e];
            if l == 0.0 && take.is_none() {
                break;
            }
            let a = self.fill(j, self.limit[e] - eff[e]).min(left).max(0.0);
            total += l * a;
            left -= a;
            if let Some(t) = &mut take {
                t[e] = a;
            }
        }
        total
    }

    /// The Lagrangian bound of `b` on every feasible completion of a label at `(j, d)` with
    /// latency `cost` and memory `eff`; ∞ when the relaxation has no completion.
    fn lower(
        &self,
        b: &Bound,
        j: usize,
        d: usize,
        cost: f64,
        eff: &[f64],
        take: Option<&mut [f64]>,
    ) -> f64 {
        let (rest, _) = self.to_go(b, j, d, self.limit[d] - eff[d]);
        if rest == f64::INFINITY {
            return f64::INFINITY;
        }
        cost + rest - self.refund(&b.lambda, &b.order, j, eff, take)
    }

    /// Prices per byte from `mu`, the price of each device's whole capacity (0 for a device
    /// without memory, where no unit with memory goes anyway).
    fn prices(&self, mu: &[f64]) -> Vec<f64> {
        mu.iter()
            .zip(&self.limit)
            .map(|(&u, &c)| if c > 0.0 { u / c } else { 0.0 })
            .collect()
    }

    /// The relaxed solution of `b` from a label at `(j, d)` whose device `d` has `free`
    /// bytes: the devices of units `j..n`.
    fn relaxed(&self, b: &Bound, j: usize, d: usize, free: f64) -> Option<Vec<usize>> {
        let (n, m) = (self.n, self.m);
        let (_, mut k) = self.to_go(b, j, d, free);
        let mut dev = vec![d; n - j];
        let mut d = d;
        while k < n {
            let e = *b.next.get(k * m + d)?;
            let end = *b.end.get(k * m + e)?;
            if e >= m || end <= k {
                return None;
            }
            dev[k - j..end - j].fill(e);
            (k, d) = (end, e);
        }
        Some(dev)
    }

    /// Prices for the Lagrangian bound by projected subgradient ascent on its value at the
    /// first label (unit 0 on the source), as `mu` (the price of each device's capacity);
    /// adds that bound to the search and lowers `upper` to the latency of every relaxed
    /// solution that fits.
    fn add_lagrangian(&mut self, upper: &mut f64) -> Vec<f64> {
        let (n, m, p) = (self.n, self.m, self.p);
        let s = p.source;
        let mut mu = vec![0.0; m];
        if p.memory[0] > self.limit[s] {
            return mu;
        }
        let cost = p.compute_s[s][0];
        let mut eff = vec![0.0; m];
        eff[s] = p.memory[0];
        let mut take = vec![0.0; m];
        let mut top = (f64::NEG_INFINITY, mu.clone());
        let (mut theta, mut stall) = (1.0, 0);
        let mut map = vec![s; n];
        for _ in 0..DUAL_ITERATIONS {
            let b = self.bound(self.prices(&mu));
            let value = self.lower(&b, 1, s, cost, &eff, Some(&mut take));
            let Some(rest) = self.relaxed(&b, 1, s, self.limit[s] - eff[s]) else {
                break;
            };
            if !value.is_finite() {
                break;
            }
            map[1..].copy_from_slice(&rest);
            let a = assignment_of(&map);
            if a.memory_violation(p).is_none() {
                *upper = upper.min(a.latency_s(p));
            }
            if value > top.0 {
                top = (value, mu.clone());
                stall = 0;
            } else {
                stall += 1;
                if stall >= DUAL_STALL {
                    theta /= 2.0;
                    stall = 0;
                }
            }
            // The bound meets the best latency known: no better prices to look for.
            if upper.is_finite() && *upper - top.0 <= SAFETY * upper.abs() {
                break;
            }
            // The memory the relaxed completion puts on each device less the refund's: a
            // subgradient of the bound in `mu`, projected on `mu ≥ 0`.
            let mut used = vec![0.0; m];
            for (u, &e) in rest.iter().enumerate() {
                used[e] += p.memory[1 + u];
            }
            let grad: Vec<f64> = (0..m)
                .map(|e| {
                    let g = if self.limit[e] > 0.0 {
                        (used[e] - take[e]) / self.limit[e]
                    } else {
                        0.0
                    };
                    if mu[e] == 0.0 {
                        g.max(0.0)
                    } else {
                        g
                    }
                })
                .collect();
            let norm2: f64 = grad.iter().map(|g| g * g).sum();
            if norm2 == 0.0 {
                break;
            }
            // Polyak's step towards the best latency known (or 10 % above the bound).
            let target = if upper.is_finite() {
                *upper
            } else {
                top.0 + 0.1 * top.0.abs() + f64::MIN_POSITIVE
            };
            let step = theta * (target - value).max(0.0) / norm2;
            for (u, g) in mu.iter_mut().zip(&grad) {
                *u = (*u + step * g).max(0.0);
            }
        }
        let b = self.indexed(self.bound(self.prices(&top.1)));
        self.bounds.push(b);
        top.1
    }

    /// Build the quantized bound (module doc) with the dual prices `mu`: track the binding
    /// devices by decreasing price while the table has at most [`QUANTIZED_MAX_ENTRIES`]
    /// entries, in quanta of the commonest unit memory (a quarter or a half of it if that
    /// fits).
    fn add_quantized(&mut self, mu: &[f64]) {
        let (n, m, p) = (self.n, self.m, self.p);
        let mut sizes: Vec<f64> = p.memory[1..].iter().copied().filter(|&x| x > 0.0).collect();
        sizes.sort_by(f64::total_cmp);
        // The commonest size (ties: the larger).
        let (mut base, mut count) = (0.0, 0);
        let mut i = 0;
        while i < sizes.len() {
            let run = sizes[i..].iter().take_while(|&&x| x == sizes[i]).count();
            if run >= count {
                (base, count) = (sizes[i], run);
            }
            i += run;
        }
        if base <= 0.0 {
            return;
        }
        let mut binding: Vec<usize> = (0..m).filter(|&x| self.limit[x] < self.rem[0]).collect();
        binding.sort_by(|&a, &b| mu[b].total_cmp(&mu[a]));
        let levels_of = |x: usize, q: f64| (self.limit[x] * (1.0 + SAFETY) / q + SAFETY).floor();
        let entries = |tracked: &[usize], q: f64| {
            tracked.iter().fold(((n + 1) * m) as f64, |acc, &x| {
                acc * (levels_of(x, q) + 1.0)
            })
        };
        let fits = |tracked: &[usize], q: f64| entries(tracked, q) <= QUANTIZED_MAX_ENTRIES as f64;
        let mut tracked: Vec<usize> = Vec::new();
        for &x in &binding {
            tracked.push(x);
            if !fits(&tracked, base) {
                tracked.pop();
            }
        }
        if tracked.is_empty() {
            return;
        }
        // A finer quantum only while the table stays small: tracking more devices matters
        // more.
        let quantum = [base / 4.0, base / 2.0]
            .into_iter()
            .find(|&q| entries(&tracked, q) <= (QUANTIZED_MAX_ENTRIES / 4) as f64)
            .unwrap_or(base);
        let mut slot = vec![usize::MAX; m];
        let mut levels = Vec::new();
        let mut stride = Vec::new();
        let mut weight = Vec::new();
        let mut size = 1;
        for (i, &x) in tracked.iter().enumerate() {
            slot[x] = i;
            let l = levels_of(x, quantum) as usize;
            levels.push(l);
            stride.push(size);
            size *= l + 1;
            // The most whole quanta within each unit's memory, exactly (`w · q ≤ memory`),
            // at most one more than the device has.
            weight.extend(p.memory.iter().map(|&mem| {
                let w = (mem / quantum).floor().max(0.0);
                let w = if w.mul_add(quantum, -mem) > 0.0 {
                    w - 1.0
                } else {
                    w
                };
                w.clamp(0.0, (l + 1) as f64) as usize
            }));
        }
        // Price the binding devices left untracked; the others need no price (a price on a
        // device that can hold everything only loosens the refund).
        let mut lambda = self.prices(mu);
        for (x, l) in lambda.iter_mut().enumerate() {
            if slot[x] != usize::MAX || !binding.contains(&x) {
                *l = 0.0;
            }
        }
        let mut order: Vec<usize> = (0..m).collect();
        order.sort_by(|&a, &b| lambda[b].total_cmp(&lambda[a]));

        let s = p.source;
        let mut v = vec![f32::INFINITY; (n + 1) * m * size];
        for d in 0..m {
            let x = f32_down(self.tr[(n * m + d) * m + s]);
            v[(n * m + d) * size..(n * m + d + 1) * size].fill(x);
        }
        // Per unit j: shifted[e][r], unit j on e then the rest with budgets r less unit j's
        // quanta on e (∞ where they do not suffice); then per d the least hand-off plus
        // shifted value over e. Each step works on whole slices.
        let mut shifted = vec![f64::INFINITY; m * size];
        let mut row = vec![f64::INFINITY; size];
        let mut vmax: f64 = 0.0;
        for j in (1..n).rev() {
            let (here, after) = v.split_at_mut((j + 1) * m * size);
            for (e, sh) in shifted.chunks_exact_mut(size).enumerate() {
                if p.memory[j] > self.limit[e] {
                    sh.fill(f64::INFINITY);
                    continue;
                }
                let next = &after[e * size..(e + 1) * size];
                let c = p.compute_s[e][j] + lambda[e] * p.memory[j];
                let (shift, block) = match slot[e] {
                    usize::MAX => (0, size),
                    i => (weight[i * n + j] * stride[i], stride[i] * (levels[i] + 1)),
                };
                let cut = shift.min(block);
                for (sb, nb) in sh.chunks_exact_mut(block).zip(next.chunks_exact(block)) {
                    sb[..cut].fill(f64::INFINITY);
                    for (x, &y) in sb[cut..].iter_mut().zip(nb) {
                        *x = c + f64::from(y);
                    }
                }
            }
            for d in 0..m {
                row.fill(f64::INFINITY);
                for (e, sh) in shifted.chunks_exact(size).enumerate() {
                    let t = self.tr[(j * m + d) * m + e];
                    for (x, &y) in row.iter_mut().zip(sh) {
                        *x = x.min(t + y);
                    }
                }
                let out = &mut here[(j * m + d) * size..(j * m + d + 1) * size];
                for (o, &x) in out.iter_mut().zip(&row) {
                    *o = f32_down(x);
                    if x.is_finite() {
                        vmax = vmax.max(x.abs());
                    }
                }
            }
        }
        let scale = vmax
            + lambda
                .iter()
                .zip(&self.limit)
                .map(|(l, c)| l * c)
                .sum::<f64>();
        self.quantized = Some(Quantized {
            slot,
            quantum,
            levels,
            stride,
            size,
            lambda,
            order,
            v,
            scale,
        });
    }

    /// The quantized bound on every feasible completion of a label at `(j, d)` with latency
    /// `cost` and memory `eff`; ∞ when the relaxation has no completion.
    fn lower_quantized(&self, q: &Quantized, j: usize, d: usize, cost: f64, eff: &[f64]) -> f64 {
        let mut r = 0;
        for (x, &i) in q.slot.iter().enumerate() {
            if i != usize::MAX {
                // Rounded up a little: a relaxation may grant a quantum more, never less.
                let free = (self.limit[x] - eff[x]).max(0.0) * (1.0 + SAFETY) / q.quantum + SAFETY;
                r += (free.floor() as usize).min(q.levels[i]) * q.stride[i];
            }
        }
        let rest = f64::from(q.v[(j * self.m + d) * q.size + r]);
        if rest == f64::INFINITY {
            return f64::INFINITY;
        }
        cost + rest - self.refund(&q.lambda, &q.order, j, eff, None)
    }

    /// Whether a label at `(j, e)` with latency `cost` and memory `eff` can be dropped: a
    /// bound shows it has no feasible completion, or none faster than `upper`.
    fn beyond(&self, j: usize, e: usize, cost: f64, eff: &[f64], upper: f64) -> bool {
        let over = |lb: f64, scale: f64| lb > upper + SAFETY * (upper.abs() + cost.abs() + scale);
        if let Some(q) = &self.quantized {
            let lb = self.lower_quantized(q, j, e, cost, eff);
            if lb == f64::INFINITY || over(lb, q.scale) {
                return true;
            }
        }
        self.bounds.iter().any(|b| {
            let lb = self.lower(b, j, e, cost, eff, None);
            lb == f64::INFINITY || over(lb, b.scale)
        })
    }

    /// Run the search with upper bound `upper`, keeping at most `beam` labels per state
    /// (`usize::MAX`: all, the exact search); `Ok(None)` when no assignment (below `upper`
    /// with margin) was found.
    fn run(
        &self,
        upper: f64,
        limits: Limits,
        beam: usize,
    ) -> Result<Option<Assignment>, PartitionError> {
        let (n, m, p) = (self.n, self.m, self.p);
        let s = p.source;
        let w = m + 1;
        // Parent arena: per label, the arena index of its predecessor and its device.
        let mut parent: Vec<u32> = Vec::new();
        let mut device: Vec<u32> = Vec::new();
        let mut tests: u64 = 0;

        let mut layer: Vec<Labels> = (0..m).map(|_| Labels::default()).collect();
        if p.memory[0] <= self.limit[s] {
            layer[s].cost.push(p.compute_s[s][0]);
            layer[s].mem.resize(w, 0.0);
            layer[s].mem[m] = p.memory[0];
            layer[s].id.push(0);
            parent.push(u32::MAX);
            device.push(s as u32);
        }

        // The candidates of one state, and scratch.
        let mut c_cost: Vec<f64> = Vec::new();
        let mut c_mem: Vec<f64> = Vec::new();
        let mut c_key: Vec<f64> = Vec::new();
        let mut c_parent: Vec<u32> = Vec::new();
        let mut buf = vec![0.0; w];
        let mut eff = vec![0.0; m];
        let mut order: Vec<usize> = Vec::new();
        let mut front = Front::default();
        let mut key: Vec<f64> = Vec::new();
        let mut active: Vec<usize> = Vec::new();

        for j in 1..n {
            // Unit j after unit j − 1 on d: the labels of state (j + 1, e).
            let mu = p.memory[j];
            let (rem, min_rem) = (self.rem[j + 1], self.min_rem[j + 1]);
            let mut next: Vec<Labels> = (0..m).map(|_| Labels::default()).collect();
            for (e, next_e) in next.iter_mut().enumerate() {
                if mu > self.limit[e] {
                    continue;
                }
                c_cost.clear();
                c_mem.clear();
                c_key.clear();
                c_parent.clear();
                let ce = p.compute_s[e][j];
                for (d, labels) in layer.iter().enumerate() {
                    let t = self.tr[(j * m + d) * m + e];
                    for k in 0..labels.len() {
                        buf.copy_from_slice(&labels.mem[k * w..(k + 1) * w]);
                        if d == e {
                            buf[m] += mu;
                        } else {
                            buf[d] += buf[m];
                            buf[m] = mu;
                        }
                        let eff_e = buf[e] + buf[m];
                        if eff_e > self.limit[e] {
                            continue;
                        }
                        eff.copy_from_slice(&buf[..m]);
                        eff[e] = eff_e;
                        // Room left for the remaining units?
                        let room: f64 = eff
                            .iter()
                            .zip(&self.limit)
                            .map(|(x, c)| (c - x).max(0.0))
                            .sum();
                        if room * (1.0 + SAFETY) < rem {
                            continue;
                        }
                        c_cost.push(labels.cost[k] + t + ce);
                        c_mem.extend_from_slice(&buf);
                        c_parent.push(labels.id[k]);
                        c_key.extend(eff.iter().zip(&self.limit).map(|(&x, &lim)| {
                            if j + 1 == n || (x + rem) * (1.0 + SAFETY) <= lim {
                                f64::NEG_INFINITY
                            } else if x + min_rem > lim * (1.0 + SAFETY) {
                                f64::INFINITY
                            } else {
                                x
                            }
                        }));
                    }
                }
                let nc = c_cost.len();
                if nc == 0 {
                    continue;
                }
                // Only the devices whose keys differ matter.
                active.clear();
                active.extend((0..m).filter(|&x| (1..nc).any(|c| c_key[c * m + x] != c_key[x])));
                let dims = active.len();
                order.clear();
                order.extend(0..nc);
                order.sort_by(|&x, &y| c_cost[x].total_cmp(&c_cost[y]));
                front.reset(dims);
                for &c in &order {
                    if (dims == 0 && front.len > 0) || front.len >= beam {
                        break;
                    }
                    key.clear();
                    key.extend(active.iter().map(|&x| c_key[c * m + x]));
                    // A kept label with an equal key is no slower.
                    if dims > 0 && front.contains(&key) {
                        continue;
                    }
                    let mem = &c_mem[c * w..(c + 1) * w];
                    eff.copy_from_slice(&mem[..m]);
                    eff[e] += mem[m];
                    if self.beyond(j + 1, e, c_cost[c], &eff, upper) {
                        continue;
                    }
                    tests += front.len as u64;
                    if dims > 0 && front.covers(&key) {
                        continue;
                    }
                    if parent.len() >= limits.labels {
                        return Err(too_much(format!("{} labels", limits.labels)));
                    }
                    front.push(&key);
                    next_e.id.push(parent.len() as u32);
                    parent.push(c_parent[c]);
                    device.push(e as u32);
                    next_e.cost.push(c_cost[c]);
                    next_e.mem.extend_from_slice(mem);
                }
                if tests > limits.tests {
                    return Err(too_much(format!("{} dominance tests", limits.tests)));
                }
            }
            layer = next;
        }

        // Close the cycle: the last unit's output returns to the source.
        let mut best = f64::INFINITY;
        let mut end = None;
        for (d, labels) in layer.iter().enumerate() {
            let t = self.tr[(n * m + d) * m + s];
            for (k, &cost) in labels.cost.iter().enumerate() {
                if cost + t < best {
                    best = cost + t;
                    end = Some(labels.id[k]);
                }
            }
        }
        let Some(mut id) = end else {
            return Ok(None);
        };
        let mut dev_of = vec![0usize; n];
        for d in dev_of.iter_mut().rev() {
            let (Some(&dev), Some(&up)) = (device.get(id as usize), parent.get(id as usize)) else {
                return Err(broken());
            };
            *d = dev as usize;
            id = up;
        }
        if id != u32::MAX || dev_of[0] != s {
            return Err(broken());
        }
        Ok(Some(assignment_of(&dev_of)))
    }
}

/// The assignment of a map of units to devices: each run of units on one device is a stage.
fn assignment_of(dev: &[usize]) -> Assignment {
    Assignment::from_device_map(dev)
}

fn too_much(what: String) -> PartitionError {
    PartitionError::Solver(format!(
        "edgeshard-latency-reuse: the exact search exceeded {what}: too many partial \
         assignments trade memory against latency on this instance; use fewer devices or units"
    ))
}

fn broken() -> PartitionError {
    PartitionError::Solver(
        "edgeshard-latency-reuse: broken parent chain in the search (internal inconsistency)"
            .into(),
    )
}
