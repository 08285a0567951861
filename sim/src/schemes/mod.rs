//! Distributed-inference schemes in simulated time.

pub mod coupled;
pub mod pipeline;
pub mod tp;
