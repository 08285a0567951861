//! The planners without an optimiser: MDI-LLM's ring and the baselines every paper compares
//! against (the source alone, the best single device, an even split).

use super::pipeline::{Assignment, PartitionError, PartitionProblem, Partitioner, Stage};

fn infeasible_unless_fits(
    p: &PartitionProblem,
    a: Assignment,
) -> Result<Assignment, PartitionError> {
    a.validate(p)?;
    match a.memory_violation(p) {
        Some((d, need, cap)) => Err(PartitionError::Infeasible(format!(
            "device {d} ({}) would hold {} but can give {}",
            p.devices[d],
            super::pipeline::gb(need),
            super::pipeline::gb(cap)
        ))),
        None => Ok(a),
    }
}

/// Split `blocks` (count) into `parts` contiguous runs as evenly as possible (earlier runs get
/// the remainder).
fn even_counts(blocks: usize, parts: usize) -> Vec<usize> {
    (0..parts)
        .map(|i| blocks / parts + usize::from(i < blocks % parts))
        .collect()
}

/// Everything on the source device (EdgeShard's "Edge-Solo").
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleDevice;

impl Partitioner for SingleDevice {
    fn name(&self) -> &'static str {
        "single"
    }
    fn partition(&self, p: &PartitionProblem) -> Result<Assignment, PartitionError> {
        p.validate()?;
        infeasible_unless_fits(
            p,
            Assignment {
                stages: vec![Stage {
                    device: p.source,
                    units: 0..p.n_units(),
                }],
            },
        )
    }
}

/// The fastest single device that holds the whole model: the source embeds and the chosen
/// device runs everything else (the source alone when it is the fastest).
#[derive(Debug, Clone, Copy, Default)]
pub struct BestSingle;

impl Partitioner for BestSingle {
    fn name(&self) -> &'static str {
        "best-single"
    }
    fn partition(&self, p: &PartitionProblem) -> Result<Assignment, PartitionError> {
        p.validate()?;
        let n = p.n_units();
        let mut best: Option<(f64, Assignment)> = None;
        for d in 0..p.n_devices() {
            let a = if d == p.source {
                Assignment {
                    stages: vec![Stage {
                        device: d,
                        units: 0..n,
                    }],
                }
            } else {
                Assignment {
                    stages: vec![
                        Stage {
                            device: p.source,
                            units: 0..1,
                        },
                        Stage {
                            device: d,
                            units: 1..n,
                        },
                    ],
                }
            };
            if a.memory_violation(p).is_some() {
                continue;
            }
            let l = a.latency_s(p);
            if best.as_ref().is_none_or(|(b, _)| l < *b) {
                best = Some((l, a));
            }
        }
        best.map(|b| b.1).ok_or_else(|| {
            PartitionError::Infeasible("no single device holds the whole model".into())
        })
    }
}

/// The blocks split evenly over `devices` (all devices, source first, when `None`); the first
/// also embeds, the last also runs the head.
#[derive(Debug, Clone, Default)]
pub struct EvenSplit {
    /// Devices in order (the first must be the source).
    pub devices: Option<Vec<usize>>,
}

impl EvenSplit {
    fn order(&self, p: &PartitionProblem) -> Result<Vec<usize>, PartitionError> {
        let order = match &self.devices {
            Some(d) => d.clone(),
            None => std::iter::once(p.source)
                .chain((0..p.n_devices()).filter(|&d| d != p.source))
                .collect(),
        };
        if order.first() != Some(&p.source) {
            return Err(PartitionError::Invalid {
                field: "devices".into(),
                reason: "the first device of an even split must be the source".into(),
            });
        }
        if order.iter().any(|&d| d >= p.n_devices()) {
            return Err(PartitionError::Invalid {
                field: "devices".into(),
                reason: format!("device index out of range (have {})", p.n_devices()),
            });
        }
        Ok(order)
    }
}

impl Partitioner for EvenSplit {
    fn name(&self) -> &'static str {
        "even"
    }
    fn partition(&self, p: &PartitionProblem) -> Result<Assignment, PartitionError> {
        p.validate()?;
        let order = self.order(p)?;
        let n = p.n_units();
        let blocks = n - 2;
        let k = order.len().min(blocks.max(1));
        let counts = even_counts(blocks, k);
        let mut stages = Vec::with_capacity(k);
        let mut at = 1;
        for (i, (&d, c)) in order.iter().zip(counts).enumerate() {
            let start = if i == 0 { 0 } else { at };
            let end = if i + 1 == k { n } else { at + c };
            stages.push(Stage {
                device: d,
                units: start..end,
            });
            at += c;
        }
        infeasible_unless_fits(p, Assignment { stages })
    }
}

/// MDI-LLM (Macario 2024): the devices form a ring. The starter (the source) holds the
/// embedding, the first blocks and the output head; every other node holds an equal run of
/// blocks; the last node's hidden state returns to the starter for the head, so every node
/// sends and receives one hidden state per token. The starter takes fewer blocks, as in
/// MDI-LLM, chosen to balance its load (blocks + embedding + head) against the others': the
/// number of starter blocks that minimises the largest per-node compute.
#[derive(Debug, Clone, Default)]
pub struct Mdi {
    /// Ring order (source first); all devices in index order when `None`.
    pub nodes: Option<Vec<usize>>,
}

impl Partitioner for Mdi {
    fn name(&self) -> &'static str {
        "mdi"
    }
    fn partition(&self, p: &PartitionProblem) -> Result<Assignment, PartitionError> {
        p.validate()?;
        let order = EvenSplit {
            devices: self.nodes.clone(),
        }
        .order(p)?;
        let n = p.n_units();
        let blocks = n - 2;
        let k = order.len();
        if k == 1 {
            return SingleDevice.partition(p);
        }
        if blocks < k {
            return Err(PartitionError::Infeasible(format!(
                "{blocks} blocks cannot give each of {k} nodes one"
            )));
        }
        let build = |s: usize| -> Assignment {
            // starter: units 0..1+s; others share the remaining blocks; head back on the starter
            let counts = even_counts(blocks - s, k - 1);
            let mut stages = vec![Stage {
                device: order[0],
                units: 0..1 + s,
            }];
            let mut at = 1 + s;
            for (&d, c) in order[1..].iter().zip(counts) {
                stages.push(Stage {
                    device: d,
                    units: at..at + c,
                });
                at += c;
            }
            stages.push(Stage {
                device: order[0],
                units: n - 1..n,
            });
            Assignment { stages }
        };
        let mut best: Option<(f64, Assignment)> = None;
        for s in 0..=blocks - (k - 1) {
            let a = build(s);
            if a.memory_violation(p).is_some() {
                continue;
            }
            let b = a.bottleneck_s(p);
            if best.as_ref().is_none_or(|(x, _)| b < *x) {
                best = Some((b, a));
            }
        }
        best.map(|b| b.1).ok_or_else(|| {
            PartitionError::Infeasible(format!(
                "no split of {blocks} blocks over the {k}-node ring fits the devices' memory"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `m` identical devices, `blocks` identical blocks of 1 ms, embedding/head 0.1/0.5 ms,
    /// 1 GB each, 10 GB capacity, 1 MB/s links with 1 ms latency, 1 kB hidden states.
    fn problem(m: usize, blocks: usize) -> PartitionProblem {
        let n = blocks + 2;
        let mut unit = vec![1e-3; n];
        unit[0] = 1e-4;
        unit[n - 1] = 5e-4;
        PartitionProblem {
            devices: (0..m).map(|i| format!("d{i}")).collect(),
            compute_s: vec![unit; m],
            memory: vec![1e9; n],
            capacity: vec![10e9; m],
            out_bytes: vec![1e3; n],
            residual: vec![],
            latency_s: vec![vec![1e-3; m]; m],
            bandwidth: vec![vec![1e6; m]; m],
            source: 0,
        }
    }

    #[test]
    fn even_split_and_single() {
        let mut p = problem(3, 7);
        p.capacity = vec![5e9; 3];
        let a = EvenSplit::default().partition(&p).unwrap();
        let sizes: Vec<usize> = a.stages.iter().map(|s| s.units.len()).collect();
        // blocks 3, 2, 2 plus embedding first and head last
        assert_eq!(sizes, vec![4, 2, 3]);
        assert_eq!(a.devices(), vec![0, 1, 2]);
        // single device: too little memory for 9 units of 1 GB
        assert!(matches!(
            SingleDevice.partition(&p),
            Err(PartitionError::Infeasible(_))
        ));
        let mut big = p.clone();
        big.capacity = vec![100e9; 3];
        let s = SingleDevice.partition(&big).unwrap();
        assert_eq!(s.stages.len(), 1);
        // no links crossed: latency = Σ compute (f64 sum of 9 terms ≈ 7.6e-3: rounding
        // ≤ 9·2⁻⁵³·7.6e-3 ≈ 8e-18)
        assert!((s.latency_s(&big) - (7e-3 + 6e-4)).abs() < 1e-15);
    }

    #[test]
    fn best_single_prefers_a_faster_device() {
        let mut p = problem(3, 4);
        p.capacity = vec![100e9; 3];
        for u in 1..6 {
            p.compute_s[2][u] /= 10.0;
        }
        let a = BestSingle.partition(&p).unwrap();
        assert_eq!(a.devices(), vec![0, 2]);
        // a slow link makes staying home better
        p.bandwidth = vec![vec![1.0; 3]; 3];
        assert_eq!(BestSingle.partition(&p).unwrap().devices(), vec![0]);
    }

    #[test]
    fn mdi_ring_balances_the_starter() {
        let p = problem(3, 12);
        let a = Mdi::default().partition(&p).unwrap();
        // a ring: the starter first and last
        assert_eq!(a.devices(), vec![0, 1, 2, 0]);
        assert_eq!(a.stages.last().unwrap().units, 13..14);
        // every node's load within one block of the others
        let mut load = [0.0; 3];
        for (s, c) in a.stages.iter().zip(a.stage_compute_s(&p)) {
            load[s.device] += c;
        }
        let (lo, hi) = (
            load.iter().cloned().fold(f64::MAX, f64::min),
            load.iter().cloned().fold(0.0, f64::max),
        );
        // one block (1e-3 s) + rounding
        assert!(hi - lo <= 1e-3 + 1e-12, "{load:?}");
        // the starter holds fewer blocks than the others (it also embeds and samples)
        let starter_blocks = a.stages[0].units.len() - 1;
        assert!(starter_blocks <= a.stages[1].units.len());
        // more nodes than blocks is refused
        assert!(Mdi::default().partition(&problem(3, 1)).is_err());
    }
}
