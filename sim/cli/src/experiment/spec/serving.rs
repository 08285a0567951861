//! `[serving]` (`kind = "serving"`): requests arriving at a system described by `[system]`.

use super::{relative_to, Invalid, Spec};
use airinfer_sim::serving::{parse_trace, Arrivals, Batching, Failure, Policy, Request};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The arrival process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Process {
    /// Poisson arrivals at `rate_per_s`.
    #[default]
    Poisson,
    /// A Markov-modulated Poisson process: `rates_per_s` (relative, scaled to a mean of
    /// `rate_per_s`) while in each state, `mean_dwell_s` in each, states in turn.
    Mmpp,
    /// Arrival times and lengths from the CSV file `trace`.
    Trace,
}

/// `[serving]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServingSpec {
    /// Requests in the run (a trace: at most this many of its requests).
    pub requests: usize,
    /// `poisson`, `mmpp` or `trace`.
    pub process: Process,
    /// Mean arrival rate, requests per second (Poisson and MMPP).
    pub rate_per_s: f64,
    /// MMPP: the rate of each state relative to the others (scaled so that the long-run mean is
    /// `rate_per_s`).
    pub rates_per_s: Vec<f64>,
    /// MMPP: mean time in each state, s.
    pub mean_dwell_s: Vec<f64>,
    /// Trace: a CSV file with columns `arrival_s`, `prompt_tokens`, `gen_tokens` (relative to
    /// the experiment file).
    pub trace: Option<String>,
    /// Requests per micro-batch at most.
    pub max_batch: usize,
    /// Micro-batches in the system at once (0: one per pipeline stage, one for tensor
    /// parallelism).
    pub max_in_flight: usize,
    /// Requests waiting at most (0: no limit); more are turned away.
    pub queue_capacity: usize,
    /// `continuous` (requests join and leave a micro-batch at every step) or `static`.
    pub batching: Batching,
    /// Devices leaving (and perhaps rejoining): `[[serving.failure]]` with `device`, `at_s`,
    /// `rejoin_s`.
    pub failure: Vec<Failure>,
    /// Width of the time windows of the timeline rows, s (0: no timeline).
    pub timeline_s: f64,
}

impl Default for ServingSpec {
    fn default() -> Self {
        let p = Policy::default();
        ServingSpec {
            requests: 200,
            process: Process::Poisson,
            rate_per_s: 1.0,
            rates_per_s: Vec::new(),
            mean_dwell_s: Vec::new(),
            trace: None,
            max_batch: p.max_batch,
            max_in_flight: p.max_in_flight,
            queue_capacity: p.queue_capacity,
            batching: p.batching,
            failure: Vec::new(),
            timeline_s: 0.0,
        }
    }
}

impl Spec {
    /// The trace file, when the process reads one.
    pub fn trace_file(&self, dir: &dyn Fn(&str) -> PathBuf) -> Result<Option<PathBuf>, Invalid> {
        let s = &self.serving;
        match (&s.process, &s.trace) {
            (Process::Trace, Some(t)) => Ok(Some(relative_to(&dir("serving.trace"), t))),
            (Process::Trace, None) => Err((
                "serving.trace".into(),
                "process = \"trace\" needs the CSV file of arrivals".into(),
            )),
            (_, Some(_)) => Err((
                "serving.trace".into(),
                "a trace is read only with process = \"trace\"".into(),
            )),
            _ => Ok(None),
        }
    }

    /// Check `[serving]` (`k` devices).
    pub fn check_serving(&self, k: usize) -> Result<(), Invalid> {
        let s = &self.serving;
        let bad = |f: &str, r: String| Err((format!("serving.{f}"), r));
        if s.requests == 0 {
            return bad("requests", "0: at least one request".into());
        }
        if s.requests > 10_000_000 {
            return bad(
                "requests",
                format!("{}: at most 10 000 000 per run", s.requests),
            );
        }
        if s.max_batch == 0 {
            return bad("max_batch", "0: a batch holds at least one request".into());
        }
        if !(s.timeline_s.is_finite() && s.timeline_s >= 0.0) {
            return bad("timeline_s", format!("{}: must be ≥ 0", s.timeline_s));
        }
        if s.process != Process::Trace {
            self.arrivals(&|_| PathBuf::new())?;
        }
        for (i, f) in s.failure.iter().enumerate() {
            if let Err((key, why)) = f.check(k, self.system.source) {
                return bad(&format!("failure[{i}].{key}"), why);
            }
        }
        Ok(())
    }

    /// The arrival process (a trace read from its file).
    pub fn arrivals(&self, dir: &dyn Fn(&str) -> PathBuf) -> Result<Arrivals, Invalid> {
        let s = &self.serving;
        let field = |f: &str| format!("serving.{f}");
        let a = match s.process {
            Process::Poisson => Arrivals::Poisson {
                rate_per_s: s.rate_per_s,
            },
            Process::Mmpp => {
                let shape = Arrivals::Mmpp {
                    rates_per_s: s.rates_per_s.clone(),
                    mean_dwell_s: s.mean_dwell_s.clone(),
                };
                shape.validate().map_err(|e| (field("rates_per_s"), e))?;
                let scale = s.rate_per_s / shape.mean_rate();
                Arrivals::Mmpp {
                    rates_per_s: s.rates_per_s.iter().map(|r| r * scale).collect(),
                    mean_dwell_s: s.mean_dwell_s.clone(),
                }
            }
            Process::Trace => {
                let path = self.trace_file(dir)?.expect("a trace process has a file");
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    (
                        field("trace"),
                        format!("cannot read '{}': {e}", path.display()),
                    )
                })?;
                let requests = parse_trace(&text)
                    .map_err(|e| (field("trace"), format!("'{}': {e}", path.display())))?;
                Arrivals::Trace { requests }
            }
        };
        a.validate().map_err(|e| {
            let f = match s.process {
                Process::Poisson => "rate_per_s",
                Process::Mmpp => "rate_per_s",
                Process::Trace => "trace",
            };
            (field(f), e)
        })?;
        Ok(a)
    }

    /// The requests of a run with `seed`.
    pub fn requests(
        &self,
        dir: &dyn Fn(&str) -> PathBuf,
        seed: u64,
    ) -> Result<Vec<Request>, Invalid> {
        let s = &self.serving;
        self.arrivals(dir)?
            .requests(
                s.requests,
                self.system.prompt_tokens,
                self.system.gen_tokens,
                seed,
            )
            .map_err(|e| ("serving".into(), e))
    }

    /// The scheduler's limits.
    pub fn policy(&self) -> Policy {
        let s = &self.serving;
        Policy {
            max_batch: s.max_batch,
            max_in_flight: s.max_in_flight,
            queue_capacity: s.queue_capacity,
            batching: s.batching,
        }
    }
}
