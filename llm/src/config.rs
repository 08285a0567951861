//! Decoder hyper-parameters: the Llama family, with the per-architecture differences of its
//! relatives (Qwen 2/3, Gemma 3) in [`ArchConfig`].

use serde::{Deserialize, Serialize};

/// Hyper-parameters of a Llama-architecture decoder (Llama-2/3, SmolLM2, TinyLlama, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// Model name, e.g. "SmolLM2-135M".
    pub name: String,
    /// Number of transformer blocks.
    pub n_layer: usize,
    /// Residual stream width (hidden size).
    pub n_embd: usize,
    /// MLP inner width (SwiGLU: gate and up are n_embd → n_ff, down is n_ff → n_embd).
    pub n_ff: usize,
    /// Number of query heads.
    pub n_head: usize,
    /// Number of key/value heads (GQA: n_head is a multiple of n_head_kv).
    pub n_head_kv: usize,
    /// Per-head width (usually n_embd / n_head).
    pub head_dim: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Training context length.
    pub context_length: usize,
    /// RoPE frequency base θ.
    pub rope_freq_base: f32,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f32,
    /// Output head shares the token-embedding matrix.
    pub tied_embeddings: bool,
    /// What the architecture changes in the Llama block (the default is Llama itself).
    #[serde(default)]
    pub arch: ArchConfig,
}

/// How RoPE pairs the dimensions of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RopeStyle {
    /// Adjacent pairs `(x[2i], x[2i+1])` (GGML's "normal" RoPE: Llama, Mistral).
    #[default]
    Adjacent,
    /// Halves `(x[i], x[i + d/2])` (GGML's NeoX RoPE: Qwen 2/3, Gemma 3).
    Neox,
}

/// The gated MLP's activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Activation {
    /// SwiGLU: `silu(gate) ⊙ up`.
    #[default]
    Silu,
    /// GeGLU: `gelu(gate) ⊙ up`, GELU in its tanh approximation (Gemma).
    GeluTanh,
}

/// The differences of an architecture from the Llama block, read from the GGUF metadata and the
/// tensors present. One forward pass reads them; there is no per-model copy of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchConfig {
    /// `general.architecture` (`llama`, `qwen2`, `qwen3`, `gemma3`).
    pub name: String,
    /// RoPE pairing.
    pub rope: RopeStyle,
    /// RoPE frequency scale (1 / `rope.scaling.factor` for linear scaling; 1 without).
    pub rope_freq_scale: f32,
    /// MLP activation.
    pub activation: Activation,
    /// Factor on the token embedding (Gemma: √n_embd).
    pub embd_scale: f32,
    /// Per-head RMSNorm of queries and keys before RoPE (Qwen 3, Gemma 3).
    pub qk_norm: bool,
    /// RMSNorm of the attention and MLP outputs before their residual adds (Gemma 3).
    pub post_norms: bool,
    /// Query scale in attention (default 1/√head_dim).
    pub attn_scale: Option<f32>,
    /// Sliding-window width of the local layers (a query sees the `window` latest positions,
    /// itself included); `None` when every layer is global.
    pub sliding_window: Option<usize>,
    /// Which layers are local (sliding-window); empty when none are.
    pub swa_layers: Vec<bool>,
    /// RoPE base of the local layers.
    pub rope_freq_base_swa: f32,
    /// `c · tanh(logit / c)` on the output logits (Gemma 2), when set.
    pub final_logit_softcap: Option<f32>,
}

impl Default for ArchConfig {
    fn default() -> Self {
        ArchConfig {
            name: "llama".into(),
            rope: RopeStyle::Adjacent,
            rope_freq_scale: 1.0,
            activation: Activation::Silu,
            embd_scale: 1.0,
            qk_norm: false,
            post_norms: false,
            attn_scale: None,
            sliding_window: None,
            swa_layers: Vec::new(),
            rope_freq_base_swa: 10000.0,
            final_logit_softcap: None,
        }
    }
}

impl LlamaConfig {
    /// Query heads per KV head.
    pub fn gqa_group(&self) -> usize {
        self.n_head / self.n_head_kv
    }
    /// Width of the K (or V) projection: n_head_kv · head_dim.
    pub fn kv_dim(&self) -> usize {
        self.n_head_kv * self.head_dim
    }
    /// Width of the Q projection: n_head · head_dim.
    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }
    /// Whether block `layer` attends over a sliding window.
    pub fn is_local(&self, layer: usize) -> bool {
        self.arch.sliding_window.is_some() && self.arch.swa_layers.get(layer) == Some(&true)
    }
    /// The query scale of attention.
    pub fn attn_scale(&self) -> f32 {
        self.arch
            .attn_scale
            .unwrap_or_else(|| 1.0 / (self.head_dim as f32).sqrt())
    }
}
