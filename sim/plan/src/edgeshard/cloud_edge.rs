//! EdgeShard's "Cloud-Edge-Opt" baseline: the source device and one cloud device only.

use super::EdgeShardLatency;
use crate::pipeline::{Assignment, PartitionError, PartitionProblem, Partitioner, Stage};

/// EdgeShard's "Cloud-Edge-Opt" baseline (Zhang et al., arXiv:2405.14371): the model
/// split with the least [`Assignment::latency_s`] between the source device and one cloud
/// device, every other device unused. It is [`EdgeShardLatency`] on the sub-problem of these
/// two devices, so the source holds units `0..k` and the cloud units `k..n` for the best `k`
/// within both memories (`k = n`: the source alone, which is also the answer when the cloud
/// is the source).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CloudEdgeOpt {
    /// Index of the cloud device; `None` means the last device (`n_devices − 1`).
    pub cloud: Option<usize>,
}

impl Partitioner for CloudEdgeOpt {
    fn name(&self) -> &'static str {
        "cloud-edge-opt"
    }

    fn partition(&self, p: &PartitionProblem) -> Result<Assignment, PartitionError> {
        p.validate()?;
        let m = p.n_devices();
        let cloud = self.cloud.unwrap_or(m - 1);
        if cloud >= m {
            return Err(PartitionError::Invalid {
                field: "cloud".into(),
                reason: format!("device {cloud} of {m}"),
            });
        }
        let s = p.source;
        let keep: Vec<usize> = if cloud == s { vec![s] } else { vec![s, cloud] };
        let square = |mat: &[Vec<f64>]| -> Vec<Vec<f64>> {
            keep.iter()
                .map(|&i| keep.iter().map(|&j| mat[i][j]).collect())
                .collect()
        };
        let sub = PartitionProblem {
            devices: keep.iter().map(|&d| p.devices[d].clone()).collect(),
            compute_s: keep.iter().map(|&d| p.compute_s[d].clone()).collect(),
            memory: p.memory.clone(),
            capacity: keep.iter().map(|&d| p.capacity[d]).collect(),
            out_bytes: p.out_bytes.clone(),
            residual: p.residual.clone(),
            latency_s: square(&p.latency_s),
            bandwidth: square(&p.bandwidth),
            source: 0,
        };
        let a = EdgeShardLatency.partition(&sub).map_err(|e| match e {
            PartitionError::Infeasible(why) => PartitionError::Infeasible(format!(
                "cloud-edge-opt on the source {} and the cloud {} only: {why}",
                p.devices[s], p.devices[cloud]
            )),
            other => other,
        })?;
        Ok(Assignment {
            stages: a
                .stages
                .into_iter()
                .map(|st| Stage {
                    device: keep[st.device],
                    units: st.units,
                })
                .collect(),
        })
    }
}
