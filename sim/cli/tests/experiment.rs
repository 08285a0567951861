//! `airinfer run | check | list | plot | merge` as a user runs them: bad files give one located
//! error, an interrupted campaign resumes without redoing or corrupting anything, shards merge
//! into the unsharded result, and the numbers do not depend on the thread count.

use std::path::{Path, PathBuf};
use std::process::Stdio;

mod common;
use common::*;

/// A cheap campaign: all-reduces of Gaussian vectors, `points` SNRs × 2 schemes × `reps`.
fn allreduce_toml(snrs: &[i32], reps: usize, realisations: usize) -> String {
    format!(
        "kind = \"allreduce\"\nseed = 3\nreplications = {reps}\n[devices]\ncount = 3\n\
         [scheme]\ndesign = \"sca\"\n[allreduce]\nrealisations = {realisations}\n\
         [sweep]\n\"scheme.kind\" = [\"aircomp\", \"fdma\"]\n\"channel.snr_db\" = {snrs:?}\n\
         [[plot]]\nfile = \"nmse\"\nx = \"channel.snr_db\"\ny = \"nmse\"\nseries = \"scheme.kind\"\nlog_y = true\n"
    )
}

/// Rows of a CSV file, header first.
/// Every record of a CSV file, header included (quoted fields such as `"[1, 2]"` kept whole).
fn csv_rows(p: &Path) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(p)
        .unwrap()
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect()
}

#[test]
fn bad_experiment_files_give_one_located_error_each() {
    let d = tmp("bad");
    let ok = "kind = \"allreduce\"\n[devices]\ncount = 2\n";
    let cases: &[(&str, &str, &str, &str)] = &[
        // (file text, line:col expected, key named, words expected)
        (
            "kind = \"allreduce\"\n[channel]\nsnr_dB = 10\n",
            ":3:1:",
            "channel.snr_dB",
            "unknown field",
        ),
        (
            "kind = \"allreduce\"\n[channel]\nsnr_db = \"ten\"\n",
            ":3:1:",
            "channel.snr_db",
            "invalid type",
        ),
        (
            "kind = \"allreduce\"\n[sweep]\n\"channel.snr_db\" = []\n",
            ":3:1:",
            "sweep.channel.snr_db",
            "empty sweep list",
        ),
        (
            "kind = \"allreduce\"\n[sweep]\n\"channel.snr_db\" = { from = 0, to = 20, step = -5 }\n",
            ":3:",
            "step",
            "spacing must be positive",
        ),
        (
            "kind = \"allreduce\"\n[devices]\nprofiles = [\"jetson-orin-nano\", \"pixel-99\"]\n",
            ":3:33:",
            "devices.profiles[1]",
            "'pixel-99' is not in the device library",
        ),
        (
            "kind = \"eval\"\n[model]\nname = \"no-such-model.gguf\"\n",
            ":3:1:",
            "model.name",
            "no such model file",
        ),
        (
            "kind = \"allreduce\"\n[devices]\ncount = 0\n",
            ":3:1:",
            "devices.count",
            "at least one device",
        ),
        (
            "kind = \"allreduce\"\n[devices]\ncount = 3\n[allreduce]\ndevice_std = [1, 2]\n",
            ":5:1:",
            "allreduce.device_std",
            "2 values for 3 devices",
        ),
        (
            "kind = \"allreduce\"\n[devices]\ncount = 2\n[allreduce]\ndevice_std = [1, -2]\n",
            ":5:18:",
            "allreduce.device_std[1]",
            "must be finite and ≥ 0",
        ),
        (
            "kind = \"allreduce\"\n[channel]\nbandwidth_hz = -1e6\n",
            ":3:1:",
            "channel.bandwidth_hz",
            "positive",
        ),
        (
            "kind = \"allreduce\"\n[sweep]\n\"channel.bandwidth_hz\" = [1e6, -1e6]\n",
            ":3:",
            "sweep.channel.bandwidth_hz[1]",
            "positive",
        ),
        (
            "kind = \"allreduce\"\n\n[[plot]]\nfile = \"f\"\nx = \"devices\"\ny = \"perplexity\"\n",
            ":6:1:",
            "plot[0].y",
            "not a metric",
        ),
        (
            "kind = \"systems\"\n[devices]\ncount = 3\n[system]\nsource = 3\n",
            ":5:1:",
            "system.source",
            "there are 3 devices",
        ),
        (
            "kind = \"systems\"\n[system]\nname = \"edgeshard\"\n",
            ":3:",
            "system.name",
            "unknown variant",
        ),
        (
            "kind = \"systems\"\n[devices]\ncount = 2\n[system]\nbalance_every = 2\n",
            ":5:1:",
            "system.balance_every",
            "overlap",
        ),
        (
            "kind = \"systems\"\n[devices]\ncount = 2\nmsg_overhead_s = -1e-3\n",
            ":4:",
            "devices.msg_overhead_s",
            "must be finite and ≥ 0",
        ),
        (
            "kind = \"systems\"\n[devices]\ncount = 2\n[system]\nobjective = { mix = 1.5 }\n",
            ":5:",
            "system.objective.mix",
            "must be in [0, 1]",
        ),
        (
            "kind = \"systems\"\n[devices]\ncount = 2\n[system]\nobjective = \"fastest\"\n",
            ":5:",
            "system.objective",
            "unknown variant",
        ),
        (
            "kind = \"systems\"\n[devices]\ncount = 2\n[system.link]\ntype = \"wired\"\nbandwidth_mbps = -10\n",
            ":6:1:",
            "system.link.bandwidth_mbps",
            "positive",
        ),
        (
            "kind = \"systems\"\n[devices]\ncount = 2\n[[system.links]]\nfrom = 0\nto = 0\ntype = \"ideal\"\n",
            ":4:",
            "system.links[0]",
            "two different devices",
        ),
        (
            "kind = \"serving\"\n[devices]\ncount = 2\n[serving]\nrate_per_s = -1\n",
            ":5:1:",
            "serving.rate_per_s",
            "finite rate",
        ),
        (
            "kind = \"serving\"\n[devices]\ncount = 3\n[serving]\nfailure = [{ device = 0, at_s = 1.0 }]\n",
            ":5:",
            "serving.failure[0].device",
            "is the source",
        ),
        (
            "kind = \"serving\"\n[devices]\ncount = 3\n[serving]\nfailure = [{ device = 2, at_s = 5.0, rejoin_s = 1.0 }]\n",
            ":5:",
            "serving.failure[0].rejoin_s",
            "must come after",
        ),
        (
            "kind = \"serving\"\n[devices]\ncount = 2\n[serving]\nprocess = \"mmpp\"\nrates_per_s = [1.0]\nmean_dwell_s = [1.0, 2.0]\n",
            ":",
            "serving.rates_per_s",
            "one rate and one mean",
        ),
        (
            "kind = \"serving\"\n[devices]\ncount = 2\n[serving]\nprocess = \"trace\"\n",
            ":",
            "serving.trace",
            "needs the CSV file",
        ),
        (
            "kind = \"serving\"\n[devices]\ncount = 2\n[serving]\nmax_batch = 0\n",
            ":5:1:",
            "serving.max_batch",
            "at least one request",
        ),
        (
            "kind = \"systems\"\n[devices]\ncount = 2\n[system.link]\nfading = \"rayleigh\"\ncoherence_time_ms = -5\n",
            ":6:1:",
            "system.link.coherence_time_ms",
            "positive",
        ),
        (
            "kind = \"systems\"\n[devices]\ncount = 2\n[system.link]\nfading = \"rician\"\n",
            ":4:",
            "system.link.k_factor_db",
            "needs its K-factor",
        ),
        (
            "kind = \"systems\"\n[devices]\ncount = 2\n[[system.links]]\nfrom = 0\nto = 1\nfading = \"rayleigh\"\ncoherence_time_ms = 5\ndoppler_hz = 10\n",
            ":9:1:",
            "system.links[0].doppler_hz",
            "not both",
        ),
        (
            "kind = \"systems\"\n[devices]\ncount = 2\n[system.link]\ntype = \"wired\"\nbandwidth_mbps = 10\nfading = \"rayleigh\"\n",
            ":7:1:",
            "system.link.fading",
            "wireless links",
        ),
        (
            "kind = \"systems\"\n[devices]\ncount = 3\n[system.geometry]\npositions_m = [[0, 0], [10, 0]]\ntx_snr_db = 90\nexponent = 3\npl0_db = 40\n",
            ":5:1:",
            "system.geometry.positions_m",
            "2 positions for 3 devices",
        ),
        (
            "kind = \"systems\"\n[devices]\ncount = 2\n[system.geometry]\npositions_m = [[0, 0], [0, 0]]\ntx_snr_db = 90\nexponent = 3\npl0_db = 40\n",
            ":5:24:",
            "system.geometry.positions_m[1]",
            "same place",
        ),
        (
            "kind = \"allreduce\"\n[channel]\nrx_antennas = 2\n[scheme]\nkind = \"aircomp\"\ndesign = \"zf\"\n[waveform]\nlevel = \"waveform\"\n",
            ":3:1:",
            "channel.rx_antennas",
            "single-antenna",
        ),
        (
            "kind = \"systems\"\n[waveform]\nlevel = \"waveform\"\n",
            ":3:1:",
            "waveform.level",
            "applies to kinds allreduce, eval and latency",
        ),
        (
            "kind = \"allreduce\"\n[channel]\nrx_antennas = 1\n[scheme]\nkind = \"aircomp\"\ndesign = \"zf\"\n[waveform]\nlevel = \"waveform\"\nradio = \"uhd\"\n",
            ":9:1:",
            "waveform.radio",
            "device arguments",
        ),
        (
            "kind = \"allreduce\"\n[channel]\nrx_antennas = 1\n[scheme]\nkind = \"aircomp\"\ndesign = \"zf\"\n[waveform]\nlevel = \"waveform\"\n[[waveform.impairments]]\ntiming_offset_samples = -2\n",
            ":10:1:",
            "waveform.impairments[0].timing_offset_samples",
            "must be finite and >= 0",
        ),
        ("[channel]\nsnr_db = 3\n", ":1:1:", "kind", "missing field"),
        ("kind = \"allreduce\"\nseed = = 1\n", ":2:8:", "", "expected"),
    ];
    write(&d, "ok.toml", ok);
    for (i, (text, at, key, words)) in cases.iter().enumerate() {
        let f = write(&d, &format!("bad{i}.toml"), text);
        let out_dir = d.join("out").display().to_string();
        for args in [vec!["check", &f], vec!["run", &f, "--out", &out_dir]] {
            let cmd = args[0];
            let (code, out, err) = airinfer(&args);
            assert_eq!(code, 1, "{cmd} {text:?}: exit {code}, stderr {err}");
            assert!(out.is_empty(), "{cmd} {text:?}: stdout {out}");
            let line = err.trim();
            assert_eq!(line.lines().count(), 1, "{text:?}: one line: {line}");
            assert!(
                line.contains(&format!("bad{i}.toml{at}"))
                    && line.contains(key)
                    && line.contains(words),
                "{text:?}: {line}"
            );
        }
        assert!(!d.join("out").exists(), "a bad file must write nothing");
    }
    // a missing file and a cycle of extends
    let (code, _, err) = airinfer(&["check", d.join("nope.toml").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("nope.toml") && err.contains("cannot read"),
        "{err}"
    );
    let ok = write(&d, "ok.toml", ok);
    let (code, out, _) = airinfer(&["check", &ok]);
    assert_eq!(code, 0);
    assert!(out.contains("1 points × 1 replications = 1 runs"), "{out}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn set_overrides_keys_like_the_file_and_errors_name_the_flag() {
    let d = tmp("set");
    let f = write(&d, "e.toml", &allreduce_toml(&[0, 10, 20], 2, 4));
    let (code, out, err) = airinfer(&["check", &f]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("6 points × 2 replications = 12 runs"), "{out}");
    // a scalar, a sweep list under a quoted dotted key, and a bare word as a string
    let (code, out, err) = airinfer(&[
        "check",
        &f,
        "--set",
        "replications=3",
        "--set",
        "sweep.\"channel.snr_db\"=[5, 15]",
        "--set",
        "name=renamed",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("experiment 'renamed'"), "{out}");
    assert!(out.contains("4 points × 3 replications = 12 runs"), "{out}");
    // list shows the overridden value in every run
    let (code, out, err) = airinfer(&["list", &f, "--set", "devices.count=5"]);
    assert_eq!(code, 0, "{err}");
    let cols: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert!(!cols.contains(&"devices.count"), "not swept: {out}");
    let (code, out, err) = airinfer(&["list", &f, "--set", "sweep.\"devices.count\"=[2, 5]"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1 + 24, "{out}");
    // errors: typed like the file, located at the flag, non-zero exit, one line
    for (set, words) in [
        ("devices.count=0", "devices.count"),
        ("devices.count=three", "devices.count"),
        ("channel.snr_dB=3", "unknown field"),
        ("nonsense", "expected KEY=VALUE"),
        ("=4", "key before '=' is empty"),
        ("channel.snr_db=5", "is swept by"),
    ] {
        let (code, _, err) = airinfer(&["check", &f, "--set", set]);
        assert_eq!(code, 1, "--set {set}: {err}");
        assert!(
            err.contains(&format!("--set {set}")) && err.contains(words),
            "--set {set}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    // run: results of overrides go to a directory of their own
    let o = bin()
        .current_dir(&d)
        .args([
            "run",
            &f,
            "--set",
            "replications=1",
            "--set",
            "sweep.\"channel.snr_db\"=[0]",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dirs: Vec<String> = std::fs::read_dir(d.join("results/e"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert!(dirs[0].starts_with("set-replications_1_sweep."), "{dirs:?}");
    let rows = csv_rows(&d.join("results/e").join(&dirs[0]).join("results.csv"));
    assert_eq!(
        rows.len(),
        1 + 2,
        "two schemes at one SNR, one replication: {rows:?}"
    );
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn extends_and_sweeps_make_the_runs_that_list_prints() {
    let d = tmp("extends");
    write(&d, "base.toml", &allreduce_toml(&[0, 10, 20], 2, 4));
    let child = write(
        &d,
        "child.toml",
        "extends = \"base.toml\"\nname = \"child\"\n[sweep]\n\"channel.snr_db\" = { from = 5, to = 15, step = 5 }\n[[sweep.zip]]\n\"channel.rx_antennas\" = [2, 4]\n\"devices.count\" = [2, 3]\n",
    );
    let (code, out, err) = airinfer(&["check", &child]);
    assert_eq!(code, 0, "{err}");
    // 2 schemes × 3 SNRs × 2 zipped (antennas, devices) × 2 replications
    assert!(
        out.contains("12 points × 2 replications = 24 runs"),
        "{out}"
    );
    let (code, out, _) = airinfer(&["list", &child]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 25);
    assert!(lines[0].split_whitespace().eq([
        "run",
        "point",
        "rep",
        "scheme.kind",
        "channel.snr_db",
        "channel.rx_antennas",
        "devices.count"
    ]));
    // last axis fastest: run 2 is point 1 = (aircomp, 5 dB, 4 antennas, 3 devices)
    assert!(
        lines[3]
            .split_whitespace()
            .eq(["2", "1", "0", "aircomp", "5", "4", "3"]),
        "{}",
        lines[3]
    );
    assert!(
        lines[24]
            .split_whitespace()
            .eq(["23", "11", "1", "fdma", "15", "4", "3"]),
        "{}",
        lines[24]
    );
    let (_, out, _) = airinfer(&["list", &child, "--shard", "1/4"]);
    assert_eq!(out.lines().count(), 1 + 6);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn shards_merged_equal_the_unsharded_run_and_threads_do_not_matter() {
    let d = tmp("shards");
    let f = write(&d, "e.toml", &allreduce_toml(&[0, 10, 20], 2, 6));
    let one = d.join("one");
    let (code, _, err) = airinfer(&["run", &f, "--out", one.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let mut shards = Vec::new();
    for i in 0..2 {
        let s = d.join(format!("s{i}"));
        let (code, out, err) = airinfer(&[
            "--threads",
            "1",
            "run",
            &f,
            "--shard",
            &format!("{i}/2"),
            "--out",
            s.to_str().unwrap(),
            "--quiet",
        ]);
        assert_eq!(code, 0, "{err}");
        assert!(out.is_empty() && err.is_empty(), "--quiet: {out}{err}");
        assert_eq!(std::fs::read_dir(s.join("runs")).unwrap().count(), 6);
        shards.push(s.display().to_string());
    }
    let m = d.join("merged");
    let mut args = vec!["merge", "--out", m.to_str().unwrap(), "--quiet"];
    args.extend(shards.iter().map(|s| s.as_str()));
    let (code, _, err) = airinfer(&args);
    assert_eq!(code, 0, "{err}");
    let a = std::fs::read(one.join("results.csv")).unwrap();
    assert_eq!(
        a,
        std::fs::read(m.join("results.csv")).unwrap(),
        "merged results differ"
    );
    assert_eq!(
        std::fs::read(one.join("summary.csv")).unwrap(),
        std::fs::read(m.join("summary.csv")).unwrap()
    );
    assert!(m.join("nmse.png").exists() && m.join("nmse.svg").exists());
    let rows = csv_rows(&one.join("results.csv"));
    assert_eq!(rows.len(), 1 + 12);
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.join("experiment.json")).unwrap()).unwrap();
    assert!(meta["finished_at"].is_string() && meta["merged_from"].as_array().unwrap().len() == 2);
    assert_eq!(meta["experiment_hash"].as_str().unwrap().len(), 64);
    // merging only some shards reports the missing runs, leaves the campaign unfinished and
    // says so by its exit status (it exited 0)
    let (code, _, err) = airinfer(&[
        "merge",
        "--out",
        d.join("part").to_str().unwrap(),
        &shards[0],
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("6 of 12 runs") && err.contains("6 runs missing"),
        "{err}"
    );
    assert!(
        err.contains("6 of 12 runs missing — merge the other shards"),
        "{err}"
    );
    // a merge of two different experiments is refused
    let g = write(&d, "g.toml", &allreduce_toml(&[0, 10], 1, 6));
    let other = d.join("other");
    airinfer(&["run", &g, "--out", other.to_str().unwrap(), "--quiet"]);
    let (code, _, err) = airinfer(&[
        "merge",
        "--out",
        d.join("bad").to_str().unwrap(),
        &shards[0],
        other.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("another experiment"), "{err}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn an_interrupted_campaign_resumes_without_redoing_or_corrupting() {
    let d = tmp("resume");
    let f = write(
        &d,
        "e.toml",
        &allreduce_toml(&[0, 5, 10, 15, 20, 25], 1, 200),
    );
    let reference = d.join("reference");
    let (code, _, err) = airinfer(&["run", &f, "--out", reference.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let count = |p: &Path| {
        std::fs::read_dir(p).map_or(0, |r| {
            r.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
            })
            .count()
        })
    };
    // the process dies (SIGABRT, no cleanup) at a fixed point instead of a kill racing the clock:
    // after run 4's JSON is written but before the CSV views catch up, then (resumed) after two
    // more runs with their views
    let out = d.join("out");
    let runs = out.join("runs");
    let abort_after = |point: &str| {
        let status = bin()
            .args(["run", &f, "--out", out.to_str().unwrap(), "--quiet"])
            .env("AIRINFER_TEST_ABORT_AFTER", point)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(
            !status.success(),
            "AIRINFER_TEST_ABORT_AFTER={point}: {status}"
        );
    };
    abort_after("4:json");
    assert_eq!(count(&runs), 4);
    // the views lag the records by the last run
    assert_eq!(csv_rows(&out.join("results.csv")).len() - 1, 3);
    abort_after("2");
    assert_eq!(count(&runs), 6);
    assert_eq!(csv_rows(&out.join("results.csv")).len() - 1, 6);
    let finished = count(&runs);
    // a malformed hook is one clear error
    let (code, _, err) = {
        let o = bin()
            .args(["run", &f, "--out", d.join("bad").to_str().unwrap()])
            .env("AIRINFER_TEST_ABORT_AFTER", "zero")
            .output()
            .unwrap();
        (
            o.status.code(),
            (),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("AIRINFER_TEST_ABORT_AFTER=zero"), "{err}");
    // what is on disk is consistent: complete CSV rows of finished runs only
    let rows = csv_rows(&out.join("results.csv"));
    let header = &rows[0];
    assert!(rows.iter().all(|r| r.len() == header.len()));
    assert!(rows.len() - 1 <= finished);
    let reference_rows = csv_rows(&reference.join("results.csv"));
    for r in &rows[1..] {
        assert!(
            reference_rows.contains(r),
            "a row that the full run does not have: {r:?}"
        );
    }
    let before: Vec<(PathBuf, Vec<u8>, std::time::SystemTime)> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let m = std::fs::metadata(&p).unwrap().modified().unwrap();
            (p.clone(), std::fs::read(&p).unwrap(), m)
        })
        .filter(|(p, _, _)| p.extension().is_some_and(|x| x == "json"))
        .collect();
    // resume: the finished runs are skipped and untouched
    let (code, out_text, err) = airinfer(&["run", &f, "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!(
            "{} to run, {finished} already finished",
            12 - finished
        )),
        "{err}"
    );
    assert!(out_text.contains("nmse"), "final table: {out_text}");
    for (p, bytes, m) in &before {
        assert_eq!(
            &std::fs::read(p).unwrap(),
            bytes,
            "{} rewritten",
            p.display()
        );
        assert_eq!(std::fs::metadata(p).unwrap().modified().unwrap(), *m);
    }
    assert_eq!(
        std::fs::read(out.join("results.csv")).unwrap(),
        std::fs::read(reference.join("results.csv")).unwrap()
    );
    // nothing left to do; --force redoes everything and gets the same numbers
    let (_, _, err) = airinfer(&["run", &f, "--out", out.to_str().unwrap()]);
    assert!(err.contains("0 to run, 12 already finished"), "{err}");
    let (_, _, err) = airinfer(&["run", &f, "--out", out.to_str().unwrap(), "--force"]);
    assert!(err.contains("12 to run"), "{err}");
    assert_eq!(
        std::fs::read(out.join("results.csv")).unwrap(),
        std::fs::read(reference.join("results.csv")).unwrap()
    );
    // a changed point is redone, the others kept
    let g = std::fs::read_to_string(&f)
        .unwrap()
        .replace("[0, 5, 10, 15, 20, 25]", "[0, 5, 10, 15, 20, 30]");
    std::fs::write(&f, g).unwrap();
    let (_, _, err) = airinfer(&["run", &f, "--out", out.to_str().unwrap()]);
    assert!(err.contains("2 to run, 10 already finished"), "{err}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn plot_redraws_from_the_csv() {
    let d = tmp("plot");
    let f = write(&d, "e.toml", &allreduce_toml(&[0, 20], 1, 4));
    let out = d.join("out");
    airinfer(&["run", &f, "--out", out.to_str().unwrap(), "--quiet"]);
    std::fs::remove_file(out.join("nmse.png")).unwrap();
    let (code, stdout, err) = airinfer(&["plot", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("nmse.png"));
    let png = std::fs::read(out.join("nmse.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // new plots from an edited file, without re-running
    let g = std::fs::read_to_string(&f).unwrap()
        + "[[plot]]\nfile = \"air\"\nx = \"channel.snr_db\"\ny = \"airtime_us\"\nseries = \"scheme.kind\"\nformats = [\"svg\"]\n";
    std::fs::write(&f, g).unwrap();
    let (code, _, err) = airinfer(&["plot", out.to_str().unwrap(), "--config", &f]);
    assert_eq!(code, 0, "{err}");
    let svg = std::fs::read_to_string(out.join("air.svg")).unwrap();
    assert!(svg.contains("aircomp") && svg.contains("fdma"));
    let (code, _, err) = airinfer(&["plot", d.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("not a results directory"), "{err}");
    // a campaign with no finished run has nothing to plot: an error, not empty figures (it
    // exited 0 and drew nothing)
    for e in std::fs::read_dir(out.join("runs")).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    let (code, _, err) = airinfer(&["plot", out.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no finished runs to plot"), "{err}");
    std::fs::remove_dir_all(&d).ok();
}

/// The summary of a finished campaign as (column → value) maps.
fn summary_rows(dir: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let rows = csv_rows(&dir.join("summary.csv"));
    rows[1..]
        .iter()
        .map(|r| rows[0].iter().cloned().zip(r.iter().cloned()).collect())
        .collect()
}

fn num(m: &std::collections::HashMap<String, String>, k: &str) -> f64 {
    m[k].parse().unwrap_or_else(|_| panic!("{k} = {}", m[k]))
}

#[test]
fn allreduce_runs_meet_the_closed_forms() {
    let d = tmp("closed");
    // ZF (sum of directions): with common random numbers the same channels and noise samples
    // meet every SNR, so the error scales exactly as the noise variance; airtime per all-reduce:
    // AirComp n/2 channel uses + 2 × 16 bits of side information per device at 2 bits per use,
    // FDMA K × n/2 uses + the same side information, + 50 µs per round, at 10 M uses/s (the
    // uplink's closed forms: an ideal downlink)
    let f = write(
        &d,
        "e.toml",
        "kind = \"allreduce\"\nseed = 11\n[devices]\ncount = 3\n[scheme]\ndesign = \"zf_sum\"\n\
         downlink = \"ideal\"\n\
         [allreduce]\nrealisations = 40\nvalues = 1000\n\
         [sweep]\n\"scheme.kind\" = [\"ideal\", \"aircomp\", \"fdma\"]\n\"channel.snr_db\" = [0, 20]\n",
    );
    let out = d.join("out");
    let (code, _, err) = airinfer(&["run", &f, "--out", out.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let s = summary_rows(&out);
    let get = |kind: &str, snr: &str| {
        s.iter()
            .find(|r| r["scheme.kind"] == kind && r["channel.snr_db"] == snr)
            .unwrap()
    };
    for snr in ["0", "20"] {
        // f32 rounding of a 3-term sum: relative ≲ 2u·Σ|p|/|Σp| per value (u = 2⁻²⁴), squared
        // ≈ 1e-14 unless the partials cancel (measured 1.3e-15); airtimes are closed forms
        // written with every digit: f64 rounding only
        assert!(num(get("ideal", snr), "nmse") < 1e-12);
        assert_eq!(num(get("ideal", snr), "airtime_us"), 0.0);
        let air = num(get("aircomp", snr), "airtime_us");
        assert!(
            (air - ((500.0 + 3.0 * 16.0) / 10e6 + 50e-6) * 1e6).abs() < 1e-9,
            "{air}"
        );
        let fdma = num(get("fdma", snr), "airtime_us");
        assert!(
            (fdma - ((3.0 * 500.0 + 3.0 * 16.0) / 10e6 + 50e-6) * 1e6).abs() < 1e-9,
            "{fdma}"
        );
    }
    for kind in ["aircomp", "fdma"] {
        let ratio = num(get(kind, "20"), "nmse") / num(get(kind, "0"), "nmse");
        // exact scaling up to the f32 rounding of the estimates (≈ u·|sum|/|error| per value,
        // averaging out over 40 000 values; measured ≤ 1.1e-10): 1e-6 is loose
        assert!((ratio - 0.01).abs() < 1e-6, "{kind}: {ratio}");
        // both MSE views: the aggregate's MSE is the NMSE times the sum's power, K = 3 for
        // unit-variance partials (40 000 values: the empirical power is within ~1 % of 3)
        for snr in ["0", "20"] {
            let r = get(kind, snr);
            let power = num(r, "mse") / num(r, "nmse");
            assert!((power / 3.0 - 1.0).abs() < 0.03, "{kind} {snr} dB: {power}");
        }
    }
    std::fs::remove_dir_all(&d).ok();
}

/// `allreduce.device_std`: every device's values scaled by 2 (the same draws, channels and
/// noise) scale every linear scheme's aggregate error by exactly 4 and leave its NMSE; one device
/// dominating the sum costs AirComp its advantage over equal-energy FDMA, whose NMSE does not
/// depend on the spread (each device's error is proportional to its own variance).
#[test]
fn device_std_scales_the_partials_as_the_closed_forms_say() {
    let d = tmp("device-std");
    let f = write(
        &d,
        "s.toml",
        "kind = \"allreduce\"\nseed = 5\n[devices]\ncount = 4\n[scheme]\ndesign = \"sca\"\n\
         downlink = \"ideal\"\n[allreduce]\nrealisations = 60\nvalues = 500\n\
         [sweep]\n\"scheme.kind\" = [\"aircomp\", \"fdma\"]\n\
         \"allreduce.device_std\" = [[1, 1, 1, 1], [2, 2, 2, 2], [1, 0.05, 0.05, 0.05]]\n\
         [[sweep.zip]]\n\"scheme.held_equal\" = [\"energy\"]\n",
    );
    let out = d.join("out");
    let (code, _, err) = airinfer(&["run", &f, "--out", out.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let s = summary_rows(&out);
    let get = |kind: &str, std: &str| {
        s.iter()
            .find(|r| r["scheme.kind"] == kind && r["allreduce.device_std"] == std)
            .unwrap_or_else(|| panic!("{kind} {std}: {s:?}"))
    };
    for kind in ["aircomp", "fdma"] {
        let (one, two) = (get(kind, "[1, 1, 1, 1]"), get(kind, "[2, 2, 2, 2]"));
        // linear in the data up to f32 rounding of the values (measured ≤ 1e-7 relative)
        let r = num(two, "mse") / num(one, "mse");
        assert!((r - 4.0).abs() < 1e-4, "{kind}: {r}");
        let r = num(two, "nmse") / num(one, "nmse");
        assert!((r - 1.0).abs() < 1e-4, "{kind}: {r}");
    }
    // equal partials: AirComp well ahead; one device with 20× the others' deviation: FDMA's
    // NMSE unchanged within Monte-Carlo error and AirComp's advantage mostly gone (SCA, N_r = 4,
    // one stream: measured 1.78× and 1.01×)
    let adv = |std: &str| num(get("fdma", std), "nmse") / num(get("aircomp", std), "nmse");
    let (equal, skewed) = (adv("[1, 1, 1, 1]"), adv("[1, 0.05, 0.05, 0.05]"));
    eprintln!("AirComp's advantage: equal {equal}, skewed {skewed}");
    assert!(
        equal > 1.5 && skewed < 1.2 && skewed < 0.75 * equal,
        "{equal} vs {skewed}"
    );
    let fdma_shift = num(get("fdma", "[1, 0.05, 0.05, 0.05]"), "nmse")
        / num(get("fdma", "[1, 1, 1, 1]"), "nmse");
    assert!((fdma_shift - 1.0).abs() < 0.3, "{fdma_shift}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn the_same_allreduce_runs_at_symbol_and_waveform_level_and_through_a_radio() {
    let d = tmp("waveform");
    // 3 single-antenna devices, ZF; without correction and impairments the waveform level must
    // meet its own closed form, and the symbol level its own
    let f = write(
        &d,
        "w.toml",
        "kind = \"allreduce\"\nseed = 5\n[devices]\ncount = 3\n[channel]\nrx_antennas = 1\n\
         snr_db = 15\n[scheme]\nkind = \"aircomp\"\ndesign = \"zf\"\ndownlink = \"ideal\"\n\
         [waveform]\ncorrect = false\n\
         [allreduce]\nrealisations = 300\n[sweep]\n\"waveform.level\" = [\"symbol\", \"waveform\"]\n",
    );
    let out = d.join("out");
    let (code, _, err) = airinfer(&["run", &f, "--out", out.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 0, "{err}");
    for r in summary_rows(&out) {
        let (m, p) = (num(&r, "nmse"), num(&r, "predicted_nmse"));
        // TUNED: Monte-Carlo over 300 channel draws with heavy-tailed ZF MSEs (a few deep fades
        // can dominate the mean); not derived (measured −1.2 % symbol, +0.07 % waveform)
        assert!(
            (m / p - 1.0).abs() < 0.05,
            "{}: {m} vs {p}",
            r["waveform.level"]
        );
    }
    // `--radio emulator`: the waveform points through the radio, the symbol ones stay the
    // reference; results in a directory of their own
    let run_in = |args: &[&str]| {
        let o = bin().args(args).current_dir(&d).output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = run_in(&["run", &f, "--radio", "emulator", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let rows = summary_rows(&d.join("results/w/radio-emulator"));
    assert_eq!(rows.len(), 2);
    // without a sweep over the level, `--radio` moves every point to waveform level
    let g = write(
        &d,
        "g.toml",
        "kind = \"allreduce\"\n[devices]\ncount = 2\n[channel]\nrx_antennas = 1\n\
         [scheme]\nkind = \"aircomp\"\ndesign = \"zf\"\n[allreduce]\nrealisations = 20\n",
    );
    let (code, err) = run_in(&["run", &g, "--radio", "emulator", "--quiet", "--out", "g"]);
    assert_eq!(code, 0, "{err}");
    let meta = std::fs::read_to_string(d.join("g/experiment.json")).unwrap();
    let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(meta["config"]["waveform"]["level"], "waveform", "{meta}");
    assert_eq!(meta["config"]["waveform"]["radio"], "emulator", "{meta}");
    // hardware: without the soapy feature a located error before anything is written; with it,
    // a device that does not exist fails to open
    let (code, err) = run_in(&["run", &f, "--radio", "driver=no-such-driver", "--out", "hw"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("waveform.radio")
            && err.contains("driver=no-such-driver")
            && (err.contains("--features soapy") || err.contains("open")),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!d.join("hw").join("runs").join("000000.json").exists());
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn the_sca_plan_ends_below_the_uniform_assignment() {
    let d = tmp("plan");
    let f = write(
        &d,
        "p.toml",
        "kind = \"plan\"\nseed = 4\nreplications = 2\n[devices]\nprofiles = [\"jetson-agx-orin\", \"jetson-orin-nano\", \"raspberry-pi-5\"]\n\
         [channel]\ngains_db = [0, -6, -10]\n[plan]\niterations = 60\nvalidation = 32\n",
    );
    let out = d.join("out");
    let (code, _, err) = airinfer(&["run", &f, "--out", out.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let rows = csv_rows(&out.join("results.csv"));
    let h = &rows[0];
    let col = |n: &str| h.iter().position(|c| c == n).unwrap();
    for rep in ["0", "1"] {
        let of = |a: &str| -> Vec<(usize, f64)> {
            rows[1..]
                .iter()
                .filter(|r| r[col("replication")] == rep && r[col("assignment")] == a)
                .map(|r| {
                    (
                        r[col("iteration")].parse().unwrap(),
                        r[col("expected_mse")].parse().unwrap(),
                    )
                })
                .collect()
        };
        let sca = of("sca");
        let uniform = of("uniform");
        assert_eq!(sca.first().unwrap().0, 0);
        assert_eq!(sca.last().unwrap().0, 60);
        // SCA starts at the (projected) uniform shares and ends well below them (the same
        // shares on the same validation draws: equal up to rounding; 0.8 is an effect size)
        assert!((sca[0].1 - uniform[0].1).abs() < 1e-12 * uniform[0].1.max(1.0));
        assert!(
            sca.last().unwrap().1 < 0.8 * uniform[0].1,
            "{sca:?} vs {uniform:?}"
        );
        // every row's shares lie on the simplex
        for r in &rows[1..] {
            let s: f64 = (0..3)
                .map(|k| r[col(&format!("share_{k}"))].parse::<f64>().unwrap())
                .sum();
            // bisection projection, written exactly: ~ε
            assert!((s - 1.0).abs() < 1e-9);
        }
    }
    std::fs::remove_dir_all(&d).ok();
}

fn cached_model() -> Option<(PathBuf, PathBuf)> {
    let home = std::env::var_os("AIRINFER_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/airinfer")
        });
    let m = home.join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    let t = home.join("texts/lee_background.cor");
    if m.exists() && t.exists() {
        return Some((m, t));
    }
    assert!(
        std::env::var_os("AIRINFER_REQUIRE_MODEL").is_none(),
        "model or text missing under {} (run scripts/test.sh)",
        home.display()
    );
    eprintln!("note: SmolLM2 / lee-news not cached; skipping");
    None
}

#[test]
fn eval_runs_on_the_real_model_agree_with_airinfer_eval() {
    let Some((model, text)) = cached_model() else {
        return;
    };
    let d = tmp("eval");
    // model and text given as paths relative to the experiment file
    std::os::unix::fs::symlink(&model, d.join("m.gguf")).unwrap();
    std::os::unix::fs::symlink(&text, d.join("t.txt")).unwrap();
    let f = write(
        &d,
        "e.toml",
        "kind = \"eval\"\nseed = 5\n[model]\nname = \"m.gguf\"\nshares = [2, 1, 1]\n\
         [eval]\ntext = \"t.txt\"\nctx_tokens = 64\nchunks = 2\nprompt_tokens = 8\ngen_tokens = 2\n\
         [devices]\nprofiles = [\"jetson-orin-nano\"]\n\
         [sweep]\n\"scheme.kind\" = [\"ideal\", \"aircomp\"]\n\"channel.snr_db\" = [5, 40]\n",
    );
    let out = d.join("out");
    let (code, _, err) = airinfer(&["run", &f, "--out", out.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let s = summary_rows(&out);
    // the same split through `airinfer eval` (one process, its own loading and tokenising)
    let eval_ppl = |prefill: &str| -> f64 {
        let (code, stdout, err) = airinfer(&[
            "eval",
            "--model",
            model.to_str().unwrap(),
            "--text",
            text.to_str().unwrap(),
            "--ctx",
            "64",
            "--chunks",
            "2",
            "--devices",
            "3",
            "--shares",
            "2,1,1",
            "--prefill",
            prefill,
            "--json",
        ]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap()["perplexity"]
            .as_f64()
            .unwrap()
    };
    let want = eval_ppl("f32");
    for r in &s {
        assert_eq!(r["devices"], "3");
        // the same computation as the CLI run, results written with every digit: equal up to
        // f64 rounding of the exp/mean
        assert!(
            (num(r, "reference_perplexity") - want).abs() < 1e-9 * want,
            "{} vs {want}",
            r["reference_perplexity"]
        );
    }
    let get = |kind: &str, snr: &str| {
        s.iter()
            .find(|r| r["scheme.kind"] == kind && r["channel.snr_db"] == snr)
            .unwrap()
    };
    let ideal = get("ideal", "5");
    // the same TP model and ideal all-reduce as the CLI run (measured equal); TUNED: 1e-3 is
    // not derived (a reassociated sum moves SmolLM2's perplexity by ~3e-7, see tp_eval)
    assert!((num(ideal, "perplexity") - want).abs() < 1e-3 * want);
    assert_eq!(num(ideal, "agreement"), 1.0);
    // the channel's error reaches the model: worse at 5 dB than at 40 dB
    let (lo, hi) = (get("aircomp", "5"), get("aircomp", "40"));
    // effect size: 35 dB apart (measured ≈ 2300×)
    assert!(num(lo, "nmse") > 100.0 * num(hi, "nmse"));
    assert!(num(lo, "agreement") < num(hi, "agreement"));
    assert!(num(hi, "ms_per_token") > num(ideal, "ms_per_token"));
    // an explicit `prefill = "f32"` is the default: every run already finished; `"int8"` gives
    // `airinfer eval`'s default arithmetic (8-bit activations) under run hashes of its own, so
    // every run is redone
    let o = out.to_str().unwrap();
    let (code, _, err) = airinfer(&["run", &f, "--out", o, "--set", "model.prefill=\"f32\""]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("0 to run, 4 already finished"), "{err}");
    let (code, _, err) = airinfer(&["run", &f, "--out", o, "--set", "model.prefill=\"int8\""]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("4 to run, 0 already finished"), "{err}");
    let want8 = eval_ppl("int8");
    assert!(
        want8 != want,
        "int8 and f32 prefill give the same perplexity {want}"
    );
    for r in &summary_rows(&out) {
        assert!(
            (num(r, "reference_perplexity") - want8).abs() < 1e-9 * want8,
            "int8: {} vs {want8}",
            r["reference_perplexity"]
        );
    }
    // and it is one per campaign
    let f = write(
        &d,
        "sweep.toml",
        "kind = \"eval\"\n[model]\nname = \"m.gguf\"\n[eval]\ntext = \"t.txt\"\n\
         [sweep]\n\"model.prefill\" = [\"f32\", \"int8\"]\n",
    );
    let (code, _, err) = airinfer(&["run", &f, "--out", d.join("o2").to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        err.contains("model.prefill") && err.contains("cannot vary"),
        "{err}"
    );
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn plan_prints_a_partition_and_rejects_impossible_inputs() {
    // EdgeShard on Llama-2-70B: two AGX Orins and a 3090 server behind 10 Mbit/s
    let (code, out, err) = airinfer(&[
        "plan",
        "--system",
        "edgeshard-latency",
        "--model",
        "llama2-70b",
        "--profiles",
        "jetson-agx-orin,jetson-agx-orin",
        "--cloud",
        "rtx-3090-server",
        "--link",
        "wired",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
    let stages = v["stages"].as_array().unwrap();
    // the stages cover the 80 blocks in order, the source first with the embedding
    assert_eq!(stages[0]["device"], 0);
    assert_eq!(stages[0]["embedding"], true);
    assert_eq!(stages.last().unwrap()["head"], true);
    let mut next = 0;
    for s in stages {
        assert_eq!(s["blocks"][0].as_u64().unwrap(), next);
        next = s["blocks"][1].as_u64().unwrap();
    }
    assert_eq!(next, 80);
    let pred = v["predicted"]["latency_ms_per_token"].as_f64().unwrap();
    let sim = v["simulated"]["ms_per_token"].as_f64().unwrap();
    // one request: the simulated decode time is the prediction, up to the KV cache growing
    // (KV reads are a tiny share of a 70B model's weight reads: measured 6e-6, 2 % is loose)
    assert!((sim / pred - 1.0).abs() < 0.02, "{pred} vs {sim}");
    // no fit: 70B (FP16 = 138 GB) on two 8 GB devices; no devices; unknown system
    for (args, words) in [
        (
            vec![
                "plan",
                "--system",
                "mdi",
                "--model",
                "llama2-70b",
                "--weight-bits",
                "16",
                "--profiles",
                "jetson-orin-nano,jetson-orin-nano",
            ],
            "no feasible partition",
        ),
        (
            vec!["plan", "--system", "even", "--profiles", ""],
            "devices.profiles",
        ),
        (vec!["plan", "--system", "edgeshard"], "invalid value"),
        (
            vec!["plan", "--system", "even", "--memory-fraction", "0"],
            "memory_fraction",
        ),
    ] {
        let (code, out, err) = airinfer(&args);
        // 1 for bad input, 2 for a command line clap cannot parse
        assert!(code == 1 || code == 2, "{args:?}: exit {code}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert!(err.contains(words), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn systems_runs_on_the_real_model_keep_exact_logits_on_exact_links() {
    let Some((model, text)) = cached_model() else {
        return;
    };
    let d = tmp("systems");
    std::os::unix::fs::symlink(&model, d.join("m.gguf")).unwrap();
    std::os::unix::fs::symlink(&text, d.join("t.txt")).unwrap();
    // every pipeline planner on exact links (f32, wired), then int8 hand-offs
    let f = write(
        &d,
        "s.toml",
        "kind = \"systems\"\nseed = 3\n[model]\nname = \"m.gguf\"\n\
         [devices]\nprofiles = [\"jetson-orin-nano\", \"raspberry-pi-5\", \"jetson-tx2\"]\n\
         [system]\nperplexity = true\ngen_tokens = 4\nsamples = 3\nwire = \"f32\"\n\
         [system.link]\ntype = \"wired\"\nbandwidth_mbps = 100\n\
         [eval]\ntext = \"t.txt\"\nctx_tokens = 64\nchunks = 2\n\
         [sweep]\n\"system.name\" = [\"edgeshard-latency\", \"edgeshard-throughput\", \"lingualinked\", \"lingualinked-throughput\", \"mdi\", \"even\"]\n\
         \"system.wire\" = [\"f32\", \"int8\"]\n",
    );
    let out = d.join("out");
    let (code, _, err) = airinfer(&["run", &f, "--out", out.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let s = summary_rows(&out);
    assert_eq!(s.len(), 12);
    let mut int8_changed = 0;
    for r in &s {
        let (ppl, reference) = (num(r, "perplexity"), num(r, "reference_perplexity"));
        // sanity range of a perplexity
        assert!(reference > 1.0 && reference < 1e3);
        let stages = &r["stages"];
        if r["system.wire"] == "f32" {
            // exactly the single-device numbers, however the model is cut
            assert_eq!(ppl, reference, "{stages}");
            assert_eq!(num(r, "agreement"), 1.0);
            assert_eq!(num(r, "handoff_nmse"), 0.0);
        } else if stages.contains(' ') {
            // a real split with int8 hand-offs: reported, small, not zero
            let nmse = num(r, "handoff_nmse");
            // int8 with per-32 scales: NMSE = c²/(12·127²) ≈ 5.2e-6·c², c = block max / RMS:
            // the range allows c² from 0.2 to 190 (measured 8e-5 … 1.6e-4)
            assert!(nmse > 1e-6 && nmse < 1e-3, "{stages}: {nmse}");
            // TUNED: a quality threshold; how a hand-off NMSE reaches the perplexity is not
            // derived (measured up to 1.15 %)
            assert!(
                (ppl / reference - 1.0).abs() < 0.02,
                "{stages}: {ppl} vs {reference}"
            );
            int8_changed += usize::from(ppl != reference);
        }
        // timing columns are filled
        assert!(num(r, "tok_s") > 0.0 && num(r, "ttft_ms") > 0.0);
    }
    assert!(
        int8_changed >= 3,
        "int8 must reach the output of most splits"
    );
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn tensor_parallel_systems_have_no_planner_prediction_and_are_not_failures() {
    // The planners predict a pipeline's latency and period; tensor parallelism has no planner,
    // so its predicted columns are NaN by design — not a numerical failure (the 8 TP runs of
    // systems_h2h_smollm2 were refused as failed before this was whitelisted)
    let d = tmp("systems_tp");
    let f = write(
        &d,
        "s.toml",
        "kind = \"systems\"\nseed = 3\n[devices]\nprofiles = [\"jetson-orin-nano\", \"raspberry-pi-5\"]\n\
         [system]\ngen_tokens = 2\n[sweep]\n\"system.name\" = [\"aircomp-tp\", \"digital-tp\", \"even\"]\n",
    );
    let out = d.join("out");
    let (code, _, err) = airinfer(&["run", &f, "--out", out.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 0, "{err}");
    for r in summary_rows(&out) {
        let tp = r["stages"] == "tp";
        assert!(num(&r, "ms_per_token") > 0.0);
        assert_eq!(
            num(&r, "predicted_ms_per_token").is_nan(),
            tp,
            "{}",
            r["stages"]
        );
    }
    std::fs::remove_dir_all(&d).ok();
}
