//! Test helpers shared by the namespace-based integration tests: one type owns each throwaway
//! network namespace and deletes it on drop, even when the test fails.
//!
//! The tests wait on events, not on time: a subscription's next item, a mark in the kernel's
//! notification stream ([`marker`]), a test server's next connection. Each wait is bounded and
//! fails naming what it waited for. `docs/testing.md` says how long the suite takes and why.
//!
//! Addresses used inside: 198.18.0.0/15 and 2001:db8::/32 only.

#![allow(dead_code)]

pub mod kernel;
pub mod lab;
pub mod marker;

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use netreach::{BackendKind, Monitor, MonitorBuilder, Netns};
use serde_json::Value;

/// The poll interval of the suite's polling runs: short, so a change arrives fast.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The backend the suite runs against: the netlink backend, or the polling one with
/// `NETREACH_TEST_BACKEND=polling` (CI runs the suite on both).
pub fn backend() -> BackendKind {
    match std::env::var("NETREACH_TEST_BACKEND").as_deref() {
        Ok("polling") => BackendKind::Polling {
            interval: POLL_INTERVAL,
        },
        Ok("netlink") | Err(_) => BackendKind::Netlink,
        Ok(other) => panic!("NETREACH_TEST_BACKEND={other:?}: expected netlink or polling"),
    }
}

/// True when the suite runs on the polling backend.
pub fn polling() -> bool {
    matches!(backend(), BackendKind::Polling { .. })
}

/// Says loudly that a test does not apply to the polling backend (it proves something only
/// notifications have: a socket overflow, an idle thread), and returns true to skip it.
pub fn netlink_only(what: &str) -> bool {
    if polling() {
        eprintln!("SKIPPED on the polling backend: {what} is a property of the netlink backend");
        return true;
    }
    false
}

/// A monitor builder with the suite's backend.
pub fn builder() -> MonitorBuilder {
    Monitor::builder().backend(backend())
}

/// A monitor of `netns` with the suite's backend.
pub fn monitor_in(netns: Netns) -> Result<Monitor, netreach::Error> {
    builder().netns(netns).build()
}

/// The global flags that put the `netreach` binary on the suite's backend.
pub fn backend_args() -> Vec<String> {
    match backend() {
        BackendKind::Polling { interval } => vec![
            "--backend".into(),
            "polling".into(),
            "--poll-interval".into(),
            format!("{}", interval.as_secs_f64()),
        ],
        _ => Vec::new(),
    }
}

/// Fails loudly when not root: these tests need to create namespaces.
pub fn require_root() {
    let uid = rustix::process::geteuid();
    assert!(
        uid.is_root(),
        "THIS TEST NEEDS ROOT (it creates network namespaces with `ip netns add`); \
         run the suite as root, as CI does"
    );
}

/// A throwaway network namespace, deleted on drop.
#[derive(Debug)]
pub struct Ns {
    pub name: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Ns {
    /// A new empty namespace with a unique name; `lo` is brought up.
    pub fn new(tag: &str) -> Ns {
        require_root();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("nrt-{}-{}-{}", std::process::id(), n, tag);
        run("ip", &["netns", "add", &name]);
        let ns = Ns { name };
        ns.ip("link set lo up");
        ns
    }

    /// The namespace for netreach.
    pub fn netns(&self) -> Netns {
        Netns::named(self.name.clone()).expect("valid name")
    }

    /// Runs `f` on a thread inside this namespace (sockets it opens stay here).
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.netns().run(f).expect("enter the test namespace")
    }

    /// `ip -n NAME ARGS...`, panicking with the error output on failure.
    pub fn ip(&self, args: &str) -> String {
        let mut v = vec!["-n", &self.name];
        v.extend(args.split_whitespace());
        run("ip", &v)
    }

    /// `ip -n NAME ARGS...`, returning the error output on failure.
    pub fn try_ip(&self, args: &str) -> Result<String, String> {
        let mut v = vec!["-n", self.name.as_str()];
        v.extend(args.split_whitespace());
        try_run("ip", &v)
    }

    /// `ip -j -n NAME ARGS...` parsed.
    pub fn ip_json(&self, args: &str) -> Value {
        let mut v = vec!["-j", "-n", &self.name];
        v.extend(args.split_whitespace());
        let out = run("ip", &v);
        if out.trim().is_empty() {
            return Value::Array(vec![]);
        }
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip -j {args}: {e}: {out}"))
    }

    /// Runs many `ip` commands at once from a batch file (`ip -batch`).
    /// The commands go to `ip`'s standard input, so no file is left behind on failure.
    pub fn ip_batch(&self, lines: &str) {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = Command::new("ip")
            .args(["-n", &self.name, "-batch", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ip -batch");
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(lines.as_bytes()).expect("feed ip -batch");
        }
        let out = child.wait_with_output().expect("wait for ip -batch");
        assert!(
            out.status.success(),
            "ip -batch: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A veth pair with both ends here.
    pub fn veth(&self, a: &str, b: &str) {
        self.ip(&format!("link add {a} type veth peer name {b}"));
    }

    /// A veth pair from `a` here to `b` in `other`.
    ///
    /// `a` gets an interface index of its own (from 1000 up). In two fresh namespaces both ends
    /// would have the same index, and the kernel takes a veth whose peer's index equals its own
    /// for one without a peer: linkwatch then reports its carrier with the non-urgent delay, up
    /// to a second later, and the operational state and IPv6 (which waits for it) lag as long.
    pub fn veth_to(&self, a: &str, other: &Ns, b: &str) {
        static INDEX: AtomicU32 = AtomicU32::new(1000);
        let index = INDEX.fetch_add(1, Ordering::Relaxed);
        self.ip(&format!(
            "link add {a} index {index} type veth peer name {b} netns {}",
            other.name
        ));
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

pub fn run(cmd: &str, args: &[&str]) -> String {
    try_run(cmd, args).unwrap_or_else(|e| panic!("{cmd} {}: {e}", args.join(" ")))
}

pub fn try_run(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {cmd}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Waits until `cond` holds, checking every 10 ms; panics with `what` after `timeout`. Only for
/// what no event tells a test without a monitor of its own (the CLI tests' kernel set-up: an
/// address finishing DAD before the binary runs); the library's tests wait on marks instead
/// (see `marker`).
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + timeout;
    while !cond() {
        assert!(
            std::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
