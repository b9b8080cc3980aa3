//! The sans-IO core of netreach.
//!
//! This crate holds the typed model of one network namespace ([`Snapshot`]), the pure functions
//! that apply a kernel message to it ([`Snapshot::apply`]) and compare two of them ([`diff`]),
//! the decoder that turns rtnetlink messages into model updates ([`decode`]), the connectivity
//! rules of the status monitor ([`evaluate`], [`StatusTracker`]), the reachability rules of the
//! connection monitor ([`reach`]), and the pure part of the HTTP probe that verifies internet
//! access ([`probe`]: classification, response parsing and the probe schedule). It does no IO:
//! no sockets, no clocks, no threads, no async and no `unsafe`. Everything here is fed with data
//! and returns data, so it is tested without root and can be reused by any backend (the rtnetlink
//! monitor in the `netreach` crate, a polling fallback, later other systems).
//!
//! [`reach`] holds the reachability rules of the connection monitor and the sans-IO tracker that
//! keeps many connections current: it asks for kernel route lookups as actions and is told the
//! answers (see `docs/reachability.md`).
//!
//! # Example
//!
//! ```
//! use netreach_core::{Snapshot, Update, Interface, LinkKind, OperState, Event};
//!
//! let mut snap = Snapshot::default();
//! let eth = Interface::new(2, "eth0", LinkKind::Ethernet);
//! let events = snap.apply(Update::NewLink(eth.clone()));
//! assert_eq!(events, vec![Event::InterfaceAdded(eth.clone())]);
//!
//! // The kernel repeating what we already know yields no event.
//! assert!(snap.apply(Update::NewLink(eth)).is_empty());
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod connectivity;
#[cfg(target_os = "linux")]
pub mod decode;
mod diff;
mod event;
mod flags;
mod intern;
pub mod iphlp;
pub mod machine;
mod model;
pub mod nlm;
pub mod probe;
pub mod reach;
mod silent;

pub use connectivity::{
    Connectivity, ConnectivityChange, ConnectivityConfig, Level, LevelChange, Medium, Pattern,
    PatternError, Primary, PrimaryChange, Reason, StatusTracker, UnknownLevel, evaluate,
    medium_hint_from_sysfs,
};
#[cfg(target_os = "linux")]
pub use decode::{
    DecodeError, Message, Parsed, decode_message, decode_route_message, parse_datagram,
};
pub use diff::diff;
pub use event::{Event, InterfaceChanges, Refresh, RouteRefresh, Update};
pub use flags::AddressFlags;
pub use intern::Interned;
pub use model::{
    Address, AddressKey, Family, Interface, LinkKind, MacAddr, NextHop, OperState, Route, RouteKey,
    RouteProtocol, RouteType, Rule, RuleAction, Scope, Snapshot, table_name,
};
pub use silent::Silent;
