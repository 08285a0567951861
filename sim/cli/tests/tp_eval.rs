//! The coupled system on the real model: `airinfer eval --scheme …` with SmolLM2-135M.
//! Skipped (with a note) when the model is not cached, unless `AIRINFER_REQUIRE_MODEL` is set.

use std::path::PathBuf;
use std::process::Command;

fn cache() -> PathBuf {
    std::env::var_os("AIRINFER_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/airinfer")
        })
}

fn assets() -> Option<(String, String)> {
    let m = cache().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    let t = cache().join("texts/lee_background.cor");
    if !m.exists() || !t.exists() {
        if std::env::var_os("AIRINFER_REQUIRE_MODEL").is_some() {
            panic!(
                "model or text missing under {} (run scripts/test.sh)",
                cache().display()
            );
        }
        eprintln!("note: SmolLM2 / lee-news not cached; skipping");
        return None;
    }
    Some((m.display().to_string(), t.display().to_string()))
}

fn eval_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_airinfer"))
        .args(args)
        .output()
        .expect("run airinfer");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn base<'a>(m: &'a str, t: &'a str) -> Vec<&'a str> {
    vec![
        "eval",
        "--model",
        m,
        "--text",
        t,
        "--ctx",
        "128",
        "--chunks",
        "2",
        "--json",
        "--prompt-tokens",
        "16",
        "--gen-tokens",
        "4",
    ]
}

#[test]
fn ideal_scheme_equals_the_single_device_perplexity() {
    let Some((m, t)) = assets() else { return };
    // f32 prefill: continuous, so reassociation at the sites moves the perplexity by ~1e-7;
    // with 8-bit activations an ulp can flip a rounding, and flips move these 126 tokens'
    // perplexity by ~1 % (measured 0.9 %)
    let mut s = base(&m, &t);
    s.extend(["--prefill", "f32"]);
    let single = eval_json(&s);
    let mut a = s.clone();
    a.extend(["--shares", "2,1,1", "--scheme", "ideal"]);
    let tp = eval_json(&a);
    let (p1, p3) = (
        single["perplexity"].as_f64().unwrap(),
        tp["perplexity"].as_f64().unwrap(),
    );
    // TUNED: each reduction site is within the γ-bound of llm's lock-step test, but how the
    // reassociation propagates to the perplexity is not bounded (measured 3e-7)
    assert!((p3 / p1 - 1.0).abs() < 1e-3, "single {p1} vs TP ideal {p3}");
    assert_eq!(tp["agreement"].as_f64().unwrap(), 1.0);
    // f32 rounding of a 3-term sum: (2u·Σ|p|)² ≈ 1.4e-14·Σ|p|² (u = 2⁻²⁴) for activations of
    // O(1)…O(10) (measured 8e-16); absolute, so it assumes that scale
    assert!(tp["nmse"]["mlp_down"].as_f64().unwrap() < 1e-10);
    // ideal links take no airtime: the decode time is compute (+ idle) only
    assert_eq!(tp["decode_per_token"]["airtime_ms"].as_f64().unwrap(), 0.0);
}

#[test]
fn aircomp_perplexity_degrades_as_snr_falls_and_runs_are_reproducible() {
    let Some((m, t)) = assets() else { return };
    let snrs = ["0", "10", "20", "40"];
    let mut mean = vec![0.0; snrs.len()];
    let mut reference = 0.0;
    for seed in ["1", "2"] {
        for (i, snr) in snrs.iter().enumerate() {
            let mut a = base(&m, &t);
            a.extend([
                "--devices",
                "4",
                "--scheme",
                "aircomp",
                "--design",
                "zf-sum",
                "--snr-db",
                snr,
                "--seed",
                seed,
            ]);
            let v = eval_json(&a);
            mean[i] += v["perplexity"].as_f64().unwrap() / 2.0;
            reference = v["reference_perplexity"].as_f64().unwrap();
        }
    }
    eprintln!("reference {reference}, AirComp at {snrs:?} dB: {mean:?}");
    assert!(mean.windows(2).all(|w| w[0] > w[1]), "{mean:?}");
    // quality threshold at 40 dB (measured +0.1 %) and an effect size at 0 dB
    assert!(
        (mean[3] / reference - 1.0).abs() < 0.02,
        "{mean:?} vs {reference}"
    );
    assert!(mean[0] > 1.2 * reference);
    // the same run with 1 and 2 threads: byte-identical output
    let mut a = base(&m, &t);
    a.extend([
        "--devices",
        "3",
        "--scheme",
        "aircomp",
        "--snr-db",
        "15",
        "--seed",
        "3",
    ]);
    let run = |threads: &str| {
        // --force-threads: the comparison holds on machines of fewer hardware threads too
        let mut args = vec!["--threads", threads, "--force-threads"];
        args.extend(a.iter().copied());
        Command::new(env!("CARGO_BIN_EXE_airinfer"))
            .args(&args)
            .output()
            .unwrap()
            .stdout
    };
    let one = run("1");
    assert!(!one.is_empty());
    assert_eq!(one, run("2"));
    assert_eq!(one, run("1"));
}

#[test]
fn digital_and_fdma_run_and_a_model_that_does_not_fit_is_refused() {
    let Some((m, t)) = assets() else { return };
    for scheme in ["digital", "fdma"] {
        let mut a = base(&m, &t);
        a.extend(["--devices", "2", "--scheme", scheme, "--snr-db", "20"]);
        let v = eval_json(&a);
        assert!(v["ms_per_token"].as_f64().unwrap() > 0.0);
        assert!(v["decode_per_token"]["airtime_ms"].as_f64().unwrap() > 0.0);
        assert!(v["perplexity"].as_f64().unwrap().is_finite());
    }
    let dir = std::env::temp_dir().join(format!("airinfer-fit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("tiny.toml");
    std::fs::write(
        &f,
        "[tiny]\ndescription = \"a 10 MB sensor\"\npeak_flops_f32 = 1e9\npeak_flops_f16 = 1e9\npeak_ops_int8 = 1e9\nmem_bandwidth = 1e9\nmem_capacity = 1e7\nenergy_per_flop = 1e-11\nmax_tx_power_dbm = 10\nantennas = 1\n",
    )
    .unwrap();
    let mut a = base(&m, &t);
    let fs = f.display().to_string();
    a.extend([
        "--devices",
        "2",
        "--scheme",
        "ideal",
        "--profiles-file",
        &fs,
        "--profiles",
        "tiny",
    ]);
    let out = Command::new(env!("CARGO_BIN_EXE_airinfer"))
        .args(&a)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not fit"), "{err}");
    assert!(out.stdout.is_empty());
    std::fs::remove_dir_all(&dir).ok();
}
