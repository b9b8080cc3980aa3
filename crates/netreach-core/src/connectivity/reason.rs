//! Why the connectivity changed: the model event that best explains a change, as data and as
//! words.
//!
//! The tracker knows which interfaces gave a family its level before and after a batch of
//! events. A level that went down is explained by an event about an interface that held the old
//! level; one that went up, by an event about an interface that holds the new one. Among those,
//! root causes win over their consequences (an interface removal over the removal of its
//! routes), in the fixed order of [`Explain::pick`].

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use super::rules::hops;
use crate::AddressFlags;
use crate::event::Event;
use crate::model::{Address, Family, Route, RouteType, Snapshot, table_name};

/// Why a level, the primary interface, its medium or its metered flag changed.
///
/// Serialises with a `kind` tag (`{"kind": "carrier_lost", "interface": "eth0"}`); displays as
/// a short clause (`carrier lost on eth0`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// A new interface appeared.
    InterfaceAdded {
        /// Its name.
        interface: String,
    },
    /// An interface disappeared (with its addresses and routes).
    InterfaceRemoved {
        /// Its name.
        interface: String,
    },
    /// An interface was set administratively up.
    InterfaceUp {
        /// Its name.
        interface: String,
    },
    /// An interface was set administratively down.
    InterfaceDown {
        /// Its name.
        interface: String,
    },
    /// An interface was renamed (which can move it in or out of an exclusion pattern).
    InterfaceRenamed {
        /// The old name.
        old: String,
        /// The new name.
        new: String,
    },
    /// An interface lost its carrier (cable unplugged, wireless disassociated).
    CarrierLost {
        /// Its name.
        interface: String,
    },
    /// An interface got its carrier back.
    CarrierRestored {
        /// Its name.
        interface: String,
    },
    /// A usable address was added.
    AddressAdded {
        /// The address.
        address: IpAddr,
        /// Its prefix length.
        prefix_len: u8,
        /// The interface it is on.
        interface: String,
    },
    /// An address was removed.
    AddressRemoved {
        /// The address.
        address: IpAddr,
        /// Its prefix length.
        prefix_len: u8,
        /// The interface it was on.
        interface: String,
    },
    /// An address finished duplicate address detection and is now usable.
    AddressNowUsable {
        /// The address.
        address: IpAddr,
        /// Its prefix length.
        prefix_len: u8,
        /// The interface it is on.
        interface: String,
    },
    /// An address became tentative again (DAD restarted, for example after a carrier change).
    AddressTentative {
        /// The address.
        address: IpAddr,
        /// Its prefix length.
        prefix_len: u8,
        /// The interface it is on.
        interface: String,
    },
    /// Duplicate address detection failed for an address: another host uses it.
    AddressDadFailed {
        /// The address.
        address: IpAddr,
        /// Its prefix length.
        prefix_len: u8,
        /// The interface it is on.
        interface: String,
    },
    /// A default route was added.
    DefaultRouteAdded {
        /// The gateway, if the route has one.
        via: Option<IpAddr>,
        /// The output interface.
        interface: String,
        /// The routing table.
        table: u32,
    },
    /// A default route was removed.
    DefaultRouteRemoved {
        /// The gateway, if the route had one.
        via: Option<IpAddr>,
        /// The output interface.
        interface: String,
        /// The routing table.
        table: u32,
    },
    /// A route other than a default route was added.
    RouteAdded {
        /// Its destination.
        destination: IpNet,
        /// The output interface.
        interface: String,
    },
    /// A route other than a default route was removed.
    RouteRemoved {
        /// Its destination.
        destination: IpNet,
        /// The output interface.
        interface: String,
    },
    /// The kernel marked a route `linkdown` (its interface lost carrier).
    RouteBecameLinkdown {
        /// Its destination.
        destination: IpNet,
        /// The output interface.
        interface: String,
    },
    /// The kernel cleared a route's `linkdown` mark.
    RouteLinkRestored {
        /// Its destination.
        destination: IpNet,
        /// The output interface.
        interface: String,
    },
    /// A policy-routing rule was added.
    RuleAdded {
        /// Its priority.
        priority: u32,
    },
    /// A policy-routing rule was removed.
    RuleRemoved {
        /// Its priority.
        priority: u32,
    },
    /// The configuration (exclusions, metered patterns, medium hints) changed.
    ConfigChanged,
    /// No event of the batch explains the change (for example the first update after
    /// [`super::StatusTracker::new`] was given no events).
    Other,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let route = |f: &mut fmt::Formatter<'_>, destination: &IpNet| {
            if destination.prefix_len() == 0 {
                f.write_str("default route")
            } else {
                write!(f, "route {destination}")
            }
        };
        let default = |f: &mut fmt::Formatter<'_>, via: &Option<IpAddr>, interface, table| {
            f.write_str("default route")?;
            if let Some(via) = via {
                write!(f, " via {via}")?;
            }
            write!(f, " on {interface}")?;
            if table != Route::MAIN_TABLE {
                write!(f, " (table {})", table_name(table))?;
            }
            Ok(())
        };
        match self {
            Reason::InterfaceAdded { interface } => write!(f, "interface {interface} added"),
            Reason::InterfaceRemoved { interface } => write!(f, "interface {interface} removed"),
            Reason::InterfaceUp { interface } => write!(f, "interface {interface} set up"),
            Reason::InterfaceDown { interface } => write!(f, "interface {interface} set down"),
            Reason::InterfaceRenamed { old, new } => write!(f, "interface {old} renamed {new}"),
            Reason::CarrierLost { interface } => write!(f, "carrier lost on {interface}"),
            Reason::CarrierRestored { interface } => write!(f, "carrier restored on {interface}"),
            Reason::AddressAdded {
                address,
                prefix_len,
                interface,
            } => write!(f, "address {address}/{prefix_len} added on {interface}"),
            Reason::AddressRemoved {
                address,
                prefix_len,
                interface,
            } => write!(f, "address {address}/{prefix_len} removed from {interface}"),
            Reason::AddressNowUsable {
                address,
                prefix_len,
                interface,
            } => write!(
                f,
                "address {address}/{prefix_len} on {interface} passed duplicate address detection"
            ),
            Reason::AddressTentative {
                address,
                prefix_len,
                interface,
            } => write!(
                f,
                "address {address}/{prefix_len} on {interface} is tentative"
            ),
            Reason::AddressDadFailed {
                address,
                prefix_len,
                interface,
            } => write!(
                f,
                "address {address}/{prefix_len} on {interface} failed duplicate address detection"
            ),
            Reason::DefaultRouteAdded {
                via,
                interface,
                table,
            } => {
                default(f, via, interface, *table)?;
                f.write_str(" added")
            }
            Reason::DefaultRouteRemoved {
                via,
                interface,
                table,
            } => {
                default(f, via, interface, *table)?;
                f.write_str(" removed")
            }
            Reason::RouteAdded {
                destination,
                interface,
            } => write!(f, "route {destination} on {interface} added"),
            Reason::RouteRemoved {
                destination,
                interface,
            } => write!(f, "route {destination} on {interface} removed"),
            Reason::RouteBecameLinkdown {
                destination,
                interface,
            } => {
                route(f, destination)?;
                write!(f, " on {interface} is linkdown")
            }
            Reason::RouteLinkRestored {
                destination,
                interface,
            } => {
                route(f, destination)?;
                write!(f, " on {interface} is no longer linkdown")
            }
            Reason::RuleAdded { priority } => write!(f, "policy rule {priority} added"),
            Reason::RuleRemoved { priority } => write!(f, "policy rule {priority} removed"),
            Reason::ConfigChanged => f.write_str("configuration changed"),
            Reason::Other => f.write_str("network state changed"),
        }
    }
}

/// Whether a change is a loss (explained by the old state) or a gain (by the new one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Down,
    Up,
}

/// Picks reasons from one batch of events.
pub(crate) struct Explain<'a> {
    /// The snapshot after the batch (for interface names).
    pub(crate) snapshot: &'a Snapshot,
    pub(crate) events: &'a [Event],
    /// The configuration changed since the last evaluation.
    pub(crate) config_changed: bool,
}

impl Explain<'_> {
    /// The best reason among the events concerning `interfaces` (and `family`, if given), or
    /// [`Reason::ConfigChanged`] / [`Reason::Other`] when none fits. Default-route events only
    /// count when `internet` (the level lost or gained is `internet`).
    ///
    /// Order, best first. Down: interface removed, set down, carrier lost, route became
    /// linkdown, default route removed, address became tentative or failed DAD, address
    /// removed, other route removed, renamed, rule changed. Up: default route added, address
    /// passed DAD, address added, carrier restored, route no longer linkdown, set up, interface
    /// added, other route added, renamed, rule changed.
    pub(crate) fn pick(
        &self,
        family: Option<Family>,
        direction: Direction,
        interfaces: &BTreeSet<u32>,
        internet: bool,
    ) -> Reason {
        let scope = Scope {
            family,
            interfaces,
            internet,
        };
        self.events
            .iter()
            .filter_map(|e| match direction {
                Direction::Down => self.down(e, &scope),
                Direction::Up => self.up(e, &scope),
            })
            .min_by_key(|(rank, _)| *rank)
            .map_or_else(|| self.fallback(), |(_, reason)| reason)
    }

    /// The reason when no event explains a change.
    pub(crate) fn fallback(&self) -> Reason {
        if self.config_changed {
            Reason::ConfigChanged
        } else {
            Reason::Other
        }
    }

    /// The reason a rename of interface `index` gives, if the batch renamed it.
    pub(crate) fn rename(&self, index: u32) -> Option<Reason> {
        self.events.iter().find_map(|e| match e {
            Event::InterfaceChanged { old, new, changes } if changes.name && new.index == index => {
                Some(Reason::InterfaceRenamed {
                    old: old.name.clone(),
                    new: new.name.clone(),
                })
            }
            _ => None,
        })
    }

    fn down(&self, event: &Event, s: &Scope<'_>) -> Option<(u8, Reason)> {
        match event {
            Event::InterfaceRemoved(i) if s.has(i.index) => Some((
                0,
                Reason::InterfaceRemoved {
                    interface: i.name.clone(),
                },
            )),
            Event::InterfaceChanged { old, new, changes } if s.has(new.index) => {
                let interface = new.name.clone();
                if changes.admin_up && !new.admin_up {
                    Some((1, Reason::InterfaceDown { interface }))
                } else if changes.carrier && !new.carrier {
                    Some((2, Reason::CarrierLost { interface }))
                } else {
                    self.renamed(old, new, changes.name)
                }
            }
            Event::RouteAdded(r) if s.route(r) => {
                let hop = hops(r).find(|h| h.linkdown && h.interface.is_some_and(|i| s.has(i)))?;
                Some((
                    3,
                    Reason::RouteBecameLinkdown {
                        destination: r.destination,
                        interface: self.name(hop.interface?),
                    },
                ))
            }
            Event::RouteRemoved(r) if s.route(r) => {
                let hop = hops(r).find(|h| h.interface.is_some_and(|i| s.has(i)))?;
                let interface = self.name(hop.interface?);
                if r.is_default() {
                    s.internet.then_some((
                        4,
                        Reason::DefaultRouteRemoved {
                            via: hop.gateway,
                            interface,
                            table: r.table,
                        },
                    ))
                } else {
                    Some((
                        7,
                        Reason::RouteRemoved {
                            destination: r.destination,
                            interface,
                        },
                    ))
                }
            }
            Event::AddressChanged { old, new } if s.address(new) => {
                let unusable = old.is_usable() && !new.is_usable();
                let (address, prefix_len) = (new.address, new.prefix_len);
                let interface = self.name(new.interface);
                unusable.then(|| {
                    let reason = if new.flags.contains(AddressFlags::DADFAILED) {
                        Reason::AddressDadFailed {
                            address,
                            prefix_len,
                            interface,
                        }
                    } else {
                        Reason::AddressTentative {
                            address,
                            prefix_len,
                            interface,
                        }
                    };
                    (5, reason)
                })
            }
            Event::AddressRemoved(a) if s.address(a) => Some((
                6,
                Reason::AddressRemoved {
                    address: a.address,
                    prefix_len: a.prefix_len,
                    interface: self.name(a.interface),
                },
            )),
            _ => self.rule(event, s),
        }
    }

    fn up(&self, event: &Event, s: &Scope<'_>) -> Option<(u8, Reason)> {
        match event {
            Event::RouteAdded(r) if s.route(r) => {
                let hop = hops(r).find(|h| !h.linkdown && h.interface.is_some_and(|i| s.has(i)))?;
                let interface = self.name(hop.interface?);
                if self.was_linkdown(r) {
                    Some((
                        4,
                        Reason::RouteLinkRestored {
                            destination: r.destination,
                            interface,
                        },
                    ))
                } else if r.is_default() {
                    s.internet.then_some((
                        0,
                        Reason::DefaultRouteAdded {
                            via: hop.gateway,
                            interface,
                            table: r.table,
                        },
                    ))
                } else {
                    Some((
                        7,
                        Reason::RouteAdded {
                            destination: r.destination,
                            interface,
                        },
                    ))
                }
            }
            Event::AddressChanged { old, new } if s.address(new) => {
                (!old.is_usable() && new.is_usable()).then(|| {
                    (
                        1,
                        Reason::AddressNowUsable {
                            address: new.address,
                            prefix_len: new.prefix_len,
                            interface: self.name(new.interface),
                        },
                    )
                })
            }
            Event::AddressAdded(a) if s.address(a) && a.is_usable() => Some((
                2,
                Reason::AddressAdded {
                    address: a.address,
                    prefix_len: a.prefix_len,
                    interface: self.name(a.interface),
                },
            )),
            Event::InterfaceChanged { old, new, changes } if s.has(new.index) => {
                let interface = new.name.clone();
                if changes.carrier && new.carrier {
                    Some((3, Reason::CarrierRestored { interface }))
                } else if changes.admin_up && new.admin_up {
                    Some((5, Reason::InterfaceUp { interface }))
                } else {
                    self.renamed(old, new, changes.name)
                }
            }
            Event::InterfaceAdded(i) if s.has(i.index) => Some((
                6,
                Reason::InterfaceAdded {
                    interface: i.name.clone(),
                },
            )),
            _ => self.rule(event, s),
        }
    }

    fn renamed(
        &self,
        old: &crate::Interface,
        new: &crate::Interface,
        renamed: bool,
    ) -> Option<(u8, Reason)> {
        renamed.then(|| {
            (
                8,
                Reason::InterfaceRenamed {
                    old: old.name.clone(),
                    new: new.name.clone(),
                },
            )
        })
    }

    fn rule(&self, event: &Event, s: &Scope<'_>) -> Option<(u8, Reason)> {
        match event {
            Event::RuleAdded(r) if s.family_ok(r.family) => Some((
                9,
                Reason::RuleAdded {
                    priority: r.priority,
                },
            )),
            Event::RuleRemoved(r) if s.family_ok(r.family) => Some((
                9,
                Reason::RuleRemoved {
                    priority: r.priority,
                },
            )),
            _ => None,
        }
    }

    /// The batch removed the same route in a `linkdown` state (the kernel re-announces a route
    /// whose `linkdown` mark changed; the model turns that into a removal and an addition).
    fn was_linkdown(&self, route: &Route) -> bool {
        let key = route.key();
        self.events.iter().any(|e| match e {
            Event::RouteRemoved(old) => old.key() == key && hops(old).any(|h| h.linkdown),
            _ => false,
        })
    }

    /// The interface's name: from the snapshot, else from a removal or rename in the batch,
    /// else `#INDEX`.
    fn name(&self, index: u32) -> String {
        if let Some(name) = self.snapshot.interface_name(index) {
            return name.to_owned();
        }
        self.events
            .iter()
            .find_map(|e| match e {
                Event::InterfaceRemoved(i) if i.index == index => Some(i.name.clone()),
                Event::InterfaceChanged { new, .. } if new.index == index => Some(new.name.clone()),
                _ => None,
            })
            .unwrap_or_else(|| format!("#{index}"))
    }
}

/// Which events may explain a change.
struct Scope<'a> {
    family: Option<Family>,
    interfaces: &'a BTreeSet<u32>,
    internet: bool,
}

impl Scope<'_> {
    fn has(&self, index: u32) -> bool {
        self.interfaces.contains(&index)
    }

    fn family_ok(&self, family: Family) -> bool {
        self.family.is_none_or(|f| f == family)
    }

    fn address(&self, a: &Address) -> bool {
        self.family_ok(a.family()) && self.has(a.interface)
    }

    fn route(&self, r: &Route) -> bool {
        self.family_ok(r.family) && r.kind == RouteType::Unicast
    }
}
