//! The answer of the reachability rules: [`Reachability`], with the [`Path`] a reachable target
//! takes or the [`Reason`] an unreachable one cannot be reached, as data.
//!
//! Two verdicts are equal exactly when the tracker must not report a change between them: the
//! same path (interface, its name, gateway and preferred source) or the same reason.

use std::fmt;
use std::net::IpAddr;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::flags::AddressFlags;
use crate::model::RouteType;

/// Whether a target can be reached now: the path its packets take, or why they cannot.
///
/// Serialises as `{"state": "reachable", "path": {..}}` or
/// `{"state": "unreachable", "reason": {"kind": "carrier_lost", ..}}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reachability {
    /// The kernel routes packets to the remote through a running interface, from a usable local
    /// address.
    Reachable(Path),
    /// Packets to the remote would not leave this host (or not from this local address).
    Unreachable(Reason),
}

impl Reachability {
    /// The path, when reachable.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Reachability::Reachable(p) => Some(p),
            Reachability::Unreachable(_) => None,
        }
    }

    /// The reason, when unreachable.
    pub fn reason(&self) -> Option<&Reason> {
        match self {
            Reachability::Reachable(_) => None,
            Reachability::Unreachable(r) => Some(r),
        }
    }
}

impl fmt::Display for Reachability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reachability::Reachable(p) => write!(f, "reachable {p}"),
            Reachability::Unreachable(r) => write!(f, "unreachable: {r}"),
        }
    }
}

impl Serialize for Reachability {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        match self {
            Reachability::Reachable(p) => {
                m.serialize_entry("state", "reachable")?;
                m.serialize_entry("path", p)?;
            }
            Reachability::Unreachable(r) => {
                m.serialize_entry("state", "unreachable")?;
                m.serialize_entry("reason", r)?;
            }
        }
        m.end()
    }
}

/// The way packets to a reachable target leave this host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Path {
    /// Output interface index (for a local or loopback remote: the interface of the kernel's
    /// route, `lo` or the interface that holds the address).
    pub interface: u32,
    /// Its name.
    pub interface_name: String,
    /// The next hop, when the remote is not on a connected subnet.
    pub gateway: Option<IpAddr>,
    /// The route's preferred source address (`src` of `ip route`), if it has one.
    pub source: Option<IpAddr>,
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.gateway {
            Some(gw) => write!(f, "via {gw} dev {}", self.interface_name)?,
            None => write!(f, "dev {} (on link)", self.interface_name)?,
        }
        if let Some(src) = self.source {
            write!(f, " src {src}")?;
        }
        Ok(())
    }
}

/// An interface named in a [`Reason`]: its index and the name it had when the reason was found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct NamedInterface {
    /// Kernel interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
}

impl fmt::Display for NamedInterface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Why a target is unreachable. When several apply, the order of the checks decides which one
/// is reported: the local address, the bound interface, the kernel's answer, the path's
/// interface, then the mismatch (see [`evaluate`](super::evaluate) and `docs/reachability.md`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// The local address is no longer assigned to any interface of this host: the connection is
    /// gone for good and must be made again.
    LocalAddressRemoved,
    /// The local address is assigned but cannot be used as a source: duplicate address detection
    /// is still running (`tentative`, usually for a second or two) or failed (`dadfailed`).
    LocalAddressUnusable {
        /// The address's flags.
        flags: AddressFlags,
    },
    /// The interface the connection is bound to, or its path leaves through, no longer exists.
    InterfaceGone {
        /// Its index.
        interface: u32,
    },
    /// The path interface is administratively down (`ip link set .. down`).
    InterfaceDown {
        /// The path interface.
        interface: NamedInterface,
    },
    /// The path interface is up but has no carrier (cable out, Wi-Fi not associated, veth peer
    /// down).
    CarrierLost {
        /// The path interface.
        interface: NamedInterface,
    },
    /// The kernel flags the route's next hop `linkdown` (its interface lost carrier, and the
    /// snapshot has not caught up yet).
    LinkDown {
        /// The interface of the next hop.
        interface: NamedInterface,
    },
    /// No route covers the remote address (`ENETUNREACH`).
    NoRoute,
    /// The route that covers the remote address rejects traffic: `unreachable`, `blackhole`,
    /// `prohibit` or `throw` (or, rarely, is of a type that carries no unicast traffic, like
    /// `broadcast`).
    RouteType(RouteType),
    /// The path leaves through another interface than the one the local address is on: packets
    /// with this source would take a different way (or be dropped by reverse-path filters), so
    /// the connection has to be made again. Does not apply to local and loopback routes.
    InterfaceMismatch {
        /// Where the route now leads.
        path_interface: NamedInterface,
        /// Where the local address lives.
        local_interface: NamedInterface,
    },
    /// The route lookup failed with an error the rules do not interpret (a positive errno).
    LookupFailed {
        /// The errno (`EBADMSG` when the answer could not be decoded).
        errno: i32,
    },
}

impl Reason {
    /// The `kind` name used in JSON (`carrier_lost`, `no_route`, ...).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Reason::LocalAddressRemoved => "local_address_removed",
            Reason::LocalAddressUnusable { .. } => "local_address_unusable",
            Reason::InterfaceGone { .. } => "interface_gone",
            Reason::InterfaceDown { .. } => "interface_down",
            Reason::CarrierLost { .. } => "carrier_lost",
            Reason::LinkDown { .. } => "link_down",
            Reason::NoRoute => "no_route",
            Reason::RouteType(_) => "route_type",
            Reason::InterfaceMismatch { .. } => "interface_mismatch",
            Reason::LookupFailed { .. } => "lookup_failed",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::LocalAddressRemoved => {
                f.write_str("the local address is no longer assigned to this host")
            }
            Reason::LocalAddressUnusable { flags } => {
                if flags.contains(AddressFlags::DADFAILED) {
                    f.write_str("the local address failed duplicate address detection")
                } else {
                    f.write_str("the local address is still tentative (duplicate address detection is running)")
                }
            }
            Reason::InterfaceGone { interface } => {
                write!(f, "interface #{interface} no longer exists")
            }
            Reason::InterfaceDown { interface } => write!(f, "interface {interface} is down"),
            Reason::CarrierLost { interface } => write!(f, "interface {interface} has no carrier"),
            Reason::LinkDown { interface } => {
                write!(f, "the route's next hop on {interface} is marked linkdown")
            }
            Reason::NoRoute => f.write_str("no route to the remote address"),
            Reason::RouteType(t) => match t {
                RouteType::Unreachable => {
                    f.write_str("an unreachable route covers the remote address")
                }
                RouteType::Blackhole => {
                    f.write_str("a blackhole route discards traffic to the remote address")
                }
                RouteType::Prohibit => {
                    f.write_str("a prohibit route forbids traffic to the remote address")
                }
                RouteType::Throw => f.write_str("a throw route ended the lookup without a match"),
                other => write!(f, "the route to the remote address is of type {other}"),
            },
            Reason::InterfaceMismatch {
                path_interface,
                local_interface,
            } => write!(
                f,
                "the path now leaves through {path_interface} but the local address is on {local_interface}"
            ),
            Reason::LookupFailed { errno } => write!(
                f,
                "the route lookup failed: {}",
                std::io::Error::from_raw_os_error(*errno)
            ),
        }
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("kind", self.kind_name())?;
        match self {
            Reason::LocalAddressRemoved | Reason::NoRoute => {}
            Reason::LocalAddressUnusable { flags } => m.serialize_entry("flags", flags)?,
            Reason::InterfaceGone { interface } => m.serialize_entry("interface", interface)?,
            Reason::InterfaceDown { interface }
            | Reason::CarrierLost { interface }
            | Reason::LinkDown { interface } => m.serialize_entry("interface", interface)?,
            Reason::RouteType(t) => m.serialize_entry("route_type", t)?,
            Reason::InterfaceMismatch {
                path_interface,
                local_interface,
            } => {
                m.serialize_entry("path_interface", path_interface)?;
                m.serialize_entry("local_interface", local_interface)?;
            }
            Reason::LookupFailed { errno } => m.serialize_entry("errno", errno)?,
        }
        m.end()
    }
}
