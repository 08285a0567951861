//! Building a [`Model`] from a GGUF file: each device's slice of every weight, in the kernel
//! layout.

use super::{config_from_gguf, Block, DeviceWeights, Model, ModelError};
use crate::config::LlamaConfig;
use crate::gguf::{GgmlType, GgufFile, TensorInfo};
use crate::kernels::{self, PackedMatrix};
use crate::tp::TpPlan;
use std::ops::Range;

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

/// An optional 1-D f32 vector: `None` when the file lacks it.
fn opt_vector(g: &GgufFile, name: &str, n: usize) -> Result<Option<Vec<f32>>, ModelError> {
    if g.tensor(name).is_none() {
        return Ok(None);
    }
    vector(g, name, n).map(Some)
}

/// A vector the architecture requires when `required`, else `None`.
fn vector_if(
    g: &GgufFile,
    required: bool,
    name: &str,
    n: usize,
) -> Result<Option<Vec<f32>>, ModelError> {
    if required {
        vector(g, name, n).map(Some)
    } else {
        Ok(None)
    }
}

/// Tensors of a block this engine does not compute with: refused by name rather than ignored.
const UNSUPPORTED_BLOCK_TENSORS: &[&str] = &[
    "attn_qkv.weight",
    "ffn_gate.bias",
    "ffn_up.bias",
    "ffn_down.bias",
    "ffn_gate_inp.weight",
];

/// RoPE frequencies `scale · base^(−2i/d) / factor_i`, i < d/2.
fn rope_frequencies(base: f32, scale: f32, d: usize, factors: Option<&[f32]>) -> Vec<f32> {
    (0..d / 2)
        .map(|i| {
            let f = scale as f64 * (base as f64).powf(-2.0 * i as f64 / d as f64);
            (f / factors.map_or(1.0, |v| v[i] as f64)) as f32
        })
        .collect()
}

/// Whether the kernels read `ty` in a packed form (GGML's blocks, or repacked losslessly into
/// 32-value blocks; else the loader holds it as f32).
fn packed(ty: GgmlType) -> bool {
    kernels::packing_for(ty).is_some()
}

/// Bytes of one row of `cols` elements of type `ty`.
fn row_bytes(ty: GgmlType, cols: usize) -> usize {
    cols / ty.block_size() * ty.type_size()
}

/// Load rows `rows` and columns `cols` of a 2-D weight (GGML dims = [n_cols, n_rows]) into the
/// kernel layout. Column slices of the packed types must be whole 32-value blocks (of the
/// packing: a k-quant row is repacked whole, then sliced).
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
    let qk = kernels::QK;
    if !n_cols.is_multiple_of(bs)
        || (packed(ty) && (!cols.start.is_multiple_of(qk) || !cols.end.is_multiple_of(qk)))
    {
        return Err(ModelError::BadShape {
            name: name.into(),
            got: t.dims.clone(),
            expected: vec![n_cols as u64, n_rows as u64],
        });
    }
    let rb = row_bytes(ty, n_cols);
    if let Some(packing) = kernels::packing_for(ty) {
        // the kernels read 32-value blocks: each row in the packing, then its column slice
        let pb = packing.block_bytes();
        let (c0, c1) = (cols.start / qk * pb, cols.end / qk * pb);
        let mut blocks = Vec::with_capacity(nr * (c1 - c0));
        let mut row = Vec::with_capacity(n_cols / qk * pb);
        for r in rows.clone() {
            let src = &bytes[r * rb..(r + 1) * rb];
            if kernels::repack_is_identity(ty) {
                blocks.extend_from_slice(&src[c0..c1]);
            } else {
                row.clear();
                kernels::repack_row(ty, src, &mut row);
                blocks.extend_from_slice(&row[c0..c1]);
            }
        }
        return Ok(PackedMatrix::from_blocks(packing, nr, nc, blocks));
    }
    // every other type the dequantisers read (F32, F16, BF16, Q8_K) is held as f32: each row
    // dequantised whole, then its column slice taken
    let mut full = vec![0.0f32; n_cols];
    let mut w = vec![0.0f32; nr * nc];
    for (i, r) in rows.clone().enumerate() {
        crate::quant::dequantize(ty, &bytes[r * rb..(r + 1) * rb], &mut full).map_err(|_| {
            ModelError::UnsupportedType {
                name: name.into(),
                ty,
            }
        })?;
        w[i * nc..(i + 1) * nc].copy_from_slice(&full[cols.clone()]);
    }
    Ok(PackedMatrix::from_dense(nr, nc, w))
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
        // FFN slices fall on whole 32-value blocks of the packings the kernels read (every
        // quantised type); a format held as f32 splits anywhere
        let align = g
            .tensor("blk.0.ffn_down.weight")
            .filter(|t| packed(t.ggml_type))
            .map(|_| kernels::QK)
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
        for l in 0..cfg.n_layer {
            for s in UNSUPPORTED_BLOCK_TENSORS {
                let name = format!("blk.{l}.{s}");
                if g.tensor(&name).is_some() {
                    return Err(ModelError::Config {
                        key: name,
                        reason: format!(
                            "this tensor is not supported (a fused QKV, MLP biases or experts) in a '{}' model",
                            cfg.arch.name
                        ),
                    });
                }
            }
        }
        let arch = &cfg.arch;
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
                let bias = |s: &str, len: usize, rows: &Range<usize>| {
                    opt_vector(g, &format!("blk.{l}.{s}.bias"), len)
                        .map(|b| b.map(|v| v[rows.clone()].to_vec()))
                };
                blocks.push(Block {
                    attn_norm: vector(g, &n("attn_norm"), d)?,
                    ffn_norm: vector(g, &n("ffn_norm"), d)?,
                    q_norm: vector_if(g, arch.qk_norm, &n("attn_q_norm"), hd)?,
                    k_norm: vector_if(g, arch.qk_norm, &n("attn_k_norm"), hd)?,
                    post_attn_norm: vector_if(g, arch.post_norms, &n("post_attention_norm"), d)?,
                    post_ffn_norm: vector_if(g, arch.post_norms, &n("post_ffw_norm"), d)?,
                    bq: bias("attn_q", nh * hd, &q_rows)?,
                    bk: bias("attn_k", nkv * hd, &kv_rows)?,
                    bv: bias("attn_v", nkv * hd, &kv_rows)?,
                    bo: opt_vector(g, &format!("blk.{l}.attn_output.bias"), d)?,
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
        // Llama 3's RoPE scaling: per-frequency divisors in rope_freqs.weight
        let factors = opt_vector(g, "rope_freqs.weight", hd / 2)?;
        if let Some(f) = &factors {
            if let Some(bad) = f.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
                return Err(ModelError::Config {
                    key: "rope_freqs.weight".into(),
                    reason: format!("factor {bad} must be finite and positive"),
                });
            }
        }
        let rope_freqs = rope_frequencies(
            cfg.rope_freq_base,
            arch.rope_freq_scale,
            hd,
            factors.as_deref(),
        );
        // the local layers: their own base, unscaled (llama.cpp's freq_base_swa / scale_swa)
        let rope_freqs_swa = rope_frequencies(arch.rope_freq_base_swa, 1.0, hd, None);
        Ok(Model {
            cfg,
            plan,
            token_embd,
            output,
            output_norm,
            devices,
            rope_freqs,
            rope_freqs_swa,
        })
    }

    /// Whether the row-parallel projections before the two reduction sites (attention output,
    /// MLP down) are held in a packed quantised format, so that a single-token step multiplies
    /// them with 8-bit activations (else, held as f32, with f32 ones).
    pub fn site_weights_packed(&self) -> bool {
        let b = &self.devices[0].blocks[0];
        [&b.wo, &b.w_down]
            .iter()
            .all(|m| m.packing() != kernels::Packing::Dense)
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
                let vectors = [
                    &b.q_norm,
                    &b.k_norm,
                    &b.post_attn_norm,
                    &b.post_ffn_norm,
                    &b.bq,
                    &b.bk,
                    &b.bv,
                    &b.bo,
                ];
                4 * (b.attn_norm.len()
                    + b.ffn_norm.len()
                    + vectors
                        .iter()
                        .map(|v| v.as_ref().map_or(0, Vec::len))
                        .sum::<usize>())
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
}
