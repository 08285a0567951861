//! Distributed-inference schemes in simulated time.

pub mod tp;
