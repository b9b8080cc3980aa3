//! The route-lookup wire format and the reachability rules against real kernel answers.
//!
//! The fixtures in `tests/fixtures/route-lookup/` are datagrams Linux 6.18 sent in answer to
//! `RTM_GETROUTE` requests built by `route_lookup_request`, captured in a throwaway network
//! namespace by `examples/capture-route-lookups.sh` (see the README there for the network).
//! `-fib` files answer a lookup with `RTM_F_FIB_MATCH`, `-plain` files one without.

#![cfg(target_os = "linux")]

use std::net::IpAddr;

use netreach_core::reach::{
    NamedInterface, Path, Reachability, Reason, RouteQuery, evaluate, parse_route_lookup_answer,
};
use netreach_core::{
    Address, AddressFlags, Interface, LinkKind, Route, RouteType, Scope, Snapshot, Update,
};

/// The sequence number the capture tool uses.
const SEQ: u32 = 0x6e72;
const LO: u32 = 1;
const A0: u32 = 2;
const A1: u32 = 3;

/// A fixture's name and bytes.
type Fixture = (&'static str, &'static [u8]);

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            &include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/route-lookup/",
                $name,
                ".bin"
            ))[..],
        )
    };
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn q(remote: &str, local: &str, interface: Option<u32>) -> RouteQuery {
    RouteQuery {
        remote: ip(remote),
        local: ip(local),
        interface,
    }
}

fn address(interface: u32, a: &str, prefix_len: u8, flags: AddressFlags) -> Address {
    Address {
        interface,
        address: ip(a),
        prefix_len,
        scope: Scope::Global,
        flags,
    }
}

/// The capture namespace as the model sees it; `a0` as the case needs it.
fn host(a0: impl Fn(&mut Interface)) -> Snapshot {
    let iface = |index, name: &str, kind| {
        let mut i = Interface::new(index, name, kind);
        i.admin_up = true;
        i.carrier = true;
        i
    };
    let mut eth = iface(A0, "a0", LinkKind::Veth);
    a0(&mut eth);
    let none = AddressFlags::empty();
    Snapshot::from_parts(
        [
            iface(LO, "lo", LinkKind::Loopback),
            eth,
            iface(A1, "a1", LinkKind::Veth),
        ],
        [
            address(LO, "127.0.0.1", 8, none),
            address(LO, "::1", 128, none),
            address(A0, "198.18.0.2", 24, none),
            address(A0, "2001:db8::2", 64, none),
            address(A0, "2001:db8::7", 64, AddressFlags::TENTATIVE),
            address(A0, "fe80::2", 64, none),
            address(A1, "198.18.1.2", 24, none),
        ],
        [],
    )
}

fn up(_: &mut Interface) {}

fn reachable(
    interface: u32,
    name: &str,
    gateway: Option<&str>,
    source: Option<&str>,
) -> Reachability {
    Reachability::Reachable(Path {
        interface,
        interface_name: name.into(),
        gateway: gateway.map(ip),
        source: source.map(ip),
    })
}

fn unreachable(reason: Reason) -> Reachability {
    Reachability::Unreachable(reason)
}

fn a0() -> NamedInterface {
    NamedInterface {
        index: A0,
        name: "a0".into(),
    }
}

#[test]
fn kernel_errors_per_route_type() {
    let cases = [
        (fixture!("v4-unreachable-fib"), libc::EHOSTUNREACH),
        (fixture!("v4-unreachable-plain"), libc::EHOSTUNREACH),
        (fixture!("v4-blackhole-fib"), libc::EINVAL),
        (fixture!("v4-prohibit-fib"), libc::EACCES),
        (fixture!("v4-throw-fib"), libc::ENETUNREACH),
        (fixture!("v4-oif-unreachable-fib"), libc::EHOSTUNREACH),
        (fixture!("v4-oif-gone-fib"), libc::ENODEV),
        (fixture!("v4-rule-unreachable-fib"), libc::ENETUNREACH),
        (fixture!("v4-rule-prohibit-fib"), libc::EACCES),
        (fixture!("v4-rule-blackhole-fib"), libc::EINVAL),
        (fixture!("v4-source-not-local-fib"), libc::ENETUNREACH),
        (fixture!("v4-admin-down-fib"), libc::ENETUNREACH),
        (fixture!("v4-admin-down-oif-fib"), libc::ENETUNREACH),
        (fixture!("v6-unreachable-fib"), libc::EHOSTUNREACH),
        (fixture!("v6-blackhole-fib"), libc::EINVAL),
        (fixture!("v6-prohibit-fib"), libc::EACCES),
    ];
    for ((name, bytes), errno) in cases {
        assert_eq!(
            parse_route_lookup_answer(bytes, SEQ),
            Some(Err(errno)),
            "{name}"
        );
        assert_eq!(
            parse_route_lookup_answer(bytes, SEQ + 1),
            None,
            "{name}: other seq"
        );
    }
}

/// What `RTM_F_FIB_MATCH` adds: the matching entry's prefix and table, the `linkdown` flag, all
/// hops of a multipath route, the interface that holds a local address.
#[test]
fn fib_match_answers_name_the_table_entry() {
    let route = |(name, bytes): (&str, &[u8])| -> Route {
        match parse_route_lookup_answer(bytes, SEQ) {
            Some(Ok(r)) => r,
            other => panic!("{name}: {other:?}"),
        }
    };
    let gw = route(fixture!("v4-gateway-fib"));
    assert!(gw.is_default());
    assert_eq!(
        (gw.gateway, gw.interface, gw.table),
        (Some(ip("198.18.0.1")), Some(A0), 254)
    );
    let plain = route(fixture!("v4-gateway-plain"));
    assert_eq!(plain.destination.to_string(), "198.18.5.1/32");
    assert_eq!(plain.gateway, Some(ip("198.18.0.1")));

    let policy = route(fixture!("v4-policy-table-fib"));
    assert_eq!((policy.table, policy.interface), (100, Some(A1)));

    assert!(route(fixture!("v4-linkdown-fib")).linkdown);
    assert!(route(fixture!("v6-linkdown-fib")).linkdown);
    assert!(
        !route(fixture!("v4-linkdown-plain")).linkdown,
        "plain answers lack the flag"
    );

    let mp = route(fixture!("v4-multipath-fib"));
    let hops: Vec<u32> = mp.nexthops.iter().map(|h| h.interface).collect();
    assert_eq!(hops, [A0, A1]);
    assert!(route(fixture!("v4-multipath-plain")).nexthops.is_empty());

    let own = route(fixture!("v4-own-address-fib"));
    assert_eq!(
        (own.kind, own.interface, own.table),
        (RouteType::Local, Some(A0), 255)
    );
    let own = route(fixture!("v4-own-address-plain"));
    assert_eq!((own.kind, own.interface), (RouteType::Local, Some(LO)));

    // Without FIB_MATCH, IPv4 makes up an on-link route for a lookup with an output interface
    // that no route matches, and names no table for it.
    let guess = route(fixture!("v4-oif-unreachable-plain"));
    assert_eq!(
        (guess.kind, guess.table, guess.gateway),
        (RouteType::Unicast, 0, None)
    );
}

#[test]
fn verdicts_on_real_answers() {
    let carrier_off = |i: &mut Interface| i.carrier = false;
    let admin_down = |i: &mut Interface| {
        i.admin_up = false;
        i.carrier = false;
    };
    let plain_v4 = q("198.18.5.1", "198.18.0.2", None);
    #[rustfmt::skip]
    let cases: Vec<(Fixture, RouteQuery, Snapshot, Reachability)> = vec![
        (fixture!("v4-gateway-fib"), plain_v4, host(up), reachable(A0, "a0", Some("198.18.0.1"), None)),
        (fixture!("v4-gateway-plain"), plain_v4, host(up), reachable(A0, "a0", Some("198.18.0.1"), None)),
        (fixture!("v4-connected-fib"), q("198.18.0.1", "198.18.0.2", None), host(up),
            reachable(A0, "a0", None, Some("198.18.0.2"))),
        (fixture!("v6-gateway-fib"), q("2001:db8:5::1", "2001:db8::2", None), host(up),
            reachable(A0, "a0", Some("2001:db8::1"), None)),
        (fixture!("v6-gateway-plain"), q("2001:db8:5::1", "2001:db8::2", None), host(up),
            reachable(A0, "a0", Some("2001:db8::1"), Some("2001:db8::2"))),
        (fixture!("v6-link-local-fib"), q("fe80::1", "fe80::2", Some(A0)), host(up),
            reachable(A0, "a0", None, None)),
        (fixture!("v4-loopback-fib"), q("127.0.0.1", "127.0.0.1", None), host(up),
            reachable(LO, "lo", None, Some("127.0.0.1"))),
        (fixture!("v6-loopback-fib"), q("::1", "::1", None), host(up), reachable(LO, "lo", None, None)),
        (fixture!("v4-own-address-fib"), q("198.18.0.2", "198.18.0.2", None), host(up),
            reachable(LO, "lo", None, Some("198.18.0.2"))),
        (fixture!("v4-own-address-plain"), q("198.18.0.2", "198.18.0.2", None), host(up),
            reachable(LO, "lo", None, None)),
        (fixture!("v4-admin-down-own-address-fib"), q("198.18.0.2", "198.18.0.2", None), host(admin_down),
            reachable(LO, "lo", None, Some("198.18.0.2"))),
        (fixture!("v4-unreachable-fib"), q("198.18.10.1", "198.18.0.2", None), host(up),
            unreachable(Reason::RouteType(RouteType::Unreachable))),
        (fixture!("v4-blackhole-fib"), q("198.18.11.1", "198.18.0.2", None), host(up),
            unreachable(Reason::RouteType(RouteType::Blackhole))),
        (fixture!("v4-prohibit-fib"), q("198.18.12.1", "198.18.0.2", None), host(up),
            unreachable(Reason::RouteType(RouteType::Prohibit))),
        (fixture!("v4-throw-fib"), q("198.18.13.1", "198.18.0.2", None), host(up), unreachable(Reason::NoRoute)),
        (fixture!("v4-rule-unreachable-fib"), q("198.18.20.1", "198.18.0.2", None), host(up),
            unreachable(Reason::NoRoute)),
        // With an output interface IPv4 makes up an on-link route for any failed lookup; FIB_MATCH
        // refuses it with EHOSTUNREACH. Like the plain answer: no route through a0.
        (fixture!("v4-oif-unreachable-fib"), q("198.18.10.1", "198.18.0.2", Some(A0)), host(up),
            unreachable(Reason::NoRoute)),
        (fixture!("v4-oif-unreachable-plain"), q("198.18.10.1", "198.18.0.2", Some(A0)), host(up),
            unreachable(Reason::NoRoute)),
        (fixture!("v4-oif-gone-fib"), q("198.18.5.1", "198.18.0.2", Some(999)), host(up),
            unreachable(Reason::InterfaceGone { interface: 999 })),
        (fixture!("v6-oif-gone-fib"), q("2001:db8:5::1", "2001:db8::2", Some(999)), host(up),
            unreachable(Reason::InterfaceGone { interface: 999 })),
        (fixture!("v4-policy-table-fib"), q("198.18.5.1", "198.18.1.2", None), host(up),
            reachable(A1, "a1", Some("198.18.1.1"), None)),
        (fixture!("v4-multipath-fib"), q("198.18.30.1", "198.18.0.2", None), host(up),
            reachable(A0, "a0", Some("198.18.0.1"), None)),
        (fixture!("v4-linkdown-fib"), plain_v4, host(carrier_off),
            unreachable(Reason::CarrierLost { interface: a0() })),
        (fixture!("v4-linkdown-fib"), plain_v4, host(up), unreachable(Reason::LinkDown { interface: a0() })),
        (fixture!("v4-linkdown-plain"), plain_v4, host(carrier_off),
            unreachable(Reason::CarrierLost { interface: a0() })),
        (fixture!("v6-tentative-source-fib"), q("2001:db8:5::1", "2001:db8::7", None), host(up),
            unreachable(Reason::LocalAddressUnusable { flags: AddressFlags::TENTATIVE })),
        (fixture!("v4-source-not-local-fib"), q("198.18.5.1", "198.18.0.9", None), host(up),
            unreachable(Reason::LocalAddressRemoved)),
        (fixture!("v4-admin-down-fib"), plain_v4, host(admin_down), unreachable(Reason::NoRoute)),
        (fixture!("v4-admin-down-oif-fib"), q("198.18.5.1", "198.18.0.2", Some(A0)), host(admin_down),
            unreachable(Reason::InterfaceDown { interface: a0() })),
    ];
    for ((name, bytes), query, snap, want) in cases {
        let Some(answer) = parse_route_lookup_answer(bytes, SEQ) else {
            panic!("{name}: no answer")
        };
        assert_eq!(evaluate(&query, &answer, &snap), want, "{name}: {answer:?}");
    }
}

/// The snapshot has the last word on the local address: a good answer (the kernel may have
/// answered just before the address went) does not make a target reachable without it.
#[test]
fn a_removed_address_overrides_a_good_answer() {
    let (name, bytes) = fixture!("v4-gateway-fib");
    let answer = parse_route_lookup_answer(bytes, SEQ).unwrap();
    let mut snap = host(up);
    snap.apply(Update::DelAddress(address(
        A0,
        "198.18.0.2",
        24,
        AddressFlags::empty(),
    )));
    assert_eq!(
        evaluate(&q("198.18.5.1", "198.18.0.2", None), &answer, &snap),
        unreachable(Reason::LocalAddressRemoved),
        "{name}"
    );
}
