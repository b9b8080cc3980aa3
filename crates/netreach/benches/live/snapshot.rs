//! The cost of a full snapshot of a namespace with many interfaces, each with an address.
//!
//! Compared, interleaved in one run: `ip -j addr show` (a process, timed from spawn to exit,
//! and again with its JSON parsed), `getifaddrs(3)` through the `if-addrs` crate (called on a
//! thread inside the namespace; the thread's start is not timed), and netreach: a new monitor
//! (`Monitor::in_netns` + `snapshot()`: thread, `setns`, sockets and the dump of links,
//! addresses, routes and rules), and a dump over an already open socket (what a resync costs),
//! also limited to links and addresses, the work `ip addr show` and `getifaddrs` do.
//!
//! Memory is measured once per size in a fresh child process per tool (this benchmark's own
//! binary, run again): its resident set before, its peak (`VmHWM`, reset through
//! `/proc/self/clear_refs` first) and its resident set with the result still held. For `ip`,
//! the peak of the whole process as GNU `time` reports it.

use std::any::Any;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netreach::Monitor;

use crate::common::Ns;
use crate::nl::{Dump, Rtnl, in_ns};
use crate::stats::{Samples, Table, dur, kib, ratio};

/// Environment variables that turn this binary into a memory-measuring child.
pub const CHILD_TOOL: &str = "NETREACH_BENCH_CHILD";
pub const CHILD_NS: &str = "NETREACH_BENCH_NS";

/// The address of interface `i` (198.18.0.0/15 holds 131,070 of them).
fn address(i: usize) -> Ipv4Addr {
    let n = 198u32 << 24 | 18 << 16;
    Ipv4Addr::from(n + 0x0400 + i as u32)
}

/// `n` bridges, each with one IPv4 address, created with one `ip -batch` (down: a bridge set
/// up has nothing to bring up and 10,000 of them take seconds of kernel time to settle).
pub fn populate(ns: &Ns, n: usize) {
    let mut lines = String::with_capacity(n * 64);
    for i in 0..n {
        lines.push_str(&format!("link add br{i} type bridge\n"));
    }
    for i in 0..n {
        lines.push_str(&format!("addr add {}/32 dev br{i}\n", address(i)));
    }
    ns.ip_batch(&lines);
}

/// The ways of taking a snapshot that are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    NetreachOpen,
    NetreachDump,
    NetreachDumpLinksAddrs,
    Floor,
    IpAddrShow,
    IpAddrShowParsed,
    IfAddrs,
}

impl Tool {
    pub const ALL: [Tool; 7] = [
        Tool::NetreachOpen,
        Tool::NetreachDump,
        Tool::NetreachDumpLinksAddrs,
        Tool::Floor,
        Tool::IpAddrShow,
        Tool::IpAddrShowParsed,
        Tool::IfAddrs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tool::NetreachOpen => "netreach: Monitor::in_netns + snapshot()",
            Tool::NetreachDump => "netreach: dump over an open socket",
            Tool::NetreachDumpLinksAddrs => "netreach: dump, links + addresses only",
            Tool::Floor => "floor: links + addresses dump, not decoded",
            Tool::IpAddrShow => "ip -j addr show (process)",
            Tool::IpAddrShowParsed => "ip -j addr show + serde_json parse",
            Tool::IfAddrs => "if-addrs 0.15 (getifaddrs)",
        }
    }

    /// Whether this is a peer (to compare netreach with) rather than netreach or the floor.
    fn is_peer(self) -> bool {
        matches!(
            self,
            Tool::IpAddrShow | Tool::IpAddrShowParsed | Tool::IfAddrs
        )
    }
}

/// Timings of every tool at one size.
pub struct SizeResult {
    pub size: usize,
    pub samples: Vec<(Tool, Samples)>,
    pub memory: Vec<(&'static str, Memory)>,
    /// Interfaces, addresses and routes in netreach's snapshot.
    pub counts: (usize, usize, usize),
}

/// Kibibytes of resident memory: before, peak and after (with the result held).
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub before: Option<u64>,
    pub peak: Option<u64>,
    pub after: Option<u64>,
}

/// Times every tool `reps` times at this size, interleaved.
pub fn measure(ns: &Ns, size: usize, reps: usize) -> SizeResult {
    let mut rtnl = Rtnl::open_in(&ns.name);
    let mut samples: Vec<(Tool, Samples)> =
        Tool::ALL.iter().map(|t| (*t, Samples::default())).collect();
    let snap = rtnl.dump(Dump::Everything);
    let counts = (
        snap.interfaces().len(),
        snap.addresses().count(),
        snap.routes().count(),
    );
    assert!(counts.0 > size, "the namespace holds the {size} bridges");
    drop(snap);
    // One warm-up round, not recorded; then a different tool first each round.
    for rep in 0..=reps {
        for k in 0..Tool::ALL.len() {
            let i = (rep + k) % Tool::ALL.len();
            let tool = samples[i].0;
            let (d, found) = time(tool, ns, &mut rtnl);
            assert!(found >= size, "{}: saw {found} of {size}", tool.name());
            if rep > 0 {
                samples[i].1.push(d);
            }
        }
    }
    let memory = ["netreach-open", "netreach-dump", "if-addrs", "ip"]
        .iter()
        .map(|t| (*t, memory(t, ns)))
        .collect();
    SizeResult {
        size,
        samples,
        memory,
        counts,
    }
}

/// One timed snapshot; returns the time and how many interfaces it saw.
fn time(tool: Tool, ns: &Ns, rtnl: &mut Rtnl) -> (Duration, usize) {
    match tool {
        Tool::NetreachOpen => {
            let t0 = Instant::now();
            let monitor = Monitor::in_netns(ns.netns()).expect("monitor");
            let snap = monitor.snapshot();
            let d = t0.elapsed();
            (d, snap.interfaces().len())
        }
        Tool::NetreachDump | Tool::NetreachDumpLinksAddrs => {
            let what = if tool == Tool::NetreachDump {
                Dump::Everything
            } else {
                Dump::LinksAndAddresses
            };
            let t0 = Instant::now();
            let snap = rtnl.dump(what);
            let d = t0.elapsed();
            (d, snap.interfaces().len())
        }
        Tool::Floor => {
            let t0 = Instant::now();
            let links = rtnl.dump_bytes(Dump::LinksAndAddresses);
            (t0.elapsed(), links)
        }
        Tool::IpAddrShow | Tool::IpAddrShowParsed => {
            let t0 = Instant::now();
            let out = Command::new("ip")
                .args(["-j", "-n", &ns.name, "addr", "show"])
                .stderr(Stdio::null())
                .output()
                .expect("run ip");
            let d = t0.elapsed();
            assert!(out.status.success(), "ip -j addr show failed");
            let t1 = Instant::now();
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip's JSON");
            let parse = t1.elapsed();
            let n = v.as_array().map_or(0, Vec::len);
            if tool == Tool::IpAddrShow {
                (d, n)
            } else {
                (d + parse, n)
            }
        }
        Tool::IfAddrs => in_ns(&ns.name, || {
            let t0 = Instant::now();
            let v = if_addrs::get_if_addrs().expect("getifaddrs");
            let d = t0.elapsed();
            (d, v.len())
        }),
    }
}

/// Runs the memory child for `tool` (or `ip` under GNU time) and reads its figures.
fn memory(tool: &str, ns: &Ns) -> Memory {
    if tool == "ip" {
        // GNU time's %M: the peak resident set of the process, in KiB.
        let out = Command::new("/usr/bin/time")
            .args(["-f", "%M", "ip", "-j", "-n", &ns.name, "addr", "show"])
            .stdout(Stdio::null())
            .output();
        let peak = out.ok().and_then(|o| {
            let err = String::from_utf8_lossy(&o.stderr).into_owned();
            err.lines().last()?.trim().parse().ok()
        });
        return Memory {
            peak,
            ..Memory::default()
        };
    }
    let exe = std::env::current_exe().expect("own executable");
    let out = Command::new(exe)
        .env(CHILD_TOOL, tool)
        .env(CHILD_NS, &ns.name)
        .output()
        .expect("memory child");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<u64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    match v[..] {
        [before, peak, after] => Memory {
            before: Some(before),
            peak: Some(peak),
            after: Some(after),
        },
        _ => Memory::default(),
    }
}

fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("a VmXXX field")
}

/// The memory child: takes one snapshot with `tool`, prints `before peak after` in KiB.
pub fn child(tool: &str, ns: &str) {
    let before = status_kib("VmRSS");
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak (clear_refs)");
    let held: Box<dyn Any> = match tool {
        "netreach-open" => {
            let monitor =
                Monitor::in_netns(netreach::Netns::named(ns).expect("name")).expect("monitor");
            let snap = monitor.snapshot();
            Box::new((monitor, snap))
        }
        "netreach-dump" => Box::new(Rtnl::open_in(ns).dump(Dump::Everything)),
        "if-addrs" => Box::new(in_ns(ns, || if_addrs::get_if_addrs().expect("getifaddrs"))),
        other => panic!("unknown memory child {other}"),
    };
    let peak = status_kib("VmHWM");
    let after = status_kib("VmRSS");
    println!("{before} {peak} {after}");
    drop(held);
}

/// The timing table: one row per size and tool, with netreach's ratio to each peer.
pub fn timing_table(results: &[SizeResult]) -> Table {
    let mut t = Table::new(&[
        "interfaces",
        "tool",
        "median",
        "p90",
        "n",
        "new monitor ÷ it",
        "open-socket dump ÷ it",
    ]);
    for r in results {
        let med = |tool: Tool| {
            r.samples
                .iter()
                .find(|(t, _)| *t == tool)
                .and_then(|(_, s)| s.median())
        };
        for (tool, s) in &r.samples {
            let (vs_open, vs_dump) = if tool.is_peer() {
                (
                    ratio(med(Tool::NetreachOpen), s.median()),
                    ratio(med(Tool::NetreachDump), s.median()),
                )
            } else {
                (String::new(), String::new())
            };
            t.row(vec![
                r.size.to_string(),
                tool.name().into(),
                dur(s.median()),
                dur(s.p90()),
                s.len().to_string(),
                vs_open,
                vs_dump,
            ]);
        }
    }
    t
}

/// The memory table. "Per interface" is the slope of the memory held from the smallest size
/// to this one, so that what any process pays once (a thread's stack, an allocator arena)
/// is not spread over the interfaces.
pub fn memory_table(results: &[SizeResult]) -> Table {
    let mut t = Table::new(&[
        "interfaces",
        "process",
        "RSS before",
        "peak RSS",
        "peak − before",
        "RSS held − before",
        "held per interface",
    ]);
    let held = |m: &Memory| Some(m.after?.saturating_sub(m.before?));
    let base = results.first();
    for r in results {
        for (tool, m) in &r.memory {
            let delta = |x: Option<u64>| Some(x?.saturating_sub(m.before?));
            let base_held = base.and_then(|b| {
                let (_, bm) = b.memory.iter().find(|(t, _)| t == tool)?;
                Some((b.size, held(bm)?))
            });
            let per_iface = match (held(m), base_held) {
                (Some(h), Some((bs, bh))) if r.size > bs => Some(format!(
                    "{} B",
                    (h as i64 - bh as i64) * 1024 / (r.size - bs) as i64
                )),
                _ => None,
            };
            t.row(vec![
                r.size.to_string(),
                (*tool).into(),
                kib(m.before),
                kib(m.peak),
                kib(delta(m.peak)),
                kib(held(m)),
                per_iface.unwrap_or_else(|| "n/a".into()),
            ]);
        }
    }
    t
}
