//! Property tests of the model: a diff replays, applying is idempotent, loading is applying.
//!
//! Random snapshots and random kernel updates over a small universe (six interface indexes, of
//! which the generators only sometimes create the sixth, a handful of prefixes, gateways,
//! tables and metrics), so that identities collide often and updates keep naming interfaces
//! the snapshot does not hold. For every case:
//!
//! - the events of `diff(a, b)`, each turned into an update and applied to `a`, give `b`;
//! - applying an update twice gives no event the second time, the events of the first
//!   application replay to the same state, and `load` of the update gives that state too;
//! - a route re-dump (`sync_routes`, `sync_interface_routes`) gives events that replay;
//! - every snapshot keeps the model's rule: no address or route names an interface the
//!   snapshot does not hold (`docs/model.md`, "Applying kernel messages").
//!
//! Deterministic: a xorshift generator with fixed seeds. `NETREACH_FUZZ_ITERS` sets the number
//! of cases (default 4,000), `NETREACH_FUZZ_SEED` the seed; a failure names both.

mod fuzz;

use fuzz::Rng;
use std::net::IpAddr;

use netreach_core::{
    Address, AddressFlags, Event, Family, Interface, LinkKind, MacAddr, NextHop, OperState, Route,
    RouteProtocol, RouteType, Rule, RuleAction, Scope, Snapshot, Update, diff,
};

/// Cases per test when `NETREACH_FUZZ_ITERS` is not set: well under a second each, unoptimised.
const DEFAULT_CASES: u64 = 4_000;

fn cases() -> u64 {
    fuzz::cases(DEFAULT_CASES)
}

fn seed() -> u64 {
    fuzz::seed(0x6e65_7472_6561_6368)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// An interface index: 1 to 5, and 6 rarely (an interface that seldom exists).
fn index(rng: &mut Rng) -> u32 {
    if rng.one_in(8) {
        6
    } else {
        1 + rng.below(5) as u32
    }
}

fn interface(rng: &mut Rng, index: u32) -> Interface {
    let kind = rng.pick(&[
        LinkKind::Loopback,
        LinkKind::Ethernet,
        LinkKind::Veth,
        LinkKind::Wifi,
        LinkKind::Other("macvlan".into()),
    ]);
    let mut i = Interface::new(index, rng.pick(&["lo", "eth0", "wlan0", "veth0"]), kind);
    i.admin_up = rng.one_in(2);
    i.carrier = rng.one_in(2);
    i.oper_state = rng.pick(&[OperState::Up, OperState::Down, OperState::Unknown]);
    i.mtu = rng.pick(&[1280, 1500, 9000]);
    if rng.one_in(2) {
        i.mac = Some(MacAddr(vec![2, 0, 0, 0, 0, rng.below(3) as u8]));
    }
    i
}

fn address(rng: &mut Rng) -> Address {
    let (address, prefix_len) = rng.pick(&[
        ("198.18.0.2", 24),
        ("198.18.0.2", 32),
        ("198.18.1.2", 24),
        ("127.0.0.1", 8),
        ("2001:db8::2", 64),
        ("fe80::2", 64),
    ]);
    let mut flags = AddressFlags::empty();
    flags.set(AddressFlags::TENTATIVE, rng.one_in(3));
    flags.set(AddressFlags::DEPRECATED, rng.one_in(4));
    Address {
        interface: index(rng),
        address: ip(address),
        prefix_len,
        scope: rng.pick(&[Scope::Global, Scope::Link, Scope::Host]),
        flags,
    }
}

fn route(rng: &mut Rng) -> Route {
    let v4 = rng.one_in(2);
    let (destination, gateways): (&[&str], &[&str]) = if v4 {
        (
            &["0.0.0.0/0", "198.18.0.0/24", "198.18.5.0/24"],
            &["198.18.0.1", "198.18.1.1"],
        )
    } else {
        (&["::/0", "2001:db8::/64"], &["2001:db8::1", "fe80::1"])
    };
    let gateway = (!rng.one_in(3)).then(|| ip(rng.pick(gateways)));
    let mut r = Route::unicast(rng.pick(destination).parse().unwrap(), gateway, index(rng));
    r.table = rng.pick(&[
        Route::MAIN_TABLE,
        Route::MAIN_TABLE,
        Route::LOCAL_TABLE,
        100,
    ]);
    r.metric = rng.pick(&[0, 0, 100, 1024]);
    if v4 && rng.one_in(6) {
        r.tos = 0x10;
    }
    r.kind = rng.pick(&[
        RouteType::Unicast,
        RouteType::Unicast,
        RouteType::Unicast,
        RouteType::Local,
        RouteType::Blackhole,
        RouteType::Unreachable,
    ]);
    if matches!(r.kind, RouteType::Blackhole | RouteType::Unreachable) && rng.one_in(2) {
        r.interface = None;
        r.gateway = None;
    }
    r.protocol = RouteProtocol(rng.pick(&[2, 4, 16]));
    r.linkdown = rng.one_in(4);
    if rng.one_in(3) {
        r.prefsrc = Some(ip(if v4 { "198.18.0.2" } else { "2001:db8::2" }));
    }
    if let Some(interface) = r.interface.filter(|_| rng.one_in(4)) {
        // Multipath: the first hop is the route's own, the others anywhere.
        let first = NextHop {
            gateway: r.gateway,
            interface,
            linkdown: r.linkdown,
        };
        r.nexthops.push(first);
        for _ in 0..1 + rng.below(2) {
            r.nexthops.push(NextHop {
                gateway: Some(ip(rng.pick(gateways))),
                interface: index(rng),
                linkdown: rng.one_in(3),
            });
        }
    }
    r
}

fn rule(rng: &mut Rng) -> Rule {
    let family = rng.pick(&[Family::Ipv4, Family::Ipv6]);
    let mut r = Rule::lookup(
        family,
        rng.pick(&[0, 100, 32766]),
        rng.pick(&[100, 254, 255]),
    );
    if rng.one_in(3) {
        r.action = rng.pick(&[RuleAction::Unreachable, RuleAction::Goto(32766)]);
    }
    if rng.one_in(3) {
        r.iif = Some("eth0".into());
    }
    if rng.one_in(3) {
        r.source = Some(
            match family {
                Family::Ipv4 => "198.18.1.2/32",
                Family::Ipv6 => "2001:db8::/64",
            }
            .parse()
            .unwrap(),
        );
    }
    r.invert = rng.one_in(5);
    r
}

/// One kernel update, often about an object `snap` already holds (a repeat, a change, a
/// delete, a replace), so that the interesting paths are taken.
fn update(rng: &mut Rng, snap: &Snapshot) -> Update {
    let existing_link = pick_from(rng, snap.interfaces());
    let existing_address = pick_from(rng, snap.addresses());
    let existing_route = pick_from(rng, snap.routes());
    let existing_rule = pick_from(rng, snap.rules());
    match rng.below(16) {
        0 | 1 => {
            let i = index(rng);
            Update::NewLink(interface(rng, i))
        }
        2 => match existing_link {
            // The same link changed (state, MTU), or repeated as it is.
            Some(i) if rng.one_in(2) => Update::NewLink(interface(rng, i.index)),
            Some(i) => Update::NewLink(i),
            None => Update::DelLink(index(rng)),
        },
        3 => Update::DelLink(existing_link.map_or_else(|| index(rng), |i| i.index)),
        4 | 5 => Update::NewAddress(address(rng)),
        6 => match existing_address {
            Some(mut a) => {
                a.flags = AddressFlags::empty();
                Update::NewAddress(a)
            }
            None => Update::DelAddress(address(rng)),
        },
        7 => Update::DelAddress(existing_address.unwrap_or_else(|| address(rng))),
        8..=10 => Update::NewRoute {
            route: route(rng),
            replace: rng.one_in(3),
        },
        11 => match existing_route {
            // The same route again, flagged linkdown or not, possibly as a replace.
            Some(mut r) => {
                r.linkdown = rng.one_in(2);
                Update::NewRoute {
                    route: r,
                    replace: rng.one_in(2),
                }
            }
            None => Update::DelRoute(route(rng)),
        },
        12 => match existing_route {
            // A replace that swaps the next hop of a route the snapshot holds.
            Some(r) => {
                let mut other = route(rng);
                while other.family != r.family {
                    other = route(rng);
                }
                other.family = r.family;
                other.destination = r.destination;
                other.table = r.table;
                other.tos = r.tos;
                other.metric = r.metric;
                Update::NewRoute {
                    route: other,
                    replace: true,
                }
            }
            None => Update::NewRule(rule(rng)),
        },
        13 => Update::DelRoute(existing_route.unwrap_or_else(|| route(rng))),
        14 => Update::NewRule(rule(rng)),
        _ => Update::DelRule(existing_rule.unwrap_or_else(|| rule(rng))),
    }
}

fn pick_from<'a, T: Clone + 'a>(
    rng: &mut Rng,
    mut items: impl ExactSizeIterator<Item = &'a T>,
) -> Option<T> {
    let n = items.len() as u64;
    if n == 0 {
        return None;
    }
    items.nth(rng.below(n) as usize).cloned()
}

/// A random snapshot, built one of three ways: from parts (orphans included, for the model to
/// deal with), by applying updates, or by loading them as a dump would.
fn snapshot(rng: &mut Rng) -> Snapshot {
    match rng.below(3) {
        0 => {
            let ifaces: Vec<_> = (0..rng.below(6))
                .map(|_| {
                    let i = index(rng);
                    interface(rng, i)
                })
                .collect();
            let addrs: Vec<_> = (0..rng.below(8)).map(|_| address(rng)).collect();
            let routes: Vec<_> = (0..rng.below(12)).map(|_| route(rng)).collect();
            let rules: Vec<_> = (0..rng.below(4)).map(|_| rule(rng)).collect();
            Snapshot::from_parts(ifaces, addrs, routes).with_rules(rules)
        }
        how => {
            let mut s = Snapshot::new();
            for _ in 0..rng.below(40) {
                let u = update(rng, &s);
                if how == 1 {
                    s.apply(u);
                } else {
                    s.load(u);
                }
            }
            s
        }
    }
}

/// `b` is `a` changed a little (most merges and re-dumps are small), or unrelated.
fn pair(rng: &mut Rng) -> (Snapshot, Snapshot) {
    let a = snapshot(rng);
    let b = if rng.one_in(2) {
        let mut b = a.clone();
        for _ in 0..1 + rng.below(6) {
            let u = update(rng, &b);
            b.apply(u);
        }
        b
    } else {
        snapshot(rng)
    };
    (a, b)
}

/// Applies events the way a subscriber does: each as the update it stands for.
fn replay(start: &Snapshot, events: &[Event]) -> Snapshot {
    let mut s = start.clone();
    for e in events {
        s.apply(e.to_update());
    }
    s
}

/// What differs between what a replay gave and what it should have: the events from the one
/// to the other, for a failure message.
fn missed(got: &Snapshot, want: &Snapshot) -> String {
    format!("{:#?}", diff(got, want))
}

/// The model's rule: nothing names an interface the snapshot does not hold.
fn assert_whole(s: &Snapshot, what: &dyn Fn() -> String) {
    for a in s.addresses() {
        assert!(
            s.interface(a.interface).is_some(),
            "{}: address on missing interface: {a:?}",
            what()
        );
    }
    for r in s.routes() {
        let hops = r
            .interface
            .into_iter()
            .chain(r.nexthops.iter().map(|h| h.interface));
        for i in hops {
            assert!(
                s.interface(i).is_some(),
                "{}: route through missing interface {i}: {r:?}",
                what()
            );
        }
    }
}

#[test]
fn diff_replays_onto_the_old_snapshot() {
    let seed = seed();
    for case in 0..cases() {
        let mut rng = Rng::for_case(seed, case);
        let (a, b) = pair(&mut rng);
        let what = || format!("seed {seed} case {case}");
        assert_whole(&a, &what);
        assert_whole(&b, &what);
        let events = diff(&a, &b);
        assert_eq!(events.is_empty(), a == b, "{}", what());
        // Each event, applied, is exactly what happens: the removal of an interface finds
        // nothing left on it to take along.
        let mut got = a.clone();
        for e in &events {
            let applied = got.apply(e.to_update());
            assert!(
                applied == [e.clone()],
                "{}: applying {e:?} gives {applied:?}",
                what()
            );
        }
        assert!(
            got == b,
            "{}: replaying diff(a, b) onto a misses {}",
            what(),
            missed(&got, &b)
        );
        assert!(diff(&b, &b).is_empty(), "{}", what());
    }
}

#[test]
fn updates_are_idempotent_and_their_events_replay() {
    let seed = seed();
    for case in 0..cases() {
        let mut rng = Rng::for_case(seed ^ 0x1d, case);
        let mut s = snapshot(&mut rng);
        let start = s.clone();
        let mut all = Vec::new();
        for step in 0..16 {
            let u = update(&mut rng, &s);
            let what = || format!("seed {seed} case {case} step {step}: {u:?}");
            let before = s.clone();
            let events = s.apply(u.clone());
            assert_whole(&s, &what);
            let again = s.apply(u.clone());
            assert!(again.is_empty(), "{}: applied twice: {again:?}", what());
            let got = replay(&before, &events);
            assert!(got == s, "{}: events miss {}", what(), missed(&got, &s));
            let got = replay(&before, &diff(&before, &s));
            assert!(got == s, "{}: diff misses {}", what(), missed(&got, &s));
            let mut loaded = before.clone();
            loaded.load(u.clone());
            assert!(loaded == s, "{}: load differs from apply", what());
            all.extend(events);
        }
        let what = || format!("seed {seed} case {case}");
        let got = replay(&start, &all);
        assert!(got == s, "{}: all events miss {}", what(), missed(&got, &s));
        let got = replay(&start, &diff(&start, &s));
        assert!(got == s, "{}: diff misses {}", what(), missed(&got, &s));
    }
}

#[test]
fn route_redumps_replay() {
    let seed = seed();
    for case in 0..cases() {
        let mut rng = Rng::for_case(seed ^ 0x2e, case);
        let mut s = snapshot(&mut rng);
        let family = rng.pick(&[Family::Ipv4, Family::Ipv6]);
        let mut dump: Vec<_> = s.routes().filter(|_| !rng.one_in(3)).cloned().collect();
        for _ in 0..rng.below(6) {
            dump.push(route(&mut rng));
        }
        let through = (rng.one_in(2)).then(|| index(&mut rng));
        let sync = |s: &mut Snapshot| match through {
            None => s.sync_routes(family, dump.clone()),
            Some(i) => s.sync_interface_routes(family, i, dump.clone()),
        };
        let what = || format!("seed {seed} case {case}");
        let before = s.clone();
        let events = sync(&mut s);
        assert_whole(&s, &what);
        let got = replay(&before, &events);
        assert!(got == s, "{}: events miss {}", what(), missed(&got, &s));
        let got = replay(&before, &diff(&before, &s));
        assert!(got == s, "{}: diff misses {}", what(), missed(&got, &s));
        let again = sync(&mut s);
        assert!(
            again.is_empty(),
            "{}: a repeated dump is a change: {again:?}",
            what()
        );
    }
}
