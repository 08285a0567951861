//! Property-based reliability suite (issue 18, item 5): generated experiment files, valid and
//! invalid, through the real binary. For every file, `airinfer check` either refuses it with one
//! located line and exit 1, or accepts it; an accepted file then runs to completion (exit 0,
//! one results row per run `check` counted) within the memory `check` estimated and a time
//! limit. Never a panic, an abort, a kill or a second line. Out-of-range values (SNRs past
//! ±300 dB, huge sweeps, waveform buffers, replications) are in the strategies on purpose.

use proptest::prelude::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Exit code, stdout, stderr and peak resident memory (KiB) of the binary on `args`, killed
/// after `limit`.
fn run(args: &[&str], limit: Duration) -> (i32, String, String, u64) {
    let dir = std::env::temp_dir().join(format!("airinfer-props-io-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (o, e) = (dir.join("out"), dir.join("err"));
    // reaped by wait4 below (which also reports the peak RSS), not by Child::wait
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_airinfer"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .spawn()
        .expect("spawn airinfer");
    let pid = child.id() as libc::pid_t;
    let start = Instant::now();
    let (mut status, mut ru): (libc::c_int, libc::rusage) = (0, unsafe { std::mem::zeroed() });
    loop {
        // SAFETY: waiting on our own child with valid out-pointers
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        assert!(r >= 0, "wait4 failed");
        if r == pid {
            break;
        }
        if start.elapsed() > limit {
            // SAFETY: our child, still running
            unsafe { libc::kill(pid, libc::SIGKILL) };
            unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
            panic!("{args:?}: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -libc::WTERMSIG(status)
    };
    (
        code,
        std::fs::read_to_string(&o).unwrap_or_default(),
        std::fs::read_to_string(&e).unwrap_or_default(),
        ru.ru_maxrss as u64,
    )
}

/// One optional `key = value` line.
fn opt(key: &'static str, v: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    prop::option::weighted(0.6, v)
        .prop_map(move |v| v.map_or(String::new(), |v| format!("{key} = {v}\n")))
}

fn snr() -> impl Strategy<Value = String> {
    prop_oneof![
        16 => (-40.0f64..60.0).prop_map(|x| format!("{x:.1}")),
        1 => prop_oneof![Just("3100".to_string()), Just("-1e308".to_string()), Just("nan".to_string()), Just("inf".to_string()), Just("\"x\"".to_string())],
    ]
}

/// An experiment file: mostly all-reduce campaigns small enough to run, with a share of bad
/// or enormous values.
fn experiment() -> impl Strategy<Value = String> {
    let top = (
        prop_oneof![16 => Just("allreduce"), 2 => Just("latency"), 1 => Just("bogus")],
        opt(
            "seed",
            prop_oneof![12 => (0u64..1000).prop_map(|s| s.to_string()), 2 => Just("\"18446744073709551615\"".into()), 1 => Just("-3".into())],
        ),
        opt(
            "replications",
            prop_oneof![12 => (1usize..4).prop_map(|r| r.to_string()), 1 => Just("0".into()), 1 => Just("1000000000".into())],
        ),
    );
    let devices = (
        opt(
            "count",
            prop_oneof![12 => (1i64..9).prop_map(|k| k.to_string()), 1 => (-1i64..1).prop_map(|k| k.to_string())],
        ),
        opt(
            "rx_antennas",
            prop_oneof![12 => (1usize..6).prop_map(|n| n.to_string()), 1 => Just("0".to_string())],
        ),
        opt("snr_db", snr()),
    );
    let scheme = (
        opt("kind", prop_oneof![4 => Just("\"aircomp\""), 2 => Just("\"digital\""), 2 => Just("\"fdma\""), 1 => Just("\"ring\""), 1 => Just("\"ideal\""), 1 => Just("\"air\"")].prop_map(str::to_string)),
        opt("design", prop_oneof![4 => Just("\"zf\""), 2 => Just("\"zf_sum\""), 2 => Just("\"mmse\""), 2 => Just("\"sca\""), 1 => Just("\"fast\""), 1 => Just("3")].prop_map(str::to_string)),
    );
    let work = (
        opt(
            "realisations",
            prop_oneof![12 => (0usize..12).prop_map(|n| n.to_string()), 1 => Just("100000000000".into())],
        ),
        opt(
            "values",
            prop_oneof![12 => (0usize..2000).prop_map(|n| n.to_string()), 1 => Just("1000000000000".into())],
        ),
    );
    let waveform = prop::option::weighted(
        0.25,
        (
            opt("n_fft", prop_oneof![6 => Just("64"), 3 => Just("16"), 1 => Just("0"), 1 => Just("1073741824")].prop_map(str::to_string)),
            prop::option::of(prop_oneof![4 => Just("0"), 4 => Just("2.5"), 1 => Just("-4"), 1 => Just("1e9")].prop_map(str::to_string)),
        ),
    );
    let sweep = prop::option::weighted(
        0.4,
        prop_oneof![
            8 => prop::collection::vec(-10i32..40, 1..4).prop_map(|v| format!("\"channel.snr_db\" = {v:?}\n")),
            1 => Just("\"channel.snr_db\" = { from = 0, to = 1e6, step = 1e-3 }\n".to_string()),
            1 => Just("\"devices.count\" = [2, 4]\n\"channel.snr_db\" = { from = 0, to = 100000, step = 1 }\n\"allreduce.realisations\" = { from = 1, to = 100000, step = 1 }\n".to_string()),
        ],
    );
    (top, devices, scheme, work, waveform, sweep).prop_map(
        |((kind, seed, reps), (count, nr, snr), (sk, design), (real, values), wf, sweep)| {
            let mut s = format!("kind = \"{kind}\"\n{seed}{reps}");
            s += &format!("[devices]\n{count}[channel]\n{}{}", nr, snr);
            s += &format!("[scheme]\n{sk}{design}[allreduce]\n{real}{values}");
            if let Some((nfft, offset)) = wf {
                s += &format!("[waveform]\nlevel = \"waveform\"\n{nfft}");
                if let Some(o) = offset {
                    s += &format!("[[waveform.impairments]]\ntiming_offset_samples = {o}\n");
                }
            }
            if let Some(sw) = sweep {
                s += &format!("[sweep]\n{sw}");
            }
            s
        },
    )
}

/// The run count and the memory estimate (bytes) `check` printed, if it printed them.
fn check_numbers(out: &str) -> (Option<usize>, Option<u64>) {
    let runs = out
        .split(" runs")
        .next()
        .and_then(|h| h.rsplit("= ").next())
        .and_then(|n| n.trim().parse().ok());
    // "  memory: about 32.2 MB at the peak (…) of … available"
    let mem = out.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("memory: about ")?;
        let mut it = rest.split_whitespace();
        let v: f64 = it.next()?.parse().ok()?;
        let scale = match it.next()? {
            "B" => 1.0,
            "kB" | "KB" => 1e3,
            "MB" => 1e6,
            "GB" => 1e9,
            "TB" => 1e12,
            "PB" => 1e15,
            "EB" => 1e18,
            "KiB" => 1024.0,
            "MiB" => 1024.0 * 1024.0,
            "GiB" => 1024.0 * 1024.0 * 1024.0,
            u => panic!("unit {u} in {l}"),
        };
        Some((v * scale) as u64)
    });
    (runs, mem)
}

fn one_line_error(what: &str, code: i32, err: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        code,
        1,
        "{}: exit {} (expected 0 or 1): {}",
        what,
        code,
        err
    );
    prop_assert!(err.starts_with("error: "), "{}: {}", what, err);
    prop_assert_eq!(err.trim_end().lines().count(), 1, "{}: {}", what, err);
    prop_assert!(!err.contains("panicked"), "{}: {}", what, err);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_experiment_file_is_refused_in_one_line_or_runs_within_its_estimate(body in experiment()) {
        let dir = std::env::temp_dir().join(format!("airinfer-props-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("gen.toml");
        std::fs::write(&f, &body).unwrap();
        let file = f.to_str().unwrap();
        let (code, out, err, _) = run(&["check", file], Duration::from_secs(20));
        if code != 0 {
            one_line_error(&format!("check of\n{body}"), code, &err)?;
            return Ok(());
        }
        let (runs, mem) = check_numbers(&out);
        let runs = runs.unwrap_or_else(|| panic!("check printed no run count: {out}"));
        let out_dir = dir.join("out");
        std::fs::remove_dir_all(&out_dir).ok();
        let (code, _, err, rss_kib) = run(
            &["run", file, "--out", out_dir.to_str().unwrap(), "--quiet"],
            Duration::from_secs(120),
        );
        prop_assert_eq!(code, 0, "run of\n{}\nfailed after check accepted it: {}", body, err);
        let csv = std::fs::read_to_string(out_dir.join("results.csv")).unwrap();
        let rows = csv.lines().count() - 1;
        prop_assert!(rows >= runs, "{} rows for {} runs:\n{}", rows, runs, body);
        let m = mem.unwrap_or_else(|| panic!("check printed no memory estimate: {out}"));
        {
            prop_assert!(rss_kib * 1024 <= m, "peak RSS {} KiB over the estimate {} B:\n{}", rss_kib, m, body);
        }
    }
}
