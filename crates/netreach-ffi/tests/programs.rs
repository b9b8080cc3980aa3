//! libnetreach from C and Qt, as applications use it: the CMake package is built from
//! `bindings/` and installed into a prefix, the test programs of `bindings/tests/` are built
//! against the *installed* package (`find_package(NetReach)`), and each runs inside the host
//! namespace of a lab (host, router, server; `crates/netreach/tests/common/lab.rs`) while this
//! test makes the changes and waits for the programs' lines (each wait bounded; no sleep).
//!
//! - The C program drives both monitors through every reason the library's `tests/reach.rs`
//!   covers for a TCP connection, checks misuse, and frees its monitors with events pending,
//!   under Valgrind (no error, no leak) when Valgrind is installed (CI installs it).
//! - The Qt program watches a real `QTcpSocket` with `NetReachConnectionMonitor` and the
//!   network with `NetReachStatusMonitor`: `reachabilityChanged(false)` on link down, `(true)`
//!   back, `onlineStateChanged` when the default routes go and return, all in the main thread.
//!
//! CMake reuses the library this `cargo test` built (`NETREACH_PREBUILT_DIR`): no nested cargo
//! run, so no wait on the build directory's lock.

#![cfg(target_os = "linux")]

#[path = "../../netreach/tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use common::lab::{Lab, V4, V6, ip};

/// How long one expected line may take (Valgrind makes the program 20 to 50 times slower).
const WAIT: Duration = Duration::from_secs(60);

/// True in CI, where a missing tool fails the test instead of skipping it.
fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The programs, built once per run of this test binary; `None` (skipped, said loudly) when
/// CMake or Qt is missing outside CI.
struct Programs {
    dir: PathBuf,
}

fn run_step(what: &str, cmd: &mut Command, log: &Path) {
    let started = Instant::now();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::write(log, &text);
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{text}",
        out.status
    );
    eprintln!("{what}: {:.1} s", started.elapsed().as_secs_f64());
}

fn programs() -> Option<&'static Programs> {
    static BUILT: OnceLock<Option<Programs>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            for tool in ["cmake", "c++", "cc"] {
                if !have(tool) {
                    assert!(!ci(), "{tool} is needed (CI installs it: .ci/run)");
                    eprintln!("SKIPPED: {tool} is not installed; the C and Qt tests need it");
                    return None;
                }
            }
            // target/debug/deps/programs-HASH: cargo built the library for this test in the
            // same directory (cdylib and staticlib beside the rlib; only `cargo build` copies
            // them up to target/debug).
            let exe = std::env::current_exe().expect("test binary path");
            let deps = exe.parent().expect("target/debug/deps");
            assert!(
                deps.join("libnetreach_ffi.so").exists(),
                "no libnetreach_ffi.so in {}",
                deps.display()
            );
            let libs = deps.parent().expect("target/debug");
            let dir = libs.join("ffi-programs");
            let (build, prefix, consumer) =
                (dir.join("build"), dir.join("prefix"), dir.join("consumer"));
            std::fs::create_dir_all(&dir).expect("create the programs' directory");
            let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bindings");
            let cmake = |args: &[&dyn AsRef<std::ffi::OsStr>]| {
                let mut c = Command::new("cmake");
                for a in args {
                    c.arg(a);
                }
                c
            };
            let prebuilt = format!("-DNETREACH_PREBUILT_DIR={}", deps.display());
            run_step(
                "cmake -S bindings (configure)",
                &mut cmake(&[&"-S", &source, &"-B", &build, &prebuilt]),
                &dir.join("configure.log"),
            );
            run_step(
                "cmake --build (the Qt classes)",
                &mut cmake(&[&"--build", &build]),
                &dir.join("build.log"),
            );
            run_step(
                "cmake --install",
                &mut cmake(&[&"--install", &build, &"--prefix", &prefix]),
                &dir.join("install.log"),
            );
            for f in [
                "include/netreach.h",
                "include/netreach_qt.h",
                "lib/libnetreach.so.0",
                "lib/libnetreach.a",
                "lib/pkgconfig/netreach.pc",
                "lib/cmake/NetReach/NetReachConfig.cmake",
            ] {
                assert!(prefix.join(f).exists(), "the package installs {f}");
            }
            let prefix_path = format!("-DCMAKE_PREFIX_PATH={}", prefix.display());
            run_step(
                "cmake -S bindings/tests (find_package(NetReach))",
                &mut cmake(&[&"-S", &source.join("tests"), &"-B", &consumer, &prefix_path]),
                &dir.join("consumer-configure.log"),
            );
            run_step(
                "cmake --build (the test programs)",
                &mut cmake(&[&"--build", &consumer]),
                &dir.join("consumer-build.log"),
            );
            // The pkg-config file works too: the C program, compiled and linked by it alone.
            if have("pkg-config") {
                let flags = Command::new("pkg-config")
                    .args(["--cflags", "--libs", "netreach"])
                    .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
                    .output()
                    .expect("pkg-config");
                assert!(flags.status.success(), "pkg-config --libs netreach");
                let flags = String::from_utf8_lossy(&flags.stdout).into_owned();
                let mut cc = Command::new("cc");
                cc.arg(source.join("tests/c_driver.c"))
                    .arg("-o")
                    .arg(consumer.join("netreach-c-driver-pc"))
                    .args(flags.split_whitespace())
                    // Not installed system-wide: the loader is told where.
                    .arg(format!("-Wl,-rpath,{}", prefix.join("lib").display()));
                run_step("cc $(pkg-config netreach)", &mut cc, &dir.join("pc.log"));
            } else {
                assert!(!ci(), "pkg-config is needed (CI installs it)");
                eprintln!("SKIPPED: pkg-config is not installed; netreach.pc is not tried");
            }
            Some(Programs { dir: consumer })
        })
        .as_ref()
}

/// A test program running in a namespace, read line by line.
struct Program {
    name: String,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    /// Every line read so far, for failure messages.
    seen: Vec<String>,
    /// Lines read but not matched yet.
    pending: Vec<String>,
}

impl Program {
    fn start(ns: &str, wrapper: &[String], program: &Path) -> Program {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(wrapper)
            .arg(program)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take().expect("stdin");
        Program {
            name: program.file_name().unwrap().to_string_lossy().into_owned(),
            child,
            stdin,
            lines,
            seen: Vec::new(),
            pending: Vec::new(),
        }
    }

    fn send(&mut self, command: &str) {
        writeln!(self.stdin, "{command}")
            .unwrap_or_else(|e| panic!("{}: {command}: {e}", self.name));
        self.stdin.flush().expect("flush");
    }

    /// Waits until, for each pattern, a line not matched before contains all of its words
    /// (in any order of lines), and returns those lines. Lines that match nothing stay for
    /// later waits, except, with `prune`, those read before the last line matched: the events
    /// a change made before the one waited for are history.
    fn expect_all(&mut self, what: &str, patterns: &[&str]) -> Vec<String> {
        self.wait_for(what, patterns, true)
    }

    fn wait_for(&mut self, what: &str, patterns: &[&str], prune: bool) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut found: Vec<Option<String>> = vec![None; patterns.len()];
        loop {
            let mut kept = Vec::new();
            for line in std::mem::take(&mut self.pending) {
                match (0..patterns.len())
                    .find(|&i| found[i].is_none() && line_matches(&line, patterns[i]))
                {
                    Some(i) => {
                        found[i] = Some(line);
                        if prune {
                            kept.clear();
                        }
                    }
                    None => kept.push(line),
                }
            }
            self.pending = kept;
            if found.iter().all(Option::is_some) {
                let took = WAIT.saturating_sub(deadline.saturating_duration_since(Instant::now()));
                if took > Duration::from_secs(5) {
                    eprintln!("{}: {what} took {:.1} s", self.name, took.as_secs_f64());
                }
                return found.into_iter().map(Option::unwrap).collect();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    self.pending.push(line);
                }
                Err(e) => {
                    let why = match e {
                        RecvTimeoutError::Timeout => "timed out",
                        RecvTimeoutError::Disconnected => "the program ended",
                    };
                    let _ = self.child.kill();
                    let stderr = self
                        .child
                        .stderr
                        .take()
                        .map(|mut s| {
                            let mut t = String::new();
                            let _ = std::io::Read::read_to_string(&mut s, &mut t);
                            t
                        })
                        .unwrap_or_default();
                    panic!(
                        "{}: {why} waiting for {what}: {patterns:?} (found {found:?})\n\
                         its output:\n{}\nits errors:\n{stderr}",
                        self.name,
                        self.seen.join("\n")
                    );
                }
            }
        }
    }

    fn expect(&mut self, what: &str, pattern: &str) -> String {
        self.expect_all(what, &[pattern]).remove(0)
    }

    /// Sends a command and waits for its answer.
    fn ask(&mut self, command: &str, answer: &str) -> String {
        self.send(command);
        self.wait_for(command, &[answer], false).remove(0)
    }

    /// Ends the program with `quit`, and returns its error output once it exited with 0.
    fn finish(mut self) -> String {
        self.ask("quit", "bye");
        drop(self.stdin);
        let out = self.child.wait_with_output().expect("wait for the program");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "{} exited with {}:\n{stderr}",
            self.name,
            out.status
        );
        stderr
    }
}

/// A line matches a pattern when it starts with the pattern's first word and has each of the
/// others as a word (or a word's start, for `path=via`).
fn line_matches(line: &str, pattern: &str) -> bool {
    let mut words = pattern.split_whitespace();
    let Some(first) = words.next() else {
        return true;
    };
    let have: Vec<&str> = line.split_whitespace().collect();
    have.first().is_some_and(|w| *w == first)
        && words.all(|w| have.iter().any(|h| h == &w || h.starts_with(w)))
}

/// A TCP listener in the lab's server namespace that accepts one connection and keeps it.
fn serve(lab: &Lab, server: &str, port: u16) -> std::thread::JoinHandle<()> {
    let addr = SocketAddr::new(ip(server), port);
    let listener = common::lab::in_netns(&lab.server, move || TcpListener::bind(addr))
        .unwrap_or_else(|e| panic!("listen on {addr}: {e}"));
    listener.set_nonblocking(false).expect("blocking");
    std::thread::spawn(move || {
        // Bounded: the program connects at once, or the test has failed already.
        if let Ok((stream, _)) = listener.accept() {
            let mut buf = [0u8; 1];
            let _ = stream.set_read_timeout(Some(Duration::from_secs(300)));
            let _ = std::io::Read::read(&mut &stream, &mut buf);
        }
    })
}

/// An HTTP server in the lab's server namespace answering `204 No Content` to each request,
/// as a probe endpoint does, for 60 s at most.
fn probe_endpoint(lab: &Lab, port: u16) -> std::thread::JoinHandle<()> {
    let addr = SocketAddr::new(ip(V4.server), port);
    let listener = common::lab::in_netns(&lab.server, move || TcpListener::bind(addr))
        .unwrap_or_else(|e| panic!("listen on {addr}: {e}"));
    listener.set_nonblocking(true).expect("non-blocking");
    std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(60);
        while Instant::now() < end {
            let fd = std::os::fd::AsFd::as_fd(&listener);
            let mut p = [rustix::event::PollFd::new(
                &fd,
                rustix::event::PollFlags::IN,
            )];
            let wait = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 200_000_000,
            };
            if rustix::event::poll(&mut p, Some(&wait)).unwrap_or(0) == 0 {
                continue;
            }
            let Ok((mut s, _)) = listener.accept() else {
                continue;
            };
            let _ = s.set_nonblocking(false);
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 2048];
            let _ = std::io::Read::read(&mut s, &mut buf);
            let _ = s.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        }
    })
}

/// The Valgrind command line, or none (said loudly) when it is missing outside CI.
fn valgrind() -> Vec<String> {
    if !have("valgrind") {
        assert!(!ci(), "valgrind is needed (CI installs it: .ci/run)");
        eprintln!("SKIPPED: valgrind is not installed; the C program runs without it");
        return Vec::new();
    }
    [
        "valgrind",
        "--error-exitcode=99",
        "--leak-check=full",
        "--errors-for-leak-kinds=definite,indirect",
        "--show-leak-kinds=definite,indirect",
        "--track-fds=no",
    ]
    .map(String::from)
    .into()
}

#[test]
fn the_c_program_sees_every_reason_and_runs_clean_under_valgrind() {
    let Some(p) = programs() else { return };
    let lab = Lab::new("fc");
    let _server = serve(&lab, V4.server, 4041);
    let _server6 = serve(&lab, V6.server, 4043);
    let wrapper = valgrind();
    let mut c = Program::start(&lab.host.name, &wrapper, &p.dir.join("netreach-c-driver"));
    c.expect("start", "hello");
    c.ask("misuse", "misuse ok");
    c.ask(
        "start nrt-ffi-no-such-ns",
        "error NETREACH_RESULT_NAMESPACE_NOT_FOUND",
    );
    c.ask("start", "started");
    c.ask(
        "status",
        "status online=1 overall=internet ipv4=internet primary=h0",
    );

    let tcp = c.ask(&format!("connect {} 4041", V4.server), "added");
    let tcp = tcp.split_whitespace().nth(1).expect("id").to_owned();
    let near = c.ask(&format!("add {} {}", V4.host, V4.gateway), "added");
    let near = near.split_whitespace().nth(1).expect("id").to_owned();
    // Bad input: its code, and nothing changes.
    c.ask(
        &format!("add 0.0.0.0 {}", V4.server),
        "error NETREACH_RESULT_UNSPECIFIED_LOCAL",
    );
    c.ask(
        &format!("add {} 2001:db8:30::2", V4.host),
        "error NETREACH_RESULT_FAMILY_MISMATCH",
    );
    c.ask(
        &format!("add {} 198.18.30.300", V4.host),
        "error NETREACH_RESULT_INVALID_ADDRESS",
    );
    c.ask(
        &format!("add {} {} nrt-nosuch0", V4.host, V4.server),
        "error NETREACH_RESULT_UNKNOWN_INTERFACE",
    );
    c.ask("len", "len 2");
    let tcp_is = |what: &str| format!("event conn {tcp} {what}");
    c.expect_all(
        "first reports",
        &[
            &tcp_is("reachable iface=h0 path=via"),
            &format!("event conn {near} reachable iface=h0"),
        ],
    );
    c.ask(
        &format!("state {tcp}"),
        &format!("state {tcp} reachable iface=h0"),
    );

    let host = &lab.host;
    // Carrier: the router's side goes down; the status goes offline with it.
    lab.router.ip("link set r0 down");
    c.expect_all(
        "router side down",
        &[
            &tcp_is("unreachable reason=carrier_lost iface=h0"),
            "event status online=0",
        ],
    );
    lab.router.ip("link set r0 up");
    c.expect_all(
        "router side up",
        &[&tcp_is("reachable iface=h0"), "event status online=1"],
    );
    // The host's own side goes down.
    host.ip("link set h0 down");
    c.expect(
        "host side down",
        &tcp_is("unreachable reason=interface_down iface=h0"),
    );
    lab.restore_host();
    c.expect("host side up", &tcp_is("reachable iface=h0 path=via"));
    // The local address goes.
    host.ip(&format!("addr del {}/{} dev h0", V4.host, V4.len));
    c.expect(
        "address removed",
        &tcp_is("unreachable reason=local_address_removed"),
    );
    lab.restore_host();
    c.expect("address back", &tcp_is("reachable iface=h0 path=via"));
    // The default routes go (both families, so the machine is offline), then come back.
    host.ip("-4 route del default");
    host.ip("-6 route del default");
    c.expect_all(
        "default routes deleted",
        &[
            &tcp_is("unreachable reason=no_route"),
            "event status online=0 overall=site",
        ],
    );
    lab.restore_host();
    c.expect_all(
        "default routes back",
        &[
            &tcp_is("reachable"),
            "event status online=1 overall=internet",
        ],
    );
    // Routes that reject traffic.
    for kind in ["blackhole", "unreachable", "prohibit"] {
        host.ip(&format!("-4 route add {kind} {}", V4.server_net));
        c.expect(
            kind,
            &tcp_is(&format!("unreachable reason=route_type route_type={kind}")),
        );
        host.ip(&format!("-4 route del {kind} {}", V4.server_net));
        c.expect(kind, &tcp_is("reachable iface=h0"));
    }
    // A more specific route through the other interface.
    host.ip(&format!(
        "-4 route add {} via {} dev h1",
        V4.server_net, V4.gateway1
    ));
    c.expect(
        "route via h1",
        &tcp_is("unreachable reason=interface_mismatch iface=h1"),
    );
    host.ip(&format!("-4 route del {}", V4.server_net));
    c.expect("route via h1 gone", &tcp_is("reachable iface=h0"));

    // IPv6: a TCP connection of its own, its carrier and its default route; the IPv4 default
    // route stays, and so does the status (online).
    let tcp6 = c.ask(&format!("connect {} 4043", V6.server), "added");
    let tcp6 = tcp6.split_whitespace().nth(1).expect("id").to_owned();
    let tcp6_is = |what: &str| format!("event conn {tcp6} {what}");
    c.expect("IPv6 first report", &tcp6_is("reachable iface=h0 path=via"));
    lab.router.ip("link set r0 down");
    c.expect_all(
        "router side down (IPv6)",
        &[
            &tcp6_is("unreachable reason=carrier_lost iface=h0"),
            &tcp_is("unreachable reason=carrier_lost iface=h0"),
        ],
    );
    lab.router.ip("link set r0 up");
    c.expect_all(
        "router side up (IPv6)",
        &[
            &tcp6_is("reachable iface=h0"),
            &tcp_is("reachable iface=h0"),
        ],
    );
    host.ip("-6 route del default");
    c.expect(
        "IPv6 default route deleted",
        &tcp6_is("unreachable reason=no_route"),
    );
    c.ask("status", "status online=1 ipv4=internet");
    lab.restore_host();
    c.expect(
        "IPv6 default route back",
        &tcp6_is("reachable iface=h0 path=via"),
    );
    c.ask(&format!("remove {tcp6}"), "removed");

    c.ask(&format!("remove {near}"), "removed");
    c.ask(
        &format!("remove {near}"),
        "error NETREACH_RESULT_UNKNOWN_TARGET",
    );
    c.ask("len", "len 1");

    // Verified internet: a status monitor that probes the lab's endpoint sees it answer.
    let _endpoint = probe_endpoint(&lab, 8204);
    c.ask(
        &format!("probe http://{}:8204/generate_204", V4.server),
        "probing",
    );
    c.expect(
        "the probe's verdict",
        "event status kind=1 online=1 verified=4",
    );
    c.ask("status", "status online=1 verified=4");

    // Freed with events pending: nothing drains them, the link goes, both descriptors are
    // readable, and the handles go with whatever they hold.
    c.ask("hold", "holding");
    lab.router.ip("link set r0 down");
    c.ask("wait-pending", "pending");
    c.ask("free", "freed");
    let stderr = c.finish();
    if !wrapper.is_empty() {
        assert!(
            stderr.contains("ERROR SUMMARY: 0 errors"),
            "Valgrind found errors:\n{stderr}"
        );
    }
}

#[test]
fn the_static_and_pkg_config_builds_run() {
    let Some(p) = programs() else { return };
    for program in ["netreach-c-driver-static", "netreach-c-driver-pc"] {
        let path = p.dir.join(program);
        if !path.exists() {
            assert!(!ci(), "{program} was built");
            continue;
        }
        let ns = common::Ns::new("fs");
        let mut c = Program::start(&ns.name, &[], &path);
        c.expect("start", "hello");
        c.ask("misuse", "misuse ok");
        // Only lo: no default route, offline.
        c.ask("start", "started");
        c.ask("status", "status online=0");
        c.finish();
    }
}

#[test]
fn the_qt_classes_follow_a_real_tcp_socket_and_the_default_routes() {
    let Some(p) = programs() else { return };
    let path = p.dir.join("netreach-qt-driver");
    if !path.exists() {
        assert!(!ci(), "the Qt program was built (CI installs qt6-base-dev)");
        eprintln!("SKIPPED: Qt 6 is not installed; the Qt classes are not tested");
        return;
    }
    let lab = Lab::new("fq");
    let _server = serve(&lab, V4.server, 4042);
    let mut q = Program::start(&lab.host.name, &[], &path);
    q.expect("start", "hello enabled=1");
    q.expect(
        "the status monitor",
        "status started=1 online=1 level=3 ipv4=3 primary=h0",
    );
    q.ask(
        &format!("connect {} 4042", V4.server),
        &format!("connected {} {}", V4.host, V4.server),
    );
    q.ask(
        "watch",
        "watch unspecified=0 null=0 ok=1 mismatch=0 monitoring=1 while-monitoring=0 \
         reachable=1 path=via",
    );

    lab.router.ip("link set r0 down");
    q.expect_all(
        "link down",
        &[
            "reachabilityChanged 0 thread=main",
            "details 0 reason=carrier_lost path=- thread=main",
            "onlineStateChanged 0 thread=main",
        ],
    );
    lab.router.ip("link set r0 up");
    q.expect_all(
        "link up",
        &[
            "reachabilityChanged 1 thread=main",
            "onlineStateChanged 1 thread=main",
        ],
    );
    lab.host.ip("-4 route del default");
    lab.host.ip("-6 route del default");
    q.expect_all(
        "default routes gone",
        &[
            "onlineStateChanged 0 thread=main",
            "reachabilityChanged 0 thread=main",
            "details 0 reason=no_route",
        ],
    );
    lab.restore_host();
    q.expect_all(
        "default routes back",
        &[
            "onlineStateChanged 1 thread=main",
            "reachabilityChanged 1 thread=main",
        ],
    );
    q.ask(
        "badstart",
        "badstart start=0 monitoring=0 reachable=0 unassigned-start=0 \
         unassigned-monitoring=0 error=yes",
    );
    q.finish();
}
