//! airinfer-sim: joins `airinfer-llm` and `airinfer-phy` in simulated time — the event queue
//! ([`des`], the one clock), the tensor-parallel and pipeline schemes ([`schemes`]) and the systems
//! they make ([`systems`]). Device profiles come from the planners' crate (re-exported as
//! [`device`]); the command line, experiment campaigns and figures are the `airinfer` crate's.

pub use airinfer_plan::device;

pub mod des;
pub mod links;
pub mod schemes;
pub mod serving;
pub mod systems;
