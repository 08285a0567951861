//! The LinguaLinked MILP (see the parent module's documentation): variables, constraints,
//! objective and the solve with microlp.

use super::chain::Chain;
use super::{Objective, CUTOFF_MARGIN};
use crate::pipeline::PartitionError;
use good_lp::{
    microlp, variable, Expression, ProblemVariables, ResolutionError, Solution, SolutionStatus,
    SolverModel, Variable, WithInitialSolution,
};

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
pub(super) struct Milp<'c, 'a> {
    pub(super) ch: &'c Chain<'a>,
    pub(super) objective: Objective,
    pub(super) incumbent: &'c [usize],
    pub(super) incumbent_score: f64,
    pub(super) accelerate: bool,
}

/// Variables of the model (see the documentation of the parent module).
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
    pub(super) fn solve(&self) -> Result<Vec<usize>, PartitionError> {
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
                pair(&mut pv, u, u + 1, &|i, j| {
                    ch.term(self.objective, i, j, bytes)
                })
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
        // a group's transfers, in the objective's terms (time, or link load)
        let gcost = |g: &(usize, usize, Vec<f64>), i: usize, j: usize| -> f64 {
            g.2.iter().map(|&b| ch.term(self.objective, i, j, b)).sum()
        };
        let ret = |k: usize| match self.objective {
            Objective::Latency => ch.ret(k),
            Objective::Bottleneck => ch.ret_load(k),
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
            if !allowed(ret(k)) {
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
                    let r = ret(k) / ts;
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
                        let t = ch.load(i, j, p.out_bytes[u]) / ts;
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
