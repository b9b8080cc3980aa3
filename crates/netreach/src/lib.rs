//! placeholder

pub mod probe;
