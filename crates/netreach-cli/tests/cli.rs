//! The `netreach` binary against the real kernel, in throwaway namespaces.

// Every test here builds network namespaces, which only Linux has.
#![cfg(target_os = "linux")]

#[path = "../../netreach/tests/common/mod.rs"]
mod common;
mod schema;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::Ns;
use schema::{Schema, Stream};
use serde_json::Value;

fn netreach() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_netreach"));
    c.args(common::backend_args());
    c
}

#[test]
fn status_json_matches_ip_j() {
    status_json_matches_ip_j_with(&[]);
}

/// The polling backend reads the same dump: its status is the kernel's too.
#[test]
fn polling_status_json_matches_ip_j() {
    status_json_matches_ip_j_with(&["--backend", "polling", "--poll-interval", "0.1"]);
}

fn status_json_matches_ip_j_with(backend: &[&str]) {
    let ns = Ns::new("clistat");
    let peer = Ns::new("clipeer");
    ns.veth_to("c0", &peer, "p0");
    peer.ip("link set p0 up");
    ns.ip("link set c0 up");
    ns.ip("addr add 198.18.4.2/24 dev c0");
    ns.ip("addr add 2001:db8:4::2/64 dev c0 nodad");
    ns.ip("route add default via 198.18.4.1");
    ns.ip("route add blackhole 198.19.9.0/24 table 7");
    // The kernel changes on its own for a moment after set-up (IPv6 link-local addresses
    // appear and finish DAD): take a reading where `ip` agrees before and after netreach's.
    let (v, kernel) = (0..50)
        .find_map(|_| {
            let before = ns.ip_json("addr show");
            // The backend asked for, not the suite's (a second --backend is bad input).
            let mut command = match backend {
                [] => netreach(),
                _ => Command::new(env!("CARGO_BIN_EXE_netreach")),
            };
            let out = command
                .args(backend)
                .args(["--netns", &ns.name, "status", "--json"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v = schema::check(Schema::Status, &String::from_utf8_lossy(&out.stdout));
            let after = ns.ip_json("addr show");
            if before == after {
                Some((v, after))
            } else {
                std::thread::sleep(std::time::Duration::from_millis(200));
                None
            }
        })
        .expect("the namespace settles");

    // Interfaces and their addresses.
    let ours = v["interfaces"].as_array().unwrap();
    assert_eq!(ours.len(), kernel.as_array().unwrap().len());
    for k in kernel.as_array().unwrap() {
        let o = ours
            .iter()
            .find(|o| o["index"] == k["ifindex"])
            .unwrap_or_else(|| panic!("missing {k}"));
        assert_eq!(o["name"], k["ifname"]);
        assert_eq!(o["mtu"], k["mtu"]);
        let flags: Vec<&str> = k["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert_eq!(o["admin_up"], flags.contains(&"UP"));
        assert_eq!(o["carrier"], flags.contains(&"LOWER_UP"));
        assert_eq!(
            o["oper_state"],
            k["operstate"].as_str().unwrap().to_lowercase()
        );
        for key in ["kind", "mac"] {
            assert!(o.get(key).is_some(), "{key} present");
        }
        let mut ka: Vec<_> = k["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["local"].as_str().unwrap().to_owned(),
                    a["prefixlen"].as_u64().unwrap(),
                    a["scope"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let mut oa: Vec<_> = o["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                assert!(a["flags"].is_array());
                (
                    a["address"].as_str().unwrap().to_owned(),
                    a["prefix_len"].as_u64().unwrap(),
                    a["scope"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        ka.sort();
        oa.sort();
        assert_eq!(ka, oa, "addresses of {}", k["ifname"]);
    }

    // Routes: every route of every table, with CIDR destinations and interface names.
    let routes = v["routes"].as_array().unwrap();
    let kernel4 = ns.ip_json("-4 route show table all");
    let kernel6 = ns.ip_json("-6 route show table all");
    assert_eq!(
        routes.len(),
        kernel4.as_array().unwrap().len() + kernel6.as_array().unwrap().len()
    );
    let default = routes
        .iter()
        .find(|r| r["destination"] == "0.0.0.0/0")
        .expect("default route");
    assert_eq!(default["family"], "ipv4");
    assert_eq!(default["gateway"], "198.18.4.1");
    assert_eq!(default["interface"], "c0");
    assert_eq!(default["table"], 254);
    assert_eq!(default["route_type"], "unicast");
    assert!(default["metric"].is_u64());
    let bh = routes
        .iter()
        .find(|r| r["destination"] == "198.19.9.0/24")
        .expect("blackhole route");
    assert_eq!(bh["route_type"], "blackhole");
    assert_eq!(bh["table"], 7);
    assert!(
        routes
            .iter()
            .all(|r| r["destination"].as_str().unwrap().contains('/'))
    );
}

#[test]
fn status_table_is_readable() {
    let ns = Ns::new("clitable");
    ns.veth("t0", "t1");
    ns.ip("addr add 198.18.6.1/24 dev t0");
    let out = netreach()
        .args(["--netns", &ns.name, "status"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("INTERFACE"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("t0") && l.contains("veth") && l.contains("down")),
        "{text}"
    );
    assert!(text.contains("198.18.6.1/24"), "{text}");
}

#[test]
fn watch_json_starts_ready_then_streams_changes() {
    let ns = Ns::new("cliwatch");
    let mut child = netreach()
        .args(["--netns", &ns.name, "watch", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stream = Stream::new(Schema::Watch);
    let first = stream.line(&lines.next().unwrap().unwrap());
    assert_eq!(first["type"], "ready");
    assert_eq!(first["schema_version"], 1);
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in lines {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    // Only now change the network, one step at a time, each seen before the next (a polling
    // backend sees states, not the steps between two polls): nothing may be missed.
    let steps: [(&str, &str, &str); 5] = [
        ("veth", "interface_added", "w0"),
        (
            "addr add 198.18.7.1/24 dev w0",
            "address_added",
            "198.18.7.1",
        ),
        ("link set w0 up", "interface_changed", "w0"),
        ("link del w0", "address_removed", "198.18.7.1"),
        ("", "interface_removed", "w0"),
    ];
    for (change, ty, what) in steps {
        match change {
            "" => {}
            "veth" => ns.veth("w0", "w1"),
            ip => {
                ns.ip(ip);
            }
        }
        loop {
            let l = rx
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no {ty} of {what}"));
            let v = stream.line(&l);
            humantime::parse_rfc3339(v["time"].as_str().unwrap()).expect("RFC 3339 time");
            let about = v.get("name").or(v.get("address")).and_then(Value::as_str);
            if v["type"] == ty && about == Some(what) {
                if ty == "address_added" {
                    assert_eq!(v["interface"], "w0");
                    assert_eq!(v["prefix_len"], 24);
                }
                if ty == "interface_removed" {
                    assert_eq!(v["kind"], "veth");
                }
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The lines of a running `watch --json` (a [`Lines`]), each checked by the schema and the
/// stream's rules as it is taken.
struct WatchLines {
    lines: Lines,
    stream: Stream,
    /// The type of every line taken.
    seen: BTreeSet<String>,
}

impl WatchLines {
    fn start(ns: &Ns) -> WatchLines {
        WatchLines {
            lines: Lines::start(&["--netns", &ns.name, "watch", "--json"]),
            stream: Stream::new(Schema::Watch),
            seen: BTreeSet::new(),
        }
    }

    /// The next line, checked.
    fn next(&mut self, what: &str) -> Value {
        let l = self
            .lines
            .lines
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no line for {what}; seen {:?}", self.seen));
        // Shown when the test fails.
        eprintln!("{l}");
        let v = self.stream.line(&l);
        self.seen.insert(v["type"].as_str().unwrap().to_owned());
        v
    }

    /// Lines until one of type `ty` whose `key` is `value`.
    fn until(&mut self, ty: &str, key: &str, value: &Value) -> Value {
        loop {
            let v = self.next(&format!("{ty} with {key} {value}"));
            if v["type"] == ty && &v[key] == value {
                return v;
            }
        }
    }
}

/// Every line type `watch --json` shows for a namespace's changes, from one scripted
/// sequence (each step waits for its line): interfaces, addresses, routes, rules, connectivity
/// and the primary interface. Every line is held to the schema, with no key twice, `seq`
/// increasing and each `cause_seq` naming a model change shown before.
#[test]
fn watch_json_every_line_type_follows_the_schema() {
    let ns = Ns::new("cliall");
    let mut w = WatchLines::start(&ns);
    assert_eq!(w.next("ready")["type"], "ready");
    let steps: [(&str, &str, &str, Value); 12] = [
        (
            "link add w0 type veth peer name w1",
            "interface_added",
            "name",
            "w0".into(),
        ),
        ("link set w1 up", "interface_changed", "name", "w1".into()),
        ("link set w0 up", "interface_changed", "name", "w0".into()),
        (
            "addr add 198.18.7.1/24 dev w0",
            "address_added",
            "address",
            "198.18.7.1".into(),
        ),
        (
            "-6 addr add 2001:db8:7::1/64 dev w0 nodad",
            "address_added",
            "address",
            "2001:db8:7::1".into(),
        ),
        // A flag changes (not duplicate address detection: its timing is the kernel's).
        (
            "-6 addr change 2001:db8:7::1/64 dev w0 nodad noprefixroute",
            "address_changed",
            "address",
            "2001:db8:7::1".into(),
        ),
        (
            "route add default via 198.18.7.2",
            "route_added",
            "destination",
            "0.0.0.0/0".into(),
        ),
        ("", "connectivity_changed", "new", "internet".into()),
        (
            "rule add pref 100 from 198.18.7.0/24 lookup 7",
            "rule_added",
            "priority",
            100.into(),
        ),
        (
            "rule del pref 100 from 198.18.7.0/24 lookup 7",
            "rule_removed",
            "priority",
            100.into(),
        ),
        (
            "route del default",
            "route_removed",
            "destination",
            "0.0.0.0/0".into(),
        ),
        (
            "addr del 198.18.7.1/24 dev w0",
            "address_removed",
            "address",
            "198.18.7.1".into(),
        ),
    ];
    for (change, ty, key, value) in steps {
        if !change.is_empty() {
            ns.ip(change);
        }
        let v = w.until(ty, key, &value);
        match ty {
            "address_changed" => {
                assert_eq!(v["flags"], serde_json::json!(["noprefixroute"]));
                assert_eq!(v["old_flags"], serde_json::json!([]));
            }
            "route_added" => assert_eq!(v["route_type"], "unicast"),
            "connectivity_changed" => assert!(v["cause_seq"].is_u64(), "{v}"),
            _ => {}
        }
    }
    // Both ends go: the interfaces are removed and there is no primary interface any more
    // (in either order: the kernel sets them down first, a poll may only see them gone).
    ns.ip("link del w0");
    let (mut removed, mut no_primary) = (false, false);
    while !(removed && no_primary) {
        let v = w.next("w0 removed and no primary interface");
        removed |= v["type"] == "interface_removed" && v["name"] == "w0";
        if v["type"] == "primary_changed" && v["new"].is_null() {
            assert_eq!(v["old"]["interface"], "w0", "{v}");
            no_primary = true;
        }
    }
    let want = [
        "ready",
        "interface_added",
        "interface_changed",
        "interface_removed",
        "address_added",
        "address_changed",
        "address_removed",
        "route_added",
        "route_removed",
        "rule_added",
        "rule_removed",
        "connectivity_changed",
        "primary_changed",
    ];
    let missing: Vec<_> = want.iter().filter(|t| !w.seen.contains(**t)).collect();
    assert!(missing.is_empty(), "no line of {missing:?}");
}

/// netreach's own errors are one line; a mistake in the flags is clap's whole message
/// (`parser_errors_are_printed_whole`).
#[test]
fn bad_input_is_one_line_and_exit_2() {
    for args in [
        vec!["--netns", "nrt-no-such-ns", "status"],
        vec!["--netns", "bad/../name/x", "status"],
    ] {
        let out = netreach().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("netreach: "), "{err}");
    }
}

#[test]
fn closed_pipe_is_not_an_error() {
    let ns = Ns::new("clipipe");
    for i in 0..50 {
        ns.ip(&format!("link add br{i} type bridge"));
    }
    let mut child = netreach()
        .args(["--netns", &ns.name, "status"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A directory of one test's own under the temporary directory (process id and a counter),
/// removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("netreach-cli-{}-{n}-{tag}", std::process::id()));
        std::fs::create_dir(&dir).expect("create the test directory");
        TempDir(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs netreach with `args`; kills it and fails the test when it runs longer than 10 s.
fn output_within_10s(args: &[&str]) -> Output {
    let limit = Duration::from_secs(10);
    let mut child = netreach()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start netreach");
    let end = Instant::now() + limit;
    while child.try_wait().expect("wait for netreach").is_none() {
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("netreach {args:?} still ran after {limit:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("read netreach's output")
}

/// Asserts exit code 2 and one line on stderr, and returns that line.
fn bad_namespace(path: &Path) -> String {
    let path = path.to_str().expect("UTF-8 test path");
    let out = output_within_10s(&["--netns", path, "status"]);
    let err = String::from_utf8(out.stderr).expect("UTF-8 error");
    assert_eq!(out.status.code(), Some(2), "{path}: {err}");
    assert_eq!(err.lines().count(), 1, "{path}: {err}");
    err
}

#[test]
fn a_fifo_as_namespace_fails_at_once_with_exit_2() {
    let dir = TempDir::new("fifo");
    let fifo = dir.join("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .expect("mkfifo");
    assert_eq!(
        bad_namespace(&fifo),
        format!(
            "netreach: {} is a FIFO, not a network namespace\n",
            fifo.display()
        )
    );
}

#[test]
fn a_symlink_loop_as_namespace_fails_with_exit_2() {
    let dir = TempDir::new("loop");
    let (a, b) = (dir.join("a"), dir.join("b"));
    std::os::unix::fs::symlink(&b, &a).expect("symlink");
    std::os::unix::fs::symlink(&a, &b).expect("symlink");
    let err = bad_namespace(&a);
    let want = format!(
        "netreach: invalid network namespace path {}: the path loops through symbolic links: ",
        a.display()
    );
    // The rest is the OS's text for ELOOP.
    assert!(err.starts_with(&want), "{err}");
    assert!(err.trim_end().ends_with("(os error 40)"), "{err}");
}

/// A mistake in the flags is printed whole, as clap formats it: what is wrong, the suggestion
/// or the possible values, the usage. Exit 2.
#[test]
fn parser_errors_are_printed_whole() {
    for (args, says) in [
        (
            vec!["reach"],
            vec![
                "required arguments were not provided",
                "<REMOTE>",
                "Usage: netreach reach",
            ],
        ),
        (
            vec!["statsu"],
            vec![
                "unrecognized subcommand",
                "similar subcommand exists: 'status'",
            ],
        ),
        (
            vec!["status", "--bogus"],
            vec!["unexpected argument '--bogus'", "Usage:"],
        ),
        (
            vec!["wait-online", "--level", "bogus"],
            vec!["possible values: local, site, internet"],
        ),
        (
            vec!["wait-online", "--timeout", "-1"],
            vec!["invalid value '-1' for '--timeout", "negative"],
        ),
        (
            vec!["watch", "--events", "bogus"],
            vec!["possible values: interface, address, route"],
        ),
    ] {
        let out = output_within_10s(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let err = String::from_utf8(out.stderr).expect("UTF-8");
        assert!(
            err.lines().count() > 1,
            "{args:?}: the whole message: {err}"
        );
        for s in says {
            assert!(err.contains(s), "{args:?}: {s:?} in {err}");
        }
    }
}

/// Runs netreach with stdout on a pipe whose reading end is already closed, so every write
/// fails with EPIPE; kills it and fails the test when it runs longer than 10 s.
fn output_into_a_closed_pipe(args: &[&str]) -> Output {
    let (reader, writer) = rustix::pipe::pipe().expect("pipe");
    drop(reader);
    let mut child = netreach()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .spawn()
        .expect("start netreach");
    let end = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("wait for netreach").is_none() {
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("netreach {args:?} still ran after 10 s: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("read netreach's output")
}

/// `netreach completions zsh | head -1` and the like: a reader that went away is success,
/// for every command, the generated texts included.
#[test]
fn every_command_treats_a_closed_pipe_as_success() {
    let ns = Ns::new("cliepipe");
    ns.veth("e0", "e1");
    let mut runs: Vec<Vec<&str>> = vec![
        vec!["completions", "zsh"],
        vec!["completions", "bash"],
        vec!["completions", "fish"],
        vec!["man"],
        vec!["man", "wait-online"],
        vec!["--help"],
        vec!["wait-online", "--help"],
        vec!["--version"],
    ];
    for cmd in [
        vec!["status"],
        vec!["status", "--json"],
        vec!["watch"],
        vec!["watch", "--json"],
        vec!["reach", "127.0.0.1"],
        vec!["reach", "127.0.0.1", "--json"],
        vec!["reach", "127.0.0.1", "--watch"],
    ] {
        let mut v = vec!["--netns", ns.name.as_str()];
        v.extend(cmd);
        runs.push(v);
    }
    for args in runs {
        let out = output_into_a_closed_pipe(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// The subcommands `netreach --help` lists.
fn listed_subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn help_describes_the_tool_lists_every_command_and_wraps() {
    let out = netreach()
        .arg("--help")
        .env("COLUMNS", "60")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        help.starts_with("Know when the network is up"),
        "the tool, not the crate: {help}"
    );
    assert!(!help.contains("command-line tool"), "{help}");
    let subs = listed_subcommands(&help);
    for c in [
        "status",
        "watch",
        "probe",
        "wait-online",
        "reach",
        "completions",
        "man",
    ] {
        assert!(subs.iter().any(|s| s == c), "{c} in {subs:?}");
    }
    for l in help.lines() {
        assert!(l.chars().count() <= 60, "wrapped to COLUMNS=60: {l:?}");
    }
}

/// `netreach man --dir DIR` writes netreach.1 and a page for every subcommand, and the top
/// page names exactly pages that exist; `netreach man COMMAND` prints one of them.
#[test]
fn man_has_a_page_for_every_subcommand() {
    let help = String::from_utf8(netreach().arg("--help").output().unwrap().stdout).unwrap();
    let subs = listed_subcommands(&help);
    let dir = TempDir::new("man");
    let out = output_within_10s(&["man", "--dir", dir.0.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut files: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let mut want: Vec<String> = subs.iter().map(|s| format!("netreach-{s}.1")).collect();
    want.push("netreach.1".to_owned());
    want.sort();
    assert_eq!(files, want);
    let top = std::fs::read_to_string(dir.join("netreach.1")).unwrap();
    for s in &subs {
        let name = format!("netreach-{s}(1)").replace('-', "\\-");
        assert!(top.contains(&name), "{s} named in netreach(1)");
    }
    let page = std::fs::read_to_string(dir.join("netreach-wait-online.1")).unwrap();
    assert!(page.contains(".TH netreach-wait-online 1"), "{page}");
    assert!(
        page.contains(&format!("\"netreach {}\"", env!("CARGO_PKG_VERSION"))),
        "{page}"
    );
    assert!(page.contains("\\-\\-interface"), "{page}");

    let out = output_within_10s(&["man", "wait-online"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), page);
    let out = output_within_10s(&["man", "bogus"]);
    assert_eq!(out.status.code(), Some(2));
}

/// The lines of a running `netreach` (`watch`), read on a thread; killed on drop, also when
/// the test fails.
struct Lines {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Lines {
    fn start(args: &[&str]) -> Lines {
        let mut child = netreach()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in out.lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Lines { child, lines }
    }

    /// Every line up to and including the first for which `last` holds.
    fn until(&self, what: &str, last: impl Fn(&str) -> bool) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let l = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no line {what}; saw {seen:#?}"));
            let done = last(&l);
            seen.push(l);
            if done {
                return seen;
            }
        }
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A line of `watch --json` (it has a `type`) or a `status --json` document, held to its
/// schema with no key twice.
fn json(l: &str) -> Value {
    let v = schema::parse_strict(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    let shape = if v.get("type").is_some() {
        Schema::Watch
    } else {
        Schema::Status
    };
    schema::check_value(shape, &v);
    v
}

/// Runs netreach with stdout on a new pseudo-terminal and returns what it wrote there.
fn output_on_a_terminal(args: &[&str], no_color: bool) -> Vec<u8> {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    use std::io::Read;
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
    grantpt(&master).expect("grantpt");
    unlockpt(&master).expect("unlockpt");
    let name = ptsname(&master, Vec::new()).expect("ptsname");
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .expect("open the terminal");
    let mut cmd = netreach();
    cmd.args(args)
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::from(slave))
        .stderr(Stdio::null());
    if no_color {
        cmd.env("NO_COLOR", "1");
    }
    let mut child = cmd.spawn().expect("start netreach");
    // The child must hold the terminal's last open end, so that reading ends when it exits.
    drop(cmd);
    let reader = std::thread::spawn(move || {
        let mut master = std::fs::File::from(master);
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once the last end of the terminal is closed.
        while let Ok(n @ 1..) = master.read(&mut buf) {
            all.extend_from_slice(&buf[..n]);
        }
        all
    });
    let end = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("netreach {args:?} still ran after 10 s on a terminal: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    reader.join().expect("read the terminal")
}

/// Every ESC in `out` starts a colour sequence (`ESC [`), none is raw.
fn only_colour_escapes(out: &[u8]) -> bool {
    out.windows(2).all(|w| w[0] != 0x1b || w[1] == b'[') && out.last() != Some(&0x1b)
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let ns = Ns::new("clicolour");
    ns.veth("c0", "c1");
    let args = ["--netns", ns.name.as_str(), "status"];
    let tty = output_on_a_terminal(&args, false);
    let text = String::from_utf8_lossy(&tty);
    assert!(
        text.contains("\x1b[31mdown"),
        "colour on a terminal: {text:?}"
    );
    assert!(text.contains("c0"), "{text:?}");
    let tty = output_on_a_terminal(&args, true);
    assert!(
        !tty.contains(&0x1b),
        "NO_COLOR: {:?}",
        String::from_utf8_lossy(&tty)
    );
    assert!(String::from_utf8_lossy(&tty).contains("c0"));
    let piped = output_within_10s(&args);
    assert!(!piped.stdout.contains(&0x1b), "piped: no colour");
}

/// The kernel takes ESC in an interface name; human output shows it as `\x1b`, never raw,
/// on a terminal or not, in `status` and in `watch`. JSON escapes it its own way.
#[test]
fn control_characters_in_names_are_escaped() {
    let ns = Ns::new("cliesc");
    ns.ip("link add a\x1bb type veth peer name esc1");
    let args = ["--netns", ns.name.as_str(), "status"];
    let piped = output_within_10s(&args);
    let text = String::from_utf8(piped.stdout).unwrap();
    assert!(text.contains("a\\x1bb"), "{text}");
    assert!(!text.contains('\x1b'), "{text:?}");
    let tty = output_on_a_terminal(&args, false);
    assert!(String::from_utf8_lossy(&tty).contains("a\\x1bb"));
    assert!(
        only_colour_escapes(&tty),
        "{:?}",
        String::from_utf8_lossy(&tty)
    );
    let out = output_within_10s(&["--netns", &ns.name, "status", "--json"]);
    let v = json(std::str::from_utf8(&out.stdout).unwrap());
    assert!(
        v["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"] == "a\x1bb")
    );

    let watch = Lines::start(&["--netns", &ns.name, "watch"]);
    watch.until("ready", |l| l.contains("ready"));
    ns.ip("link add x\x1b[2Jy type bridge");
    let seen = watch.until("about the new interface", |l| {
        l.contains("added") && l.contains("interface x")
    });
    let line = seen.last().unwrap();
    assert!(line.contains("x\\x1b[2Jy"), "{line:?}");
    assert!(!line.contains('\x1b'), "{line:?}");
}

/// `--ignore` and `--interface` choose what `status` prints, in either format; the
/// connectivity stays that of every interface not ignored.
#[test]
fn status_prints_only_the_interfaces_asked_for() {
    let ns = Ns::new("clishown");
    ns.veth("a0", "pa");
    ns.veth("b0", "pb");
    for i in ["a0", "pa", "b0", "pb"] {
        ns.ip(&format!("link set {i} up"));
    }
    ns.ip("addr add 198.18.41.1/24 dev a0");
    ns.ip("addr add 198.18.42.1/24 dev b0");
    ns.ip("route add default via 198.18.41.254");
    let status = |args: &[&str]| {
        let mut v = vec!["--netns", ns.name.as_str(), "status", "--json"];
        v.extend(args);
        let out = output_within_10s(&v);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        json(std::str::from_utf8(&out.stdout).unwrap())
    };
    let names = |v: &Value| -> Vec<String> {
        v["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let v = status(&["--interface", "a*"]);
    assert_eq!(names(&v), ["a0"]);
    assert!(
        v["routes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["interface"] == "a0"),
        "{v:#}"
    );
    assert_eq!(
        v["connectivity"]["ipv4"], "internet",
        "printing only: {v:#}"
    );
    let v = status(&["-i", "a0", "-i", "b0"]);
    assert_eq!(names(&v), ["a0", "b0"]);
    let v = status(&["--ignore", "a*"]);
    assert!(!names(&v).contains(&"a0".to_owned()), "{v:#}");
    assert!(names(&v).contains(&"b0".to_owned()), "{v:#}");
    assert!(
        v["routes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["interface"] != "a0")
    );
    assert_eq!(
        v["connectivity"]["ipv4"], "site",
        "ignored by the rules too: {v:#}"
    );
    let v = status(&["--exclude", "a*"]);
    assert!(!names(&v).contains(&"a0".to_owned()), "{v:#}");

    let out = output_within_10s(&["--netns", &ns.name, "status", "--ignore", "b*"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("a0") && text.contains("198.18.41.1/24"),
        "{text}"
    );
    assert!(
        !text.contains(" b0 ") && !text.contains("198.18.42"),
        "{text}"
    );
}

/// `watch --ignore 'v*'` prints nothing about v0; `--interface` and `--events` choose the
/// rest. The ignored changes are made first, and the last change waited for is made only once
/// the one before it was seen (a polling backend merges what falls between two polls), so had
/// they been printed they would be among the lines read.
#[test]
fn watch_prints_only_the_interfaces_and_events_asked_for() {
    let ns = Ns::new("cliwshown");
    let base = ["--netns", ns.name.as_str(), "watch", "--json"];
    let ready = |l: &str| json(l)["type"] == "ready";
    let about = |l: &str, ty: &str, name: &str| {
        let v = json(l);
        v["type"] == ty && (v["name"] == name || v["interface"] == name)
    };
    let mtu = |l: &str| {
        let v = json(l);
        v["type"] == "interface_changed" && v["mtu"] == 1400
    };

    let ignoring = Lines::start(&[&base[..], &["--ignore", "v*"]].concat());
    let only = Lines::start(&[&base[..], &["-i", "x*"]].concat());
    let kinds = Lines::start(&[&base[..], &["--events", "interface"]].concat());
    for w in [&ignoring, &only, &kinds] {
        w.until("ready", ready);
    }
    // v0 stays down: no link-local address appears later.
    ns.ip("link add v0 type bridge");
    ns.ip("addr add 198.18.43.1/24 dev v0");
    ns.ip("link add x0 type bridge");
    ns.ip("addr add 198.18.44.1/24 dev x0");
    let mut seen = [
        ignoring.until("of x0's address", |l| about(l, "address_added", "x0")),
        only.until("of x0's address", |l| about(l, "address_added", "x0")),
        kinds.until("of x0", |l| about(l, "interface_added", "x0")),
    ];
    ns.ip("link set x0 mtu 1400");
    for (w, s) in [&ignoring, &only, &kinds].into_iter().zip(&mut seen) {
        s.extend(w.until("of x0's MTU", mtu));
    }
    let [ignoring, only, kinds] = seen;
    for seen in [ignoring, only] {
        assert!(
            !seen
                .iter()
                .any(|l| l.contains("v0") || l.contains("198.18.43")),
            "nothing about v0: {seen:#?}"
        );
        assert!(
            seen.iter().any(|l| about(l, "interface_added", "x0")),
            "{seen:#?}"
        );
    }
    assert!(
        kinds.iter().any(|l| about(l, "interface_added", "v0")),
        "{kinds:#?}"
    );
    for l in &kinds {
        let ty = json(l)["type"].as_str().unwrap().to_owned();
        assert!(ty.starts_with("interface_"), "only interface events: {l}");
    }
}
