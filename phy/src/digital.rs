//! digital
