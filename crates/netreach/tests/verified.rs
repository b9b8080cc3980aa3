//! Verified internet in the status monitor: probes per interface, re-probing after a change,
//! and the backoff, against test servers in namespaces made here. Each wait is for an event: a
//! verdict in the status monitor's stream, or a connection at a test server.

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
        retry_min: Duration::from_millis(200),
        retry_max: Duration::from_millis(800),
        full_interval: Duration::from_secs(600),
        in_flight_limit: Duration::from_secs(10),
    }
}

/// The probe timeout of these tests.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

fn probe_config() -> ProbeConfig {
    let url = format!("http://{ENDPOINT_V4}/generate_204");
    ProbeConfig::new(ProbeEndpoint::no_content(url.parse().unwrap()))
        .timeout(PROBE_TIMEOUT)
        .schedule(fast_schedule())
}

/// How long a wait for a verdict or a connection may take before the test fails.
const WAIT: Duration = Duration::from_secs(20);

/// Waits until the verification satisfies `cond` (at once if it does): each item of the
/// status monitor's stream wakes the check.
fn wait_for(status: &StatusMonitor, what: &str, cond: impl Fn(&netreach::Verification) -> bool) {
    let end = Instant::now() + WAIT;
    let mut sub = status.subscribe();
    while !cond(&status.verification()) {
        let left = end.saturating_duration_since(Instant::now());
        assert!(
            sub.recv_timeout(left).is_some(),
            "timed out waiting for {what}: {:#?}",
            status.verification()
        );
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

    // Backoff: after each portal verdict the next probe waits 0.2, 0.4, 0.8, then 0.8 s again
    // (the interval doubles up to retry_max). The server saw each probe before answering it,
    // and the next waits from that answer on, so the gaps between its connections are at
    // least those intervals; the last is below the 1.6 s that doubling again would give. The
    // healthy uplink is not re-probed meanwhile (600 s while full).
    let h0 = healthy.accepted();
    let at = portal.wait_accepted(5, WAIT);
    let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    let schedule = fast_schedule();
    let want = [1, 2, 4, 4].map(|k| schedule.retry_min * k);
    for (gap, want) in gaps.iter().zip(want) {
        assert!(
            *gap >= want,
            "portal re-probed after {gap:?}, before {want:?}: {gaps:?}"
        );
    }
    assert!(
        gaps[3] < schedule.retry_max * 2,
        "the backoff stops doubling at {:?}: {gaps:?}",
        schedule.retry_max
    );
    assert_eq!(
        healthy.accepted(),
        h0,
        "a full uplink is not re-probed within its interval"
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

/// A status monitor made without a probe configuration probes nothing, even beside one that
/// probes, on the same monitor and the same changes (the control): every connection the test
/// servers accepted is one of the control's probes.
#[test]
fn nothing_is_probed_unless_asked() {
    let lab = Lab::new();
    let servers = [0, 1].map(|i| {
        Server::start(
            &lab.servers[i],
            &format!("{ENDPOINT_V4}:80"),
            |mut c: Conn| c.send(NO_CONTENT),
        )
    });
    let monitor = common::monitor_in(Netns::named(lab.client.name()).unwrap()).expect("monitor");
    let quiet = StatusMonitor::new(&monitor, ConnectivityConfig::default());
    let mut quiet_sub = quiet.subscribe();
    // The control has the default schedule, which a status monitor would probe on if it
    // probed by default: any such probe would be due when the control's are.
    let url = format!("http://{ENDPOINT_V4}/generate_204");
    let control = StatusMonitor::with_probe(
        &monitor,
        ConnectivityConfig::default(),
        ProbeConfig::new(ProbeEndpoint::no_content(url.parse().unwrap())).timeout(PROBE_TIMEOUT),
    );
    assert!(quiet.is_online());
    let full = |v: &netreach::Verification, iface| {
        verdict_of(v, iface, Family::Ipv4) == Some(&ProbeVerdict::Full)
    };
    wait_for(&control, "both uplinks probed", |v| {
        full(v, "up0") && full(v, "up1")
    });
    // A change that makes the control probe up0 again: its carrier goes and comes back.
    lab.servers[0].ip(&["link", "set", "dn0", "down"]);
    wait_for(&control, "up0 to leave the probe set", |v| {
        verdict_of(v, "up0", Family::Ipv4).is_none()
    });
    lab.servers[0].ip(&["link", "set", "dn0", "up"]);
    wait_for(&control, "up0 full again", |v| full(v, "up0"));
    assert_eq!(quiet.verification(), netreach::Verification::default());
    while let Some(n) = quiet_sub.try_recv().expect("the status monitor runs") {
        assert!(
            !matches!(n, StatusNotification::Verified { .. }),
            "a verdict for the status monitor that does not probe: {n:?}"
        );
    }
    // Dropping the monitor joins every probe thread: no probe is still on its way to a server.
    drop((quiet, control, monitor));
    assert_eq!(
        servers.each_ref().map(Server::accepted),
        [2, 1],
        "the control's probes only: up0 twice (first, and after the change), up1 once"
    );
}

#[test]
fn dropping_the_monitor_stops_probe_threads() {
    let lab = Lab::new();
    // A server that accepts and never answers: the probe is in flight when we drop.
    let slow = Server::start(&lab.servers[0], &format!("{ENDPOINT_V4}:80"), |c: Conn| {
        c.hold()
    });
    let monitor = common::monitor_in(Netns::named(lab.client.name()).unwrap()).expect("monitor");
    let status = StatusMonitor::with_probe(&monitor, ConnectivityConfig::default(), probe_config());
    let accepted = slow.wait_accepted(1, WAIT)[0];
    let t = Instant::now();
    drop(status);
    drop(monitor);
    // The monitor joins the probe in flight (no thread outlives it), which ends within its
    // timeout: dropping neither hangs nor leaves the worker behind. The probe connected just
    // before the server accepted, so it ends about a timeout after that, and so does the drop
    // (a drop that did not wait would return at once).
    let (took, since_accepted) = (t.elapsed(), accepted.elapsed());
    assert!(took < PROBE_TIMEOUT + Duration::from_secs(3), "{took:?}");
    assert!(
        since_accepted > PROBE_TIMEOUT / 2,
        "the probe in flight was joined: the drop returned {since_accepted:?} after the \
         server accepted it"
    );
}
