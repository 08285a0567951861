//! The decoder forward pass (Llama and its relatives: Qwen 2/3, Gemma 3), on one device or
//! tensor-parallel over K devices.
//!
//! Read [`Model::forward`] top to bottom: embedding, then per block "attention rmsnorm", "qkv
//! matmuls", "RoPE", "multi-head attention", "output projection" + all-reduce + residual, "ffn
//! rmsnorm", "gate/up matmuls", "SwiGLU", "down projection" + all-reduce + residual; then the
//! final norm and the output head. What an architecture changes ([`crate::config::ArchConfig`]:
//! embedding scale, Q/K biases and norms, NeoX RoPE, sliding-window layers, post-norms after
//! each reduction, GeGLU) are options of this one pass. Each device keeps its own copy of the residual stream, because
//! over a noisy channel each device may receive a different estimate of the all-reduced sum.
//!
//! Single-device inference is the K = 1 case of the same code.
//!
//! Pipeline stages run pieces of the pass on sessions of their own: [`Model::embed`],
//! [`Model::run_layers`] (whole blocks) or [`Model::run_halves`] (half-blocks, for cuts between
//! a block's attention and MLP halves, with [`Model::attn_half`] and [`Model::mlp_half`] as
//! primitives), and [`Model::head`]; bit for bit the whole [`Model::forward`]. Several
//! sequences decode together, one token each at their own positions, with
//! [`Model::decode_batch`] (its pipeline piece [`Model::run_layers_batch`]): the linears run
//! once over all rows.
//!
//! The code is laid out by concern: [`config_from_gguf`] (hyper-parameters from GGUF metadata)
//! in `config.rs`, building a [`Model`] from a GGUF file in `load.rs`, the forward pass
//! ([`Model::embed`], [`Model::run_layers`], [`Model::head`], sessions) and the MLP in
//! `forward.rs`, attention, RoPE and the [`KvCache`] in `attention.rs`, and the shared
//! element-wise and linear helpers in `ops.rs`.

use crate::config::LlamaConfig;
use crate::gguf::{GgmlType, GgufError};
use crate::kernels::PackedMatrix;
use crate::tp::{TpError, TpPlan};
use std::ops::Range;

mod attention;
mod config;
mod forward;
mod load;
mod ops;

pub use self::attention::KvCache;
pub use self::config::config_from_gguf;
pub use self::ops::{rmsnorm, softmax};

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
    #[error("tensor '{name}' has type {ty:?}, which airinfer cannot compute with (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, IQ4_NL, IQ4_XS)")]
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
    /// The collective gave up ([`crate::tp::Collective::failure`]); the session's caches are
    /// then part-written: reset it before using it again.
    #[error("the all-reduce failed: {0}")]
    Collective(String),
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
    attn_norm: Vec<f32>, // (n_embd)
    ffn_norm: Vec<f32>,  // (n_embd)
    // per-head RMSNorm weights of queries and keys (head_dim): Qwen 3, Gemma 3
    q_norm: Option<Vec<f32>>,
    k_norm: Option<Vec<f32>>,
    // RMSNorm of the reduced attention / MLP output before the residual add (n_embd): Gemma 3
    post_attn_norm: Option<Vec<f32>>,
    post_ffn_norm: Option<Vec<f32>>,
    // biases: this device's slices of the Q/K/V ones (Qwen 2), and the output projection's
    // (n_embd), added once to the reduced sum
    bq: Option<Vec<f32>>,
    bk: Option<Vec<f32>>,
    bv: Option<Vec<f32>>,
    bo: Option<Vec<f32>>,
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
    rope_freqs: Vec<f32>, // (head_dim/2): scale · θ^(−2i/head_dim) / factor_i
    rope_freqs_swa: Vec<f32>, // the local (sliding-window) layers' frequencies
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

/// The residual stream between blocks: what a pipeline stage hands to the next (with, at a cut
/// between a block's attention and MLP halves, the attention branch beside it: see
/// [`Model::run_halves`]).
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
    /// Number of positions already in the caches: where the next token goes. Advanced once
    /// per call by [`Model::forward`], [`Model::run_layers`], [`Model::run_halves`] and
    /// [`Model::decode_batch`] / [`Model::run_layers_batch`] (by one); left alone by the
    /// primitives [`Model::attn_half`] and [`Model::mlp_half`].
    pub pos: usize,
    /// Compute, at every reduction site, the magnitude `Σ |summand|` behind each element of
    /// each device's partial and hand it to
    /// [`Collective::all_reduce_with_magnitudes`](crate::tp::Collective::all_reduce_with_magnitudes)
    /// (a diagnostic for rounding-error bounds; costs about one extra mat-vec per site; off by
    /// default).
    pub record_magnitudes: bool,
    limit: usize,
    // caches[k][layer]: keys and values, each (pos, kv_k, head_dim)
    caches: Vec<Vec<KvCache>>,
}

impl Session {
    /// Forget everything (start a new sequence), keeping the allocations.
    pub fn reset(&mut self) {
        self.pos = 0;
        for dev in &mut self.caches {
            for c in dev {
                c.clear();
            }
        }
    }

    /// Device `k`'s cached keys and values of block `layer`, each `(pos, kv_heads_k, head_dim)`
    /// row-major (the device's KV heads only).
    pub fn kv(&self, k: usize, layer: usize) -> (&[f32], &[f32]) {
        let c = &self.caches[k][layer];
        (c.keys(), c.values())
    }

    /// Bytes held by the KV caches of device `k`.
    pub fn kv_bytes(&self, k: usize) -> usize {
        self.caches[k].iter().map(|c| c.bytes()).sum()
    }
}
