//! The live model against the real kernel: snapshots equal `ip -j`, every kind of change arrives
//! as the right typed event in order, and a burst no subscriber reads ends in the kernel's state.

// Every test here builds network namespaces, which only Linux has.
#![cfg(target_os = "linux")]

mod common;

use std::time::Duration;

use common::kernel::{assert_matches_kernel, matches_kernel};
use common::{Ns, wait_until};
use netreach::{Event, Monitor, Notification, OperState, Subscription};

const SETTLE: Duration = Duration::from_secs(20);

/// A namespace with every link kind available here, addresses of both families, routes of
/// several types and tables, and a policy rule.
fn rich_namespace() -> (Ns, Ns) {
    let ns = Ns::new("rich");
    let peer = Ns::new("peer");
    ns.veth_to("up0", &peer, "p0");
    peer.ip("link set p0 up");
    ns.veth("va", "vb");
    ns.ip("link add br0 type bridge");
    ns.ip("link set vb master br0");
    ns.ip("link add vx0 type vxlan id 42 dstport 4789 local 198.18.0.2 dev up0");
    ns.ip("tuntap add mode tun dev tun0");
    for l in ["up0", "va", "vb", "br0", "vx0", "tun0"] {
        ns.ip(&format!("link set {l} up"));
    }
    ns.ip("link set va mtu 1400");
    ns.ip("addr add 198.18.0.2/24 dev up0");
    ns.ip("addr add 198.18.0.3/24 dev up0");
    ns.ip("addr add 2001:db8:1::2/64 dev up0 nodad");
    ns.ip("addr add 2001:db8:2::1/64 dev br0 nodad noprefixroute");
    ns.ip("addr add 198.18.9.1/24 dev br0");
    ns.ip("route add default via 198.18.0.1 dev up0");
    ns.ip("route add 198.19.1.0/24 via 198.18.0.1 metric 50");
    ns.ip("route add blackhole 198.19.2.0/24");
    ns.ip("route add unreachable 198.19.3.0/24");
    ns.ip("route add prohibit 198.19.4.0/24");
    ns.ip("route add 198.19.5.0/24 dev up0 table 100");
    ns.ip("-6 route add default via 2001:db8:1::1 dev up0 metric 10");
    ns.ip("-6 route add unreachable 2001:db8:99::/48");
    ns.ip("rule add from 198.18.9.0/24 lookup 100 pref 100");
    (ns, peer)
}

#[test]
fn snapshot_matches_the_kernel() {
    let (ns, peer) = rich_namespace();
    let monitor = common::monitor_in(ns.netns()).expect("monitor");
    // The kernel keeps changing on its own for a moment (IPv6 link-local addresses finish
    // duplicate address detection), so compare once both views agree, with a diff if never.
    let settled = |m: &Monitor| matches_kernel(&ns, &m.snapshot());
    wait_until("the model to match the kernel", SETTLE, || {
        settled(&monitor)
    });
    let snap = monitor.snapshot();
    assert_matches_kernel(&ns, &snap);
    // The kinds are told apart.
    for (name, kind) in [
        ("lo", "loopback"),
        ("up0", "veth"),
        ("br0", "bridge"),
        ("vx0", "vxlan"),
        ("tun0", "tun"),
    ] {
        assert_eq!(snap.interface_by_name(name).unwrap().kind.as_str(), kind);
    }
    // The rule is there.
    assert!(
        snap.rules()
            .any(|r| r.priority == 100 && r.action == netreach::core::RuleAction::ToTable(100))
    );
    // And it stays in step with further changes, including the ones the kernel makes
    // silently: the peer going down flags routes through up0 `linkdown` without a message.
    peer.ip("link set p0 down");
    wait_until("linkdown routes", SETTLE, || {
        matches_kernel(&ns, &monitor.snapshot()) && monitor.snapshot().routes().any(|r| r.linkdown)
    });
    ns.ip("route del 198.19.1.0/24");
    ns.ip("addr del 198.18.0.3/24 dev up0");
    ns.ip("link set tun0 down");
    wait_until("model to follow", SETTLE, || {
        matches_kernel(&ns, &monitor.snapshot())
    });
    assert_matches_kernel(&ns, &monitor.snapshot());
}

/// Reads changes until one satisfies `pred`; returns the events seen on the way, including it.
fn until(sub: &mut Subscription, what: &str, pred: impl Fn(&Event) -> bool) -> Vec<(u64, Event)> {
    let mut seen = Vec::new();
    loop {
        match sub.recv_timeout(SETTLE) {
            Some(Notification::Change { seq, event, .. }) => {
                let hit = pred(&event);
                seen.push((seq, event));
                if hit {
                    return seen;
                }
            }
            Some(_) => {}
            None => panic!("no {what} event; saw {seen:#?}"),
        }
    }
}

#[test]
fn every_kind_of_change_is_a_typed_event_in_order() {
    let ns = Ns::new("events");
    let monitor = common::monitor_in(ns.netns()).expect("monitor");
    let mut sub = monitor.subscribe();
    assert!(matches!(sub.recv(), Some(Notification::Ready { .. })));
    let mut last_seq = 0;
    let mut step = |sub: &mut Subscription, what: &str, pred: &dyn Fn(&Event) -> bool| {
        let seen = until(sub, what, pred);
        for (seq, _) in &seen {
            assert_eq!(*seq, last_seq + 1, "sequence numbers are consecutive");
            last_seq = *seq;
        }
        seen.last().cloned().map(|(_, e)| e).unwrap()
    };

    ns.veth("ea", "eb");
    step(
        &mut sub,
        "interface added",
        &|e| matches!(e, Event::InterfaceAdded(i) if i.name == "ea"),
    );
    ns.ip("link set ea up");
    let e = step(
        &mut sub,
        "admin up",
        &|e| matches!(e, Event::InterfaceChanged { new, changes, .. } if new.name == "ea" && changes.admin_up),
    );
    assert!(matches!(e, Event::InterfaceChanged { new, .. } if new.admin_up && !new.carrier));
    ns.ip("link set eb up");
    step(
        &mut sub,
        "carrier on",
        &|e| matches!(e, Event::InterfaceChanged { new, changes, .. } if new.name == "ea" && changes.carrier && new.carrier),
    );
    ns.ip("addr add 198.18.1.1/24 dev ea");
    step(
        &mut sub,
        "address added",
        &|e| matches!(e, Event::AddressAdded(a) if a.address.to_string() == "198.18.1.1" && a.prefix_len == 24),
    );
    ns.ip("route add 198.19.0.0/16 via 198.18.1.2");
    step(&mut sub, "route added", &|e| {
        matches!(e, Event::RouteAdded(r) if r.destination.to_string() == "198.19.0.0/16"
            && r.gateway.map(|g| g.to_string()) == Some("198.18.1.2".into()))
    });
    ns.ip("link set ea mtu 1300");
    step(
        &mut sub,
        "mtu",
        &|e| matches!(e, Event::InterfaceChanged { new, changes, .. } if changes.mtu && new.mtu == 1300),
    );
    // Carrier loss of a veth whose peer goes down.
    ns.ip("link set eb down");
    let e = step(
        &mut sub,
        "carrier lost",
        &|e| matches!(e, Event::InterfaceChanged { new, changes, .. } if new.name == "ea" && changes.carrier),
    );
    let Event::InterfaceChanged { new, .. } = e else {
        unreachable!()
    };
    assert!(!new.carrier);
    assert!(new.admin_up);
    assert_eq!(new.oper_state, OperState::LowerLayerDown);
    // The kernel marks routes through a link without carrier `linkdown`.
    step(
        &mut sub,
        "linkdown route",
        &|e| matches!(e, Event::RouteAdded(r) if r.destination.to_string() == "198.19.0.0/16" && r.linkdown),
    );
    ns.ip("route del 198.19.0.0/16");
    step(
        &mut sub,
        "route removed",
        &|e| matches!(e, Event::RouteRemoved(r) if r.destination.to_string() == "198.19.0.0/16"),
    );
    ns.ip("addr del 198.18.1.1/24 dev ea");
    step(
        &mut sub,
        "address removed",
        &|e| matches!(e, Event::AddressRemoved(a) if a.address.to_string() == "198.18.1.1"),
    );
    ns.ip("link set ea down");
    ns.ip("link set ea name eaX");
    step(
        &mut sub,
        "rename",
        &|e| matches!(e, Event::InterfaceChanged { old, new, changes, .. } if changes.name && old.name == "ea" && new.name == "eaX"),
    );
    ns.ip("link del eaX");
    step(
        &mut sub,
        "interface removed",
        &|e| matches!(e, Event::InterfaceRemoved(i) if i.name == "eaX"),
    );
    wait_until("model to settle", SETTLE, || {
        matches_kernel(&ns, &monitor.snapshot())
    });
}

#[test]
fn ipv6_dad_completion_is_an_address_change() {
    let ns = Ns::new("dad");
    ns.veth("da", "db");
    ns.ip("link set db up");
    let monitor = common::monitor_in(ns.netns()).expect("monitor");
    let mut sub = monitor.subscribe();
    ns.ip("link set da up");
    ns.ip("addr add 2001:db8:5::1/64 dev da");
    let seen = until(
        &mut sub,
        "tentative address",
        |e| matches!(e, Event::AddressAdded(a) if a.address.to_string() == "2001:db8:5::1"),
    );
    let Some((_, Event::AddressAdded(a))) = seen.last() else {
        unreachable!()
    };
    assert!(
        !a.is_usable(),
        "a fresh address is tentative while DAD runs"
    );
    until(
        &mut sub,
        "DAD done",
        |e| matches!(e, Event::AddressChanged { new, .. } if new.address.to_string() == "2001:db8:5::1" && new.is_usable()),
    );
}

/// 20,000 address additions and 10,000 removals while the subscriber does not read: its view
/// ends equal to the kernel's.
#[test]
fn burst_while_subscriber_sleeps_ends_in_the_kernels_state() {
    let ns = Ns::new("burst");
    ns.veth("ba", "bb");
    ns.ip("link set ba up");
    let monitor = common::builder()
        .netns(ns.netns())
        .queue_capacity(1024)
        .build()
        .expect("monitor");
    let mut sub = monitor.subscribe();
    let mut add = String::new();
    for i in 0..20_000u32 {
        add.push_str(&format!(
            "addr add 198.18.{}.{}/32 dev ba\n",
            128 + i / 250,
            i % 250 + 1
        ));
    }
    ns.ip_batch(&add);
    let mut del = String::new();
    for i in (0..20_000u32).step_by(2) {
        del.push_str(&format!(
            "addr del 198.18.{}.{}/32 dev ba\n",
            128 + i / 250,
            i % 250 + 1
        ));
    }
    ns.ip_batch(&del);
    wait_until("monitor to catch up", Duration::from_secs(60), || {
        monitor.snapshot().addresses().len() >= 10_000 && matches_kernel(&ns, &monitor.snapshot())
    });
    // Now read everything the subscriber has.
    let mut lagged = false;
    while let Ok(Some(n)) = sub.try_recv() {
        lagged |= matches!(n, Notification::Lagged { .. });
    }
    assert!(lagged, "a queue of 1024 cannot hold 30,000 changes");
    assert_matches_kernel(&ns, sub.view());
    assert_eq!(
        sub.view()
            .addresses()
            .filter(|a| a.address.to_string().starts_with("198.18.1"))
            .count()
            + sub
                .view()
                .addresses()
                .filter(|a| a.address.to_string().starts_with("198.18.2"))
                .count(),
        10_000
    );
}

/// A monitor started in the middle of a burst: the kernel's tables change under its dump
/// (`NLM_F_DUMP_INTR`, redone) and between its subscription and its dump (queued, applied
/// after). Nothing may be lost either way.
#[test]
fn start_during_a_burst_misses_nothing() {
    let ns = Ns::new("midburst");
    // Not "ma": ip would read it as an abbreviation of "master".
    ns.veth("mid0", "mid1");
    ns.ip("link set mid0 up");
    let mut add = String::new();
    for i in 0..6_000u32 {
        add.push_str(&format!(
            "addr add 2001:db8:9::{:x}/128 dev mid0 nodad\n",
            i + 1
        ));
        if i % 3 == 0 {
            add.push_str(&format!(
                "route add 198.19.{}.{}/32 dev mid0\n",
                i / 250,
                i % 250
            ));
        }
    }
    // The burst runs in the background, fed through standard input, while monitors start.
    let mut burst = std::process::Command::new("ip")
        .args(["-n", &ns.name, "-batch", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = burst.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(add.as_bytes()).unwrap();
    });
    std::thread::sleep(Duration::from_millis(50));
    let monitors: Vec<_> = (0..3)
        .map(|_| common::monitor_in(ns.netns()).expect("monitor"))
        .collect();
    feeder.join().unwrap();
    assert!(burst.wait().unwrap().success());
    for m in &monitors {
        wait_until("each monitor to reach the kernel's state", SETTLE, || {
            matches_kernel(&ns, &m.snapshot())
        });
    }
    assert_matches_kernel(&ns, &monitors[0].snapshot());
}

/// Forcing socket overflow with a tiny receive buffer: the monitor resyncs and still ends in
/// the kernel's state, and says so with a `Resynced` marker.
#[test]
fn socket_overflow_resyncs() {
    if common::netlink_only("a socket overflow") {
        return;
    }
    let ns = Ns::new("enobufs");
    ns.veth("oa", "ob");
    ns.ip("link set oa up");
    let monitor = common::builder()
        .netns(ns.netns())
        .receive_buffer(4096)
        .build()
        .expect("monitor");
    let mut sub = monitor.subscribe();
    // Stall the monitor's thread so the socket's small buffer overflows for sure.
    let stall = monitor.__stall_for_test();
    ns.ip("addr add 2001:db8:7::ffff/128 dev oa nodad");
    let mut add = String::new();
    for i in 0..5_000u32 {
        add.push_str(&format!(
            "addr add 2001:db8:7::{:x}/128 dev oa nodad\n",
            i + 1
        ));
    }
    ns.ip_batch(&add);
    drop(stall);
    wait_until("monitor to catch up", Duration::from_secs(60), || {
        matches_kernel(&ns, &monitor.snapshot())
    });
    assert!(monitor.stats().resyncs > 0, "a 4 KiB buffer must overflow");
    let mut resynced = false;
    while let Ok(Some(n)) = sub.try_recv() {
        resynced |= matches!(n, Notification::Resynced { .. });
    }
    assert!(resynced);
    assert_matches_kernel(&ns, sub.view());
}

#[test]
fn namespace_errors_are_typed() {
    match common::monitor_in(netreach::Netns::named("nrt-does-not-exist-0").unwrap()) {
        Err(netreach::Error::NamespaceNotFound { .. }) => {}
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn caller_thread_stays_in_its_namespace() {
    let before = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
    let ns = Ns::new("stay");
    let _m = common::monitor_in(ns.netns()).expect("monitor");
    assert_eq!(
        std::fs::read_link("/proc/thread-self/ns/net").unwrap(),
        before
    );
}

#[test]
fn async_subscription_works_without_a_runtime() {
    // A minimal executor: poll the future on this thread, parking until woken.
    use std::future::Future;
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    fn block_on<F: Future>(f: F) -> F::Output {
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            std::thread::park_timeout(Duration::from_secs(5));
        }
    }
    let ns = Ns::new("async");
    let monitor = common::monitor_in(ns.netns()).expect("monitor");
    let mut sub = monitor.subscribe();
    assert!(matches!(
        block_on(sub.recv_async()),
        Some(Notification::Ready { .. })
    ));
    let name = ns.name.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        common::run(
            "ip",
            &[
                "-n", &name, "link", "add", "aa", "type", "veth", "peer", "name", "ab",
            ],
        );
    });
    let n = block_on(sub.recv_async());
    assert!(matches!(
        n,
        Some(Notification::Change {
            event: Event::InterfaceAdded(_),
            ..
        })
    ));
    t.join().unwrap();
}
