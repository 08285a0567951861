//! The forward pass: sessions, [`Model::forward`] and its pipeline pieces [`Model::embed`],
//! [`Model::run_layers`] and [`Model::head`], and the MLP.

use super::ops::{linear, linear_magnitudes, linear_many, rmsnorm, rmsnorm_rows};
use super::{Hidden, KvCache, Logits, Model, ModelError, Session};
use crate::config::Activation;
use crate::kernels::QActs;
use crate::tp::{Collective, IdealCollective, ReduceCtx, ReduceSite};
use std::ops::Range;

impl Model {
    /// A new, empty sequence whose caches may grow to `limit` positions.
    pub fn new_session(&self, limit: usize) -> Session {
        Session {
            pos: 0,
            record_magnitudes: false,
            limit,
            caches: self
                .devices
                .iter()
                .map(|d| (0..d.blocks.len()).map(|_| KvCache::default()).collect())
                .collect(),
        }
    }

    /// Run `tokens` (positions `session.pos ..`) through the model, calling `collective` at the
    /// two reduction sites of every block, and return logits (`rows × vocab`, row-major) for the
    /// positions `want` asks for. One token uses the quantised mat-vec path; several tokens the
    /// GEMM path (8-bit activations against quantised weights, f32 against dense ones). The same as [`Model::embed`], [`Model::run_layers`] over every block and
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
        let scale = self.cfg.arch.embd_scale;
        if scale != 1.0 {
            x0.iter_mut().for_each(|v| *v *= scale);
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
    /// its own, so its KV caches live with it. The caches of the blocks run must hold exactly
    /// `s.pos` positions (an error otherwise).
    pub fn run_layers(
        &self,
        s: &mut Session,
        h: &mut Hidden,
        layers: Range<usize>,
        collective: &mut dyn Collective,
    ) -> Result<(), ModelError> {
        let cfg = &self.cfg;
        let t = h.n_tokens;
        if layers.end > cfg.n_layer || layers.start > layers.end {
            return Err(ModelError::Config {
                key: "layers".into(),
                reason: format!(
                    "{layers:?} is not a range of the model's {} blocks",
                    cfg.n_layer
                ),
            });
        }
        self.check_hidden("hidden", h, t)?;
        self.check_session(s)?;
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
        self.check_caches(s, layers.clone(), s.pos)?;
        let record = s.record_magnitudes;
        self.run_halves_unchecked(
            &mut s.caches,
            &mut h.xs,
            &mut None,
            2 * layers.start..2 * layers.end,
            (s.pos, t),
            collective,
            record,
        );
        if let Some(why) = collective.failure() {
            return Err(ModelError::Collective(why));
        }
        s.pos += t;
        Ok(())
    }

    /// Run the half-blocks `halves` of a single-device model: the pipeline piece for stages cut
    /// inside blocks (LinguaLinked-style). Half-block `2l` is the attention half of block `l`,
    /// `2l + 1` its MLP half, so the chain of a model is
    /// `embed, 0 (attn 0), 1 (mlp 0), 2 (attn 1), …, 2·n_layer − 1 (mlp n_layer − 1), head`,
    /// and `run_halves(.., 2a..2b)` is `run_layers(.., a..b)` with the [`IdealCollective`]
    /// (bit for bit: the same code).
    ///
    /// What crosses a cut at half-block `u` is the residual stream `h` entering block `⌊u/2⌋`
    /// and, when `u` is odd (a cut between the attention and MLP halves of block `l = ⌊u/2⌋`),
    /// also the attention branch `a` of block `l` in `branch` (what the residual add of block
    /// `l` adds to `h`: attention, output projection and its bias, before a post-attention
    /// norm). So a stage cut after an attention half sends two streams on: `h` is a residual
    /// link that skips its attention half.
    ///
    /// On entry `h` is the stream at `halves.start` and `branch` must be `Some(a)` exactly when
    /// `halves.start` is odd (`a` at `h`'s positions); on return `h` is the stream at
    /// `halves.end` and `branch` is `Some(a)` exactly when `halves.end` is odd (an empty range
    /// leaves both as they were). [`Model::head`] takes the stream at `2·n_layer` (no branch).
    ///
    /// Positions and caches as [`Model::run_layers`]: `h.pos` must equal `s.pos`, every
    /// attention half of block `l` appends to `s`'s cache of block `l` (which must hold exactly
    /// `s.pos` positions), and `s.pos` advances by `h.n_tokens` once per call, whatever the
    /// halves (also for a stage of MLP halves only, or an empty range), so each stage's session
    /// stays at the position of the next token. Magnitudes are not recorded (there is no
    /// reduction). Errors, with nothing changed: a tensor-parallel model, a range outside
    /// `0 ..= 2·n_layer`, streams of the wrong shape or position, a missing or unexpected
    /// branch, a session at another position or of another model, a full context.
    ///
    /// [`IdealCollective`]: crate::tp::IdealCollective
    pub fn run_halves(
        &self,
        s: &mut Session,
        h: &mut Hidden,
        branch: &mut Option<Hidden>,
        halves: Range<usize>,
    ) -> Result<(), ModelError> {
        self.check_single("run_halves")?;
        let t = h.n_tokens;
        let n = 2 * self.cfg.n_layer;
        if halves.end > n || halves.start > halves.end {
            return Err(ModelError::Config {
                key: "halves".into(),
                reason: format!(
                    "{halves:?} is not a range of the model's {n} half-blocks (2 per block)"
                ),
            });
        }
        self.check_hidden("hidden", h, t)?;
        self.check_branch(h, branch.as_ref(), halves.start)?;
        self.check_session(s)?;
        if s.pos != h.pos {
            return Err(ModelError::Config {
                key: "session".into(),
                reason: format!(
                    "the hidden state is at position {} but the session's caches at {}",
                    h.pos, s.pos
                ),
            });
        }
        if t == 0 || halves.is_empty() {
            // nothing to compute; the branch is what a cut at `halves.end` carries
            if is_attention_half(halves.end) {
                *branch = None;
            } else if branch.is_none() {
                *branch = Some(Hidden {
                    pos: h.pos,
                    n_tokens: 0,
                    xs: vec![Vec::new()],
                });
            }
            s.pos += t;
            return Ok(());
        }
        if s.pos + t > s.limit {
            return Err(ModelError::ContextFull {
                len: s.pos + t,
                limit: s.limit,
            });
        }
        let attn_layers = halves
            .clone()
            .filter(|&u| is_attention_half(u))
            .map(|u| u / 2);
        self.check_caches(s, attn_layers, s.pos)?;
        let mut b = branch.take().map(|a| a.xs);
        self.run_halves_unchecked(
            &mut s.caches,
            &mut h.xs,
            &mut b,
            halves,
            (s.pos, t),
            &mut IdealCollective,
            false,
        );
        *branch = b.map(|xs| Hidden {
            pos: h.pos,
            n_tokens: t,
            xs,
        });
        s.pos += t;
        Ok(())
    }

    /// The attention half of block `layer` (single-device model): from the residual stream
    /// `x_in` entering the block, the branch `a` its residual add would add (attention, output
    /// projection and bias, before any post-attention norm), at `x_in`'s positions; appends
    /// the keys and values to `s`'s cache of block `layer`.
    ///
    /// A primitive that leaves `s.pos` alone: the tokens sit at `x_in.pos`, and the cache of
    /// block `layer` must hold exactly `x_in.pos` positions (so each block's attention half
    /// runs once per position, in order; other blocks' caches are not looked at). A caller
    /// that also uses the session with [`Model::run_layers`], [`Model::run_halves`] or
    /// [`Model::forward`] keeps `s.pos` itself (e.g. `s.pos += n_tokens` after a step);
    /// [`Model::run_halves`] does that bookkeeping for a stage. Errors: a tensor-parallel
    /// model, a layer out of range, a stream of the wrong shape, a cache at another position,
    /// a full context (`x_in.pos + n_tokens` over the session's limit).
    pub fn attn_half(
        &self,
        s: &mut Session,
        x_in: &Hidden,
        layer: usize,
    ) -> Result<Hidden, ModelError> {
        self.check_single("attn_half")?;
        self.check_layer(layer)?;
        let t = x_in.n_tokens;
        self.check_hidden("x_in", x_in, t)?;
        self.check_session(s)?;
        if t > 0 && x_in.pos + t > s.limit {
            return Err(ModelError::ContextFull {
                len: x_in.pos + t,
                limit: s.limit,
            });
        }
        self.check_caches(s, layer..layer + 1, x_in.pos)?;
        let mut xs = x_in.xs.clone();
        let mut branch = None;
        if t > 0 {
            self.run_halves_unchecked(
                &mut s.caches,
                &mut xs,
                &mut branch,
                2 * layer..2 * layer + 1,
                (x_in.pos, t),
                &mut IdealCollective,
                false,
            );
        }
        Ok(Hidden {
            pos: x_in.pos,
            n_tokens: t,
            xs: branch.unwrap_or_else(|| vec![Vec::new()]),
        })
    }

    /// The MLP half of block `layer` (single-device model): from the stream `x_in` entering
    /// the block and its attention branch `a` ([`Model::attn_half`]), `x_mid = x_in + a` (with
    /// the post-attention norm of `a` if the architecture has one) then
    /// `x_out = x_mid + mlp(x_mid)` (likewise post-normed): the stream entering block
    /// `layer + 1`. No cache is involved. Errors: a tensor-parallel model, a layer out of
    /// range, streams of the wrong shape, `x_in` and `a` at different positions or lengths.
    pub fn mlp_half(&self, x_in: &Hidden, a: &Hidden, layer: usize) -> Result<Hidden, ModelError> {
        self.check_single("mlp_half")?;
        self.check_layer(layer)?;
        let t = x_in.n_tokens;
        self.check_hidden("x_in", x_in, t)?;
        self.check_branch(x_in, Some(a), 2 * layer + 1)?;
        let mut xs = x_in.xs.clone();
        if t > 0 {
            self.run_halves_unchecked(
                &mut [],
                &mut xs,
                &mut Some(a.xs.clone()),
                2 * layer + 1..2 * layer + 2,
                (x_in.pos, t),
                &mut IdealCollective,
                false,
            );
        }
        Ok(Hidden {
            pos: x_in.pos,
            n_tokens: t,
            xs,
        })
    }

    /// The half-blocks `halves` on the per-device streams `xs` (`t` tokens from position
    /// `pos0`), all checked by the caller: caches of the attention halves' blocks at `pos0`,
    /// `branch` holding the per-device attention branch when `halves` starts with an MLP half
    /// (taken), and receiving it when `halves` ends after an attention half. Per block: every
    /// device's attention, the all-reduce, the output bias, the residual add (post-norm), every
    /// device's MLP, the all-reduce, the residual add (post-norm).
    #[allow(clippy::too_many_arguments)]
    fn run_halves_unchecked(
        &self,
        caches: &mut [Vec<KvCache>],
        xs: &mut [Vec<f32>],
        branch: &mut Option<Vec<Vec<f32>>>,
        halves: Range<usize>,
        (pos0, t): (usize, usize),
        collective: &mut dyn Collective,
        record_magnitudes: bool,
    ) {
        let cfg = &self.cfg;
        let (d, n_dev) = (cfg.n_embd, self.devices.len());
        let mut partials: Vec<Vec<f32>> = vec![vec![0.0f32; t * d]; n_dev];
        let mut mags: Vec<Vec<f32>> = if record_magnitudes {
            vec![vec![0.0f32; t * d]; n_dev]
        } else {
            Vec::new()
        };
        let rope = self.rope_table(&self.rope_freqs, pos0, t);
        let rope_swa = halves
            .clone()
            .any(|u| is_attention_half(u) && cfg.is_local(u / 2))
            .then(|| self.rope_table(&self.rope_freqs_swa, pos0, t));

        for u in halves.clone() {
            let l = u / 2;
            if is_attention_half(u) {
                let (rope, window) = match &rope_swa {
                    Some(r) if cfg.is_local(l) => (r, cfg.arch.sliding_window),
                    _ => (&rope, None),
                };
                // attention: each device computes its heads and its slice of the output
                // projection
                for k in 0..n_dev {
                    self.attention(
                        k,
                        l,
                        &xs[k],
                        pos0,
                        t,
                        rope,
                        window,
                        &mut caches[k][l],
                        &mut partials[k],
                        mags.get_mut(k).map(|m| m.as_mut_slice()),
                    );
                }
                // all-reduce of the attention output, plus the output bias: the branch
                let ctx = ReduceCtx {
                    layer: l,
                    site: ReduceSite::AttnOutput,
                    n_tokens: t,
                    pos: pos0,
                    width: d,
                };
                reduce(collective, &ctx, &mut partials, &mags);
                if collective.failure().is_some() {
                    return;
                }
                if let Some(bo) = &self.devices[0].blocks[l].bo {
                    for p in partials.iter_mut() {
                        for row in p.chunks_mut(d) {
                            add_assign(row, bo);
                        }
                    }
                }
                if u + 1 == halves.end {
                    // the range ends between the halves: the branch goes on beside the stream
                    *branch = Some(std::mem::take(&mut partials));
                    break;
                }
                self.add_attention_branch(l, xs, &mut partials);
                continue;
            }
            if u == halves.start {
                // the range starts between the halves: the branch came beside the stream
                if let Some(a) = branch.take() {
                    partials = a;
                }
                self.add_attention_branch(l, xs, &mut partials);
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
            if collective.failure().is_some() {
                return;
            }
            let post = self.devices[0].blocks[l].post_ffn_norm.as_deref();
            for (x, p) in xs.iter_mut().zip(partials.iter_mut()) {
                self.residual_add(x, p, post);
            }
        }
    }

    /// One decode step of `B = sessions.len()` independent sequences (single-device model):
    /// `tokens[b]` is the next token of `sessions[b]`, at its own position `sessions[b].pos`
    /// (the sessions may be at different positions). [`Model::embed`],
    /// [`Model::run_layers_batch`] over every block and [`Model::head`]; returns the logits
    /// that `want` asks of each session's one-token call, row `b` for `sessions[b]`
    /// (`Logits::Last` or `Logits::From(0)`: `B × vocab`; `Logits::None` or `From(n ≥ 1)`:
    /// none), and advances every session by one.
    ///
    /// The linears (QKV, output projection, gate/up, down, head) run once over the `B` rows, so
    /// the weights are read once per step (llama.cpp's batched decode); RoPE uses each row's
    /// position; row `b`'s attention appends to and reads `sessions[b]`'s caches only.
    ///
    /// Against each session's own [`Model::forward`] of its one token:
    /// * `B = 1` is bit for bit the same (the same mat-vec path, the same attention code);
    /// * `B > 1` is **not** bit for bit in the default arithmetic. The linears take the
    ///   multi-token path ([`kernels::f32_prefill`](crate::kernels::f32_prefill) chooses its
    ///   arithmetic, as for a prefill): the integer GEMM, which quantises each row's
    ///   activations exactly as the mat-vec does and adds the same exact per-block integer
    ///   dots, but sums the blocks' scaled terms in another floating-point order, so each
    ///   linear's outputs differ in the last bits (≈1e-7 relative). Where such a difference
    ///   moves a value across a rounding boundary of the next 8-bit activation quantisation
    ///   it grows to a code step, so over the whole model the logits differ as a prefill's and
    ///   a token-by-token decode's of the same tokens do (on SmolLM2-135M Q4_1 up to ~3e-2
    ///   relative to the largest logit, greedy tokens normally the same; the tests allow 6e-2);
    /// * with `AIRINFER_GEMM_DECODE=1` (single steps take the GEMM too) they are bit for bit,
    ///   so the batching itself (positions, caches, row isolation) adds nothing;
    /// * a row's result does not depend on the other rows of the batch (`B ≥ 2`, 8-bit
    ///   arithmetic: the GEMM computes each row alone in a fixed order);
    /// * with f32 prefill arithmetic the `B > 1` rows are multiplied in f32, unquantised, and
    ///   differ from the 8-bit single steps by the activation rounding.
    ///
    /// The attention and element-wise parts are the single decode's code, row by row. Session
    /// magnitudes are not recorded (there is no reduction).
    ///
    /// Errors, with no session changed: a tensor-parallel model, `tokens` and `sessions` of
    /// different lengths, a bad token, a full session, a session of another model or whose
    /// caches are not at its position.
    pub fn decode_batch(
        &self,
        sessions: &mut [&mut Session],
        tokens: &[u32],
        want: Logits,
    ) -> Result<Vec<f32>, ModelError> {
        self.check_single("decode_batch")?;
        if tokens.len() != sessions.len() {
            return Err(ModelError::Config {
                key: "tokens".into(),
                reason: format!(
                    "{} tokens for {} sessions (one token per session)",
                    tokens.len(),
                    sessions.len()
                ),
            });
        }
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let mut h = self.embed(0, tokens)?;
        self.run_layers_batch(sessions, &mut h, 0..self.cfg.n_layer)?;
        Ok(match want {
            Logits::Last | Logits::From(0) => self.head(&h, Logits::From(0)),
            Logits::None | Logits::From(_) => Vec::new(),
        })
    }

    /// Blocks `layers` of a batched decode step ([`Model::decode_batch`]'s pipeline piece,
    /// single-device model): `h` holds `B = sessions.len()` rows (`h.n_tokens == B`), row `b`
    /// the next token of `sessions[b]` at position `sessions[b].pos` (`h.pos` is not read:
    /// the rows have their own positions). Appends each row's keys and values to its session's
    /// caches of the blocks run (which must hold exactly `sessions[b].pos` positions) and
    /// advances every session by one (an empty range only advances them), as
    /// [`Model::run_layers`] does for one sequence. Linears once over all rows, RoPE and
    /// attention per row: see [`Model::decode_batch`] for how the rows compare with single
    /// decode steps. Errors, with no session changed: a tensor-parallel model, a bad range,
    /// `h` not `B × n_embd`, a full session, a session of another model or with its caches
    /// at another position.
    pub fn run_layers_batch(
        &self,
        sessions: &mut [&mut Session],
        h: &mut Hidden,
        layers: Range<usize>,
    ) -> Result<(), ModelError> {
        self.check_single("run_layers_batch")?;
        let cfg = &self.cfg;
        let (rows, d) = (sessions.len(), cfg.n_embd);
        if layers.end > cfg.n_layer || layers.start > layers.end {
            return Err(ModelError::Config {
                key: "layers".into(),
                reason: format!(
                    "{layers:?} is not a range of the model's {} blocks",
                    cfg.n_layer
                ),
            });
        }
        if h.n_tokens != rows {
            return Err(ModelError::Config {
                key: "hidden".into(),
                reason: format!(
                    "{} rows for {rows} sessions (one row per session)",
                    h.n_tokens
                ),
            });
        }
        self.check_hidden("hidden", h, rows)?;
        for s in sessions.iter() {
            self.check_session(s)?;
            if s.pos + 1 > s.limit {
                return Err(ModelError::ContextFull {
                    len: s.pos + 1,
                    limit: s.limit,
                });
            }
            self.check_caches(s, layers.clone(), s.pos)?;
        }
        if rows == 0 {
            return Ok(());
        }
        let positions: Vec<usize> = sessions.iter().map(|s| s.pos).collect();
        let rope = self.rope_rows(&self.rope_freqs, positions.iter().copied());
        let rope_swa = layers
            .clone()
            .any(|l| cfg.is_local(l))
            .then(|| self.rope_rows(&self.rope_freqs_swa, positions.iter().copied()));
        let x = &mut h.xs[0];
        let mut p = vec![0.0f32; rows * d];
        for l in layers {
            let (rope, window) = match &rope_swa {
                Some(r) if cfg.is_local(l) => (r, cfg.arch.sliding_window),
                _ => (&rope, None),
            };
            let b = &self.devices[0].blocks[l];
            let mut caches: Vec<&mut KvCache> =
                sessions.iter_mut().map(|s| &mut s.caches[0][l]).collect();
            self.attention_batch(l, x, &positions, rope, window, &mut caches, &mut p);
            if let Some(bo) = &b.bo {
                for row in p.chunks_mut(d) {
                    add_assign(row, bo);
                }
            }
            self.residual_add(x, &mut p, b.post_attn_norm.as_deref());
            self.mlp(0, l, x, rows, &mut p, None);
            self.residual_add(x, &mut p, b.post_ffn_norm.as_deref());
        }
        for s in sessions.iter_mut() {
            s.pos += 1;
        }
        Ok(())
    }

    /// An error unless the model runs on one device.
    fn check_single(&self, what: &str) -> Result<(), ModelError> {
        if self.devices.len() == 1 {
            return Ok(());
        }
        Err(ModelError::Config {
            key: "devices".into(),
            reason: format!(
                "{what} needs a single-device model; this one is split over {} devices",
                self.devices.len()
            ),
        })
    }

    /// An error unless `layer` is a block of the model.
    fn check_layer(&self, layer: usize) -> Result<(), ModelError> {
        if layer < self.cfg.n_layer {
            return Ok(());
        }
        Err(ModelError::Config {
            key: "layer".into(),
            reason: format!(
                "block {layer} does not exist (the model has {})",
                self.cfg.n_layer
            ),
        })
    }

    /// An error unless `h` holds one stream per device of `t` tokens × n_embd values.
    fn check_hidden(&self, key: &str, h: &Hidden, t: usize) -> Result<(), ModelError> {
        let (d, n_dev) = (self.cfg.n_embd, self.devices.len());
        if h.n_tokens == t && h.xs.len() == n_dev && h.xs.iter().all(|x| x.len() == t * d) {
            return Ok(());
        }
        Err(ModelError::Config {
            key: key.into(),
            reason: format!(
                "expected {n_dev} streams of {t} × {d} values, got {} of lengths {:?} \
                 ({} tokens)",
                h.xs.len(),
                h.xs.iter().map(|x| x.len()).collect::<Vec<_>>(),
                h.n_tokens
            ),
        })
    }

    /// An error unless `branch` is what a cut at half-block `u` carries beside the stream `h`:
    /// an attention branch at `h`'s positions when `u` is odd, none when it is even.
    fn check_branch(
        &self,
        h: &Hidden,
        branch: Option<&Hidden>,
        u: usize,
    ) -> Result<(), ModelError> {
        match (!is_attention_half(u), branch) {
            (false, None) => Ok(()),
            (false, Some(_)) => Err(ModelError::Config {
                key: "branch".into(),
                reason: format!(
                    "half-block {u} is an attention half (block {}), but an attention branch \
                     was given: a branch only enters an MLP half",
                    u / 2
                ),
            }),
            (true, None) => Err(ModelError::Config {
                key: "branch".into(),
                reason: format!(
                    "half-block {u} is the MLP half of block {}: it needs that block's \
                     attention branch beside the stream",
                    u / 2
                ),
            }),
            (true, Some(a)) => {
                if a.pos != h.pos || a.n_tokens != h.n_tokens {
                    return Err(ModelError::Config {
                        key: "branch".into(),
                        reason: format!(
                            "the attention branch holds positions {}..{} but the stream {}..{}",
                            a.pos,
                            a.pos + a.n_tokens,
                            h.pos,
                            h.pos + h.n_tokens
                        ),
                    });
                }
                self.check_hidden("branch", a, h.n_tokens)
            }
        }
    }

    /// An error unless `s` has the caches of this model (one per device and block).
    fn check_session(&self, s: &Session) -> Result<(), ModelError> {
        let (n_dev, n_layer) = (self.devices.len(), self.cfg.n_layer);
        if s.caches.len() == n_dev && s.caches.iter().all(|c| c.len() == n_layer) {
            return Ok(());
        }
        Err(ModelError::Config {
            key: "session".into(),
            reason: format!(
                "the session was made for another model ({} devices × {:?} blocks; this one \
                 has {n_dev} × {n_layer})",
                s.caches.len(),
                s.caches.iter().map(|c| c.len()).collect::<Vec<_>>()
            ),
        })
    }

    /// An error unless every device's cache of each block in `layers` holds exactly `pos`
    /// positions (where the next tokens go; a device without heads caches nothing).
    fn check_caches(
        &self,
        s: &Session,
        layers: impl Iterator<Item = usize>,
        pos: usize,
    ) -> Result<(), ModelError> {
        let hd = self.cfg.head_dim;
        for l in layers {
            for (k, dev) in self.devices.iter().enumerate() {
                let width = dev.kv_heads.len() * hd;
                if dev.heads.is_empty() || width == 0 {
                    continue;
                }
                let keys = s.caches[k][l].keys().len();
                if keys != pos * width {
                    return Err(ModelError::Config {
                        key: "session".into(),
                        reason: format!(
                            "block {l}'s KV cache (device {k}) holds {} positions, but the \
                             tokens start at position {pos}",
                            keys / width
                        ),
                    });
                }
            }
        }
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
        if let Some(c) = cfg.arch.final_logit_softcap {
            logits.iter_mut().for_each(|v| *v = c * (*v / c).tanh());
        }
        logits
    }

    /// The residual add of block `l`'s (reduced) attention branch on every device's stream.
    fn add_attention_branch(&self, l: usize, xs: &mut [Vec<f32>], partials: &mut [Vec<f32>]) {
        let post = self.devices[0].blocks[l].post_attn_norm.as_deref();
        for (x, p) in xs.iter_mut().zip(partials.iter_mut()) {
            self.residual_add(x, p, post);
        }
    }

    /// `x += p`, or `x += rmsnorm(p)` with the post-norm's weights (Gemma 3), row by row:
    /// after the reduction, so each device normalises what it received.
    fn residual_add(&self, x: &mut [f32], p: &mut [f32], post_norm: Option<&[f32]>) {
        match post_norm {
            None => add_assign(x, p),
            Some(w) => {
                let n = rmsnorm_rows(p, w, self.cfg.rms_norm_eps);
                add_assign(x, &n);
            }
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
        // SwiGLU: silu(gate) ⊙ up, or GeGLU: gelu(gate) ⊙ up
        // (element-wise: split over the rows of a prefill, the same numbers on any thread count)
        let act = |g: &mut [f32], u: &[f32]| match cfg.arch.activation {
            Activation::Silu => {
                for (g, u) in g.iter_mut().zip(u) {
                    *g = *g / (1.0 + (-*g).exp()) * u;
                }
            }
            Activation::GeluTanh => geglu(g, u),
        };
        if t > 1 {
            use rayon::prelude::*;
            gate.par_chunks_mut(f)
                .zip(up.par_chunks(f))
                .for_each(|(g, u)| act(g, u));
        } else {
            act(&mut gate, &up);
        }
        // down projection: this device's slice of the inputs → a partial n_embd vector
        linear(&b.w_down, &gate, t, out, &mut xq);
        if let Some(m) = mags {
            linear_magnitudes(&b.w_down, &gate, &xq, t, m);
        }
    }
}

/// `gate ← gelu(gate) ⊙ up`, GELU in its tanh approximation
/// `x/2 · (1 + tanh(√(2/π) (x + 0.044715 x³)))`, written as `x · σ(2z)` = `x / (1 + e^(−2z))`
/// with the branch-free [`exp_poly`] so that the loop vectorises (libm's `tanhf` was 15 % of a
/// Gemma prefill). Relative error a few ulps (llama.cpp reads GELU from an f16 table).
fn geglu(gate: &mut [f32], up: &[f32]) {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    for (g, u) in gate.iter_mut().zip(up) {
        let x = *g;
        let z2 = 2.0 * SQRT_2_OVER_PI * x * (1.0 + 0.044715 * x * x);
        *g = x / (1.0 + exp_poly(-z2)) * u;
    }
}

/// `e^x` for f32 without branches (vectorisable): `2^k · p(r)`, `k = round(x·log₂e)`,
/// `r = x − k·ln2` in two parts, `p` the degree-6 Taylor polynomial (|r| ≤ ln2/2: truncation
/// ≤ 2.2e-8 relative); `x` clamped to [−87, 88] (e^−87 ≈ 1.6e-38 stays normal).
#[inline(always)]
fn exp_poly(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // round to nearest by the 1.5·2²³ trick (exact for |v| < 2²²)
    const MAGIC: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let k = (x * LOG2E + MAGIC) - MAGIC;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    f32::from_bits(p.to_bits().wrapping_add(((k as i32) << 23) as u32))
}

/// Whether half-block `u` is an attention half (`2l`; else the MLP half `2l + 1` of block
/// `l = u / 2`). As a cut point: a cut at an odd `u` falls between a block's two halves.
fn is_attention_half(u: usize) -> bool {
    u.is_multiple_of(2)
}

fn add_assign(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
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

#[cfg(test)]
mod tests {
    use super::{exp_poly, geglu};

    /// The polynomial exp against f64 over the whole clamped range: within 4 ulps.
    #[test]
    fn exp_poly_is_within_a_few_ulps() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x <= 88.0 {
            let want = (x as f64).exp();
            let rel = ((exp_poly(x) as f64 - want) / want).abs();
            worst = worst.max(rel);
            x += 0.000_37;
        }
        assert!(
            worst < 4.0 * f32::EPSILON as f64,
            "worst relative error {worst:e}"
        );
    }

    /// GeGLU against the tanh formula in f64, including the saturated tails.
    #[test]
    fn geglu_matches_the_tanh_formula() {
        let xs: Vec<f32> = (-4000..4000).map(|i| i as f32 * 0.005).collect();
        let mut g = xs.clone();
        geglu(&mut g, &vec![1.0; xs.len()]);
        for (x, got) in xs.iter().zip(&g) {
            let x = *x as f64;
            let want = 0.5
                * x
                * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh());
            assert!(
                (*got as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()),
                "x {x}: {got} vs {want}"
            );
        }
        let mut big = vec![-100.0f32, 100.0, 0.0];
        geglu(&mut big, &[1.0, 1.0, 1.0]);
        // the tails saturate: gelu(−100) = −100·σ(−160·…) underflows to (nearly) 0
        assert!(
            big[0].abs() < 1e-30 && big[1] == 100.0 && big[2] == 0.0,
            "{big:?}"
        );
    }
}
