//! Experiments: a TOML file describes a campaign — model, text, devices, channel, scheme, what
//! each run measures (`kind`), a `[sweep]` of any keys, replications, seed and plots — and
//! `airinfer run FILE` runs it into `results/<name>/`, resumably.
//!
//! * [`source`]: files, `extends`, positions of keys (every error names file:line:column and key);
//! * [`sweep`]: cartesian products, zip groups, ranges;
//! * [`spec`]: the typed keys, units and checks;
//! * [`kinds`]: what a run computes;
//! * [`store`]: the results directory (one JSON per finished run, CSV views, metadata, merge);
//! * [`budget`]: the memory a campaign needs, estimated and checked before it starts;
//! * [`stats`], [`figures`]: summaries over replications with confidence intervals, and plots.
//!
//! Runs are numbered `point × replications + replication` (points: the sweep's cartesian
//! product, last axis fastest). Run r of every point draws its randomness from the streams of
//! (seed, r): the same channels and noise meet every point (common random numbers).

pub mod budget;
pub mod figures;
pub mod kinds;
pub mod planned;
pub mod source;
pub mod spec;
pub mod stats;
pub mod store;
pub mod sweep;

use sha2::{Digest, Sha256};
pub use source::{ExperimentError, Loc};
use spec::{Kind, Spec};
use std::path::{Path, PathBuf};
use sweep::{Setting, Sweep};

/// A TOML value as a CSV cell: strings bare, everything else in TOML syntax.
pub fn cell_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Float(f) => format_f64(*f),
        other => other.to_string(),
    }
}

/// A number as a CSV cell: the shortest text that reads back to the same f64.
pub fn format_f64(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{x}")
    }
}

/// One point of the sweep, resolved and checked.
#[derive(Debug, Clone)]
pub struct Point {
    /// Index in the cartesian product.
    pub index: usize,
    /// The sweep settings of this point.
    pub settings: Vec<Setting>,
    /// The run configuration.
    pub spec: Spec,
    /// The swept keys and their values (tables flattened to their leaves), as CSV cells.
    pub params: Vec<(String, String)>,
    /// The files its runs read (key, path, SHA-256 of the contents): part of the run hash, so
    /// an edited input redoes the runs that read it.
    pub inputs: Vec<Input>,
}

/// A file a run reads, hashed by content.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Input {
    /// The key naming it (`eval.text`, `model.name`, `devices.profiles_file`).
    pub key: String,
    /// Its path.
    pub path: PathBuf,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
}

/// SHA-256 of a file's bytes (hex), remembered for this process by (canonical path, size,
/// modification time): a campaign's points share their model and text, and a 100 MB GGUF is
/// read once, not once per point.
pub fn file_digest(path: &Path) -> anyhow::Result<String> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    type Key = (PathBuf, u64, Option<std::time::SystemTime>);
    static CACHE: OnceLock<Mutex<HashMap<Key, String>>> = OnceLock::new();
    let canon = std::fs::canonicalize(path)?;
    let md = std::fs::metadata(&canon)?;
    let key: Key = (canon.clone(), md.len(), md.modified().ok());
    let cache = CACHE.get_or_init(Default::default);
    if let Some(h) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(h.clone());
    }
    let hex = crate::assets::sha256_file(&canon)?;
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, hex.clone());
    Ok(hex)
}

/// The files a run of `spec` reads, by the key that names them (catalogue assets are not
/// files of the experiment: their names stand for pinned, verified contents).
pub fn input_files(
    spec: &Spec,
    dir: &dyn Fn(&str) -> PathBuf,
) -> Result<Vec<(String, PathBuf)>, spec::Invalid> {
    let mut out = Vec::new();
    if let Some(f) = &spec.devices.profiles_file {
        out.push((
            "devices.profiles_file".to_string(),
            spec::relative_to(&dir("devices.profiles_file"), f),
        ));
    }
    if spec.kind == Kind::Eval || (spec.kind == Kind::Systems && spec.system.perplexity) {
        if let Some(p) = spec.model_file(dir)? {
            out.push(("model.name".to_string(), p));
        }
        if let Some(p) = spec.text_file(dir)? {
            out.push(("eval.text".to_string(), p));
        }
    }
    if spec.kind == Kind::Serving {
        if let Some(p) = spec.trace_file(dir)? {
            out.push(("serving.trace".to_string(), p));
        }
    }
    Ok(out)
}

/// One run: a point and a replication.
#[derive(Debug, Clone)]
pub struct Run<'a> {
    /// `point × replications + replication`.
    pub index: usize,
    /// Its point.
    pub point: &'a Point,
    /// Replication number.
    pub replication: usize,
    /// Root seed of the run's random streams.
    pub seed: u64,
    /// Hash of everything the run's numbers depend on.
    pub hash: String,
}

/// A loaded, checked experiment.
#[derive(Debug, Clone)]
pub struct Experiment {
    /// The file.
    pub file: PathBuf,
    /// Its name (results directory).
    pub name: String,
    /// The merged document.
    pub doc: source::Doc,
    /// The sweep.
    pub sweep: Sweep,
    /// The configuration without sweep settings.
    pub base: Spec,
    /// The points.
    pub points: Vec<Point>,
    /// Parameter columns (swept keys, tables flattened), in order.
    pub param_columns: Vec<String>,
    /// Hash of the merged document (sweep, plots and all).
    pub hash: String,
}

/// SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The sweep setting of a point that sets `key` or a table holding it.
fn covering<'a>(settings: &'a [Setting], key: &str) -> Option<&'a Setting> {
    settings.iter().find(|s| {
        key.strip_prefix(s.path.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
    })
}

/// The error at `key` of a point: at the sweep entry that set it, else where the file set it.
fn locate(doc: &source::Doc, settings: &[Setting], key: &str, message: &str) -> ExperimentError {
    match covering(settings, key) {
        Some(s) => doc.error(&s.from, format!("{key} = {}: {message}", s.value)),
        None => doc.error(key, message),
    }
}

/// Deserialize a table into `T`, errors located at the offending key.
fn typed<T: serde::de::DeserializeOwned>(
    doc: &source::Doc,
    settings: &[Setting],
    table: toml::Table,
) -> Result<T, ExperimentError> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let msg = e.inner().message().trim().replace('\n', " ");
        // a missing key has no position: point at its table (or the file's first line)
        if let Some(field) = msg
            .strip_prefix("missing field `")
            .and_then(|r| r.split('`').next())
        {
            let key = if path.is_empty() {
                field.to_string()
            } else {
                format!("{path}.{field}")
            };
            return match doc.loc(&key) {
                Some(_) => locate(doc, settings, &key, &msg),
                None => ExperimentError::At {
                    loc: Loc {
                        file: doc.file.clone(),
                        line: 1,
                        col: 1,
                    },
                    key,
                    message: format!("{msg} (required)"),
                },
            };
        }
        locate(doc, settings, &path, &msg)
    })
}

/// The directory relative paths at `key` of a point are taken from.
fn dir_of(doc: &source::Doc, settings: &[Setting], key: &str) -> PathBuf {
    match covering(settings, key) {
        Some(s) => doc.base_dir(&s.from),
        None => doc.base_dir(key),
    }
}

fn flatten_param(path: &str, v: &toml::Value, out: &mut Vec<(String, String)>) {
    match v {
        toml::Value::Table(t) => {
            for (k, x) in t {
                flatten_param(&format!("{path}.{k}"), x, out);
            }
        }
        other => out.push((path.to_string(), cell_text(other))),
    }
}

fn get_path<'a>(t: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
    let mut parts = path.split('.');
    let mut v = t.get(parts.next()?)?;
    for p in parts {
        v = v.as_table()?.get(p)?;
    }
    Some(v)
}

/// Columns every results row has, before the parameters.
pub const RUN_COLUMNS: [&str; 4] = ["run", "point", "replication", "seed"];

impl Experiment {
    /// Load and check `path`: every point's configuration is built and validated (no model
    /// weights are read).
    pub fn load(path: &Path) -> Result<Experiment, ExperimentError> {
        Experiment::load_with_radio(path, None)
    }

    /// [`Experiment::load`], with every run carried at waveform level through `radio`
    /// (`emulator` or SoapySDR device arguments): `airinfer run --radio ARGS`.
    pub fn load_with_radio(
        path: &Path,
        radio: Option<&str>,
    ) -> Result<Experiment, ExperimentError> {
        Experiment::load_with(path, radio, &[])
    }

    /// [`Experiment::load_with_radio`] after `--set KEY=VALUE` overrides
    /// ([`source::apply_sets`]), checked like the file's own keys.
    pub fn load_with(
        path: &Path,
        radio: Option<&str>,
        sets: &[String],
    ) -> Result<Experiment, ExperimentError> {
        let mut doc = source::load(path)?;
        source::apply_sets(&mut doc, sets)?;
        let sweep = Sweep::parse(&doc)?;
        // a key the file sweeps takes its values from the sweep: an override would be ignored
        for arg in sets {
            let key: String = arg
                .split_once('=')
                .map_or(arg.as_str(), |(k, _)| k)
                .trim()
                .replace('"', "");
            if sweep.paths().contains(&key) {
                return Err(ExperimentError::File {
                    file: PathBuf::from(format!("--set {arg}")),
                    message: format!(
                        "{key} is swept by {}; override the sweep instead: --set 'sweep.\"{key}\"=[…]'",
                        path.display()
                    ),
                });
            }
        }
        if let Some(r) = radio {
            let sweeps_level = sweep.paths().iter().any(|p| p == "waveform.level");
            let w = doc
                .table
                .entry("waveform")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(w) = w.as_table_mut() else {
                return Err(doc.error("waveform", "must be a table"));
            };
            if !sweeps_level {
                w.insert("level".into(), toml::Value::String("waveform".into()));
            }
            w.insert("radio".into(), toml::Value::String(r.to_string()));
            let cli = source::Loc {
                file: PathBuf::from("--radio"),
                line: 1,
                col: 1,
            };
            doc.locs.insert("waveform.level".into(), cli.clone());
            doc.locs.insert("waveform.radio".into(), cli);
        }
        let mut base_table = doc.table.clone();
        base_table.remove("sweep");
        let base: Spec = typed(&doc, &[], base_table.clone())?;
        let name = match &base.name {
            Some(n) => n.clone(),
            None => path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "experiment".into()),
        };
        if name.is_empty()
            || name.starts_with('.')
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || "-_.".contains(c))
        {
            return Err(doc.error(
                "name",
                format!("'{name}': letters, digits, '-', '_' and '.' only (it names the results directory)"),
            ));
        }
        // count the runs from the axes' lengths before building a point: a huge sweep is
        // refused at once instead of exhausting memory (or overflowing the count)
        if let Err((key, m)) = sweep.runs(base.replications) {
            return Err(doc.error(key, m));
        }
        let n_points = sweep.points();
        let mut points = Vec::with_capacity(n_points);
        let mut param_columns: Vec<String> = Vec::new();
        for i in 0..n_points {
            let settings = sweep.point(i);
            let mut t = base_table.clone();
            for s in &settings {
                sweep::apply(&mut t, s).map_err(|m| doc.error(&s.from, m))?;
            }
            let spec: Spec = typed(&doc, &settings, t.clone())?;
            spec.validate(&|key| dir_of(&doc, &settings, key))
                .map_err(|(key, msg)| locate(&doc, &settings, &key, &msg))?;
            let mut inputs = Vec::new();
            for (key, path) in input_files(&spec, &|key| dir_of(&doc, &settings, key))
                .map_err(|(key, msg)| locate(&doc, &settings, &key, &msg))?
            {
                let sha256 = file_digest(&path).map_err(|e| {
                    locate(
                        &doc,
                        &settings,
                        &key,
                        &format!("cannot read '{}': {e:#}", path.display()),
                    )
                })?;
                inputs.push(Input { key, path, sha256 });
            }
            let mut params = Vec::new();
            for p in sweep.paths() {
                if let Some(v) = get_path(&t, &p) {
                    flatten_param(&p, v, &mut params);
                }
            }
            for (c, _) in &params {
                if !param_columns.contains(c) {
                    param_columns.push(c.clone());
                }
            }
            points.push(Point {
                index: i,
                settings,
                spec,
                params,
                inputs,
            });
        }
        // the prefill arithmetic is process-wide: one per campaign
        if points
            .windows(2)
            .any(|w| w[0].spec.model.prefill != w[1].spec.model.prefill)
        {
            return Err(doc.error(
                "model.prefill",
                "cannot vary within a campaign (one prefill arithmetic per process); run one \
                 experiment file per value",
            ));
        }
        let mut resolved = serde_json::to_vec(&doc.table).unwrap_or_default();
        // the contents of the files the runs read are part of the experiment, too (by key and
        // contents, not path: shards started from other directories are the same experiment)
        let mut inputs: Vec<(&str, &str)> = points
            .iter()
            .flat_map(|p| &p.inputs)
            .map(|i| (i.key.as_str(), i.sha256.as_str()))
            .collect();
        inputs.sort();
        inputs.dedup();
        if !inputs.is_empty() {
            resolved.extend_from_slice(b"/inputs:");
            resolved.extend(serde_json::to_vec(&inputs).unwrap_or_default());
        }
        let exp = Experiment {
            file: path.to_path_buf(),
            name,
            hash: sha256_hex(&resolved),
            doc,
            sweep,
            base,
            points,
            param_columns,
        };
        exp.check_columns()?;
        Ok(exp)
    }

    /// The kind of every run.
    pub fn kind(&self) -> Kind {
        self.base.kind
    }

    /// Replications per point.
    pub fn replications(&self) -> usize {
        self.base.replications
    }

    /// Number of runs.
    pub fn n_runs(&self) -> usize {
        self.points.len() * self.replications()
    }

    /// Run `index`.
    pub fn run(&self, index: usize) -> Run<'_> {
        let reps = self.replications();
        let point = &self.points[index / reps];
        let replication = index % reps;
        let seed = run_seed(self.base.seed, replication);
        Run {
            index,
            point,
            replication,
            seed,
            hash: run_hash(&point.spec, replication, &point.inputs),
        }
    }

    /// Every run.
    pub fn runs(&self) -> impl Iterator<Item = Run<'_>> {
        (0..self.n_runs()).map(|i| self.run(i))
    }

    /// Directory relative paths at `key` of `point` are taken from.
    pub fn dir(&self, point: &Point, key: &str) -> PathBuf {
        dir_of(&self.doc, &point.settings, key)
    }

    /// Every column a results row of this experiment can have.
    pub fn known_columns(&self) -> Vec<String> {
        let (keys, metrics) = kinds::columns(self.kind());
        RUN_COLUMNS
            .iter()
            .map(|s| s.to_string())
            .chain(self.param_columns.iter().cloned())
            .chain(keys.iter().map(|s| s.to_string()))
            .chain(metrics.iter().map(|s| s.to_string()))
            .collect()
    }

    /// Plots and the table name existing columns.
    fn check_columns(&self) -> Result<(), ExperimentError> {
        let known = self.known_columns();
        let (_, metrics) = kinds::columns(self.kind());
        let is_known =
            |c: &str| known.iter().any(|k| k == c) || kinds::is_dynamic_column(self.kind(), c);
        let hint = || format!("known columns: {}", known.join(", "));
        for (i, p) in self.base.plot.iter().enumerate() {
            if !is_known(&p.x) {
                return Err(self.doc.error(
                    &format!("plot[{i}].x"),
                    format!("'{}' is not a column ({})", p.x, hint()),
                ));
            }
            if !metrics.contains(&p.y.as_str()) && !kinds::is_dynamic_column(self.kind(), &p.y) {
                return Err(self.doc.error(
                    &format!("plot[{i}].y"),
                    format!(
                        "'{}' is not a metric of kind {:?} (metrics: {})",
                        p.y,
                        self.kind(),
                        metrics.join(", ")
                    ),
                ));
            }
            for (j, s) in p.series.iter().enumerate() {
                if !is_known(s) {
                    return Err(self.doc.error(
                        &format!("plot[{i}].series[{j}]"),
                        format!("'{s}' is not a column ({})", hint()),
                    ));
                }
            }
            for k in p.filter.keys() {
                if !is_known(k) {
                    return Err(self.doc.error(
                        &format!("plot[{i}].filter.{k}"),
                        format!("'{k}' is not a column ({})", hint()),
                    ));
                }
            }
        }
        for (j, c) in self.base.table.columns.iter().enumerate() {
            if !is_known(c) {
                return Err(self.doc.error(
                    &format!("table.columns[{j}]"),
                    format!("'{c}' is not a column ({})", hint()),
                ));
            }
        }
        Ok(())
    }
}

/// Root seed of replication `r` of a campaign seeded `seed`.
pub fn run_seed(seed: u64, replication: usize) -> u64 {
    use rand::RngCore;
    airinfer_phy::rng::stream(seed, &[0x5EED, replication as u64]).next_u64()
}

/// Hash of what a run's numbers depend on: the sections its kind reads, the replication, and
/// the contents of the files it reads (`inputs`; none leaves the hash as it was before inputs
/// were hashed, so results of file-free experiments stay valid).
pub fn run_hash(spec: &Spec, replication: usize, inputs: &[Input]) -> String {
    let v = match spec.kind {
        Kind::Eval => serde_json::json!([
            spec.kind,
            spec.seed,
            spec.model,
            spec.eval,
            spec.devices,
            spec.channel,
            spec.scheme,
            spec.waveform
        ]),
        Kind::Latency => serde_json::json!([
            spec.kind,
            spec.seed,
            spec.model,
            spec.latency,
            spec.devices,
            spec.channel,
            spec.scheme,
            spec.waveform
        ]),
        Kind::Allreduce => serde_json::json!([
            spec.kind,
            spec.seed,
            spec.model,
            spec.allreduce,
            spec.devices,
            spec.channel,
            spec.scheme,
            spec.waveform
        ]),
        Kind::Plan => serde_json::json!([
            spec.kind,
            spec.seed,
            spec.model,
            spec.plan,
            spec.devices,
            spec.channel
        ]),
        Kind::Serving => serde_json::json!([
            spec.kind,
            spec.seed,
            spec.model,
            spec.system,
            spec.serving,
            spec.devices,
            spec.channel,
            spec.scheme
        ]),
        Kind::Systems => serde_json::json!([
            spec.kind,
            spec.seed,
            spec.model,
            spec.system,
            spec.devices,
            spec.channel,
            spec.scheme,
            if spec.system.perplexity {
                serde_json::to_value(&spec.eval).unwrap_or_default()
            } else {
                serde_json::Value::Null
            }
        ]),
    };
    let mut text = format!("{v}/{replication}/{}", kinds::VERSION);
    // the pipeline timing model's version: 2 batches micro-batches in every stage, pipelines a
    // link's latency and charges device-side message costs (issue 21); version 1 runs are redone
    if spec.kind == Kind::Systems {
        text.push_str("/pipeline-timing=2");
    }
    // the real model's prefill arithmetic: f32 (the default, and the only one before the
    // integer GEMM: those runs keep their hash) or 8-bit activations
    let runs_model = match spec.kind {
        Kind::Eval => true,
        Kind::Systems => spec.system.perplexity,
        _ => false,
    };
    if runs_model && !spec.model.f32_prefill() {
        text.push_str("/prefill=int8");
    }
    for i in inputs {
        // by key and contents: the same bytes under another path give the same numbers
        text.push_str(&format!("/{}={}", i.key, i.sha256));
    }
    sha256_hex(text.as_bytes())
}

/// The test hook `AIRINFER_TEST_RUN_DELAY_MS=N`: every run takes N ms longer, so that tests
/// can have two writers overlap. None when unset; an error names the variable when malformed.
fn test_run_delay() -> anyhow::Result<Option<std::time::Duration>> {
    const VAR: &str = "AIRINFER_TEST_RUN_DELAY_MS";
    let Ok(v) = std::env::var(VAR) else {
        return Ok(None);
    };
    let ms: u64 = v
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{VAR}={v}: expected milliseconds"))?;
    Ok(Some(std::time::Duration::from_millis(ms)))
}

/// How a campaign is run.
#[derive(Debug, Clone)]
pub struct CampaignOptions {
    /// Results directory.
    pub out: PathBuf,
    /// Run only runs ≡ I (mod N).
    pub shard: Option<(usize, usize)>,
    /// Redo finished runs, and write into a directory holding another experiment.
    pub force: bool,
    /// No fetch messages.
    pub quiet: bool,
    /// Asked before each run whether to stop there (a front end's Ctrl-C: Python's signal
    /// check); `Some(why)` ends the campaign with an error saying why, the finished runs kept.
    pub stop: Option<fn() -> Option<String>>,
}

/// What the campaign reports as it goes.
pub enum Progress<'a> {
    /// Before the first run: runs to do, runs already finished (skipped).
    Start {
        /// Runs this invocation will do.
        todo: usize,
        /// Finished runs kept.
        skipped: usize,
    },
    /// A run is starting.
    Begin(&'a Run<'a>),
    /// A run finished.
    Done(&'a Run<'a>, &'a store::RunRecord),
    /// A run failed numerically (a measured metric is NaN or infinite): why.
    Failed(&'a Run<'a>, &'a str),
}

impl Experiment {
    /// The metadata of this campaign (for one shard, or all runs).
    pub fn meta(&self, shard: Option<(usize, usize)>) -> store::Meta {
        store::Meta {
            name: self.name.clone(),
            file: self.file.display().to_string(),
            description: self.base.description.clone(),
            kind: self.kind(),
            experiment_hash: self.hash.clone(),
            airinfer_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: env!("AIRINFER_GIT_COMMIT").to_string(),
            seed: self.base.seed,
            replications: self.replications(),
            points: self.points.len(),
            runs: self.n_runs(),
            shard,
            param_columns: self.param_columns.clone(),
            run_hashes: self.runs().map(|r| r.hash).collect(),
            inputs: self
                .points
                .iter()
                .flat_map(|p| &p.inputs)
                .map(|i| (i.path.display().to_string(), i.sha256.clone()))
                .collect(),
            plots: self.base.plot.clone(),
            table: self.base.table.clone(),
            started_at: store::now_rfc3339(),
            finished_at: None,
            merged_from: Vec::new(),
            config: serde_json::to_value(&self.doc.table).unwrap_or_default(),
        }
    }

    /// Run the campaign (the runs of its shard not yet finished) into `opts.out`, recording each
    /// run as it finishes. An error stops the campaign; finished runs stay recorded.
    pub fn run_campaign(
        &self,
        opts: &CampaignOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> anyhow::Result<store::Store> {
        if let Some((i, n)) = opts.shard {
            anyhow::ensure!(n >= 1 && i < n, "--shard {i}/{n}: need 0 ≤ I < N");
        }
        let what = format!(
            "airinfer run {}{}",
            self.file.display(),
            opts.shard
                .map_or(String::new(), |(i, n)| format!(" --shard {i}/{n}"))
        );
        let mut st = store::Store::open_as(&opts.out, self.meta(opts.shard), opts.force, &what)?;
        let mine: Vec<usize> = (0..self.n_runs())
            .filter(|i| opts.shard.is_none_or(|(s, n)| i % n == s))
            .collect();
        let todo: Vec<usize> = mine
            .iter()
            .copied()
            .filter(|&i| opts.force || !st.done(i))
            .collect();
        progress(Progress::Start {
            todo: todo.len(),
            skipped: mine.len() - todo.len(),
        });
        st.write_views()?;
        let crash = store::crash_point()?;
        let delay = test_run_delay()?;
        if let Some(p) = self.points.first() {
            airinfer_llm::kernels::set_f32_prefill(p.spec.model.f32_prefill());
        }
        let mut ws = kinds::Workspace::new(opts.quiet);
        let mut failed: Vec<String> = Vec::new();
        let mut recorded = 0;
        for i in todo {
            if let Some(why) = opts.stop.and_then(|stop| stop()) {
                anyhow::bail!(
                    "{}: {why} after {recorded} runs of this call; the finished runs are kept: run again to resume",
                    self.file.display()
                );
            }
            let run = self.run(i);
            progress(Progress::Begin(&run));
            let started_at = store::now_rfc3339();
            let t0 = std::time::Instant::now();
            if let Some(d) = delay {
                std::thread::sleep(d);
            }
            let mut rows =
                kinds::execute(&run, &|key| self.dir(run.point, key), &mut ws).map_err(|e| {
                    let params: Vec<String> = run
                        .point
                        .params
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    anyhow::anyhow!(
                        "{}: run {} (point {}, replication {}{}{}): {e:#}",
                        self.file.display(),
                        run.index,
                        run.point.index,
                        run.replication,
                        if params.is_empty() { "" } else { "; " },
                        params.join(", ")
                    )
                })?;
            kinds::inject_nan(run.index, &mut rows)?;
            let rec = store::RunRecord {
                run: run.index,
                point: run.point.index,
                replication: run.replication,
                seed: run.seed,
                hash: run.hash.clone(),
                params: run.point.params.clone(),
                rows,
                started_at,
                elapsed_s: t0.elapsed().as_secs_f64(),
            };
            // a NaN or infinite measurement is a numerical failure, not a result: recorded as
            // failed (kept out of the results, redone on resume), and the campaign goes on with
            // the other runs but ends in an error
            if let Some(why) = kinds::numerical_failure(&run.point.spec, &rec.rows) {
                let why = format!("{why} (a non-finite measurement)");
                let file = st.record_failed(&rec, &why)?;
                progress(Progress::Failed(&run, &why));
                failed.push(format!("run {} {why}, see {}", run.index, file.display()));
                continue;
            }
            recorded += 1;
            st.record_with(rec.clone(), &mut |stage| {
                if crash == Some((recorded, stage)) {
                    std::process::abort();
                }
            })?;
            progress(Progress::Done(&run, &rec));
        }
        if !failed.is_empty() {
            anyhow::bail!(
                "{}: {} of {} runs failed numerically ({}); they are not results: fix the cause and \
                 run again to redo them",
                self.file.display(),
                failed.len(),
                mine.len(),
                if failed.len() > 5 {
                    format!("{}; and {} more", failed[..5].join("; "), failed.len() - 5)
                } else {
                    failed.join("; ")
                }
            );
        }
        if mine.iter().all(|&i| st.done(i)) {
            st.finish()?;
        }
        Ok(st)
    }
}
