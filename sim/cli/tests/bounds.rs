//! Issue 18, resource bounds decided before work starts: an experiment that `check` accepts
//! never exhausts memory or aborts. Oversized waveform buffers, run counts and memory needs are
//! one-line errors naming the key (exit 1) from `check` and from `run`, decided at once without
//! expanding anything; `--threads` is capped at the hardware's.

use std::path::Path;
use std::time::{Duration, Instant};

mod common;
use common::*;

/// [`common::airinfer`] and how long it took.
fn timed(args: &[&str]) -> (i32, String, String, Duration) {
    let t0 = Instant::now();
    let (code, out, err) = airinfer(args);
    (code, out, err, t0.elapsed())
}

/// `check FILE` and `run FILE` both fail at once with one line holding every word of `want`,
/// writing nothing.
fn refused(d: &Path, f: &str, extra: &[&str], want: &[&str]) {
    let out = d.join("out").display().to_string();
    for cmd in [vec!["check", f], vec!["run", f, "--out", &out, "--quiet"]] {
        let mut args = cmd.clone();
        args.extend(extra);
        let (code, stdout, err, took) = timed(&args);
        assert_eq!(code, 1, "{args:?}: exit {code}: {err}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        let line = err.trim();
        assert_eq!(line.lines().count(), 1, "{args:?}: one line: {line}");
        assert!(line.starts_with("error: "), "{line}");
        for w in want {
            assert!(line.contains(w), "{args:?}: '{w}' missing: {line}");
        }
        assert!(took < Duration::from_secs(20), "{args:?}: took {took:?}");
        assert!(
            !d.join("out").exists(),
            "{args:?}: a refused campaign writes nothing"
        );
    }
}

const WAVEFORM: &str = "kind = \"allreduce\"\n[devices]\ncount = 2\n[channel]\nrx_antennas = 1\n\
    [scheme]\nkind = \"aircomp\"\ndesign = \"zf\"\n[allreduce]\nrealisations = 2\n\
    [waveform]\nlevel = \"waveform\"\n";

#[test]
fn waveform_buffer_sizes_are_bounded_at_validation() {
    let d = tmp("waveform");
    // a timing offset of 1e9 samples passed `check`, then `run` was killed allocating 23 GB
    let f = write(
        &d,
        "offset.toml",
        &format!("{WAVEFORM}[[waveform.impairments]]\ntiming_offset_samples = 1e9\n"),
    );
    refused(
        &d,
        &f,
        &[],
        &[
            "offset.toml:",
            "waveform.impairments[0].timing_offset_samples",
            "1000000000: at most 1000000 samples",
        ],
    );
    // n_fft = 2^30 aborted allocating 34 GB
    let f = write(&d, "fft.toml", &format!("{WAVEFORM}n_fft = 1073741824\n"));
    refused(
        &d,
        &f,
        &[],
        &["fft.toml:", "waveform.n_fft", "1073741824: at most 65536"],
    );
    // the other OFDM sizes name their own key
    let f = write(&d, "cp.toml", &format!("{WAVEFORM}cp_len = 64\n"));
    refused(&d, &f, &[], &["waveform.cp_len", "must be < n_fft = 64"]);
    // the largest accepted sizes are checked against memory: an estimate, not an allocation
    let f = write(
        &d,
        "big.toml",
        &format!(
            "{WAVEFORM}n_fft = 65536\ncp_len = 16\nn_used = 64\n\
             [[waveform.impairments]]\ntiming_offset_samples = 1e6\n"
        ),
    );
    let (code, out, err, _) = timed(&["check", &f]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("waveform sample buffers"), "{out}");
    refused(
        &d,
        &f,
        &["--max-memory", "64M"],
        &[
            "big.toml:",
            "waveform.n_fft",
            "more than the 67.1 MB allowed by --max-memory",
        ],
    );
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn run_counts_are_capped_before_the_sweep_is_expanded() {
    let d = tmp("runs");
    // 10^9 replications passed `check`, then `run` aborted allocating 96 GB
    let f = write(
        &d,
        "reps.toml",
        "kind = \"allreduce\"\nreplications = 1000000000\n",
    );
    refused(
        &d,
        &f,
        &[],
        &[
            "reps.toml",
            "replications",
            "replications (1000000000) = 1000000000 runs: more than the 1000000",
        ],
    );
    // 10^4 × 10^4 points made `check` abort allocating 208 GB
    let f = write(
        &d,
        "grid.toml",
        "kind = \"allreduce\"\n[sweep]\n\"channel.snr_db\" = { from = 0, to = 0.9999, step = 0.0001 }\n\
         \"allreduce.realisations\" = { from = 1, to = 10000, step = 1 }\n",
    );
    refused(
        &d,
        &f,
        &[],
        &[
            "grid.toml:2:",
            ": sweep: channel.snr_db",
            "channel.snr_db (10000 values) × allreduce.realisations (10000 values) = 100000000 points",
            "more than the 100000",
        ],
    );
    // four 10^5-value ranges made `check` panic with "capacity overflow"
    let f = write(
        &d,
        "overflow.toml",
        "kind = \"allreduce\"\n[sweep]\n\"channel.snr_db\" = { from = 0, to = 1, num = 100000 }\n\
         \"channel.bandwidth_hz\" = { from = 1e6, to = 2e6, num = 100000 }\n\
         \"channel.round_overhead_s\" = { from = 0, to = 1, num = 100000 }\n\
         \"allreduce.realisations\" = { from = 1, to = 100000, step = 1 }\n",
    );
    refused(&d, &f, &[], &["sweep", "more than 2^64 points"]);
    // points × replications over the cap: blamed on replications, the sweep named too
    let f = write(
        &d,
        "both.toml",
        "kind = \"allreduce\"\nreplications = 2000\n[sweep]\n\"channel.snr_db\" = { from = 0, to = 999, step = 1 }\n",
    );
    refused(
        &d,
        &f,
        &[],
        &[
            "both.toml:2:1: replications",
            "channel.snr_db (1000 values) × replications (2000) = 2000000 runs",
        ],
    );
    // at the cap: accepted, counted and estimated
    let f = write(
        &d,
        "ok.toml",
        "kind = \"allreduce\"\nreplications = 1000000\n",
    );
    let (code, out, err, took) = timed(&["check", &f]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("= 1000000 runs"), "{out}");
    assert!(out.contains("run records 2.0 GB [replications]"), "{out}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn memory_beyond_the_machine_or_the_limit_is_refused_naming_the_key() {
    let d = tmp("memory");
    // every check prints its estimate and the limit it was checked against
    let ok = write(
        &d,
        "ok.toml",
        "kind = \"allreduce\"\n[devices]\ncount = 2\n",
    );
    let (code, out, err, _) = timed(&["check", &ok]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("  memory: about 32.") && out.contains("(program 32.0 MB [kind], "),
        "{out}"
    );
    assert!(
        out.contains("(MemAvailable)") || out.contains("(MemTotal)") || out.contains("unknown"),
        "{out}"
    );
    let (code, out, err, _) = timed(&["check", &ok, "--max-memory", "1G"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("of 1.1 GB allowed by --max-memory"), "{out}");
    // 2 devices × 4e9 values of Monte-Carlo buffers: more than any machine here
    let f = write(
        &d,
        "values.toml",
        "kind = \"allreduce\"\n[devices]\ncount = 2\n[allreduce]\nrealisations = 1\nvalues = 4000000000\n",
    );
    refused(
        &d,
        &f,
        &[],
        &[
            "values.toml:",
            "allreduce.values",
            "the campaign needs about 320 GB",
            "--max-memory SIZE",
        ],
    );
    // the real model: weights, KV caches, logits; under an explicit limit
    let f = write(
        &d,
        "eval.toml",
        "kind = \"eval\"\n[model]\nname = \"smollm2-135m\"\n[eval]\nctx_tokens = 1024\nchunks = 1\n",
    );
    let (code, out, err, _) = timed(&["check", &f]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("model weights") && out.contains("KV caches") && out.contains("logits"),
        "{out}"
    );
    refused(
        &d,
        &f,
        &["--max-memory", "100M"],
        &[
            "eval.toml:",
            "model.name",
            "more than the 105 MB allowed by --max-memory",
        ],
    );
    // a context whose KV caches no machine here holds: blamed on eval.ctx_tokens
    let f = write(
        &d,
        "ctx.toml",
        "kind = \"eval\"\n[model]\nname = \"smollm2-135m\"\n[eval]\nctx_tokens = 100000000\n",
    );
    // with the model on disk `check` first holds the context to the model's (8192 tokens,
    // read from the GGUF header); without it, to the memory its KV caches need
    if cache()
        .join("models/SmolLM2-135M-Instruct.Q4_1.gguf")
        .exists()
    {
        refused(&d, &f, &[], &["ctx.toml:5:1: eval.ctx_tokens", "8192"]);
    }
    let empty_home = d.join("empty-home");
    std::fs::create_dir_all(&empty_home).unwrap();
    let (code, _, err) = airinfer_env(
        &["check", &f],
        &[("AIRINFER_HOME", empty_home.to_str().unwrap())],
    );
    assert_eq!(code, 1, "{err}");
    for w in [
        "ctx.toml:5:1: eval.ctx_tokens",
        "KV caches",
        "more than the",
    ] {
        assert!(err.contains(w), "'{w}' missing: {err}");
    }
    // a swept key is blamed at its sweep entry
    let f = write(
        &d,
        "swept.toml",
        "kind = \"allreduce\"\n[allreduce]\nrealisations = 1\n[sweep]\n\"allreduce.values\" = [10, 4000000000]\n",
    );
    refused(
        &d,
        &f,
        &[],
        &[
            "swept.toml:5:",
            ": sweep.allreduce.values[1]: allreduce.values = 4000000000: the campaign needs",
        ],
    );
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn threads_are_capped_at_the_hardware_unless_forced() {
    let d = tmp("threads");
    let f = write(&d, "e.toml", "kind = \"allreduce\"\n");
    let hw = std::thread::available_parallelism().unwrap().get();
    let many = (hw + 1).to_string();
    let (code, out, err, _) = timed(&["--threads", &many, "check", &f]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("--threads {many}"))
            && err.contains(&format!("runs {hw} threads at once"))
            && err.contains("--force-threads"),
        "{err}"
    );
    let (code, _, err, _) = timed(&["--threads", &many, "--force-threads", "check", &f]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err, _) = timed(&["--threads", &hw.to_string(), "check", &f]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _, _) = timed(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("--force-threads"), "{out}");
    std::fs::remove_dir_all(&d).ok();
}
