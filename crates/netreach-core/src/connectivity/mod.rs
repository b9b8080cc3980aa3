//! The connectivity rules of the status monitor: how connected a [`Snapshot`](crate::Snapshot)
//! is, per family, through which interface and over which medium.
//!
//! Pure functions of a snapshot and a [`ConnectivityConfig`]: no sockets, clocks, threads or
//! async; the glue owns those. The rules, exactly as implemented, are in `docs/connectivity.md`.

mod config;
mod medium;

pub use config::{ConnectivityConfig, Pattern, PatternError};
pub use medium::{Medium, medium_hint_from_sysfs};
