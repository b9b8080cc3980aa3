//! netreach: know, the moment it happens, whether the machine is online and whether the path
//! of a connection still works.
//!
//! This crate is the live layer around the sans-IO core [`netreach_core`]: it opens an
//! rtnetlink socket (in any network namespace), keeps a [`Snapshot`] of interfaces, addresses,
//! routes and rules current from kernel notifications on a thread of its own, and hands every
//! change to any number of [`Subscription`]s, from blocking code or any async runtime. It pulls
//! in no async runtime.
//!
//! # Getting started
//!
//! ```no_run
//! use netreach::{Monitor, Notification};
//!
//! # fn main() -> Result<(), netreach::Error> {
//! let monitor = Monitor::new()?;
//! let mut changes = monitor.subscribe();
//! while let Some(n) = changes.recv() {
//!     match n {
//!         Notification::Ready { snapshot, .. } => print!("{snapshot}"),
//!         Notification::Change { seq, event, .. } => {
//!             println!("{seq}: {}", event.describe(&changes.current()))
//!         }
//!         other => println!("{other:?}"),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # Platform specific behavior
//!
//! Linux: rtnetlink notifications, or polling dumps ([`BackendKind`]). Windows: IP Helper's
//! tables and change notifications (polling where they are stubs, as under Wine), route lookups
//! with `GetBestRoute2`, and the Network List Manager's hint (`docs/windows.md`). Elsewhere every
//! constructor returns [`Error::Unsupported`]; the model, the rules and the machine in
//! [`netreach_core`] are portable.

// No `unsafe` anywhere but the Windows backend's two system-call modules (IP Helper and COM),
// which allow it by name (`sys/windows/mod.rs`); on every other target it is forbidden.
#![cfg_attr(not(windows), forbid(unsafe_code))]
#![cfg_attr(windows, deny(unsafe_code))]
#![warn(missing_docs)]

mod connection;
mod driver;
mod error;
mod hub;
mod monitor;
mod netns;
pub mod probe;
mod status;
mod subscription;
mod sys;
mod verify;

pub use connection::{ConnectionMonitor, ReachNotification, ReachSubscription, Watch};
pub use error::{Error, FileKind, PathReason};
pub use monitor::{Monitor, MonitorBuilder, Stats};
pub use netns::Netns;
pub use status::{StatusMonitor, StatusNotification, StatusSubscription};
pub use subscription::{Next, Notification, Subscription};
pub use sys::BackendKind;
pub use verify::{ProbeConfig, Verification, VerificationChange, Verified};

/// The README's examples, compiled as doctests so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

pub use netreach_core as core;
pub use netreach_core::connectivity::{
    Connectivity, ConnectivityChange, ConnectivityConfig, Level, Medium, Pattern,
};
pub use netreach_core::nlm::{SystemHint, SystemReach};
pub use netreach_core::probe::{ProbeEndpoint, ProbeResult, ProbeSchedule, ProbeVerdict};
pub use netreach_core::reach::{InterfaceRef, Reachability, Target, TargetError, TargetId};
pub use netreach_core::{
    Address, AddressFlags, Event, Family, Interface, InterfaceChanges, LinkKind, OperState, Route,
    RouteType, Rule, Scope, Snapshot,
};
