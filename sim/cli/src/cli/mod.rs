//! The `airinfer` command line. One file per command family.

pub mod aircomp;
pub mod experiment;
pub mod llm;
pub mod plan;
pub mod table1;
pub mod tp_eval;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "airinfer",
    version,
    about = "Distributed on-device LLM inference over simulated wireless networks"
)]
pub struct Cli {
    /// Worker threads (default: all cores). Results do not depend on it. At most the
    /// hardware's thread count, unless --force-threads.
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// Allow --threads above the hardware's thread count (oversubscribing the cores makes runs
    /// slower, never faster).
    #[arg(long, global = true)]
    pub force_threads: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run an experiment file: every run of its sweep × replications into results/<name>/
    /// (CSV, JSON, plots); re-running resumes, skipping finished runs.
    Run(experiment::RunArgs),
    /// Validate an experiment file without running it; print the number of runs and the
    /// estimated peak memory (refused above the machine's available memory or --max-memory).
    Check(experiment::FileArgs),
    /// List the runs of an experiment file with their index and parameters.
    List(experiment::FileArgs),
    /// Re-draw the plots of a results directory from its CSV.
    Plot(experiment::PlotArgs),
    /// Join the results directories of shards (`run --shard I/N`) into one.
    Merge(experiment::MergeArgs),
    /// Fetch and verify catalogue assets into the cache (models: smollm2-135m, gemma3-270m;
    /// texts: lee-news, wikitext-2) and print their paths.
    Fetch {
        /// Asset names (with --verify: all cached assets when none is named).
        #[arg(required_unless_present = "verify")]
        names: Vec<String>,
        /// Hash the cached files again against their pinned SHA-256, whatever their stamps say;
        /// a file that does not match is removed and named in the error (exit 1).
        #[arg(long)]
        verify: bool,
    },
    /// Show a model's architecture, tensor types and memory per device.
    Inspect(llm::InspectArgs),
    /// Generate text from a prompt (optionally tensor-parallel over K devices).
    Generate(llm::GenerateArgs),
    /// Perplexity of a model on a text (llama.cpp's protocol by default).
    Eval(llm::EvalArgs),
    /// Over-the-air computation: MSE curves and transceiver designs.
    Aircomp {
        #[command(subcommand)]
        cmd: aircomp::AircompCmd,
    },
    /// Joint model assignment: device shares minimising the expected AirComp MSE (stochastic SCA).
    Plan(plan::PlanArgs),
    /// Table I of Zhang et al. 2025: per-token time of Llama-2/3 on 1/2/4/8 devices, AirComp vs digital.
    Table1(table1::Table1Args),
    /// Speed benchmarks.
    Bench {
        #[command(subcommand)]
        what: BenchCmd,
    },
}

#[derive(Subcommand, Debug)]
pub enum BenchCmd {
    /// Prefill and decode tokens/s of the language model with 1 and 2 threads.
    Llm(llm::BenchLlmArgs),
    /// AirComp trials/s and SDR designs/s.
    Phy(aircomp::BenchPhyArgs),
    /// Pipeline planners' solve times and the event-driven pipeline simulation's speed.
    Plan(plan::BenchPlanArgs),
}

/// Entry point: parse, run, report one clear error with a non-zero exit.
pub fn main() -> ExitCode {
    // `airinfer … | head`: die quietly on a closed pipe like other Unix tools, not panic
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    airinfer_llm::kernels::simd_cap().map_err(|e| anyhow::anyhow!("environment: {e}"))?;
    if let Some(t) = cli.threads {
        if t == 0 {
            anyhow::bail!("--threads 0: need at least one thread");
        }
        check_threads(t, hardware_threads(), cli.force_threads)?;
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()?;
    }
    match cli.command {
        Command::Fetch {
            names,
            verify: true,
        } => {
            for line in crate::assets::verify_cache(&crate::assets::cache_dir(), &names)? {
                println!("{line}");
            }
            Ok(())
        }
        Command::Fetch { names, .. } => {
            use crate::assets::{MODELS, TEXTS};
            for n in names {
                let lower = n.to_ascii_lowercase();
                let known = |c: &[crate::assets::Asset]| {
                    c.iter().any(|a| a.names.contains(&lower.as_str()))
                };
                // a known asset that cannot be fetched or verified says why (it used to be
                // reported as unknown)
                let p = if known(MODELS) {
                    crate::assets::resolve_model(&n, false)?
                } else if known(TEXTS) {
                    crate::assets::resolve_text(&n, false)?
                } else {
                    anyhow::bail!(
                        "'{n}' is not a known asset (models: {}; texts: {})",
                        MODELS
                            .iter()
                            .map(|a| a.names[0])
                            .collect::<Vec<_>>()
                            .join(", "),
                        TEXTS
                            .iter()
                            .map(|a| a.names[0])
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                };
                println!("{}", p.display());
            }
            Ok(())
        }
        Command::Run(a) => experiment::run(a),
        Command::Check(a) => experiment::check(a),
        Command::List(a) => experiment::list(a),
        Command::Plot(a) => experiment::plot(a),
        Command::Merge(a) => experiment::merge(a),
        Command::Inspect(a) => llm::inspect(a),
        Command::Generate(a) => llm::generate(a),
        Command::Eval(a) => llm::eval(a),
        Command::Plan(a) => plan::run(a),
        Command::Table1(a) => table1::run(a),
        Command::Aircomp { cmd } => aircomp::run(cmd),
        Command::Bench { what } => match what {
            BenchCmd::Phy(args) => aircomp::bench_phy(args),
            BenchCmd::Llm(args) => llm::bench_llm(args),
            BenchCmd::Plan(args) => plan::bench(args),
        },
    }
}

/// Threads the hardware runs at once (None when the system does not say).
fn hardware_threads() -> Option<usize> {
    std::thread::available_parallelism().ok().map(|n| n.get())
}

/// `--threads t` on a machine of `hw` hardware threads: more is refused unless forced (1000
/// threads on 2 cores made a 2 s evaluation take minutes).
fn check_threads(t: usize, hw: Option<usize>, force: bool) -> anyhow::Result<()> {
    match hw {
        Some(hw) if t > hw && !force => anyhow::bail!(
            "--threads {t}: this machine runs {hw} threads at once; more only slows the work \
             down (add --force-threads to use {t} anyway)"
        ),
        _ => Ok(()),
    }
}

/// Parse a `--design` value: clap's names, with a design that was renamed (`fast`) refused by a
/// message giving its new name.
pub(crate) fn design_value<T: clap::ValueEnum>(s: &str) -> Result<T, String> {
    if let Some(new) = airinfer_sim::links::aircomp::renamed(s) {
        return Err(format!("`{s}` is now called `{new}`"));
    }
    T::from_str(s, false)
}

/// Parse a count that must be at least 1 (`--chunks 0` used to mean 1 without a word).
pub(crate) fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_above_the_hardware_need_force() {
        assert!(check_threads(2, Some(2), false).is_ok());
        assert!(check_threads(3, None, false).is_ok());
        assert!(check_threads(1000, Some(2), true).is_ok());
        let e = check_threads(1000, Some(2), false).unwrap_err().to_string();
        assert!(
            e.contains("--threads 1000")
                && e.contains("2 threads")
                && e.contains("--force-threads"),
            "{e}"
        );
    }
}
