//! `airinfer inspect`, `generate`, `eval` and `bench llm`: the language model on its own, on one
//! device or tensor-parallel over K devices with the ideal all-reduce.

use crate::assets;
use crate::progress;
use airinfer_llm::eval::{perplexity, PplMode, PplOptions};
use airinfer_llm::gguf::GgufFile;
use airinfer_llm::model::{Logits, Model};
use airinfer_llm::sampling::SamplerConfig;
use airinfer_llm::tokenizer::{default_system_message, ChatFormat, ChatMessage, Tokenizer};
use airinfer_llm::tp::IdealCollective;
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// Which model, and how to split it.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model: a catalogue name (smollm2-135m, gemma3-270m; fetched and cached on first use) or a GGUF path.
    #[arg(long, default_value = "smollm2-135m")]
    pub model: String,
    /// Number of devices for tensor parallelism (equal shares unless --shares is given).
    #[arg(long)]
    pub devices: Option<usize>,
    /// Comma-separated non-negative model shares, one per device (e.g. 2,1,1); with
    /// `eval --scheme aircomp` also an assignment planned by name under the devices' energy
    /// budgets (`airinfer plan`'s problem): sca (the joint design), uniform, compute, memory.
    #[arg(long, value_parser = shares_value)]
    pub shares: Option<SharesArg>,
}

/// `--shares`: numbers, or an assignment planned by name.
#[derive(Debug, Clone, PartialEq)]
pub enum SharesArg {
    /// One non-negative share per device.
    Numbers(Vec<f64>),
    /// `sca`, `uniform`, `compute` or `memory`, planned for AirComp.
    Named(String),
}

/// The planned assignments `--shares` accepts by name.
pub const NAMED_SHARES: [&str; 4] = ["sca", "uniform", "compute", "memory"];

fn shares_value(v: &str) -> Result<SharesArg, String> {
    if NAMED_SHARES.contains(&v) {
        return Ok(SharesArg::Named(v.to_string()));
    }
    v.split(',')
        .map(|x| {
            x.trim().parse::<f64>().map_err(|_| {
                format!(
                    "'{x}' is not a number: give one share per device (e.g. 2,1,1) or an assignment by name ({})",
                    NAMED_SHARES.join(", ")
                )
            })
        })
        .collect::<Result<Vec<f64>, String>>()
        .map(SharesArg::Numbers)
}

impl ModelArgs {
    /// The shares to split by: from --shares, else equal over --devices, else one device.
    pub fn shares(&self) -> Result<Vec<f64>> {
        match (&self.shares, self.devices) {
            (Some(SharesArg::Named(n)), _) => bail!(
                "--shares {n}: a planned assignment needs the AirComp energy model: only `airinfer eval --scheme aircomp` plans shares by name (give numbers here)"
            ),
            (Some(SharesArg::Numbers(s)), Some(k)) if s.len() != k => {
                bail!("--shares has {} values but --devices is {k}", s.len())
            }
            (Some(SharesArg::Numbers(s)), _) => Ok(s.clone()),
            (None, Some(0)) => bail!("--devices 0: at least one device is needed"),
            (None, Some(k)) => Ok(vec![1.0; k]),
            (None, None) => Ok(vec![1.0]),
        }
    }

    /// Resolve, open and load the model, split by the shares.
    pub fn load(&self, quiet: bool) -> Result<(PathBuf, GgufFile, Model)> {
        let path = assets::resolve_model(&self.model, quiet)?;
        let g = GgufFile::open(&path)
            .with_context(|| format!("reading model file {}", path.display()))?;
        let shares = self.shares()?;
        let model = Model::load_shares(&g, &shares)
            .with_context(|| format!("loading model {}", path.display()))?;
        Ok((path, g, model))
    }
}

/// `airinfer inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Model: a catalogue name or a GGUF path.
    #[arg(default_value = "smollm2-135m")]
    pub model: String,
    /// Show memory per device for this many devices (equal shares unless --shares).
    #[arg(long)]
    pub devices: Option<usize>,
    /// Comma-separated model shares, one per device.
    #[arg(long, value_delimiter = ',')]
    pub shares: Option<Vec<f64>>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `airinfer generate`.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The prompt.
    #[arg(long)]
    pub prompt: String,
    /// Wrap the prompt in the model's chat template (ChatML) as a user message.
    #[arg(long)]
    pub chat: bool,
    /// Maximum number of new tokens.
    #[arg(long, default_value_t = 64)]
    pub max_tokens: usize,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Top-k (0 = off).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Top-p (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Sampler seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object on stdout instead of streaming text.
    #[arg(long)]
    pub json: bool,
    /// No progress or statistics on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// `airinfer eval --prefill`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrefillArg {
    /// 8-bit activations against the weights' integer codes.
    Int8,
    /// f32 activations against the dequantised weights.
    F32,
}

/// `airinfer eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Evaluation text: a catalogue name (lee-news, wikitext-2) or a text file path.
    #[arg(long, default_value = "lee-news")]
    pub text: String,
    /// Context length of each chunk / window, in tokens.
    #[arg(long, default_value_t = 512)]
    pub ctx: usize,
    /// Use only the first N tokens of the text.
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// Stop after N chunks (N ≥ 1).
    #[arg(long, value_parser = super::at_least_one)]
    pub chunks: Option<usize>,
    /// Sliding-window perplexity with this stride instead of llama.cpp's chunked protocol.
    #[arg(long)]
    pub sliding: Option<usize>,
    /// Prefill arithmetic: int8 (8-bit activations against the weights' codes, as llama.cpp)
    /// or f32 (f32 activations against the dequantised weights: slower, continuous, as
    /// experiments use by default).
    #[arg(long, value_enum, default_value = "int8")]
    pub prefill: PrefillArg,
    /// The coupled system: scheme, radio, devices, latency run.
    #[command(flatten)]
    pub radio: super::tp_eval::SchemeArgs,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// `airinfer bench llm`.
#[derive(Args, Debug)]
pub struct BenchLlmArgs {
    /// Model: a catalogue name or a GGUF path.
    #[arg(long, default_value = "smollm2-135m")]
    pub model: String,
    /// Thread counts to measure.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1usize, 2])]
    pub threads: Vec<usize>,
    /// Prompt length for the prefill measurement.
    #[arg(long, default_value_t = 512)]
    pub prompt_tokens: usize,
    /// Tokens generated for the decode measurement.
    #[arg(long, default_value_t = 128)]
    pub gen_tokens: usize,
    /// Repetitions (the best is reported, as llama-bench reports the mean of steady runs).
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

fn mib(b: usize) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

pub fn inspect(a: InspectArgs) -> Result<()> {
    let path = assets::resolve_model(&a.model, a.json)?;
    let g =
        GgufFile::open(&path).with_context(|| format!("reading model file {}", path.display()))?;
    let mut types: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    let mut total_bytes = 0u64;
    let mut n_params = 0u64;
    for t in g.tensors() {
        let e = types.entry(format!("{:?}", t.ggml_type)).or_default();
        e.0 += 1;
        e.1 += t.n_bytes();
        total_bytes += t.n_bytes();
        n_params += t.n_elements();
    }
    let cfg = match airinfer_llm::model::config_from_gguf(&g) {
        Ok(cfg) => cfg,
        Err(e) => {
            // what the file holds, before the one-line reason it does not run (text mode)
            if !a.json {
                let arch = match g.get("general.architecture") {
                    Some(airinfer_llm::gguf::MetadataValue::String(s)) => s.clone(),
                    _ => "?".into(),
                };
                println!(
                    "architecture {arch}, {} tensors, {:.1} M parameters, {:.1} MB",
                    g.tensors().len(),
                    n_params as f64 / 1e6,
                    total_bytes as f64 / 1e6
                );
                for (ty, (n, b)) in &types {
                    println!("  {ty:<8} {n:>4} tensors {:>9.1} MB", *b as f64 / 1e6);
                }
            }
            return Err(e).with_context(|| format!("model file {}", path.display()));
        }
    };
    let margs = ModelArgs {
        model: path.display().to_string(),
        devices: a.devices,
        shares: a.shares.clone().map(SharesArg::Numbers),
    };
    let shares = margs.shares()?;
    let model = Model::load_shares(&g, &shares)
        .with_context(|| format!("loading model {}", path.display()))?;
    let devices: Vec<_> = (0..model.n_devices())
        .map(|k| {
            let (h, f, kv) = (
                &model.plan.heads[k],
                &model.plan.ffn[k],
                model.plan.kv_heads(k),
            );
            json!({
                "device": k,
                "share": shares[k],
                "query_heads": [h.start, h.end],
                "kv_heads": [kv.start, kv.end],
                "ffn_columns": [f.start, f.end],
                "weight_bytes": model.device_weight_bytes(k),
            })
        })
        .collect();
    if a.json {
        let obj = json!({
            "path": path,
            "gguf_version": g.version(),
            "config": cfg,
            "parameters": n_params,
            "file_tensor_bytes": total_bytes,
            "tensors": g.tensors().len(),
            "tensor_types": types.iter().map(|(k, (n, b))| (k.clone(), json!({"count": n, "bytes": b}))).collect::<serde_json::Map<_, _>>(),
            "devices": devices,
        });
        println!("{}", serde_json::to_string_pretty(&obj)?);
        return Ok(());
    }
    println!("model        {} ({})", cfg.name, path.display());
    println!(
        "format       GGUF v{}, {} tensors, {:.1} MiB of tensor data, {:.1} M parameters",
        g.version(),
        g.tensors().len(),
        mib(total_bytes as usize),
        n_params as f64 / 1e6
    );
    println!("architecture {}: {} layers, n_embd {}, n_ff {}, {} heads / {} KV heads (head dim {}), vocab {}, context {}", cfg.arch.name, cfg.n_layer, cfg.n_embd, cfg.n_ff, cfg.n_head, cfg.n_head_kv, cfg.head_dim, cfg.vocab_size, cfg.context_length);
    println!(
        "             RoPE base {}, RMSNorm eps {:e}, {} output head",
        cfg.rope_freq_base,
        cfg.rms_norm_eps,
        if cfg.tied_embeddings {
            "tied"
        } else {
            "separate"
        }
    );
    for (k, (n, b)) in &types {
        println!(
            "tensors      {k:>6}: {n:>4} tensors, {:>8.1} MiB",
            mib(*b as usize)
        );
    }
    println!("split over {} device(s):", model.n_devices());
    for k in 0..model.n_devices() {
        let (h, f, kv) = (
            &model.plan.heads[k],
            &model.plan.ffn[k],
            model.plan.kv_heads(k),
        );
        println!(
            "  device {k}: share {:.3}, query heads {}..{} ({}), KV heads {}..{}, FFN columns {}..{} ({}), weights {:.1} MiB",
            shares[k] / shares.iter().sum::<f64>(),
            h.start, h.end, h.len(), kv.start, kv.end, f.start, f.end, f.len(),
            mib(model.device_weight_bytes(k))
        );
    }
    Ok(())
}

/// The token ids of `prompt`, wrapped in the model's chat template as a user message (after
/// its default system message) when `chat`; the errors of `airinfer generate --prompt`.
pub fn prompt_ids(
    g: &GgufFile,
    tok: &Tokenizer,
    model: &Model,
    prompt: &str,
    chat: bool,
    quiet: bool,
) -> Result<Vec<u32>> {
    let text = if chat {
        let mut msgs = Vec::new();
        if let Some(sys) = default_system_message(g) {
            msgs.push(ChatMessage {
                role: "system".into(),
                content: sys,
            });
        }
        msgs.push(ChatMessage {
            role: "user".into(),
            content: prompt.to_string(),
        });
        let format = ChatFormat::of(g);
        if !quiet && g.get("tokenizer.chat_template").is_none() {
            eprintln!(
                "note: the model file has no chat template; using its architecture's turn format ({format:?}). \
                 A base (not instruction-tuned) model may not follow it"
            );
        }
        format.apply(&msgs, true)
    } else {
        prompt.to_string()
    };
    let ids = tok.encode(&text, true, chat);
    if ids.is_empty() {
        bail!("--prompt: the prompt is empty after tokenisation");
    }
    let context = model.cfg.context_length;
    if ids.len() >= context {
        bail!(
            "--prompt: {} tokens, but the model's context holds {context}: no room for a generated token (shorten the prompt)",
            ids.len()
        );
    }
    Ok(ids)
}

/// `--temperature`, `--top-p`, `--seed` and friends as a sampler, checked.
pub fn sampler_config(
    temperature: f32,
    top_k: usize,
    top_p: f32,
    seed: u64,
) -> Result<SamplerConfig> {
    if !(temperature.is_finite() && temperature >= 0.0) {
        bail!("--temperature {temperature}: must be finite and non-negative");
    }
    if !(top_p > 0.0 && top_p <= 1.0) {
        bail!("--top-p {top_p}: must be in (0, 1]");
    }
    Ok(SamplerConfig {
        temperature,
        top_k,
        top_p,
        seed,
    })
}

/// What `airinfer generate --json` prints of a generation after `prompt_tokens` tokens.
pub fn generation_json(
    tok: &Tokenizer,
    prompt_tokens: usize,
    r: &airinfer_llm::generate::Generation,
) -> serde_json::Value {
    json!({"text": tok.decode(&r.ids), "token_ids": r.ids, "prompt_tokens": prompt_tokens,
        "stop": r.stop.name(), "prefill_tok_s": prompt_tokens as f64 / r.prefill_s,
        "decode_tok_s": r.ids.len() as f64 / r.decode_s.max(1e-9)})
}

/// What `airinfer generate` checks and prepares of `a` for `model` (from the file `g`, tokenised
/// by `tok`) before it generates: the sampler and the prompt's token ids (an error for an empty
/// prompt or one that fills the context).
pub fn generation_setup(
    a: &GenerateArgs,
    g: &GgufFile,
    tok: &Tokenizer,
    model: &Model,
    quiet: bool,
) -> Result<(SamplerConfig, Vec<u32>)> {
    let sampler = sampler_config(a.temperature, a.top_k, a.top_p, a.seed)?;
    let prompt = prompt_ids(g, tok, model, &a.prompt, a.chat, quiet)?;
    Ok((sampler, prompt))
}

pub fn generate(a: GenerateArgs) -> Result<()> {
    let quiet = a.quiet || a.json;
    // the sampler's options are checked before the model is fetched or loaded
    sampler_config(a.temperature, a.top_k, a.top_p, a.seed)?;
    let (_path, g, model) = a.model.load(quiet)?;
    let tok = Tokenizer::from_gguf(&g).context("building the tokenizer from the model file")?;
    let (sampler, prompt) = generation_setup(&a, &g, &tok, &model, quiet)?;
    let mut pending: Vec<u8> = Vec::new();
    let stdout = std::io::stdout();
    if !a.json && !a.chat {
        print!("{}", a.prompt);
        stdout.lock().flush().ok();
    }
    let r = airinfer_llm::generate::generate(
        &model,
        &tok,
        &prompt,
        a.max_tokens,
        sampler,
        &mut IdealCollective,
        &mut |next| {
            if a.json {
                return;
            }
            // stream whole UTF-8 characters only
            pending.extend_from_slice(&tok.token_bytes(next));
            let valid = match std::str::from_utf8(&pending) {
                Ok(s) => s.len(),
                Err(e) => e.valid_up_to(),
            };
            if valid > 0 {
                print!("{}", String::from_utf8_lossy(&pending[..valid]));
                stdout.lock().flush().ok();
                pending.drain(..valid);
            }
        },
    )?;
    if a.json {
        println!("{}", generation_json(&tok, prompt.len(), &r));
    } else {
        if !pending.is_empty() {
            print!("{}", String::from_utf8_lossy(&pending));
        }
        println!();
        if !a.quiet {
            eprintln!(
                "[{} prompt tokens at {:.1} tok/s, {} generated at {:.1} tok/s, {} device(s)]",
                prompt.len(),
                prompt.len() as f64 / r.prefill_s,
                r.ids.len(),
                r.ids.len() as f64 / r.decode_s.max(1e-9),
                model.n_devices()
            );
            if r.stop == airinfer_llm::generate::Stop::Context {
                eprintln!(
                    "[stopped at the model's context length, {} tokens]",
                    model.cfg.context_length
                );
            }
        }
    }
    Ok(())
}

/// A command's options from its arguments (without the command name), the way the CLI parses
/// them; a bad one is the first line of clap's message.
fn parse_args<A: clap::Args>(argv: &[String]) -> Result<A> {
    #[derive(clap::Parser)]
    #[command(no_binary_name = true)]
    struct Command<A: clap::Args> {
        #[command(flatten)]
        a: A,
    }
    use clap::Parser;
    Command::<A>::try_parse_from(argv)
        .map(|c| c.a)
        .map_err(|e| anyhow::anyhow!("{}", first_line(&e.render().to_string())))
}

/// `airinfer eval`'s options from its arguments (without the command name).
pub fn parse_eval_args(argv: &[String]) -> Result<EvalArgs> {
    parse_args(argv)
}

/// `airinfer generate`'s options from its arguments (without the command name).
pub fn parse_generate_args(argv: &[String]) -> Result<GenerateArgs> {
    parse_args(argv)
}

fn first_line(s: &str) -> &str {
    let l = s.lines().next().unwrap_or("");
    l.strip_prefix("error: ").unwrap_or(l)
}

/// The split model `a` evaluates, from the open model file `g` at `path`: by `--shares`
/// numbers or `--devices`, or by the assignment `--shares NAME` plans under `radio` (returned
/// with it).
pub fn eval_split(
    a: &EvalArgs,
    radio: &super::tp_eval::SchemeArgs,
    g: &GgufFile,
    path: &std::path::Path,
) -> Result<(Model, Option<crate::experiment::planned::Planned>)> {
    let shares = match &a.model.shares {
        // an assignment by name: plan it for this model's architecture, then split by it
        Some(SharesArg::Named(name)) => {
            let k = match (a.model.devices, radio.profiles.len()) {
                (Some(k), _) => k,
                (None, n) if n > 1 => n,
                _ => bail!("--shares {name}: give --devices K (or one --profiles name per device)"),
            };
            let cfg = airinfer_llm::model::config_from_gguf(g)
                .with_context(|| format!("reading the architecture of {}", path.display()))?;
            let p = radio.plan(&cfg, &a.model.model, k, name)?;
            let model = Model::load_shares(g, &p.shares)
                .with_context(|| format!("loading model {}", path.display()))?;
            return Ok((model, Some(p)));
        }
        _ => a.model.shares()?,
    };
    let model = Model::load_shares(g, &shares)
        .with_context(|| format!("loading model {}", path.display()))?;
    Ok((model, None))
}

/// `airinfer eval`'s text `--text` (a catalogue name, fetched when missing, or a file).
pub fn eval_text(a: &EvalArgs, quiet: bool) -> Result<String> {
    assets::read_text(&assets::resolve_text(&a.text, quiet)?)
}

/// The tokens `airinfer eval` scores of `text`, all of them (`--max-tokens` is applied by
/// [`eval_report`]).
pub fn eval_tokens(tok: &Tokenizer, text: &str) -> Vec<u32> {
    tok.encode(text, true, false)
}

/// What `airinfer eval` reports: the `--json` object, for the text's tokens `text_tokens`
/// ([`eval_tokens`]). `radio` is `a.radio` with its
/// `--config` applied; `link`: every all-reduce through this collective instead of the ideal
/// one (not with `--scheme`, whose collective is the simulated radio).
#[allow(clippy::too_many_arguments)]
pub fn eval_report(
    a: &EvalArgs,
    radio: &super::tp_eval::SchemeArgs,
    (g, tok): (&GgufFile, &Tokenizer),
    text_tokens: &[u32],
    model: &Model,
    planned: Option<&crate::experiment::planned::Planned>,
    link: Option<&mut dyn airinfer_llm::tp::Collective>,
    quiet: bool,
    print: bool,
) -> Result<serde_json::Value> {
    airinfer_llm::kernels::set_f32_prefill(a.prefill == PrefillArg::F32);
    let mode = match a.sliding {
        Some(stride) => PplMode::Sliding { stride },
        None => PplMode::LlamaCpp,
    };
    if a.ctx < mode.min_ctx() || a.ctx > model.cfg.context_length {
        bail!(
            "--ctx {}: must be between {} ({}) and the model's context length {}",
            a.ctx,
            mode.min_ctx(),
            if a.sliding.is_some() {
                "a window holds a token and the one it predicts"
            } else {
                "llama.cpp's protocol scores the second half of each chunk"
            },
            model.cfg.context_length
        );
    }
    let tokens = &text_tokens[..a
        .max_tokens
        .map_or(text_tokens.len(), |m| m.min(text_tokens.len()))];
    let opts = PplOptions {
        ctx: a.ctx,
        max_chunks: a.chunks,
        mode,
        bos: if tok.add_bos() { tok.bos_id() } else { None },
    };
    let n_chunks_est = match opts.mode {
        PplMode::LlamaCpp => tokens.len() / a.ctx.max(1),
        PplMode::Sliding { stride } => {
            tokens.len().saturating_sub(a.ctx).div_ceil(stride.max(1)) + 1
        }
    };
    let n_chunks_est = a.chunks.map_or(n_chunks_est, |c| c.min(n_chunks_est));
    if radio.scheme.is_some() {
        if link.is_some() {
            bail!("a link of your own replaces the all-reduce, which --scheme simulates: give one of the two");
        }
        let pb = progress::items_bar(2 * n_chunks_est as u64, "reference + scheme", quiet);
        let mut base = 0;
        let r = super::tp_eval::evaluate(
            radio,
            model,
            g,
            tokens,
            &opts,
            planned,
            &mut |phase, d, _| {
                if phase == "scheme" {
                    base = n_chunks_est;
                }
                pb.set_position((base + d) as u64);
            },
        );
        pb.finish_and_clear();
        let r = r?;
        if print {
            r.print();
        }
        return Ok(r.json());
    }
    let pb = progress::items_bar(n_chunks_est as u64, "perplexity", quiet);
    let t0 = Instant::now();
    let mut ideal = IdealCollective;
    let r = perplexity(
        model,
        tokens,
        &opts,
        link.unwrap_or(&mut ideal),
        &mut |done, _| pb.set_position(done as u64),
    );
    pb.finish_and_clear();
    let r = r?;
    let secs = t0.elapsed().as_secs_f64();
    let tok_s = r.processed_tokens as f64 / secs;
    if print {
        println!(
            "perplexity {:.4} ± {:.4} (nll stderr) over {} scored tokens ({} chunks of {}, {} text tokens); {:.1} tokens/s, {} device(s)",
            r.perplexity, r.perplexity * r.nll_stderr, r.scored_tokens, r.chunks, a.ctx, tokens.len(), tok_s, model.n_devices()
        );
    }
    Ok(
        json!({"perplexity": r.perplexity, "nll_stderr": r.nll_stderr, "tokens": r.scored_tokens,
        "text_tokens": tokens.len(), "processed_tokens": r.processed_tokens, "chunks": r.chunks,
        "ctx": a.ctx, "tokens_per_s": tok_s, "seconds": secs, "devices": model.n_devices(),
        "running_ppl": r.running_ppl}),
    )
}

pub fn eval(a: EvalArgs) -> Result<()> {
    let quiet = a.quiet || a.json;
    let radio = a.radio.clone().with_config()?;
    let path = assets::resolve_model(&a.model.model, quiet)?;
    let g =
        GgufFile::open(&path).with_context(|| format!("reading model file {}", path.display()))?;
    let (model, planned) = eval_split(&a, &radio, &g, &path)?;
    let tok = Tokenizer::from_gguf(&g).context("building the tokenizer from the model file")?;
    let tokens = eval_tokens(&tok, &eval_text(&a, quiet)?);
    let r = eval_report(
        &a,
        &radio,
        (&g, &tok),
        &tokens,
        &model,
        planned.as_ref(),
        None,
        quiet,
        !a.json,
    )?;
    if a.json {
        println!("{r}");
    }
    Ok(())
}

pub fn bench_llm(a: BenchLlmArgs) -> Result<()> {
    let path = assets::resolve_model(&a.model, a.json)?;
    let g =
        GgufFile::open(&path).with_context(|| format!("reading model file {}", path.display()))?;
    let model =
        Model::load_single(&g).with_context(|| format!("loading model {}", path.display()))?;
    if a.prompt_tokens == 0 || a.gen_tokens == 0 || a.reps == 0 {
        bail!("--prompt-tokens, --gen-tokens and --reps must be positive");
    }
    let vocab = model.cfg.vocab_size as u32;
    // a fixed pseudo-random prompt (as llama-bench uses random tokens)
    let prompt: Vec<u32> = (0..a.prompt_tokens as u64)
        .map(|i| ((i * 2654435761 + 12345) % vocab as u64) as u32)
        .collect();
    let mut rows = Vec::new();
    for &threads in &a.threads {
        if threads == 0 {
            bail!("--threads: thread counts must be positive");
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?;
        let (pp, tg) = pool.install(|| -> Result<(f64, f64)> {
            // warm-up: dequantise the GEMM weights once, fault pages in
            let mut s = model.new_session(a.prompt_tokens + a.gen_tokens + 1);
            model.forward(
                &mut s,
                &prompt[..prompt.len().min(16)],
                &mut IdealCollective,
                Logits::Last,
            )?;
            model.forward(&mut s, &[1], &mut IdealCollective, Logits::Last)?;
            let (mut best_pp, mut best_tg) = (0.0f64, 0.0f64);
            for _ in 0..a.reps {
                s.reset();
                let t0 = Instant::now();
                model.forward(&mut s, &prompt, &mut IdealCollective, Logits::Last)?;
                best_pp = best_pp.max(a.prompt_tokens as f64 / t0.elapsed().as_secs_f64());
                // decode from an empty cache, as llama-bench's tg128
                s.reset();
                let t1 = Instant::now();
                let mut next = 1u32;
                for _ in 0..a.gen_tokens {
                    let l = model.forward(&mut s, &[next], &mut IdealCollective, Logits::Last)?;
                    next = airinfer_llm::sampling::argmax(&l).unwrap_or(0);
                }
                best_tg = best_tg.max(a.gen_tokens as f64 / t1.elapsed().as_secs_f64());
            }
            Ok((best_pp, best_tg))
        })?;
        if !a.json {
            println!(
                "threads {threads}: prefill pp{} {:.1} tok/s, decode tg{} {:.1} tok/s",
                a.prompt_tokens, pp, a.gen_tokens, tg
            );
        }
        rows.push(json!({"threads": threads, "prefill_tok_s": pp, "decode_tok_s": tg}));
    }
    let weight_bytes = model.device_weight_bytes(0);
    let prefill = if airinfer_llm::kernels::f32_prefill() {
        "f32 (AIRINFER_F32_PREFILL=1)"
    } else {
        "int8"
    };
    if a.json {
        println!(
            "{}",
            json!({"model": path, "prompt_tokens": a.prompt_tokens, "gen_tokens": a.gen_tokens, "weight_bytes": weight_bytes, "kernel": airinfer_llm::kernels::kernel_name(), "prefill": prefill, "threads": rows})
        );
    } else {
        println!(
            "(weights read per decoded token: {:.1} MB; kernel path: {}; prefill: {prefill})",
            weight_bytes as f64 / 1e6,
            airinfer_llm::kernels::kernel_name()
        );
    }
    Ok(())
}
