//! The live model against the real kernel: snapshots equal `ip -j`, every kind of change arrives
//! as the right typed event in order, and a burst no subscriber reads ends in the kernel's state.
//!
//! The model is compared with the kernel at a mark (`common::marker`): once the monitor reports
//! a change made after the test's last one, `ip -j` is read once. The bursts spread their
//! addresses over many interfaces: the kernel keeps each interface's addresses in a list that an
//! addition walks, so 20,000 addresses on one interface cost a minute of kernel time, and 500 on
//! each of 40 interfaces about a second.

// Every test here builds network namespaces, which only Linux has.
#![cfg(target_os = "linux")]

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::Ns;
use common::kernel::{KernelView, assert_in_step};
use common::marker::{MARK_WAIT, Marker, until_item, until_view};
use netreach::{Event, Notification, OperState, Subscription};

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
    let mut marker = Marker::new(&ns);
    let monitor = common::monitor_in(ns.netns()).expect("monitor");
    let mut sub = monitor.subscribe();
    // The kernel keeps changing on its own for a moment (IPv6 link-local addresses finish
    // duplicate address detection): `assert_in_step` compares again after each such change.
    assert_in_step(&ns, &mut marker, &mut sub);
    let snap = monitor.snapshot();
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
    // silently: the peer going down flags routes through up0 `linkdown` without a message (the
    // carrier loss that causes it comes from linkwatch, later than the command).
    peer.ip("link set p0 down");
    until_view(&mut sub, "linkdown routes", SETTLE, |s| {
        s.routes().any(|r| r.linkdown)
    });
    assert_in_step(&ns, &mut marker, &mut sub);
    ns.ip("route del 198.19.1.0/24");
    ns.ip("addr del 198.18.0.3/24 dev up0");
    ns.ip("link set tun0 down");
    assert_in_step(&ns, &mut marker, &mut sub);
}

/// Reads changes until one satisfies `pred`; returns the events seen on the way, including it.
fn until(sub: &mut Subscription, what: &str, pred: impl Fn(&Event) -> bool) -> Vec<(u64, Event)> {
    let mut seen = Vec::new();
    loop {
        match sub.recv_timeout(SETTLE) {
            Some(Notification::Change { seq, event, .. }) => {
                let hit = pred(&event);
                seen.push((seq, *event));
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
    let mut marker = Marker::new(&ns);
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
    assert_in_step(&ns, &mut marker, &mut sub);
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

/// Veth pairs `{a}{k}`/`{b}{k}`, `k` in `0..n`: each `{a}{k}` up, its peer down, so that it has
/// no carrier and the kernel adds nothing to it on its own (no IPv6 link-local address).
fn quiet_links(ns: &Ns, a: &str, b: &str, n: u32) {
    let lines: String = (0..n)
        .map(|k| format!("link add {a}{k} type veth peer name {b}{k}\nlink set {a}{k} up\n"))
        .collect();
    ns.ip_batch(&lines);
}

/// The interfaces the burst tests spread their addresses over, 500 to 1,000 each.
const BURST_LINKS: u32 = 40;

/// 20,000 address additions and 10,000 removals while the subscriber does not read: its view
/// ends equal to the kernel's.
#[test]
fn burst_while_subscriber_sleeps_ends_in_the_kernels_state() {
    let ns = Ns::new("burst");
    quiet_links(&ns, "ba", "bb", BURST_LINKS);
    let mut marker = Marker::new(&ns);
    let monitor = common::builder()
        .netns(ns.netns())
        .queue_capacity(1024)
        .build()
        .expect("monitor");
    let mut sub = monitor.subscribe();
    // Reads as the monitor publishes, to tell when the burst is all out.
    let mut witness = monitor.subscribe();
    let addr = |i: u32| {
        format!(
            "198.18.{}.{}/32 dev ba{}",
            128 + i / 250,
            i % 250 + 1,
            i % BURST_LINKS
        )
    };
    let add: String = (0..20_000)
        .map(|i| format!("addr add {}\n", addr(i)))
        .collect();
    ns.ip_batch(&add);
    let del: String = (0..20_000)
        .step_by(2)
        .map(|i| format!("addr del {}\n", addr(i)))
        .collect();
    ns.ip_batch(&del);
    // The monitor has handed the whole burst out once the witness has seen two marks made
    // after it (one is not enough: the view has a mark as soon as the first slice of its batch
    // is read, which with the polling backend may be the whole burst); only then does the
    // sleeping subscriber read.
    marker.settle(&mut witness);
    let read = marker.wait(&mut sub);
    assert!(
        read.iter()
            .any(|n| matches!(n, Notification::Lagged { .. })),
        "a queue of 1024 cannot hold 30,000 changes; read {} items, the first {:?}; {:?}",
        read.len(),
        read.first().map(|n| n.seq()),
        monitor.stats()
    );
    assert_in_step(&ns, &mut marker, &mut sub);
    let burst = sub
        .view()
        .addresses()
        .filter(|a| matches!(a.address, IpAddr::V4(v) if v.octets()[..2] == [198, 18] && v.octets()[2] >= 128))
        .count();
    assert_eq!(burst, 10_000);
    eprintln!("burst: {:?}", monitor.stats());
}

/// Steps the burst may take before the monitors have started: many times what it takes on a
/// busy machine. Reaching it fails the test rather than let the burst end too early.
const MID_CAP: u32 = 50_000;
/// Addresses (and routes) the burst keeps at a time: few enough for each of the monitors'
/// dumps to fit one part (the kernel flags a dump interrupted only between parts).
const MID_WINDOW: u32 = 150;
/// Steps fed to `ip` at a time.
const MID_CHUNK: u32 = 50;

/// One step of the burst that runs while monitors start: a new address and a new route, and
/// the removal of those of `MID_WINDOW` steps before, alternating between two interfaces.
fn mid_step(i: u32, out: &mut String) {
    let addr = |i: u32| {
        format!(
            "2001:db8:9::{:x}:{:x}/128 dev mid{}",
            i >> 16,
            (i & 0xffff) + 1,
            i % 2
        )
    };
    let route = |i: u32| {
        format!(
            "198.19.{}.{}/32 dev mid{}",
            i / 250 % 256,
            i % 250 + 1,
            i % 2
        )
    };
    out.push_str(&format!(
        "addr add {} nodad\nroute add {}\n",
        addr(i),
        route(i)
    ));
    if let Some(old) = i.checked_sub(MID_WINDOW) {
        out.push_str(&format!(
            "addr del {}\nroute del {}\n",
            addr(old),
            route(old)
        ));
    }
}

/// Monitors started in the middle of a burst: the kernel's tables change between each one's
/// subscription and the end of its dump, so notifications of changes the dump already shows
/// (and of changes it does not) are queued and applied after it. Nothing may be lost or
/// doubled: each ends in the kernel's state.
///
/// The burst is fed to `ip` until every monitor has started, so that it runs during each start
/// whatever the machine's speed; it keeps the tables small, because a dump the kernel keeps
/// flagging interrupted (`NLM_F_DUMP_INTR`) fails the start after 32 attempts
/// (`Error::DumpInterrupted`), which a sustained burst over large tables can make happen. So
/// each dump here fits one part and is never flagged; the redo of a flagged dump is proven by
/// `a_dump_interrupted_by_a_change_is_redone`, every time.
#[test]
fn start_during_a_burst_misses_nothing() {
    let ns = Ns::new("midburst");
    // Not "ma": ip would read it as an abbreviation of "master".
    quiet_links(&ns, "mid", "mip", 2);
    let mut marker = Marker::new(&ns);
    // A monitor from before the burst: its report of the burst's first address starts the
    // others, and it must end in the kernel's state too.
    let before = common::monitor_in(ns.netns()).expect("monitor");
    let mut before_sub = before.subscribe();
    let mut burst = std::process::Command::new("ip")
        .args(["-n", &ns.name, "-batch", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = burst.stdin.take().unwrap();
    let started = Arc::new(AtomicBool::new(false));
    let feeder = {
        let started = started.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut fed = 0;
            while fed < MID_CAP && !started.load(Ordering::Acquire) {
                let mut chunk = String::new();
                for i in fed..fed + MID_CHUNK {
                    mid_step(i, &mut chunk);
                }
                stdin.write_all(chunk.as_bytes()).unwrap();
                fed += MID_CHUNK;
            }
            fed
        })
    };
    until_view(&mut before_sub, "the burst's first address", SETTLE, |s| {
        s.addresses()
            .any(|a| a.address.to_string().starts_with("2001:db8:9::"))
    });
    let mut monitors: Vec<_> = (0..3)
        .map(|_| {
            let m = common::monitor_in(ns.netns()).expect("monitor");
            let sub = m.subscribe();
            (m, sub)
        })
        .collect();
    started.store(true, Ordering::Release);
    let fed = feeder.join().unwrap();
    assert!(burst.wait().unwrap().success());
    assert!(
        fed < MID_CAP,
        "the burst ran out ({fed} steps) before the monitors had started; raise MID_CAP"
    );
    assert_in_step(&ns, &mut marker, &mut before_sub);
    // Nothing changes any more: each monitor must show the kernel's state once it reports
    // the mark that the comparison above made last.
    let kernel = KernelView::read(&ns);
    for (_, sub) in &mut monitors {
        marker.wait(sub);
        if let Some(d) = kernel.differences(sub.view()) {
            panic!("a monitor started during the burst differs from the kernel:\n{d}");
        }
    }
    eprintln!("{fed} steps of the burst fed before the monitors had started");
}

/// A change between two parts of a monitor's first dump: the kernel flags the dump
/// interrupted (`NLM_F_DUMP_INTR`) and the monitor redoes it; the notifications of the change,
/// queued since the monitor subscribed (before it dumped), are applied after the dump (where
/// the redone dump shows the change already, as no-ops). A test hook between dump parts makes
/// the change happen there every time, which no timing of a burst does reliably.
#[test]
fn a_dump_interrupted_by_a_change_is_redone() {
    let ns = Ns::new("dumpintr");
    quiet_links(&ns, "di", "dj", 4);
    // Enough addresses for the address dump to take several parts (some 400 fit one).
    let add: String = (0..2_000u32)
        .map(|i| {
            format!(
                "addr add 2001:db8:9::{:x}/128 dev di{} nodad\n",
                i + 1,
                i % 4
            )
        })
        .collect();
    ns.ip_batch(&add);
    let mut marker = Marker::new(&ns);
    let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
    let hook = {
        let (calls, netns) = (calls.clone(), ns.name.clone());
        let changed = AtomicBool::new(false);
        move |what: &'static str, attempt: u32| {
            calls.lock().unwrap().push((what, attempt));
            // Once, after the first part of the first address dump: the kernel has made the
            // second part already, so the third is flagged.
            if what == "address" && !changed.swap(true, Ordering::SeqCst) {
                for change in [
                    "addr add 2001:db8:9:ffff::1/128 dev di0 nodad",
                    "addr del 2001:db8:9::1/128 dev di0",
                ] {
                    let mut args = vec!["-n", netns.as_str()];
                    args.extend(change.split(' '));
                    common::run("ip", &args);
                }
            }
        }
    };
    let monitor = common::builder()
        .netns(ns.netns())
        .__dump_hook_for_test(hook)
        .build()
        .expect("monitor");
    let calls = calls.lock().unwrap().clone();
    assert!(
        calls.contains(&("address", 1)),
        "the address dump was redone after the change: {calls:?}"
    );
    let mut sub = monitor.subscribe();
    assert_in_step(&ns, &mut marker, &mut sub);
    let has = |a: &str| sub.view().addresses().any(|x| x.address.to_string() == a);
    assert!(has("2001:db8:9:ffff::1") && !has("2001:db8:9::1"));
}

/// Forcing socket overflow with a tiny receive buffer: the monitor resyncs and still ends in
/// the kernel's state, and says so with a `Resynced` marker.
#[test]
fn socket_overflow_resyncs() {
    if common::netlink_only("a socket overflow") {
        return;
    }
    const LINKS: u32 = 10;
    let ns = Ns::new("enobufs");
    quiet_links(&ns, "oa", "ob", LINKS);
    let mut marker = Marker::new(&ns);
    let monitor = common::builder()
        .netns(ns.netns())
        .receive_buffer(4096)
        .build()
        .expect("monitor");
    let mut sub = monitor.subscribe();
    // Stall the monitor's thread so the socket's small buffer overflows for sure.
    let stall = monitor.__stall_for_test();
    ns.ip("addr add 2001:db8:7::ffff/128 dev oa0 nodad");
    let add: String = (0..5_000u32)
        .map(|i| {
            format!(
                "addr add 2001:db8:7::{:x}/128 dev oa{} nodad\n",
                i + 1,
                i % LINKS
            )
        })
        .collect();
    ns.ip_batch(&add);
    drop(stall);
    until_item(&mut sub, "Resynced marker", MARK_WAIT, |n| {
        matches!(n, Notification::Resynced { .. })
    });
    assert!(monitor.stats().resyncs > 0, "a 4 KiB buffer must overflow");
    assert_in_step(&ns, &mut marker, &mut sub);
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
    // A minimal executor: the future is polled on this thread, which parks until woken. A
    // pending future that nobody wakes fails the test (it is not polled again by time).
    use std::future::Future;
    use std::sync::atomic::AtomicUsize;
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark {
        thread: std::thread::Thread,
        wakes: AtomicUsize,
    }
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.wakes.fetch_add(1, Ordering::SeqCst);
            self.thread.unpark();
        }
    }
    let unpark = Arc::new(Unpark {
        thread: std::thread::current(),
        wakes: AtomicUsize::new(0),
    });
    let waker = Waker::from(unpark.clone());
    let mut cx = Context::from_waker(&waker);
    let ns = Ns::new("async");
    let monitor = common::monitor_in(ns.netns()).expect("monitor");
    let mut sub = monitor.subscribe();
    let first = std::pin::pin!(sub.recv_async()).poll(&mut cx);
    assert!(matches!(
        first,
        Poll::Ready(Some(Notification::Ready { .. }))
    ));
    // Nothing has changed yet: the next item is pending, and only the change made below can
    // wake it.
    let mut next = std::pin::pin!(sub.recv_async());
    assert!(next.as_mut().poll(&mut cx).is_pending());
    ns.veth("aa", "ab");
    let deadline = std::time::Instant::now() + SETTLE;
    while unpark.wakes.load(Ordering::SeqCst) == 0 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(
            !left.is_zero(),
            "the pending recv_async was not woken by the change"
        );
        std::thread::park_timeout(left);
    }
    let n = next.as_mut().poll(&mut cx);
    assert!(
        matches!(
            &n,
            Poll::Ready(Some(Notification::Change { event, .. }))
                if matches!(**event, Event::InterfaceAdded(_))
        ),
        "{n:?}"
    );
}

/// Removing an IPv4 address: the kernel announces the routes it made for the address, but
/// flushes other routes using it as source, and every route through an interface whose last
/// IPv4 address it was, without a word. The model follows all three, and dumps routes only for
/// the two silent ones (removing one of several addresses nothing else names costs no dump).
#[test]
fn removing_an_ipv4_address_flushes_what_the_kernel_flushes() {
    let (ns, _peer) = rich_namespace();
    ns.ip("link add vs0 type veth peer name vs1");
    ns.ip("link set vs0 up");
    ns.ip("link set vs1 up");
    ns.ip("addr add 198.18.20.2/24 dev vs0");
    ns.ip("addr add 198.18.0.7/24 dev up0");
    // Through vs0, with one of up0's addresses as source; and through vs0 via its subnet.
    ns.ip("route add 198.19.20.0/24 dev vs0 src 198.18.0.7");
    ns.ip("route add 198.19.21.0/24 via 198.18.20.1 dev vs0");
    let mut marker = Marker::new(&ns);
    let monitor = common::monitor_in(ns.netns()).expect("monitor");
    let mut sub = monitor.subscribe();
    assert_in_step(&ns, &mut marker, &mut sub);
    assert!(
        sub.view()
            .routes()
            .any(|r| r.prefsrc == Some("198.18.0.7".parse().unwrap()))
    );

    // One of up0's three addresses, named by no route: no dump (the polling backend dumps
    // everything anyway).
    let before = monitor.stats().route_refreshes;
    ns.ip("addr del 198.18.0.3/24 dev up0");
    assert_in_step(&ns, &mut marker, &mut sub);
    if !common::polling() {
        assert_eq!(monitor.stats().route_refreshes, before, "no route dump");
    }

    // The source of a route through vs0: the route goes silently.
    ns.ip("addr del 198.18.0.7/24 dev up0");
    until_view(&mut sub, "the sourced route flushed", SETTLE, |s| {
        !s.routes()
            .any(|r| r.destination.to_string() == "198.19.20.0/24")
    });
    assert_in_step(&ns, &mut marker, &mut sub);

    // vs0's last address: its routes go, the gateway route included.
    ns.ip("addr del 198.18.20.2/24 dev vs0");
    until_view(&mut sub, "vs0's routes flushed", SETTLE, |s| {
        !s.routes()
            .any(|r| r.destination.to_string() == "198.19.21.0/24")
    });
    assert_in_step(&ns, &mut marker, &mut sub);
}

/// A link going down, coming back, losing carrier and regaining it: the kernel flushes and
/// flags routes without a message, and the model derives what it did from its own routes
/// (`netreach-core/src/silent.rs`) instead of dumping them: in step with `ip -j` after each,
/// with no route dump but for multipath routes.
#[test]
fn link_and_carrier_changes_are_derived_without_a_dump() {
    let (ns, peer) = rich_namespace();
    ns.ip("route add 198.19.6.0/24 via 198.18.0.1 dev up0 table 100");
    ns.ip("-6 route add 2001:db8:6::/48 via 2001:db8:1::1 dev up0");
    let mut marker = Marker::new(&ns);
    let monitor = common::monitor_in(ns.netns()).expect("monitor");
    let mut sub = monitor.subscribe();
    assert_in_step(&ns, &mut marker, &mut sub);
    let up0 = sub.view().interface_by_name("up0").expect("up0").index;
    let notified = !common::polling();
    let dumps = |m: &netreach::Monitor| m.stats().route_refreshes;

    // Carrier lost (the peer's end goes down): IPv4 and IPv6 routes through up0 flagged.
    let before = dumps(&monitor);
    peer.ip("link set p0 down");
    until_view(&mut sub, "up0's routes linkdown", SETTLE, |s| {
        s.routes()
            .filter(|r| r.interface == Some(up0))
            .any(|r| r.linkdown)
    });
    assert_in_step(&ns, &mut marker, &mut sub);
    if notified {
        assert_eq!(dumps(&monitor), before, "carrier loss derived, not dumped");
    }

    // Carrier back: the flags cleared.
    peer.ip("link set p0 up");
    until_view(&mut sub, "up0's routes up", SETTLE, |s| {
        s.interface(up0).is_some_and(|i| i.carrier)
            && !s
                .routes()
                .filter(|r| r.interface == Some(up0))
                .any(|r| r.linkdown)
    });
    assert_in_step(&ns, &mut marker, &mut sub);
    if notified {
        assert_eq!(
            dumps(&monitor),
            before,
            "carrier return derived, not dumped"
        );
    }

    // Administratively down: every route through up0 but its local ones goes, the table 100
    // and gateway routes with them, without a message for IPv4.
    let before = dumps(&monitor);
    ns.ip("link set up0 down");
    until_view(&mut sub, "up0's routes flushed", SETTLE, |s| {
        !s.routes()
            .any(|r| r.interface == Some(up0) && r.destination.to_string() == "198.19.6.0/24")
    });
    assert_in_step(&ns, &mut marker, &mut sub);
    if notified {
        assert_eq!(
            dumps(&monitor),
            before,
            "a link going down derived, not dumped"
        );
    }
    // And up again: the kernel adds the routes of the addresses back, with messages.
    ns.ip("link set up0 up");
    ns.ip("addr add 2001:db8:1::2/64 dev up0 nodad");
    until_view(&mut sub, "up0 up with its IPv6 address", SETTLE, |s| {
        s.find_address("2001:db8:1::2".parse().unwrap())
            .next()
            .is_some()
    });
    assert_in_step(&ns, &mut marker, &mut sub);
    if notified {
        assert_eq!(dumps(&monitor), before, "a link coming up needs no dump");
    }

    // A multipath route with a hop through up0: its other hop stays, with flags per hop the
    // model does not derive; up0's IPv4 routes are dumped instead.
    ns.ip("route add 198.19.7.0/24 nexthop via 198.18.0.1 dev up0 nexthop via 198.18.9.2 dev br0");
    assert_in_step(&ns, &mut marker, &mut sub);
    let before = dumps(&monitor);
    ns.ip("link set up0 down");
    until_view(&mut sub, "up0 down", SETTLE, |s| {
        s.interface(up0).is_some_and(|i| !i.admin_up)
    });
    assert_in_step(&ns, &mut marker, &mut sub);
    assert!(
        sub.view()
            .routes()
            .any(|r| r.destination.to_string() == "198.19.7.0/24"),
        "the multipath route keeps its hop through br0"
    );
    if notified {
        assert!(dumps(&monitor) > before, "multipath routes dumped");
    }
}
