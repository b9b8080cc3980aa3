//! Table-driven scenarios for the connectivity rules and the change tracker.
//!
//! Networks are built from the kernel's point of view, as [`Update`]s applied to a snapshot, so
//! the tracker sees exactly the events the live monitor will give it. Addresses come from
//! 198.18.0.0/15 and 2001:db8::/32, plus fe80:: link-locals.

mod levels;
mod tracker;

use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::{Rule, RuleAction};
use crate::{
    Address, AddressFlags, Family, Interface, LinkKind, NextHop, OperState, Route, RouteType,
    Scope, Snapshot, Update,
};

/// Interface 2: the wired uplink.
const ETH0: u32 = 2;
/// Interface 3: a second wired uplink or a multipath hop.
const ETH1: u32 = 3;
/// Interface 4: wireless.
const WLAN0: u32 = 4;
/// Interface 5: a veth of a container runtime.
const VETH0: u32 = 5;
/// Interface 6: a cellular modem (`Ethernet` to the kernel, cellular to sysfs).
const WWAN0: u32 = 6;
/// Interface 7: a WireGuard tunnel.
const WG0: u32 = 7;

/// An interface that is up with carrier.
fn running(index: u32, name: &str, kind: LinkKind) -> Interface {
    let mut i = Interface::new(index, name, kind);
    i.admin_up = true;
    i.carrier = true;
    i.oper_state = OperState::Up;
    i
}

fn link(index: u32, name: &str, kind: LinkKind) -> Update {
    Update::NewLink(running(index, name, kind))
}

fn eth(index: u32, name: &str) -> Update {
    link(index, name, LinkKind::Ethernet)
}

fn lo() -> Vec<Update> {
    vec![
        link(1, "lo", LinkKind::Loopback),
        Update::NewAddress(Address {
            scope: Scope::Host,
            ..address(1, "127.0.0.1/8")
        }),
        Update::NewAddress(Address {
            scope: Scope::Host,
            ..address(1, "::1/128")
        }),
    ]
}

/// An interface changed by `f` (from the running state).
fn link_with(index: u32, name: &str, kind: LinkKind, f: impl FnOnce(&mut Interface)) -> Update {
    let mut i = running(index, name, kind);
    f(&mut i);
    Update::NewLink(i)
}

fn address(index: u32, cidr: &str) -> Address {
    let net: IpNet = cidr.parse().unwrap();
    let mut a = Address {
        interface: index,
        address: net.addr(),
        prefix_len: net.prefix_len(),
        scope: Scope::Global,
        flags: AddressFlags::empty(),
    };
    if a.is_link_local() {
        a.scope = Scope::Link;
    }
    a
}

fn addr(index: u32, cidr: &str) -> Update {
    Update::NewAddress(address(index, cidr))
}

fn addr_flagged(index: u32, cidr: &str, flags: AddressFlags) -> Update {
    Update::NewAddress(Address {
        flags,
        ..address(index, cidr)
    })
}

fn del_addr(index: u32, cidr: &str) -> Update {
    Update::DelAddress(address(index, cidr))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A unicast route in main: `via` is a gateway or `None` for an on-link route.
fn route(dst: &str, via: Option<&str>, index: u32) -> Route {
    Route::unicast(dst.parse().unwrap(), via.map(ip), index)
}

fn default4(via: &str, index: u32) -> Route {
    route("0.0.0.0/0", Some(via), index)
}

fn default6(via: &str, index: u32) -> Route {
    Route {
        metric: 1024,
        ..route("::/0", Some(via), index)
    }
}

fn add(route: Route) -> Update {
    Update::NewRoute {
        route,
        replace: false,
    }
}

fn del(route: Route) -> Update {
    Update::DelRoute(route)
}

fn metric(route: Route, metric: u32) -> Route {
    Route { metric, ..route }
}

fn table(route: Route, table: u32) -> Route {
    Route { table, ..route }
}

fn linkdown(route: Route) -> Route {
    Route {
        linkdown: true,
        ..route
    }
}

fn typed(route: Route, kind: RouteType) -> Route {
    Route {
        kind,
        gateway: None,
        interface: None,
        ..route
    }
}

fn multipath(dst: &str, hops: &[(&str, u32, bool)]) -> Route {
    let nexthops: Vec<NextHop> = hops
        .iter()
        .map(|&(via, interface, linkdown)| NextHop {
            gateway: Some(ip(via)),
            interface,
            linkdown,
        })
        .collect();
    Route {
        gateway: nexthops[0].gateway,
        interface: Some(nexthops[0].interface),
        linkdown: nexthops[0].linkdown,
        nexthops,
        ..route(dst, None, 0)
    }
}

/// The kernel's default IPv4 rules (local, main, default).
fn default_rules(family: Family) -> Vec<Rule> {
    vec![
        Rule::lookup(family, 0, Route::LOCAL_TABLE),
        Rule::lookup(family, 32766, Route::MAIN_TABLE),
        Rule::lookup(family, 32767, 253),
    ]
}

fn rules(rules: Vec<Rule>) -> Vec<Update> {
    rules.into_iter().map(Update::NewRule).collect()
}

fn selective(mut rule: Rule, source: &str) -> Rule {
    rule.source = Some(source.parse().unwrap());
    rule
}

/// wg-quick's `not fwmark 0xca6c lookup 51820`.
fn not_fwmark(family: Family, priority: u32, table: u32) -> Rule {
    Rule {
        fwmark: Some(0xca6c),
        invert: true,
        action: RuleAction::ToTable(table),
        ..Rule::lookup(family, priority, table)
    }
}

/// eth0 up with IPv4 198.18.0.2/24 and a default route via 198.18.0.1.
fn v4_internet(index: u32, name: &str, third: u8) -> Vec<Update> {
    vec![
        eth(index, name),
        addr(index, &format!("198.18.{third}.2/24")),
        add(route(&format!("198.18.{third}.0/24"), None, index)),
        add(default4(&format!("198.18.{third}.1"), index)),
    ]
}

/// IPv6 on `index`: fe80::2, 2001:db8:N::2/64 and a default route via fe80::1.
fn v6_internet(index: u32, n: u16) -> Vec<Update> {
    vec![
        addr(index, &format!("fe80::{n:x}/64")),
        add(Route {
            metric: 256,
            ..route("fe80::/64", None, index)
        }),
        addr(index, &format!("2001:db8:{n:x}::2/64")),
        add(Route {
            metric: 256,
            ..route(&format!("2001:db8:{n:x}::/64"), None, index)
        }),
        add(default6("fe80::1", index)),
    ]
}

/// lo, and eth0 with both families online.
fn dual_stack() -> Vec<Update> {
    let mut u = lo();
    u.extend(v4_internet(ETH0, "eth0", 0));
    u.extend(v6_internet(ETH0, 0));
    u
}

fn snapshot(updates: &[Update]) -> Snapshot {
    let mut s = Snapshot::new();
    for u in updates {
        s.apply(u.clone());
    }
    s
}

fn concat(parts: &[&[Update]]) -> Vec<Update> {
    parts.iter().flat_map(|p| p.iter().cloned()).collect()
}
