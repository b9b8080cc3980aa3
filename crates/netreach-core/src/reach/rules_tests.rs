//! Table-driven tests of the reachability rules ([`super::evaluate`]): every reason, same subnet
//! and via a gateway, loopback, and the errno mapping, with the answers of the fake kernel.

use crate::event::Update;
use crate::flags::AddressFlags;
use crate::model::{Interface, NextHop, Route, RouteType, Snapshot};
use crate::reach::LookupAnswer;
use crate::reach::sim::{ETH0, LO, WLAN0, addr, ip, kernel_lookup, network, reject, route};
use crate::reach::{
    NamedInterface, Path, Reachability, Reason, RouteQuery, evaluate, reason_for_errno,
};

fn q(local: &str, remote: &str) -> RouteQuery {
    RouteQuery {
        remote: ip(remote),
        local: ip(local),
        interface: None,
    }
}

fn path(interface: u32, name: &str, gateway: &str, source: &str) -> Reachability {
    let opt = |s: &str| (!s.is_empty()).then(|| ip(s));
    Reachability::Reachable(Path {
        interface,
        interface_name: name.into(),
        gateway: opt(gateway),
        source: opt(source),
    })
}

fn unreachable(reason: Reason) -> Reachability {
    Reachability::Unreachable(reason)
}

fn iface(index: u32, name: &str) -> NamedInterface {
    NamedInterface {
        index,
        name: name.into(),
    }
}

fn with(updates: Vec<Update>) -> Snapshot {
    let mut s = network();
    for u in updates {
        s.apply(u);
    }
    s
}

fn link(index: u32, f: impl Fn(&mut Interface)) -> Update {
    let mut i = network().interface(index).cloned().unwrap();
    f(&mut i);
    Update::NewLink(i)
}

fn new_route(r: Route) -> Update {
    Update::NewRoute {
        route: r,
        replace: false,
    }
}

/// Every rule and every reason, with the answer the fake kernel gives for the snapshot.
#[test]
fn rules_table() {
    let tentative = {
        let mut a = addr(ETH0, "2001:db8::2/64");
        a.flags = AddressFlags::TENTATIVE;
        a
    };
    let dadfailed = {
        let mut a = addr(ETH0, "2001:db8::2/64");
        a.flags = AddressFlags::DADFAILED | AddressFlags::TENTATIVE;
        a
    };
    let mut linkdown = route("0.0.0.0/0", "198.18.0.1", ETH0);
    linkdown.linkdown = true;
    let mut multipath = route("198.18.30.0/24", "198.18.0.1", ETH0);
    multipath.nexthops = vec![
        NextHop {
            gateway: Some(ip("198.18.0.1")),
            interface: ETH0,
            linkdown: false,
        },
        NextHop {
            gateway: Some(ip("198.18.1.1")),
            interface: WLAN0,
            linkdown: false,
        },
    ];
    let cases: Vec<(&str, RouteQuery, Vec<Update>, Reachability)> = vec![
        (
            "same subnet needs only the link",
            q("198.18.0.2", "198.18.0.1"),
            vec![],
            path(ETH0, "eth0", "", "198.18.0.2"),
        ),
        (
            "others need the gateway route",
            q("198.18.0.2", "198.18.5.1"),
            vec![],
            path(ETH0, "eth0", "198.18.0.1", ""),
        ),
        (
            "ipv6 via gateway",
            q("2001:db8::2", "2001:db8:5::1"),
            vec![],
            path(ETH0, "eth0", "2001:db8::1", ""),
        ),
        (
            "loopback",
            q("127.0.0.1", "127.0.0.1"),
            vec![],
            path(LO, "lo", "", "127.0.0.1"),
        ),
        (
            "ipv6 loopback",
            q("::1", "::1"),
            vec![],
            path(LO, "lo", "", "::1"),
        ),
        (
            "own address goes through lo",
            q("198.18.1.2", "198.18.0.2"),
            vec![],
            path(LO, "lo", "", "198.18.0.2"),
        ),
        (
            "loopback needs lo up",
            q("127.0.0.1", "127.0.0.1"),
            vec![link(LO, |i| {
                i.admin_up = false;
                i.carrier = false;
            })],
            unreachable(Reason::InterfaceDown {
                interface: iface(LO, "lo"),
            }),
        ),
        (
            "local address removed",
            q("198.18.0.2", "198.18.5.1"),
            vec![Update::DelAddress(addr(ETH0, "198.18.0.2/24"))],
            unreachable(Reason::LocalAddressRemoved),
        ),
        (
            "local address tentative",
            q("2001:db8::2", "2001:db8:5::1"),
            vec![Update::NewAddress(tentative)],
            unreachable(Reason::LocalAddressUnusable {
                flags: AddressFlags::TENTATIVE,
            }),
        ),
        (
            "local address dadfailed",
            q("2001:db8::2", "2001:db8:5::1"),
            vec![Update::NewAddress(dadfailed)],
            unreachable(Reason::LocalAddressUnusable {
                flags: AddressFlags::DADFAILED | AddressFlags::TENTATIVE,
            }),
        ),
        (
            "carrier lost",
            q("198.18.0.2", "198.18.5.1"),
            vec![
                link(ETH0, |i| i.carrier = false),
                new_route(linkdown.clone()),
            ],
            unreachable(Reason::CarrierLost {
                interface: iface(ETH0, "eth0"),
            }),
        ),
        (
            "linkdown before the snapshot knows",
            q("198.18.0.2", "198.18.5.1"),
            vec![new_route(linkdown)],
            unreachable(Reason::LinkDown {
                interface: iface(ETH0, "eth0"),
            }),
        ),
        (
            "no route",
            q("198.18.0.2", "198.18.5.1"),
            vec![Update::DelRoute(route("0.0.0.0/0", "198.18.0.1", ETH0))],
            unreachable(Reason::NoRoute),
        ),
        (
            "unreachable route",
            q("198.18.0.2", "198.18.10.1"),
            vec![new_route(reject("198.18.10.0/24", RouteType::Unreachable))],
            unreachable(Reason::RouteType(RouteType::Unreachable)),
        ),
        (
            "blackhole route",
            q("198.18.0.2", "198.18.11.1"),
            vec![new_route(reject("198.18.11.0/24", RouteType::Blackhole))],
            unreachable(Reason::RouteType(RouteType::Blackhole)),
        ),
        (
            "prohibit route",
            q("198.18.0.2", "198.18.12.1"),
            vec![new_route(reject("198.18.12.0/24", RouteType::Prohibit))],
            unreachable(Reason::RouteType(RouteType::Prohibit)),
        ),
        // A throw route ends the lookup in its table, even with a default route there:
        // the kernel answers ENETUNREACH when no later rule matches.
        (
            "throw leaves the table",
            q("198.18.0.2", "198.18.13.1"),
            vec![new_route(reject("198.18.13.0/24", RouteType::Throw))],
            unreachable(Reason::NoRoute),
        ),
        (
            "path moved to another interface",
            q("198.18.1.2", "198.18.5.1"),
            vec![],
            unreachable(Reason::InterfaceMismatch {
                path_interface: iface(ETH0, "eth0"),
                local_interface: iface(WLAN0, "wlan0"),
            }),
        ),
        (
            "service address on lo is used anywhere",
            q("198.18.9.9", "198.18.5.1"),
            vec![Update::NewAddress(addr(LO, "198.18.9.9/32"))],
            path(ETH0, "eth0", "198.18.0.1", ""),
        ),
        (
            "multipath prefers the local address's hop",
            q("198.18.1.2", "198.18.30.1"),
            vec![new_route(multipath)],
            path(WLAN0, "wlan0", "198.18.1.1", ""),
        ),
        (
            "link-local with its interface",
            RouteQuery {
                interface: Some(ETH0),
                ..q("fe80::2", "fe80::1")
            },
            vec![],
            path(ETH0, "eth0", "", ""),
        ),
    ];
    for (name, query, updates, want) in cases {
        let snap = with(updates);
        let answer = kernel_lookup(&snap, &query);
        assert_eq!(
            evaluate(&query, &answer, &snap),
            want,
            "{name}: answer {answer:?}"
        );
    }
}

/// The snapshot alone decides once the kernel's answer is known.
#[test]
fn snapshot_decides_on_a_known_answer() {
    let query = q("198.18.0.2", "198.18.5.1");
    let answer = kernel_lookup(&network(), &query);
    let down = with(vec![link(ETH0, |i| i.admin_up = false)]);
    assert_eq!(
        evaluate(&query, &answer, &down),
        unreachable(Reason::InterfaceDown {
            interface: iface(ETH0, "eth0")
        })
    );
    let gone = with(vec![Update::DelLink(WLAN0), Update::DelLink(ETH0)]);
    // The address went with the interface: the local reason comes first.
    assert_eq!(
        evaluate(&query, &answer, &gone),
        unreachable(Reason::LocalAddressRemoved)
    );
    let renamed = with(vec![link(ETH0, |i| i.name = "lan".into())]);
    assert_eq!(
        evaluate(&query, &answer, &renamed),
        path(ETH0, "lan", "198.18.0.1", "")
    );
    // A path through an interface the snapshot does not know.
    let odd = Ok(route("0.0.0.0/0", "198.18.0.1", 9));
    assert_eq!(
        evaluate(&query, &odd, &network()),
        unreachable(Reason::InterfaceGone { interface: 9 })
    );
    // A route type that carries no unicast traffic.
    let brd = Ok(reject("198.18.5.255/32", RouteType::Broadcast));
    assert_eq!(
        evaluate(&query, &brd, &network()),
        unreachable(Reason::RouteType(RouteType::Broadcast))
    );
}

#[test]
fn errno_table() {
    let bound = RouteQuery {
        interface: Some(ETH0),
        ..q("198.18.0.2", "198.18.5.1")
    };
    let free = q("198.18.0.2", "198.18.5.1");
    let down = with(vec![link(ETH0, |i| i.admin_up = false)]);
    let net = network();
    let cases = [
        (libc::ENETUNREACH, free, &net, Reason::NoRoute),
        (-libc::ENETUNREACH, free, &net, Reason::NoRoute),
        (
            libc::ENETUNREACH,
            bound,
            &down,
            Reason::InterfaceDown {
                interface: iface(ETH0, "eth0"),
            },
        ),
        (
            libc::EHOSTUNREACH,
            free,
            &net,
            Reason::RouteType(RouteType::Unreachable),
        ),
        // IPv4 with an output interface: FIB_MATCH refusing the made-up on-link route.
        (libc::EHOSTUNREACH, bound, &net, Reason::NoRoute),
        (
            libc::EHOSTUNREACH,
            RouteQuery {
                interface: Some(ETH0),
                ..q("2001:db8::2", "2001:db8:5::1")
            },
            &net,
            Reason::RouteType(RouteType::Unreachable),
        ),
        (
            libc::EACCES,
            free,
            &net,
            Reason::RouteType(RouteType::Prohibit),
        ),
        (
            libc::EINVAL,
            free,
            &net,
            Reason::RouteType(RouteType::Blackhole),
        ),
        (
            libc::EAGAIN,
            free,
            &net,
            Reason::RouteType(RouteType::Throw),
        ),
        (
            libc::ENODEV,
            bound,
            &net,
            Reason::InterfaceGone { interface: ETH0 },
        ),
        (
            libc::ENODEV,
            free,
            &net,
            Reason::LookupFailed {
                errno: libc::ENODEV,
            },
        ),
        (
            libc::EADDRNOTAVAIL,
            free,
            &net,
            Reason::LookupFailed {
                errno: libc::EADDRNOTAVAIL,
            },
        ),
        (
            i32::MIN,
            free,
            &net,
            Reason::LookupFailed { errno: i32::MAX },
        ),
    ];
    for (errno, query, snap, want) in cases {
        assert_eq!(reason_for_errno(errno, &query, snap), want, "errno {errno}");
    }
}

/// A target bound to an interface: the interface itself is checked before the answer, and a
/// route through another interface does not serve it.
#[test]
fn bound_interface_rules() {
    let bound = |local: &str, remote: &str, i: u32| RouteQuery {
        interface: Some(i),
        ..q(local, remote)
    };
    let default6 = Ok(route("::/0", "2001:db8::1", ETH0));
    let cases: Vec<(RouteQuery, LookupAnswer, Snapshot, Reachability)> = vec![
        // IPv6 answers through eth0 although wlan0 was asked for: no route through wlan0.
        (
            bound("2001:db8::2", "2001:db8:5::1", WLAN0),
            default6.clone(),
            network(),
            unreachable(Reason::NoRoute),
        ),
        (
            bound("2001:db8::2", "2001:db8:5::1", ETH0),
            default6.clone(),
            network(),
            path(ETH0, "eth0", "2001:db8::1", ""),
        ),
        // The bound interface is gone or down, whatever the answer says.
        (
            bound("2001:db8::2", "2001:db8:5::1", 9),
            default6.clone(),
            network(),
            unreachable(Reason::InterfaceGone { interface: 9 }),
        ),
        (
            bound("198.18.0.2", "198.18.5.1", WLAN0),
            Err(libc::ENETUNREACH),
            with(vec![link(WLAN0, |i| i.admin_up = false)]),
            unreachable(Reason::InterfaceDown {
                interface: iface(WLAN0, "wlan0"),
            }),
        ),
        // A plain IPv4 lookup's made-up on-link route (table 0) is no route.
        (
            bound("198.18.0.2", "198.18.10.1", ETH0),
            Ok({
                let mut r = route("198.18.10.1/32", "", ETH0);
                r.table = 0;
                r
            }),
            network(),
            unreachable(Reason::NoRoute),
        ),
    ];
    for (query, answer, snap, want) in cases {
        assert_eq!(evaluate(&query, &answer, &snap), want, "{query}");
    }
}

#[test]
fn verdicts_read_well() {
    let cases = [
        (
            path(ETH0, "eth0", "198.18.0.1", ""),
            "reachable via 198.18.0.1 dev eth0",
        ),
        (
            path(ETH0, "eth0", "", "198.18.0.2"),
            "reachable dev eth0 (on link) src 198.18.0.2",
        ),
        (
            unreachable(Reason::NoRoute),
            "unreachable: no route to the remote address",
        ),
        (
            unreachable(Reason::LocalAddressUnusable {
                flags: AddressFlags::TENTATIVE,
            }),
            "unreachable: the local address is still tentative (duplicate address detection is running)",
        ),
        (
            unreachable(Reason::RouteType(RouteType::Prohibit)),
            "unreachable: a prohibit route forbids traffic to the remote address",
        ),
        (
            unreachable(Reason::InterfaceMismatch {
                path_interface: iface(ETH0, "eth0"),
                local_interface: iface(WLAN0, "wlan0"),
            }),
            "unreachable: the path now leaves through eth0 but the local address is on wlan0",
        ),
    ];
    for (verdict, text) in cases {
        assert_eq!(verdict.to_string(), text);
    }
    let failed = unreachable(Reason::LookupFailed {
        errno: libc::EADDRNOTAVAIL,
    })
    .to_string();
    assert!(
        failed.starts_with("unreachable: the route lookup failed: "),
        "{failed}"
    );
}
