//! LinguaLinked: chain-ordered layer assignment by mixed-integer linear programming, model
//! overlap, and a runtime load balancer.
//!
//! After J. Zhao, Y. Song, S. Liu, I. G. Harris and S. Abdu Jyothi, "LinguaLinked: A Distributed
//! Large Language Model Inference System for Mobile Devices", arXiv:2312.00388 (2023), ACL 2024
//! System Demonstrations. LinguaLinked (i) assigns contiguous model segments to the devices by
//! linear optimisation under each device's compute, a fraction of its free memory and the
//! links between devices, (ii) lets neighbouring devices pre-load a few units of each other's
//! segments ("overlap") and (iii) moves the segment boundaries at runtime within what is
//! pre-loaded when devices slow down (the runtime load balancer). This module implements the
//! three pieces on [`PartitionProblem`]; the scores are exactly [`Assignment::latency_s`] and
//! [`Assignment::bottleneck_s`].
//!
//! # The chain
//!
//! The devices form a chain in a fixed order: the source first, then the other devices by
//! index; position k of the chain is device π(k). Every device holds at most one contiguous
//! segment, segments follow the chain order, devices may be skipped, and the source holds unit
//! 0. So every unit u has a chain position p(u), with p(0) = 0 and p(u) ≤ p(u + 1).
//!
//! # The MILP ([`LinguaLinked`])
//!
//! n units, m chain positions. Variables:
//!
//! * `c[u][k] ∈ {0, 1}` (the only integer variables), cumulative: 1 iff p(u) ≤ k, for
//!   1 ≤ u < n and 0 ≤ k < m − 1. `c[0][k] = 1` and `c[u][m−1] = 1` are constants, `c[u][−1] = 0`.
//!   The placement is `x[u][k] = c[u][k] − c[u][k−1]` (1 iff p(u) = k), a linear expression.
//!   Branching on `c` moves a segment boundary, which is far more effective than branching on
//!   x.
//! * `w[u][i][j] ≥ 0` for 0 ≤ u < n − 1, i ≤ j: the hand-off pair (p(u), p(u + 1)) = (i, j).
//! * `r[g][i][j] ≥ 0` for each group g of residual links with the same (u, v), i ≤ j: the pair
//!   (p(u), p(v)) = (i, j).
//! * `z ≥ 0` (objective Bottleneck only): the period.
//!
//! Constraints:
//!
//! * Hand-off coupling (a transportation polytope per boundary): `Σ_j w[u][i][j] = x[u][i]`
//!   for every i and `Σ_i w[u][i][j] = x[u+1][j]` for every j < m − 1 (the last one is
//!   implied). Since only pairs i ≤ j exist, these rows imply the chain order
//!   `c[u+1][k] ≤ c[u][k]` and `x ≥ 0`, and without memory constraints they describe a path in
//!   a layered graph (nodes (u, k), arcs (u, i) → (u + 1, j), j ≥ i), so the linear relaxation
//!   of the sequential part is integral.
//! * Residual coupling: the same rows between `r[g]`, `x[u]` and `x[v]`.
//! * Memory, `Σ_{u on π(k)} memory[u] ≤ memory_fraction · capacity[π(k)]`, written without any
//!   coefficient: for every position k and first unit a, let e be the first unit such that
//!   units a..=e do not fit on π(k); a and e may not both lie on k, i.e.
//!   `c[e][k] ≤ c[a][k−1]`. Memory is thus exact in floating point (the sums are taken in unit
//!   order, as the feasibility check does), and these rows have the form of the chain order
//!   (`c[u+1][k] ≤ c[u][k]`, `c[u][k−1] ≤ c[u][k]`: one +1 and one −1), so on the `c`
//!   variables alone, memory and order together still describe an integral polytope.
//! * Objective cut-off (valid inequalities from the incumbent, see below): with the
//!   incumbent's score U, every segment whose compute alone (plus, for Latency, the cheapest
//!   compute of all other units) exceeds U is forbidden by the same difference constraints,
//!   and every hand-off, residual or return pair whose transfer alone exceeds U gets no
//!   variable. No solution at least as good as the incumbent is cut off.
//! * Bottleneck only: `z ≥ Σ_u compute[π(k)][u] · x[u][k]` for every position k (device
//!   load); `z ≥ Σ_u T(i,j,out_bytes[u]) · w[u][i][j] + Σ_g T_g(i,j) · r[g][i][j]` for every
//!   forward link i < j (a link can carry a hand-off and several residual links; the load sums
//!   them per directed link exactly as `bottleneck_s` does); `z ≥ T(k,0,out_bytes[n−1]) ·
//!   x[n−1][k]` for every return link k → 0 (the only backward links ever used).
//!
//! Objective: Latency minimises `Σ_{u,k} compute[π(k)][u] x[u][k] + Σ T(i,j,out_bytes[u])
//! w[u][i][j] + Σ T_g(i,j) r[g][i][j] + Σ_k T(k,0,out_bytes[n−1]) x[n−1][k]`, which is
//! `Assignment::latency_s`; Bottleneck minimises z, which is `Assignment::bottleneck_s`. Here
//! `T(i,j,b)` is `PartitionProblem::transfer_s(π(i), π(j), b)` and `T_g` sums it over the
//! residual links of group g. All times are divided by the incumbent's score for conditioning.
//!
//! The model is solved exactly (`mip_gap = 0`; microlp prunes at a relative 1e-9) by branch
//! and bound with the pure-Rust microlp backend of good_lp. Bottleneck does not break ties by
//! latency. Before the MILP, a greedy pass decides feasibility exactly (every position
//! takes the longest run that fits; that reaches furthest) and reports why when nothing fits,
//! and two dynamic programmes over (boundary, position) (exact when there are no residual
//! links) give the incumbent that warm-starts the search and sets the cut-off. Measured in
//! release on Llama-like instances (heterogeneous phones, with and without residual links):
//! Latency solves in a few ms; Bottleneck in about 10–20 ms at 34 units × 4 devices, 40–120 ms
//! at 82 × 4 and 30–120 ms at 34 × 6 (the ignored test `timing` re-measures).
//!
//! # Overlap and the runtime balancer
//!
//! [`overlap`] extends each stage by up to `extra` units on both sides, as far as the device's
//! full capacity allows; [`rebalance`] moves the stage boundaries within those ranges to
//! minimise the bottleneck once the caller has applied the devices' current slow-downs to
//! `compute_s`, by an exact branch-and-bound enumeration of the boundaries.

use crate::pipeline::{Assignment, PartitionError, PartitionProblem, Partitioner, Stage};
use good_lp::{
    microlp, variable, Expression, ProblemVariables, ResolutionError, Solution, SolutionStatus,
    SolverModel, Variable, WithInitialSolution,
};
use serde::Serialize;
use std::ops::Range;

/// What the LinguaLinked MILP minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Objective {
    /// One sample alone: [`Assignment::latency_s`].
    Latency,
    /// The pipeline period: [`Assignment::bottleneck_s`].
    Bottleneck,
}

/// The LinguaLinked planner: an exact MILP over chain-ordered contiguous segments (see the
/// module documentation).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinguaLinked {
    /// What to minimise.
    pub objective: Objective,
    /// The fraction of each device's capacity the plan may use, in (0, 1]; the rest is left
    /// for the [`overlap`] pre-loads and the rest of the system.
    pub memory_fraction: f64,
}

impl Partitioner for LinguaLinked {
    fn name(&self) -> &'static str {
        "lingualinked"
    }

    fn partition(&self, p: &PartitionProblem) -> Result<Assignment, PartitionError> {
        self.solve(p, true)
    }
}

/// Relative margin applied to the cut-off so that rounding never removes the incumbent or an
/// equally good solution.
const CUTOFF_MARGIN: f64 = 1e-9;

impl LinguaLinked {
    /// Solve `p`; with `accelerate`, warm-start from the dynamic programmes and add the
    /// cut-off inequalities (the tests also run the bare MILP).
    fn solve(&self, p: &PartitionProblem, accelerate: bool) -> Result<Assignment, PartitionError> {
        p.validate()?;
        let f = self.memory_fraction;
        if !(f > 0.0 && f <= 1.0) {
            return Err(PartitionError::Invalid {
                field: "memory_fraction".into(),
                reason: format!("{f}: must be in (0, 1]"),
            });
        }
        let ch = Chain::new(p, f);
        let greedy = ch.greedy()?;
        if ch.m == 1 {
            return Ok(ch.assignment(&greedy));
        }
        let mut incumbent = greedy;
        let mut best = ch.score(self.objective, &incumbent);
        if accelerate {
            for cand in [ch.dp(Objective::Latency), ch.dp(Objective::Bottleneck)]
                .into_iter()
                .flatten()
            {
                let s = ch.score(self.objective, &cand);
                if s < best {
                    best = s;
                    incumbent = cand;
                }
            }
        }
        let milp = Milp {
            ch: &ch,
            objective: self.objective,
            incumbent: &incumbent,
            incumbent_score: best,
            accelerate,
        };
        let pos = milp.solve()?;
        let a = ch.assignment(&pos);
        a.validate(p)
            .map_err(|e| PartitionError::Solver(format!("the MILP solution is malformed: {e}")))?;
        if let Some(k) = (0..ch.m).find(|&k| !ch.fits(k, ch.segment(&pos, k))) {
            return Err(PartitionError::Solver(format!(
                "the MILP solution overfills {}",
                p.devices[ch.order[k]]
            )));
        }
        // The MILP is exact; keep the incumbent only if rounding made the MILP's pick worse.
        if accelerate && ch.score(self.objective, &incumbent) < ch.score(self.objective, &pos) {
            return Ok(ch.assignment(&incumbent));
        }
        Ok(a)
    }
}

/// An instance in chain coordinates: position k is device `order[k]`.
struct Chain<'a> {
    p: &'a PartitionProblem,
    order: Vec<usize>,
    n: usize,
    m: usize,
    /// `memory_fraction × capacity` per position.
    cap: Vec<f64>,
    fraction: f64,
}

impl<'a> Chain<'a> {
    fn new(p: &'a PartitionProblem, fraction: f64) -> Self {
        let order: Vec<usize> = std::iter::once(p.source)
            .chain((0..p.n_devices()).filter(|&d| d != p.source))
            .collect();
        let cap = order.iter().map(|&d| fraction * p.capacity[d]).collect();
        Chain {
            p,
            n: p.n_units(),
            m: order.len(),
            order,
            cap,
            fraction,
        }
    }

    fn comp(&self, k: usize, u: usize) -> f64 {
        self.p.compute_s[self.order[k]][u]
    }

    fn transfer(&self, i: usize, j: usize, bytes: f64) -> f64 {
        self.p.transfer_s(self.order[i], self.order[j], bytes)
    }

    /// Return from the last unit's position k to the source.
    fn ret(&self, k: usize) -> f64 {
        self.transfer(k, 0, self.p.out_bytes[self.n - 1])
    }

    /// Whether `units` fit on position k (summed in unit order, as everywhere else).
    fn fits(&self, k: usize, units: Range<usize>) -> bool {
        self.p.memory[units].iter().sum::<f64>() <= self.cap[k]
    }

    /// The first unit e ≥ a such that units a..=e do not fit on position k.
    fn mem_end(&self, k: usize, a: usize) -> Option<usize> {
        let mut s = 0.0;
        (a..self.n).find(|&e| {
            s += self.p.memory[e];
            s > self.cap[k]
        })
    }

    /// Units at position k under the unit positions `pos`.
    fn segment(&self, pos: &[usize], k: usize) -> Range<usize> {
        let a = pos.iter().position(|&q| q >= k).unwrap_or(self.n);
        let b = pos.iter().position(|&q| q > k).unwrap_or(self.n);
        a..b.max(a)
    }

    fn assignment(&self, pos: &[usize]) -> Assignment {
        let mut stages: Vec<Stage> = Vec::new();
        for (u, &k) in pos.iter().enumerate() {
            let device = self.order[k];
            match stages.last_mut() {
                Some(s) if s.device == device => s.units.end = u + 1,
                _ => stages.push(Stage {
                    device,
                    units: u..u + 1,
                }),
            }
        }
        Assignment { stages }
    }

    fn score(&self, objective: Objective, pos: &[usize]) -> f64 {
        let a = self.assignment(pos);
        match objective {
            Objective::Latency => a.latency_s(self.p),
            Objective::Bottleneck => a.bottleneck_s(self.p),
        }
    }

    /// Exact feasibility: every position takes the longest run that fits. A later start never
    /// reaches less far, so this covers the most units of any chain assignment.
    fn greedy(&self) -> Result<Vec<usize>, PartitionError> {
        let p = self.p;
        let mut pos = Vec::with_capacity(self.n);
        for k in 0..self.m {
            let b = pos.len();
            let e = self.mem_end(k, b).unwrap_or(self.n);
            pos.extend(std::iter::repeat_n(k, e - b));
            if k == 0 && e == 0 {
                return Err(PartitionError::Infeasible(format!(
                    "unit 0 ({:.4} GB) does not fit in {} × {:.4} GB of the source {}",
                    p.memory[0] / 1e9,
                    self.fraction,
                    p.capacity[p.source] / 1e9,
                    p.devices[p.source],
                )));
            }
        }
        if pos.len() < self.n {
            let names: Vec<&str> = self.order.iter().map(|&d| p.devices[d].as_str()).collect();
            return Err(PartitionError::Infeasible(format!(
                "in the chain {} with {} of each device's memory, at most units 0..{} fit; unit {} ({:.4} GB) is left over",
                names.join(" → "),
                self.fraction,
                pos.len(),
                pos.len(),
                p.memory[pos.len()] / 1e9
            )));
        }
        Ok(pos)
    }

    /// Dynamic programme over (units placed, last non-empty position), ignoring residual
    /// links (exact without them): Latency sums, Bottleneck takes the maximum (ties: sum).
    fn dp(&self, objective: Objective) -> Option<Vec<usize>> {
        let (n, m) = (self.n, self.m);
        let combine = |acc: (f64, f64), t: f64| match objective {
            Objective::Latency => (acc.0 + t, acc.1 + t),
            Objective::Bottleneck => (acc.0.max(t), acc.1 + t),
        };
        // best[b][k]: units 0..b placed, unit b−1 on position k.
        let mut best: Vec<Vec<DpCell>> = vec![vec![None; m]; n + 1];
        let relax = |best: &mut [Vec<DpCell>],
                     b: usize,
                     k: usize,
                     val: (f64, f64),
                     from: (usize, usize)| {
            let slot = &mut best[b][k];
            if slot.is_none_or(|(v, _, _)| val < v) {
                *slot = Some((val, from.0, from.1));
            }
        };
        let mut s = 0.0;
        for e in 1..=n {
            if !self.fits(0, 0..e) {
                break;
            }
            s += self.comp(0, e - 1);
            relax(&mut best, e, 0, (s, s), (0, usize::MAX));
        }
        for b in 1..n {
            for k in 0..m {
                let Some((val, _, _)) = best[b][k] else {
                    continue;
                };
                for k2 in k + 1..m {
                    let h = self.transfer(k, k2, self.p.out_bytes[b - 1]);
                    let mut mem = 0.0;
                    let mut c = 0.0;
                    for e in b + 1..=n {
                        mem += self.p.memory[e - 1];
                        if mem > self.cap[k2] {
                            break;
                        }
                        c += self.comp(k2, e - 1);
                        relax(&mut best, e, k2, combine(combine(val, h), c), (b, k));
                    }
                }
            }
        }
        let (_, mut k) = (0..m)
            .filter_map(|k| best[n][k].map(|(v, _, _)| (combine(v, self.ret(k)), k)))
            .min_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal))?;
        let mut pos = vec![0; n];
        let mut b = n;
        while b > 0 {
            let (_, b0, k0) = best[b][k]?;
            pos[b0..b].fill(k);
            b = b0;
            k = k0;
        }
        Some(pos)
    }
}

/// A dynamic-programme cell: ((score, latency), previous boundary, previous position).
type DpCell = Option<((f64, f64), usize, usize)>;

/// A linear expression under construction: terms and a constant.
#[derive(Default)]
struct Lin {
    terms: Vec<(Variable, f64)>,
    constant: f64,
}

impl Lin {
    fn add(&mut self, coef: f64, v: Option<Variable>) {
        match v {
            Some(v) => self.terms.push((v, coef)),
            None => self.constant += coef,
        }
    }

    fn expr(&self) -> Expression {
        let mut e = Expression::with_capacity(self.terms.len());
        for &(v, c) in &self.terms {
            e.add_mul(c, v);
        }
        e += self.constant;
        e
    }
}

/// One MILP build and solve.
struct Milp<'c, 'a> {
    ch: &'c Chain<'a>,
    objective: Objective,
    incumbent: &'c [usize],
    incumbent_score: f64,
    accelerate: bool,
}

/// Variables of the model (see the module documentation).
struct Vars {
    /// `c[u][k]` for k < m − 1; `None` marks the constant 1 (u = 0).
    c: Vec<Vec<Option<Variable>>>,
    m: usize,
}

impl Vars {
    /// Adds `coef · c[u][k]` (k may be −1 or m − 1, where c is constant).
    fn add_c(&self, e: &mut Lin, coef: f64, u: usize, k: isize) {
        if k < 0 {
            return;
        }
        let k = k as usize;
        if k + 1 >= self.m {
            e.constant += coef;
        } else {
            e.add(coef, self.c[u][k]);
        }
    }

    /// Adds `coef · x[u][k] = coef · (c[u][k] − c[u][k−1])`.
    fn add_x(&self, e: &mut Lin, coef: f64, u: usize, k: usize) {
        self.add_c(e, coef, u, k as isize);
        self.add_c(e, -coef, u, k as isize - 1);
    }
}

/// A coupled pair of positions: variables for the allowed (i, j), i ≤ j.
struct Pair {
    vars: Vec<(usize, usize, Variable)>,
}

impl Milp<'_, '_> {
    fn solve(&self) -> Result<Vec<usize>, PartitionError> {
        let ch = self.ch;
        let p = ch.p;
        let (n, m) = (ch.n, ch.m);
        let ts = if self.incumbent_score.is_finite() && self.incumbent_score > 0.0 {
            self.incumbent_score
        } else {
            1.0
        };
        let cut = self
            .accelerate
            .then_some(self.incumbent_score * (1.0 + CUTOFF_MARGIN));
        let allowed = |t: f64| cut.is_none_or(|c| t <= c);

        let mut pv = ProblemVariables::new();
        let vars = Vars {
            c: (0..n)
                .map(|u| {
                    (0..m - 1)
                        .map(|_| (u > 0).then(|| pv.add(variable().binary())))
                        .collect()
                })
                .collect(),
            m,
        };
        let mut eqs: Vec<Lin> = Vec::new();
        let mut les: Vec<Lin> = Vec::new();

        // Coupled pairs (p(a), p(b)) with a < b and cost matrix `cost[i][j]`.
        let mut pair =
            |pv: &mut ProblemVariables, a: usize, b: usize, cost: &dyn Fn(usize, usize) -> f64| {
                let mut vs = Vec::new();
                for i in 0..m {
                    for j in i..m {
                        if i == j || allowed(cost(i, j)) {
                            vs.push((i, j, pv.add(variable().min(0.0).max(1.0))));
                        }
                    }
                }
                for i in 0..m {
                    let mut e = Lin::default();
                    for &(_, _, v) in vs.iter().filter(|t| t.0 == i) {
                        e.add(1.0, Some(v));
                    }
                    vars.add_x(&mut e, -1.0, a, i);
                    eqs.push(e);
                }
                for j in 0..m - 1 {
                    let mut e = Lin::default();
                    for &(_, _, v) in vs.iter().filter(|t| t.1 == j) {
                        e.add(1.0, Some(v));
                    }
                    vars.add_x(&mut e, -1.0, b, j);
                    eqs.push(e);
                }
                Pair { vars: vs }
            };

        let handoff: Vec<Pair> = (0..n - 1)
            .map(|u| {
                let bytes = p.out_bytes[u];
                pair(&mut pv, u, u + 1, &|i, j| ch.transfer(i, j, bytes))
            })
            .collect();
        // Residual links grouped by (u, v); a group's cost sums its links' transfers.
        let mut groups: Vec<(usize, usize, Vec<f64>)> = Vec::new();
        for &(u, v, b) in &p.residual {
            if b <= 0.0 {
                continue;
            }
            match groups.iter_mut().find(|g| g.0 == u && g.1 == v) {
                Some(g) => g.2.push(b),
                None => groups.push((u, v, vec![b])),
            }
        }
        let gcost = |g: &(usize, usize, Vec<f64>), i: usize, j: usize| -> f64 {
            g.2.iter().map(|&b| ch.transfer(i, j, b)).sum()
        };
        let residual: Vec<Pair> = groups
            .iter()
            .map(|g| pair(&mut pv, g.0, g.1, &|i, j| gcost(g, i, j)))
            .collect();

        // Memory and cut-off segments: a..=e may not lie on k together.
        let min_comp: Vec<f64> = (0..n)
            .map(|u| (0..m).map(|k| ch.comp(k, u)).fold(f64::INFINITY, f64::min))
            .collect();
        let mut prefix_min = vec![0.0; n + 1];
        for u in 0..n {
            prefix_min[u + 1] = prefix_min[u] + min_comp[u];
        }
        for k in 0..m {
            for a in 0..n {
                let mut end = ch.mem_end(k, a);
                if let Some(cut) = cut {
                    let mut c = 0.0;
                    for e in a..end.unwrap_or(n) {
                        c += ch.comp(k, e);
                        let lb = match self.objective {
                            Objective::Latency => {
                                c + prefix_min[a] + (prefix_min[n] - prefix_min[e + 1])
                            }
                            Objective::Bottleneck => c,
                        };
                        if lb > cut {
                            end = Some(e);
                            break;
                        }
                    }
                }
                if let Some(e) = end {
                    // c[e][k] − c[a][k−1] ≤ 0
                    let mut l = Lin::default();
                    vars.add_c(&mut l, 1.0, e, k as isize);
                    vars.add_c(&mut l, -1.0, a, k as isize - 1);
                    les.push(l);
                }
            }
            if !allowed(ch.ret(k)) {
                let mut l = Lin::default();
                vars.add_x(&mut l, 1.0, n - 1, k);
                les.push(l);
            }
        }

        // Objective.
        let mut obj = Lin::default();
        match self.objective {
            Objective::Latency => {
                for k in 0..m {
                    for u in 0..n {
                        let c = ch.comp(k, u) / ts;
                        if c != 0.0 {
                            vars.add_x(&mut obj, c, u, k);
                        }
                    }
                    let r = ch.ret(k) / ts;
                    if r != 0.0 {
                        vars.add_x(&mut obj, r, n - 1, k);
                    }
                }
                for (u, pr) in handoff.iter().enumerate() {
                    for &(i, j, v) in &pr.vars {
                        let t = ch.transfer(i, j, p.out_bytes[u]) / ts;
                        if t != 0.0 {
                            obj.add(t, Some(v));
                        }
                    }
                }
                for (g, pr) in groups.iter().zip(&residual) {
                    for &(i, j, v) in &pr.vars {
                        let t = gcost(g, i, j) / ts;
                        if t != 0.0 {
                            obj.add(t, Some(v));
                        }
                    }
                }
            }
            Objective::Bottleneck => {
                let zv = pv.add(variable().min(0.0));
                obj.add(1.0, Some(zv));
                for k in 0..m {
                    let mut l = Lin::default();
                    for u in 0..n {
                        let c = ch.comp(k, u) / ts;
                        if c != 0.0 {
                            vars.add_x(&mut l, c, u, k);
                        }
                    }
                    l.add(-1.0, Some(zv));
                    les.push(l);
                    let r = ch.ret(k) / ts;
                    if r != 0.0 {
                        let mut l = Lin::default();
                        vars.add_x(&mut l, r, n - 1, k);
                        l.add(-1.0, Some(zv));
                        les.push(l);
                    }
                }
                let mut links: Vec<Lin> = (0..m * m).map(|_| Lin::default()).collect();
                for (u, pr) in handoff.iter().enumerate() {
                    for &(i, j, v) in &pr.vars {
                        let t = ch.transfer(i, j, p.out_bytes[u]) / ts;
                        if i != j && t != 0.0 {
                            links[i * m + j].add(t, Some(v));
                        }
                    }
                }
                for (g, pr) in groups.iter().zip(&residual) {
                    for &(i, j, v) in &pr.vars {
                        let t = gcost(g, i, j) / ts;
                        if i != j && t != 0.0 {
                            links[i * m + j].add(t, Some(v));
                        }
                    }
                }
                for mut l in links.into_iter().filter(|l| !l.terms.is_empty()) {
                    l.add(-1.0, Some(zv));
                    les.push(l);
                }
            }
        }

        // Constant rows are checked here rather than handed to the solver.
        let mut constraints = Vec::with_capacity(eqs.len() + les.len());
        for l in eqs {
            if l.terms.is_empty() {
                if l.constant.abs() > 1e-9 {
                    return Err(infeasible_model());
                }
            } else {
                constraints.push(l.expr().eq(0.0));
            }
        }
        for l in les {
            if l.terms.is_empty() {
                if l.constant > 1e-9 {
                    return Err(infeasible_model());
                }
            } else {
                constraints.push(l.expr().leq(0.0));
            }
        }

        let mut hint = Vec::new();
        if self.accelerate {
            for (u, row) in vars.c.iter().enumerate() {
                for (k, v) in row.iter().enumerate() {
                    if let Some(v) = v {
                        hint.push((*v, if self.incumbent[u] <= k { 1.0 } else { 0.0 }));
                    }
                }
            }
        }
        let mut model = pv.minimise(obj.expr()).using(microlp);
        for c in constraints {
            model.add_constraint(c);
        }
        if !hint.is_empty() {
            model = model.with_initial_solution(hint);
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model.solve()))
            .map_err(|e| {
                let msg = e
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| e.downcast_ref::<&str>().copied())
                    .unwrap_or("panic");
                PartitionError::Solver(format!("microlp panicked: {msg}"))
            })?;
        let sol = match outcome {
            Ok(s) => s,
            Err(ResolutionError::Infeasible) => return Err(infeasible_model()),
            Err(e) => return Err(PartitionError::Solver(e.to_string())),
        };
        if !matches!(sol.status(), SolutionStatus::Optimal) {
            return Err(PartitionError::Solver(
                "microlp stopped before proving optimality".into(),
            ));
        }
        let mut pos = vec![0usize; n];
        for (u, row) in vars.c.iter().enumerate() {
            pos[u] = row
                .iter()
                .position(|v| v.is_none_or(|v| sol.value(v) > 0.5))
                .unwrap_or(m - 1);
        }
        if pos[0] != 0 || pos.windows(2).any(|w| w[0] > w[1]) {
            return Err(PartitionError::Solver(format!(
                "the MILP returned positions {pos:?}, not in chain order"
            )));
        }
        Ok(pos)
    }
}

fn infeasible_model() -> PartitionError {
    PartitionError::Infeasible(
        "the LinguaLinked MILP has no solution (chain order and memory fractions)".into(),
    )
}

/// The units each stage's device pre-loads (LinguaLinked's overlap), one range per stage of
/// `a`: the stage's own units extended by up to `extra` units on each side (never past unit 0
/// or n), then shrunk one unit at a time from the side with more extra units (the later side
/// on a tie) until the device's total pre-loaded memory fits its full `capacity`. The own
/// units are always kept, even if they alone do not fit. A device that holds several stages
/// counts every unit it holds once; its stages are extended in stage order.
pub fn overlap(p: &PartitionProblem, a: &Assignment, extra: usize) -> Vec<Range<usize>> {
    let n = p.n_units();
    let mem = |u: usize| p.memory.get(u).copied().unwrap_or(0.0);
    let devs = a
        .stages
        .iter()
        .map(|s| s.device + 1)
        .max()
        .unwrap_or(0)
        .max(p.n_devices());
    // Units each device holds so far: its own units first.
    let mut held = vec![vec![false; n]; devs];
    for s in &a.stages {
        let (a, b) = (s.units.start.min(n), s.units.end.min(n));
        held[s.device][a..b.max(a)].fill(true);
    }
    let mut out = Vec::with_capacity(a.stages.len());
    for s in &a.stages {
        let d = s.device;
        let cap = p.capacity.get(d).copied().unwrap_or(0.0);
        let own = s.units.start.min(n)..s.units.end.min(n).max(s.units.start.min(n));
        let mut lo = own.start.saturating_sub(extra);
        let mut hi = own.end.saturating_add(extra).min(n);
        loop {
            // Everything the device would hold, summed in unit order (for a device with one
            // stage: exactly `memory[lo..hi]`).
            let total: f64 = (0..n)
                .filter(|&u| held[d][u] || (lo..hi).contains(&u))
                .map(mem)
                .sum();
            if total <= cap {
                break;
            }
            let (left, right) = (own.start - lo, hi - own.end);
            if left == 0 && right == 0 {
                break;
            }
            if left > right {
                lo += 1;
            } else {
                hi -= 1;
            }
        }
        held[d][lo..hi].fill(true);
        out.push(lo..hi);
    }
    out
}

/// LinguaLinked's runtime load balancer: new stage boundaries for `current` under the compute
/// times now in `p.compute_s` (the caller applies the devices' slow-downs). Every stage keeps
/// its device and order, stays non-empty and stays within its range in `preloaded` (one per
/// stage, e.g. from [`overlap`]). Minimises [`Assignment::bottleneck_s`], then
/// [`Assignment::latency_s`], and keeps `current` unless something is strictly better, so
/// the result is never worse than `current`.
///
/// Exact: a best-first depth-first enumeration of the boundaries, pruned by the loads of the
/// stages fixed so far combined with a dynamic-programming lower bound on the rest (the
/// per-stage compute, hand-off and return loads, which residual links only increase).
/// Returns `current` unchanged if it or `p` is malformed or `preloaded` has the wrong length.
pub fn rebalance(
    p: &PartitionProblem,
    current: &Assignment,
    preloaded: &[Range<usize>],
) -> Assignment {
    if matches!(
        p.validate(),
        Err(PartitionError::Invalid { .. } | PartitionError::Solver(_))
    ) || current.validate(p).is_err()
        || preloaded.len() != current.stages.len()
    {
        return current.clone();
    }
    let n = p.n_units();
    let k = current.stages.len();
    let pre: Vec<Range<usize>> = preloaded
        .iter()
        .map(|r| r.start.min(n)..r.end.min(n))
        .collect();
    let mut rb = Rebalancer {
        p,
        devices: current.devices(),
        suffix: Vec::new(),
        best: (current.bottleneck_s(p), current.latency_s(p)),
        best_starts: current.stages.iter().map(|s| s.units.start).collect(),
        current_starts: current.stages.iter().map(|s| s.units.start).collect(),
        pre,
    };
    if rb.pre[0].start == 0 && rb.pre[k - 1].end == n {
        rb.suffix = rb.suffix_bounds();
        let mut starts = vec![0; k];
        rb.dfs(&mut starts, 1);
    }
    rb.build(&rb.best_starts)
}

/// State of the boundary enumeration.
struct Rebalancer<'a> {
    p: &'a PartitionProblem,
    devices: Vec<usize>,
    pre: Vec<Range<usize>>,
    /// `suffix[i][s]`: lower bounds (bottleneck, latency) for stages i.. when stage i starts
    /// at unit s (infinite when impossible).
    suffix: Vec<Vec<(f64, f64)>>,
    best: (f64, f64),
    best_starts: Vec<usize>,
    current_starts: Vec<usize>,
}

impl Rebalancer<'_> {
    fn build(&self, starts: &[usize]) -> Assignment {
        let n = self.p.n_units();
        Assignment {
            stages: starts
                .iter()
                .enumerate()
                .map(|(i, &s)| Stage {
                    device: self.devices[i],
                    units: s..starts.get(i + 1).copied().unwrap_or(n),
                })
                .collect(),
        }
    }

    /// The admissible ends e of stage i when it starts at s (before the suffix check).
    fn ends(&self, i: usize, s: usize) -> Range<usize> {
        let (n, k) = (self.p.n_units(), self.devices.len());
        if s < self.pre[i].start {
            return 0..0;
        }
        if i + 1 == k {
            return if s < n { n..n + 1 } else { 0..0 };
        }
        let lo = (s + 1).max(self.pre[i + 1].start);
        let hi = self.pre[i].end.min(n - (k - i - 1));
        lo..(hi + 1).max(lo)
    }

    /// Backward dynamic programme over the per-stage loads: compute of stage i, its hand-off
    /// to stage i + 1 and, for the last stage, the return to the source. Each is at most the
    /// load of its device or link and all are part of the latency, so both are lower bounds.
    fn suffix_bounds(&self) -> Vec<Vec<(f64, f64)>> {
        let p = self.p;
        let (n, k) = (p.n_units(), self.devices.len());
        let inf = (f64::INFINITY, f64::INFINITY);
        let mut suf = vec![vec![inf; n + 1]; k + 1];
        suf[k][n] = (0.0, 0.0);
        for i in (0..k).rev() {
            let d = self.devices[i];
            for s in 0..n {
                let mut comp = 0.0;
                let mut next = s;
                let mut best = inf;
                for e in self.ends(i, s) {
                    while next < e {
                        comp += p.compute_s[d][next];
                        next += 1;
                    }
                    let (rb, rl) = suf[i + 1][e];
                    if !rb.is_finite() {
                        continue;
                    }
                    let t = if i + 1 == k {
                        p.transfer_s(d, p.source, p.out_bytes[n - 1])
                    } else {
                        p.transfer_s(d, self.devices[i + 1], p.out_bytes[e - 1])
                    };
                    // Independent minima: each is a valid bound on its own.
                    best.0 = best.0.min(comp.max(t).max(rb));
                    best.1 = best.1.min(comp + t + rl);
                }
                suf[i][s] = best;
            }
        }
        suf
    }

    /// Loads (bottleneck, latency) of stages 0..i fixed by `starts[..=i]`, including the
    /// hand-off into stage i and the residual links among their units.
    fn prefix(&self, starts: &[usize], i: usize) -> (f64, f64) {
        let p = self.p;
        let m = p.n_devices();
        let end = starts[i];
        let mut dev_of = vec![usize::MAX; end];
        let mut dev = vec![0.0; m];
        let mut link = vec![0.0; m * m];
        let mut lat = 0.0;
        for t in 0..i {
            let d = self.devices[t];
            let r = starts[t]..starts[t + 1];
            let c: f64 = p.compute_s[d][r.clone()].iter().sum();
            dev[d] += c;
            lat += c;
            dev_of[r].fill(d);
        }
        let mut send = |from: usize, to: usize, bytes: f64, lat: &mut f64| {
            let t = p.transfer_s(from, to, bytes);
            if from != to {
                link[from * m + to] += t;
                *lat += t;
            }
        };
        // Hand-offs into stages 1..=i.
        for (t, &s) in starts.iter().enumerate().take(i + 1).skip(1) {
            send(
                self.devices[t - 1],
                self.devices[t],
                p.out_bytes[s - 1],
                &mut lat,
            );
        }
        for &(u, v, b) in &p.residual {
            if v < end {
                send(dev_of[u], dev_of[v], b, &mut lat);
            }
        }
        let b = dev.into_iter().chain(link).fold(0.0, f64::max);
        (b, lat)
    }

    /// Whether a subtree with lower bounds (lb, ll) may hold something better than the best.
    fn promising(&self, lb: f64, ll: f64) -> bool {
        let (bb, bl) = self.best;
        !(lb > bb * (1.0 + 1e-9) || (lb >= bb && ll > bl * (1.0 + 1e-9)))
    }

    fn dfs(&mut self, starts: &mut Vec<usize>, i: usize) {
        let k = starts.len();
        if i == k {
            if *starts == self.current_starts {
                return;
            }
            let a = self.build(starts);
            let (b, l) = (a.bottleneck_s(self.p), a.latency_s(self.p));
            let (bb, bl) = self.best;
            let tb = 1e-12 * bb.abs();
            if b < bb - tb || (b <= bb + tb && l < bl - 1e-12 * bl.abs()) {
                self.best = (b, l);
                self.best_starts = starts.clone();
            }
            return;
        }
        // Stage i starts where stage i − 1 ends; most promising first.
        let mut options: Vec<(f64, f64, usize)> = self
            .ends(i - 1, starts[i - 1])
            .filter_map(|s| {
                let (sb, sl) = self.suffix[i][s];
                if !sb.is_finite() {
                    return None;
                }
                starts[i] = s;
                let (pb, pl) = self.prefix(starts, i);
                Some((pb.max(sb), pl + sl, s))
            })
            .collect();
        options.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        for (lb, ll, s) in options {
            if lb > self.best.0 * (1.0 + 1e-9) {
                break;
            }
            if !self.promising(lb, ll) {
                continue;
            }
            starts[i] = s;
            self.dfs(starts, i + 1);
        }
    }
}

#[cfg(test)]
mod tests;
