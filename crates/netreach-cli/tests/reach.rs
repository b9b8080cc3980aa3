//! `netreach reach` against the real kernel, in the connection monitor's laboratory (a host, a
//! router and a far server in namespaces of their own): one-shot answers and exit codes, the
//! JSON shapes, bad input, and `--watch` lines as the network changes.

// Every test here builds network namespaces, which only Linux has.
#![cfg(target_os = "linux")]

#[path = "../../netreach/tests/common/mod.rs"]
mod common;
mod schema;

use std::cell::RefCell;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;

use common::lab::{Lab, Plan, V4, V6, WAIT};
use schema::{Schema, Stream};
use serde_json::Value;

fn netreach() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_netreach"));
    c.args(common::backend_args());
    c
}

/// `netreach --netns HOST reach ARGS...`.
fn reach(lab: &Lab, args: &[&str]) -> Output {
    netreach()
        .args(["--netns", &lab.host.name, "reach"])
        .args(args)
        .output()
        .expect("run netreach")
}

/// The one JSON object of `reach --json`, checked by its schema, with the exit code.
fn reach_json(lab: &Lab, args: &[&str]) -> (Option<i32>, Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let out = reach(lab, &all);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    (out.status.code(), schema::check(Schema::Reach, &text))
}

#[test]
fn one_shot_reachable_via_gateway_and_on_link() {
    let lab = Lab::new("clr");
    for plan in [V4, V6] {
        let (code, v) = reach_json(&lab, &[plan.server]);
        assert_eq!(code, Some(0), "{v}");
        assert_eq!(v["reachable"], true);
        assert_eq!(v["reason"], Value::Null);
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["interface"], "h0");
        assert_eq!(v["gateway"], plan.gateway);
        assert_eq!(v["local"], plan.host, "the source the kernel chooses");
        assert_eq!(v["remote"], plan.server);
        assert!(v.get("source").is_some(), "{v}");
        assert!(v.get("type").is_none(), "no type outside --watch: {v}");
        assert_eq!(
            v["lookup"], "system",
            "Linux answers with RTM_GETROUTE: {v}"
        );

        // Same subnet: no gateway.
        let (code, v) = reach_json(&lab, &[plan.gateway]);
        assert_eq!(code, Some(0), "{v}");
        assert_eq!(v["gateway"], Value::Null);
        assert_eq!(v["interface"], "h0");

        // Out of h1: the kernel's source there, the path through h1.
        let (code, v) = reach_json(&lab, &[plan.gateway1, "--interface", "h1"]);
        assert_eq!(code, Some(0), "{v}");
        assert_eq!(
            (&v["local"], &v["interface"]),
            (&plan.host1.into(), &"h1".into())
        );

        let out = reach(&lab, &[plan.server]);
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8(out.stdout).expect("utf-8");
        assert_eq!(
            text.trim_end(),
            format!(
                "{} from {}: reachable via {} dev h0",
                plan.server, plan.host, plan.gateway
            )
        );
    }
    // A connected IPv4 route names the preferred source.
    let (_, v) = reach_json(&lab, &[V4.gateway]);
    assert_eq!(v["source"], V4.host);
}

#[test]
fn one_shot_unreachable_says_why_and_exits_1() {
    let lab = Lab::new("clu");
    for plan in [V4, V6] {
        let f = plan.flag;
        lab.host
            .ip(&format!("{f} route add blackhole {}", plan.server_net));
        let (code, v) = reach_json(&lab, &[plan.server, "--local", plan.host]);
        assert_eq!(code, Some(1), "{v}");
        assert_eq!(v["reachable"], false);
        assert_eq!(v["reason"]["kind"], "route_type");
        assert_eq!(v["reason"]["route_type"], "blackhole");
        assert!(
            v["reason"]["message"]
                .as_str()
                .is_some_and(|r| r.contains("blackhole")),
            "{v}"
        );
        assert_eq!(v["gateway"], Value::Null);
        // Without --local the kernel chooses no source for a blackholed remote.
        let (code, v) = reach_json(&lab, &[plan.server]);
        assert_eq!(code, Some(1), "{v}");
        assert_eq!(v["local"], Value::Null);
        assert_eq!(v["reason"]["kind"], "route_type");
        lab.host
            .ip(&format!("{f} route del blackhole {}", plan.server_net));

        // From h1's address, the path leaves through h0: a mismatch, naming h0.
        let (code, v) = reach_json(&lab, &[plan.server, "--local", plan.host1]);
        assert_eq!(code, Some(1), "{v}");
        assert_eq!(v["reason"]["kind"], "interface_mismatch");
        assert_eq!(v["interface"], "h0");
        assert_eq!(v["reason"]["local_interface"]["name"], "h1");
        assert_eq!(v["reason"]["path_interface"]["name"], "h0");

        let out = reach(&lab, &[plan.server, "--local", plan.host1]);
        assert_eq!(out.status.code(), Some(1));
        let text = String::from_utf8(out.stdout).expect("utf-8");
        assert!(
            text.contains("unreachable: the path now leaves through h0"),
            "{text}"
        );
    }
    lab.host.ip("-4 route del default");
    let (code, v) = reach_json(&lab, &["198.19.5.5"]);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["reason"]["kind"], "no_route");
    assert_eq!(v["local"], Value::Null);
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let lab = Lab::new("clb");
    let host = lab.host.name.as_str();
    for args in [
        vec!["--netns", host, "reach", "300.1.1.1"],
        vec![
            "--netns",
            host,
            "reach",
            "198.18.30.2",
            "--interface",
            "nosuch0",
        ],
        vec![
            "--netns",
            host,
            "reach",
            "198.18.30.2",
            "--local",
            "2001:db8:20::2",
        ],
        vec![
            "--netns",
            host,
            "reach",
            "2001:db8:30::2",
            "--local",
            "198.18.20.2",
        ],
        vec![
            "--netns",
            host,
            "reach",
            "198.18.30.2",
            "--local",
            "198.18.20.9",
        ],
        vec![
            "--netns",
            host,
            "reach",
            "198.18.30.2",
            "--local",
            "0.0.0.0",
        ],
        vec!["--netns", host, "reach", "224.0.0.1"],
        vec!["--netns", host, "reach", "255.255.255.255", "--watch"],
        vec!["--netns", host, "reach", "0.0.0.0", "--json"],
        vec!["--netns", "nrt-no-such-namespace", "reach", "198.18.30.2"],
        vec!["--netns", host, "reach"],
    ] {
        let out = netreach().args(&args).output().expect("run netreach");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        // A bad address or a missing REMOTE is the parser's: its whole message. The rest
        // are netreach's own: one line.
        if matches!(args.last(), Some(&"300.1.1.1" | &"reach")) {
            assert!(
                err.starts_with("error: ") && err.lines().count() > 1,
                "{err}"
            );
        } else {
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
            assert!(err.starts_with("netreach: "), "{err}");
        }
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

/// A running `reach --watch` whose lines are read on a thread of their own; JSON lines are
/// checked by the schema and against each other as they are taken.
struct Watching {
    child: Child,
    lines: mpsc::Receiver<String>,
    stream: RefCell<Stream>,
}

impl Watching {
    fn start(lab: &Lab, args: &[&str]) -> Watching {
        let mut child = netreach()
            .args(["--netns", &lab.host.name, "reach", "--watch"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run netreach");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Watching {
            child,
            lines,
            stream: RefCell::new(Stream::new(Schema::ReachWatch)),
        }
    }

    fn line(&self, what: &str) -> String {
        self.lines
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("no line for {what}"))
    }

    fn json(&self, what: &str) -> Value {
        let l = self.line(what);
        self.stream.borrow_mut().line(&l)
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn watch_json_lines(tag: &str, plan: Plan) {
    let lab = Lab::new(tag);
    let w = Watching::start(&lab, &[plan.server, "--json"]);
    let first = w.json("the initial state");
    assert_eq!(first["type"], "reachability_changed");
    assert_eq!(first["initial"], true);
    assert_eq!(first["reachable"], true);
    assert_eq!(first["local"], plan.host);
    assert_eq!(first["remote"], plan.server);
    assert_eq!(first["interface"], "h0");
    assert_eq!(first["gateway"], plan.gateway);
    assert_eq!(first["schema_version"], 1);
    humantime::parse_rfc3339(first["time"].as_str().expect("time")).expect("RFC 3339");

    // The far side of the host's link goes down, then up again.
    lab.router.ip("link set r0 down");
    let down = w.json("carrier lost");
    assert_eq!(down["type"], "reachability_changed");
    assert_eq!(down["initial"], false);
    assert_eq!(down["reachable"], false);
    assert_eq!(down["reason"]["kind"], "carrier_lost");
    assert_eq!(down["reason"]["interface"]["name"], "h0");
    assert_eq!(down["interface"], "h0");
    assert_eq!(down["gateway"], Value::Null);
    assert!(down["seq"].as_u64() > first["seq"].as_u64(), "{down}");
    lab.router.ip("link set r0 up");
    let up = w.json("carrier back");
    assert_eq!(up["reachable"], true);
    assert_eq!(up["gateway"], plan.gateway);

    // A policy rule, then its removal: one line each, nothing more.
    let rule = format!(
        "{} rule add to {} prohibit pref 100",
        plan.flag, plan.server_net
    );
    lab.host.ip(&rule);
    let v = w.json("prohibit rule");
    assert_eq!(v["reason"]["kind"], "route_type");
    assert_eq!(v["reason"]["route_type"], "prohibit");
    lab.host.ip(&rule.replace(" add ", " del "));
    assert_eq!(w.json("rule gone")["reachable"], true);
    assert!(
        w.lines
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_err(),
        "no line without a change"
    );
}

#[test]
fn watch_json_ipv4() {
    watch_json_lines("clw4", V4);
}

#[test]
fn watch_json_ipv6() {
    watch_json_lines("clw6", V6);
}

#[test]
fn watch_human_lines_and_no_route_at_start() {
    let lab = Lab::new("clwh");
    // No route now: the watch starts from an address of the family and says why.
    lab.host.ip("-4 route del default");
    let w = Watching::start(&lab, &["198.18.30.2"]);
    let l = w.line("the initial state");
    assert!(
        l.ends_with("198.18.30.2 from 198.18.20.2: unreachable: no route to the remote address"),
        "{l}"
    );
    humantime::parse_rfc3339(l.split(' ').next().unwrap_or_default()).expect("time stamp");
    lab.host.ip("route add default via 198.18.20.1");
    let l = w.line("route back");
    assert!(l.ends_with("reachable via 198.18.20.1 dev h0"), "{l}");
}

/// The interfaces of `ns` holding an IPv6 link-local address.
fn link_local_interfaces(ns: &common::Ns) -> Vec<String> {
    ns.ip_json("-6 addr show scope link")
        .as_array()
        .expect("a list")
        .iter()
        .filter(|i| !i["addr_info"].as_array().is_none_or(|a| a.is_empty()))
        .map(|i| i["ifname"].as_str().expect("a name").to_owned())
        .collect()
}

/// A link-local remote needs a link: with several interfaces on fe80::/64 and no
/// --interface, bad input (exit 2) that asks for one; with one, that one.
#[test]
fn link_local_remote_needs_an_interface_when_several_links_hold_it() {
    let run = |ns: &common::Ns, args: &[&str]| {
        netreach()
            .args(["--netns", &ns.name, "reach"])
            .args(args)
            .output()
            .expect("run netreach")
    };
    // Two links: both ends of a veth pair in one namespace, each with its fe80:: address.
    let two = common::Ns::new("clll2");
    // No duplicate address detection: a tentative address is no source yet.
    common::lab::sysctl(&two, "net.ipv6.conf.default.accept_dad=0");
    two.veth("l0", "l1");
    two.ip("link set l0 up");
    two.ip("link set l1 up");
    common::wait_until("link-local addresses on l0 and l1", WAIT, || {
        link_local_interfaces(&two).len() == 2
    });
    for args in [
        vec!["fe80::1"],
        vec!["fe80::1", "--json"],
        vec!["fe80::1", "--watch"],
    ] {
        let out = run(&two, &args);
        let err = String::from_utf8(out.stderr).expect("utf-8");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("fe80::1 is link-local")
                && err.contains("l0, l1")
                && err.contains("--interface"),
            "{err}"
        );
        assert!(out.stdout.is_empty(), "no answer for either link");
    }
    let out = run(&two, &["fe80::1", "--interface", "l1", "--json"]);
    assert_ne!(out.status.code(), Some(2));
    let v = schema::check(Schema::Reach, &String::from_utf8_lossy(&out.stdout));
    assert_eq!(v["interface"], "l1", "{v}");

    // One link: it is used.
    let one = common::Ns::new("clll1");
    let peer = common::Ns::new("clll1p");
    common::lab::sysctl(&one, "net.ipv6.conf.default.accept_dad=0");
    one.veth_to("o0", &peer, "p0");
    one.ip("link set o0 up");
    peer.ip("link set p0 up");
    common::wait_until("a link-local address on o0", WAIT, || {
        link_local_interfaces(&one) == ["o0"]
    });
    let out = run(&one, &["fe80::1", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = schema::check(Schema::Reach, &String::from_utf8_lossy(&out.stdout));
    assert_eq!(v["interface"], "o0", "{v}");
    assert_eq!(v["reachable"], true, "{v}");
}
