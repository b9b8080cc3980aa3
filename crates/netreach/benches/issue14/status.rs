//! `netreach status --json` as a whole process (the release binary: start-up, namespace,
//! sockets, the dump, the connectivity rules, the JSON, exit) next to what one would run
//! instead to learn as much: `ip -j addr show` and `ip -j route show table all`, the two
//! processes one after the other, their times summed. Interleaved, a different one first in
//! each round, after one untimed round; in the namespaces of the `live` snapshot benchmark (N
//! bridges with an address each, next to `live`'s veth pair).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::Ns;
use crate::stats::{Samples, Table, dur, ratio};
use crate::{Config, latency, snapshot};

/// Runs `cmd` with its output read; its wall time, from spawn to exit.
fn time(cmd: &mut Command) -> Duration {
    let t0 = Instant::now();
    let out = cmd.stderr(Stdio::null()).output().expect("run");
    let d = t0.elapsed();
    assert!(out.status.success(), "{cmd:?} failed");
    assert!(!out.stdout.is_empty(), "{cmd:?} printed nothing");
    d
}

/// The scenario at the smallest and the largest size of `cfg`; prints its table.
pub fn run(cfg: &Config) {
    let mut sizes = vec![
        *cfg.sizes.iter().min().expect("a size"),
        *cfg.sizes.iter().max().expect("a size"),
    ];
    sizes.dedup();
    let bin = crate::netreach_bin();
    let reps = if cfg.quick { 5 } else { 15 };
    let mut t = Table::new(&[
        "interfaces",
        "process(es)",
        "median",
        "p90",
        "n",
        "netreach ÷ it (median)",
        "(p90)",
    ]);
    for size in sizes {
        let ns = Ns::new(&format!("st{size}"));
        latency::prepare(&ns);
        snapshot::populate(&ns, size);
        let netreach = || {
            let mut c = Command::new(&bin);
            c.args(["--netns", &ns.name, "status", "--json"]);
            c
        };
        let ip = |args: &[&str]| {
            let mut c = Command::new("ip");
            c.args(["-j", "-n", &ns.name]).args(args);
            c
        };
        let (mut ours, mut addr, mut route, mut both) = Default::default();
        for rep in 0..=reps {
            let (n, a, r);
            if rep % 2 == 0 {
                n = time(&mut netreach());
                a = time(&mut ip(&["addr", "show"]));
                r = time(&mut ip(&["route", "show", "table", "all"]));
            } else {
                a = time(&mut ip(&["addr", "show"]));
                r = time(&mut ip(&["route", "show", "table", "all"]));
                n = time(&mut netreach());
            }
            if rep > 0 {
                let s: [&mut Samples; 4] = [&mut ours, &mut addr, &mut route, &mut both];
                for (s, d) in s.into_iter().zip([n, a, r, a + r]) {
                    s.push(d);
                }
            }
        }
        let rows: [(&str, &Samples); 4] = [
            ("netreach status --json", &ours),
            ("ip -j addr show + ip -j route show table all", &both),
            ("ip -j addr show", &addr),
            ("ip -j route show table all", &route),
        ];
        for (name, s) in rows {
            t.row(vec![
                size.to_string(),
                name.into(),
                dur(s.median()),
                dur(s.p90()),
                s.len().to_string(),
                ratio(ours.median(), s.median()),
                ratio(ours.p90(), s.p90()),
            ]);
        }
        eprintln!("status: {size} interfaces done");
    }
    println!(
        "## `status --json` as a whole process ({reps} timed runs each, after one untimed)\n\n{}",
        t.render()
    );
}
