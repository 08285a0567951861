//! The coupled system on a real model: perplexity with every all-reduce through a
//! [`TpCollective`], agreement with the error-free run, and the simulated latency of a prompt
//! plus greedy decoding. Shared by `airinfer eval --scheme` and `kind = "eval"` experiments.

use super::tp::{Breakdown, Span, TpCollective};
use airinfer_llm::cost::WeightFormat;
use airinfer_llm::eval::{perplexity, token_agreement, PplOptions, PplResult};
use airinfer_llm::gguf::{GgmlType, GgufFile};
use airinfer_llm::model::{Logits, Model};
use airinfer_llm::sampling::argmax;
use airinfer_llm::tp::IdealCollective;
use anyhow::{bail, Result};

/// What one coupled evaluation measured.
#[derive(Debug, Clone)]
pub struct CoupledReport {
    /// Perplexity through the scheme.
    pub perplexity: f64,
    /// Perplexity of the same split with exact all-reduces.
    pub reference_perplexity: f64,
    /// Top-1 agreement with the error-free predictions.
    pub agreement: f64,
    /// Normalised MSE at the attention-output and MLP-down reductions.
    pub nmse: [f64; 2],
    /// Normalised MSE over both sites (total squared error over total signal energy).
    pub nmse_all: f64,
    /// MSE of the aggregate per reduced value over both sites (the squared error of the sum
    /// itself, not normalised: the paper's MSE axis; it grows with the sum's power).
    pub mse_all: f64,
    /// Tokens scored.
    pub scored_tokens: usize,
    /// Prompt tokens of the latency run.
    pub prompt_tokens: usize,
    /// Tokens decoded in the latency run.
    pub gen_tokens: usize,
    /// Time to first token, s.
    pub ttft_s: f64,
    /// Mean time per decoded token, s.
    pub per_token_s: f64,
    /// Totals of the prefill.
    pub prefill: Breakdown,
    /// Totals of the whole decode (divide by `gen_tokens` for per token).
    pub decode: Breakdown,
    /// Timeline of the first decoded token (when asked for).
    pub first_token_spans: Vec<Span>,
}

/// The weight format of a GGUF for the cost model (that of its FFN matrices).
pub fn weight_format(g: &GgufFile) -> WeightFormat {
    match g.tensor("blk.0.ffn_down.weight").map(|t| t.ggml_type) {
        Some(GgmlType::F32) => WeightFormat::F32,
        Some(GgmlType::F16) | Some(GgmlType::BF16) => WeightFormat::F16,
        Some(GgmlType::Q8_0) => WeightFormat::Q8_0,
        Some(GgmlType::Q4_0) => WeightFormat::Q4_0,
        Some(GgmlType::Q4_1) | None => WeightFormat::Q4_1,
        // the other block formats by their storage: bits per weight of a block
        Some(t) => WeightFormat::Bits((t.type_size() * 8) as f64 / t.block_size() as f64),
    }
}

/// The error-free reference of `model`'s split on `tokens`.
pub fn reference(
    model: &Model,
    tokens: &[u32],
    opts: &PplOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<PplResult> {
    Ok(perplexity(
        model,
        tokens,
        opts,
        &mut IdealCollective,
        progress,
    )?)
}

/// Memory each device needs (weights + an f32 KV cache of `ctx` positions), checked against its
/// profile; an error names the device that does not fit.
pub fn check_memory(model: &Model, c: &TpCollective, ctx: usize) -> Result<()> {
    for (k, p) in c.compute().profiles.iter().enumerate() {
        let kv =
            2 * model.cfg.n_layer * model.plan.kv_heads(k).len() * model.cfg.head_dim * 4 * ctx;
        let need = (model.device_weight_bytes(k) + kv) as f64;
        if need > p.mem_capacity {
            bail!(
                "device {k} ({}) needs {:.3} GB (weights + KV cache of {ctx} positions) but has {:.3} GB: the model does not fit",
                p.description,
                need / 1e9,
                p.mem_capacity / 1e9
            );
        }
    }
    Ok(())
}

/// Evaluate `model` on `tokens` through collectives built by `make(seed)`: the perplexity run
/// uses `make(seed)`, the latency run (prefill `prompt_tokens`, then `gen_tokens` greedy
/// tokens) a fresh `make(seed ^ 0x5EED_0001)` (fresh clock and channel streams).
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    model: &Model,
    tokens: &[u32],
    opts: &PplOptions,
    reference: &PplResult,
    make: &dyn Fn(u64) -> Result<TpCollective>,
    seed: u64,
    prompt_tokens: usize,
    gen_tokens: usize,
    record_first_token: bool,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<CoupledReport> {
    if gen_tokens == 0 || prompt_tokens == 0 {
        bail!("prompt and generated token counts must be positive");
    }
    let mut c = make(seed)?;
    check_memory(model, &c, opts.ctx)?;
    let run = perplexity(model, tokens, opts, &mut c, progress)?;
    let agreement = token_agreement(&reference.predictions, &run.predictions).unwrap_or(f64::NAN);
    let mut t = make(seed ^ 0x5EED_0001)?;
    let prompt: Vec<u32> = tokens.iter().copied().take(prompt_tokens).collect();
    let mut session = model.new_session(prompt.len() + gen_tokens + 1);
    let logits = model.forward(&mut session, &prompt, &mut t, Logits::Last)?;
    t.finish_forward(1);
    let ttft = t.now_s();
    let prefill = t.totals.clone();
    t.reset_totals();
    let mut next = argmax(&logits).unwrap_or(0);
    let mut spans = Vec::new();
    for i in 0..gen_tokens {
        t.record = i == 0 && record_first_token;
        let l = model.forward(&mut session, &[next], &mut t, Logits::Last)?;
        t.finish_forward(1);
        if t.record {
            spans = std::mem::take(&mut t.timeline);
            t.record = false;
        }
        next = argmax(&l).unwrap_or(0);
    }
    Ok(CoupledReport {
        perplexity: run.perplexity,
        reference_perplexity: reference.perplexity,
        agreement,
        nmse: [c.stats[0].nmse(), c.stats[1].nmse()],
        nmse_all: (c.stats[0].err2 + c.stats[1].err2)
            / (c.stats[0].sig2 + c.stats[1].sig2).max(f64::MIN_POSITIVE),
        mse_all: (c.stats[0].err2 + c.stats[1].err2)
            / (c.stats[0].values + c.stats[1].values).max(1) as f64,
        scored_tokens: run.scored_tokens,
        prompt_tokens: prompt.len(),
        gen_tokens,
        ttft_s: ttft,
        per_token_s: (t.now_s() - ttft) / gen_tokens as f64,
        prefill,
        decode: t.totals.clone(),
        first_token_spans: spans,
    })
}
