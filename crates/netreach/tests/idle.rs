//! Idle means idle: with nothing changing, the monitor's thread does not wake at all — no
//! polling loop, no timer — even with a status and a connection monitor attached.
//!
//! One test in its own binary: it reads its own process's threads.

// Every test here builds network namespaces, which only Linux has.
#![cfg(target_os = "linux")]

mod common;

use std::time::Duration;

use common::Ns;
use netreach::core::connectivity::ConnectivityConfig;
use netreach::{ConnectionMonitor, StatusMonitor};

/// Voluntary context switches of the monitor's thread (found by its name).
fn monitor_wakeups() -> u64 {
    let mut found = None;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        // Thread names are cut to 15 bytes: "netreach-monitor" reads "netreach-monito".
        if comm.trim().starts_with("netreach-moni") {
            let status = std::fs::read_to_string(task.path().join("status")).unwrap();
            let n = status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse().ok())
                .expect("voluntary_ctxt_switches");
            assert!(found.is_none(), "one monitor thread in this process");
            found = Some(n);
        }
    }
    found.expect("the monitor thread runs")
}

#[test]
fn an_idle_monitor_never_wakes() {
    if common::netlink_only("no wake-up while idle") {
        return;
    }
    let ns = Ns::new("idle");
    ns.veth("ia", "ib");
    ns.ip("link set ia up");
    ns.ip("link set ib up");
    ns.ip("addr add 198.18.40.1/24 dev ia");
    ns.ip("route add default via 198.18.40.2");
    let monitor = common::monitor_in(ns.netns()).expect("monitor");
    let status = StatusMonitor::new(&monitor, ConnectivityConfig::default());
    let conns = ConnectionMonitor::new(&monitor);
    let watch = conns
        .watch_pair(
            "198.18.40.1".parse().unwrap(),
            "198.19.0.1".parse().unwrap(),
            None,
        )
        .expect("target");
    assert!(watch.wait_first(Duration::from_secs(20)).is_some());
    assert!(status.is_online());
    // Let IPv6 link-local addresses and DAD settle, then watch the thread sleep.
    std::thread::sleep(Duration::from_secs(3));
    let before = monitor_wakeups();
    std::thread::sleep(Duration::from_secs(3));
    let after = monitor_wakeups();
    assert_eq!(
        after, before,
        "the monitor thread woke while nothing changed"
    );
    // And it does wake for a change.
    ns.ip("link set ia mtu 1400");
    common::wait_until("the change", Duration::from_secs(10), || {
        monitor.snapshot().interface_by_name("ia").unwrap().mtu == 1400
    });
    assert!(monitor_wakeups() > after);
}
