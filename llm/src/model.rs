//! The Llama-architecture forward pass, on one device or tensor-parallel over K devices.
//!
//! Read [`Model::forward`] top to bottom: embedding, then per block "attention rmsnorm", "qkv
//! matmuls", "RoPE", "multi-head attention", "output projection" + all-reduce + residual, "ffn
//! rmsnorm", "gate/up matmuls", "SwiGLU", "down projection" + all-reduce + residual; then the
//! final norm and the output head. Each device keeps its own copy of the residual stream, because
//! over a noisy channel each device may receive a different estimate of the all-reduced sum.
//!
//! Single-device inference is the K = 1 case of the same code.

use crate::config::LlamaConfig;
use crate::gguf::{GgmlType, GgufError, GgufFile, TensorInfo};
use crate::kernels::{self, PackedMatrix, QActs, QK};
use crate::tp::{Collective, ReduceCtx, ReduceSite, TpError, TpPlan};
use rayon::prelude::*;
use std::ops::Range;

/// Errors while loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The GGUF file itself is bad.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// A required tensor is missing.
    #[error("tensor '{0}' is missing from the model file")]
    MissingTensor(String),
    /// A tensor has the wrong shape.
    #[error("tensor '{name}' has shape {got:?}, expected {expected:?}")]
    BadShape {
        /// Tensor name.
        name: String,
        /// Shape found (GGML order).
        got: Vec<u64>,
        /// Shape expected (GGML order).
        expected: Vec<u64>,
    },
    /// A tensor's storage type is not supported.
    #[error("tensor '{name}' has type {ty:?}, which airinfer cannot compute with (supported: F32, F16, BF16, Q4_0, Q4_1, Q8_0)")]
    UnsupportedType {
        /// Tensor name.
        name: String,
        /// Its type.
        ty: GgmlType,
    },
    /// A hyper-parameter is missing or physically meaningless.
    #[error("model metadata '{key}': {reason}")]
    Config {
        /// Metadata key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The tensor-parallel plan is invalid.
    #[error(transparent)]
    Tp(#[from] TpError),
    /// A token id is outside the vocabulary.
    #[error("token id {id} is outside the vocabulary (size {vocab})")]
    BadToken {
        /// The id.
        id: u32,
        /// Vocabulary size.
        vocab: usize,
    },
    /// The sequence would exceed the KV cache capacity.
    #[error("sequence length {len} exceeds the context limit {limit}")]
    ContextFull {
        /// Requested length.
        len: usize,
        /// Limit.
        limit: usize,
    },
}

/// One block's weights held by one device.
#[derive(Debug)]
struct Block {
    attn_norm: Vec<f32>,  // (n_embd)
    ffn_norm: Vec<f32>,   // (n_embd)
    wq: PackedMatrix,     // (heads_k·head_dim, n_embd)
    wk: PackedMatrix,     // (kv_k·head_dim, n_embd)
    wv: PackedMatrix,     // (kv_k·head_dim, n_embd)
    wo: PackedMatrix,     // (n_embd, heads_k·head_dim)
    w_gate: PackedMatrix, // (ffn_k, n_embd)
    w_up: PackedMatrix,   // (ffn_k, n_embd)
    w_down: PackedMatrix, // (n_embd, ffn_k)
}

/// What device k holds.
#[derive(Debug)]
struct DeviceWeights {
    heads: Range<usize>,
    kv_heads: Range<usize>,
    ffn: Range<usize>,
    blocks: Vec<Block>,
}

/// A loaded model, split over the devices of a [`TpPlan`].
#[derive(Debug)]
pub struct Model {
    /// Hyper-parameters.
    pub cfg: LlamaConfig,
    /// The split.
    pub plan: TpPlan,
    token_embd: PackedMatrix, // (vocab, n_embd), replicated on every device
    output: Option<PackedMatrix>, // (vocab, n_embd); None when tied to token_embd
    output_norm: Vec<f32>,    // (n_embd)
    devices: Vec<DeviceWeights>,
    rope_freqs: Vec<f32>, // (head_dim/2): θ^(−2i/head_dim)
}

/// Which positions of a forward call get logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// None (e.g. priming a cache).
    None,
    /// The last position only (generation).
    Last,
    /// Positions `from..T` of this call (perplexity scores the second half of a chunk).
    From(usize),
}

/// The residual stream between blocks: what a pipeline stage hands to the next.
#[derive(Debug, Clone, PartialEq)]
pub struct Hidden {
    /// Sequence position of the first token.
    pub pos: usize,
    /// Token positions carried.
    pub n_tokens: usize,
    /// One stream per tensor-parallel device, each `n_tokens × n_embd` values, token-major
    /// (a single-device model has one).
    pub xs: Vec<Vec<f32>>,
}

/// KV caches and position of one sequence, one cache per device (each device caches its own
/// KV heads). Several sessions can share one [`Model`] (one per sample in flight).
#[derive(Debug, Clone)]
pub struct Session {
    /// Number of positions already in the caches.
    pub pos: usize,
    /// Compute, at every reduction site, the magnitude `Σ |summand|` behind each element of
    /// each device's partial and hand it to
    /// [`Collective::all_reduce_with_magnitudes`] (a diagnostic for rounding-error bounds;
    /// costs about one extra mat-vec per site; off by default).
    pub record_magnitudes: bool,
    limit: usize,
    // caches[k][layer] = (keys, values), each (pos, kv_k, head_dim)
    caches: Vec<Vec<(Vec<f32>, Vec<f32>)>>,
}

impl Session {
    /// Forget everything (start a new sequence), keeping the allocations.
    pub fn reset(&mut self) {
        self.pos = 0;
        for dev in &mut self.caches {
            for (k, v) in dev {
                k.clear();
                v.clear();
            }
        }
    }

    /// Device `k`'s cached keys and values of block `layer`, each `(pos, kv_heads_k, head_dim)`
    /// row-major (the device's KV heads only).
    pub fn kv(&self, k: usize, layer: usize) -> (&[f32], &[f32]) {
        let (a, b) = &self.caches[k][layer];
        (a, b)
    }

    /// Bytes held by the KV caches of device `k`.
    pub fn kv_bytes(&self, k: usize) -> usize {
        self.caches[k]
            .iter()
            .map(|(a, b)| 4 * (a.len() + b.len()))
            .sum()
    }
}

/// Read a Llama config from GGUF metadata (`general.architecture` must be `llama`).
pub fn config_from_gguf(g: &GgufFile) -> Result<LlamaConfig, ModelError> {
    let arch = g.get_str("general.architecture")?;
    if arch != "llama" {
        return Err(ModelError::Config {
            key: "general.architecture".into(),
            reason: format!("'{arch}' is not supported (only 'llama' and its relatives: SmolLM2, TinyLlama, Llama-2/3)"),
        });
    }
    let key = |k: &str| format!("{arch}.{k}");
    let positive = |k: &str| -> Result<usize, ModelError> {
        let v = g.get_u32(&key(k))? as usize;
        if v == 0 {
            return Err(ModelError::Config {
                key: key(k),
                reason: "must be positive".into(),
            });
        }
        Ok(v)
    };
    let n_layer = positive("block_count")?;
    let n_embd = positive("embedding_length")?;
    let n_ff = positive("feed_forward_length")?;
    let n_head = positive("attention.head_count")?;
    let n_head_kv = match g.get_u32_opt(&key("attention.head_count_kv"))? {
        Some(0) => {
            return Err(ModelError::Config {
                key: key("attention.head_count_kv"),
                reason: "must be positive".into(),
            })
        }
        Some(v) => v as usize,
        None => n_head,
    };
    if n_head % n_head_kv != 0 {
        return Err(ModelError::Config {
            key: key("attention.head_count_kv"),
            reason: format!("{n_head} query heads are not a multiple of {n_head_kv} KV heads"),
        });
    }
    if n_embd % n_head != 0 {
        return Err(ModelError::Config {
            key: key("embedding_length"),
            reason: format!("{n_embd} is not a multiple of the head count {n_head}"),
        });
    }
    let head_dim = n_embd / n_head;
    if let Some(rd) = g.get_u32_opt(&key("rope.dimension_count"))? {
        if rd as usize != head_dim {
            return Err(ModelError::Config {
                key: key("rope.dimension_count"),
                reason: format!("partial RoPE ({rd} of {head_dim} dims) is not supported"),
            });
        }
    }
    if head_dim % 2 != 0 {
        return Err(ModelError::Config {
            key: key("embedding_length"),
            reason: "head dimension must be even for RoPE".into(),
        });
    }
    let rope_freq_base = g.get_f32_opt(&key("rope.freq_base"))?.unwrap_or(10000.0);
    let rms_norm_eps = g
        .get_f32_opt(&key("attention.layer_norm_rms_epsilon"))?
        .unwrap_or(1e-5);
    for (k, v) in [
        ("rope.freq_base", rope_freq_base),
        ("attention.layer_norm_rms_epsilon", rms_norm_eps),
    ] {
        if !(v.is_finite() && v > 0.0) {
            return Err(ModelError::Config {
                key: key(k),
                reason: format!("{v} must be finite and positive"),
            });
        }
    }
    let context_length = g.get_u32_opt(&key("context_length"))?.unwrap_or(2048) as usize;
    let embd = g
        .tensor("token_embd.weight")
        .ok_or_else(|| ModelError::MissingTensor("token_embd.weight".into()))?;
    if embd.dims.len() != 2 || embd.dims[0] != n_embd as u64 {
        return Err(ModelError::BadShape {
            name: embd.name.clone(),
            got: embd.dims.clone(),
            expected: vec![n_embd as u64, 0],
        });
    }
    let vocab_size = embd.dims[1] as usize;
    let name = g
        .get_str_opt("general.name")?
        .unwrap_or("unnamed")
        .to_string();
    Ok(LlamaConfig {
        name,
        n_layer,
        n_embd,
        n_ff,
        n_head,
        n_head_kv,
        head_dim,
        vocab_size,
        context_length,
        rope_freq_base,
        rms_norm_eps,
        tied_embeddings: g.tensor("output.weight").is_none(),
    })
}

/// Find a tensor and check its GGML shape.
fn tensor<'a>(g: &'a GgufFile, name: &str, dims: &[usize]) -> Result<&'a TensorInfo, ModelError> {
    let t = g
        .tensor(name)
        .ok_or_else(|| ModelError::MissingTensor(name.into()))?;
    let want: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
    // GGUF may store a vector as (n, 1): compare with trailing ones dropped.
    let mut got = t.dims.clone();
    while got.len() > want.len() && got.last() == Some(&1) {
        got.pop();
    }
    if got != want {
        return Err(ModelError::BadShape {
            name: name.into(),
            got: t.dims.clone(),
            expected: want,
        });
    }
    Ok(t)
}

/// A 1-D f32 vector (norm weights).
fn vector(g: &GgufFile, name: &str, n: usize) -> Result<Vec<f32>, ModelError> {
    tensor(g, name, &[n])?;
    Ok(g.tensor_f32(name)?)
}

/// Bytes of one row of `cols` elements of type `ty`.
fn row_bytes(ty: GgmlType, cols: usize) -> usize {
    cols / ty.block_size() * ty.type_size()
}

/// Load rows `rows` and columns `cols` of a 2-D weight (GGML dims = [n_cols, n_rows]) into the
/// kernel layout. Column slices must be whole quantisation blocks.
fn load_matrix(
    g: &GgufFile,
    name: &str,
    n_rows: usize,
    n_cols: usize,
    rows: Range<usize>,
    cols: Range<usize>,
) -> Result<PackedMatrix, ModelError> {
    let t = tensor(g, name, &[n_cols, n_rows])?;
    let ty = t.ggml_type;
    let bytes = g.tensor_bytes(t);
    let (nr, nc) = (rows.len(), cols.len());
    let bs = ty.block_size();
    if !n_cols.is_multiple_of(bs) || !cols.start.is_multiple_of(bs) || !cols.end.is_multiple_of(bs)
    {
        return Err(ModelError::BadShape {
            name: name.into(),
            got: t.dims.clone(),
            expected: vec![n_cols as u64, n_rows as u64],
        });
    }
    let rb = row_bytes(ty, n_cols);
    let c0 = cols.start / bs * ty.type_size();
    let c1 = cols.end / bs * ty.type_size();
    let row = |r: usize| &bytes[r * rb + c0..r * rb + c1];
    let nb = nr * nc / QK;
    let packing = match ty {
        GgmlType::Q4_0 => Some(kernels::Packing::Q4_0),
        GgmlType::Q4_1 => Some(kernels::Packing::Q4_1),
        GgmlType::Q8_0 => Some(kernels::Packing::Q8_0),
        _ => None,
    };
    let _ = nb;
    match ty {
        GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0 => {
            let packing = packing.expect("quantised type");
            let mut blocks = Vec::with_capacity(nr * (c1 - c0));
            for r in rows.clone() {
                blocks.extend_from_slice(row(r));
            }
            Ok(PackedMatrix::from_blocks(packing, nr, nc, blocks))
        }
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => {
            let mut w = vec![0.0f32; nr * nc];
            for (i, r) in rows.clone().enumerate() {
                crate::quant::dequantize(ty, row(r), &mut w[i * nc..(i + 1) * nc]).map_err(
                    |_| ModelError::UnsupportedType {
                        name: name.into(),
                        ty,
                    },
                )?;
            }
            Ok(PackedMatrix::from_dense(nr, nc, w))
        }
        other => Err(ModelError::UnsupportedType {
            name: name.into(),
            ty: other,
        }),
    }
}

impl Model {
    /// Load a model from a GGUF file, split by `plan` (use [`TpPlan::single`] for one device).
    /// Each device's weights are sliced at load time: a device holds only its part (the token
    /// embedding, final norm and output head are replicated).
    pub fn load(g: &GgufFile, plan: TpPlan) -> Result<Model, ModelError> {
        let cfg = config_from_gguf(g)?;
        Self::load_with_config(g, cfg, plan)
    }

    /// Load with one device holding everything.
    pub fn load_single(g: &GgufFile) -> Result<Model, ModelError> {
        let cfg = config_from_gguf(g)?;
        let plan = TpPlan::single(&cfg);
        Self::load_with_config(g, cfg, plan)
    }

    /// Load split proportionally to `shares` (see [`TpPlan::from_shares`]); FFN columns are
    /// aligned to the down projection's quantisation block.
    pub fn load_shares(g: &GgufFile, shares: &[f64]) -> Result<Model, ModelError> {
        let cfg = config_from_gguf(g)?;
        let align = g
            .tensor("blk.0.ffn_down.weight")
            .map(|t| t.ggml_type.block_size())
            .unwrap_or(1);
        let plan = TpPlan::from_shares(&cfg, shares, align)?;
        Self::load_with_config(g, cfg, plan)
    }

    fn load_with_config(g: &GgufFile, cfg: LlamaConfig, plan: TpPlan) -> Result<Model, ModelError> {
        let (d, hd, ff, nh, nkv) = (
            cfg.n_embd,
            cfg.head_dim,
            cfg.n_ff,
            cfg.n_head,
            cfg.n_head_kv,
        );
        if plan.heads.last().map(|r| r.end) != Some(nh)
            || plan.ffn.last().map(|r| r.end) != Some(ff)
        {
            return Err(ModelError::Config {
                key: "tp_plan".into(),
                reason: "plan does not match the model's heads / FFN width".into(),
            });
        }
        let token_embd = load_matrix(
            g,
            "token_embd.weight",
            cfg.vocab_size,
            d,
            0..cfg.vocab_size,
            0..d,
        )?;
        let output = if cfg.tied_embeddings {
            None
        } else {
            Some(load_matrix(
                g,
                "output.weight",
                cfg.vocab_size,
                d,
                0..cfg.vocab_size,
                0..d,
            )?)
        };
        let output_norm = vector(g, "output_norm.weight", d)?;
        let mut devices = Vec::with_capacity(plan.n_devices());
        for k in 0..plan.n_devices() {
            let heads = plan.heads[k].clone();
            let kv_heads = plan.kv_heads(k);
            let ffn = plan.ffn[k].clone();
            let q_rows = heads.start * hd..heads.end * hd;
            let kv_rows = kv_heads.start * hd..kv_heads.end * hd;
            let mut blocks = Vec::with_capacity(cfg.n_layer);
            for l in 0..cfg.n_layer {
                let n = |s: &str| format!("blk.{l}.{s}.weight");
                blocks.push(Block {
                    attn_norm: vector(g, &n("attn_norm"), d)?,
                    ffn_norm: vector(g, &n("ffn_norm"), d)?,
                    wq: load_matrix(g, &n("attn_q"), nh * hd, d, q_rows.clone(), 0..d)?,
                    wk: load_matrix(g, &n("attn_k"), nkv * hd, d, kv_rows.clone(), 0..d)?,
                    wv: load_matrix(g, &n("attn_v"), nkv * hd, d, kv_rows.clone(), 0..d)?,
                    wo: load_matrix(g, &n("attn_output"), d, nh * hd, 0..d, q_rows.clone())?,
                    w_gate: load_matrix(g, &n("ffn_gate"), ff, d, ffn.clone(), 0..d)?,
                    w_up: load_matrix(g, &n("ffn_up"), ff, d, ffn.clone(), 0..d)?,
                    w_down: load_matrix(g, &n("ffn_down"), d, ff, 0..d, ffn.clone())?,
                });
            }
            devices.push(DeviceWeights {
                heads,
                kv_heads,
                ffn,
                blocks,
            });
        }
        let rope_freqs = (0..hd / 2)
            .map(|i| (cfg.rope_freq_base as f64).powf(-2.0 * i as f64 / hd as f64) as f32)
            .collect();
        Ok(Model {
            cfg,
            plan,
            token_embd,
            output,
            output_norm,
            devices,
            rope_freqs,
        })
    }

    /// Number of devices.
    pub fn n_devices(&self) -> usize {
        self.devices.len()
    }

    /// Weight bytes held by device `k` (its blocks plus the replicated embedding, norm and head),
    /// in the stored (quantised) form.
    pub fn device_weight_bytes(&self, k: usize) -> usize {
        let dev = &self.devices[k];
        let blocks: usize = dev
            .blocks
            .iter()
            .map(|b| {
                4 * (b.attn_norm.len() + b.ffn_norm.len())
                    + [&b.wq, &b.wk, &b.wv, &b.wo, &b.w_gate, &b.w_up, &b.w_down]
                        .iter()
                        .map(|m| m.quantised_bytes())
                        .sum::<usize>()
            })
            .sum();
        blocks
            + self.token_embd.quantised_bytes()
            + self.output.as_ref().map_or(0, |o| o.quantised_bytes())
            + 4 * self.output_norm.len()
    }

    /// A new, empty sequence whose caches may grow to `limit` positions.
    pub fn new_session(&self, limit: usize) -> Session {
        Session {
            pos: 0,
            record_magnitudes: false,
            limit,
            caches: self
                .devices
                .iter()
                .map(|d| {
                    (0..d.blocks.len())
                        .map(|_| (Vec::new(), Vec::new()))
                        .collect()
                })
                .collect(),
        }
    }

    /// Run `tokens` (positions `session.pos ..`) through the model, calling `collective` at the
    /// two reduction sites of every block, and return logits (`rows × vocab`, row-major) for the
    /// positions `want` asks for. One token uses the quantised mat-vec path; several tokens the
    /// f32 GEMM path. The same as [`Model::embed`], [`Model::run_layers`] over every block and
    /// [`Model::head`] (what a pipeline stage runs a piece of).
    pub fn forward(
        &self,
        s: &mut Session,
        tokens: &[u32],
        collective: &mut dyn Collective,
        want: Logits,
    ) -> Result<Vec<f32>, ModelError> {
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let mut h = self.embed(s.pos, tokens)?;
        self.run_layers(s, &mut h, 0..self.cfg.n_layer, collective)?;
        Ok(self.head(&h, want))
    }

    /// Token embedding of `tokens` at positions `pos ..`: the first pipeline stage's work. Every
    /// tensor-parallel device starts from the same rows.
    pub fn embed(&self, pos: usize, tokens: &[u32]) -> Result<Hidden, ModelError> {
        let d = self.cfg.n_embd;
        if let Some(&id) = tokens
            .iter()
            .find(|&&id| id as usize >= self.cfg.vocab_size)
        {
            return Err(ModelError::BadToken {
                id,
                vocab: self.cfg.vocab_size,
            });
        }
        let mut x0 = vec![0.0f32; tokens.len() * d];
        for (i, &tok) in tokens.iter().enumerate() {
            self.token_embd
                .dequantize_row(tok as usize, &mut x0[i * d..(i + 1) * d]);
        }
        Ok(Hidden {
            pos,
            n_tokens: tokens.len(),
            xs: vec![x0; self.devices.len()],
        })
    }

    /// Run blocks `layers` on the hidden state `h` (whose first token must sit at `s.pos`),
    /// appending their keys and values to `s`'s caches, and advance `s.pos` (an empty range only
    /// advances it). A pipeline stage owns a session of
    /// its own, so its KV caches live with it.
    pub fn run_layers(
        &self,
        s: &mut Session,
        h: &mut Hidden,
        layers: Range<usize>,
        collective: &mut dyn Collective,
    ) -> Result<(), ModelError> {
        let cfg = &self.cfg;
        let (t, d, n_dev) = (h.n_tokens, cfg.n_embd, self.devices.len());
        if layers.end > cfg.n_layer || layers.start > layers.end {
            return Err(ModelError::Config {
                key: "layers".into(),
                reason: format!(
                    "{layers:?} is not a range of the model's {} blocks",
                    cfg.n_layer
                ),
            });
        }
        if h.xs.len() != n_dev || h.xs.iter().any(|x| x.len() != t * d) {
            return Err(ModelError::Config {
                key: "hidden".into(),
                reason: format!("expected {n_dev} streams of {t} × {d} values"),
            });
        }
        if s.pos != h.pos {
            return Err(ModelError::Config {
                key: "session".into(),
                reason: format!(
                    "the hidden state is at position {} but the session's caches at {}",
                    h.pos, s.pos
                ),
            });
        }
        if t == 0 {
            return Ok(());
        }
        if s.pos + t > s.limit {
            return Err(ModelError::ContextFull {
                len: s.pos + t,
                limit: s.limit,
            });
        }
        let pos0 = s.pos;
        let xs = &mut h.xs; // per-device residual streams (T, n_embd)
        let mut partials: Vec<Vec<f32>> = vec![vec![0.0f32; t * d]; n_dev];
        let mut mags: Vec<Vec<f32>> = if s.record_magnitudes {
            vec![vec![0.0f32; t * d]; n_dev]
        } else {
            Vec::new()
        };
        let rope = self.rope_table(pos0, t);

        for l in layers {
            // attention: each device computes its heads and its slice of the output projection
            for k in 0..n_dev {
                self.attention(
                    k,
                    l,
                    &xs[k],
                    pos0,
                    t,
                    &rope,
                    &mut s.caches[k][l],
                    &mut partials[k],
                    mags.get_mut(k).map(|m| m.as_mut_slice()),
                );
            }
            // all-reduce of the attention output, then the residual add
            let ctx = ReduceCtx {
                layer: l,
                site: ReduceSite::AttnOutput,
                n_tokens: t,
                pos: pos0,
                width: d,
            };
            reduce(collective, &ctx, &mut partials, &mags);
            for (x, p) in xs.iter_mut().zip(&partials) {
                add_assign(x, p);
            }
            // MLP: each device computes its FFN columns and its slice of the down projection
            for k in 0..n_dev {
                self.mlp(
                    k,
                    l,
                    &xs[k],
                    t,
                    &mut partials[k],
                    mags.get_mut(k).map(|m| m.as_mut_slice()),
                );
            }
            // all-reduce of the MLP output, then the residual add
            let ctx = ReduceCtx {
                layer: l,
                site: ReduceSite::MlpDown,
                n_tokens: t,
                pos: pos0,
                width: d,
            };
            reduce(collective, &ctx, &mut partials, &mags);
            for (x, p) in xs.iter_mut().zip(&partials) {
                add_assign(x, p);
            }
        }
        s.pos += t;
        Ok(())
    }

    /// Final norm and output head on device 0's stream (the device that samples): the last
    /// pipeline stage's work. Returns logits for the rows `want` asks for.
    pub fn head(&self, h: &Hidden, want: Logits) -> Vec<f32> {
        let (cfg, t, d) = (&self.cfg, h.n_tokens, self.cfg.n_embd);
        let from = match want {
            Logits::None => return Vec::new(),
            Logits::Last => t.saturating_sub(1),
            Logits::From(f) => f.min(t),
        };
        let rows = t - from;
        let mut xn = vec![0.0f32; rows * d];
        for i in 0..rows {
            rmsnorm(
                &mut xn[i * d..(i + 1) * d],
                &h.xs[0][(from + i) * d..(from + i + 1) * d],
                &self.output_norm,
                cfg.rms_norm_eps,
            );
        }
        let head = self.output.as_ref().unwrap_or(&self.token_embd);
        let mut logits = vec![0.0f32; rows * cfg.vocab_size];
        linear(head, &xn, rows, &mut logits, &mut QActs::default());
        logits
    }

    /// One device's attention for block `l`: writes its partial output projection into `out`.
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        k: usize,
        l: usize,
        x: &[f32],
        pos0: usize,
        t: usize,
        rope: &RopeTable,
        cache: &mut (Vec<f32>, Vec<f32>),
        out: &mut [f32],
        mags: Option<&mut [f32]>,
    ) {
        let cfg = &self.cfg;
        let dev = &self.devices[k];
        let b = &dev.blocks[l];
        let hd = cfg.head_dim;
        let (nh, nkv) = (dev.heads.len(), dev.kv_heads.len());
        if nh == 0 {
            out.fill(0.0);
            if let Some(m) = mags {
                m.fill(0.0);
            }
            return;
        }
        let mut xq = QActs::default();

        // attention rmsnorm
        let xn = rmsnorm_rows(x, &b.attn_norm, cfg.rms_norm_eps);
        // qkv matmuls (this device's heads only)
        let mut q = vec![0.0f32; t * nh * hd]; // (T, heads_k, head_dim)
        let mut kk = vec![0.0f32; t * nkv * hd]; // (T, kv_k, head_dim)
        let mut v = vec![0.0f32; t * nkv * hd];
        linear_many(
            &mut [(&b.wq, &mut q), (&b.wk, &mut kk), (&b.wv, &mut v)],
            &xn,
            t,
            &mut xq,
        );
        // RoPE on queries and keys
        rope.apply(&mut q, t, nh, hd);
        rope.apply(&mut kk, t, nkv, hd);
        // append keys and values to this device's cache
        cache.0.extend_from_slice(&kk);
        cache.1.extend_from_slice(&v);
        let (kc, vc) = (&cache.0, &cache.1);
        let len = pos0 + t; // cached positions

        // multi-head attention (causal) over the cache; GQA: query head h uses KV head h / group
        let scale = 1.0 / (hd as f32).sqrt();
        let group = cfg.gqa_group();
        let mut att = vec![0.0f32; t * nh * hd]; // (T, heads_k, head_dim)
        let kv_of = |i: usize| (dev.heads.start + i) / group - dev.kv_heads.start;
        if t == 1 {
            let mut scores = vec![0.0f32; len];
            for i in 0..nh {
                let kvh = kv_of(i);
                let qh = &q[i * hd..(i + 1) * hd];
                for (p, sc) in scores.iter_mut().enumerate() {
                    *sc = kernels::dot_f32(qh, &kc[(p * nkv + kvh) * hd..(p * nkv + kvh + 1) * hd])
                        * scale;
                }
                softmax(&mut scores);
                let o = &mut att[i * hd..(i + 1) * hd];
                for (p, &w) in scores.iter().enumerate() {
                    let vr = &vc[(p * nkv + kvh) * hd..(p * nkv + kvh + 1) * hd];
                    for (a, bv) in o.iter_mut().zip(vr) {
                        *a += w * bv;
                    }
                }
            }
        } else {
            // per head: S = Q_h K_hᵀ (T × len), causal mask, softmax, O_h = S V_h
            let heads_out: Vec<Vec<f32>> = (0..nh)
                .into_par_iter()
                .map(|i| {
                    let kvh = kv_of(i);
                    let mut qh = vec![0.0f32; t * hd];
                    for r in 0..t {
                        qh[r * hd..(r + 1) * hd]
                            .copy_from_slice(&q[(r * nh + i) * hd..(r * nh + i + 1) * hd]);
                    }
                    let mut kh = vec![0.0f32; len * hd];
                    let mut vh = vec![0.0f32; len * hd];
                    for p in 0..len {
                        kh[p * hd..(p + 1) * hd]
                            .copy_from_slice(&kc[(p * nkv + kvh) * hd..(p * nkv + kvh + 1) * hd]);
                        vh[p * hd..(p + 1) * hd]
                            .copy_from_slice(&vc[(p * nkv + kvh) * hd..(p * nkv + kvh + 1) * hd]);
                    }
                    let mut sc = vec![0.0f32; t * len];
                    kernels::sgemm_abt_serial(t, len, hd, &qh, &kh, &mut sc);
                    for r in 0..t {
                        let visible = pos0 + r + 1;
                        let row = &mut sc[r * len..(r + 1) * len];
                        for s in row[..visible].iter_mut() {
                            *s *= scale;
                        }
                        softmax(&mut row[..visible]);
                        row[visible..].fill(0.0);
                    }
                    let mut oh = vec![0.0f32; t * hd];
                    kernels::sgemm_ab(t, hd, len, &sc, &vh, &mut oh);
                    oh
                })
                .collect();
            for (i, oh) in heads_out.iter().enumerate() {
                for r in 0..t {
                    att[(r * nh + i) * hd..(r * nh + i + 1) * hd]
                        .copy_from_slice(&oh[r * hd..(r + 1) * hd]);
                }
            }
        }
        // output projection: this device's slice of the inputs → a partial n_embd vector
        linear(&b.wo, &att, t, out, &mut xq);
        if let Some(m) = mags {
            linear_magnitudes(&b.wo, &att, &xq, t, m);
        }
    }

    /// One device's MLP for block `l`: writes its partial down projection into `out`.
    fn mlp(
        &self,
        k: usize,
        l: usize,
        x: &[f32],
        t: usize,
        out: &mut [f32],
        mags: Option<&mut [f32]>,
    ) {
        let cfg = &self.cfg;
        let dev = &self.devices[k];
        let b = &dev.blocks[l];
        let f = dev.ffn.len();
        if f == 0 {
            out.fill(0.0);
            if let Some(m) = mags {
                m.fill(0.0);
            }
            return;
        }
        let mut xq = QActs::default();
        // ffn rmsnorm
        let xn = rmsnorm_rows(x, &b.ffn_norm, cfg.rms_norm_eps);
        // gate and up matmuls (this device's FFN columns)
        let mut gate = vec![0.0f32; t * f];
        let mut up = vec![0.0f32; t * f];
        linear_many(
            &mut [(&b.w_gate, &mut gate), (&b.w_up, &mut up)],
            &xn,
            t,
            &mut xq,
        );
        // SwiGLU: silu(gate) ⊙ up
        for (g, u) in gate.iter_mut().zip(&up) {
            *g = *g / (1.0 + (-*g).exp()) * u;
        }
        // down projection: this device's slice of the inputs → a partial n_embd vector
        linear(&b.w_down, &gate, t, out, &mut xq);
        if let Some(m) = mags {
            linear_magnitudes(&b.w_down, &gate, &xq, t, m);
        }
    }

    fn rope_table(&self, pos0: usize, t: usize) -> RopeTable {
        let half = self.rope_freqs.len();
        let mut cos = vec![0.0f32; t * half];
        let mut sin = vec![0.0f32; t * half];
        for i in 0..t {
            let p = (pos0 + i) as f32;
            for (j, &f) in self.rope_freqs.iter().enumerate() {
                let (s, c) = (p * f).sin_cos();
                cos[i * half + j] = c;
                sin[i * half + j] = s;
            }
        }
        RopeTable { cos, sin, half }
    }
}

/// cos/sin of every (position, frequency) of one forward call.
struct RopeTable {
    cos: Vec<f32>, // (T, head_dim/2)
    sin: Vec<f32>,
    half: usize,
}

impl RopeTable {
    /// Rotate adjacent pairs (x[2j], x[2j+1]) of every head by angle pos·θ_j (GGML "normal" RoPE,
    /// which Llama GGUFs expect: the converter permutes Q/K rows accordingly).
    fn apply(&self, x: &mut [f32], t: usize, n_heads: usize, hd: usize) {
        for i in 0..t {
            let (c, s) = (
                &self.cos[i * self.half..(i + 1) * self.half],
                &self.sin[i * self.half..(i + 1) * self.half],
            );
            for h in 0..n_heads {
                let v = &mut x[(i * n_heads + h) * hd..(i * n_heads + h + 1) * hd];
                for j in 0..hd / 2 {
                    let (a, b) = (v[2 * j], v[2 * j + 1]);
                    v[2 * j] = a * c[j] - b * s[j];
                    v[2 * j + 1] = a * s[j] + b * c[j];
                }
            }
        }
    }
}

/// `out = x / rms(x) ⊙ w`.
pub fn rmsnorm(out: &mut [f32], x: &[f32], w: &[f32], eps: f32) {
    let ss: f32 = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let inv = 1.0 / (ss + eps).sqrt();
    for ((o, xv), wv) in out.iter_mut().zip(x).zip(w) {
        *o = xv * inv * wv;
    }
}

/// RMSNorm of every `w.len()`-wide row of `x`.
fn rmsnorm_rows(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    for (o, r) in out.chunks_mut(w.len()).zip(x.chunks(w.len())) {
        rmsnorm(o, r, w, eps);
    }
    out
}

/// In-place numerically stable softmax.
pub fn softmax(x: &mut [f32]) {
    let m = x.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let mut s = 0.0f32;
    for v in x.iter_mut() {
        *v = (*v - m).exp();
        s += *v;
    }
    let inv = 1.0 / s;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

fn add_assign(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// `out (T × rows) = x (T × cols) · Wᵀ`: quantised mat-vec for one token, f32 GEMM for several.
/// Leaves the quantised activation of a single token in `xq` for [`linear_q`] to reuse.
fn linear(w: &PackedMatrix, x: &[f32], t: usize, out: &mut [f32], xq: &mut QActs) {
    if w.rows == 0 {
        return;
    }
    if w.cols == 0 {
        out.fill(0.0);
        return;
    }
    if t == 1 && !f32_decode() {
        w.matvec(x, xq, out);
    } else {
        w.matmul(x, t, out);
    }
}

/// `out[i·rows + r] = Σ |summand|` behind element (i, r) of [`linear`]'s result, for the path
/// `linear` takes: the quantised mat-vec's block terms `|d_w·d_x·Σ u·q|` and offset terms
/// `|m·d_x·Σ q|` (from `xq`, the activation `linear` just quantised), or the f32 products
/// `|w·x|` of the GEMM path.
fn linear_magnitudes(w: &PackedMatrix, x: &[f32], xq: &QActs, t: usize, out: &mut [f32]) {
    if w.rows == 0 || w.cols == 0 {
        out.fill(0.0);
        return;
    }
    if t == 1 && !f32_decode() && w.packing() != kernels::Packing::Dense {
        w.matvec_q_magnitudes(xq, out);
    } else {
        w.matmul_magnitudes(x, t, out);
    }
}

/// The all-reduce of one site, with the magnitudes when the session records them.
fn reduce(
    collective: &mut dyn Collective,
    ctx: &ReduceCtx,
    partials: &mut [Vec<f32>],
    mags: &[Vec<f32>],
) {
    if mags.is_empty() {
        collective.all_reduce(ctx, partials);
    } else {
        collective.all_reduce_with_magnitudes(ctx, partials, mags);
    }
}

/// `AIRINFER_F32_DECODE=1` makes single-token steps use f32 activations (the GEMM path) instead
/// of 8-bit ones: slower, bit-for-bit the prefill arithmetic.
fn f32_decode() -> bool {
    static F: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *F.get_or_init(|| std::env::var("AIRINFER_F32_DECODE").is_ok_and(|v| v == "1"))
}

/// Several [`linear`]s of the same input; for one token with quantised weights, one
/// activation quantisation and one parallel region for all of them.
fn linear_many(jobs: &mut [(&PackedMatrix, &mut Vec<f32>)], x: &[f32], t: usize, xq: &mut QActs) {
    let all_quantised = jobs
        .iter()
        .all(|(w, _)| w.packing() != kernels::Packing::Dense && w.cols == x.len());
    if t == 1 && all_quantised && x.len().is_multiple_of(QK) && !f32_decode() {
        xq.quantize_into(x);
        let mut js: Vec<(&PackedMatrix, &mut [f32])> = jobs
            .iter_mut()
            .map(|(w, o)| (*w, o.as_mut_slice()))
            .collect();
        kernels::matvec_q_multi(&mut js, xq);
    } else {
        for (w, o) in jobs.iter_mut() {
            linear(w, x, t, o, xq);
        }
    }
}
