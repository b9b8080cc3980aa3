//! `sudo cargo bench -p netreach --bench memory`: the bytes netreach's model holds per
//! interface and per connection target, counted by a global allocator wrapper ([`alloc`]):
//! what is allocated and not freed, by every thread of the process, so neither what the
//! allocator keeps after a free (as resident memory would show) nor thread stacks count.
//!
//! - `interfaces`: at each size (default 10, 1,000 and 10,000 bridges with an address each,
//!   next to `live`'s veth pair), the bytes held by a `Snapshot` from a dump over an open
//!   socket, and by a whole `Monitor` once started (`Monitor::in_netns`, its snapshot taken
//!   and held, its thread idle); per interface is the growth from the smallest size divided by
//!   the interfaces added, so what any monitor pays once is not spread over them. Also the peak
//!   while the monitor started (dump buffers, the decoded messages).
//! - `targets`: a `ConnectionMonitor` on a monitor of a namespace with a route to 198.19.0.0/16;
//!   the bytes held after 10 targets and after 10 + 10,000 (each reported once, the monitor
//!   idle, nothing subscribed, the `Watch` handles held); per target is the growth divided by
//!   10,000.
//!
//! Arguments: `interfaces` or `targets` (none: both). Environment: `NETREACH_BENCH_QUICK=1`
//! (sizes 10 and 1,000, 1,000 targets), `NETREACH_BENCH_SIZES` (default `10,1000,10000`),
//! `NETREACH_BENCH_TARGETS` (default 10,000).

#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

mod alloc;
#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "../live/knobs.rs"]
mod knobs;
// Shared with the `live` benchmark: its namespace set-up and its tables.
#[allow(dead_code)]
#[path = "../live/latency.rs"]
mod latency;
#[allow(dead_code)]
#[path = "../live/nl.rs"]
mod nl;
#[allow(dead_code)]
#[path = "../live/observers.rs"]
mod observers;
#[allow(dead_code)]
#[path = "../live/snapshot.rs"]
mod snapshot;
#[allow(dead_code)]
#[path = "../live/stats.rs"]
mod stats;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use netreach::{ConnectionMonitor, Monitor, Watch};

use common::Ns;
use nl::{Dump, Rtnl};
use observers::IFACE;
use stats::Table;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

/// Waits until the live bytes stay put for 100 ms (the monitor's thread is done), at most 5 s;
/// returns them.
fn settled() -> usize {
    let end = Instant::now() + Duration::from_secs(5);
    let mut last = alloc::live();
    let mut stable = 0;
    while stable < 4 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(25));
        let now = alloc::live();
        stable = if now == last { stable + 1 } else { 0 };
        last = now;
    }
    last
}

fn bytes(n: isize) -> String {
    if n.unsigned_abs() >= 10 << 20 {
        format!("{:.1} MiB", n as f64 / (1 << 20) as f64)
    } else if n.unsigned_abs() >= 10 << 10 {
        format!("{:.0} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

/// What one size held.
struct Held {
    size: usize,
    counts: (usize, usize, usize),
    snapshot: isize,
    monitor: isize,
    monitor_peak: isize,
}

fn interfaces(sizes: &[usize]) {
    let mut held = Vec::new();
    for &size in sizes {
        let ns = Ns::new(&format!("mem{size}"));
        latency::prepare(&ns);
        snapshot::populate(&ns, size);
        let mut rtnl = Rtnl::open_in(&ns.name);
        // A snapshot from a dump (the socket and its buffer were allocated before).
        let base = settled() as isize;
        let snap = rtnl.dump(Dump::Everything);
        let snapshot = alloc::live() as isize - base;
        let counts = (
            snap.interfaces().len(),
            snap.addresses().count(),
            snap.routes().count(),
        );
        drop(snap);
        drop(rtnl);
        // A whole monitor, its snapshot held.
        let base = settled() as isize;
        alloc::reset_peak();
        let monitor = Monitor::in_netns(ns.netns()).expect("monitor");
        let snap = monitor.snapshot();
        let monitor_bytes = settled() as isize - base;
        let monitor_peak = alloc::peak() as isize - base;
        assert!(snap.interfaces().len() > size);
        drop(snap);
        drop(monitor);
        held.push(Held {
            size,
            counts,
            snapshot,
            monitor: monitor_bytes,
            monitor_peak,
        });
        eprintln!("memory: {size} interfaces done");
    }
    let mut t = Table::new(&[
        "bridges",
        "interfaces, addresses, routes",
        "Snapshot holds",
        "per interface",
        "Monitor holds",
        "per interface",
        "Monitor's peak while starting",
    ]);
    let base = held.first().map(|h| (h.counts.0, h.snapshot, h.monitor));
    for h in &held {
        let per = |now: isize, then: isize, n0: usize| {
            if h.counts.0 > n0 {
                format!("{} B", (now - then) / (h.counts.0 - n0) as isize)
            } else {
                "n/a".into()
            }
        };
        let (n0, s0, m0) = base.expect("a size");
        t.row(vec![
            h.size.to_string(),
            format!("{}, {}, {}", h.counts.0, h.counts.1, h.counts.2),
            bytes(h.snapshot),
            per(h.snapshot, s0, n0),
            bytes(h.monitor),
            per(h.monitor, m0, n0),
            bytes(h.monitor_peak),
        ]);
    }
    println!(
        "## Memory per interface (counting allocator: bytes allocated and not freed)\n\n{}",
        t.render()
    );
}

fn targets(n: usize) {
    let ns = Ns::new("memtargets");
    latency::prepare(&ns);
    ns.ip(&format!(
        "route add 198.19.0.0/16 via 198.18.0.2 dev {IFACE}"
    ));
    let monitor = Monitor::in_netns(ns.netns()).expect("monitor");
    let conns = ConnectionMonitor::new(&monitor);
    let local = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
    let watch = |from: usize, count: usize| -> Vec<Watch> {
        let v: Vec<Watch> = (from..from + count)
            .map(|i| {
                let remote = Ipv4Addr::from((198u32 << 24 | 19 << 16) + 256 + i as u32);
                conns
                    .watch_pair(local, IpAddr::V4(remote), None)
                    .expect("target")
            })
            .collect();
        for w in &v {
            assert!(
                w.wait_first(Duration::from_secs(60)).is_some(),
                "a first report"
            );
        }
        v
    };
    let empty = settled() as isize;
    let first = watch(0, 10);
    let ten = settled() as isize;
    alloc::reset_peak();
    let rest = watch(10, n);
    let all = settled() as isize;
    let peak = alloc::peak() as isize;
    let mut t = Table::new(&[
        "targets",
        "held",
        "growth",
        "per target",
        "peak while adding, above 10 targets",
    ]);
    t.row(vec![
        "0".into(),
        bytes(empty),
        String::new(),
        String::new(),
        String::new(),
    ]);
    t.row(vec![
        "10".into(),
        bytes(ten),
        bytes(ten - empty),
        format!("{} B", (ten - empty) / 10),
        String::new(),
    ]);
    t.row(vec![
        (10 + n).to_string(),
        bytes(all),
        bytes(all - ten),
        format!("{} B", (all - ten) / n as isize),
        bytes(peak - ten),
    ]);
    println!(
        "## Memory per connection target (counting allocator; the whole process: monitor, \
         connection monitor, `Watch` handles)\n\n{}",
        t.render()
    );
    drop(rest);
    drop(first);
}

fn main() {
    if !rustix::process::geteuid().is_root() {
        eprintln!(
            "\n*** THIS BENCHMARK NEEDS ROOT ***\n\
             It creates network namespaces (ip netns add) and enters them (setns).\n\
             Run it as: sudo cargo bench -p netreach --bench memory\n"
        );
        std::process::exit(2);
    }
    let quick = knobs::quick();
    let sizes = knobs::sizes(quick);
    let n_targets = knobs::num("NETREACH_BENCH_TARGETS", if quick { 1000 } else { 10_000 });
    let parts = knobs::parts();
    for p in &parts {
        assert!(
            p == "interfaces" || p == "targets",
            "unknown part {p:?}: expected interfaces or targets"
        );
    }
    let wants = |p: &str| parts.is_empty() || parts.iter().any(|a| a == p);
    println!(
        "# netreach memory (counting allocator)\n\n{}\n",
        knobs::machine()
    );
    if wants("interfaces") {
        interfaces(&sizes);
    }
    if wants("targets") {
        targets(n_targets);
    }
}
