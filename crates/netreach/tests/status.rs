//! The status monitor against the real kernel: every level and transition per family, each
//! change reported exactly once, and none where nothing changes (checked at a mark, see
//! `common::marker`, not by waiting a while).

// Every test here builds network namespaces, which only Linux has.
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::Ns;
use common::marker::{Marker, until_view};
use netreach::core::connectivity::{ConnectivityChange, ConnectivityConfig, Level};
use netreach::{Family, StatusMonitor, StatusNotification, StatusSubscription, Subscription};

const WAIT: Duration = Duration::from_secs(20);

/// Reads status changes, checking that none repeats a level, until `family` reaches `level`;
/// marks the host's notification stream to tell when nothing more is coming.
struct Watcher {
    sub: StatusSubscription,
    levels: BTreeMap<Option<Family>, Level>,
    /// The host's marker, and a model subscription that reads the marks.
    marker: Marker,
    model: Subscription,
}

impl Watcher {
    fn new(status: &StatusMonitor, host: &Ns) -> Watcher {
        let model = status.monitor().subscribe();
        // A tun device, down: no level depends on it.
        let marker = Marker::new(host);
        let mut sub = status.subscribe();
        let Some(StatusNotification::Ready { connectivity, .. }) = sub.recv() else {
            panic!("first item is Ready")
        };
        let levels = BTreeMap::from([
            (Some(Family::Ipv4), connectivity.ipv4),
            (Some(Family::Ipv6), connectivity.ipv6),
            (None, connectivity.overall),
        ]);
        Watcher {
            sub,
            levels,
            marker,
            model,
        }
    }

    /// Waits for `family` to change to `level`; returns the reason text. Every change seen on
    /// the way must continue from the level before it (no duplicates, nothing missed).
    fn expect(&mut self, family: Option<Family>, level: Level) -> String {
        loop {
            match self.sub.recv_timeout(WAIT) {
                Some(StatusNotification::Changed {
                    change: ConnectivityChange::Level(c),
                    ..
                }) => {
                    let before = self.levels.insert(c.family, c.new);
                    assert_eq!(before, Some(c.old), "change continues from the last: {c}");
                    assert_ne!(c.old, c.new, "a change changes something: {c}");
                    if c.family == family && c.new == level {
                        return c.to_string();
                    }
                }
                Some(StatusNotification::Changed { .. }) => {}
                Some(other) => panic!("unexpected {other:?}"),
                None => panic!(
                    "{family:?} never reached {level}; levels now {:?}",
                    self.levels
                ),
            }
        }
    }

    /// No level change of `family` follows the changes made so far: once the monitor has
    /// judged everything before two marks ([`Marker::settle`]), every change it derived is in
    /// the subscription, so what is there is read at once. For changes the kernel reports when
    /// the command returns (routes, rules, addresses, a deleted link); wait for a carrier
    /// change's own event first.
    fn quiet(&mut self, family: Option<Family>) {
        self.marker.settle(&mut self.model);
        while let Some(n) = self.sub.try_recv().expect("the status monitor runs") {
            if let StatusNotification::Changed {
                change: ConnectivityChange::Level(c),
                ..
            } = n
            {
                assert_ne!(c.family, family, "unexpected change {c}");
                let before = self.levels.insert(c.family, c.new);
                assert_eq!(before, Some(c.old), "change continues from the last: {c}");
            }
        }
    }
}

/// A host namespace with one uplink `h0` to a router namespace (`r0`).
fn host_and_router() -> (Ns, Ns) {
    let host = Ns::new("sthost");
    let router = Ns::new("strtr");
    host.veth_to("h0", &router, "r0");
    router.ip("addr add 198.18.20.1/24 dev r0");
    router.ip("addr add 2001:db8:20::1/64 dev r0 nodad");
    router.ip("addr add fe80::1/64 dev r0 nodad");
    router.ip("link set r0 up");
    (host, router)
}

#[test]
fn ipv4_levels_and_transitions() {
    let (host, router) = host_and_router();
    let monitor = common::monitor_in(host.netns()).expect("monitor");
    let status = StatusMonitor::new(&monitor, ConnectivityConfig::default());
    let c = status.connectivity();
    assert_eq!(
        (c.ipv4, c.ipv6, c.overall),
        (
            Level::Disconnected,
            Level::Disconnected,
            Level::Disconnected
        )
    );
    assert!(!status.is_online());
    let mut w = Watcher::new(&status, &host);

    host.ip("link set h0 up");
    host.ip("addr add 198.18.20.2/24 dev h0");
    w.expect(Some(Family::Ipv4), Level::Site);
    host.ip("route add default via 198.18.20.1");
    let why = w.expect(Some(Family::Ipv4), Level::Internet);
    assert!(why.contains("default route via 198.18.20.1"), "{why}");
    w.expect(None, Level::Internet);
    assert!(status.is_online());
    assert_eq!(status.connectivity().primary_interface(), Some("h0"));

    // Carrier loss: the router's end goes down, and h0 has no usable link any more.
    router.ip("link set r0 down");
    let why = w.expect(Some(Family::Ipv4), Level::Disconnected);
    assert!(why.contains("carrier"), "{why}");
    w.expect(None, Level::Disconnected);
    assert!(!status.is_online());
    router.ip("link set r0 up");
    w.expect(Some(Family::Ipv4), Level::Internet);

    // A blackhole default route in front of the real one takes internet away.
    host.ip("route replace default via 198.18.20.1 metric 100");
    host.ip("route del default via 198.18.20.1 metric 0");
    w.quiet(Some(Family::Ipv4));
    host.ip("route del default via 198.18.20.1 metric 100");
    w.expect(Some(Family::Ipv4), Level::Site);
    host.ip("route add blackhole default");
    w.quiet(Some(Family::Ipv4));
    assert_eq!(status.connectivity().ipv4, Level::Site);
    host.ip("route del blackhole default");

    // A default route in a policy table counts once a rule reaches that table.
    host.ip("route add default via 198.18.20.1 table 100");
    w.quiet(Some(Family::Ipv4));
    host.ip("rule add from 198.18.20.2 lookup 100 pref 100");
    w.expect(Some(Family::Ipv4), Level::Internet);
    host.ip("rule del from 198.18.20.2 lookup 100 pref 100");
    w.expect(Some(Family::Ipv4), Level::Site);

    // Address removal, then interface removal.
    host.ip("addr del 198.18.20.2/24 dev h0");
    w.expect(Some(Family::Ipv4), Level::Disconnected);
    host.ip("link del h0");
    w.quiet(Some(Family::Ipv4));
    assert_eq!(status.connectivity().overall, Level::Disconnected);
}

#[test]
fn ipv6_levels_link_local_gateway_and_independence() {
    let (host, _router) = host_and_router();
    // No DAD delays in this test: addresses are usable at once.
    common::run(
        "ip",
        &[
            "netns",
            "exec",
            &host.name,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.accept_dad=0",
        ],
    );
    common::run(
        "ip",
        &[
            "netns",
            "exec",
            &host.name,
            "sysctl",
            "-qw",
            "net.ipv6.conf.default.accept_dad=0",
        ],
    );
    let monitor = common::monitor_in(host.netns()).expect("monitor");
    let status = StatusMonitor::new(&monitor, ConnectivityConfig::default());
    let mut w = Watcher::new(&status, &host);

    // Link up with carrier and only fe80:: gives local.
    host.ip("link set h0 up");
    w.expect(Some(Family::Ipv6), Level::Local);
    assert_eq!(status.connectivity().ipv4, Level::Disconnected);
    // A routable address with its prefix route gives site.
    host.ip("addr add 2001:db8:20::2/64 dev h0 nodad");
    w.expect(Some(Family::Ipv6), Level::Site);
    // A default route via the router's link-local address gives internet.
    let router_ll = "fe80::1";
    host.ip(&format!("-6 route add default via {router_ll} dev h0"));
    let why = w.expect(Some(Family::Ipv6), Level::Internet);
    assert!(why.contains("IPv6"), "{why}");
    // IPv4 moves on its own while IPv6 stays.
    host.ip("addr add 198.18.20.2/24 dev h0");
    w.expect(Some(Family::Ipv4), Level::Site);
    assert_eq!(status.connectivity().ipv6, Level::Internet);
    host.ip("addr del 198.18.20.2/24 dev h0");
    w.expect(Some(Family::Ipv4), Level::Disconnected);
    assert_eq!(status.connectivity().ipv6, Level::Internet);
    // An unreachable default route does not make internet.
    host.ip(&format!("-6 route del default via {router_ll} dev h0"));
    w.expect(Some(Family::Ipv6), Level::Site);
    host.ip("-6 route add unreachable default");
    w.quiet(Some(Family::Ipv6));
    // Address removal.
    host.ip("addr del 2001:db8:20::2/64 dev h0");
    w.expect(Some(Family::Ipv6), Level::Local);
}

#[test]
fn linkdown_route_is_not_internet() {
    let (host, router) = host_and_router();
    host.ip("link set h0 up");
    host.ip("addr add 198.18.20.2/24 dev h0");
    host.ip("route add default via 198.18.20.1");
    let monitor = common::monitor_in(host.netns()).expect("monitor");
    let status = StatusMonitor::new(&monitor, ConnectivityConfig::default());
    assert_eq!(status.connectivity().ipv4, Level::Internet);
    let mut w = Watcher::new(&status, &host);
    router.ip("link set r0 down");
    w.expect(Some(Family::Ipv4), Level::Disconnected);
    // The kernel flags the default route `linkdown` without a message of its own; the monitor
    // learns it from the route refresh that h0's carrier loss asks for.
    until_view(
        &mut w.model,
        "the kernel to flag the default route linkdown",
        WAIT,
        |s| s.routes().any(|r| r.is_default() && r.linkdown),
    );
    w.quiet(Some(Family::Ipv4));
    assert_ne!(status.connectivity().ipv4, Level::Internet);
}

#[test]
fn excluded_interfaces_do_not_count() {
    let (host, _router) = host_and_router();
    host.ip("link set h0 up");
    host.ip("addr add 198.18.20.2/24 dev h0");
    host.ip("route add default via 198.18.20.1");
    let monitor = common::monitor_in(host.netns()).expect("monitor");
    let all = StatusMonitor::new(&monitor, ConnectivityConfig::default());
    let without = StatusMonitor::new(
        &monitor,
        ConnectivityConfig::default().with_excluded("h*".parse().unwrap()),
    );
    assert_eq!(all.connectivity().ipv4, Level::Internet);
    assert_eq!(without.connectivity().ipv4, Level::Disconnected);
}

#[test]
fn dropping_the_last_handle_ends_subscriptions() {
    let (host, _router) = host_and_router();
    let monitor = common::monitor_in(host.netns()).expect("monitor");
    let status = StatusMonitor::new(&monitor, ConnectivityConfig::default());
    let clone = status.clone();
    let mut sub = status.subscribe();
    assert!(matches!(sub.recv(), Some(StatusNotification::Ready { .. })));
    drop(status);
    // A clone still lives: the stream goes on. Were the drop to detach, the monitor's thread
    // would close the stream when it handles the detach; attaching another status monitor is
    // a command it handles after that one, and `new` returns once it did.
    let _barrier = StatusMonitor::new(&monitor, ConnectivityConfig::default());
    assert!(
        matches!(sub.try_recv(), Ok(None)),
        "not ended while a handle lives"
    );
    drop(clone);
    // The monitor itself still runs, but this status monitor is gone: its stream ends.
    assert_eq!(sub.recv_timeout(WAIT), None);
    assert!(matches!(sub.try_recv(), Err(netreach::Error::Stopped)));
}
