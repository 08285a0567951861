//! The chain LinguaLinked plans over: devices in a fixed order (the source first), units
//! placed on chain positions in order; feasibility (greedy), scores and the dynamic programmes
//! that give the MILP its incumbent.

use super::Objective;
use crate::pipeline::{Assignment, PartitionError, PartitionProblem, Stage};
use std::ops::Range;

/// An instance in chain coordinates: position k is device `order[k]`.
pub(super) struct Chain<'a> {
    pub(super) p: &'a PartitionProblem,
    pub(super) order: Vec<usize>,
    pub(super) n: usize,
    pub(super) m: usize,
    /// `memory_fraction × capacity` per position.
    cap: Vec<f64>,
    fraction: f64,
}

impl<'a> Chain<'a> {
    pub(super) fn new(p: &'a PartitionProblem, fraction: f64) -> Self {
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

    pub(super) fn comp(&self, k: usize, u: usize) -> f64 {
        self.p.compute_s[self.order[k]][u]
    }

    pub(super) fn transfer(&self, i: usize, j: usize, bytes: f64) -> f64 {
        self.p.transfer_s(self.order[i], self.order[j], bytes)
    }

    /// How long the transfer occupies its link (what a pipeline period counts).
    pub(super) fn load(&self, i: usize, j: usize, bytes: f64) -> f64 {
        self.p.link_load_s(self.order[i], self.order[j], bytes)
    }

    /// The transfer's term in `objective`'s score: its time for the latency, its link load
    /// for the bottleneck.
    pub(super) fn term(&self, objective: Objective, i: usize, j: usize, bytes: f64) -> f64 {
        match objective {
            Objective::Latency => self.transfer(i, j, bytes),
            Objective::Bottleneck => self.load(i, j, bytes),
        }
    }

    /// Return from the last unit's position k to the source.
    pub(super) fn ret(&self, k: usize) -> f64 {
        self.transfer(k, 0, self.p.out_bytes[self.n - 1])
    }

    /// How long the return from position `k` occupies its link.
    pub(super) fn ret_load(&self, k: usize) -> f64 {
        self.load(k, 0, self.p.out_bytes[self.n - 1])
    }

    /// Whether `units` fit on position k (summed in unit order, as everywhere else).
    pub(super) fn fits(&self, k: usize, units: Range<usize>) -> bool {
        self.p.memory[units].iter().sum::<f64>() <= self.cap[k]
    }

    /// The first unit e ≥ a such that units a..=e do not fit on position k.
    pub(super) fn mem_end(&self, k: usize, a: usize) -> Option<usize> {
        let mut s = 0.0;
        (a..self.n).find(|&e| {
            s += self.p.memory[e];
            s > self.cap[k]
        })
    }

    /// Units at position k under the unit positions `pos`.
    pub(super) fn segment(&self, pos: &[usize], k: usize) -> Range<usize> {
        let a = pos.iter().position(|&q| q >= k).unwrap_or(self.n);
        let b = pos.iter().position(|&q| q > k).unwrap_or(self.n);
        a..b.max(a)
    }

    pub(super) fn assignment(&self, pos: &[usize]) -> Assignment {
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

    pub(super) fn score(&self, objective: Objective, pos: &[usize]) -> f64 {
        let a = self.assignment(pos);
        match objective {
            Objective::Latency => a.latency_s(self.p),
            Objective::Bottleneck => a.bottleneck_s(self.p),
        }
    }

    /// Exact feasibility: every position takes the longest run that fits. A later start never
    /// reaches less far, so this covers the most units of any chain assignment.
    pub(super) fn greedy(&self) -> Result<Vec<usize>, PartitionError> {
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
    pub(super) fn dp(&self, objective: Objective) -> Option<Vec<usize>> {
        let (n, m) = (self.n, self.m);
        // t: (the term's load, its time): the score takes the load for the bottleneck, the
        // tie-breaking latency always the time
        let combine = |acc: (f64, f64), t: (f64, f64)| match objective {
            Objective::Latency => (acc.0 + t.1, acc.1 + t.1),
            Objective::Bottleneck => (acc.0.max(t.0), acc.1 + t.1),
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
                    let bytes = self.p.out_bytes[b - 1];
                    let h = (self.load(k, k2, bytes), self.transfer(k, k2, bytes));
                    let mut mem = 0.0;
                    let mut c = 0.0;
                    for e in b + 1..=n {
                        mem += self.p.memory[e - 1];
                        if mem > self.cap[k2] {
                            break;
                        }
                        c += self.comp(k2, e - 1);
                        relax(&mut best, e, k2, combine(combine(val, h), (c, c)), (b, k));
                    }
                }
            }
        }
        let (_, mut k) = (0..m)
            .filter_map(|k| {
                best[n][k].map(|(v, _, _)| (combine(v, (self.ret_load(k), self.ret(k))), k))
            })
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
