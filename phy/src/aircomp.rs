//! aircomp
