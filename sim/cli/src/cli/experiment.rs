//! `airinfer run | check | list | plot | merge`: experiment campaigns from TOML files.

use crate::experiment::budget;
use crate::experiment::figures::{draw_all, terminal_table};
use crate::experiment::store::{self, Store, Table};
use crate::experiment::{CampaignOptions, Experiment, Progress};
use crate::progress;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

/// A shard `I/N`.
fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("'{s}': expected I/N, e.g. 0/4"))?;
    let i: usize = i
        .trim()
        .parse()
        .map_err(|_| format!("'{s}': I is not a number"))?;
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| format!("'{s}': N is not a number"))?;
    if n == 0 || i >= n {
        return Err(format!("'{s}': need 0 ≤ I < N"));
    }
    Ok((i, n))
}

/// `airinfer run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The experiment file (TOML).
    pub file: PathBuf,
    /// Results directory (default: results/<name>, or results/<name>/shard-I-of-N with --shard).
    /// One writer at a time: while a `run` or `merge` writes a directory, another fails at once
    /// naming its PID (the shards of one campaign may run into one directory together). A
    /// directory holding another experiment (another name in its experiment.json) is refused
    /// unless --force.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run only the runs whose index ≡ I (mod N), e.g. 0/4 (for job arrays; join with `merge`).
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<(usize, usize)>,
    /// Redo finished runs instead of skipping them; also write into a results directory that
    /// holds another experiment (one whose experiment.json has another name), which is refused
    /// otherwise. The same experiment with edited parameters is a resume, not another
    /// experiment: runs whose configuration or input files changed are redone, the rest kept.
    #[arg(long)]
    pub force: bool,
    /// Nothing on the terminal but errors.
    #[arg(long)]
    pub quiet: bool,
    /// Carry AirComp at waveform level through this radio: `emulator`, or SoapySDR device
    /// arguments such as `driver=uhd` (needs a build with `--features soapy`). Every run goes
    /// through it, unless the file sweeps `waveform.level` (then the symbol-level points stay
    /// the reference). Results go to results/<name>/radio-<args> unless --out is given.
    #[arg(long)]
    pub radio: Option<String>,
    /// Override a key of the experiment file: `--set devices.count=4`, `--set
    /// 'sweep."channel.snr_db"=[10, 20]'` (a TOML key path and value; a bare word is a string).
    /// Repeatable; checked like the file. Results go to results/<name>/set-<overrides> unless
    /// --out is given, so they never mix with the file's own.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Refuse a campaign whose estimated peak memory exceeds SIZE (e.g. 4G, 512M; default: the
    /// machine's available memory). `check` prints the estimate and what it counts.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_memory: Option<f64>,
    /// Not a flag: asked before each run whether to stop ([`CampaignOptions::stop`]; Python's
    /// Ctrl-C).
    #[arg(skip)]
    pub stop: Option<fn() -> Option<String>>,
}

fn parse_size(s: &str) -> Result<f64, String> {
    crate::experiment::budget::parse_size(s)
}

/// `airinfer check` / `airinfer list`.
#[derive(Args, Debug)]
pub struct FileArgs {
    /// The experiment file (TOML).
    pub file: PathBuf,
    /// Only the runs of shard I/N.
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<(usize, usize)>,
    /// Override a key of the experiment file (as `airinfer run --set`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// `check`: refuse a campaign whose estimated peak memory exceeds SIZE (as `airinfer run
    /// --max-memory`; default: the machine's available memory).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_memory: Option<f64>,
}

/// `airinfer plot`.
#[derive(Args, Debug)]
pub struct PlotArgs {
    /// A results directory (with experiment.json and results.csv).
    pub dir: PathBuf,
    /// Take the [[plot]] tables from this experiment file instead of the stored ones.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// `airinfer merge`.
#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Where the joined results go.
    #[arg(long)]
    pub out: PathBuf,
    /// Shard results directories.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Write into --out even if it holds the results of another experiment (another name).
    #[arg(long)]
    pub force: bool,
    /// Nothing on the terminal but errors.
    #[arg(long)]
    pub quiet: bool,
}

fn default_out(exp: &Experiment, shard: Option<(usize, usize)>) -> PathBuf {
    let base = Path::new("results").join(&exp.name);
    match shard {
        Some((i, n)) => base.join(format!("shard-{i}-of-{n}")),
        None => base,
    }
}

/// Metric columns of a summary (those with a `_ci95` partner).
fn metrics_of(summary: &Table) -> Vec<String> {
    summary
        .columns
        .iter()
        .filter(|c| summary.col(&format!("{c}_ci95")).is_some())
        .cloned()
        .collect()
}

/// Rebuild the summary from results.csv and draw the plots; returns the files written.
fn redraw(
    dir: &Path,
    plots: &[crate::experiment::spec::PlotSpec],
    meta: &store::Meta,
) -> Result<(Table, Vec<PathBuf>)> {
    let results = Table::read_csv(&dir.join("results.csv"))?;
    let summary = store::summary(meta, &results);
    let files = if results.rows.is_empty() {
        Vec::new()
    } else {
        draw_all(plots, &summary, dir)?
    };
    Ok((summary, files))
}

/// The final table on stdout.
fn print_table(st: &Store, summary: &Table) {
    if !summary.rows.is_empty() {
        print!(
            "{}",
            terminal_table(&st.meta.table, summary, &metrics_of(summary))
        );
    }
}

/// ", a.png, a.svg" for the figures written.
fn file_names(files: &[PathBuf]) -> String {
    files
        .iter()
        .filter_map(|f| f.file_name().map(|n| format!(", {}", n.to_string_lossy())))
        .collect()
}

fn one_line(run: &crate::experiment::Run, rec: &store::RunRecord) -> String {
    let params: Vec<String> = rec.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let what = match rec.rows.as_slice() {
        [row] => row
            .metrics
            .iter()
            .take(4)
            .map(|(k, v)| format!("{k} {}", fmt_metric(*v)))
            .collect::<Vec<_>>()
            .join(", "),
        rows => format!("{} rows", rows.len()),
    };
    format!(
        "run {} (point {}, rep {}) {} → {what} [{:.1} s]",
        run.index,
        run.point.index,
        run.replication,
        params.join(" "),
        rec.elapsed_s
    )
}

fn fmt_metric(v: f64) -> String {
    if v == 0.0 || (1e-3..1e5).contains(&v.abs()) {
        format!("{v:.4}")
    } else {
        format!("{v:.3e}")
    }
}

/// Where `run` writes by default: results/<name> (a shard's subdirectory with --shard), with a
/// directory of its own for a radio or overrides, so such runs never replace the file's own.
pub fn out_dir(
    exp: &Experiment,
    shard: Option<(usize, usize)>,
    radio: Option<&str>,
    sets: &[String],
) -> PathBuf {
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let mut d = default_out(exp, shard);
    if let Some(r) = radio {
        d = d.join(format!("radio-{}", safe(r)));
    }
    if !sets.is_empty() {
        d = d.join(format!("set-{}", safe(&sets.join(","))));
    }
    d
}

/// `airinfer run FILE`.
pub fn run(a: RunArgs) -> Result<()> {
    let exp = Experiment::load_with(&a.file, a.radio.as_deref(), &a.sets)?;
    exp.budget(rayon::current_num_threads(), a.max_memory)?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| out_dir(&exp, a.shard, a.radio.as_deref(), &a.sets));
    let opts = CampaignOptions {
        out: out.clone(),
        shard: a.shard,
        force: a.force,
        quiet: a.quiet,
        stop: a.stop,
    };
    let mut pb = None;
    let t0 = std::time::Instant::now();
    let st = exp.run_campaign(&opts, &mut |p| match p {
        Progress::Start { todo, skipped } => {
            if !a.quiet {
                eprintln!(
                    "{}: {} runs ({} points × {} replications){}; {todo} to run, {skipped} already finished → {}",
                    exp.name,
                    exp.n_runs(),
                    exp.points.len(),
                    exp.replications(),
                    a.shard.map_or(String::new(), |(i, n)| format!(", shard {i}/{n}")),
                    out.display()
                );
            }
            pb = Some(progress::items_bar(todo as u64, "runs", a.quiet));
        }
        Progress::Begin(run) => {
            if let Some(pb) = &pb {
                pb.set_message(format!("run {}", run.index));
            }
        }
        Progress::Failed(run, why) => {
            if let Some(pb) = &pb {
                pb.inc(1);
                if !a.quiet {
                    let line = format!(
                        "run {} (point {}, rep {}) failed: {why}",
                        run.index, run.point.index, run.replication
                    );
                    if pb.is_hidden() {
                        eprintln!("{line}");
                    } else {
                        pb.println(line);
                    }
                }
            }
        }
        Progress::Done(run, rec) => {
            if let Some(pb) = &pb {
                pb.inc(1);
                if !a.quiet {
                    let line = one_line(run, rec);
                    if pb.is_hidden() {
                        eprintln!("{line}");
                    } else {
                        pb.println(line);
                    }
                }
            }
        }
    });
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }
    let st = st?;
    let (summary, files) = redraw(&st.dir, &st.meta.plots, &st.meta)?;
    if !a.quiet {
        print_table(&st, &summary);
        let missing = st.meta.runs - st.records.len();
        eprintln!(
            "{} of {} runs finished ({:.1} s); results in {}/ (results.csv, summary.csv{}{})",
            st.records.len(),
            st.meta.runs,
            t0.elapsed().as_secs_f64(),
            st.dir.display(),
            file_names(&files),
            if missing > 0 && a.shard.is_some() {
                format!("; the other shards hold {missing} runs: join with `airinfer merge`")
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

/// `airinfer check FILE`.
pub fn check(a: FileArgs) -> Result<()> {
    let exp = Experiment::load_with(&a.file, None, &a.sets)?;
    let budget = exp.budget(rayon::current_num_threads(), a.max_memory)?;
    let n = match a.shard {
        Some((i, s)) => (0..exp.n_runs()).filter(|r| r % s == i).count(),
        None => exp.n_runs(),
    };
    println!(
        "{}: ok — experiment '{}' ({:?}), {} points × {} replications = {} runs{}",
        a.file.display(),
        exp.name,
        exp.kind(),
        exp.points.len(),
        exp.replications(),
        exp.n_runs(),
        a.shard
            .map_or(String::new(), |(i, s)| format!(" ({n} in shard {i}/{s})"))
    );
    if !exp.base.description.is_empty() {
        println!("  {}", exp.base.description.trim());
    }
    for ax in &exp.sweep.axes {
        println!(
            "  sweep {}: {} values",
            ax.paths.join(" + "),
            ax.steps.len()
        );
    }
    println!(
        "  memory: about {} at the peak ({}){}",
        budget::human(budget.peak),
        budget.summary(),
        match &budget.limit {
            Some((l, source)) => format!(" of {} {source}", budget::human(*l)),
            None => " (the machine's memory is unknown: not checked)".into(),
        }
    );
    println!(
        "  {} plots; results go to {}",
        exp.base.plot.len(),
        out_dir(&exp, a.shard, None, &a.sets).display()
    );
    Ok(())
}

/// `airinfer list FILE`.
pub fn list(a: FileArgs) -> Result<()> {
    let exp = Experiment::load_with(&a.file, None, &a.sets)?;
    let mut header = vec!["run".to_string(), "point".into(), "rep".into()];
    header.extend(exp.param_columns.iter().cloned());
    let mut grid = vec![header];
    for r in exp.runs() {
        if a.shard.is_some_and(|(i, n)| r.index % n != i) {
            continue;
        }
        let mut row = vec![
            r.index.to_string(),
            r.point.index.to_string(),
            r.replication.to_string(),
        ];
        for c in &exp.param_columns {
            row.push(
                r.point
                    .params
                    .iter()
                    .find(|(k, _)| k == c)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default(),
            );
        }
        grid.push(row);
    }
    let widths: Vec<usize> = (0..grid[0].len())
        .map(|j| grid.iter().map(|r| r[j].chars().count()).max().unwrap_or(0))
        .collect();
    for row in grid {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}", w = *w))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
    Ok(())
}

/// `airinfer plot DIR`.
pub fn plot(a: PlotArgs) -> Result<()> {
    let st = Store::load(&a.dir)?;
    // the figures are written into the directory: one writer, as for run and merge
    let _lock = store::lock_dir(&a.dir, None, "airinfer plot")?;
    if st.records.is_empty() {
        bail!(
            "{}: no finished runs to plot (run the experiment first)",
            a.dir.display()
        );
    }
    let plots = match &a.config {
        Some(f) => Experiment::load(f)?.base.plot,
        None => st.meta.plots.clone(),
    };
    if plots.is_empty() {
        bail!(
            "{}: no [[plot]] tables to draw",
            a.config
                .as_ref()
                .unwrap_or(&a.dir.join("experiment.json"))
                .display()
        );
    }
    let (_, files) = redraw(&a.dir, &plots, &st.meta)
        .with_context(|| format!("plotting {}", a.dir.display()))?;
    for f in files {
        println!("{}", f.display());
    }
    Ok(())
}

/// `airinfer merge --out DIR SHARD…`.
pub fn merge(a: MergeArgs) -> Result<()> {
    let (st, missing) = store::merge(&a.out, &a.dirs, a.force)?;
    let (summary, files) = redraw(&st.dir, &st.meta.plots, &st.meta)?;
    if !a.quiet {
        print_table(&st, &summary);
        eprintln!(
            "merged {} directories: {} of {} runs in {}/{}{}",
            a.dirs.len(),
            st.records.len(),
            st.meta.runs,
            st.dir.display(),
            if missing > 0 {
                format!(" ({missing} runs missing)")
            } else {
                String::new()
            },
            file_names(&files)
        );
    }
    if missing > 0 {
        // the merged files are consistent, but the campaign is not finished: say so by the exit
        bail!(
            "{}: {missing} of {} runs missing — merge the other shards too, or finish the campaign \
             with `airinfer run … --out {}`",
            st.dir.display(),
            st.meta.runs,
            st.dir.display()
        );
    }
    Ok(())
}
