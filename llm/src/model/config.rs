//! Hyper-parameters of a Llama-architecture model from GGUF metadata (the type itself is
//! [`crate::config::LlamaConfig`]).

use super::ModelError;
use crate::config::LlamaConfig;
use crate::gguf::GgufFile;

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
    // a layer count is bounded by the blocks the file holds: checked before anything is
    // allocated per layer (block_count = 4e9 used to ask for terabytes)
    let present = layers_present(g);
    if n_layer > present {
        return Err(ModelError::Config {
            key: key("block_count"),
            reason: format!(
                "{n_layer} blocks, but the file holds tensors of only {present}: \
                 blk.{present} is missing"
            ),
        });
    }
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
