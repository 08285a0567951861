//! Issue 18: a results directory has one writer, and its results are never stale or wrong —
//! runs are hashed with the contents of the files they read, a second writer is refused at once,
//! shards of one campaign may share a directory, another experiment's directory is not written
//! over, a numerical failure is a failed run, and a corrupted cached model is never trusted.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;
use common::*;

/// A cheap campaign: all-reduces of Gaussian vectors, SNRs × 2 schemes × `reps`.
fn allreduce_toml(name: &str, seed: u64, snrs: &[i32], reps: usize) -> String {
    format!(
        "name = \"{name}\"\nkind = \"allreduce\"\nseed = {seed}\nreplications = {reps}\n\
         [devices]\ncount = 3\n[scheme]\ndesign = \"zf_sum\"\n[allreduce]\nrealisations = 4\n\
         values = 64\n[sweep]\n\"scheme.kind\" = [\"aircomp\", \"fdma\"]\n\"channel.snr_db\" = {snrs:?}\n"
    )
}

/// Data rows of a CSV file, as maps from column to cell.
fn rows(p: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(p).unwrap();
    let mut lines = text.lines();
    let head: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    lines
        .map(|l| {
            head.iter()
                .cloned()
                .zip(l.split(',').map(String::from))
                .collect()
        })
        .collect()
}

fn one_line(err: &str) -> &str {
    let line = err.trim();
    assert_eq!(line.lines().count(), 1, "one line: {line}");
    line
}

/// Wait until `path` exists (a background writer got going), at most 30 s.
fn wait_for(path: &Path) {
    let t0 = Instant::now();
    while !path.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{path:?} never came"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait until the file at `path` holds `text`, at most 30 s.
fn wait_for_text(path: &Path, text: &str) {
    let t0 = Instant::now();
    while !std::fs::read_to_string(path).is_ok_and(|s| s.contains(text)) {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{path:?} never held {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A device profile file: one profile `mydev` with memory bandwidth `bw` (text of 7 characters,
/// so that edits keep the file's size).
fn profiles(bw: &str) -> String {
    assert_eq!(bw.len(), 7);
    format!(
        "[mydev]\ndescription = \"test device\"\npeak_flops_f32 = 5.32e12\npeak_flops_f16 = 42.5e12\n\
         peak_ops_int8 = 85.0e12\nmem_bandwidth = {bw}\nmem_capacity = 64.0e9\n\
         energy_per_flop = 1.41e-12\nmax_tx_power_dbm = 20.0\nantennas = 2\n"
    )
}

#[test]
fn an_edited_input_file_redoes_the_runs_that_read_it() {
    let d = tmp("inputs");
    write(&d, "devs.toml", &profiles("204.8e9"));
    let f = write(
        &d,
        "lat.toml",
        "kind = \"latency\"\nseed = 1\n[model]\nname = \"llama2-7b\"\n\
         [devices]\ncount = 2\nprofiles = [\"mydev\"]\nprofiles_file = \"devs.toml\"\n",
    );
    let out = d.join("out");
    let o = out.to_str().unwrap();
    let ms = || rows(&out.join("results.csv"))[0]["ms_per_token"].clone();
    let (code, _, err) = airinfer(&["run", &f, "--out", o]);
    assert_eq!(code, 0, "{err}");
    let first = ms();
    // unchanged: resumed, nothing redone
    let (code, _, err) = airinfer(&["run", &f, "--out", o]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("0 to run, 1 already finished"), "{err}");
    // the profile file edited in place, same size: the run is redone with the new numbers
    write(&d, "devs.toml", &profiles("102.4e9"));
    let (code, _, err) = airinfer(&["run", &f, "--out", o]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1 to run, 0 already finished"), "{err}");
    let second = ms();
    assert_ne!(first, second, "the new bandwidth must show");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("experiment.json")).unwrap()).unwrap();
    let inputs = meta["inputs"].as_object().unwrap();
    assert_eq!(inputs.len(), 1, "{inputs:?}");
    assert!(inputs.keys().next().unwrap().ends_with("devs.toml"));
    std::fs::remove_dir_all(&d).ok();
}

/// The cached model and text (as `scripts/test.sh` fetches them), or None.
fn cached_model() -> Option<(PathBuf, PathBuf)> {
    let home = std::env::var_os("AIRINFER_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/airinfer"));
    let m = home.join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    let t = home.join("texts/lee_background.cor");
    if m.is_file() && t.is_file() {
        return Some((m, t));
    }
    eprintln!(
        "model or text missing under {} (run scripts/test.sh)",
        home.display()
    );
    None
}

#[test]
fn an_edited_text_redoes_the_eval_run_and_changes_its_perplexity() {
    let Some((model, text)) = cached_model() else {
        return;
    };
    let d = tmp("text");
    std::os::unix::fs::symlink(&model, d.join("m.gguf")).unwrap();
    let corpus = std::fs::read_to_string(text).unwrap();
    let mine: String = corpus.chars().take(2000).collect();
    write(&d, "mytext.txt", &mine);
    let f = write(
        &d,
        "e.toml",
        "kind = \"eval\"\nseed = 5\n[model]\nname = \"m.gguf\"\n[devices]\ncount = 1\n\
         [scheme]\nkind = \"ideal\"\n[eval]\ntext = \"mytext.txt\"\nctx_tokens = 64\nchunks = 2\n\
         prompt_tokens = 4\ngen_tokens = 1\n",
    );
    let out = d.join("out");
    let o = out.to_str().unwrap();
    let ppl = || rows(&out.join("results.csv"))[0]["perplexity"].clone();
    let (code, _, err) = airinfer(&["run", &f, "--out", o]);
    assert_eq!(code, 0, "{err}");
    let first = ppl();
    // the text edited, same size: every 'e' an 'E'
    let edited = mine.replace('e', "E");
    assert_eq!(edited.len(), mine.len());
    write(&d, "mytext.txt", &edited);
    let (code, _, err) = airinfer(&["run", &f, "--out", o]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1 to run, 0 already finished"), "{err}");
    assert_ne!(first, ppl(), "the edited text must give another perplexity");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_numerical_failure_is_a_failed_run_that_resume_retries() {
    let d = tmp("nan");
    let f = write(&d, "a.toml", &allreduce_toml("a", 3, &[0, 20], 1));
    let out = d.join("out");
    let o = out.to_str().unwrap();
    let (code, _, err) = airinfer_env(&["run", &f, "--out", o], &[("AIRINFER_TEST_NAN_RUN", "1")]);
    assert_eq!(code, 1, "{err}");
    let last = err.trim().lines().last().unwrap();
    assert!(
        last.starts_with("error: ")
            && last.contains("1 of 4 runs failed")
            && last.contains("run 1 nmse = NaN")
            && last.contains("000001.failed.json"),
        "{err}"
    );
    // not a result: no run file, no row, the campaign not finished; the failure kept to look at
    assert!(!out.join("runs/000001.json").exists());
    assert!(out.join("runs/000001.failed.json").is_file());
    let runs: Vec<String> = rows(&out.join("results.csv"))
        .iter()
        .map(|r| r["run"].clone())
        .collect();
    assert_eq!(runs, ["0", "2", "3"]);
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("experiment.json")).unwrap()).unwrap();
    assert!(meta["finished_at"].is_null());
    // resume retries it (and only it)
    let (code, _, err) = airinfer(&["run", &f, "--out", o]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1 to run, 3 already finished"), "{err}");
    assert_eq!(rows(&out.join("results.csv")).len(), 4);
    assert!(!out.join("runs/000001.failed.json").exists());
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_second_writer_is_refused_at_once_naming_the_first() {
    let d = tmp("lock");
    let a = write(&d, "a.toml", &allreduce_toml("a", 3, &[0, 20], 2));
    let out = d.join("out");
    let o = out.to_str().unwrap();
    // the directory's lock held by this process
    std::fs::create_dir_all(&out).unwrap();
    {
        use std::io::Write;
        let mut l = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(out.join(".airinfer.lock"))
            .unwrap();
        l.try_lock().unwrap();
        writeln!(l, "pid 4242 (a test)").unwrap();
        let shard_dir = d.join("shard");
        let sd = shard_dir.to_str().unwrap();
        assert_eq!(airinfer(&["run", &a, "--shard", "0/2", "--out", sd]).0, 0);
        for args in [
            vec!["run", &a, "--out", o],
            vec!["run", &a, "--shard", "1/2", "--out", o],
            vec!["merge", "--out", o, sd],
        ] {
            let t0 = Instant::now();
            let (code, _, err) = airinfer(&args);
            assert_eq!(code, 1, "{args:?}: {err}");
            let line = one_line(&err);
            assert!(
                line.contains(o) && line.contains("pid 4242 (a test)"),
                "{args:?}: {line}"
            );
            assert!(t0.elapsed() < Duration::from_secs(10), "at once");
        }
        assert!(!out.join("experiment.json").exists(), "nothing written");
    }
    // two campaigns of different seeds into one directory: the second fails while the first runs
    let slow = [("AIRINFER_TEST_RUN_DELAY_MS", "300")];
    let first = spawn(&["run", &a, "--out", o, "--quiet"], &slow);
    wait_for(&out.join("experiment.json"));
    let (code, _, err) = airinfer(&["run", &a, "--out", o, "--set", "seed=4"]);
    assert_eq!(code, 1, "{err}");
    let line = one_line(&err);
    assert!(
        line.contains(&format!("pid {} (airinfer run {a})", first.id())),
        "{line}"
    );
    // plot writes figures into the directory: a writer too
    let (code, _, err) = airinfer(&["plot", o]);
    assert_eq!(code, 1, "{err}");
    assert!(
        one_line(&err).contains(&format!("pid {}", first.id())),
        "{err}"
    );
    let r = result(first.wait_with_output().unwrap());
    assert_eq!(r.0, 0, "{}", r.2);
    let seeds: std::collections::BTreeSet<String> = rows(&out.join("results.csv"))
        .iter()
        .map(|r| r["seed"].clone())
        .collect();
    assert_eq!(
        seeds.len(),
        2,
        "the first campaign's two replications only: {seeds:?}"
    );
    // once it is done the directory is free again (a resume)
    let (code, _, err) = airinfer(&["run", &a, "--out", o]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("0 to run, 8 already finished"), "{err}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn shards_of_one_campaign_may_run_into_one_directory_together() {
    let d = tmp("shards");
    // 5 SNRs × 2 schemes × 4 replications = 40 runs
    let a = write(
        &d,
        "a.toml",
        &allreduce_toml("a", 3, &[0, 5, 10, 15, 20], 4),
    );
    let out = d.join("out");
    let o = out.to_str().unwrap();
    let slow = [("AIRINFER_TEST_RUN_DELAY_MS", "100")];
    let s0 = spawn(&["run", &a, "--shard", "0/2", "--out", o, "--quiet"], &slow);
    let s1 = spawn(&["run", &a, "--shard", "1/2", "--out", o, "--quiet"], &slow);
    for (i, c) in [(0, &s0), (1, &s1)] {
        wait_for_text(
            &out.join(format!(".airinfer.lock.shard-{i}-of-2")),
            &format!("pid {}", c.id()),
        );
    }
    wait_for(&out.join("experiment.json"));
    // meanwhile: the same shard again, and shards of another seed, are refused
    let (code, _, err) = airinfer(&["run", &a, "--shard", "0/2", "--out", o]);
    assert_eq!(code, 1, "{err}");
    assert!(
        one_line(&err).contains(&format!("pid {}", s0.id())),
        "{err}"
    );
    // (another configuration's shard: 0/3 takes a lock of its own, then finds shards running)
    let (code, _, err) = airinfer(&["run", &a, "--shard", "0/3", "--out", o, "--set", "seed=9"]);
    assert_eq!(code, 1, "{err}");
    assert!(one_line(&err).contains("another configuration"), "{err}");
    for c in [s0, s1] {
        let r = result(c.wait_with_output().unwrap());
        assert_eq!(r.0, 0, "{}", r.2);
    }
    let got = rows(&out.join("results.csv"));
    assert_eq!(got.len(), 40, "every run of both shards");
    let mut runs: Vec<usize> = got.iter().map(|r| r["run"].parse().unwrap()).collect();
    runs.sort();
    assert_eq!(runs, (0..40).collect::<Vec<_>>());
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("experiment.json")).unwrap()).unwrap();
    assert!(
        meta["finished_at"].is_string() && meta["shard"].is_null(),
        "{meta}"
    );
    // and the directory equals the unsharded campaign's
    let whole = d.join("whole");
    let (code, _, err) = airinfer(&["run", &a, "--out", whole.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_to_string(out.join("results.csv")).unwrap(),
        std::fs::read_to_string(whole.join("results.csv")).unwrap()
    );
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn another_experiments_directory_is_refused_unless_forced() {
    let d = tmp("owner");
    let a = write(&d, "a.toml", &allreduce_toml("a", 3, &[0], 1));
    let b = write(&d, "b.toml", &allreduce_toml("b", 3, &[0], 1));
    let out = d.join("out");
    let o = out.to_str().unwrap();
    assert_eq!(airinfer(&["run", &a, "--out", o]).0, 0);
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("experiment.json")).unwrap()).unwrap();
    let hash = meta["experiment_hash"].as_str().unwrap()[..12].to_string();
    // another experiment: refused, by run and by merge
    let sa = d.join("sa");
    assert_eq!(
        airinfer(&["run", &b, "--shard", "0/1", "--out", sa.to_str().unwrap()]).0,
        0
    );
    for args in [
        vec!["run", &b, "--out", o],
        vec!["merge", "--out", o, sa.to_str().unwrap()],
    ] {
        let (code, _, err) = airinfer(&args);
        assert_eq!(code, 1, "{args:?}: {err}");
        let line = one_line(&err);
        assert!(
            line.contains(o)
                && line.contains("experiment 'a'")
                && line.contains(&hash)
                && line.contains("--force"),
            "{line}"
        );
    }
    let kept = std::fs::read_to_string(out.join("experiment.json")).unwrap();
    assert!(kept.contains("\"name\": \"a\""), "untouched");
    // the same experiment, edited: a resume that redoes the changed runs
    let a2 = write(&d, "a.toml", &allreduce_toml("a", 4, &[0], 1));
    let (code, _, err) = airinfer(&["run", &a2, "--out", o]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("2 to run, 0 already finished"), "{err}");
    // forced
    let (code, _, err) = airinfer(&["run", &b, "--out", o, "--force"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = airinfer(&["merge", "--out", o, sa.to_str().unwrap()]);
    assert_eq!(code, 0, "now b's own: {err}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_corrupted_cached_model_is_never_trusted() {
    let Some((model, _)) = cached_model() else {
        return;
    };
    let home = tmp("home");
    std::fs::create_dir_all(home.join("models")).unwrap();
    let m = home.join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    std::fs::copy(&model, &m).unwrap();
    let h = home.to_str().unwrap();
    // no network: fetching again fails fast (a refused port, no pip on PATH)
    let env = [
        ("AIRINFER_HOME", h),
        ("HF_ENDPOINT", "http://127.0.0.1:9"),
        ("PATH", "/nonexistent"),
    ];
    let (code, out, err) = airinfer_env(&["fetch", "smollm2-135m"], &env);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), m.display().to_string());
    assert!(home
        .join("models/.SmolLM2-135M-Instruct.Q4_1.gguf.verified")
        .is_file());
    let flip = |keep_mtime: bool| {
        let t = std::fs::metadata(&m).unwrap().modified().unwrap();
        let mut b = std::fs::read(&m).unwrap();
        let i = b.len() / 2;
        b[i] ^= 0xff;
        std::fs::write(&m, &b).unwrap();
        let f = std::fs::File::options().write(true).open(&m).unwrap();
        f.set_modified(if keep_mtime {
            t
        } else {
            t + Duration::from_secs(3)
        })
        .unwrap();
    };
    // corrupted in place (same size, later mtime): verified again, refused, not fetchable here
    flip(false);
    let (code, out, err) = airinfer_env(&["fetch", "smollm2-135m"], &env);
    assert_eq!(code, 1, "{out} {err}");
    assert!(err.contains("expected b179c952"), "{err}");
    assert!(one_line(err.lines().last().unwrap()).starts_with("error: could not fetch"));
    assert!(!m.exists(), "the corrupted file is gone");
    // corrupted with its mtime put back: `fetch --verify` hashes it anyway
    std::fs::copy(&model, &m).unwrap();
    assert_eq!(airinfer_env(&["fetch", "smollm2-135m"], &env).0, 0);
    let (code, out, err) = airinfer_env(&["fetch", "--verify"], &env);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("{}: ok", m.display())), "{out}");
    flip(true);
    let (code, _, err) = airinfer_env(&["fetch", "--verify"], &env);
    assert_eq!(code, 1, "{err}");
    let line = one_line(&err);
    assert!(
        line.contains(&m.display().to_string()) && line.contains("corrupted"),
        "{line}"
    );
    assert!(!m.exists());
    std::fs::remove_dir_all(&home).ok();
}
