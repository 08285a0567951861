//! `airinfer aircomp …` and `airinfer bench phy`.

use clap::{Args, Subcommand};

#[derive(Subcommand, Debug)]
pub enum AircompCmd {
    /// MSE vs SNR (or K, N_r) for chosen designs, analytic and simulated side by side.
    Mse,
}

#[derive(Args, Debug)]
pub struct BenchPhyArgs {
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: AircompCmd) -> anyhow::Result<()> {
    match cmd {
        AircompCmd::Mse => anyhow::bail!("not implemented yet"),
    }
}

pub fn bench_phy(_args: BenchPhyArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
