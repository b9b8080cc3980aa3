//! Idle means idle: with nothing changing, the monitor's thread does not wake at all — no
//! polling loop, no timer — even with a status and a connection monitor attached.
//!
//! One test in its own binary: it reads its own process's threads.

// Every test here builds network namespaces, which only Linux has.
#![cfg(target_os = "linux")]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Ns;
use common::lab::sysctl;
use common::marker::{Marker, until_view};
use netreach::core::connectivity::ConnectivityConfig;
use netreach::{ConnectionMonitor, StatusMonitor};

const WAIT: Duration = Duration::from_secs(20);
/// How long the thread is watched sleeping: longer than any timer the monitor has while it
/// has work (a lookup retry after 500 ms, a dump retry after 50 ms doubling), so that a timer
/// left armed while idle would show.
const WINDOW: Duration = Duration::from_secs(3);

/// The monitor's thread in `/proc/self/task` (found by its name).
fn monitor_task() -> PathBuf {
    let mut found = None;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        // Thread names are cut to 15 bytes: "netreach-monitor" reads "netreach-monito".
        if comm.trim().starts_with("netreach-moni") {
            assert!(found.is_none(), "one monitor thread in this process");
            found = Some(task.path());
        }
    }
    found.expect("the monitor thread runs")
}

/// A field of the task's `status` file.
fn status_field(task: &Path, field: &str) -> String {
    let status = std::fs::read_to_string(task.join("status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .unwrap_or_else(|| panic!("{field} in {}", task.display()))
        .trim()
        .to_owned()
}

/// Voluntary context switches of the monitor's thread: one each time it goes to sleep.
fn wakeups(task: &Path) -> u64 {
    status_field(task, "voluntary_ctxt_switches:")
        .parse()
        .expect("a count")
}

/// Waits until the monitor's thread sleeps. Only the OS can tell when a thread has gone back
/// to sleep after its last work, so this looks at its state every millisecond, for at most a
/// second. The thread blocks nowhere but in its `poll(2)` here: nobody else holds the locks it
/// takes.
fn wait_asleep(task: &Path) {
    let end = Instant::now() + Duration::from_secs(1);
    while !status_field(task, "State:").starts_with('S') {
        assert!(
            Instant::now() < end,
            "the monitor thread never went to sleep"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn an_idle_monitor_never_wakes() {
    if common::netlink_only("no wake-up while idle") {
        return;
    }
    let ns = Ns::new("idle");
    // No duplicate address detection: the link-local addresses are usable as soon as the
    // kernel's work queue gets to them, so the kernel is done with the namespace sooner.
    sysctl(&ns, "net.ipv6.conf.all.accept_dad=0");
    sysctl(&ns, "net.ipv6.conf.default.accept_dad=0");
    ns.veth("ia", "ib");
    ns.ip("link set ia up");
    ns.ip("link set ib up");
    ns.ip("addr add 198.18.40.1/24 dev ia");
    ns.ip("route add default via 198.18.40.2");
    let mut marker = Marker::new(&ns);
    let monitor = common::monitor_in(ns.netns()).expect("monitor");
    let mut sub = monitor.subscribe();
    let status = StatusMonitor::new(&monitor, ConnectivityConfig::default());
    let conns = ConnectionMonitor::new(&monitor);
    let watch = conns
        .watch_pair(
            "198.18.40.1".parse().unwrap(),
            "198.19.0.1".parse().unwrap(),
            None,
        )
        .expect("target");
    assert!(watch.wait_first(WAIT).is_some());
    assert!(status.is_online());
    // The kernel finishes on its own: each end gets a usable link-local address once its
    // carrier is reported (linkwatch). Then the monitor handles everything before two marks,
    // and goes to sleep.
    until_view(&mut sub, "usable link-local addresses", WAIT, |s| {
        ["ia", "ib"].iter().all(|name| {
            s.interface_by_name(name).is_some_and(|i| {
                s.addresses_of(i.index)
                    .any(|a| a.address.to_string().starts_with("fe80:") && a.is_usable())
            })
        })
    });
    marker.settle(&mut sub);
    let task = monitor_task();
    wait_asleep(&task);
    // The window itself is the measurement: nothing may wake the thread during it.
    let before = wakeups(&task);
    std::thread::sleep(WINDOW);
    let after = wakeups(&task);
    assert_eq!(
        after, before,
        "the monitor thread woke while nothing changed"
    );
    // And it does wake for a change.
    ns.ip("link set ia mtu 1400");
    until_view(&mut sub, "the change", WAIT, |s| {
        s.interface_by_name("ia").is_some_and(|i| i.mtu == 1400)
    });
    // Asleep again after the change, which counts that sleep.
    wait_asleep(&task);
    assert!(wakeups(&task) > after);
}
