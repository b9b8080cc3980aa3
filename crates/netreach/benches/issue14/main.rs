//! `sudo cargo bench -p netreach --bench issue14`: the scenarios of issue 14 that the `live` and
//! `reach` benchmarks do not cover, each next to its peer measured in the same run.
//!
//! - `attached`: a monitor with a `StatusMonitor` and a `ConnectionMonitor` attached (as
//!   `netreach watch` and `serve` run): change to model event, to connectivity change and to
//!   reachability change, next to `ip monitor`, at 10, 1,000 and 10,000 interfaces;
//! - `burst`: 20,000 IPv4 addresses added and 10,000 removed, sent in process as pipelined
//!   requests: until a subscriber's view equals the kernel's, next to `ip monitor address`
//!   printing them all;
//! - `idle`: `netreach watch --json` (the release binary) and a library monitor with every
//!   part attached, each without and with the probe schedule, in a quiet namespace: wake-ups
//!   per minute, resident memory;
//! - `status`: `netreach status --json` as a whole process next to `ip -j addr show` plus
//!   `ip -j route show table all`, at 10 and 10,000 interfaces.
//!
//! The memory per interface and per target, with a counting allocator, is the `memory`
//! benchmark (its allocator would slow everything here).
//!
//! Arguments: scenario names (any of the above; none: all). Environment:
//! - `NETREACH_BENCH_QUICK=1`: fewer repetitions, sizes 10 and 1,000, a 10 s idle window;
//! - `NETREACH_BENCH_REPS`: repetitions per change, observer and size (default 20, quick 6);
//! - `NETREACH_BENCH_SIZES`: interface counts (default `10,1000,10000`; `status` uses the
//!   smallest and the largest);
//! - `NETREACH_BENCH_BURST_REPS`: bursts per observer (default 3, quick 1);
//! - `NETREACH_BENCH_IDLE_SECS`: the idle window in seconds (default 60, quick 10);
//! - `NETREACH_BIN`: the `netreach` binary (default: `netreach` next to this benchmark's
//!   `deps/` directory, which `cargo build --release -p netreach-cli` puts there).

// The benchmark builds network namespaces, which only Linux has. Elsewhere the crate is empty:
// `no_main` lets `cargo check --all-targets` pass there (`cargo bench` would not link).
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

mod attached;
mod burst;
#[path = "../../tests/common/mod.rs"]
mod common;
mod idle;
#[path = "../live/knobs.rs"]
mod knobs;
// Shared with the `live` benchmark: its request socket, its tables, its namespace set-up.
#[allow(dead_code)]
#[path = "../live/latency.rs"]
mod latency;
#[allow(dead_code)]
#[path = "../live/nl.rs"]
mod nl;
#[allow(dead_code)]
#[path = "../live/observers.rs"]
mod observers;
mod procfs;
#[allow(dead_code)]
#[path = "../live/snapshot.rs"]
mod snapshot;
#[allow(dead_code)]
#[path = "../live/stats.rs"]
mod stats;
mod status;

use std::path::PathBuf;
use std::time::Instant;

pub struct Config {
    pub quick: bool,
    pub reps: usize,
    pub sizes: Vec<usize>,
    pub burst_reps: usize,
    pub idle_secs: u64,
    parts: Vec<String>,
}

impl Config {
    fn from_env() -> Config {
        let quick = knobs::quick();
        let num = knobs::num;
        let sizes = knobs::sizes(quick);
        let parts = knobs::parts();
        for p in &parts {
            assert!(
                ["attached", "burst", "idle", "status"].contains(&p.as_str()),
                "unknown scenario {p:?}: expected attached, burst, idle or status"
            );
        }
        Config {
            quick,
            reps: num("NETREACH_BENCH_REPS", if quick { 6 } else { 20 }),
            sizes,
            burst_reps: num("NETREACH_BENCH_BURST_REPS", if quick { 1 } else { 3 }),
            idle_secs: num("NETREACH_BENCH_IDLE_SECS", if quick { 10 } else { 60 }) as u64,
            parts,
        }
    }

    fn wants(&self, part: &str) -> bool {
        self.parts.is_empty() || self.parts.iter().any(|p| p == part)
    }
}

/// The release `netreach` binary: `NETREACH_BIN`, or `netreach` in the directory above this
/// benchmark's (`target/release/deps/issue14-*` → `target/release/netreach`).
pub fn netreach_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("NETREACH_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("own executable");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("netreach"))
        .filter(|p| p.is_file());
    bin.unwrap_or_else(|| {
        panic!(
            "no netreach binary next to {}: run `cargo build --release -p netreach-cli` with \
             the same CARGO_TARGET_DIR first, or set NETREACH_BIN",
            exe.display()
        )
    })
}

fn main() {
    if let Ok(ns) = std::env::var(idle::CHILD_NS) {
        idle::child(&ns);
        return;
    }
    if !rustix::process::geteuid().is_root() {
        eprintln!(
            "\n*** THIS BENCHMARK NEEDS ROOT ***\n\
             It creates network namespaces (ip netns add) and enters them (setns).\n\
             Run it as: sudo cargo bench -p netreach --bench issue14\n"
        );
        std::process::exit(2);
    }
    let cfg = Config::from_env();
    let start = Instant::now();
    println!("# netreach issue 14 scenarios\n\n{}\n", knobs::machine());
    if cfg.wants("attached") {
        attached::run(&cfg);
    }
    if cfg.wants("burst") {
        burst::run(&cfg);
    }
    if cfg.wants("idle") {
        idle::run(&cfg);
    }
    if cfg.wants("status") {
        status::run(&cfg);
    }
    println!("Total time: {:.0?}", start.elapsed());
}
