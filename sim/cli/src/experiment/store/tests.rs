use super::*;

/// Run records are read back by `merge` and on resume: every f64 must come back bit for bit.
/// serde_json parses floats exactly only with its `float_roundtrip` feature (the default fast
/// path may be one ulp off); once a dependency enabled it for us and the shards-merged test
/// failed when that dependency went.
#[test]
fn floats_survive_the_json_round_trip_bit_for_bit() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut values: Vec<f64> = vec![0.029261982377270478, 0.09243474561184509, 1e-300, 5e-324];
    values.extend((0..20_000).map(|_| {
        let m: f64 = rng.random_range(0.0..1.0);
        m * 10f64.powi(rng.random_range(-20..20))
    }));
    for v in values {
        let text = serde_json::to_string(&v).unwrap();
        let back: f64 = serde_json::from_str(&text).unwrap();
        assert_eq!(back.to_bits(), v.to_bits(), "{v:e} → {text} → {back:e}");
    }
}

fn meta() -> Meta {
    Meta {
        name: "t".into(),
        file: "t.toml".into(),
        description: String::new(),
        kind: Kind::Plan,
        experiment_hash: "h".into(),
        airinfer_version: "0".into(),
        git_commit: "c".into(),
        seed: 0,
        replications: 2,
        points: 2,
        runs: 4,
        shard: None,
        param_columns: vec!["channel.snr_db".into()],
        run_hashes: vec!["a".into(), "b".into(), "c".into(), "d".into()],
        inputs: Default::default(),
        plots: vec![],
        table: TableSpec::default(),
        started_at: String::new(),
        finished_at: None,
        merged_from: vec![],
        config: serde_json::Value::Null,
    }
}

fn rec(run: usize, hash: &str, v: f64) -> RunRecord {
    RunRecord {
        run,
        point: run / 2,
        replication: run % 2,
        seed: 7,
        hash: hash.into(),
        params: vec![("channel.snr_db".into(), format!("{}", 10 * (run / 2)))],
        rows: vec![
            Row {
                keys: vec![
                    ("assignment".into(), "sca".into()),
                    ("iteration".into(), "0".into()),
                ],
                metrics: vec![("expected_mse".into(), v)],
            },
            Row {
                keys: vec![
                    ("assignment".into(), "sca".into()),
                    ("iteration".into(), "5".into()),
                ],
                metrics: vec![("expected_mse".into(), v / 2.0)],
            },
        ],
        started_at: String::new(),
        elapsed_s: 1.0,
    }
}

#[test]
fn summary_groups_replications_per_point_and_key() {
    let m = meta();
    let recs = [rec(0, "a", 1.0), rec(1, "b", 3.0), rec(2, "c", 10.0)];
    let r = results_table(&m, recs.iter());
    assert_eq!(
        r.columns,
        [
            "run",
            "point",
            "replication",
            "seed",
            "channel.snr_db",
            "assignment",
            "iteration",
            "expected_mse"
        ]
    );
    assert_eq!(r.rows.len(), 6);
    let s = summary(&m, &r);
    assert_eq!(
        s.columns,
        [
            "point",
            "channel.snr_db",
            "assignment",
            "iteration",
            "replications",
            "expected_mse",
            "expected_mse_ci95"
        ]
    );
    assert_eq!(s.rows.len(), 4);
    // point 0, iteration 0: mean of 1 and 3, CI 12.706 · √2 / √2
    assert_eq!(s.rows[0][..5], ["0", "0", "sca", "0", "2"]);
    assert_eq!(s.rows[0][5], "2");
    let ci: f64 = s.rows[0][6].parse().unwrap();
    // t_{0.975,1} = 12.7062… (written with every digit): the table's 3 decimals, ≤ 5e-4
    // (was a bare 2e-3)
    assert!((ci - 12.706).abs() <= 5e-4 + 1e-12, "{ci}");
    assert_eq!(s.rows[1][5], "1");
    // point 1: one replication, no interval
    assert_eq!(s.rows[2][..5], ["1", "10", "sca", "0", "1"]);
    assert_eq!(s.rows[2][6], "NaN");
}

#[test]
fn stale_foreign_and_partial_run_files_are_not_results() {
    let d = std::env::temp_dir().join(format!("airinfer-store-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    let mut s = Store::open(&d, meta()).unwrap();
    s.record(rec(0, "a", 1.0)).unwrap();
    s.record(rec(1, "stale", 1.0)).unwrap();
    std::fs::write(d.join("runs/000002.json"), b"{\"run\": 2, \"poi").unwrap();
    std::fs::write(d.join("runs/000003.json.tmp-1"), b"x").unwrap();
    let again = Store::load(&d).unwrap();
    assert_eq!(again.records.keys().copied().collect::<Vec<_>>(), [0]);
    let csv = Table::read_csv(&d.join("results.csv")).unwrap();
    assert_eq!(csv.rows.len(), 4); // written while run 1 was current: both runs' rows
    assert_eq!(again.results().rows.len(), 2);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn merge_refuses_other_experiments() {
    let base = std::env::temp_dir().join(format!("airinfer-merge-{}", std::process::id()));
    std::fs::remove_dir_all(&base).ok();
    let mut a = Store::open(&base.join("a"), meta()).unwrap();
    a.record(rec(0, "a", 1.0)).unwrap();
    let mut m2 = meta();
    m2.experiment_hash = "other".into();
    Store::open(&base.join("b"), m2).unwrap();
    let e = merge(&base.join("out"), &[base.join("a"), base.join("b")], false)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("another experiment"), "{e}");
    let mut b = Store::open(&base.join("c"), meta()).unwrap();
    b.record(rec(3, "d", 2.0)).unwrap();
    let (m, missing) = merge(&base.join("out"), &[base.join("a"), base.join("c")], false).unwrap();
    assert_eq!((m.records.len(), missing), (2, 2));
    assert!(m.meta.finished_at.is_none());
    std::fs::remove_dir_all(&base).ok();
}

/// The temporary files of [`write_atomic`] in `dir`.
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect()
}

#[test]
fn a_failed_atomic_write_leaves_no_temporary_file() {
    let d = std::env::temp_dir().join(format!("airinfer-atomic-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).unwrap();
    // the rename fails: the target is a non-empty directory
    let target = d.join("results.csv");
    std::fs::create_dir_all(target.join("inside")).unwrap();
    let e = write_atomic(&target, b"x").unwrap_err();
    assert!(format!("{e:#}").contains("results.csv"), "{e:#}");
    assert_eq!(temporaries(&d), Vec::<String>::new());
    // the write fails: the temporary file cannot be written (a directory is in its place)
    let target = d.join("experiment.json");
    let tmp = d.join(format!("experiment.json.tmp-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    assert!(write_atomic(&target, b"x").is_err());
    assert!(!target.exists());
    std::fs::remove_dir_all(&tmp).unwrap();
    // and a good write leaves only its target
    write_atomic(&target, b"y").unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"y");
    assert_eq!(temporaries(&d), Vec::<String>::new());
    std::fs::remove_dir_all(&d).ok();
}
