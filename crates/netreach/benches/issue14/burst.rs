//! A burst: 20,000 IPv4 /32 addresses added (spread over 100 interfaces), then the first 10,000
//! of them removed, sent in process as pipelined requests (no acknowledgement asked but for the
//! last of each half, so the sender never waits for the kernel between requests). The clock
//! starts just before the first request and stops:
//!
//! - for netreach, when a [`Subscription`]'s view (the state after the batch of the item it
//!   read last) holds exactly the addresses the kernel holds at the end, and again when the
//!   events it has read add up to that (after a lag or a resync they carry the difference);
//! - for `ip monitor address`, when its reading thread has the 30,000th address line;
//! - for the kernel itself, when the last request is acknowledged (it sent every notification
//!   while it handled the requests).
//!
//! The observers take turns (one at a time, alternating which goes first); between bursts the
//! remaining addresses are removed with no observer running. The addresses are spread over 100
//! bridges left down (200 each): the kernel keeps an interface's IPv4 addresses in a list it
//! walks on every change, so 20,000 on one interface would make the burst the kernel's
//! quadratic walk (12 to 15 s here) rather than the observers' work.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST};
use netlink_packet_route::RouteNetlinkMessage;
use netreach::{Event, Monitor, Notification};

use crate::Config;
use crate::common::Ns;
use crate::nl::Rtnl;
use crate::stats::{Samples, Table, dur, ratio};

const ADDED: usize = 20_000;
const REMOVED: usize = 10_000;
/// The burst's bridges, `bu0` to `bu99`.
const IFACES: usize = 100;
/// How long an observer may stay silent before the burst counts as missed.
const SILENCE: Duration = Duration::from_secs(5);

/// Burst address `i`: 198.19.0.0 + i (198.18.0.0/15 holds them all).
fn address(i: usize) -> Ipv4Addr {
    Ipv4Addr::from((198u32 << 24 | 19 << 16) + i as u32)
}

fn index_of(a: IpAddr) -> Option<usize> {
    let IpAddr::V4(a) = a else { return None };
    let i = u32::from(a).checked_sub(u32::from(address(0)))? as usize;
    (i < ADDED).then_some(i)
}

/// Sends the requests for `range` pipelined; waits only for the last one's acknowledgement.
/// Returns the instant just before the first was sent.
fn pipelined(
    rtnl: &mut Rtnl,
    ifindex: &[u32],
    range: std::ops::Range<usize>,
    add: bool,
) -> Instant {
    let mut first = None;
    let last = range.end - 1;
    for i in range {
        let m = Rtnl::address(ifindex[i % ifindex.len()], IpAddr::V4(address(i)), 32);
        let msg = if add {
            RouteNetlinkMessage::NewAddress(m)
        } else {
            RouteNetlinkMessage::DelAddress(m)
        };
        let extra = if add { NLM_F_CREATE | NLM_F_EXCL } else { 0 };
        let t = if i == last {
            rtnl.change(msg, extra)
        } else {
            rtnl.send(msg, NLM_F_REQUEST | extra).1
        };
        first.get_or_insert(t);
    }
    first.expect("a request")
}

/// Whether a snapshot holds exactly the burst's end state (the last `ADDED - REMOVED`).
fn is_final(snap: &netreach::Snapshot) -> bool {
    let mut kept = 0;
    for a in snap.addresses() {
        match index_of(a.address) {
            Some(i) if i >= REMOVED => kept += 1,
            Some(_) => return false,
            None => {}
        }
    }
    kept == ADDED - REMOVED
}

/// How many burst addresses a snapshot holds.
fn burst_addresses(snap: &netreach::Snapshot) -> usize {
    snap.addresses()
        .filter(|a| index_of(a.address).is_some())
        .count()
}

/// The kernel's count of burst addresses.
fn kernel_count(ns: &Ns) -> usize {
    let v = ns.ip_json("-4 addr show");
    let links = v.as_array().expect("a list of links");
    links
        .iter()
        .flat_map(|l| l["addr_info"].as_array().into_iter().flatten())
        .filter_map(|a| a["local"].as_str()?.parse().ok())
        .filter(|a| index_of(*a).is_some())
        .count()
}

/// What one observer saw of one burst.
struct Outcome {
    /// From the first request until the observer's view equals the kernel's.
    done: Option<Duration>,
    /// netreach only: until it has read every event too.
    events: Option<Duration>,
    /// From the first request until the last one was acknowledged.
    kernel: Duration,
    /// netreach only: lagged and resynced markers received.
    lagged: usize,
    resynced: usize,
}

/// What netreach's reading thread reports.
enum Msg {
    Ready,
    /// The view equals the kernel's end state.
    View(Instant),
    /// The events read add up to it too.
    Events(Instant),
}

/// The reading thread's tally: the burst addresses its events say are there, and how far that
/// is from the end state (the last `ADDED - REMOVED` present, nothing else).
struct Tally {
    present: Vec<bool>,
    mismatch: usize,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            present: vec![false; ADDED],
            mismatch: ADDED - REMOVED,
        }
    }

    fn set(&mut self, address: IpAddr, on: bool) {
        let Some(i) = index_of(address) else { return };
        if self.present[i] == on {
            return;
        }
        self.present[i] = on;
        if on == (i >= REMOVED) {
            self.mismatch -= 1;
        } else {
            self.mismatch += 1;
        }
    }
}

/// One burst with netreach's subscriber watching. Its view (the state after the batch of the
/// item last read) can be ahead of the events read so far: both are timed.
fn netreach_burst(ns: &Ns, rtnl: &mut Rtnl, ifindex: &[u32]) -> Outcome {
    let monitor = Monitor::in_netns(ns.netns()).expect("monitor");
    let mut sub = monitor.subscribe();
    let (tx, rx) = channel();
    let reader = std::thread::spawn(move || {
        let mut tally = Tally::new();
        let (mut lagged, mut resynced) = (0, 0);
        // Addresses not of the burst, in the first snapshot (nothing else changes here).
        let mut others = 0;
        let mut ready = false;
        let mut view_done = false;
        loop {
            let n = match sub.try_recv() {
                Ok(Some(n)) => n,
                Ok(None) => {
                    // Caught up: compare the view (its size first, which is cheap).
                    let view = sub.view();
                    if ready
                        && !view_done
                        && view.addresses().len() == others + ADDED - REMOVED
                        && is_final(view)
                    {
                        view_done = true;
                        let _ = tx.send(Msg::View(Instant::now()));
                    }
                    match sub.recv() {
                        Some(n) => n,
                        None => break,
                    }
                }
                Err(_) => break,
            };
            match n {
                Notification::Ready { snapshot, .. } => {
                    for a in snapshot.addresses() {
                        match index_of(a.address) {
                            Some(_) => tally.set(a.address, true),
                            None => others += 1,
                        }
                    }
                    ready = true;
                    let _ = tx.send(Msg::Ready);
                }
                Notification::Change { event, .. } => match *event {
                    Event::AddressAdded(a) => tally.set(a.address, true),
                    Event::AddressRemoved(a) => tally.set(a.address, false),
                    _ => {}
                },
                Notification::Lagged { .. } => lagged += 1,
                Notification::Resynced { .. } => resynced += 1,
                _ => {}
            }
            if tally.mismatch == 0 {
                let now = Instant::now();
                if !view_done {
                    let _ = tx.send(Msg::View(now));
                }
                let _ = tx.send(Msg::Events(now));
                break;
            }
        }
        // What it had when it was done or the monitor stopped, for the report of a miss.
        let view = burst_addresses(sub.view());
        (tally.mismatch, lagged, resynced, view)
    });
    assert!(
        matches!(rx.recv_timeout(SILENCE), Ok(Msg::Ready)),
        "the subscription's Ready"
    );
    let t0 = pipelined(rtnl, ifindex, 0..ADDED, true);
    pipelined(rtnl, ifindex, 0..REMOVED, false);
    let kernel = t0.elapsed();
    let wait = Duration::from_secs(20);
    let at = |m: Result<Msg, _>| match m {
        Ok(Msg::View(at) | Msg::Events(at)) => Some(at - t0),
        _ => None,
    };
    let done = at(rx.recv_timeout(wait));
    let events = done.and_then(|_| at(rx.recv_timeout(wait)));
    let model = burst_addresses(&monitor.snapshot());
    drop(monitor);
    let (mismatch, lagged, resynced, view) = reader.join().expect("the reader");
    if events.is_none() {
        eprintln!(
            "burst: MISSED: netreach's events are {mismatch} addresses off the kernel's {} \
             after 20 s ({lagged} lagged, {resynced} resynced); its view holds {view} burst \
             addresses, the monitor's snapshot {model}",
            kernel_count(ns)
        );
    }
    Outcome {
        done,
        events,
        kernel,
        lagged,
        resynced,
    }
}

/// One burst with `ip monitor address` watching.
fn ip_monitor_burst(ns: &Ns, rtnl: &mut Rtnl, ifindex: &[u32]) -> Outcome {
    let mut child = Command::new("ip")
        .args(["-n", &ns.name, "monitor", "address"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run ip monitor");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = channel::<Instant>();
    let reader = std::thread::spawn(move || {
        let mut reader = BufReader::new(out);
        let mut line = String::new();
        while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
            // `7: bu    inet 198.19.0.1/32 scope global bu` or `Deleted 7: bu    inet ...`;
            // the `valid_lft ...` continuation lines are not counted.
            let l = line.strip_prefix("Deleted ").unwrap_or(&line);
            let mut w = l.split_whitespace();
            if let (Some(i), Some(name), Some("inet")) = (w.next(), w.next(), w.next()) {
                if i.ends_with(':') && name.starts_with("bu") && tx.send(Instant::now()).is_err() {
                    break;
                }
            }
            line.clear();
        }
    });
    // `ip monitor` subscribes some time after it starts: an address of its own until seen.
    let probe = IpAddr::V4(Ipv4Addr::new(198, 18, 200, 1));
    let mut listening = false;
    for _ in 0..50 {
        rtnl.add_address(ifindex[0], probe, 32);
        rtnl.del_address(ifindex[0], probe, 32);
        if rx.recv_timeout(Duration::from_millis(100)).is_ok() {
            listening = true;
            break;
        }
    }
    assert!(listening, "ip monitor never reported an address");
    std::thread::sleep(Duration::from_millis(20));
    while rx.try_recv().is_ok() {}
    let t0 = pipelined(rtnl, ifindex, 0..ADDED, true);
    pipelined(rtnl, ifindex, 0..REMOVED, false);
    let kernel = t0.elapsed();
    let mut lines = 0;
    let mut last = None;
    while lines < ADDED + REMOVED {
        match rx.recv_timeout(SILENCE) {
            Ok(at) => {
                lines += 1;
                last = Some(at);
            }
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    if lines < ADDED + REMOVED {
        eprintln!(
            "burst: ip monitor printed {lines} of {} address lines (it lost the others: \
             its socket overflowed)",
            ADDED + REMOVED
        );
    }
    Outcome {
        done: last.filter(|_| lines == ADDED + REMOVED).map(|at| at - t0),
        events: None,
        kernel,
        lagged: 0,
        resynced: 0,
    }
}

/// The scenario; prints its table.
pub fn run(cfg: &Config) {
    let ns = Ns::new("burst");
    let batch: String = (0..IFACES)
        .map(|i| format!("link add bu{i} type bridge\n"))
        .collect();
    ns.ip_batch(&batch);
    let ifindex: Vec<u32> = (0..IFACES)
        .map(|i| {
            ns.ip_json(&format!("link show dev bu{i}"))[0]["ifindex"]
                .as_u64()
                .expect("ifindex") as u32
        })
        .collect();
    let ifindex = &ifindex[..];
    let mut rtnl = Rtnl::open_in(&ns.name);
    let (mut ours, mut theirs) = (Samples::default(), Samples::default());
    let mut ours_events = Samples::default();
    // The kernel's time, apart for each observer: the sender shares the cores with it.
    let (mut kernel_ours, mut kernel_theirs) = (Samples::default(), Samples::default());
    let (mut ours_tail, mut theirs_tail) = (Samples::default(), Samples::default());
    let (mut lagged, mut resynced) = (0, 0);
    for rep in 0..cfg.burst_reps {
        for k in 0..2 {
            let netreach = (rep + k) % 2 == 0;
            let o = if netreach {
                netreach_burst(&ns, &mut rtnl, ifindex)
            } else {
                ip_monitor_burst(&ns, &mut rtnl, ifindex)
            };
            assert_eq!(
                kernel_count(&ns),
                ADDED - REMOVED,
                "the kernel holds the rest"
            );
            pipelined(&mut rtnl, ifindex, REMOVED..ADDED, false);
            assert_eq!(kernel_count(&ns), 0, "the burst bridges are empty again");
            let tail = o.done.map(|d| d.saturating_sub(o.kernel));
            if netreach {
                ours.record(o.done);
                ours_events.record(o.events);
                kernel_ours.push(o.kernel);
                ours_tail.record(tail);
                lagged += o.lagged;
                resynced += o.resynced;
            } else {
                theirs.record(o.done);
                kernel_theirs.push(o.kernel);
                theirs_tail.record(tail);
            }
        }
        eprintln!("burst: {}/{} rounds", rep + 1, cfg.burst_reps);
    }
    let mut t = Table::new(&[
        "observer",
        "median",
        "p90",
        "n",
        "missed",
        "netreach ÷ it (median)",
        "(p90)",
    ]);
    let rows = [
        ("netreach: Subscription view = kernel's", &ours),
        ("netreach: every event read", &ours_events),
        ("ip monitor address: all 30,000 lines", &theirs),
        (
            "kernel: last request acknowledged, netreach watching",
            &kernel_ours,
        ),
        (
            "kernel: last request acknowledged, ip monitor watching",
            &kernel_theirs,
        ),
    ];
    for (name, s) in rows {
        t.row(vec![
            name.into(),
            dur(s.median()),
            dur(s.p90()),
            s.len().to_string(),
            s.missed.to_string(),
            ratio(ours.median(), s.median()),
            ratio(ours.p90(), s.p90()),
        ]);
    }
    let tails = [
        (
            "netreach: of which after the last acknowledgement",
            &ours_tail,
        ),
        (
            "ip monitor: of which after the last acknowledgement",
            &theirs_tail,
        ),
    ];
    for (name, s) in tails {
        t.row(vec![
            name.into(),
            dur(s.median()),
            dur(s.p90()),
            s.len().to_string(),
            s.missed.to_string(),
            ratio(ours_tail.median(), s.median()),
            ratio(ours_tail.p90(), s.p90()),
        ]);
    }
    println!(
        "## Burst: {ADDED} addresses added, {REMOVED} removed, pipelined ({} bursts per \
         observer)\n\n{}\nnetreach's subscriber got {lagged} `Lagged` and {resynced} `Resynced` \
         markers in all.\n",
        cfg.burst_reps,
        t.render()
    );
}
