//! Evaluation: perplexity (llama.cpp's `llama-perplexity` protocol, or a sliding window) and
//! top-1 token agreement against a reference run.

use crate::model::{Logits, Model, ModelError, Session};
use crate::sampling::argmax;
use crate::tp::Collective;

/// How to cut the token stream into windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum PplMode {
    /// llama.cpp `llama-perplexity`: non-overlapping chunks of `ctx` tokens (the last partial
    /// chunk dropped), the first token of each chunk replaced by BOS when the model adds BOS,
    /// only the second half of each chunk scored (positions `ctx/2 .. ctx−1` predicting the next
    /// token), so every scored token sees at least `ctx/2` tokens of context.
    LlamaCpp,
    /// Sliding window of `ctx` tokens advancing by `stride`; each token is scored once, in the
    /// first window that contains it with context (Hugging Face's strided perplexity).
    Sliding {
        /// Window advance in tokens.
        stride: usize,
    },
}

impl PplMode {
    /// The smallest context this mode can score a token with: llama.cpp's scores positions
    /// `ctx/2 .. ctx−1`, empty below 3; a sliding window scores position 0 → 1 from 2 on.
    pub fn min_ctx(self) -> usize {
        match self {
            PplMode::LlamaCpp => 3,
            PplMode::Sliding { .. } => 2,
        }
    }

    fn min_ctx_reason(self) -> &'static str {
        match self {
            PplMode::LlamaCpp => "llama.cpp-style perplexity scores the second half of each chunk (positions ctx/2 .. ctx−1), which is empty below 3 tokens; use --ctx 3 or more",
            PplMode::Sliding { .. } => "a window must hold a token and the one it predicts; use --ctx 2 or more",
        }
    }
}

/// Perplexity options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PplOptions {
    /// Context (chunk / window) length in tokens.
    pub ctx: usize,
    /// Stop after this many chunks / windows.
    pub max_chunks: Option<usize>,
    /// Protocol.
    pub mode: PplMode,
    /// BOS token to put first in each chunk (llama.cpp protocol), if the model wants one.
    pub bos: Option<u32>,
}

/// Result of a perplexity run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PplResult {
    /// exp(mean negative log-likelihood).
    pub perplexity: f64,
    /// Standard error of the mean NLL (over scored tokens), as llama.cpp reports it.
    pub nll_stderr: f64,
    /// Number of scored tokens.
    pub scored_tokens: usize,
    /// Tokens run through the model (including unscored context).
    pub processed_tokens: usize,
    /// Number of chunks / windows.
    pub chunks: usize,
    /// Running perplexity after each chunk (llama.cpp prints these).
    pub running_ppl: Vec<f64>,
    /// Top-1 prediction at every scored position (for token agreement).
    #[serde(skip)]
    pub predictions: Vec<u32>,
}

/// Errors of an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Not enough tokens for a single chunk.
    #[error("the text has {tokens} tokens, fewer than one context of {ctx} tokens (+1 for sliding windows)")]
    TooShort {
        /// Tokens available.
        tokens: usize,
        /// Context asked for.
        ctx: usize,
    },
    /// Bad options.
    #[error("{0}")]
    Options(String),
    /// A log-likelihood came out NaN or infinite: the logits hold NaN/inf (activations
    /// overflowed f32, e.g. under channel noise far beyond the signal). A numerical failure,
    /// not a perplexity.
    #[error("numerical failure: the log-likelihood of text token {position} (chunk {chunk}) is {value}: the logits hold NaN or infinity (the activations overflowed), so there is no perplexity to report")]
    NonFinite {
        /// Index of the scored token in the text.
        position: usize,
        /// Chunk (window) index, from 0.
        chunk: usize,
        /// The NLL computed.
        value: f64,
    },
}

/// Negative log-likelihood of `target` under a row of logits, in f64.
pub fn nll(logits: &[f32], target: u32) -> f64 {
    let m = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let z: f64 = logits.iter().map(|&v| (v as f64 - m).exp()).sum();
    -(logits[target as usize] as f64 - m - z.ln())
}

/// Something that turns token windows into logits: one model (single-device or tensor-parallel
/// through a collective), or a pipeline of stages.
pub trait Forward {
    /// Vocabulary size (width of a logits row).
    fn vocab(&self) -> usize;
    /// Start a new sequence.
    fn reset(&mut self);
    /// Run `tokens` after what is cached; logits for the rows `want` asks for.
    fn forward(&mut self, tokens: &[u32], want: Logits) -> Result<Vec<f32>, ModelError>;
}

/// A model, one session and a collective as a [`Forward`].
pub struct ModelForward<'a> {
    model: &'a Model,
    session: Session,
    collective: &'a mut dyn Collective,
}

impl<'a> ModelForward<'a> {
    /// Sessions of `limit` positions.
    pub fn new(model: &'a Model, limit: usize, collective: &'a mut dyn Collective) -> Self {
        ModelForward {
            model,
            session: model.new_session(limit),
            collective,
        }
    }
}

impl Forward for ModelForward<'_> {
    fn vocab(&self) -> usize {
        self.model.cfg.vocab_size
    }
    fn reset(&mut self) {
        self.session.reset();
    }
    fn forward(&mut self, tokens: &[u32], want: Logits) -> Result<Vec<f32>, ModelError> {
        self.model
            .forward(&mut self.session, tokens, self.collective, want)
    }
}

/// Perplexity of `model` on `tokens`, every all-reduce going through `collective`.
/// `progress(done, total)` is called after every chunk.
pub fn perplexity(
    model: &Model,
    tokens: &[u32],
    opts: &PplOptions,
    collective: &mut dyn Collective,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<PplResult, EvalError> {
    let mut f = ModelForward::new(model, opts.ctx, collective);
    perplexity_with(&mut f, tokens, opts, progress)
}

/// Perplexity of any [`Forward`] (sessions must hold `opts.ctx` positions).
pub fn perplexity_with(
    f: &mut dyn Forward,
    tokens: &[u32],
    opts: &PplOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<PplResult, EvalError> {
    let ctx = opts.ctx;
    if ctx < opts.mode.min_ctx() {
        return Err(EvalError::Options(format!(
            "--ctx {ctx}: {}",
            opts.mode.min_ctx_reason()
        )));
    }
    let vocab = f.vocab();
    // (window start, window tokens, first scored position inside the window)
    let mut windows: Vec<(usize, usize)> = Vec::new(); // (start, first_scored)
    match opts.mode {
        PplMode::LlamaCpp => {
            let n = tokens.len() / ctx;
            if n == 0 {
                return Err(EvalError::TooShort {
                    tokens: tokens.len(),
                    ctx,
                });
            }
            for i in 0..n {
                windows.push((i * ctx, ctx / 2));
            }
        }
        PplMode::Sliding { stride } => {
            if stride == 0 || stride > ctx {
                return Err(EvalError::Options(format!(
                    "stride {stride} must be in 1..=ctx ({ctx})"
                )));
            }
            if tokens.len() < 2 {
                return Err(EvalError::TooShort {
                    tokens: tokens.len(),
                    ctx,
                });
            }
            let mut scored_until = 0usize; // tokens[..=scored_until] are context-only or scored
            let mut begin = 0usize;
            loop {
                let end = (begin + ctx).min(tokens.len());
                // positions j in the window predict token begin+j+1; score targets > scored_until
                let first = scored_until.saturating_sub(begin);
                windows.push((begin, first));
                scored_until = end - 1;
                if end == tokens.len() {
                    break;
                }
                begin += stride;
            }
        }
    }
    if let Some(m) = opts.max_chunks {
        windows.truncate(m.max(1));
    }
    let total = windows.len();
    let (mut nll_sum, mut nll2_sum, mut count, mut processed) = (0.0f64, 0.0f64, 0usize, 0usize);
    let mut running = Vec::with_capacity(total);
    let mut predictions = Vec::new();
    for (ci, &(start, first)) in windows.iter().enumerate() {
        let end = (start + ctx).min(tokens.len());
        let mut batch = tokens[start..end].to_vec();
        if opts.mode == PplMode::LlamaCpp {
            if let Some(bos) = opts.bos {
                batch[0] = bos;
            }
        }
        let len = batch.len();
        // scored positions: first .. len−1 (the last position has no next token in the window)
        let last = len - 1;
        if first >= last {
            continue;
        }
        f.reset();
        let logits = f.forward(&batch, Logits::From(first))?;
        processed += len;
        for j in first..last {
            let row = &logits[(j - first) * vocab..(j - first + 1) * vocab];
            let target = tokens[start + j + 1];
            let v = nll(row, target);
            if !v.is_finite() {
                return Err(EvalError::NonFinite {
                    position: start + j + 1,
                    chunk: ci,
                    value: v,
                });
            }
            nll_sum += v;
            nll2_sum += v * v;
            count += 1;
            predictions.push(argmax(row).unwrap_or(0));
        }
        running.push((nll_sum / count as f64).exp());
        progress(ci + 1, total);
    }
    if count == 0 {
        return Err(EvalError::TooShort {
            tokens: tokens.len(),
            ctx,
        });
    }
    let mean = nll_sum / count as f64;
    let var = (nll2_sum / count as f64 - mean * mean).max(0.0);
    Ok(PplResult {
        perplexity: mean.exp(),
        nll_stderr: (var / (count as f64 - 1.0).max(1.0)).sqrt(),
        scored_tokens: count,
        processed_tokens: processed,
        chunks: running.len(),
        running_ppl: running,
        predictions,
    })
}

/// Fraction of positions where two runs' top-1 predictions agree (teacher-forced: both runs saw
/// the same input tokens). Returns `None` if the runs scored different positions.
pub fn token_agreement(reference: &[u32], run: &[u32]) -> Option<f64> {
    if reference.len() != run.len() || reference.is_empty() {
        return None;
    }
    let same = reference.iter().zip(run).filter(|(a, b)| a == b).count();
    Some(same as f64 / reference.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Logits from a fixed rule: uniform, except NaN rows at the positions in `nan_at`.
    struct Fixed {
        vocab: usize,
        nan_at: Vec<usize>,
        pos: usize,
    }

    impl Forward for Fixed {
        fn vocab(&self) -> usize {
            self.vocab
        }
        fn reset(&mut self) {
            self.pos = 0;
        }
        fn forward(&mut self, tokens: &[u32], want: Logits) -> Result<Vec<f32>, ModelError> {
            let from = match want {
                Logits::From(f) => f,
                _ => 0,
            };
            let mut out = Vec::new();
            for j in from..tokens.len() {
                let v = if self.nan_at.contains(&(self.pos + j)) {
                    f32::NAN
                } else {
                    0.0
                };
                out.extend(std::iter::repeat_n(v, self.vocab));
            }
            self.pos += tokens.len();
            Ok(out)
        }
    }

    fn opts(ctx: usize, mode: PplMode) -> PplOptions {
        PplOptions {
            ctx,
            max_chunks: None,
            mode,
            bos: None,
        }
    }

    #[test]
    fn a_nan_logit_is_a_failed_evaluation_not_a_perplexity() {
        let tokens: Vec<u32> = (0..32).map(|i| i % 8).collect();
        let mut clean = Fixed {
            vocab: 8,
            nan_at: vec![],
            pos: 0,
        };
        let r = perplexity_with(
            &mut clean,
            &tokens,
            &opts(8, PplMode::LlamaCpp),
            &mut |_, _| {},
        )
        .expect("clean logits evaluate");
        assert!(
            (r.perplexity - 8.0).abs() < 1e-9,
            "uniform over 8: {}",
            r.perplexity
        );
        // position 5 of the first chunk is scored (ctx/2 = 4 .. 6): its NaN must surface
        let mut bad = Fixed {
            vocab: 8,
            nan_at: vec![5],
            pos: 0,
        };
        match perplexity_with(
            &mut bad,
            &tokens,
            &opts(8, PplMode::LlamaCpp),
            &mut |_, _| {},
        ) {
            Err(EvalError::NonFinite {
                position,
                chunk,
                value,
            }) => {
                assert_eq!((position, chunk), (6, 0));
                assert!(value.is_nan());
            }
            other => panic!("expected a numerical failure, got {other:?}"),
        }
    }

    #[test]
    fn a_context_that_scores_nothing_is_an_option_error() {
        let tokens: Vec<u32> = (0..32).map(|i| i % 8).collect();
        let mut f = Fixed {
            vocab: 8,
            nan_at: vec![],
            pos: 0,
        };
        // llama.cpp's protocol at ctx 2 scores positions 1..1: nothing; refused up front
        let e = perplexity_with(&mut f, &tokens, &opts(2, PplMode::LlamaCpp), &mut |_, _| {})
            .unwrap_err();
        assert!(
            matches!(e, EvalError::Options(ref m) if m.contains("at least 3") || m.contains("--ctx 3")),
            "{e}"
        );
        // a sliding window of 2 scores every token after the first
        let r = perplexity_with(
            &mut f,
            &tokens,
            &opts(2, PplMode::Sliding { stride: 1 }),
            &mut |_, _| {},
        )
        .expect("sliding ctx 2");
        assert_eq!(r.scored_tokens, 31);
        for ctx in 3..6 {
            let r = perplexity_with(
                &mut f,
                &tokens,
                &opts(ctx, PplMode::LlamaCpp),
                &mut |_, _| {},
            )
            .expect("ctx ≥ 3 scores");
            assert!(r.scored_tokens > 0);
        }
    }

    #[test]
    fn nll_of_uniform_logits_is_log_vocab() {
        let l = vec![0.5f32; 1000];
        // f64 log-sum-exp of exactly representable logits: rounding ~1e-13 (a sum of 1000
        // terms) and ~1e-16 below; both tolerances are loose
        assert!((nll(&l, 3) - (1000f64).ln()).abs() < 1e-9);
        // a peaked distribution: p(target) = e^2 / (e^2 + 3)
        let l = [2.0f32, 0.0, 0.0, 0.0];
        let want = -(2f64.exp() / (2f64.exp() + 3.0)).ln();
        assert!((nll(&l, 0) - want).abs() < 1e-7);
    }

    #[test]
    fn agreement_counts_matches() {
        assert_eq!(token_agreement(&[1, 2, 3, 4], &[1, 2, 0, 4]), Some(0.75));
        assert_eq!(token_agreement(&[1], &[1, 2]), None);
    }
}
