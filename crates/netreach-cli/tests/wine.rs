//! The Windows binary under Wine, in a network namespace of the test's own: Wine's IP Helper
//! reports the Linux namespace it runs in, so `netreach.exe` must show what `ip -j` shows, see
//! an address added (through the polling fallback: Wine's change notifications are stubs that
//! return no handle), answer a reachability question from the model's routes (Wine's
//! `GetBestRoute2` is a stub), and exit as documented.
//!
//! The `.exe` is built by `.ci/run` (`.ci/windows-check`, the recipe of `docs/windows.md`) and
//! named by `NETREACH_WINDOWS_EXE`. Without it, or without Wine, or without the MinGW compiler
//! (for the `ProcessPrng` stub below), every test fails loudly in CI (`CI=true`) and is skipped
//! loudly elsewhere.
//!
//! Each test makes its own Wine prefix (`wineboot -i`) inside its namespace, so that Wine's
//! services (which answer the IP Helper calls) run there, and kills that prefix's wineserver at
//! the end. Rust's std imports `ProcessPrng` from `bcryptprimitives.dll`, which Wine 8.0 lacks:
//! each test builds a stub DLL with MinGW that forwards to `RtlGenRandom`, next to the `.exe`.
//! A mock only in that one function: everything else is Wine's.

// Network namespaces, and Wine: Linux only.
#![cfg(target_os = "linux")]

#[path = "../../netreach/tests/common/mod.rs"]
mod common;
mod schema;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Ns;
use schema::{Schema, Stream};
use serde_json::Value;

/// How long Wine may take to make a prefix or run one command (a debug `.exe`, two cores shared
/// with the rest of the suite).
const WINE_WAIT: Duration = Duration::from_secs(120);
/// The polling fallback's interval (`BackendKind::DEFAULT_POLL_INTERVAL`).
const POLL: Duration = Duration::from_secs(2);

/// The stub: `ProcessPrng` as Rust's std calls it, from `RtlGenRandom`.
const PRNG_STUB: &str = r#"
#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG len);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, n)) return FALSE;
        data += n; len -= n;
    }
    return TRUE;
}
"#;

/// What a test needs, or why it cannot run.
struct Tools {
    exe: PathBuf,
    wine: PathBuf,
    wineserver: PathBuf,
    gcc: PathBuf,
}

fn tools() -> Result<Tools, String> {
    let exe = std::env::var_os("NETREACH_WINDOWS_EXE")
        .map(PathBuf::from)
        .ok_or(
            "NETREACH_WINDOWS_EXE is not set (.ci/run sets it after building the Windows binary)",
        )?;
    if !exe.is_file() {
        return Err(format!(
            "NETREACH_WINDOWS_EXE={} is not a file",
            exe.display()
        ));
    }
    let find = |names: &[&str]| {
        names
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or_else(|| {
                format!(
                    "none of {names:?} exists (apt-get install wine64 gcc-mingw-w64-x86-64-posix)"
                )
            })
    };
    Ok(Tools {
        exe,
        wine: find(&["/usr/lib/wine/wine64", "/usr/bin/wine64"])?,
        wineserver: find(&["/usr/lib/wine/wineserver64", "/usr/lib/wine/wineserver"])?,
        gcc: find(&["/usr/bin/x86_64-w64-mingw32-gcc"])?,
    })
}

/// The tools, or `None` after saying loudly why the test is skipped; in CI, a failure.
fn tools_or_skip() -> Option<Tools> {
    if common::polling() {
        // The .exe picks its own backend; the suite's polling pass would only run it again.
        eprintln!(
            "SKIPPED: Wine smoke test under NETREACH_TEST_BACKEND=polling (it runs in the default pass)"
        );
        return None;
    }
    match tools() {
        Ok(t) => Some(t),
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("the Wine test cannot run in CI: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED: Wine smoke test: {why}");
            None
        }
    }
}

/// A namespace with a Wine prefix in it; dropping it kills the prefix's processes, removes the
/// prefix and deletes the namespace.
struct Wine {
    tools: Tools,
    dir: PathBuf,
    ns: Ns,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Wine {
    /// The namespace: `lo`, a veth pair `w0`/`w1` (both here, up, no IPv6 link-local
    /// addresses so that nothing changes by itself), 198.18.7.1/24 and 2001:db8:7::1/64 on w0.
    fn new(tools: Tools, tag: &str) -> Wine {
        let ns = Ns::new(tag);
        for sysctl in [
            "net.ipv6.conf.default.addr_gen_mode=1",
            "net.ipv6.conf.all.addr_gen_mode=1",
        ] {
            common::run("ip", &["netns", "exec", &ns.name, "sysctl", "-qw", sysctl]);
        }
        ns.veth("w0", "w1");
        ns.ip("link set w0 up");
        ns.ip("link set w1 up");
        ns.ip("addr add 198.18.7.1/24 dev w0");
        ns.ip("addr add 2001:db8:7::1/64 dev w0 nodad");
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("wine-{}-{n}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).expect("make the test's directory");
        let wine = Wine { tools, dir, ns };
        wine.prepare();
        wine
    }

    fn bin(&self) -> PathBuf {
        self.dir.join("bin")
    }

    fn prefix(&self) -> PathBuf {
        self.dir.join("prefix")
    }

    /// The `.exe` (linked, not copied) and the stub DLL beside it, and the prefix.
    fn prepare(&self) {
        let exe = self.bin().join("netreach.exe");
        std::os::unix::fs::symlink(&self.tools.exe, &exe).expect("link the .exe");
        let src = self.dir.join("prng.c");
        std::fs::write(&src, PRNG_STUB).expect("write the stub");
        let out = Command::new(&self.tools.gcc)
            .args(["-shared", "-O2", "-o"])
            .arg(self.bin().join("bcryptprimitives.dll"))
            .arg(&src)
            .arg("-ladvapi32")
            .output()
            .expect("run x86_64-w64-mingw32-gcc");
        assert!(
            out.status.success(),
            "building the ProcessPrng stub: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let t = Instant::now();
        let out = bounded(self.command(&[]).arg("wineboot").arg("-i"), "wineboot -i");
        eprintln!("wineboot -i: {:?}", t.elapsed());
        assert!(
            out.status.success(),
            "wineboot -i failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `ip netns exec NS wine64 ARGS...` with this prefix.
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns.name])
            .arg(&self.tools.wine)
            .args(args)
            .env("WINEPREFIX", self.prefix())
            .env("WINEDEBUG", "-all")
            // The stub before Wine's own DLL; no Mono or Gecko installers, no menu entries.
            // No debugger either: a process that faults ends at once with its exception's code
            // (which the exit code checks catch) instead of waiting in winedbg.
            .env(
                "WINEDLLOVERRIDES",
                "bcryptprimitives=n,b;mscoree=;mshtml=;winemenubuilder.exe=;winedbg.exe=d",
            )
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::null());
        c
    }

    /// `wine netreach.exe ARGS...`.
    fn netreach(&self, args: &[&str]) -> Command {
        let exe = self.bin().join("netreach.exe");
        let mut c = self.command(&[]);
        c.arg(exe).args(args);
        c
    }

    /// Runs `netreach.exe ARGS...` to its end.
    fn run(&self, args: &[&str]) -> Output {
        let out = bounded(
            &mut self.netreach(args),
            &format!("netreach.exe {}", args.join(" ")),
        );
        assert_clean(&out.stderr);
        out
    }
}

impl Drop for Wine {
    fn drop(&mut self) {
        let _ = Command::new(&self.tools.wineserver)
            .arg("-k")
            .env("WINEPREFIX", self.prefix())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `cmd` to its end, at most [`WINE_WAIT`]; a command that takes longer is killed and
/// fails the test.
fn bounded(cmd: &mut Command, what: &str) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {what}: {e}"));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(WINE_WAIT) {
        Ok(out) => out.unwrap_or_else(|e| panic!("wait for {what}: {e}")),
        Err(_) => {
            kill(pid);
            panic!("{what} did not end within {WINE_WAIT:?}");
        }
    }
}

fn kill(pid: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// No panic. A fault of netreach.exe's shows in its exit code (an exception code, never 0, 1
/// or 2), which every test checks. Wine's own helpers share the console, and Wine 8.0's
/// `services.exe` was seen to fault now and then while the NLM was activated (in long-lived
/// prefixes, by hand): said, not failed (docs/windows.md).
fn assert_clean(stderr: &[u8]) {
    let text = String::from_utf8_lossy(stderr);
    assert!(!text.contains("panicked"), "a panic: {text}");
    if text.contains("Unhandled") {
        eprintln!("NOTE: a Wine process faulted beside netreach.exe: {text}");
    }
}

/// `ip -j ...` in the namespace.
fn ip_json(ns: &Ns, args: &str) -> Value {
    ns.ip_json(args)
}

#[test]
fn status_lists_the_namespace_as_ip_shows_it() {
    let Some(tools) = tools_or_skip() else {
        return;
    };
    let wine = Wine::new(tools, "wst");
    wine.ns.ip("route add default via 198.18.7.2 dev w0");
    let out = wine.run(&["status", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "one document: {text}");
    let v = schema::check(Schema::Status, &text);

    // The interfaces: index, name, MTU, MAC as the kernel has them.
    let seen: BTreeSet<(u64, String, u64, String)> = v["interfaces"]
        .as_array()
        .expect("interfaces")
        .iter()
        .map(|i| {
            (
                i["index"].as_u64().unwrap(),
                i["name"].as_str().unwrap().to_owned(),
                i["mtu"].as_u64().unwrap(),
                i["mac"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let kernel: BTreeSet<(u64, String, u64, String)> = ip_json(&wine.ns, "link show")
        .as_array()
        .expect("ip -j link")
        .iter()
        .map(|l| {
            let mac = match l["link_type"].as_str() {
                Some("loopback") => String::new(),
                _ => l["address"].as_str().unwrap_or("").to_owned(),
            };
            (
                l["ifindex"].as_u64().unwrap(),
                l["ifname"].as_str().unwrap().to_owned(),
                l["mtu"].as_u64().unwrap(),
                mac,
            )
        })
        .collect();
    assert_eq!(seen, kernel, "interfaces: netreach.exe vs ip -j link");

    // Every address, by interface.
    let seen: BTreeSet<(String, String, u64)> = v["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| {
            let name = i["name"].as_str().unwrap().to_owned();
            i["addresses"].as_array().unwrap().iter().map(move |a| {
                (
                    name.clone(),
                    a["address"].as_str().unwrap().to_owned(),
                    a["prefix_len"].as_u64().unwrap(),
                )
            })
        })
        .collect();
    let kernel: BTreeSet<(String, String, u64)> = ip_json(&wine.ns, "addr show")
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| {
            let name = l["ifname"].as_str().unwrap().to_owned();
            l["addr_info"].as_array().unwrap().iter().map(move |a| {
                (
                    name.clone(),
                    a["local"].as_str().unwrap().to_owned(),
                    a["prefixlen"].as_u64().unwrap(),
                )
            })
        })
        .collect();
    assert_eq!(seen, kernel, "addresses: netreach.exe vs ip -j addr");
    assert!(seen.contains(&("w0".into(), "2001:db8:7::1".into(), 64)));

    // The IPv4 routes of the main table (Wine's GetIpForwardTable2 reports no IPv6 routes).
    let seen: BTreeSet<(String, String)> = v["routes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["family"] == "ipv4")
        .map(|r| {
            (
                r["destination"].as_str().unwrap().to_owned(),
                r["interface"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let kernel: BTreeSet<(String, String)> = ip_json(&wine.ns, "-4 route show table main")
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let dst = match r["dst"].as_str().unwrap() {
                "default" => "0.0.0.0/0".to_owned(),
                d if d.contains('/') => d.to_owned(),
                d => format!("{d}/32"),
            };
            (dst, r["dev"].as_str().unwrap_or("").to_owned())
        })
        .collect();
    assert_eq!(seen, kernel, "IPv4 routes: netreach.exe vs ip -j route");

    // The level, from the routes: a default route through a running interface.
    let c = &v["connectivity"];
    assert_eq!(c["ipv4"], "internet", "{c}");
    assert_eq!(c["overall"], "internet", "{c}");
    assert_eq!(c["online"], true, "{c}");
    assert_eq!(c["primary_interface"], "w0", "{c}");

    // The Network List Manager, read on its own COM thread: Wine's answers GetConnectivity and
    // GetCost (from its own view of the network, not netreach's), so the hint is there.
    let hint = &v["system_hint"];
    assert!(hint.is_object(), "the NLM hint: {v}");
    assert_eq!(hint["metered"], false, "{hint}");
}

#[test]
fn watch_reports_an_added_address_within_one_poll_interval() {
    let Some(tools) = tools_or_skip() else {
        return;
    };
    let wine = Wine::new(tools, "wwa");
    let mut child: Child = wine
        .netreach(&["watch", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start netreach.exe watch");
    let pid = child.id();
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, lines) = mpsc::channel();
    let (done_tx, reader_done) = mpsc::channel();
    // Reads until the receiver is gone: the line after that closes the pipe (stdout is
    // dropped with the thread's reader).
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
        let _ = done_tx.send(());
    });
    let errors = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = std::io::Read::read_to_end(&mut BufReader::new(stderr), &mut text);
        text
    });
    let (status_tx, status_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = status_tx.send(child.wait());
    });
    let mut stream = Stream::new(Schema::Watch);
    let next = |what: &str, timeout: Duration| -> String {
        lines.recv_timeout(timeout).unwrap_or_else(|_| {
            kill(pid);
            panic!("netreach.exe watch: no {what} line within {timeout:?}")
        })
    };

    let ready = stream.line(&next("ready", WINE_WAIT));
    assert_eq!(ready["type"], "ready", "{ready}");

    wine.ns.ip("addr add 198.18.7.9/24 dev w0");
    let added_at = Instant::now();
    // Within one poll interval (the first poll after `ready` is one interval after the read
    // that `ready` shows, so about 2 s here), with 1.5 s for Wine's read of the tables and the
    // print of a debug build on a busy machine: two polls would be 4 s.
    let deadline = added_at + POLL + Duration::from_millis(1500);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = stream.line(&next("address_added for 198.18.7.9", left));
        if line["type"] == "address_added" && line["address"] == "198.18.7.9" {
            assert_eq!(line["interface"], "w0", "{line}");
            assert_eq!(line["prefix_len"], 24, "{line}");
            break;
        }
    }
    eprintln!("address_added {:?} after ip addr add", added_at.elapsed());

    // A closed output ends `watch` with 0 (documented): close it (the reader stops at the
    // next line), make a change for it to write, and wait for the exit.
    drop(lines);
    wine.ns.ip("addr add 198.18.7.10/24 dev w0");
    if reader_done.recv_timeout(WINE_WAIT).is_err() {
        kill(pid);
        panic!("netreach.exe watch printed nothing for 198.18.7.10");
    }
    wine.ns.ip("addr add 198.18.7.11/24 dev w0");
    let status = match status_rx.recv_timeout(WINE_WAIT) {
        Ok(s) => s.expect("wait for netreach.exe"),
        Err(_) => {
            kill(pid);
            panic!("netreach.exe watch did not end after its output was closed");
        }
    };
    let err = errors.join().unwrap_or_default();
    assert_clean(&err);
    assert_eq!(
        status.code(),
        Some(0),
        "watch after its output closed: {}",
        String::from_utf8_lossy(&err)
    );
}

#[test]
fn reach_answers_an_on_link_remote_from_the_model_and_exits_as_documented() {
    let Some(tools) = tools_or_skip() else {
        return;
    };
    let wine = Wine::new(tools, "wre");

    let out = wine.run(&["reach", "198.18.7.2", "--local", "198.18.7.1", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "reachable exits 0: {text}");
    let v = schema::check(Schema::Reach, &text);
    assert_eq!(v["reachable"], true, "{v}");
    assert_eq!(v["interface"], "w0", "{v}");
    assert_eq!(v["gateway"], Value::Null, "on link: {v}");
    assert_eq!(v["local"], "198.18.7.1", "{v}");
    // Wine's GetBestRoute2 is a stub: the route came from the model.
    assert_eq!(v["lookup"], "model", "{v}");

    // No route: unreachable, exit 1.
    let out = wine.run(&["reach", "198.19.0.1", "--local", "198.18.7.1", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "unreachable exits 1: {text}");
    let v = schema::check(Schema::Reach, &text);
    assert_eq!(v["reachable"], false, "{v}");
    assert_eq!(v["reason"]["kind"], "no_route", "{v}");

    // Bad input: a local address this host does not have is one line on stderr and exit 2.
    let out = wine.run(&["reach", "198.18.7.2", "--local", "198.18.99.1", "--json"]);
    assert_eq!(out.status.code(), Some(2), "bad input exits 2");
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
}
