//! Which measurements are results: a NaN or infinite metric is a numerical failure of the run,
//! except where a metric does not apply by design; and the test hook that injects one.

use super::Row;
use crate::experiment::spec::{Kind, Spec};
use anyhow::Result;

/// Whether `metric` of `row` may be non-finite because it does not apply, not because a
/// computation failed: the whitelist of [`numerical_failure`].
fn undefined_by_design(spec: &Spec, row: &Row, metric: &str) -> bool {
    // a configuration that does not fit in memory / has no feasible partition (latency,
    // systems) has no latency, throughput or quality to report: NaN, with fits = 0
    if row.metrics.iter().any(|(m, v)| m == "fits" && *v == 0.0) {
        return true;
    }
    match spec.kind {
        // the closed-form prediction exists for the analog schemes only, bits on the wire for
        // the digital ones only (NaN otherwise)
        Kind::Allreduce => matches!(metric, "predicted_nmse" | "bits_per_value"),
        // quality metrics are measured only with `system.perplexity = true`; the planners'
        // predicted latency and period exist for the pipelines only (tensor parallelism, stages
        // "tp", has no planner: NaN)
        Kind::Systems => {
            let tp = row.keys.iter().any(|(k, v)| k == "stages" && v == "tp");
            (tp && matches!(
                metric,
                "predicted_ms_per_token" | "predicted_tok_s" | "predicted_ttft_ms"
            )) || (!spec.system.perplexity
                && matches!(
                    metric,
                    "perplexity" | "reference_perplexity" | "agreement" | "handoff_nmse"
                ))
        }
        // a row holds the metrics of its part (summary, timeline window, event) only; time per
        // output token needs two tokens; latencies need a finished request
        Kind::Serving => {
            let part = row
                .keys
                .iter()
                .find(|(k, _)| k == "part")
                .map_or("", |(_, v)| v.as_str());
            let value = |name: &str| {
                row.metrics
                    .iter()
                    .find(|(m, _)| m == name)
                    .map_or(f64::NAN, |x| x.1)
            };
            match part {
                "summary" => {
                    metric.starts_with("window_")
                        || metric == "ready_s"
                        || (metric.starts_with("tpot_") && spec.system.gen_tokens < 2)
                        || (metric == "offered_req_s" && spec.serving.requests < 2)
                        || (value("finished") == 0.0
                            && (metric.contains("_p") || metric.ends_with("_mean_ms")))
                }
                "timeline" => metric != "window_tok_s",
                _ => !matches!(metric, "retries" | "ready_s"),
            }
        }
        Kind::Eval | Kind::Latency | Kind::Plan => false,
    }
}

/// The first measured metric of `rows` that is NaN or infinite (a numerical failure of the
/// run), as `name = value`; metrics that are undefined by design are not failures.
pub fn numerical_failure(spec: &Spec, rows: &[Row]) -> Option<String> {
    rows.iter().find_map(|row| {
        row.metrics
            .iter()
            .find(|(m, v)| !v.is_finite() && !undefined_by_design(spec, row, m))
            .map(|(m, v)| format!("{m} = {v}"))
    })
}

/// The test hook `AIRINFER_TEST_NAN_RUN=N`: run N's first metric reads NaN, as after a
/// numerical failure (for the failed-run tests). An error names the variable when malformed.
pub fn inject_nan(run: usize, rows: &mut [Row]) -> Result<()> {
    const VAR: &str = "AIRINFER_TEST_NAN_RUN";
    let Ok(v) = std::env::var(VAR) else {
        return Ok(());
    };
    let n: usize = v
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{VAR}={v}: expected a run index"))?;
    if n == run {
        if let Some((_, x)) = rows.first_mut().and_then(|r| r.metrics.first_mut()) {
            *x = f64::NAN;
        }
    }
    Ok(())
}
