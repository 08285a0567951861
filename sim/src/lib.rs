//! airinfer-sim: joins `airinfer-llm` and `airinfer-phy` in simulated time; schemes, planners,
//! experiments and the command-line interface.

pub mod assets;
pub mod cli;
pub mod des;
pub mod device;
pub mod experiment;
pub mod plan;
pub mod plot;
pub mod plot_lines;
pub mod progress;
pub mod schemes;
pub mod systems;
