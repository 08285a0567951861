//! The `airinfer` command line. One file per command family.

pub mod aircomp;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "airinfer",
    version,
    about = "Distributed on-device LLM inference over simulated wireless networks"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Over-the-air computation: MSE curves and transceiver designs.
    Aircomp {
        #[command(subcommand)]
        cmd: aircomp::AircompCmd,
    },
    /// Speed benchmarks.
    Bench {
        #[command(subcommand)]
        what: BenchCmd,
    },
}

#[derive(Subcommand, Debug)]
pub enum BenchCmd {
    /// AirComp trials/s and SDR designs/s.
    Phy(aircomp::BenchPhyArgs),
}

/// Entry point: parse, run, report one clear error with a non-zero exit.
pub fn main() -> ExitCode {
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
    match cli.command {
        Command::Aircomp { cmd } => aircomp::run(cmd),
        Command::Bench { what } => match what {
            BenchCmd::Phy(args) => aircomp::bench_phy(args),
        },
    }
}
