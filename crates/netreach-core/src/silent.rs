//! What Linux changes in its routing tables on a link change without sending a message, derived
//! from the model instead of dumped again.
//!
//! When an interface goes administratively down, the kernel flushes its IPv4 routes without an
//! `RTM_DELROUTE`; when it loses or regains carrier, it sets or clears the `linkdown` flag of
//! the routes through it and tells no one, not even `ip monitor`. Dumping the interface's routes
//! after each such change keeps the model true, but a dump filtered by interface still walks
//! the kernel's whole table: at 10,000 interfaces about a millisecond of kernel time per family,
//! on the monitor's thread, before the next change can be read. What the kernel does is a
//! function of the routes through the interface, which the model holds (`routes_via`), so the
//! model applies the same function ([`link_change`]) and dumps only where it cannot be sure.
//!
//! The kernel's rules (`net/ipv4/fib_semantics.c` `fib_sync_down_dev` / `fib_sync_up`,
//! `net/ipv6/route.c` `fib6_ifdown` / `fib6_ifup`), for a route with one next hop through the
//! interface:
//!
//! | change | IPv4 | IPv6 |
//! |---|---|---|
//! | administratively down | removed, unless its scope is `host` (a local address stays reachable) | removed (with a message, unless `skip_notify_on_dev_down` is set: deriving it is right either way) |
//! | carrier lost (interface up) | flagged `linkdown`, unless its scope is `host` | flagged `linkdown`, unless it is `local` or `anycast` |
//! | carrier back (interface up) | `linkdown` cleared | `linkdown` cleared (`rt6_sync_up`, whether the link was ready before or becomes ready for the first time) |
//!
//! IPv4 counts carrier as `IFF_LOWER_UP` or `IFF_RUNNING`, IPv6 as an operational state of `up`
//! or `unknown`. A multipath route with a hop through the interface keeps its other hops with
//! per-hop flags (`dead`, `linkdown`) and weights rebalanced: that family's routes through the
//! interface are dumped, as before. An interface going away still costs a full dump (the
//! interface cannot filter a dump once it is gone). The live tests compare the result with
//! `ip -j route` after each kind of change, and assert that no dump was made.

use crate::event::{Refresh, RouteRefresh, Update};
use crate::model::{Family, Interface, OperState, Route, RouteType, Scope, Snapshot};

/// The silent consequences of one update: what the model derives, and what it dumps again.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Silent {
    /// Route changes the kernel made without a message, to apply right after the update.
    pub updates: Vec<Update>,
    /// The routes that must be dumped again because they could not be derived.
    pub refresh: RouteRefresh,
}

impl Update {
    /// The changes the kernel makes without telling when this update happens to the state
    /// `before` (see the [module](self)).
    pub fn silent_effects(&self, before: &Snapshot) -> Silent {
        match self {
            Update::NewLink(new) => match before.interface(new.index) {
                Some(old) => link_change(before, old, new),
                None => Silent::default(),
            },
            _ => Silent {
                updates: Vec::new(),
                refresh: self.route_refresh_needed(before),
            },
        }
    }
}

/// What the kernel does to a route with one hop through the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Kept,
    Removed,
    Linkdown(bool),
}

/// IPv4 sees carrier as `IFF_LOWER_UP` or `IFF_RUNNING` (`fib_netdev_event`).
fn ipv4_carrier(i: &Interface) -> bool {
    i.admin_up && (i.carrier || matches!(i.oper_state, OperState::Up | OperState::Unknown))
}

/// IPv6 sees a link as ready when its operational state is `up` or `unknown`
/// (`addrconf_link_ready`).
fn ipv6_ready(i: &Interface) -> bool {
    i.admin_up && matches!(i.oper_state, OperState::Up | OperState::Unknown)
}

fn fate(family: Family, old: &Interface, new: &Interface, r: &Route) -> Fate {
    if old.admin_up && !new.admin_up {
        return match family {
            Family::Ipv4 if r.scope == Scope::Host => Fate::Kept,
            _ => Fate::Removed,
        };
    }
    if !new.admin_up {
        return Fate::Kept;
    }
    match family {
        Family::Ipv4 => match (ipv4_carrier(old), ipv4_carrier(new)) {
            _ if r.scope == Scope::Host => Fate::Kept,
            (true, false) => Fate::Linkdown(true),
            (false, true) => Fate::Linkdown(false),
            _ => Fate::Kept,
        },
        Family::Ipv6 => match (ipv6_ready(old), ipv6_ready(new)) {
            _ if matches!(r.kind, RouteType::Local | RouteType::Anycast) => Fate::Kept,
            (true, false) => Fate::Linkdown(true),
            (false, true) => Fate::Linkdown(false),
            _ => Fate::Kept,
        },
    }
}

/// The silent consequences of interface `old` becoming `new`.
fn link_change(s: &Snapshot, old: &Interface, new: &Interface) -> Silent {
    let mut silent = Silent::default();
    // An interface coming up revives the dead hops of multipath routes through it.
    let came_up = !old.admin_up && new.admin_up;
    for family in [Family::Ipv4, Family::Ipv6] {
        let mut updates = Vec::new();
        let mut unknown = false;
        for r in s.routes_via(new.index).filter(|r| r.family == family) {
            let fate = fate(family, old, new, r);
            if !r.nexthops.is_empty() && (fate != Fate::Kept || came_up) {
                unknown = true;
                break;
            }
            match fate {
                Fate::Kept => {}
                Fate::Removed => updates.push(Update::DelRoute(r.clone())),
                Fate::Linkdown(flag) if r.linkdown == flag => {}
                Fate::Linkdown(flag) => updates.push(Update::NewRoute {
                    route: Route {
                        linkdown: flag,
                        ..r.clone()
                    },
                    replace: false,
                }),
            }
        }
        if unknown {
            let via = Refresh::Interfaces([new.index].into());
            match family {
                Family::Ipv4 => silent.refresh.ipv4 = via,
                Family::Ipv6 => silent.refresh.ipv6 = via,
            }
        } else {
            silent.updates.extend(updates);
        }
    }
    silent
}

#[cfg(test)]
mod tests;
