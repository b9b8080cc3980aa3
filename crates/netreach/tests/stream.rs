//! The monitor's one ordered stream against the real kernel: model changes, connectivity
//! changes and reachability changes in one order, one sequence counter, every derived change
//! after the model change that caused it and naming it.

// Every test here builds network namespaces, which only Linux has.
#![cfg(target_os = "linux")]

mod common;

use std::time::Duration;

use common::Ns;
use netreach::core::connectivity::ConnectivityConfig;
use netreach::core::reach::Reason;
use netreach::{ConnectionMonitor, Event, Level, Notification, Reachability, StatusMonitor};

const WAIT: Duration = Duration::from_secs(20);

/// Reads the stream until `done` says so, checking on the way that sequence numbers strictly
/// increase and that every derived item names a model change already seen.
fn read_until(
    sub: &mut netreach::Subscription,
    last_seq: &mut u64,
    model_seen: &mut Vec<u64>,
    what: &str,
    mut done: impl FnMut(&Notification) -> bool,
) -> Vec<Notification> {
    let mut got = Vec::new();
    loop {
        let n = sub
            .recv_timeout(WAIT)
            .unwrap_or_else(|| panic!("{what}: nothing within {WAIT:?}; got {got:#?}"));
        if let Some(seq) = n.seq() {
            assert!(seq > *last_seq, "{what}: seq {seq} after {last_seq}: {n:?}");
            *last_seq = seq;
        }
        if let Notification::Change { seq, .. } = &n {
            model_seen.push(*seq);
        }
        if let Some(cause) = n.cause_seq() {
            assert!(
                model_seen.contains(&cause),
                "{what}: {n:?} names model change {cause}, not seen before it"
            );
        }
        let stop = done(&n);
        got.push(n);
        if stop {
            return got;
        }
    }
}

#[test]
fn derived_changes_follow_the_model_change_that_caused_them_in_one_order() {
    let host = Ns::new("stream");
    let peer = Ns::new("streampeer");
    host.veth_to("s0", &peer, "s1");
    peer.ip("link set s1 up");
    host.ip_batch(
        "link set s0 up\naddr add 198.18.60.2/24 dev s0\nroute add default via 198.18.60.1\n",
    );
    let monitor = common::monitor_in(host.netns()).expect("monitor");
    let status = StatusMonitor::new(&monitor, ConnectivityConfig::default());
    assert_eq!(status.connectivity().ipv4, Level::Internet);
    let conns = ConnectionMonitor::new(&monitor);
    let watch = conns
        .watch_pair(
            "198.18.60.2".parse().unwrap(),
            "198.19.5.5".parse().unwrap(),
            None,
        )
        .expect("a valid target");
    assert!(matches!(
        watch.wait_first(WAIT),
        Some(Reachability::Reachable(_))
    ));

    let mut sub = monitor.stream();
    let Some(Notification::Ready { seq, .. }) = sub.recv() else {
        panic!("the stream starts with Ready")
    };
    let (mut last, mut model) = (seq, Vec::new());

    // The default route goes: the route's removal, then (in either order, both after it)
    // the connectivity change and the target's verdict.
    host.ip("route del default");
    let (mut level, mut verdict) = (false, false);
    let got = read_until(&mut sub, &mut last, &mut model, "route removed", |n| {
        match n {
            Notification::Connectivity { connectivity, .. } => {
                level |= connectivity.ipv4 != Level::Internet
            }
            Notification::Reachability { id, new, .. } if *id == watch.id() => {
                verdict |= matches!(**new, Reachability::Unreachable(Reason::NoRoute));
            }
            _ => {}
        }
        level && verdict
    });
    let removed = got
        .iter()
        .position(|n| {
            matches!(n, Notification::Change { event, .. } if matches!(&**event, Event::RouteRemoved(r) if r.is_default()))
        })
        .expect("the default route's removal is in the stream");
    let first_derived = got
        .iter()
        .position(|n| n.cause_seq().is_some())
        .expect("derived changes");
    assert!(removed < first_derived, "{got:#?}");

    // And back.
    host.ip("route add default via 198.18.60.1");
    let (mut level, mut verdict) = (false, false);
    read_until(&mut sub, &mut last, &mut model, "route added", |n| {
        match n {
            Notification::Connectivity { connectivity, .. } => {
                level |= connectivity.ipv4 == Level::Internet
            }
            Notification::Reachability { id, new, .. } if *id == watch.id() => {
                verdict |= matches!(**new, Reachability::Reachable(_));
            }
            _ => {}
        }
        level && verdict
    });
    assert_eq!(status.connectivity().ipv4, Level::Internet);
    assert!(matches!(
        watch.reachability(),
        Some(Reachability::Reachable(_))
    ));
}
