//! The typed experiment file: what each key means, its unit, its default, and the checks that
//! turn physical nonsense into an error naming the key.
//!
//! The schema (serde structs read with `deny_unknown_fields`): the file and its sections in
//! `schema`, `[system]` in `system`, `[[plot]]` and `[table]` in `plots`. Lowering to the
//! settings of a run in `lower`; the checks in `check`.

mod check;
mod lower;
mod plots;
mod schema;
mod serving;
mod system;

pub use check::Invalid;
pub use lower::{relative_to, Devices};
pub use plots::{PlotSpec, ReferenceSpec, TableSpec};
pub use schema::{
    AllreduceSpec, ChannelSpec, DevicesSpec, EvalSpec, Kind, LatencySpec, Level, ModelSpec,
    PlanSpec, QuantSpec, SchemeSpec, SharesSpec, Spec, WaveformSpec, SHARE_NAMES,
};
pub use serving::{Process, ServingSpec};
pub use system::{LinkSpec, LinkType, SystemSpec};
