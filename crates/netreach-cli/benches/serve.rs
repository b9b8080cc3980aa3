//! `netreach serve` next to `netreach watch --json`: how fast one change reaches 1 and 1,000
//! event-stream clients, what a `/metrics` scrape costs at 10 and 1,000 interfaces, and the
//! service's memory idle and with 1,000 clients. Not a timed test: a program that builds
//! namespaces and prints figures (docs/BENCHMARKS.md). Needs root.
//!
//! `cargo bench -p netreach-cli --bench serve` (about a minute). `NETREACH_BENCH_REPS`
//! (default 15) sets the changes timed per client count.

#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

#[path = "../../netreach/tests/common/mod.rs"]
mod common;
#[path = "../tests/serve_util/mod.rs"]
mod serve_util;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Ns;
use serve_util::{Serve, Sse};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn fmt(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

/// `netreach watch --json` in `ns`: sends the time each line arrives, with the line.
fn watch(ns: &Ns) -> (std::process::Child, mpsc::Receiver<(Instant, String)>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_netreach"))
        .args(["--netns", &ns.name, "watch", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("netreach watch");
    let out = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in out.lines().map_while(Result::ok) {
            if tx.send((Instant::now(), l)).is_err() {
                break;
            }
        }
    });
    // The first line is `ready`: the subscription is live.
    rx.recv_timeout(Duration::from_secs(10)).expect("ready");
    (child, rx)
}

/// `n` event-stream clients, each on a thread of its own that reports when it sees an
/// `address_added` event naming one of the addresses asked for.
fn clients(serve: &Serve, n: usize) -> mpsc::Receiver<(String, Instant)> {
    let (tx, rx) = mpsc::channel();
    let opened: Vec<_> = (0..n)
        .map(|_| Sse::send(&serve.socket, "/v1/events?types=address_added", &[]))
        .collect();
    let (ready_tx, ready_rx) = mpsc::channel();
    for sent in opened {
        let tx = tx.clone();
        let ready_tx = ready_tx.clone();
        std::thread::Builder::new()
            .stack_size(128 << 10)
            .spawn(move || {
                let mut sse = sent.head();
                let _ = ready_tx.send(());
                while let Some(e) = sse.next() {
                    if e.event == "address_added" {
                        let at = Instant::now();
                        if tx.send((e.data, at)).is_err() {
                            break;
                        }
                    }
                }
            })
            .expect("client thread");
    }
    for _ in 0..n {
        ready_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("every client's stream opens");
    }
    rx
}

fn latency(reps: usize) {
    let ns = Ns::new("bserve");
    ns.veth("b0", "b1");
    ns.ip("link set b0 up");
    let serve = Serve::start(&ns.name, &[]);
    let idle_rss = serve.rss_kb();
    let (mut watcher, lines) = watch(&ns);
    println!("## netreach serve: change to event\n");
    println!("Service RSS idle: {idle_rss} KiB.\n");
    println!(
        "| clients | observer | median | n | ÷ watch --json (median) |\n|---|---|---|---|---|"
    );
    let mut round = 0u32;
    let mut rss_lines = Vec::new();
    for n in [1usize, 1000] {
        let events = clients(&serve, n);
        let rss = serve.rss_kb();
        let (mut first, mut last, mut watched) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..reps {
            round += 1;
            let addr = format!("198.19.{}.{}", round / 250, round % 250 + 1);
            let t0 = Instant::now();
            ns.ip(&format!("addr add {addr}/32 dev b0"));
            let mut seen = 0;
            let mut t_first = None;
            let mut t_last = t0;
            while seen < n {
                let (data, at) = events
                    .recv_timeout(Duration::from_secs(20))
                    .expect("every client gets the change");
                if data.contains(&format!("\"{addr}\"")) {
                    seen += 1;
                    t_first.get_or_insert(at);
                    t_last = t_last.max(at);
                }
            }
            let w = loop {
                let (at, l) = lines
                    .recv_timeout(Duration::from_secs(20))
                    .expect("watch prints the change");
                if l.contains("address_added") && l.contains(&format!("\"{addr}\"")) {
                    break at;
                }
            };
            first.push(t_first.unwrap_or(t0) - t0);
            last.push(t_last - t0);
            watched.push(w - t0);
            ns.ip(&format!("addr del {addr}/32 dev b0"));
        }
        let w = median(watched);
        for (what, v) in [("first client", first), ("last client", last)] {
            let m = median(v);
            println!(
                "| {n} | SSE, {what} | {} | {reps} | {:.2}× |",
                fmt(m),
                m.as_secs_f64() / w.as_secs_f64()
            );
        }
        println!(
            "| {n} | watch --json (same change) | {} | {reps} | 1.00× |",
            fmt(w)
        );
        rss_lines.push(format!("Service RSS with {n} clients open: {rss} KiB."));
    }
    println!();
    for l in rss_lines {
        println!("{l}");
    }
    println!();
    let _ = watcher.kill();
    let _ = watcher.wait();
    println!(
        "(Each change is an `ip addr add` process, timed from its spawn: a few milliseconds of \
         that are `ip` itself, the same for both observers.)\n"
    );
}

fn metrics() {
    println!("## netreach serve: /metrics\n");
    println!("| interfaces | scrape median | body |\n|---|---|---|");
    for size in [10usize, 1000] {
        let ns = Ns::new("bmetrics");
        let mut batch = String::new();
        for i in 0..size {
            batch.push_str(&format!("link add br{i} type bridge\n"));
        }
        ns.ip_batch(&batch);
        let serve = Serve::start(&ns.name, &[]);
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..50 {
            let t0 = Instant::now();
            let (status, body) = serve.get("/metrics");
            times.push(t0.elapsed());
            assert_eq!(status, 200);
            bytes = body.len();
        }
        println!(
            "| {} | {} | {} KiB |",
            size + 1,
            fmt(median(times)),
            bytes / 1024
        );
    }
    println!();
}

fn main() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("this benchmark needs root: it creates network namespaces");
        std::process::exit(2);
    }
    let reps = std::env::var("NETREACH_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    latency(reps);
    metrics();
}
