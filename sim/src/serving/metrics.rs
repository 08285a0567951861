//! What happened to each request, and the percentiles of a run.

use super::Request;
use serde::Serialize;

/// One request's fate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestRecord {
    /// The request.
    pub request: Request,
    /// Turned away at arrival (the queue was full).
    pub rejected: bool,
    /// When it first entered a batch, s (NaN: never).
    pub started_s: f64,
    /// When its first token reached the source, s (NaN: never).
    pub first_token_s: f64,
    /// When its last token reached the source, s (NaN: not finished).
    pub done_s: f64,
    /// Tokens it received (each once: a retried request keeps what it had).
    pub tokens: usize,
    /// Times it was put back into the queue after a failure or a re-plan.
    pub retries: usize,
}

impl RequestRecord {
    /// A request that has just arrived.
    pub fn new(request: Request) -> RequestRecord {
        RequestRecord {
            request,
            rejected: false,
            started_s: f64::NAN,
            first_token_s: f64::NAN,
            done_s: f64::NAN,
            tokens: 0,
            retries: 0,
        }
    }

    /// Served to the end.
    pub fn finished(&self) -> bool {
        self.done_s.is_finite()
    }

    /// Time to first token, s (from arrival).
    pub fn ttft_s(&self) -> f64 {
        self.first_token_s - self.request.arrival_s
    }

    /// Time per output token after the first, s (NaN with one output token).
    pub fn tpot_s(&self) -> f64 {
        if self.request.gen_tokens > 1 {
            (self.done_s - self.first_token_s) / (self.request.gen_tokens - 1) as f64
        } else {
            f64::NAN
        }
    }

    /// End-to-end latency, s.
    pub fn e2e_s(&self) -> f64 {
        self.done_s - self.request.arrival_s
    }

    /// Time in the queue before it first entered a batch, s.
    pub fn queue_s(&self) -> f64 {
        self.started_s - self.request.arrival_s
    }
}

/// p50, p95 and p99 and the mean of a set of values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Percentiles {
    /// Of the finite values in `v` (NaN throughout when there are none). Percentiles are
    /// nearest-rank: the smallest value with at least p % of the values at or below it.
    pub fn of(v: impl IntoIterator<Item = f64>) -> Percentiles {
        let mut v: Vec<f64> = v.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Percentiles {
                mean: f64::NAN,
                p50: f64::NAN,
                p95: f64::NAN,
                p99: f64::NAN,
            };
        }
        v.sort_by(f64::total_cmp);
        let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Percentiles {
            mean: v.iter().sum::<f64>() / v.len() as f64,
            p50: rank(0.50),
            p95: rank(0.95),
            p99: rank(0.99),
        }
    }
}

/// A run's summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Requests that arrived.
    pub arrived: usize,
    /// Requests served to the end.
    pub finished: usize,
    /// Requests turned away at arrival.
    pub rejected: usize,
    /// Requests admitted but not finished when the run ended (none unless the system lost
    /// every device able to serve them).
    pub unfinished: usize,
    /// Retries (a request put back into the queue), summed over requests.
    pub retries: usize,
    /// Time to first token, s.
    pub ttft: Percentiles,
    /// Time per output token, s.
    pub tpot: Percentiles,
    /// End-to-end latency, s.
    pub e2e: Percentiles,
    /// Waiting before the first batch, s.
    pub queue: Percentiles,
    /// Output tokens per second, from the first arrival to the last token.
    pub throughput_tok_s: f64,
    /// Finished requests per second over the same span.
    pub goodput_req_s: f64,
}

impl Summary {
    /// Of `records`.
    pub fn of(records: &[RequestRecord]) -> Summary {
        let fin: Vec<&RequestRecord> = records.iter().filter(|r| r.finished()).collect();
        let first = records
            .iter()
            .map(|r| r.request.arrival_s)
            .fold(f64::INFINITY, f64::min);
        let last = fin
            .iter()
            .map(|r| r.done_s)
            .fold(f64::NEG_INFINITY, f64::max);
        let span = last - first;
        let tokens: usize = records.iter().map(|r| r.tokens).sum();
        let per_s = |x: f64| if span > 0.0 { x / span } else { f64::NAN };
        Summary {
            arrived: records.len(),
            finished: fin.len(),
            rejected: records.iter().filter(|r| r.rejected).count(),
            unfinished: records
                .iter()
                .filter(|r| !r.rejected && !r.finished())
                .count(),
            retries: records.iter().map(|r| r.retries).sum(),
            ttft: Percentiles::of(fin.iter().map(|r| r.ttft_s())),
            tpot: Percentiles::of(fin.iter().map(|r| r.tpot_s())),
            e2e: Percentiles::of(fin.iter().map(|r| r.e2e_s())),
            queue: Percentiles::of(fin.iter().map(|r| r.queue_s())),
            throughput_tok_s: per_s(tokens as f64),
            goodput_req_s: per_s(fin.len() as f64),
        }
    }
}
