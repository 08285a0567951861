//! Planners: the joint model assignment of Zhang et al. 2025 ([`sca`], re-exported here: shares
//! and powers by stochastic SCA), and the pipeline planners — EdgeShard ([`edgeshard`]),
//! LinguaLinked ([`lingualinked`]), MDI-LLM and the simple baselines ([`simple`]) — over the
//! partition problem ([`pipeline`]), and the device profiles they plan over ([`device`]).
//! Pure functions of a problem: nothing here knows of experiments, the CLI or simulated time.

pub mod device;
pub mod edgeshard;
pub mod lingualinked;
pub mod pipeline;
pub mod sca;
pub mod simple;

pub use sca::*;
