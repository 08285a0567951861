//! The results directory of a campaign:
//!
//! ```text
//! experiment.json   metadata: resolved config and its hash, airinfer version, git commit, seed,
//!                   start/end time, columns, plots, one hash per run
//! runs/NNNNNN.json  one file per finished run (its rows, parameters, seed, hash, wall time)
//! runs/NNNNNN.failed.json  a run that failed numerically (not a result; redone on resume)
//! .airinfer.lock    the writer's lock (PID and command inside); shards sharing the directory
//!                   hold .airinfer.lock.shard-I-of-N each, and .airinfer.lock.meta in turns
//! results.csv       one row per (run, metric set): run, point, replication, seed, swept keys,
//!                   keys, metrics — sorted by run
//! summary.csv       per (point, keys): replications, and for every metric its mean and the
//!                   half-width of the 95 % confidence interval over replications
//! ```
//! Every file is written to a temporary name and renamed, so an interrupted campaign leaves
//! complete files only; the run files are the record, the CSVs are views rebuilt from them after
//! every run. A run is done when its file exists with the run's current hash (configuration and
//! the contents of the files it reads): re-running resumes, and runs whose configuration or
//! inputs changed are redone. One process writes a directory at a time ([`lock_dir`]), except
//! the shards of one campaign, which share it.

use super::kinds::Row;
use super::spec::{Kind, PlotSpec, TableSpec};
use super::stats::summarise;
use super::{format_f64, RUN_COLUMNS};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `experiment.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    /// Experiment name.
    pub name: String,
    /// The experiment file as given.
    pub file: String,
    /// Its description.
    pub description: String,
    /// What runs compute.
    pub kind: Kind,
    /// SHA-256 of the resolved configuration (extends merged; sweep and plots included).
    pub experiment_hash: String,
    /// airinfer version.
    pub airinfer_version: String,
    /// Git commit airinfer was built from (`-dirty` with uncommitted changes).
    pub git_commit: String,
    /// Campaign seed.
    pub seed: u64,
    /// Replications per point.
    pub replications: usize,
    /// Sweep points.
    pub points: usize,
    /// Runs (points × replications).
    pub runs: usize,
    /// This directory holds runs ≡ I (mod N) only.
    pub shard: Option<(usize, usize)>,
    /// Swept keys (tables flattened), the parameter columns.
    pub param_columns: Vec<String>,
    /// The hash of every run, by index.
    pub run_hashes: Vec<String>,
    /// The files the runs read and the SHA-256 of their contents (covered by the hashes).
    #[serde(default)]
    pub inputs: BTreeMap<String, String>,
    /// Figures.
    pub plots: Vec<PlotSpec>,
    /// The final table.
    pub table: TableSpec,
    /// When the campaign (this invocation) started, RFC 3339 UTC.
    pub started_at: String,
    /// When it ended (absent while running or after an interruption).
    pub finished_at: Option<String>,
    /// Shard directories this one was merged from.
    #[serde(default)]
    pub merged_from: Vec<String>,
    /// The resolved configuration.
    pub config: serde_json::Value,
}

/// `runs/NNNNNN.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    /// Run index.
    pub run: usize,
    /// Point index.
    pub point: usize,
    /// Replication.
    pub replication: usize,
    /// Root seed of its random streams.
    pub seed: u64,
    /// Hash of its configuration.
    pub hash: String,
    /// Swept keys and values.
    pub params: Vec<(String, String)>,
    /// Its rows.
    pub rows: Vec<Row>,
    /// Start, RFC 3339 UTC.
    pub started_at: String,
    /// Wall-clock seconds.
    pub elapsed_s: f64,
}

/// A table of text cells (a CSV in memory).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    /// Header.
    pub columns: Vec<String>,
    /// Rows, each as long as the header.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Index of column `name`.
    pub fn col(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// Write as CSV to `path` (atomically).
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&self.columns)?;
        for r in &self.rows {
            w.write_record(r)?;
        }
        let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
        write_atomic(path, &bytes)
    }

    /// Read a CSV written by [`Table::write_csv`].
    pub fn read_csv(path: &Path) -> Result<Table> {
        let mut r =
            csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
        let columns: Vec<String> = r.headers()?.iter().map(String::from).collect();
        let mut rows = Vec::new();
        for (i, rec) in r.records().enumerate() {
            let rec = rec.with_context(|| format!("{}: row {}", path.display(), i + 2))?;
            if rec.len() != columns.len() {
                bail!(
                    "{}: row {} has {} cells for {} columns",
                    path.display(),
                    i + 2,
                    rec.len(),
                    columns.len()
                );
            }
            rows.push(rec.iter().map(String::from).collect());
        }
        Ok(Table { columns, rows })
    }
}

/// Write `bytes` to `path` through a temporary file, synced and renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp-{}",
        path.extension().and_then(|e| e.to_str()).unwrap_or(""),
        std::process::id()
    ));
    let r = (|| {
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .with_context(|| format!("writing {}", tmp.display()))?;
        drop(f);
        std::fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    })();
    if r.is_err() {
        // no temporary file outlives a failed write (a partial one, or one that could not be
        // renamed into place)
        std::fs::remove_file(&tmp).ok();
    }
    r
}

/// The time now, RFC 3339 UTC to the second.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Refuse to write the campaign `meta` into `dir` when it holds another experiment (another
/// name) unless `force`, or when shards of another configuration are running there.
fn check_owner(dir: &Path, meta: &Meta, force: bool, own_lock: Option<&Path>) -> Result<()> {
    let path = dir.join("experiment.json");
    let Ok(bytes) = std::fs::read(&path) else {
        return Ok(());
    };
    let Ok(old) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Ok(()); // a torn file of an older version: rewritten below
    };
    let name = old.get("name").and_then(|v| v.as_str()).unwrap_or("");
    let hash = old
        .get("experiment_hash")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let short = &hash[..12.min(hash.len())];
    if !force && !name.is_empty() && name != meta.name {
        bail!(
            "{}: holds the results of experiment '{name}' (hash {short}), not of '{}': write \
             elsewhere with --out, or pass --force to write over them",
            dir.display(),
            meta.name
        );
    }
    if meta.shard.is_some() && hash != meta.experiment_hash {
        let others = running_shards(dir, own_lock);
        if !others.is_empty() {
            bail!(
                "{}: shards of another configuration of '{name}' (hash {short}) are running into \
                 it ({}); wait for them to finish, or write elsewhere with --out",
                dir.display(),
                others.join(", ")
            );
        }
    }
    Ok(())
}

/// A results directory.
pub struct Store {
    /// The directory.
    pub dir: PathBuf,
    /// Its metadata.
    pub meta: Meta,
    /// Finished runs (current hashes only), by index.
    pub records: BTreeMap<usize, RunRecord>,
    /// The lock held while writing (None: opened for reading).
    lock: Option<DirLock>,
    /// Run files of other shards looked at, with their modification time.
    seen: BTreeMap<PathBuf, Option<std::time::SystemTime>>,
}

fn run_file(dir: &Path, run: usize) -> PathBuf {
    dir.join("runs").join(format!("{run:06}.json"))
}

/// The record of a run that failed (kept for inspection; not a result, and the run is redone).
pub fn failed_file(dir: &Path, run: usize) -> PathBuf {
    dir.join("runs").join(format!("{run:06}.failed.json"))
}

/// Finished runs in `dir/runs` whose hash matches `hashes` (others are stale or foreign).
fn load_records(dir: &Path, hashes: &[String]) -> Result<BTreeMap<usize, RunRecord>> {
    let mut out = BTreeMap::new();
    let runs = dir.join("runs");
    let Ok(entries) = std::fs::read_dir(&runs) else {
        return Ok(out);
    };
    for e in entries {
        let p = e?.path();
        if p.extension().and_then(|x| x.to_str()) != Some("json") {
            continue; // temporary files of an interrupted write
        }
        let Ok(bytes) = std::fs::read(&p) else {
            continue;
        };
        let Ok(rec) = serde_json::from_slice::<RunRecord>(&bytes) else {
            continue;
        };
        if hashes.get(rec.run) == Some(&rec.hash) && p == run_file(dir, rec.run) {
            out.insert(rec.run, rec);
        }
    }
    Ok(out)
}

impl Store {
    /// Open (create) `dir` for a campaign described by `meta`, keeping finished runs whose hash
    /// still matches ([`Store::open_as`] without `--force`).
    pub fn open(dir: &Path, meta: Meta) -> Result<Store> {
        Store::open_as(dir, meta, false, "airinfer")
    }

    /// Open (create) `dir` for writing the campaign `meta` (its shard `meta.shard`, if any): take
    /// its lock for as long as the store lives ([`lock_dir`]; `what` names this writer), refuse a
    /// directory holding another experiment unless `force`, keep finished runs whose hash still
    /// matches and write the metadata.
    pub fn open_as(dir: &Path, meta: Meta, force: bool, what: &str) -> Result<Store> {
        std::fs::create_dir_all(dir.join("runs"))
            .with_context(|| format!("creating results directory {}", dir.display()))?;
        let lock = lock_dir(dir, meta.shard, what)?;
        let own = meta.shard.map(|(i, n)| shard_lock(dir, i, n));
        let records = with_meta_lock(dir, || {
            check_owner(dir, &meta, force, own.as_deref())?;
            let records = load_records(dir, &meta.run_hashes)?;
            write_atomic(
                &dir.join("experiment.json"),
                &serde_json::to_vec_pretty(&meta)?,
            )?;
            Ok(records)
        })?;
        Ok(Store {
            dir: dir.to_path_buf(),
            meta,
            records,
            lock: Some(lock),
            seen: BTreeMap::new(),
        })
    }

    /// Whether this store holds its directory's lock (opened for writing).
    pub fn is_locked(&self) -> bool {
        self.lock.is_some()
    }

    /// A shard's view of the directory: the runs other shards finished there meanwhile.
    fn refresh(&mut self) -> Result<()> {
        if self.meta.shard.is_none() {
            return Ok(()); // the only writer: the records are the directory's
        }
        let Ok(entries) = std::fs::read_dir(self.dir.join("runs")) else {
            return Ok(());
        };
        for e in entries {
            let p = e?.path();
            let Some(run) = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
                .filter(|n| n.len() == 6)
                .and_then(|n| n.parse::<usize>().ok())
            else {
                continue;
            };
            if self.records.contains_key(&run) {
                continue;
            }
            let mtime = std::fs::metadata(&p).ok().and_then(|m| m.modified().ok());
            if self.seen.get(&p) == Some(&mtime) {
                continue;
            }
            self.seen.insert(p.clone(), mtime);
            let Ok(rec) = std::fs::read(&p)
                .map_err(anyhow::Error::from)
                .and_then(|b| Ok(serde_json::from_slice::<RunRecord>(&b)?))
            else {
                continue;
            };
            if rec.run == run && self.meta.run_hashes.get(run) == Some(&rec.hash) {
                self.records.insert(run, rec);
            }
        }
        Ok(())
    }

    /// Load an existing results directory.
    pub fn load(dir: &Path) -> Result<Store> {
        let path = dir.join("experiment.json");
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "{}: not a results directory (no experiment.json)",
                dir.display()
            )
        })?;
        let meta: Meta = serde_json::from_slice(&bytes)
            .with_context(|| format!("reading {}", path.display()))?;
        let records = load_records(dir, &meta.run_hashes)?;
        Ok(Store {
            dir: dir.to_path_buf(),
            meta,
            records,
            lock: None,
            seen: BTreeMap::new(),
        })
    }

    fn write_meta(&self) -> Result<()> {
        write_atomic(
            &self.dir.join("experiment.json"),
            &serde_json::to_vec_pretty(&self.meta)?,
        )
    }

    /// Whether run `i` is finished (with its current configuration).
    pub fn done(&self, i: usize) -> bool {
        self.records.contains_key(&i)
    }

    /// Record a finished run: its file, then the CSV views.
    pub fn record(&mut self, rec: RunRecord) -> Result<()> {
        self.record_with(rec, &mut |_| {})
    }

    /// [`Store::record`], calling `at` after each durable step (the run's JSON written, then the
    /// CSV views): the crash points of [`crash_point`].
    pub fn record_with(&mut self, rec: RunRecord, at: &mut dyn FnMut(CrashStage)) -> Result<()> {
        write_atomic(
            &run_file(&self.dir, rec.run),
            &serde_json::to_vec_pretty(&rec)?,
        )?;
        std::fs::remove_file(failed_file(&self.dir, rec.run)).ok();
        self.records.insert(rec.run, rec);
        at(CrashStage::Json);
        self.write_views()?;
        at(CrashStage::Views);
        Ok(())
    }

    /// Record a run that failed (`reason`) as `runs/NNNNNN.failed.json`: not a finished run,
    /// so it is left out of the views and redone on resume. Returns the file.
    pub fn record_failed(&mut self, rec: &RunRecord, reason: &str) -> Result<PathBuf> {
        let path = failed_file(&self.dir, rec.run);
        let v = serde_json::json!({ "failed": reason, "record": rec });
        write_atomic(&path, &serde_json::to_vec_pretty(&v)?)?;
        // a finished record of an older configuration must not stand in for it either
        if self.records.remove(&rec.run).is_some() {
            std::fs::remove_file(run_file(&self.dir, rec.run)).ok();
            self.write_views()?;
        }
        Ok(path)
    }

    /// Mark the campaign finished (a directory that shards filled together becomes the whole
    /// campaign's once every run is in).
    pub fn finish(&mut self) -> Result<()> {
        let dir = self.dir.clone();
        with_meta_lock(&dir, || {
            self.refresh()?;
            if self.records.len() == self.meta.runs {
                self.meta.shard = None;
            }
            self.meta.finished_at = Some(now_rfc3339());
            self.write_meta()
        })
    }

    /// `results.csv` as a table.
    pub fn results(&self) -> Table {
        results_table(&self.meta, self.records.values())
    }

    /// Rewrite results.csv and summary.csv: from every finished run in the directory (a
    /// shard's and the other shards' writing into it too), one writer at a time.
    pub fn write_views(&mut self) -> Result<()> {
        let dir = self.dir.clone();
        with_meta_lock(&dir, || {
            self.refresh()?;
            let r = self.results();
            r.write_csv(&self.dir.join("results.csv"))?;
            summary(&self.meta, &r).write_csv(&self.dir.join("summary.csv"))
        })
    }
}

/// Where a campaign may be made to die, for the resume tests: after a run's JSON is written but
/// before the CSV views are (the views then lag the records), or after both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashStage {
    /// The run's JSON is on disk, results.csv and summary.csv not yet rewritten.
    Json,
    /// JSON and views written.
    Views,
}

/// The test hook `AIRINFER_TEST_ABORT_AFTER=N[:json]`: abort the process (SIGABRT: no destructors,
/// no cleanup, like SIGKILL) right after the N-th run this process records, at the stage given
/// (`:json`, or after the views by default). A deterministic stop point for the
/// interrupted-campaign tests, instead of racing a kill against wall time. None when unset; an
/// error names the variable when malformed.
pub fn crash_point() -> Result<Option<(usize, CrashStage)>> {
    const VAR: &str = "AIRINFER_TEST_ABORT_AFTER";
    let Ok(v) = std::env::var(VAR) else {
        return Ok(None);
    };
    let (n, stage) = match v.split_once(':') {
        Some((n, "json")) => (n, CrashStage::Json),
        Some((n, "views")) => (n, CrashStage::Views),
        Some(_) => anyhow::bail!("{VAR}={v}: expected N, N:json or N:views"),
        None => (v.as_str(), CrashStage::Views),
    };
    let n: usize = n
        .parse()
        .ok()
        .filter(|&n| n >= 1)
        .with_context(|| format!("{VAR}={v}: N must be a whole number ≥ 1"))?;
    Ok(Some((n, stage)))
}

fn push_unique(v: &mut Vec<String>, s: &str) {
    if !v.iter().any(|x| x == s) {
        v.push(s.to_string());
    }
}

/// The results table of `records` (sorted by run).
pub fn results_table<'a>(meta: &Meta, records: impl Iterator<Item = &'a RunRecord>) -> Table {
    let records: Vec<&RunRecord> = records.collect();
    let mut keys = Vec::new();
    let mut metrics = Vec::new();
    for r in &records {
        for row in &r.rows {
            for (k, _) in &row.keys {
                push_unique(&mut keys, k);
            }
            for (m, _) in &row.metrics {
                push_unique(&mut metrics, m);
            }
        }
    }
    let mut columns: Vec<String> = RUN_COLUMNS.iter().map(|s| s.to_string()).collect();
    columns.extend(meta.param_columns.iter().cloned());
    columns.extend(keys.iter().cloned());
    columns.extend(metrics.iter().cloned());
    let mut rows = Vec::new();
    for r in records {
        for row in &r.rows {
            let mut cells = vec![
                r.run.to_string(),
                r.point.to_string(),
                r.replication.to_string(),
                r.seed.to_string(),
            ];
            for p in &meta.param_columns {
                cells.push(
                    r.params
                        .iter()
                        .find(|(k, _)| k == p)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default(),
                );
            }
            for k in &keys {
                cells.push(
                    row.keys
                        .iter()
                        .find(|(x, _)| x == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default(),
                );
            }
            for m in &metrics {
                cells.push(
                    row.metrics
                        .iter()
                        .find(|(x, _)| x == m)
                        .map_or(String::new(), |(_, v)| format_f64(*v)),
                );
            }
            rows.push(cells);
        }
    }
    Table { columns, rows }
}

/// Which columns of a results table are keys of a kind's rows (the rest after the parameters are
/// metrics).
fn is_key_column(kind: Kind, c: &str) -> bool {
    super::kinds::columns(kind).0.contains(&c)
}

/// The summary of a results table: one row per (point, keys) with the number of replications
/// and each metric's mean and 95 % CI half-width (`<metric>_ci95`).
pub fn summary(meta: &Meta, results: &Table) -> Table {
    let param_idx: Vec<usize> = meta
        .param_columns
        .iter()
        .filter_map(|c| results.col(c))
        .collect();
    let skip = RUN_COLUMNS.len() + param_idx.len();
    let key_idx: Vec<usize> = (skip..results.columns.len())
        .filter(|&i| is_key_column(meta.kind, &results.columns[i]))
        .collect();
    let metric_idx: Vec<usize> = (skip..results.columns.len())
        .filter(|i| !key_idx.contains(i))
        .collect();
    let point = results.col("point");
    // groups in order of first appearance
    let mut order: Vec<(String, Vec<String>)> = Vec::new();
    let mut groups: BTreeMap<(String, Vec<String>), Vec<usize>> = BTreeMap::new();
    for (ri, row) in results.rows.iter().enumerate() {
        let p = point.map_or(String::new(), |i| row[i].clone());
        let k: Vec<String> = key_idx.iter().map(|&i| row[i].clone()).collect();
        let g = groups.entry((p.clone(), k.clone())).or_default();
        if g.is_empty() {
            order.push((p, k));
        }
        g.push(ri);
    }
    let mut columns = vec!["point".to_string()];
    columns.extend(param_idx.iter().map(|&i| results.columns[i].clone()));
    columns.extend(key_idx.iter().map(|&i| results.columns[i].clone()));
    columns.push("replications".into());
    for &m in &metric_idx {
        columns.push(results.columns[m].clone());
        columns.push(format!("{}_ci95", results.columns[m]));
    }
    let mut rows = Vec::new();
    for key in order {
        let members = &groups[&key];
        let first = &results.rows[members[0]];
        let mut cells = vec![key.0.clone()];
        cells.extend(param_idx.iter().map(|&i| first[i].clone()));
        cells.extend(key.1.iter().cloned());
        cells.push(members.len().to_string());
        for &m in &metric_idx {
            let vals: Vec<f64> = members
                .iter()
                .filter_map(|&r| results.rows[r][m].parse::<f64>().ok())
                .collect();
            let s = summarise(&vals);
            cells.push(format_f64(s.mean));
            cells.push(format_f64(s.ci95));
        }
        rows.push(cells);
    }
    Table { columns, rows }
}

/// Join shard directories into `out`: they must come from the same experiment (same hash);
/// every run found is copied; the views, metadata and figures are rebuilt. Returns the store and
/// the number of runs still missing.
pub fn merge(out: &Path, dirs: &[PathBuf], force: bool) -> Result<(Store, usize)> {
    if dirs.is_empty() {
        bail!("merge: name at least one results directory");
    }
    let shards: Vec<Store> = dirs.iter().map(|d| Store::load(d)).collect::<Result<_>>()?;
    let first = &shards[0].meta;
    for (s, d) in shards.iter().zip(dirs) {
        if s.meta.experiment_hash != first.experiment_hash || s.meta.run_hashes != first.run_hashes
        {
            bail!(
                "merge: {} holds another experiment than {} (experiment hash {} vs {}): re-run the shards with the same file",
                d.display(),
                dirs[0].display(),
                &s.meta.experiment_hash[..12.min(s.meta.experiment_hash.len())],
                &first.experiment_hash[..12.min(first.experiment_hash.len())]
            );
        }
    }
    let mut meta = first.clone();
    meta.shard = None;
    meta.merged_from = dirs.iter().map(|d| d.display().to_string()).collect();
    meta.started_at = shards
        .iter()
        .map(|s| s.meta.started_at.clone())
        .min()
        .unwrap_or_default();
    meta.finished_at = None;
    let mut store = Store::open_as(out, meta, force, "airinfer merge")?;
    for s in &shards {
        for rec in s.records.values() {
            if !store.done(rec.run) {
                write_atomic(&run_file(out, rec.run), &serde_json::to_vec_pretty(rec)?)?;
                store.records.insert(rec.run, rec.clone());
            }
        }
    }
    store.write_views()?;
    let missing = store.meta.runs - store.records.len();
    if missing == 0 {
        store.finish()?;
    }
    Ok((store, missing))
}

mod lock;
pub use lock::{lock_dir, shard_lock, DirLock, LOCK};
use lock::{running_shards, with_meta_lock};

#[cfg(test)]
mod tests;
