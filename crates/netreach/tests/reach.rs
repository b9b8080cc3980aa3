//! The connection monitor against the real kernel: a real TCP connection from a host namespace
//! through a router namespace to a far server, each cause of unreachability produced with `ip`
//! and seen as the right reason, reachability restored when the change is undone, for IPv4 and
//! IPv6; targets bound to an interface; and many targets at once (validation and one-shot
//! lookups: `reach_targets.rs`).

// Every test here builds network namespaces, which only Linux has.
#![cfg(target_os = "linux")]

mod common;

use std::io::{Read, Write};
use std::net::IpAddr;
use std::time::Duration;

use common::lab::{
    Lab, Plan, V4, V6, WAIT, Watcher, ip, named, reachable, reachable_via, reason, sysctl,
};
use common::marker::{Marker, until_item, until_view};
use netreach::core::reach::{Reachability, Reason, TargetId};
use netreach::{
    ConnectionMonitor, Monitor, Notification, OperState, RouteType, Subscription, Watch,
};

/// The TCP connection's target and a same-subnet target (the host's gateway), both reachable.
struct Started {
    lab: Lab,
    _monitor: Monitor,
    /// The host's marker, and a model subscription that reads the marks.
    marker: Marker,
    model: Subscription,
    conn: ConnectionMonitor,
    w: Watcher,
    tcp: Watch,
    near: Watch,
    streams: (std::net::TcpStream, std::net::TcpStream),
}

fn start(tag: &str, plan: Plan) -> Started {
    let lab = Lab::new(tag);
    let marker = Marker::new(&lab.host);
    let monitor = common::monitor_in(lab.host.netns()).expect("monitor");
    let model = monitor.subscribe();
    let conn = ConnectionMonitor::new(&monitor);
    let w = Watcher::new(&conn);
    let streams = lab.connect(plan, 4040);
    let tcp = conn
        .watch_tcp(&streams.0)
        .expect("watch the TCP connection");
    assert_eq!(
        tcp.wait_first(WAIT)
            .map(|r| reachable_via(&r, "h0", Some(plan.gateway))),
        Some(true),
        "the connection is reachable via the router: {:?}",
        tcp.reachability()
    );
    let near = conn
        .watch_pair(ip(plan.host), ip(plan.gateway), None)
        .expect("same-subnet target");
    let first = near.wait_first(WAIT).expect("first report");
    assert!(reachable_via(&first, "h0", None), "{first}");
    let Reachability::Reachable(path) = first else {
        unreachable!()
    };
    // IPv4 connected routes carry the preferred source; IPv6 ones do not.
    assert!(path.source.is_none_or(|s| s == ip(plan.host)), "{path:?}");
    Started {
        lab,
        _monitor: monitor,
        marker,
        model,
        conn,
        w,
        tcp,
        near,
        streams,
    }
}

/// Each cause, seen as the right reason by the TCP connection's target, undone, reachable again.
fn each_cause(tag: &str, plan: Plan) {
    let mut s = start(tag, plan);
    let (tcp, near) = (s.tcp.id(), s.near.id());
    let f = plan.flag;
    let host = &s.lab.host;
    let mut w = s.w;
    w.until(tcp, "first report", reachable);
    w.until(near, "first report", reachable);

    // The far side of the host's link goes down: the host's h0 loses carrier.
    s.lab.router.ip("link set r0 down");
    let r = w.next_of(tcp, "router side down");
    assert!(matches!(reason(&r), Reason::CarrierLost { .. }), "{r}");
    assert_eq!(named(reason(&r)), Some("h0"));
    w.until(near, "router side down", |r| {
        matches!(r, Reachability::Unreachable(Reason::CarrierLost { .. }))
    });
    s.lab.router.ip("link set r0 up");
    w.until(tcp, "router side up", reachable);
    w.until(near, "router side up", reachable);

    // The host's own side goes down. IPv4 keeps the address, and the kernel flushes the routes
    // through h0; the reason stays the interface's. (IPv6 addresses go: see below.)
    if plan.flag == "-6" {
        sysctl(host, "net.ipv6.conf.h0.keep_addr_on_down=1");
    }
    host.ip("link set h0 down");
    let r = w.next_of(tcp, "host side down");
    assert!(matches!(reason(&r), Reason::InterfaceDown { .. }), "{r}");
    assert_eq!(named(reason(&r)), Some("h0"));
    w.until(near, "host side down", |r| {
        matches!(r, Reachability::Unreachable(Reason::InterfaceDown { .. }))
    });
    // The lookups that follow (no route now) do not change the reason: once the model has h0
    // down (linkwatch reports its operational state after the command) and the monitor has
    // judged everything before two marks, every change it derived has been published.
    until_view(&mut s.model, "h0 down", WAIT, |snap| {
        snap.interface_by_name("h0")
            .is_some_and(|i| i.oper_state == OperState::Down)
    });
    s.marker.settle(&mut s.model);
    if let Some((id, r)) = w.next(Duration::ZERO) {
        panic!("after the link went down, {id} changed again: {r}");
    }
    s.lab.restore_host();
    w.until(tcp, "host side up", |r| {
        reachable_via(r, "h0", Some(plan.gateway))
    });
    w.until(near, "host side up", reachable);
    if plan.flag == "-6" {
        // By default IPv6 removes the addresses of an interface that goes down.
        sysctl(host, "net.ipv6.conf.h0.keep_addr_on_down=0");
        host.ip("link set h0 down");
        w.until(tcp, "host side down, address gone", |r| {
            matches!(r, Reachability::Unreachable(Reason::LocalAddressRemoved))
        });
        s.lab.restore_host();
        w.until(tcp, "host side up again", reachable);
    }

    // The local address is removed.
    host.ip(&format!("addr del {}/{} dev h0", plan.host, plan.len));
    let r = w.next_of(tcp, "address removed");
    assert_eq!(r, Reachability::Unreachable(Reason::LocalAddressRemoved));
    s.lab.restore_host();
    w.until(tcp, "address back", |r| {
        reachable_via(r, "h0", Some(plan.gateway))
    });
    w.until(near, "address back", reachable);

    // The default route is deleted: the far server has no route, the near one does not care.
    let near_changes = w.changes_of(near);
    host.ip(&format!("{f} route del default"));
    let r = w.next_of(tcp, "route deleted");
    assert_eq!(r, Reachability::Unreachable(Reason::NoRoute));
    s.lab.restore_host();
    w.until(tcp, "route back", reachable);

    // Reject routes, more specific than the default route.
    for (kind, want) in [
        ("blackhole", RouteType::Blackhole),
        ("unreachable", RouteType::Unreachable),
        ("prohibit", RouteType::Prohibit),
    ] {
        host.ip(&format!("{f} route add {kind} {}", plan.server_net));
        let r = w.next_of(tcp, kind);
        assert_eq!(
            r,
            Reachability::Unreachable(Reason::RouteType(want)),
            "{kind}"
        );
        host.ip(&format!("{f} route del {kind} {}", plan.server_net));
        w.until(tcp, kind, |r| reachable_via(r, "h0", Some(plan.gateway)));
    }

    // A more specific route through the other interface: the local address is not on it.
    host.ip(&format!(
        "{f} route add {} via {} dev h1",
        plan.server_net, plan.gateway1
    ));
    let r = w.next_of(tcp, "more specific route via h1");
    match reason(&r) {
        Reason::InterfaceMismatch {
            path_interface,
            local_interface,
        } => {
            assert_eq!(path_interface.name, "h1");
            assert_eq!(local_interface.name, "h0");
        }
        other => panic!("expected an interface mismatch, got {other}"),
    }
    host.ip(&format!("{f} route del {}", plan.server_net));
    w.until(tcp, "specific route gone", |r| {
        reachable_via(r, "h0", Some(plan.gateway))
    });

    // Policy routing: a rule that prohibits, and a rule that sends the traffic to a table whose
    // route leaves through h1.
    let rule = format!("from {} to {} pref 100", plan.host, plan.server_net);
    host.ip(&format!("{f} rule add {rule} prohibit"));
    let r = w.next_of(tcp, "prohibit rule");
    assert_eq!(
        r,
        Reachability::Unreachable(Reason::RouteType(RouteType::Prohibit))
    );
    host.ip(&format!("{f} rule del {rule}"));
    w.until(tcp, "prohibit rule gone", reachable);
    host.ip(&format!(
        "{f} route add default via {} dev h1 table 100",
        plan.gateway1
    ));
    host.ip(&format!("{f} rule add {rule} lookup 100"));
    let r = w.next_of(tcp, "rule to table 100");
    assert!(
        matches!(reason(&r), Reason::InterfaceMismatch { path_interface, .. } if path_interface.name == "h1"),
        "{r}"
    );
    host.ip(&format!("{f} rule del {rule}"));
    w.until(tcp, "rule gone", |r| {
        reachable_via(r, "h0", Some(plan.gateway))
    });
    assert_eq!(
        w.changes_of(near),
        near_changes,
        "routes and rules for the far subnet never touched the same-subnet target"
    );

    // The connection itself still carries data both ways.
    let (client, server) = &mut s.streams;
    client.write_all(b"ping").expect("write");
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).expect("read");
    assert_eq!(&buf, b"ping");
    server.write_all(b"pong").expect("write");
    client.read_exact(&mut buf).expect("read");
    assert_eq!(&buf, b"pong");
    assert_eq!(s.conn.len(), 2);
    drop(s.near);
    assert_eq!(s.conn.len(), 1);
}

#[test]
fn tcp_connection_ipv4_each_cause() {
    each_cause("rc4", V4);
}

#[test]
fn tcp_connection_ipv6_each_cause() {
    each_cause("rc6", V6);
}

/// A target bound to h1 does not take the default route through h0; a route through h1 makes
/// it reachable.
#[test]
fn bound_interface_follows_its_own_routes() {
    for plan in [V4, V6] {
        let lab = Lab::new("rcb");
        let monitor = common::monitor_in(lab.host.netns()).expect("monitor");
        let conn = ConnectionMonitor::new(&monitor);
        let mut w = Watcher::new(&conn);
        let bound = conn
            .watch_pair(ip(plan.host1), ip(plan.server), Some("h1".into()))
            .expect("bound target");
        w.until(bound.id(), "first report", |_| true);
        let first = bound.reachability().expect("reported");
        assert!(
            !reachable(&first) || reachable_via(&first, "h1", Some(plan.gateway1)),
            "{first}"
        );
        lab.host.ip(&format!(
            "{} route add {} via {} dev h1",
            plan.flag, plan.server_net, plan.gateway1
        ));
        w.until(bound.id(), "route via h1", |r| {
            reachable_via(r, "h1", Some(plan.gateway1))
        });
        lab.host.ip("link set h1 down");
        if plan.flag == "-4" {
            w.until(bound.id(), "h1 down", |r| {
                matches!(r, Reachability::Unreachable(Reason::InterfaceDown { interface }) if interface.name == "h1")
            });
        } else {
            // IPv6 removes the addresses of an interface that goes down.
            w.until(bound.id(), "h1 down", |r| {
                *r == Reachability::Unreachable(Reason::LocalAddressRemoved)
            });
        }
    }
}

/// A thousand targets through h0 and two hundred on h1: h0's carrier goes, every h0 target
/// reports it, no h1 target changes or is looked up; the carrier comes back, all are reachable.
#[test]
fn many_targets_one_link() {
    const FAR: usize = 1000;
    const NEAR: usize = 200;
    let lab = Lab::new("rcm");
    lab.host
        .ip("route add 198.19.0.0/16 via 198.18.20.1 dev h0");
    let monitor = common::monitor_in(lab.host.netns()).expect("monitor");
    let conn = ConnectionMonitor::new(&monitor);
    let mut w = Watcher::new(&conn);
    let far: Vec<Watch> = (0..FAR)
        .map(|n| {
            let remote = IpAddr::from([198, 19, (n / 250) as u8, (n % 250 + 1) as u8]);
            conn.watch_pair(ip("198.18.20.2"), remote, None)
                .expect("far target")
        })
        .collect();
    let near: Vec<Watch> = (0..NEAR)
        .map(|n| {
            let remote = IpAddr::from([198, 18, 21, (n + 10) as u8]);
            conn.watch_pair(ip("198.18.21.2"), remote, None)
                .expect("near target")
        })
        .collect();
    let far_ids: Vec<TargetId> = far.iter().map(Watch::id).collect();
    let near_ids: Vec<TargetId> = near.iter().map(Watch::id).collect();
    w.until_all(&far_ids, |r| reachable_via(r, "h0", Some("198.18.20.1")));
    w.until_all(&near_ids, |r| reachable_via(r, "h1", None));
    let lookups = conn.route_lookups();
    assert!(lookups >= (FAR + NEAR) as u64, "{lookups}");

    lab.router.ip("link set r0 down");
    w.until_all(&far_ids, |r| {
        matches!(r, Reachability::Unreachable(Reason::CarrierLost { interface }) if interface.name == "h0")
    });
    lab.router.ip("link set r0 up");
    w.until_all(&far_ids, |r| reachable_via(r, "h0", Some("198.18.20.1")));
    for id in &near_ids {
        assert_eq!(w.changes_of(*id), 1, "only the first report for {id}");
    }
    for id in &far_ids {
        assert_eq!(
            w.changes_of(*id),
            3,
            "first report, carrier lost, back for {id}"
        );
    }
    // Carrier loss, linkdown flags and carrier back: each far target looked up a few times.
    let spent = conn.route_lookups() - lookups;
    assert!(spent >= FAR as u64, "{spent}");
    assert!(spent <= 4 * FAR as u64, "{spent}");

    // The default route goes: every target has a more specific route, so none is looked up.
    // A blackhole for one far remote then costs one lookup, and its report shows that both
    // changes have been handled.
    let before = conn.route_lookups();
    lab.host.ip("-4 route del default");
    lab.host.ip("route add blackhole 198.19.0.10/32");
    let one = far_ids[9];
    w.until(one, "blackhole for one remote", |r| {
        *r == Reachability::Unreachable(Reason::RouteType(RouteType::Blackhole))
    });
    assert_eq!(conn.route_lookups() - before, 1);
    drop(far);
    assert_eq!(conn.len(), NEAR);
}

/// Lost notifications: the monitor dumps the state again, and every target is looked up again;
/// as nothing that concerns them changed, none is reported.
#[test]
fn lost_notifications_look_every_target_up_again() {
    if common::netlink_only("a socket overflow") {
        return;
    }
    const TARGETS: usize = 100;
    let lab = Lab::new("rco");
    let mut marker = Marker::new(&lab.host);
    let monitor = common::builder()
        .netns(lab.host.netns())
        .receive_buffer(4096)
        .build()
        .expect("monitor");
    let mut model = monitor.subscribe();
    let conn = ConnectionMonitor::new(&monitor);
    let mut w = Watcher::new(&conn);
    let targets: Vec<Watch> = (0..TARGETS)
        .map(|n| {
            let remote = IpAddr::from([198, 19, 1, (n + 1) as u8]);
            conn.watch_pair(ip("198.18.20.2"), remote, None)
                .expect("target")
        })
        .collect();
    let ids: Vec<TargetId> = targets.iter().map(Watch::id).collect();
    w.until_all(&ids, |r| reachable_via(r, "h0", Some("198.18.20.1")));
    let before = conn.route_lookups();

    // Stall the monitor's thread so that its 4 KiB buffer overflows for sure: addresses on h1,
    // which no target uses.
    let stall = monitor.__stall_for_test();
    lab.host.ip("addr add 2001:db8:7::ffff/128 dev h1 nodad");
    let adds: String = (1..=1000u32)
        .map(|i| format!("addr add 2001:db8:7::{i:x}/128 dev h1 nodad\n"))
        .collect();
    lab.host.ip_batch(&adds);
    drop(stall);
    // The resync follows the overflow, and every target's new lookup follows the resync: all
    // done once the monitor has judged everything before two marks.
    until_item(&mut model, "the resync", WAIT, |n| {
        matches!(n, Notification::Resynced { .. })
    });
    marker.settle(&mut model);
    assert!(
        conn.route_lookups() - before >= TARGETS as u64,
        "every target looked up again: {} lookups",
        conn.route_lookups() - before
    );
    assert!(monitor.stats().resyncs > 0, "a 4 KiB buffer must overflow");
    // A blackhole for one remote: its report comes after anything the resync reported.
    lab.host.ip("route add blackhole 198.19.1.1/32");
    let r = w.next_of(ids[0], "blackhole after the resync");
    assert_eq!(
        r,
        Reachability::Unreachable(Reason::RouteType(RouteType::Blackhole))
    );
    for id in &ids[1..] {
        assert_eq!(w.changes_of(*id), 1, "{id} reported only its first state");
    }
}
