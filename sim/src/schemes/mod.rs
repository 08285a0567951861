//! Distributed-inference schemes in simulated time.

pub mod coupled;
pub mod tp;
pub mod pipeline;
