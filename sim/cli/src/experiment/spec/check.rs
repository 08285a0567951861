//! The checks of an experiment: each failure names the key it concerns.

use super::schema::{EvalSpec, Kind, Spec};
use airinfer_llm::eval::PplMode;
use std::path::PathBuf;

/// A check that failed: the key it concerns and why.
pub type Invalid = (String, String);

/// Channel realisations one all-reduce run may draw: at the default 576 values, 8 devices and
/// 4 receive antennas, 2.5 minutes on 2 cores (measured). More is a campaign of replications.
pub const MAX_REALISATIONS: usize = 1_000_000;

pub(super) fn bad<T>(key: &str, msg: impl Into<String>) -> Result<T, Invalid> {
    Err((key.to_string(), msg.into()))
}

pub(super) fn positive(key: &str, v: f64) -> Result<(), Invalid> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        bad(key, format!("{v}: must be a positive number"))
    }
}

pub(super) fn non_negative(key: &str, v: f64) -> Result<(), Invalid> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        bad(key, format!("{v}: must be ≥ 0"))
    }
}

pub(super) fn at_least_one(key: &str, v: usize) -> Result<(), Invalid> {
    if v >= 1 {
        Ok(())
    } else {
        bad(key, "0: must be at least 1")
    }
}

impl EvalSpec {
    /// The eval's token counts against a model context of `context` tokens: each chunk, and
    /// the latency run's prompt plus generated tokens (its KV cache), must fit.
    pub fn within_context(&self, context: usize) -> Result<(), (&'static str, String)> {
        if self.ctx_tokens > context {
            return Err((
                "eval.ctx_tokens",
                format!(
                    "{}: the model's context is {context} tokens",
                    self.ctx_tokens
                ),
            ));
        }
        if self.prompt_tokens.saturating_add(self.gen_tokens) > context {
            return Err((
                "eval.gen_tokens",
                format!(
                    "{}: with eval.prompt_tokens = {} the latency run needs {} positions, the model's context is {context} tokens",
                    self.gen_tokens,
                    self.prompt_tokens,
                    self.prompt_tokens.saturating_add(self.gen_tokens)
                ),
            ));
        }
        Ok(())
    }
}

impl Spec {
    /// Every check that needs no model weights (the model file's header is read when it is
    /// on disk: its context length bounds the eval's token counts).
    pub fn validate(&self, dir: &dyn Fn(&str) -> PathBuf) -> Result<(), Invalid> {
        at_least_one("replications", self.replications)?;
        let devices = self.devices(dir)?;
        let k = devices.profiles.len();
        self.radio(k)?;
        if self.kind == Kind::Systems && self.system.perplexity {
            self.model_file(dir)?;
            self.text_file(dir)?;
        } else if self.kind != Kind::Eval {
            self.preset()?;
            positive("model.weight_bits", self.model.weight_bits)?;
        }
        self.waveform_level(k)?;
        if let Some(name) = &devices.named {
            crate::experiment::planned::check(self, name)?;
            if self.kind == Kind::Latency {
                // the whole plan problem (caps, channel) without solving it
                crate::experiment::planned::problem(self, &self.preset()?, &devices)?;
            }
        }
        match self.kind {
            Kind::Eval => {
                self.text_file(dir)?;
                let e = &self.eval;
                let mode = match e.sliding_stride {
                    Some(stride) => PplMode::Sliding { stride },
                    None => PplMode::LlamaCpp,
                };
                if e.ctx_tokens < mode.min_ctx() {
                    return bad(
                        "eval.ctx_tokens",
                        format!(
                            "{}: need at least {} ({})",
                            e.ctx_tokens,
                            mode.min_ctx(),
                            if e.sliding_stride.is_some() {
                                "a window holds a token and the one it predicts"
                            } else {
                                "llama.cpp's protocol scores the second half of each chunk"
                            }
                        ),
                    );
                }
                at_least_one("eval.prompt_tokens", e.prompt_tokens)?;
                at_least_one("eval.gen_tokens", e.gen_tokens)?;
                if let Some(c) = self.model_context(dir)? {
                    e.within_context(c).map_err(|(k, m)| (k.to_string(), m))?;
                }
                if let Some(c) = e.chunks {
                    at_least_one("eval.chunks", c)?;
                }
                if let Some(s) = e.sliding_stride {
                    at_least_one("eval.sliding_stride", s)?;
                }
            }
            Kind::Latency => {
                at_least_one("latency.tokens", self.latency.tokens)?;
            }
            Kind::Systems => self.check_system(k)?,
            Kind::Serving => {
                self.check_system(k)?;
                self.check_serving(k)?;
                self.trace_file(dir)?;
            }
            Kind::Allreduce => {
                at_least_one("allreduce.realisations", self.allreduce.realisations)?;
                if self.allreduce.realisations > MAX_REALISATIONS {
                    return bad(
                        "allreduce.realisations",
                        format!(
                            "{}: at most {MAX_REALISATIONS} per run (one run holds them in one process; split the work into replications, which run in parallel, resume and shard)",
                            self.allreduce.realisations
                        ),
                    );
                }
                if let Some(v) = self.allreduce.values {
                    at_least_one("allreduce.values", v)?;
                }
                self.device_std(k)?;
            }
            Kind::Plan => {
                let p = &self.plan;
                at_least_one("plan.iterations", p.iterations)?;
                at_least_one("plan.validation", p.validation)?;
                match p.energy_mj.len() {
                    // none: the default budget (binding at equal shares)
                    0 | 1 => {}
                    n if n == k => {}
                    n => {
                        return bad(
                            "plan.energy_mj",
                            format!("{n} budgets for {k} devices (one for all, or one per device)"),
                        )
                    }
                }
                for (i, e) in p.energy_mj.iter().enumerate() {
                    non_negative(&format!("plan.energy_mj[{i}]"), *e)?;
                }
                if let Some(l) = p.latency_ms {
                    positive("plan.latency_ms", l)?;
                }
            }
        }
        for (i, p) in self.plot.iter().enumerate() {
            if p.file.is_empty() || p.file.contains(['/', '\\']) || p.file.starts_with('.') {
                return bad(
                    &format!("plot[{i}].file"),
                    format!(
                        "'{}': a plain file name without directories or extension",
                        p.file
                    ),
                );
            }
            for (j, f) in p.formats.iter().enumerate() {
                if f != "png" && f != "svg" {
                    return bad(
                        &format!("plot[{i}].formats[{j}]"),
                        format!("'{f}': expected png or svg"),
                    );
                }
            }
            for (j, r) in p.reference.iter().enumerate() {
                if r.x.len() != r.y.len() || r.x.is_empty() {
                    return bad(
                        &format!("plot[{i}].reference[{j}]"),
                        format!(
                            "{} x values and {} y values: need as many, at least one",
                            r.x.len(),
                            r.y.len()
                        ),
                    );
                }
            }
        }
        Ok(())
    }
}

impl Spec {
    /// Check `[system]` for `k` devices.
    fn check_system(&self, k: usize) -> Result<(), Invalid> {
        let y = &self.system;
        at_least_one("system.samples", y.samples)?;
        at_least_one("system.prompt_tokens", y.prompt_tokens)?;
        at_least_one("system.gen_tokens", y.gen_tokens)?;
        if y.source >= k {
            return bad(
                "system.source",
                format!("{}: there are {k} devices (0..{k})", y.source),
            );
        }
        if !(y.memory_fraction > 0.0 && y.memory_fraction <= 1.0) {
            return bad(
                "system.memory_fraction",
                format!("{}: must be in (0, 1]", y.memory_fraction),
            );
        }
        if let airinfer_sim::schemes::pipeline::PlanObjective::Mix(w) = y.objective {
            if !(0.0..=1.0).contains(&w) {
                return bad(
                    "system.objective.mix",
                    format!("{w}: the weight of the time to first token must be in [0, 1]"),
                );
            }
        }
        if y.balance_every > 0 && y.overlap == 0 {
            return bad(
                "system.balance_every",
                "the load balancer moves boundaries inside the overlap: set system.overlap ≥ 1",
            );
        }
        for (i, s) in y.slowdown.iter().enumerate() {
            if s.device >= k {
                return bad(
                    &format!("system.slowdown[{i}].device"),
                    format!("{}: there are {k} devices", s.device),
                );
            }
            positive(&format!("system.slowdown[{i}].factor"), s.factor)?;
            non_negative(&format!("system.slowdown[{i}].from_s"), s.from_s)?;
        }
        self.network(k)?;
        Ok(())
    }
}
