//! The `serving` kind: one system of `[system]` serving the requests of `[serving]`.

use super::*;

/// Metrics of a serving row: the summary row (`part = "summary"`) has the request metrics, the
/// timeline rows (`part = "timeline"`, one per `serving.timeline_s` window from `t_s`) the
/// `window_` ones, an event row (`part = "fail dev2"` or `"rejoin dev2"` at `t_s`, `stages` the
/// plan from then on) `retries` (requests put back) and `ready_s` (weights read).
pub(super) const METRICS: &[&str] = &[
    "fits",
    "offered_req_s",
    "ttft_p50_ms",
    "ttft_p95_ms",
    "ttft_p99_ms",
    "tpot_p50_ms",
    "tpot_p95_ms",
    "tpot_p99_ms",
    "e2e_p50_ms",
    "e2e_p95_ms",
    "e2e_p99_ms",
    "e2e_mean_ms",
    "queue_mean_ms",
    "tok_s",
    "req_s",
    "finished",
    "rejected",
    "unfinished",
    "retries",
    "lost_work_s",
    "window_tok_s",
    "window_ttft_p95_ms",
    "ready_s",
];

pub(super) fn serving(spec: &Spec, seed: u64, dir: &dyn Fn(&str) -> PathBuf) -> Result<Vec<Row>> {
    use airinfer_plan::pipeline::PartitionError;
    use airinfer_sim::systems::{serve, ServingSetup};
    let y = &spec.system;
    let system = y.name;
    let k = spec.device_count();
    let cfg = spec.preset().map_err(invalid)?;
    let weights = WeightFormat::Bits(spec.model.weight_bits);
    let setup = super::system_setup(spec, dir, &cfg, weights)?;
    let requests = spec.requests(dir, seed).map_err(invalid)?;
    let offered = {
        let first = requests.first().map_or(0.0, |r| r.arrival_s);
        let last = requests.last().map_or(0.0, |r| r.arrival_s);
        if last > first {
            (requests.len() - 1) as f64 / (last - first)
        } else {
            f64::NAN
        }
    };
    let policy = spec.policy();
    let s = ServingSetup {
        requests,
        policy,
        failures: spec.serving.failure.clone(),
    };
    let nan = f64::NAN;
    let keys = |stages: String, part: &str, t: String| {
        vec![
            ("devices".to_string(), k.to_string()),
            ("stages".to_string(), stages),
            ("part".to_string(), part.to_string()),
            ("t_s".to_string(), t),
        ]
    };
    let row = |keys, vals: &[(&str, f64)]| Row {
        keys,
        metrics: METRICS
            .iter()
            .map(|m| {
                let v = vals.iter().find(|(n, _)| n == m).map_or(nan, |x| x.1);
                (m.to_string(), v)
            })
            .collect(),
    };
    let r = match serve(system, &setup, &s, seed) {
        Ok(r) => r,
        Err(PartitionError::Infeasible(_)) => {
            return Ok(vec![row(
                keys("infeasible".into(), "summary", String::new()),
                &[("fits", 0.0), ("offered_req_s", offered)],
            )])
        }
        Err(e) => return Err(anyhow::anyhow!("system.{}: {e}", system.name())),
    };
    // the plan's stages, "tp" for tensor parallelism (as the systems kind writes them)
    let stages = if system.is_pipeline() {
        r.plan.clone()
    } else {
        "tp".into()
    };
    let m = &r.summary;
    let ms = 1e3;
    let mut rows = vec![row(
        keys(stages.clone(), "summary", String::new()),
        &[
            ("fits", 1.0),
            ("offered_req_s", offered),
            ("ttft_p50_ms", m.ttft.p50 * ms),
            ("ttft_p95_ms", m.ttft.p95 * ms),
            ("ttft_p99_ms", m.ttft.p99 * ms),
            ("tpot_p50_ms", m.tpot.p50 * ms),
            ("tpot_p95_ms", m.tpot.p95 * ms),
            ("tpot_p99_ms", m.tpot.p99 * ms),
            ("e2e_p50_ms", m.e2e.p50 * ms),
            ("e2e_p95_ms", m.e2e.p95 * ms),
            ("e2e_p99_ms", m.e2e.p99 * ms),
            ("e2e_mean_ms", m.e2e.mean * ms),
            ("queue_mean_ms", m.queue.mean * ms),
            ("tok_s", m.throughput_tok_s),
            ("req_s", m.goodput_req_s),
            ("finished", m.finished as f64),
            ("rejected", m.rejected as f64),
            ("unfinished", m.unfinished as f64),
            ("retries", m.retries as f64),
            ("lost_work_s", r.lost_work_s),
        ],
    )];
    // what happened to the system: a row per failure and rejoin (part = "fail dev2"), with
    // the plan from then on, the requests put back and when the weights were in
    for e in &r.events {
        rows.push(row(
            keys(
                e.plan.clone(),
                &e.what,
                crate::experiment::format_f64(e.at_s),
            ),
            &[("retries", e.retried as f64), ("ready_s", e.ready_s)],
        ));
    }
    let w = spec.serving.timeline_s;
    if w > 0.0 {
        let end = r.token_log.iter().map(|t| t.0).fold(0.0, f64::max);
        let bins = ((end / w).floor() as usize + 1).min(100_000);
        let mut tokens = vec![0usize; bins];
        for &(t, n) in &r.token_log {
            tokens[((t / w).floor() as usize).min(bins - 1)] += n;
        }
        let mut ttft: Vec<Vec<f64>> = vec![Vec::new(); bins];
        for x in r.records.iter().filter(|x| x.first_token_s.is_finite()) {
            ttft[((x.first_token_s / w).floor() as usize).min(bins - 1)].push(x.ttft_s());
        }
        for b in 0..bins {
            rows.push(row(
                keys(
                    stages.clone(),
                    "timeline",
                    crate::experiment::format_f64(b as f64 * w),
                ),
                &[
                    ("window_tok_s", tokens[b] as f64 / w),
                    (
                        "window_ttft_p95_ms",
                        airinfer_sim::serving::Percentiles::of(ttft[b].iter().copied()).p95 * ms,
                    ),
                ],
            ));
        }
    }
    Ok(rows)
}
