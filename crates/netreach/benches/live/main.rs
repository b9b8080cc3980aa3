//! `sudo cargo bench -p netreach --bench live`: netreach against its peers on the real kernel,
//! in throwaway network namespaces (hence root), side by side in one run.
//!
//! The machine it runs on is shared and noisy, so what it reports are medians and 90th
//! percentiles over many repetitions, and the ratio of netreach to each peer measured in the
//! same run; docs/BENCHMARKS.md keeps the latest figures.
//!
//! Arguments: `latency` or `snapshot` runs only that part. Environment:
//! - `NETREACH_BENCH_QUICK=1`: fewer repetitions and no 10,000-interface namespace;
//! - `NETREACH_BENCH_REPS` (default 40): latency repetitions per change and observer;
//! - `NETREACH_BENCH_SIZES` (default `10,1000,10000`): interface counts for the snapshots;
//! - `NETREACH_BENCH_SNAPSHOT_REPS` (default 15): snapshots per tool and size;
//! - `NETREACH_BENCH_TRACE=1`: one line on stderr per netreach latency sample, with the
//!   monitor's counters over it (kernel messages, route refreshes, resyncs).

// The benchmark builds network namespaces, which only Linux has. Elsewhere the crate is empty:
// `no_main` lets `cargo check --all-targets` pass there (`cargo bench` would not link).
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

#[path = "../../tests/common/mod.rs"]
mod common;
mod knobs;
mod latency;
mod nl;
mod observers;
mod snapshot;
mod stats;

use std::time::Instant;

use common::Ns;

struct Config {
    latency: bool,
    snapshot: bool,
    reps: usize,
    sizes: Vec<usize>,
    snapshot_reps: usize,
}

impl Config {
    fn from_env() -> Config {
        let quick = knobs::quick();
        let num = knobs::num;
        let sizes = knobs::sizes(quick);
        let parts = knobs::parts();
        let wants = |p: &str| parts.is_empty() || parts.iter().any(|a| a == p);
        Config {
            latency: wants("latency"),
            snapshot: wants("snapshot"),
            reps: num("NETREACH_BENCH_REPS", if quick { 10 } else { 40 }),
            sizes,
            snapshot_reps: num("NETREACH_BENCH_SNAPSHOT_REPS", if quick { 5 } else { 15 }),
        }
    }
}

fn main() {
    if let Ok(tool) = std::env::var(snapshot::CHILD_TOOL) {
        let ns = std::env::var(snapshot::CHILD_NS).expect("namespace of the memory child");
        snapshot::child(&tool, &ns);
        return;
    }
    if !rustix::process::geteuid().is_root() {
        eprintln!(
            "\n*** THIS BENCHMARK NEEDS ROOT ***\n\
             It creates network namespaces (ip netns add) and enters them (setns).\n\
             Run it as: sudo cargo bench -p netreach --bench live\n"
        );
        std::process::exit(2);
    }
    let cfg = Config::from_env();
    let start = Instant::now();
    println!("# netreach live benchmark\n\n{}\n", knobs::machine());

    if cfg.latency {
        let r = latency::run_all(cfg.reps);
        println!(
            "## Change-to-event latency ({} repetitions, one namespace per observer)\n\n{}",
            cfg.reps,
            r.table().render()
        );
    }

    if cfg.snapshot {
        let mut results = Vec::new();
        let mut scaled = stats::Table::new(&[
            "interfaces",
            "change",
            "observer",
            "median",
            "p90",
            "n",
            "missed",
            "netreach ÷ it (median)",
            "(p90)",
        ]);
        for &size in &cfg.sizes {
            let t = Instant::now();
            let ns = Ns::new(&format!("snap{size}"));
            latency::prepare(&ns);
            snapshot::populate(&ns, size);
            eprintln!("snapshot: {size} interfaces made in {:.1?}", t.elapsed());
            results.push(snapshot::measure(&ns, size, cfg.snapshot_reps));
            let mut lat = latency::Results { rows: Vec::new() };
            latency::run_in(&ns, cfg.reps / 2, &mut lat);
            for row in lat.table().rows() {
                scaled.row(std::iter::once(size.to_string()).chain(row).collect());
            }
            eprintln!("snapshot: {size} interfaces done in {:.1?}", t.elapsed());
        }
        println!(
            "## Full snapshot ({} timed runs per tool and size)\n\n{}",
            cfg.snapshot_reps,
            snapshot::timing_table(&results).render()
        );
        println!("Objects in netreach's snapshot:\n");
        for r in &results {
            let (i, a, rt) = r.counts;
            println!(
                "- {} bridges: {i} interfaces, {a} addresses, {rt} routes",
                r.size
            );
        }
        println!(
            "\n## Memory (one fresh process per tool and size)\n\n{}",
            snapshot::memory_table(&results).render()
        );
        println!(
            "## Change-to-event latency by namespace size (netreach and ip monitor taking \
             turns, {} repetitions)\n\n{}",
            cfg.reps / 2,
            scaled.render()
        );
    }
    println!("Total time: {:.0?}", start.elapsed());
}
