//! Verified internet in the status monitor: probes per interface, re-probing after a change,
//! and the backoff, against test servers in namespaces made here.

// Every test here builds network namespaces, which only Linux has.
#![cfg(target_os = "linux")]

mod common;
#[path = "probe/lab.rs"]
#[allow(dead_code)] // The lab serves several test files; this one uses part of it.
mod lab;

use std::time::{Duration, Instant};

use lab::{Conn, ENDPOINT_V4, Lab, NO_CONTENT, Server};
use netreach::core::connectivity::ConnectivityConfig;
use netreach::core::probe::ProbeSchedule;
use netreach::probe::{ProbeEndpoint, ProbeVerdict};
use netreach::{Family, Netns, ProbeConfig, StatusMonitor, StatusNotification, Verified};

const PORTAL: &[u8] =
    b"HTTP/1.1 302 Found\r\nLocation: http://198.18.2.2/login\r\nContent-Length: 0\r\n\r\n";

fn fast_schedule() -> ProbeSchedule {
    ProbeSchedule {
        settle: Duration::from_millis(100),
        retry_min: Duration::from_millis(400),
        retry_max: Duration::from_millis(1600),
        full_interval: Duration::from_secs(600),
        in_flight_limit: Duration::from_secs(10),
    }
}

fn probe_config() -> ProbeConfig {
    let url = format!("http://{ENDPOINT_V4}/generate_204");
    ProbeConfig::new(ProbeEndpoint::no_content(url.parse().unwrap()))
        .timeout(Duration::from_secs(3))
        .schedule(fast_schedule())
}

/// Waits until the verification satisfies `cond`.
fn wait_for(status: &StatusMonitor, what: &str, cond: impl Fn(&netreach::Verification) -> bool) {
    let end = Instant::now() + Duration::from_secs(20);
    let mut sub = status.subscribe();
    while !cond(&status.verification()) {
        assert!(
            Instant::now() < end,
            "timed out waiting for {what}: {:#?}",
            status.verification()
        );
        sub.recv_timeout(Duration::from_millis(500));
    }
}

fn verdict_of<'a>(
    v: &'a netreach::Verification,
    iface: &str,
    f: Family,
) -> Option<&'a ProbeVerdict> {
    v.results
        .iter()
        .find(|r| r.interface == iface && r.family == f)
        .map(|r| &r.verdict)
}

#[test]
fn uplinks_are_told_apart_reprobed_after_a_change_and_backed_off() {
    let lab = Lab::new();
    let healthy = Server::start(
        &lab.servers[0],
        &format!("{ENDPOINT_V4}:80"),
        |mut c: Conn| c.send(NO_CONTENT),
    );
    let portal = Server::start(
        &lab.servers[1],
        &format!("{ENDPOINT_V4}:80"),
        |mut c: Conn| c.send(PORTAL),
    );
    let monitor = common::monitor_in(Netns::named(lab.client.name()).unwrap()).expect("monitor");
    let status = StatusMonitor::with_probe(&monitor, ConnectivityConfig::default(), probe_config());
    assert_eq!(status.verification().internet, Verified::Unverified);

    wait_for(&status, "both uplinks probed", |v| {
        verdict_of(v, "up0", Family::Ipv4).is_some() && verdict_of(v, "up1", Family::Ipv4).is_some()
    });
    let v = status.verification();
    assert_eq!(
        verdict_of(&v, "up0", Family::Ipv4),
        Some(&ProbeVerdict::Full)
    );
    let Some(ProbeVerdict::Portal { url, .. }) = verdict_of(&v, "up1", Family::Ipv4) else {
        panic!("up1 is behind a portal: {v:#?}");
    };
    assert_eq!(url.as_deref(), Some("http://198.18.2.2/login"));
    assert_eq!(
        v.internet,
        Verified::Full,
        "one full uplink is full internet"
    );
    assert_eq!(v.ipv4, Verified::Full);
    assert_eq!(v.portal_url.as_deref(), Some("http://198.18.2.2/login"));

    // Backoff: the portal is retried at 0.4, 0.8, 1.6, 1.6 ... s; the healthy uplink not at
    // all within this window (600 s while full).
    let (h0, p0) = (healthy.accepted(), portal.accepted());
    std::thread::sleep(Duration::from_secs(4));
    let (h1, p1) = (healthy.accepted(), portal.accepted());
    assert_eq!(h1, h0, "a full uplink is not re-probed within its interval");
    assert!(
        (2..=5).contains(&(p1 - p0)),
        "portal re-probed {} times in 4 s; want the backoff's 2 to 5",
        p1 - p0
    );

    // A change re-probes at once: the healthy uplink loses its carrier, then gets it back.
    let mut sub = status.subscribe();
    lab.servers[0].ip(&["link", "set", "dn0", "down"]);
    wait_for(&status, "up0 to leave the probe set", |v| {
        verdict_of(v, "up0", Family::Ipv4).is_none()
    });
    assert_eq!(status.verification().internet, Verified::Portal);
    let before = healthy.accepted();
    lab.servers[0].ip(&["link", "set", "dn0", "up"]);
    wait_for(&status, "up0 full again", |v| {
        verdict_of(v, "up0", Family::Ipv4) == Some(&ProbeVerdict::Full)
    });
    assert_eq!(
        healthy.accepted(),
        before + 1,
        "re-probed once after the change"
    );
    assert_eq!(status.verification().internet, Verified::Full);
    // Each verdict change was an event.
    let mut seen = Vec::new();
    while let Ok(Some(n)) = sub.try_recv() {
        if let StatusNotification::Verified { change, .. } = n {
            if change.interface == "up0" && change.family == Family::Ipv4 {
                seen.push(change.new.map(|v| v.as_str()));
            }
        }
    }
    assert_eq!(seen, [None, Some("full")], "up0's verdict events");
}

#[test]
fn nothing_is_probed_unless_asked() {
    let lab = Lab::new();
    let server = Server::start(
        &lab.servers[0],
        &format!("{ENDPOINT_V4}:80"),
        |mut c: Conn| c.send(NO_CONTENT),
    );
    let monitor = common::monitor_in(Netns::named(lab.client.name()).unwrap()).expect("monitor");
    let status = StatusMonitor::new(&monitor, ConnectivityConfig::default());
    assert!(status.is_online());
    lab.client.ip(&["link", "set", "up0", "down"]);
    lab.client.ip(&["link", "set", "up0", "up"]);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(server.accepted(), 0);
    assert_eq!(status.verification().internet, Verified::Unverified);
}

#[test]
fn dropping_the_monitor_stops_probe_threads() {
    let lab = Lab::new();
    // A server that accepts and never answers: the probe is in flight when we drop.
    let _slow = Server::start(&lab.servers[0], &format!("{ENDPOINT_V4}:80"), |c: Conn| {
        c.hold()
    });
    let monitor = common::monitor_in(Netns::named(lab.client.name()).unwrap()).expect("monitor");
    let status = StatusMonitor::with_probe(&monitor, ConnectivityConfig::default(), probe_config());
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    drop(status);
    drop(monitor);
    // The monitor joins the probe in flight (no thread outlives it), which ends within its
    // 3 s timeout: dropping neither hangs nor leaves the worker behind.
    let took = t.elapsed();
    assert!(took < Duration::from_secs(6), "{took:?}");
    assert!(
        took > Duration::from_millis(1500),
        "the probe in flight was joined: {took:?}"
    );
}
