//! The connectivity rules of the status monitor: how connected a [`Snapshot`](crate::Snapshot)
//! is, per family, through which interface and over which medium, and the changes of that status
//! over time.
//!
//! Pure functions of a snapshot and a [`ConnectivityConfig`], and one sans-IO state machine
//! ([`StatusTracker`]) fed with snapshots and the model events that produced them. No sockets,
//! clocks, threads or async: the glue owns those. The rules, exactly as implemented, are in
//! `docs/connectivity.md`; in short:
//!
//! | level | IPv4 or IPv6 |
//! |---|---|
//! | [`Level::Disconnected`] | no counted interface is up with carrier and holds a usable address of the family |
//! | [`Level::Local`] | one is, but holds only link-local addresses, or has no route to anything beyond them |
//! | [`Level::Site`] | an up interface holds a routable address and a route to non-link-local destinations, but there is no usable default route |
//! | [`Level::Internet`] | a unicast default route in a table the policy rules reach leaves through an up interface with carrier and a routable usable address, not `linkdown` |
//!
//! # Examples
//!
//! ```
//! use netreach_core::{
//!     Address, AddressFlags, ConnectivityConfig, Interface, Level, LinkKind, OperState, Route,
//!     Scope, Snapshot, evaluate,
//! };
//!
//! let mut eth = Interface::new(2, "eth0", LinkKind::Ethernet);
//! (eth.admin_up, eth.carrier, eth.oper_state) = (true, true, OperState::Up);
//! let addr = Address {
//!     interface: 2,
//!     address: "198.18.0.2".parse()?,
//!     prefix_len: 24,
//!     scope: Scope::Global,
//!     flags: AddressFlags::empty(),
//! };
//! let default = Route::unicast("0.0.0.0/0".parse()?, Some("198.18.0.1".parse()?), 2);
//! let snap = Snapshot::from_parts([eth], [addr], [default]);
//!
//! let status = evaluate(&snap, &ConnectivityConfig::default());
//! assert_eq!(status.ipv4, Level::Internet);
//! assert_eq!(status.ipv6, Level::Disconnected);
//! assert!(status.is_online());
//! assert_eq!(status.primary_interface(), Some("eth0"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod medium;
mod reason;
mod rules;
mod tracker;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

pub use config::{ConnectivityConfig, Pattern, PatternError};
pub use medium::{Medium, medium_hint_from_sysfs};
pub use reason::Reason;
pub use rules::{evaluate, internet_interfaces};
pub use tracker::{ConnectivityChange, LevelChange, PrimaryChange, StatusTracker};

use crate::model::Family;

/// How far packets of one family can get. Ordered: `Disconnected < Local < Site < Internet`.
///
/// Serialises (and parses, and displays) as the lowercase name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// No counted interface can carry packets of the family.
    #[default]
    Disconnected,
    /// Only the local link is reachable (link-local addresses).
    Local,
    /// Networks beyond the link are reachable, but there is no usable default route.
    Site,
    /// A usable default route: probably the internet (no probe has confirmed it).
    Internet,
}

/// A string that is not the name of a [`Level`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown connectivity level {0:?} (expected disconnected, local, site or internet)")]
pub struct UnknownLevel(pub String);

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 4] = [
        Level::Disconnected,
        Level::Local,
        Level::Site,
        Level::Internet,
    ];

    /// The lowercase name: `disconnected`, `local`, `site` or `internet`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Disconnected => "disconnected",
            Level::Local => "local",
            Level::Site => "site",
            Level::Internet => "internet",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = UnknownLevel;

    fn from_str(s: &str) -> Result<Level, UnknownLevel> {
        Level::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| UnknownLevel(s.to_owned()))
    }
}

/// The interface most traffic leaves through, and what kind of link it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct Primary {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Transport medium: the sysfs hint if the glue gave one, else what the link kind implies.
    pub medium: Medium,
    /// Traffic through it is metered (by name pattern, or because it is cellular).
    pub metered: bool,
}

impl fmt::Display for Primary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.name, self.medium)?;
        if self.metered {
            f.write_str(", metered")?;
        }
        f.write_str(")")
    }
}

/// The connectivity of one snapshot, as [`evaluate`] computes it.
///
/// Serialises as `{"ipv4": "internet", "ipv6": "local", "overall": "internet", "online": true,
/// "primary": {"index": 2, "name": "eth0", "medium": "ethernet", "metered": false}}`
/// (`"primary": null` when there is none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Connectivity {
    /// IPv4 level.
    pub ipv4: Level,
    /// IPv6 level.
    pub ipv6: Level,
    /// The higher of the two.
    pub overall: Level,
    /// The primary interface: with a usable default route, the one the best default route of
    /// the better family leaves through; below `internet`, the lowest-index interface giving
    /// the better family its level; `None` when disconnected. See `docs/connectivity.md`.
    pub primary: Option<Primary>,
}

impl Connectivity {
    /// Everything disconnected, no primary interface.
    pub fn disconnected() -> Connectivity {
        Connectivity::default()
    }

    /// The level of one family.
    pub fn level(&self, family: Family) -> Level {
        match family {
            Family::Ipv4 => self.ipv4,
            Family::Ipv6 => self.ipv6,
        }
    }

    /// Online means the overall level is [`Level::Internet`], like Qt's
    /// `QNetworkInformation::Reachability::Online`: `site` (a LAN without a default route) is
    /// not online.
    pub fn is_online(&self) -> bool {
        self.overall == Level::Internet
    }

    /// The primary interface's name.
    pub fn primary_interface(&self) -> Option<&str> {
        self.primary.as_ref().map(|p| p.name.as_str())
    }

    /// The primary interface's index.
    pub fn primary_index(&self) -> Option<u32> {
        self.primary.as_ref().map(|p| p.index)
    }

    /// The primary interface's medium.
    pub fn medium(&self) -> Option<Medium> {
        self.primary.as_ref().map(|p| p.medium)
    }

    /// Whether traffic is metered: false without a primary interface.
    pub fn is_metered(&self) -> bool {
        self.primary.as_ref().is_some_and(|p| p.metered)
    }
}

/// `internet (ipv4 internet, ipv6 local) via eth0 (ethernet)`.
impl fmt::Display for Connectivity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (ipv4 {}, ipv6 {})",
            self.overall, self.ipv4, self.ipv6
        )?;
        if let Some(p) = &self.primary {
            write!(f, " via {p}")?;
        }
        Ok(())
    }
}

impl Serialize for Connectivity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Connectivity", 5)?;
        st.serialize_field("ipv4", &self.ipv4)?;
        st.serialize_field("ipv6", &self.ipv6)?;
        st.serialize_field("overall", &self.overall)?;
        st.serialize_field("online", &self.is_online())?;
        st.serialize_field("primary", &self.primary)?;
        st.end()
    }
}

/// The label of a level change's subject: `IPv4`, `IPv6`, or `overall` for `None`.
fn family_label(family: Option<Family>) -> &'static str {
    match family {
        Some(Family::Ipv4) => "IPv4",
        Some(Family::Ipv6) => "IPv6",
        None => "overall",
    }
}

/// The index of a family in per-family arrays.
fn family_slot(family: Family) -> usize {
    match family {
        Family::Ipv4 => 0,
        Family::Ipv6 => 1,
    }
}

/// Both families, IPv4 first (the order changes are emitted in).
const FAMILIES: [Family; 2] = [Family::Ipv4, Family::Ipv6];
