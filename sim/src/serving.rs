//! Serving: requests arrive over time (Poisson, bursty MMPP, or a trace), wait in the source
//! device's queue, are batched and run through a system — a pipeline of stages over links, or
//! tensor parallelism over every device in lockstep — on the one event clock; devices may fail
//! and rejoin. Each request's time to first token, time per output token and end-to-end latency
//! are recorded, with their p50 / p95 / p99.
//!
//! The scheduler (ours; what vLLM- or Orca-style servers do, at the level of the papers' cost
//! models):
//!
//! * **Admission**: an arriving request joins the source's FIFO queue, or is turned away when
//!   [`Policy::queue_capacity`] requests already wait.
//! * **Batching**: at most [`Policy::max_in_flight`] micro-batches are in the system at once
//!   (by default one per pipeline stage, one for tensor parallelism), each of at most
//!   [`Policy::max_batch`] requests. With [`Batching::Continuous`] a micro-batch's finished
//!   requests leave and waiting ones join at every step (iteration-level scheduling: a new
//!   request's prefill runs in the same batch as the others' decode steps); with
//!   [`Batching::Static`] a micro-batch is formed when a slot is empty and runs until all its
//!   requests are done. A batch is formed from whatever waits: no timer holds it back.
//! * **Failure** ([`Failure`]): a device leaves at a time (and may rejoin). Every micro-batch in
//!   flight is abandoned (the caches and activations on the lost device are gone, and a
//!   re-plan moves units): its requests go back to the head of the queue, keeping the tokens
//!   they already received, and prefill their prompt and those tokens again when they next
//!   run. Nothing is lost or answered twice. The system re-plans for the devices alive
//!   (a pipeline with its own planner, tensor parallelism re-splitting its shares) and reads
//!   the weights each device lacks from storage at its profile's `storage_bandwidth`; the
//!   work of abandoned steps is reported as lost. A rejoin re-plans again in the same way.
//!   Should no plan fit the devices left, requests wait until a device rejoins (those still
//!   waiting at the end are reported unfinished).

mod arrivals;
mod metrics;
mod run;

pub use arrivals::{parse_trace, Arrivals, Request};
pub use metrics::{Percentiles, RequestRecord, Summary};
pub use run::{serve, Executor, TpSteps};

use serde::{Deserialize, Serialize};

/// How micro-batches are formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Batching {
    /// Requests join and leave a micro-batch at every step.
    #[default]
    Continuous,
    /// A micro-batch runs until all its requests are done.
    Static,
}

/// The scheduler's limits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Requests per micro-batch at most (≥ 1).
    pub max_batch: usize,
    /// Micro-batches in the system at once (0: one per pipeline stage; tensor parallelism
    /// one).
    pub max_in_flight: usize,
    /// Requests waiting at most; more are turned away (0: no limit).
    pub queue_capacity: usize,
    /// Batching.
    pub batching: Batching,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_batch: 8,
            max_in_flight: 0,
            queue_capacity: 0,
            batching: Batching::Continuous,
        }
    }
}

/// A device leaving (and perhaps coming back).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    /// Device index.
    pub device: usize,
    /// When it leaves, s.
    pub at_s: f64,
    /// When it is back, s (never when absent).
    #[serde(default)]
    pub rejoin_s: Option<f64>,
}

impl Failure {
    /// Whether this failure can happen among `devices` devices whose queue is on `source`:
    /// `Err((field, reason))`, the field `device`, `at_s` or `rejoin_s`.
    pub fn check(&self, devices: usize, source: usize) -> Result<(), (&'static str, String)> {
        if self.device >= devices {
            return Err((
                "device",
                format!("{}: there are {devices} devices", self.device),
            ));
        }
        if self.device == source {
            return Err((
                "device",
                format!(
                    "{} is the source (system.source): it holds the queue and cannot leave",
                    self.device
                ),
            ));
        }
        if !(self.at_s.is_finite() && self.at_s >= 0.0) {
            return Err(("at_s", format!("{}: must be ≥ 0", self.at_s)));
        }
        if let Some(r) = self.rejoin_s {
            if !(r.is_finite() && r > self.at_s) {
                return Err((
                    "rejoin_s",
                    format!("{r}: must come after at_s = {}", self.at_s),
                ));
            }
        }
        Ok(())
    }
}

/// Something that happened to the system.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SystemEvent {
    /// When, s.
    pub at_s: f64,
    /// `"fail dev2"`, `"rejoin dev2"`.
    pub what: String,
    /// The plan from then on (`stages_text` of a pipeline, the shares of tensor parallelism;
    /// `"none"` when no plan fits).
    pub plan: String,
    /// Requests put back into the queue.
    pub retried: usize,
    /// When the last device had read the weights it lacked, s.
    pub ready_s: f64,
}

/// A serving run's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ServingReport {
    /// The plan at the start (as [`SystemEvent::plan`]).
    pub plan: String,
    /// Every request, in arrival order.
    pub records: Vec<RequestRecord>,
    /// Their summary.
    pub summary: Summary,
    /// Failures, rejoins and re-plans.
    pub events: Vec<SystemEvent>,
    /// Device-seconds of compute in abandoned steps.
    pub lost_work_s: f64,
    /// Time and number of tokens of every step that returned to the source.
    pub token_log: Vec<(f64, usize)>,
}

#[cfg(test)]
mod tests;
