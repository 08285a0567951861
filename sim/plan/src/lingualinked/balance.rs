//! LinguaLinked's model overlap (what each device pre-loads) and its runtime load balancer
//! (moving the stage boundaries within the pre-loaded ranges).

use crate::pipeline::{Assignment, PartitionError, PartitionProblem, Stage};
use std::ops::Range;

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
                    let (to, bytes) = if i + 1 == k {
                        (p.source, p.out_bytes[n - 1])
                    } else {
                        (self.devices[i + 1], p.out_bytes[e - 1])
                    };
                    let (load, t) = (p.link_load_s(d, to, bytes), p.transfer_s(d, to, bytes));
                    // Independent minima: each is a valid bound on its own.
                    best.0 = best.0.min(comp.max(load).max(rb));
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
            if from != to {
                link[from * m + to] += p.link_load_s(from, to, bytes);
                *lat += p.transfer_s(from, to, bytes);
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
