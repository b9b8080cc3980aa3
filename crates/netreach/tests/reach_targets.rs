//! The connection monitor's targets against the real kernel: every validation error, loopback
//! and own-address remotes, targets from connected UDP sockets, and the one-shot lookups with
//! the source the kernel chooses.

// Every test here builds network namespaces, which only Linux has.
#![cfg(target_os = "linux")]

mod common;

use std::net::{SocketAddr, UdpSocket};

use common::lab::{Lab, V4, V6, WAIT, Watcher, in_netns, ip, reachable, reachable_via, reason};
use netreach::core::reach::{InterfaceRef, Reachability, Reason, TargetError};
use netreach::{ConnectionMonitor, Error, RouteType};

#[test]
fn every_validation_error() {
    let lab = Lab::new("rcv");
    let monitor = common::monitor_in(lab.host.netns()).expect("monitor");
    let conn = ConnectionMonitor::new(&monitor);
    let invalid = |local: &str, remote: &str, interface: Option<InterfaceRef>| match conn.target(
        ip(local),
        ip(remote),
        interface,
    ) {
        Err(Error::InvalidTarget(e)) => e,
        other => panic!("{local} -> {remote}: expected an invalid target, got {other:?}"),
    };
    use TargetError as E;
    for (local, remote, interface, want) in [
        (
            "0.0.0.0",
            "198.18.30.2",
            None,
            E::UnspecifiedLocal {
                local: ip("0.0.0.0"),
            },
        ),
        (
            "::",
            "2001:db8:30::2",
            None,
            E::UnspecifiedLocal { local: ip("::") },
        ),
        (
            "198.18.20.2",
            "0.0.0.0",
            None,
            E::UnspecifiedRemote {
                remote: ip("0.0.0.0"),
            },
        ),
        (
            "198.18.20.2",
            "2001:db8:30::2",
            None,
            E::FamilyMismatch {
                local: ip("198.18.20.2"),
                remote: ip("2001:db8:30::2"),
            },
        ),
        (
            "2001:db8:20::2",
            "::ffff:198.18.30.2",
            None,
            E::FamilyMismatch {
                local: ip("2001:db8:20::2"),
                remote: ip("198.18.30.2"),
            },
        ),
        (
            "198.18.20.2",
            "224.0.0.1",
            None,
            E::MulticastRemote {
                remote: ip("224.0.0.1"),
            },
        ),
        (
            "2001:db8:20::2",
            "ff02::1",
            None,
            E::MulticastRemote {
                remote: ip("ff02::1"),
            },
        ),
        (
            "198.18.20.2",
            "255.255.255.255",
            None,
            E::BroadcastRemote {
                remote: ip("255.255.255.255"),
            },
        ),
        (
            "198.18.20.2",
            "198.18.20.255",
            None,
            E::BroadcastRemote {
                remote: ip("198.18.20.255"),
            },
        ),
        (
            "198.18.20.9",
            "198.18.30.2",
            None,
            E::LocalNotAssigned {
                local: ip("198.18.20.9"),
            },
        ),
        (
            "2001:db8:20::9",
            "2001:db8:30::2",
            None,
            E::LocalNotAssigned {
                local: ip("2001:db8:20::9"),
            },
        ),
        (
            "198.18.20.2",
            "198.18.30.2",
            Some("nosuch0".into()),
            E::UnknownInterface {
                interface: InterfaceRef::Name("nosuch0".into()),
            },
        ),
        (
            "2001:db8:20::2",
            "2001:db8:30::2",
            Some(InterfaceRef::Index(99_999)),
            E::UnknownInterface {
                interface: InterfaceRef::Index(99_999),
            },
        ),
    ] {
        assert_eq!(
            invalid(local, remote, interface),
            want,
            "{local} -> {remote}"
        );
    }
    // The same errors through watch_pair; nothing is watched.
    assert!(matches!(
        conn.watch_pair(ip("198.18.20.2"), ip("224.0.0.1"), None),
        Err(Error::InvalidTarget(E::MulticastRemote { .. }))
    ));
    assert!(conn.is_empty());

    // IPv4-mapped IPv6 addresses are IPv4: a valid, reachable target.
    let mapped = conn
        .watch_pair(ip("::ffff:198.18.20.2"), ip("::ffff:198.18.30.2"), None)
        .expect("mapped addresses are IPv4");
    let r = mapped.wait_first(WAIT).expect("first report");
    assert!(reachable_via(&r, "h0", Some("198.18.20.1")), "{r}");

    // A socket that is not connected has no peer.
    let lone = in_netns(&lab.host, || UdpSocket::bind("198.18.20.2:0")).expect("bind");
    assert!(matches!(conn.watch_udp(&lone), Err(Error::Socket { .. })));
}

#[test]
fn loopback_remote_is_reachable_while_lo_is_up() {
    let lab = Lab::new("rclo");
    let monitor = common::monitor_in(lab.host.netns()).expect("monitor");
    let conn = ConnectionMonitor::new(&monitor);
    let mut w = Watcher::new(&conn);
    let v4 = conn
        .watch_pair(ip("127.0.0.1"), ip("127.0.0.1"), None)
        .expect("loopback target");
    let v6 = conn
        .watch_pair(ip("::1"), ip("::1"), None)
        .expect("loopback target");
    // An own address is a local route too.
    let own = conn
        .watch_pair(ip("198.18.20.2"), ip("198.18.21.2"), None)
        .expect("own address");
    let ids = [v4.id(), v6.id(), own.id()];
    w.until_all(&ids, |r| reachable_via(r, "lo", None));
    lab.host.ip("link set lo down");
    w.until_all(&ids[..1], |r| !reachable(r));
    let r = v4.reachability().expect("reported");
    assert!(
        matches!(reason(&r), Reason::InterfaceDown { interface } if interface.name == "lo"),
        "{r}"
    );
    lab.host.ip("link set lo up");
    // IPv4 brings 127.0.0.1's routes back with the link; ::1 is gone for good.
    w.until_all(&ids[..1], |r| reachable_via(r, "lo", None));
}

#[test]
fn udp_socket_is_a_target() {
    let lab = Lab::new("rcu");
    let monitor = common::monitor_in(lab.host.netns()).expect("monitor");
    let conn = ConnectionMonitor::new(&monitor);
    for plan in [V4, V6] {
        let server = SocketAddr::new(ip(plan.server), 9);
        // Connecting a UDP socket sends nothing; it fixes the peer and picks the source.
        let any: SocketAddr = if plan.flag == "-4" {
            "0.0.0.0:0".parse().expect("addr")
        } else {
            "[::]:0".parse().expect("addr")
        };
        let sock = in_netns(&lab.host, move || {
            let s = UdpSocket::bind(any)?;
            s.connect(server)?;
            Ok::<_, std::io::Error>(s)
        })
        .expect("UDP socket");
        let watch = conn.watch_udp(&sock).expect("watch UDP");
        let r = watch.wait_first(WAIT).expect("first report");
        assert!(reachable_via(&r, "h0", Some(plan.gateway)), "{r}");
    }
}

#[test]
fn can_reach_is_one_lookup_with_the_kernels_source() {
    let lab = Lab::new("rccr");
    let monitor = common::monitor_in(lab.host.netns()).expect("monitor");
    let conn = ConnectionMonitor::new(&monitor);
    for plan in [V4, V6] {
        let r = conn.can_reach(ip(plan.server)).expect("lookup");
        assert!(reachable_via(&r, "h0", Some(plan.gateway)), "{r}");
        let t = conn
            .target_for(ip(plan.server), None)
            .expect("a source the kernel picks");
        assert_eq!(t.local(), ip(plan.host));
        // Out of h1, the kernel picks h1's address.
        let t = conn
            .target_for(ip(plan.gateway1), Some("h1".into()))
            .expect("a source on h1");
        assert_eq!(t.local(), ip(plan.host1));
        assert_eq!(
            t.interface(),
            monitor.snapshot().interface_by_name("h1").map(|i| i.index)
        );
        // The far server has no route through h1: IPv4 makes one up for a lookup with an
        // output interface (the source is h1's, and the verdict says no route); IPv6 does not.
        match conn.target_for(ip(plan.server), Some("h1".into())) {
            Ok(t) if plan.flag == "-4" => {
                assert_eq!(t.local(), ip(plan.host1));
                assert_eq!(
                    conn.check(&t).expect("lookup"),
                    Reachability::Unreachable(Reason::NoRoute)
                );
            }
            Err(Error::NoSource {
                reason: Reason::NoRoute,
                ..
            }) if plan.flag == "-6" => {}
            other => panic!("{other:?}"),
        }
        let r = conn.can_reach(ip(plan.gateway1)).expect("lookup");
        assert!(reachable_via(&r, "h1", None), "{r}");
        lab.host.ip(&format!(
            "{} route add unreachable {}",
            plan.flag, plan.server_net
        ));
        let r = conn.can_reach(ip(plan.server)).expect("lookup");
        assert_eq!(
            r,
            Reachability::Unreachable(Reason::RouteType(RouteType::Unreachable))
        );
        assert!(matches!(
            conn.target_for(ip(plan.server), None),
            Err(Error::NoSource {
                reason: Reason::RouteType(RouteType::Unreachable),
                ..
            })
        ));
        lab.host.ip(&format!("{} route del default", plan.flag));
        let far = if plan.flag == "-4" {
            "198.19.1.1"
        } else {
            "2001:db8:99::1"
        };
        assert_eq!(
            conn.can_reach(ip(far)).expect("lookup"),
            Reachability::Unreachable(Reason::NoRoute)
        );
    }
    assert!(matches!(
        conn.can_reach(ip("224.0.0.1")),
        Err(Error::InvalidTarget(TargetError::MulticastRemote { .. }))
    ));
    assert!(matches!(
        conn.target_for(ip("198.18.30.2"), Some("nosuch0".into())),
        Err(Error::InvalidTarget(TargetError::UnknownInterface { .. }))
    ));
}
