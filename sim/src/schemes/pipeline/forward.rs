//! The numbers' half of a pipeline: the real model run stage by stage, each hand-off through
//! its link (see the parent module's doc).

use super::{bad, Split};
use crate::des::Time;
use crate::links::handoff::{Handoff, Network, Wire};
use crate::links::{Call, Link as _, Streams};
use airinfer_llm::model::{Hidden, Logits, Model, ModelError, Session};
use airinfer_llm::tp::IdealCollective;
use airinfer_plan::pipeline::{blocks_of, Assignment, PartitionError, Stage};
use serde::Serialize;
use std::ops::Range;

/// Statistics of the hand-offs of a numeric run.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct HandoffStats {
    /// Σ squared error of what arrived against what was sent.
    pub err2: f64,
    /// Σ squared sent values.
    pub sig2: f64,
    /// Transport blocks lost after HARQ.
    pub lost_blocks: usize,
    /// Hand-offs made.
    pub handoffs: usize,
}

impl HandoffStats {
    /// Normalised MSE of the hand-offs.
    pub fn nmse(&self) -> f64 {
        self.err2 / self.sig2.max(f64::MIN_POSITIVE)
    }
}

/// The real model run stage by stage, hand-offs through the links (see the module doc).
pub struct PipelineForward<'a> {
    model: &'a Model,
    stages: Vec<Stage>,
    split: Split,
    /// Per stage: its blocks ([`Split::Block`]) or its half-blocks ([`Split::Half`], in
    /// [`Model::run_halves`]' numbering).
    ranges: Vec<Range<usize>>,
    sessions: Vec<Session>,
    net: &'a Network,
    wire: Wire,
    streams: Streams,
    /// What the hand-offs did so far.
    pub stats: HandoffStats,
}

impl<'a> PipelineForward<'a> {
    /// Stages of `a` on `model` (a single-device split into blocks), sessions of `limit`
    /// positions.
    pub fn new(
        model: &'a Model,
        a: &Assignment,
        net: &'a Network,
        wire: Wire,
        limit: usize,
        seed: u64,
    ) -> Result<Self, PartitionError> {
        Self::with_split(model, a, Split::Block, net, wire, limit, seed)
    }

    /// Stages of `a` over the units of `split` ([`super::CostSetup::n_units`]: with half-blocks, unit
    /// `1 + h` is [`Model::run_halves`]' half-block `h`).
    pub fn with_split(
        model: &'a Model,
        a: &Assignment,
        split: Split,
        net: &'a Network,
        wire: Wire,
        limit: usize,
        seed: u64,
    ) -> Result<Self, PartitionError> {
        if model.n_devices() != 1 {
            return Err(bad(
                "model",
                "pipeline stages run a single-device (not tensor-parallel) model",
            ));
        }
        let l = model.cfg.n_layer;
        let n = match split {
            Split::Block => l + 2,
            Split::Half => 2 * l + 2,
        };
        a.check_cover(n, net.n())?;
        let ranges = a
            .stages
            .iter()
            .map(|s| match split {
                Split::Block => blocks_of(l, &s.units),
                Split::Half => {
                    let lo = s.units.start.clamp(1, 2 * l + 1) - 1;
                    let hi = s.units.end.clamp(1, 2 * l + 1) - 1;
                    lo..hi.max(lo)
                }
            })
            .collect();
        Ok(PipelineForward {
            model,
            sessions: a.stages.iter().map(|_| model.new_session(limit)).collect(),
            stages: a.stages.clone(),
            split,
            ranges,
            net,
            wire,
            streams: Streams::new(seed),
            stats: HandoffStats::default(),
        })
    }

    /// Start a new sequence on every stage.
    pub fn reset(&mut self) {
        for s in &mut self.sessions {
            s.reset();
        }
    }

    /// Bytes of KV cache held by each stage.
    pub fn kv_bytes(&self) -> Vec<usize> {
        self.sessions.iter().map(|s| s.kv_bytes(0)).collect()
    }

    /// Send `h` from device `from` to device `to`: quantise, send, zero lost blocks.
    fn send(&mut self, from: usize, to: usize, h: &mut Hidden) {
        let sent = h.xs[0].clone();
        let x = &mut h.xs[0];
        if from != to {
            // the numbers' path has no clock (`simulate` times the same hand-offs)
            let call = Call {
                start: Time::ZERO,
                width: x.len(),
                n_tokens: 1,
                round: self.stats.handoffs as u64,
                medium: None,
                streams: &mut self.streams,
            };
            let mut handoff = Handoff {
                link: &self.net.links[from][to],
                wire: self.wire,
            };
            let carried = handoff.carry(call, std::slice::from_mut(x));
            self.stats.lost_blocks += carried.lost_blocks;
            self.stats.handoffs += 1;
        }
        for (a, b) in sent.iter().zip(x.iter()) {
            self.stats.err2 += ((a - b) as f64).powi(2);
            self.stats.sig2 += (*a as f64).powi(2);
        }
    }
}

impl airinfer_llm::eval::Forward for PipelineForward<'_> {
    fn vocab(&self) -> usize {
        self.model.cfg.vocab_size
    }

    fn reset(&mut self) {
        PipelineForward::reset(self);
    }

    fn forward(&mut self, tokens: &[u32], want: Logits) -> Result<Vec<f32>, ModelError> {
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let mut h = self.model.embed(self.sessions[0].pos, tokens)?;
        // half-blocks: the attention branch beside the stream after a cut between a block's
        // halves, and the block's input as it left the stage that produced it (with its
        // device), which the MLP half receives over its own residual link
        let mut branch: Option<Hidden> = None;
        let mut residual: Option<(usize, Hidden)> = None;
        for i in 0..self.stages.len() {
            let r = self.ranges[i].clone();
            // a stage of one attention half: the block's input came from an earlier stage
            let attention_only = r.start + 1 == r.end;
            match self.split {
                Split::Block => {
                    self.model
                        .run_layers(&mut self.sessions[i], &mut h, r, &mut IdealCollective)?
                }
                Split::Half => {
                    self.model
                        .run_halves(&mut self.sessions[i], &mut h, &mut branch, r)?
                }
            }
            if i + 1 == self.stages.len() {
                break;
            }
            let (from, to) = (self.stages[i].device, self.stages[i + 1].device);
            if let Some(a) = branch.as_mut() {
                // a cut between the halves of a block: the branch goes on to the next stage,
                // the block's input straight from where it was made
                self.send(from, to, a);
                h = match residual.take() {
                    Some((src, mut x)) if attention_only => {
                        self.send(src, to, &mut x);
                        x
                    }
                    _ => {
                        let mut x = h;
                        self.send(from, to, &mut x);
                        x
                    }
                };
            } else {
                // the stream as it leaves this stage, kept in case the next stage runs only
                // an attention half and the MLP half after it needs this input
                if self.split == Split::Half {
                    residual = Some((from, h.clone()));
                }
                self.send(from, to, &mut h);
            }
        }
        Ok(self.model.head(&h, want))
    }
}
