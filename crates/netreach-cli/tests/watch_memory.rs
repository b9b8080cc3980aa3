//! `netreach watch --json` whose standard output nobody reads keeps bounded memory: the
//! changes it cannot print are merged on lag in the monitor's bounded queue, never buffered.
//! (The issue measured 5 MB growing to 181 MB over 200,000 unread changes when a thread
//! drained the bounded subscription into an unbounded channel.)

// Every test here builds network namespaces, which only Linux has.
#![cfg(target_os = "linux")]

#[path = "../../netreach/tests/common/mod.rs"]
mod common;
mod schema;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Ns;
use schema::Schema;

/// `VmHWM` (peak resident set) of a process, in KiB.
fn peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[test]
fn unread_watch_output_keeps_bounded_memory() {
    const LINKS: usize = 10;
    const PER_LINK: usize = 2_000;
    let ns = Ns::new("unread");
    // Down links: the addresses change no connectivity, so every line is a model change.
    let mut setup = String::new();
    for l in 0..LINKS {
        setup.push_str(&format!("link add u{l} type veth peer name v{l}\n"));
    }
    setup.push_str("link add mark0 type veth peer name mark1\n");
    ns.ip_batch(&setup);
    let mut child = Command::new(env!("CARGO_BIN_EXE_netreach"))
        .args(common::backend_args())
        .args(["--netns", &ns.name, "watch", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = schema::check(Schema::Watch, &lines.next().unwrap().unwrap());
    assert_eq!(ready["type"], "ready");
    let before = peak_kib(child.id());

    // 20,000 additions, each removed at once, while nobody reads: 80,000 changes (each
    // address brings a local route), with a model that stays small, so that what grows is
    // only what is buffered.
    let mut burst = String::new();
    for l in 0..LINKS {
        for i in 0..PER_LINK {
            let a = format!("198.19.{}.{}/32 dev u{l}", l * 8 + i / 250, i % 250 + 1);
            burst.push_str(&format!("addr add {a}\naddr del {a}\n"));
        }
    }
    ns.ip_batch(&burst);
    // A marker after the burst: once its line is read, the monitor has seen everything.
    ns.ip("link set mark0 mtu 1400");
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = child.id();
    // The burst has been sent; the pipe is full: measure before reading.
    let during = peak_kib(pid);
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut last_seq = 0;
    let mut lagged = false;
    let mut lines_read = 0usize;
    loop {
        let l = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the marker's line comes");
        lines_read += 1;
        let v = schema::check(Schema::Watch, &l);
        if let Some(seq) = v["seq"].as_u64() {
            assert!(seq > last_seq, "seq {seq} after {last_seq}");
            last_seq = seq;
        }
        lagged |= v["type"] == "lagged";
        if v["type"] == "interface_changed" && v["name"] == "mark0" && v["mtu"] == 1400 {
            break;
        }
    }
    let after = peak_kib(pid);
    child.kill().unwrap();
    child.wait().unwrap();
    eprintln!(
        "peak RSS {before} KiB at ready, {during} KiB after the burst, {after} KiB after \
         reading {lines_read} lines"
    );
    // Buffering every change (as the unbounded channel did: about 0.9 KB each) would be 70 MB;
    // the monitor's queue holds 4,096 items. (Whether the queue overflows, and a `lagged`
    // line comes, depends on whether the monitor or the reader is the slower: both are fine.)
    assert!(
        after.saturating_sub(before) < 16 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB ({lines_read} lines, lagged: {lagged})"
    );
}
