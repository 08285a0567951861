//! Text generation: a prompt's prefill, then one sampled token at a time until a cap, the
//! session's limit or an end-of-generation token (`airinfer generate`, Python's
//! `Model.generate`).

use crate::model::{Logits, Model, ModelError};
use crate::sampling::{Sampler, SamplerConfig};
use crate::tokenizer::Tokenizer;
use crate::tp::Collective;
use std::time::Instant;

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// `max_tokens` were generated.
    MaxTokens,
    /// The model's context (its KV cache) is full.
    Context,
    /// The model produced an end-of-generation token (not kept).
    EndOfGeneration,
}

impl Stop {
    /// The name `airinfer generate --json` reports.
    pub fn name(self) -> &'static str {
        match self {
            Stop::MaxTokens => "max_tokens",
            Stop::Context => "context",
            Stop::EndOfGeneration => "end_of_generation",
        }
    }
}

/// What [`generate`] produced.
#[derive(Debug, Clone)]
pub struct Generation {
    /// The generated token ids (without the prompt or the end-of-generation token).
    pub ids: Vec<u32>,
    /// Why it stopped.
    pub stop: Stop,
    /// Wall time of the prompt's prefill, s.
    pub prefill_s: f64,
    /// Wall time of the decode steps, s.
    pub decode_s: f64,
}

/// Generate up to `max_tokens` tokens after `prompt` (non-empty, shorter than the model's
/// context), every all-reduce through `collective`; `on_token` sees each token as it is
/// sampled. The session holds `prompt.len() + max_tokens` positions, at most the context.
pub fn generate(
    model: &Model,
    tok: &Tokenizer,
    prompt: &[u32],
    max_tokens: usize,
    sampler: SamplerConfig,
    collective: &mut dyn Collective,
    on_token: &mut dyn FnMut(u32),
) -> Result<Generation, ModelError> {
    let context = model.cfg.context_length;
    let limit = (prompt.len() + max_tokens).min(context);
    let mut session = model.new_session(limit);
    let mut sampler = Sampler::new(sampler);
    let t0 = Instant::now();
    let mut logits = model.forward(&mut session, prompt, collective, Logits::Last)?;
    let prefill_s = t0.elapsed().as_secs_f64();
    let mut ids = Vec::new();
    let t1 = Instant::now();
    while ids.len() < max_tokens && session.pos < limit {
        let next = sampler.sample(&logits);
        if tok.is_eog(next) {
            break;
        }
        ids.push(next);
        on_token(next);
        if ids.len() == max_tokens || session.pos >= limit {
            break;
        }
        logits = model.forward(&mut session, &[next], collective, Logits::Last)?;
    }
    let stop = if ids.len() == max_tokens {
        Stop::MaxTokens
    } else if session.pos >= context {
        Stop::Context
    } else {
        Stop::EndOfGeneration
    };
    Ok(Generation {
        ids,
        stop,
        prefill_s,
        decode_s: t1.elapsed().as_secs_f64(),
    })
}
