//! The route lookup a backend falls back to when the system cannot answer one: a longest-prefix
//! match over the model's own routes, and [`LookupSource`], which says where an answer came
//! from.
//!
//! The system's own lookup (Linux's `RTM_GETROUTE`, Windows' `GetBestRoute2`) is always
//! preferred: it knows policy routing, per-interface metrics and the host model. Where it is
//! missing or a stub (Wine's `GetBestRoute2` answers `ERROR_NOT_SUPPORTED`, see
//! `docs/windows.md`), [`lookup_in_model`] finds the route the model says packets take, and the
//! answer is judged by the same rules ([`evaluate`](super::evaluate)) as the system's.
//!
//! # The match
//!
//! 1. Routes of the remote's family whose destination contains the remote.
//! 2. When the query names an output interface, only routes through it (and routes with no
//!    interface, the reject routes, which apply whatever the interface).
//! 3. Tables in order: `local`, `main`, `default`, then any other by number (policy rules are not
//!    evaluated: a backend that reports them answers lookups itself; Windows has none). A
//!    `throw` route ends the search in its table, as the kernel's does.
//! 4. In a table: the longest prefix, then the lowest metric, then a route through the
//!    interface that holds the local address (a source address is honoured: Windows' strong host
//!    model sends from an address out of its own interface), then the lowest interface index, so
//!    that the answer never depends on the order the routes were read in.
//!
//! No route: `ENETUNREACH`, which the rules read as [`Reason::NoRoute`](super::Reason::NoRoute).

use std::cmp::Reverse;
use std::fmt;

use serde::Serialize;

use crate::model::{Family, Route, RouteType, Snapshot};
use crate::reach::evaluate::{Errno, LookupAnswer};
use crate::reach::target::RouteQuery;

/// The errno of "no route" (`ENETUNREACH` of the target's C library), for a backend that maps
/// its system's answer to the rules' terms.
pub const NO_ROUTE: Errno = libc::ENETUNREACH;
/// The errno of "host unreachable" (`EHOSTUNREACH`): an `unreachable` route covers the remote.
pub const HOST_UNREACHABLE: Errno = libc::EHOSTUNREACH;

/// Where the route behind a verdict came from.
///
/// Serialises as `"system"` or `"model"` (the `lookup` field of `netreach reach --json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LookupSource {
    /// The operating system's route lookup answered (Linux `RTM_GETROUTE`, Windows
    /// `GetBestRoute2`).
    System,
    /// The system could not answer; the route is the longest-prefix match over the model's
    /// routes ([`lookup_in_model`]).
    Model,
}

impl LookupSource {
    /// The name used in JSON: `system` or `model`.
    pub fn as_str(self) -> &'static str {
        match self {
            LookupSource::System => "system",
            LookupSource::Model => "model",
        }
    }
}

impl fmt::Display for LookupSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The route the model says packets for `query` take, or `ENETUNREACH`. Pure. See the
/// [module docs](self) for the order of the match.
///
/// # Examples
///
/// ```
/// use netreach_core::reach::{evaluate, lookup_in_model, RouteQuery};
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
/// let on_link = Route::unicast("198.18.0.0/24".parse().unwrap(), None, 2);
/// let snap = Snapshot::from_parts([eth], [addr], [on_link]);
/// let query = RouteQuery {
///     remote: "198.18.0.9".parse().unwrap(),
///     local: "198.18.0.2".parse().unwrap(),
///     interface: None,
/// };
/// let answer = lookup_in_model(&query, &snap);
/// assert_eq!(evaluate(&query, &answer, &snap).to_string(), "reachable dev eth0 (on link)");
/// ```
pub fn lookup_in_model(query: &RouteQuery, snapshot: &Snapshot) -> LookupAnswer {
    let family = Family::of(&query.remote);
    let local_interfaces: Vec<u32> = snapshot
        .find_address(query.local)
        .map(|a| a.interface)
        .collect();
    let mut candidates: Vec<&Route> = snapshot
        .routes()
        .filter(|r| r.family == family && r.destination.contains(&query.remote))
        .filter(|r| match query.interface {
            Some(bound) => r.interface.is_none() || r.uses_interface(bound),
            None => true,
        })
        .collect();
    candidates.sort_by_key(|r| {
        let on_local = r.interface.is_some_and(|i| local_interfaces.contains(&i));
        (
            table_rank(r.table),
            Reverse(r.destination.prefix_len()),
            r.metric,
            !on_local,
            r.interface.unwrap_or(u32::MAX),
        )
    });
    let mut thrown = None;
    for r in candidates {
        if thrown == Some(r.table) {
            continue;
        }
        if r.kind == RouteType::Throw {
            thrown = Some(r.table);
            continue;
        }
        return Ok(r.clone());
    }
    Err(NO_ROUTE)
}

/// The order tables are searched in: `local`, `main`, `default`, then the others by number.
fn table_rank(table: u32) -> (u8, u32) {
    match table {
        Route::LOCAL_TABLE => (0, 0),
        Route::MAIN_TABLE => (1, 0),
        253 => (2, 0),
        n => (3, n),
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::flags::AddressFlags;
    use crate::model::{Address, Interface, LinkKind, Scope};
    use crate::reach::{Reachability, Reason, evaluate};

    fn ifc(index: u32, name: &str) -> Interface {
        let mut i = Interface::new(index, name, LinkKind::Ethernet);
        i.admin_up = true;
        i.carrier = true;
        i
    }

    fn addr(interface: u32, a: &str, len: u8) -> Address {
        Address {
            interface,
            address: a.parse().unwrap(),
            prefix_len: len,
            scope: Scope::Global,
            flags: AddressFlags::empty(),
        }
    }

    fn route(dst: &str, gw: Option<&str>, interface: u32, metric: u32) -> Route {
        let mut r = Route::unicast(
            dst.parse().unwrap(),
            gw.map(|g| g.parse().unwrap()),
            interface,
        );
        r.metric = metric;
        r
    }

    fn q(remote: &str, local: &str, interface: Option<u32>) -> RouteQuery {
        RouteQuery {
            remote: remote.parse().unwrap(),
            local: local.parse().unwrap(),
            interface,
        }
    }

    fn lab() -> Snapshot {
        Snapshot::from_parts(
            [ifc(2, "eth0"), ifc(3, "eth1")],
            [addr(2, "198.18.0.2", 24), addr(3, "198.18.1.2", 24)],
            [
                route("198.18.0.0/24", None, 2, 0),
                route("198.18.1.0/24", None, 3, 0),
                route("0.0.0.0/0", Some("198.18.0.1"), 2, 100),
                route("0.0.0.0/0", Some("198.18.1.1"), 3, 200),
                route("198.18.64.0/18", Some("198.18.1.1"), 3, 0),
            ],
        )
    }

    fn via(answer: &LookupAnswer) -> (Option<IpAddr>, Option<u32>) {
        let r = answer.as_ref().expect("a route");
        (r.gateway, r.interface)
    }

    #[test]
    fn on_link_remote_takes_the_connected_route() {
        let snap = lab();
        let query = q("198.18.0.9", "198.18.0.2", None);
        let answer = lookup_in_model(&query, &snap);
        assert_eq!(via(&answer), (None, Some(2)));
        assert_eq!(
            evaluate(&query, &answer, &snap).to_string(),
            "reachable dev eth0 (on link)"
        );
    }

    #[test]
    fn longest_prefix_wins_over_metric() {
        let snap = lab();
        let answer = lookup_in_model(&q("198.18.70.1", "198.18.1.2", None), &snap);
        assert_eq!(via(&answer), (Some("198.18.1.1".parse().unwrap()), Some(3)));
    }

    #[test]
    fn lowest_metric_wins_among_equal_prefixes() {
        let snap = lab();
        let answer = lookup_in_model(&q("198.19.0.1", "198.18.1.2", None), &snap);
        assert_eq!(via(&answer), (Some("198.18.0.1".parse().unwrap()), Some(2)));
    }

    #[test]
    fn the_source_breaks_a_tie_toward_its_interface() {
        let mut snap = lab();
        let mut both = lab().routes().cloned().collect::<Vec<_>>();
        both.push(route("198.19.0.0/16", Some("198.18.0.1"), 2, 5));
        both.push(route("198.19.0.0/16", Some("198.18.1.1"), 3, 5));
        snap = Snapshot::from_parts(
            snap.interfaces().cloned().collect::<Vec<_>>(),
            snap.addresses().cloned().collect::<Vec<_>>(),
            both,
        );
        let from1 = lookup_in_model(&q("198.19.0.1", "198.18.1.2", None), &snap);
        assert_eq!(via(&from1).1, Some(3));
        let from0 = lookup_in_model(&q("198.19.0.1", "198.18.0.2", None), &snap);
        assert_eq!(via(&from0).1, Some(2));
    }

    #[test]
    fn a_bound_interface_restricts_the_routes() {
        let snap = lab();
        let answer = lookup_in_model(&q("198.19.0.1", "198.18.1.2", Some(3)), &snap);
        assert_eq!(via(&answer), (Some("198.18.1.1".parse().unwrap()), Some(3)));
        // Nothing through eth1 covers eth0's subnet but the default route.
        let answer = lookup_in_model(&q("198.18.0.9", "198.18.1.2", Some(3)), &snap);
        assert_eq!(via(&answer).0, Some("198.18.1.1".parse().unwrap()));
    }

    #[test]
    fn no_route_is_enetunreach_and_reads_as_no_route() {
        let snap = Snapshot::from_parts(
            [ifc(2, "eth0")],
            [addr(2, "198.18.0.2", 24)],
            [route("198.18.0.0/24", None, 2, 0)],
        );
        let query = q("198.19.0.1", "198.18.0.2", None);
        let answer = lookup_in_model(&query, &snap);
        assert_eq!(answer, Err(libc::ENETUNREACH));
        assert_eq!(
            evaluate(&query, &answer, &snap),
            Reachability::Unreachable(Reason::NoRoute)
        );
    }

    #[test]
    fn the_other_family_never_matches() {
        let snap = lab();
        let answer = lookup_in_model(&q("2001:db8::1", "2001:db8::2", None), &snap);
        assert_eq!(answer, Err(libc::ENETUNREACH));
    }

    #[test]
    fn a_reject_route_is_the_answer_and_a_throw_ends_its_table() {
        let mut reject = route("198.19.0.0/16", None, 2, 0);
        reject.kind = RouteType::Unreachable;
        reject.interface = None;
        let mut throw = route("198.18.0.0/24", None, 2, 0);
        throw.kind = RouteType::Throw;
        throw.interface = None;
        throw.table = 100;
        let mut in_100 = route("0.0.0.0/0", Some("198.18.0.1"), 2, 0);
        in_100.table = 100;
        let mut routes: Vec<Route> = lab().routes().cloned().collect();
        routes.extend([reject, throw, in_100]);
        let snap = Snapshot::from_parts(
            [ifc(2, "eth0"), ifc(3, "eth1")],
            [addr(2, "198.18.0.2", 24)],
            routes,
        );
        let query = q("198.19.0.1", "198.18.0.2", None);
        let answer = lookup_in_model(&query, &snap);
        assert_eq!(
            evaluate(&query, &answer, &snap),
            Reachability::Unreachable(Reason::RouteType(RouteType::Unreachable))
        );
        // Table 100 comes after main, whose /24 answers first.
        let answer = lookup_in_model(&q("198.18.0.9", "198.18.0.2", None), &snap);
        assert_eq!(answer.unwrap().table, Route::MAIN_TABLE);
    }

    #[test]
    fn the_local_table_comes_first() {
        let mut local = route("198.18.0.2/32", None, 2, 0);
        local.kind = RouteType::Local;
        local.table = Route::LOCAL_TABLE;
        let mut routes: Vec<Route> = lab().routes().cloned().collect();
        routes.push(local);
        let snap = Snapshot::from_parts(
            [ifc(2, "eth0"), ifc(3, "eth1")],
            [addr(2, "198.18.0.2", 24)],
            routes,
        );
        let answer = lookup_in_model(&q("198.18.0.2", "198.18.0.2", None), &snap);
        assert_eq!(answer.unwrap().kind, RouteType::Local);
    }

    #[test]
    fn the_answer_does_not_depend_on_the_order_of_routes() {
        let a = route("198.19.0.0/16", Some("198.18.0.1"), 2, 5);
        let b = route("198.19.0.0/16", Some("198.18.1.1"), 3, 5);
        let one =
            Snapshot::from_parts([ifc(2, "eth0"), ifc(3, "eth1")], [], [a.clone(), b.clone()]);
        let two = Snapshot::from_parts([ifc(2, "eth0"), ifc(3, "eth1")], [], [b, a]);
        let query = q("198.19.0.1", "198.18.9.9", None);
        assert_eq!(lookup_in_model(&query, &one), lookup_in_model(&query, &two));
        assert_eq!(via(&lookup_in_model(&query, &one)).1, Some(2));
    }

    #[test]
    fn source_names() {
        assert_eq!(LookupSource::System.to_string(), "system");
        assert_eq!(
            serde_json::to_string(&LookupSource::Model).unwrap(),
            "\"model\""
        );
    }
}
