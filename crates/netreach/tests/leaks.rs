//! Dropping monitors and subscriptions leaks no thread and no file descriptor.
//!
//! This file holds one test on purpose: it counts the threads and descriptors of its own
//! process, which other tests running in parallel would disturb.

mod common;

use std::time::Duration;

use common::{Ns, wait_until};
use netreach::{Monitor, Notification};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn dropping_monitors_and_subscriptions_leaks_nothing() {
    let ns = Ns::new("leak");
    ns.veth("la", "lb");
    // Warm up anything lazily initialised (the test harness, allocator, tracing).
    drop(Monitor::in_netns(ns.netns()).expect("monitor"));
    let (t0, f0) = (threads(), fds());
    for round in 0..20 {
        let monitor = Monitor::in_netns(ns.netns()).expect("monitor");
        assert!(threads() > t0, "the monitor runs a thread of its own");
        assert!(fds() > f0, "the monitor holds sockets");
        let mut subs: Vec<_> = (0..5).map(|_| monitor.subscribe()).collect();
        assert_eq!(monitor.subscriber_count(), 5);
        ns.ip(&format!("link set la mtu {}", 1300 + round));
        for s in &mut subs {
            while !matches!(
                s.recv_timeout(Duration::from_secs(10)),
                Some(Notification::Change { .. })
            ) {}
        }
        // Dropping a subscription unsubscribes.
        subs.truncate(2);
        assert_eq!(monitor.subscriber_count(), 2);
        // Dropping the monitor stops the thread; the remaining subscriptions end.
        drop(monitor);
        for mut s in subs {
            while s.recv_timeout(Duration::from_secs(10)).is_some() {}
            assert!(matches!(s.try_recv(), Err(netreach::Error::Stopped)));
        }
    }
    wait_until("threads to exit", Duration::from_secs(5), || {
        threads() == t0
    });
    assert_eq!(fds(), f0, "file descriptors leaked");
}
