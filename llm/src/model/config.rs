//! Hyper-parameters of a model from GGUF metadata (the types are
//! [`crate::config::LlamaConfig`] and its [`ArchConfig`]).

use super::ModelError;
use crate::config::{Activation, ArchConfig, LlamaConfig, RopeStyle};
use crate::gguf::{GgufFile, MetadataValue};

/// Blocks the file holds tensors of, counted from 0: the first `N` with no `blk.N.` tensor (at
/// most the number of tensors; the loader still checks every tensor of every block).
fn layers_present(g: &GgufFile) -> usize {
    let seen: std::collections::HashSet<usize> = g
        .tensors()
        .iter()
        .filter_map(|t| t.name.strip_prefix("blk.")?.split('.').next()?.parse().ok())
        .collect();
    (0..).find(|n| !seen.contains(n)).unwrap_or(0)
}

/// The architectures the forward pass reads (`general.architecture`).
pub const SUPPORTED_ARCHS: &[&str] = &["llama", "qwen2", "qwen3", "gemma3"];

/// Read a model config from GGUF metadata: the Llama hyper-parameters, and what the
/// architecture changes ([`ArchConfig`]), following llama.cpp's reading of the same keys.
pub fn config_from_gguf(g: &GgufFile) -> Result<LlamaConfig, ModelError> {
    let arch = g.get_str("general.architecture")?;
    if !SUPPORTED_ARCHS.contains(&arch) {
        return Err(ModelError::Config {
            key: "general.architecture".into(),
            reason: format!(
                "'{arch}' is not supported (supported: {}; Mistral and Llama-3 files are 'llama')",
                SUPPORTED_ARCHS.join(", ")
            ),
        });
    }
    let key = |k: &str| format!("{arch}.{k}");
    let bad = |k: &str, reason: String| ModelError::Config {
        key: key(k),
        reason,
    };
    let positive = |k: &str| -> Result<usize, ModelError> {
        let v = g.get_u32(&key(k))? as usize;
        if v == 0 {
            return Err(bad(k, "must be positive".into()));
        }
        Ok(v)
    };
    let n_layer = positive("block_count")?;
    // a layer count is bounded by the blocks the file holds: checked before anything is
    // allocated per layer (block_count = 4e9 used to ask for terabytes)
    let present = layers_present(g);
    if n_layer > present {
        return Err(bad(
            "block_count",
            format!(
                "{n_layer} blocks, but the file holds tensors of only {present}: \
                 blk.{present} is missing"
            ),
        ));
    }
    let n_embd = positive("embedding_length")?;
    let n_ff = positive("feed_forward_length")?;
    let n_head = positive("attention.head_count")?;
    let n_head_kv = match g.get_u32_opt(&key("attention.head_count_kv"))? {
        Some(0) => return Err(bad("attention.head_count_kv", "must be positive".into())),
        Some(v) => v as usize,
        None => n_head,
    };
    if n_head % n_head_kv != 0 {
        return Err(bad(
            "attention.head_count_kv",
            format!("{n_head} query heads are not a multiple of {n_head_kv} KV heads"),
        ));
    }
    // the head width: attention.key_length when given (Gemma 3: 256 with n_embd 640 and four
    // heads), else n_embd / n_head
    let head_dim = match g.get_u32_opt(&key("attention.key_length"))? {
        Some(0) => return Err(bad("attention.key_length", "must be positive".into())),
        Some(v) => v as usize,
        None => {
            if n_embd % n_head != 0 {
                return Err(bad(
                    "embedding_length",
                    format!("{n_embd} is not a multiple of the head count {n_head}"),
                ));
            }
            n_embd / n_head
        }
    };
    if let Some(v) = g.get_u32_opt(&key("attention.value_length"))? {
        if v as usize != head_dim {
            return Err(bad(
                "attention.value_length",
                format!("{v} differs from the key length {head_dim}, which is not supported"),
            ));
        }
    }
    if let Some(rd) = g.get_u32_opt(&key("rope.dimension_count"))? {
        if rd as usize != head_dim {
            return Err(bad(
                "rope.dimension_count",
                format!("partial RoPE ({rd} of {head_dim} dims) is not supported"),
            ));
        }
    }
    if head_dim % 2 != 0 {
        return Err(bad(
            "attention.key_length",
            format!("head dimension {head_dim} must be even for RoPE"),
        ));
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
            return Err(bad(k, format!("{v} must be finite and positive")));
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
    let arch_cfg = arch_config(g, arch, n_layer, n_embd, n_head, head_dim)?;
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
        arch: arch_cfg,
    })
}

/// What `arch` changes in the Llama block (llama.cpp's `models/<arch>.cpp` graphs).
fn arch_config(
    g: &GgufFile,
    arch: &str,
    n_layer: usize,
    n_embd: usize,
    n_head: usize,
    head_dim: usize,
) -> Result<ArchConfig, ModelError> {
    let key = |k: &str| format!("{arch}.{k}");
    let bad = |k: &str, reason: String| ModelError::Config {
        key: key(k),
        reason,
    };
    let mut a = ArchConfig {
        name: arch.to_string(),
        ..ArchConfig::default()
    };
    // RoPE scaling: none or linear (a frequency scale); Llama 3's is the rope_freqs tensor
    match g.get_str_opt(&key("rope.scaling.type"))? {
        None | Some("none") | Some("linear") => {}
        Some(other) => {
            return Err(bad(
                "rope.scaling.type",
                format!("'{other}' RoPE scaling is not supported (supported: none, linear)"),
            ))
        }
    }
    let factor = match g.get_f32_opt(&key("rope.scaling.factor"))? {
        Some(f) => Some(("rope.scaling.factor", f)),
        None => g
            .get_f32_opt(&key("rope.scale_linear"))?
            .map(|f| ("rope.scale_linear", f)),
    };
    if let Some((k, f)) = factor {
        if !f.is_finite() || f < 0.0 {
            return Err(bad(k, format!("{f} must be finite and non-negative")));
        }
        if f > 0.0 {
            a.rope_freq_scale = 1.0 / f;
        }
    }
    if let Some(c) = g.get_f32_opt(&key("final_logit_softcapping"))? {
        if !c.is_finite() || c < 0.0 {
            return Err(bad(
                "final_logit_softcapping",
                format!("{c} must be finite and non-negative"),
            ));
        }
        a.final_logit_softcap = (c > 0.0).then_some(c);
    }
    match arch {
        "llama" => {}
        "qwen2" => a.rope = RopeStyle::Neox,
        "qwen3" => {
            a.rope = RopeStyle::Neox;
            a.qk_norm = true;
        }
        "gemma3" => {
            a.rope = RopeStyle::Neox;
            a.activation = Activation::GeluTanh;
            a.embd_scale = (n_embd as f32).sqrt();
            a.qk_norm = true;
            a.post_norms = true;
            // Gemma 3 27B scales queries by 1/√(n_embd/n_head), the others by 1/√head_dim
            let width = if n_layer == 62 {
                n_embd / n_head
            } else {
                head_dim
            };
            a.attn_scale = Some(1.0 / (width as f32).sqrt());
            if let Some(w) = g.get_u32_opt(&key("attention.sliding_window"))? {
                if w > 0 {
                    a.sliding_window = Some(w as usize);
                    a.swa_layers =
                        swa_pattern(g, &key("attention.sliding_window_pattern"), n_layer, 6)?;
                    if let Some(b) = g.get_f32_opt(&key("rope.freq_base_swa"))? {
                        if !(b.is_finite() && b > 0.0) {
                            return Err(bad(
                                "rope.freq_base_swa",
                                format!("{b} must be finite and positive"),
                            ));
                        }
                        a.rope_freq_base_swa = b;
                    }
                }
            }
        }
        _ => unreachable!("checked against SUPPORTED_ARCHS"),
    }
    Ok(a)
}

/// Which layers are local: the GGUF's per-layer booleans, or its period `n` (default
/// `default_n`), where every `n`-th layer (`il % n == n − 1`) is global (llama.cpp's
/// `set_swa_pattern`; `n = 0` makes every layer local).
fn swa_pattern(
    g: &GgufFile,
    key: &str,
    n_layer: usize,
    default_n: usize,
) -> Result<Vec<bool>, ModelError> {
    let bad = |reason: String| ModelError::Config {
        key: key.into(),
        reason,
    };
    if let Some(MetadataValue::Array(a)) = g.get(key) {
        if a.len() < n_layer {
            return Err(bad(format!("{} values for {n_layer} layers", a.len())));
        }
        return a[..n_layer]
            .iter()
            .map(|v| match v {
                MetadataValue::Bool(b) => Ok(*b),
                v => Err(bad(format!("expected booleans, found {v:?}"))),
            })
            .collect();
    }
    let n = g.get_u32_opt(key)?.map_or(default_n, |n| n as usize);
    Ok((0..n_layer).map(|il| n == 0 || il % n < n - 1).collect())
}
