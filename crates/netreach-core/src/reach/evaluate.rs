//! The reachability rules: a pure function of a target's route query, the kernel's answer to it
//! and a snapshot of the model.
//!
//! The kernel decides the path (its route lookup honours policy routing, metrics and the
//! `linkdown` flag); the snapshot decides whether that path can carry packets now (the interface
//! is up and has carrier) and whether the local address is still this host's and usable. The
//! order of the checks, and so which [`Reason`] wins when several apply:
//!
//! 1. the local address: removed, then unusable (tentative or DAD failed);
//! 2. the interface the target is bound to, if any: gone, then administratively down;
//! 3. the kernel's answer: an error maps to a reason (see [`reason_for_errno`]); a route of a
//!    type other than `unicast` or `local` is [`Reason::RouteType`];
//! 4. a `local` route (loopback or an own address) needs the loopback interface up, nothing else;
//! 5. a `unicast` route needs its output interface to exist, be up, have carrier, and not be
//!    flagged `linkdown`; it must be the bound interface, if any (IPv6 lookups treat `RTA_OIF`
//!    as a preference and may answer with a route through another interface); then the local
//!    address must be on that interface.

use std::net::IpAddr;

use crate::model::{Address, Interface, LinkKind, Route, RouteType, Snapshot};
use crate::reach::target::{RouteQuery, is_ipv6_link_local};
use crate::reach::verdict::{NamedInterface, Path, Reachability, Reason};

/// A positive errno from the kernel (`EHOSTUNREACH`, ...), as `std::io::Error::raw_os_error`
/// gives it. A negative value (as in `NLMSG_ERROR`) is read as its absolute value.
pub type Errno = i32;

/// The kernel's answer to one route lookup: the route it would use, or the errno it failed with.
pub type LookupAnswer = Result<Route, Errno>;

/// Whether the target described by `query` is reachable, given the kernel's `answer` to that
/// query and the current `snapshot`. Pure: the same inputs always give the same verdict.
///
/// # Examples
///
/// ```
/// use netreach_core::reach::{evaluate, Reachability, Reason, RouteQuery};
/// use netreach_core::{Address, AddressFlags, Interface, LinkKind, Route, Scope, Snapshot};
///
/// let mut eth = Interface::new(2, "eth0", LinkKind::Ethernet);
/// eth.admin_up = true;
/// eth.carrier = true;
/// let addr = Address {
///     interface: 2,
///     address: "198.18.0.2".parse().unwrap(),
///     prefix_len: 24,
///     scope: Scope::Global,
///     flags: AddressFlags::empty(),
/// };
/// let snap = Snapshot::from_parts([eth], [addr], []);
/// let query = RouteQuery {
///     remote: "198.18.5.1".parse().unwrap(),
///     local: "198.18.0.2".parse().unwrap(),
///     interface: None,
/// };
///
/// let default = Route::unicast("0.0.0.0/0".parse().unwrap(), Some("198.18.0.1".parse().unwrap()), 2);
/// let v = evaluate(&query, &Ok(default), &snap);
/// assert_eq!(v.to_string(), "reachable via 198.18.0.1 dev eth0");
///
/// // The kernel found no route (ENETUNREACH).
/// let v = evaluate(&query, &Err(101), &snap);
/// assert_eq!(v, Reachability::Unreachable(Reason::NoRoute));
/// ```
pub fn evaluate(query: &RouteQuery, answer: &LookupAnswer, snapshot: &Snapshot) -> Reachability {
    match verdict(query, answer, snapshot) {
        Ok(path) => Reachability::Reachable(path),
        Err(reason) => Reachability::Unreachable(reason),
    }
}

/// [`evaluate`] for a target whose path is known from before: `last_path` holds the interfaces
/// of its last known path (and the one it is bound to). When the kernel now finds no route and
/// one of those interfaces is gone, administratively down or without carrier, that interface is
/// the reason, not [`Reason::NoRoute`]: Linux flushes the routes through an interface that goes
/// down, so the lookup after `ip link set .. down` finds none, and "no route" would hide the
/// cause (and be reported as a second change after the interface's own).
pub(crate) fn evaluate_along(
    query: &RouteQuery,
    answer: &LookupAnswer,
    snapshot: &Snapshot,
    last_path: &[u32],
) -> Reachability {
    match evaluate(query, answer, snapshot) {
        Reachability::Unreachable(Reason::NoRoute) => Reachability::Unreachable(
            last_path
                .iter()
                .find_map(|i| running(*i, snapshot).err())
                .unwrap_or(Reason::NoRoute),
        ),
        verdict => verdict,
    }
}

fn verdict(query: &RouteQuery, answer: &LookupAnswer, snap: &Snapshot) -> Result<Path, Reason> {
    let local = local_addresses(query, snap)?;
    if let Some(bound) = query.interface {
        let ifc = snap
            .interface(bound)
            .ok_or(Reason::InterfaceGone { interface: bound })?;
        if !ifc.admin_up {
            return Err(Reason::InterfaceDown {
                interface: named(ifc),
            });
        }
    }
    let route = match answer {
        Ok(route) => route,
        Err(errno) => return Err(reason_for_errno(*errno, query, snap)),
    };
    match route.kind {
        // Table 0 names no table: a plain IPv4 lookup with an output interface and no matching
        // route gets a made-up on-link route ("assume the destination is on link"). Not a route.
        RouteType::Unicast if route.table == 0 => Err(Reason::NoRoute),
        RouteType::Unicast => unicast_path(query, route, &local, snap),
        RouteType::Local => local_path(route, snap),
        other => Err(Reason::RouteType(other)),
    }
}

/// The usable entries of the local address (on the target's interface, for an IPv6 link-local
/// address with one).
fn local_addresses<'a>(query: &RouteQuery, snap: &'a Snapshot) -> Result<Vec<&'a Address>, Reason> {
    let scoped = is_ipv6_link_local(query.local);
    let entries: Vec<&Address> = snap
        .find_address(query.local)
        .filter(|a| !scoped || query.interface.is_none_or(|i| a.interface == i))
        .collect();
    let Some(first) = entries.first() else {
        return Err(Reason::LocalAddressRemoved);
    };
    let flags = first.flags;
    let usable: Vec<&Address> = entries.into_iter().filter(|a| a.is_usable()).collect();
    if usable.is_empty() {
        return Err(Reason::LocalAddressUnusable { flags });
    }
    Ok(usable)
}

/// What a failed lookup means. The kernel answers the same errno with and without
/// `RTM_F_FIB_MATCH`:
///
/// | errno          | kernel's cause                                            | reason |
/// |----------------|-----------------------------------------------------------|--------|
/// | `ENETUNREACH`  | no route; a `throw` route or `unreachable` rule with nothing after it; IPv4 source not this host's; IPv4 output interface down | [`Reason::NoRoute`], or [`Reason::InterfaceDown`] / [`Reason::InterfaceGone`] when the target's interface is down or gone |
/// | `EHOSTUNREACH` | an `unreachable` route; for an IPv4 lookup with an output interface, no route through that interface (the kernel makes up an on-link route, which `RTM_F_FIB_MATCH` refuses) | [`Reason::RouteType`]`(Unreachable)`; [`Reason::NoRoute`] for an IPv4 lookup with an output interface |
/// | `EACCES`       | a `prohibit` route or rule                                | [`Reason::RouteType`]`(Prohibit)` |
/// | `EINVAL`       | a `blackhole` route or rule                               | [`Reason::RouteType`]`(Blackhole)` |
/// | `EAGAIN`       | a `throw` route (kernel-internal; not seen from user space) | [`Reason::RouteType`]`(Throw)` |
/// | `ENODEV`       | the output interface does not exist (IPv4)                | [`Reason::InterfaceGone`] |
/// | anything else  |                                                           | [`Reason::LookupFailed`] |
pub fn reason_for_errno(errno: Errno, query: &RouteQuery, snapshot: &Snapshot) -> Reason {
    let errno = errno.saturating_abs();
    match errno {
        libc::ENETUNREACH => match query.interface.map(|i| (i, snapshot.interface(i))) {
            Some((i, None)) => Reason::InterfaceGone { interface: i },
            Some((_, Some(ifc))) if !ifc.admin_up => Reason::InterfaceDown {
                interface: named(ifc),
            },
            _ => Reason::NoRoute,
        },
        // With an output interface, IPv4 turns every failed lookup (no route through it, or a
        // reject route) into a made-up on-link route, and FIB_MATCH answers that with
        // EHOSTUNREACH: no route of the interface's, whatever covers the remote elsewhere.
        libc::EHOSTUNREACH if query.interface.is_some() && query.remote.is_ipv4() => {
            Reason::NoRoute
        }
        libc::EHOSTUNREACH => Reason::RouteType(RouteType::Unreachable),
        libc::EACCES => Reason::RouteType(RouteType::Prohibit),
        libc::EINVAL => Reason::RouteType(RouteType::Blackhole),
        libc::EAGAIN => Reason::RouteType(RouteType::Throw),
        libc::ENODEV => match query.interface {
            Some(i) => Reason::InterfaceGone { interface: i },
            None => Reason::LookupFailed { errno },
        },
        _ => Reason::LookupFailed { errno },
    }
}

/// A loopback remote or an own address: packets never leave the host, they go through the
/// loopback interface, which must be up. The kernel names `lo` (plain lookup) or the interface
/// that holds the address (`RTM_F_FIB_MATCH`); the path names the loopback interface either way.
fn local_path(route: &Route, snap: &Snapshot) -> Result<Path, Reason> {
    let lo = snap.interfaces().find(|i| i.kind == LinkKind::Loopback);
    let index = match (lo, route.interface) {
        (Some(lo), _) => lo.index,
        (None, Some(i)) => i,
        (None, None) => return Err(Reason::NoRoute),
    };
    let ifc = running(index, snap)?;
    Ok(Path {
        interface: ifc.index,
        interface_name: ifc.name.clone(),
        gateway: None,
        source: route.prefsrc,
    })
}

fn unicast_path(
    query: &RouteQuery,
    route: &Route,
    local: &[&Address],
    snap: &Snapshot,
) -> Result<Path, Reason> {
    let preferred = |i: u32| match query.interface {
        Some(bound) => i == bound,
        None => local.iter().any(|a| a.interface == i),
    };
    let (interface, gateway, linkdown) = next_hop(route, preferred, snap).ok_or(Reason::NoRoute)?;
    if query.interface.is_some_and(|bound| bound != interface) {
        return Err(Reason::NoRoute);
    }
    let ifc = running(interface, snap)?;
    if linkdown {
        return Err(Reason::LinkDown {
            interface: named(ifc),
        });
    }
    let on_path = local.iter().any(|a| a.interface == interface);
    // An address on the loopback interface (a service address) is used from any interface.
    let on_loopback = local.iter().any(|a| {
        snap.interface(a.interface)
            .is_some_and(|i| i.kind == LinkKind::Loopback)
    });
    if !on_path && !on_loopback {
        if let Some(a) = local.first() {
            return Err(Reason::InterfaceMismatch {
                path_interface: named(ifc),
                local_interface: named_index(a.interface, snap),
            });
        }
    }
    Ok(Path {
        interface,
        interface_name: ifc.name.clone(),
        gateway,
        source: route.prefsrc,
    })
}

/// The next hop packets take: the route's own, or for a multipath route (the kernel names all
/// hops, not the one its hash picks) the first usable hop on a `preferred` interface (the bound
/// one, else the local address's), else the first usable hop, else the first hop.
fn next_hop(
    route: &Route,
    preferred: impl Fn(u32) -> bool,
    snap: &Snapshot,
) -> Option<(u32, Option<IpAddr>, bool)> {
    if route.nexthops.is_empty() {
        return route.interface.map(|i| (i, route.gateway, route.linkdown));
    }
    let usable =
        |i: u32, linkdown: bool| !linkdown && snap.interface(i).is_some_and(Interface::is_running);
    let hops = &route.nexthops;
    hops.iter()
        .find(|h| usable(h.interface, h.linkdown) && preferred(h.interface))
        .or_else(|| hops.iter().find(|h| usable(h.interface, h.linkdown)))
        .or(hops.first())
        .map(|h| (h.interface, h.gateway, h.linkdown))
}

/// The interface, if it exists, is up and has carrier.
fn running(index: u32, snap: &Snapshot) -> Result<&Interface, Reason> {
    let ifc = snap
        .interface(index)
        .ok_or(Reason::InterfaceGone { interface: index })?;
    if !ifc.admin_up {
        return Err(Reason::InterfaceDown {
            interface: named(ifc),
        });
    }
    if !ifc.carrier {
        return Err(Reason::CarrierLost {
            interface: named(ifc),
        });
    }
    Ok(ifc)
}

fn named(ifc: &Interface) -> NamedInterface {
    NamedInterface {
        index: ifc.index,
        name: ifc.name.clone(),
    }
}

/// The interface by index, named `#index` when the snapshot does not know it.
fn named_index(index: u32, snap: &Snapshot) -> NamedInterface {
    NamedInterface {
        index,
        name: snap
            .interface_name(index)
            .map_or_else(|| format!("#{index}"), str::to_owned),
    }
}
