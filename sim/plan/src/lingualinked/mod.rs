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
//!   load); `z ≥ Σ_u L(i,j,out_bytes[u]) · w[u][i][j] + Σ_g L_g(i,j) · r[g][i][j]` for every
//!   forward link i < j (a link can carry a hand-off and several residual links; the load sums
//!   them per directed link exactly as `bottleneck_s` does); `z ≥ L(k,0,out_bytes[n−1]) ·
//!   x[n−1][k]` for every return link k → 0 (the only backward links ever used). `L(i,j,b)`
//!   is `PartitionProblem::link_load_s`, the serialisation `b / bandwidth` without the
//!   latency, which delays a message but does not occupy the link; the cut-off above uses
//!   `L` for Bottleneck and `T` for Latency.
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

mod balance;
mod chain;
mod milp;

pub use balance::{overlap, rebalance};

use crate::pipeline::{Assignment, PartitionError, PartitionProblem, Partitioner};
use chain::Chain;
use milp::Milp;
use serde::Serialize;

#[cfg(test)]
use crate::pipeline::Stage;
#[cfg(test)]
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

#[cfg(test)]
mod tests;
