//! montecarlo
