//! Tensor parallelism: which heads and FFN columns each device holds ([`TpPlan`]), and the
//! all-reduce hook ([`Collective`]) called at every reduction site.
//!
//! Megatron-style split of a Llama block over K devices: Q/K/V and gate/up are column-parallel
//! (device k computes the outputs of its heads / FFN columns), the attention output projection and
//! the MLP down projection are row-parallel (device k multiplies its slice of the inputs), so each
//! block needs exactly two all-reduces of an `n_embd` vector per token: after the attention output
//! projection and after the MLP down projection.

use crate::config::LlamaConfig;
use std::ops::Range;

/// Where in a block an all-reduce happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ReduceSite {
    /// After the attention output projection (row-parallel `attn_output`).
    AttnOutput,
    /// After the MLP down projection (row-parallel `ffn_down`).
    MlpDown,
}

/// What an all-reduce is told about the reduction it performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReduceCtx {
    /// Block (layer) index.
    pub layer: usize,
    /// The site inside the block.
    pub site: ReduceSite,
    /// Number of token positions in this call (1 for decode, T for a prefill of T tokens).
    pub n_tokens: usize,
    /// Position of the first token in the sequence.
    pub pos: usize,
    /// Width of one token's vector (n_embd); each buffer holds `n_tokens · width` values,
    /// token-major.
    pub width: usize,
}

/// The all-reduce hook. `buffers[k]` holds device k's partial sum on entry and must hold what
/// device k receives on return (the exact sum for an ideal link; a noisy estimate over a channel).
pub trait Collective {
    /// Reduce the K partial vectors in place.
    fn all_reduce(&mut self, ctx: &ReduceCtx, buffers: &mut [Vec<f32>]);

    /// As [`Collective::all_reduce`], called instead of it when the session records
    /// magnitudes ([`crate::model::Session::record_magnitudes`]): `magnitudes[k][i]` is
    /// `Σ |summand|` over the floating-point summands that make up `buffers[k][i]`, so that
    /// `γ_n · magnitudes[k][i]` (with `γ_n = n·u/(1 − n·u)`, u = 2⁻²⁴, n the number of
    /// roundings on the longest summation path) bounds that partial's rounding error whatever
    /// the order of summation — and so the difference between summation orders (a tensor-
    /// parallel split versus one device). The default ignores them.
    fn all_reduce_with_magnitudes(
        &mut self,
        ctx: &ReduceCtx,
        buffers: &mut [Vec<f32>],
        magnitudes: &[Vec<f32>],
    ) {
        let _ = magnitudes;
        self.all_reduce(ctx, buffers);
    }

    /// Why this collective cannot go on, once it cannot (a hook written by a user that raised,
    /// an interrupt): the forward pass stops after the reduction that failed and returns
    /// [`crate::model::ModelError::Collective`] with this message. The default never fails.
    fn failure(&self) -> Option<String> {
        None
    }
}

/// The exact all-reduce: every device receives Σ_k partial_k, summed in device order.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdealCollective;

impl Collective for IdealCollective {
    fn all_reduce(&mut self, _ctx: &ReduceCtx, buffers: &mut [Vec<f32>]) {
        ideal_sum(buffers);
    }
}

/// Sum `buffers` in device order into every buffer (the ideal all-reduce).
pub fn ideal_sum(buffers: &mut [Vec<f32>]) {
    if buffers.len() <= 1 {
        return;
    }
    let (first, rest) = buffers.split_at_mut(1);
    let acc = &mut first[0];
    for b in rest.iter() {
        for (a, v) in acc.iter_mut().zip(b) {
            *a += v;
        }
    }
    for b in rest.iter_mut() {
        b.copy_from_slice(acc);
    }
}

/// Errors in building a tensor-parallel plan.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TpError {
    /// No devices.
    #[error("a tensor-parallel plan needs at least one device (got 0 shares)")]
    NoDevices,
    /// A share is negative, NaN or infinite.
    #[error("share {index} is {value}: shares must be finite and non-negative")]
    BadShare {
        /// Which device.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// All shares are zero.
    #[error("all shares are zero: at least one device must hold part of the model")]
    AllZero,
    /// The model's FFN width cannot be split at the required alignment.
    #[error("FFN width {n_ff} is not a multiple of the split alignment {align}")]
    Misaligned {
        /// FFN width.
        n_ff: usize,
        /// Required alignment.
        align: usize,
    },
}

/// Which query heads and FFN columns each of K devices holds. Heads and columns are contiguous
/// ranges in device order. A device holding query head h also holds (and computes) KV head
/// `h / gqa_group`; when a KV group is split across two devices, both hold that KV head.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TpPlan {
    /// Query-head range of each device.
    pub heads: Vec<Range<usize>>,
    /// FFN-column range of each device.
    pub ffn: Vec<Range<usize>>,
    /// Query heads per KV head (GQA group size).
    pub gqa_group: usize,
}

impl TpPlan {
    /// Everything on one device.
    pub fn single(cfg: &LlamaConfig) -> TpPlan {
        #[allow(clippy::single_range_in_vec_init)]
        TpPlan {
            heads: vec![0..cfg.n_head],
            ffn: vec![0..cfg.n_ff],
            gqa_group: cfg.gqa_group(),
        }
    }

    /// Split heads and FFN columns proportionally to `shares` (any non-negative weights, not
    /// necessarily normalised) by largest-remainder rounding; FFN columns move in units of
    /// `ffn_align` (the quantisation block of the down projection, so that each device's slice
    /// is whole blocks). A device may end up with no heads or no columns.
    pub fn from_shares(
        cfg: &LlamaConfig,
        shares: &[f64],
        ffn_align: usize,
    ) -> Result<TpPlan, TpError> {
        if shares.is_empty() {
            return Err(TpError::NoDevices);
        }
        for (index, &value) in shares.iter().enumerate() {
            if !value.is_finite() || value < 0.0 {
                return Err(TpError::BadShare { index, value });
            }
        }
        let total: f64 = shares.iter().sum();
        if total <= 0.0 {
            return Err(TpError::AllZero);
        }
        let align = ffn_align.max(1);
        if !cfg.n_ff.is_multiple_of(align) {
            return Err(TpError::Misaligned {
                n_ff: cfg.n_ff,
                align,
            });
        }
        let head_counts = apportion(cfg.n_head, shares);
        let ffn_units = apportion(cfg.n_ff / align, shares);
        let heads = to_ranges(&head_counts, 1);
        let ffn = to_ranges(&ffn_units, align);
        Ok(TpPlan {
            heads,
            ffn,
            gqa_group: cfg.gqa_group(),
        })
    }

    /// Number of devices.
    pub fn n_devices(&self) -> usize {
        self.heads.len()
    }

    /// KV heads device `k` must hold (those of its query heads).
    pub fn kv_heads(&self, k: usize) -> Range<usize> {
        let h = &self.heads[k];
        if h.is_empty() {
            return 0..0;
        }
        h.start / self.gqa_group..(h.end - 1) / self.gqa_group + 1
    }

    /// Each device's realised fraction of the heads and of the FFN columns (after rounding),
    /// to report next to the requested shares.
    pub fn realised_shares(&self) -> Vec<(f64, f64)> {
        let nh: usize = self.heads.iter().map(|r| r.len()).sum();
        let nf: usize = self.ffn.iter().map(|r| r.len()).sum();
        self.heads
            .iter()
            .zip(&self.ffn)
            .map(|(h, f)| (h.len() as f64 / nh as f64, f.len() as f64 / nf as f64))
            .collect()
    }
}

/// Largest-remainder (Hamilton) apportionment of `n` units by `weights`; ties go to the lower
/// index, so the result is deterministic.
fn apportion(n: usize, weights: &[f64]) -> Vec<usize> {
    let total: f64 = weights.iter().sum();
    let quotas: Vec<f64> = weights.iter().map(|w| w / total * n as f64).collect();
    let mut counts: Vec<usize> = quotas.iter().map(|q| q.floor() as usize).collect();
    let mut left = n - counts.iter().sum::<usize>().min(n);
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| {
        let ra = quotas[a] - quotas[a].floor();
        let rb = quotas[b] - quotas[b].floor();
        rb.partial_cmp(&ra)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    for &i in order.iter().cycle() {
        if left == 0 {
            break;
        }
        if weights[i] > 0.0 {
            counts[i] += 1;
            left -= 1;
        }
    }
    counts
}

fn to_ranges(counts: &[usize], unit: usize) -> Vec<Range<usize>> {
    let mut start = 0;
    counts
        .iter()
        .map(|&c| {
            let r = start..start + c * unit;
            start = r.end;
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> LlamaConfig {
        LlamaConfig {
            name: "t".into(),
            n_layer: 2,
            n_embd: 576,
            n_ff: 1536,
            n_head: 9,
            n_head_kv: 3,
            head_dim: 64,
            vocab_size: 100,
            context_length: 64,
            rope_freq_base: 1e4,
            rms_norm_eps: 1e-5,
            tied_embeddings: true,
            arch: Default::default(),
        }
    }

    #[test]
    fn plans_cover_everything_exactly_once() {
        let c = cfg();
        for shares in [
            vec![1.0],
            vec![1.0, 1.0],
            vec![3.0, 0.0, 1.0],
            vec![0.1, 0.2, 0.3, 0.4, 5.0, 0.0],
        ] {
            let p = TpPlan::from_shares(&c, &shares, 32).unwrap();
            assert_eq!(p.n_devices(), shares.len());
            assert_eq!(p.heads.first().unwrap().start, 0);
            assert_eq!(p.heads.last().unwrap().end, 9);
            assert_eq!(p.ffn.last().unwrap().end, 1536);
            for k in 1..shares.len() {
                assert_eq!(p.heads[k].start, p.heads[k - 1].end);
                assert_eq!(p.ffn[k].start, p.ffn[k - 1].end);
                assert_eq!(p.ffn[k].start % 32, 0);
            }
            for (k, s) in shares.iter().enumerate() {
                if *s == 0.0 {
                    assert!(p.heads[k].is_empty() && p.ffn[k].is_empty());
                }
                // every query head's KV head is held by the same device
                for h in p.heads[k].clone() {
                    assert!(p.kv_heads(k).contains(&(h / 3)));
                }
            }
        }
    }

    #[test]
    fn apportionment_is_proportional() {
        assert_eq!(apportion(9, &[1.0, 1.0, 1.0]), vec![3, 3, 3]);
        assert_eq!(apportion(9, &[2.0, 1.0]), vec![6, 3]);
        assert_eq!(apportion(10, &[1.0, 1.0, 1.0]), vec![4, 3, 3]);
        assert_eq!(apportion(2, &[1.0, 1.0, 1.0]), vec![1, 1, 0]);
    }

    #[test]
    fn bad_shares_are_rejected() {
        let c = cfg();
        assert_eq!(TpPlan::from_shares(&c, &[], 32), Err(TpError::NoDevices));
        assert_eq!(
            TpPlan::from_shares(&c, &[0.0, 0.0], 32),
            Err(TpError::AllZero)
        );
        assert!(matches!(
            TpPlan::from_shares(&c, &[1.0, -1.0], 32),
            Err(TpError::BadShare { index: 1, .. })
        ));
        assert!(matches!(
            TpPlan::from_shares(&c, &[f64::NAN], 32),
            Err(TpError::BadShare { .. })
        ));
        assert!(matches!(
            TpPlan::from_shares(&c, &[1.0], 1000),
            Err(TpError::Misaligned { .. })
        ));
    }

    #[test]
    fn ideal_sum_gives_every_device_the_sum() {
        let mut b = vec![vec![1.0, 2.0], vec![10.0, 20.0], vec![100.0, 200.0]];
        ideal_sum(&mut b);
        for v in &b {
            assert_eq!(v, &vec![111.0, 222.0]);
        }
    }
}
