//! `netreach wait-online` and the connectivity parts of `status` and `watch`.

// Every test here builds network namespaces, which only Linux has.
#![cfg(target_os = "linux")]

#[path = "../../netreach/tests/common/mod.rs"]
mod common;
mod schema;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Ns;
use schema::{Schema, Stream};

fn netreach() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_netreach"));
    c.args(common::backend_args());
    c
}

/// A host with an uplink to a router; `online` adds the default route.
fn topology(online: bool) -> (Ns, Ns) {
    let host = Ns::new("wohost");
    let router = Ns::new("wortr");
    host.veth_to("h0", &router, "r0");
    router.ip("addr add 198.18.30.1/24 dev r0");
    router.ip("link set r0 up");
    host.ip("link set h0 up");
    host.ip("addr add 198.18.30.2/24 dev h0");
    if online {
        host.ip("route add default via 198.18.30.1");
    }
    (host, router)
}

#[test]
fn exits_0_at_once_when_already_online() {
    let (host, _r) = topology(true);
    let t = Instant::now();
    let out = netreach()
        .args(["--netns", &host.name, "wait-online", "--timeout", "30"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn returns_promptly_after_the_default_route_appears() {
    let (host, _r) = topology(false);
    let mut child = netreach()
        .args([
            "--netns",
            &host.name,
            "wait-online",
            "--timeout",
            "60",
            "--family",
            "ipv4",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        child.try_wait().unwrap().is_none(),
        "must wait while offline"
    );
    let t = Instant::now();
    host.ip("route add default via 198.18.30.1");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?} after the route",
        t.elapsed()
    );
}

#[test]
fn times_out_with_what_is_missing() {
    let (host, _r) = topology(false);
    let t = Instant::now();
    let out = netreach()
        .args(["--netns", &host.name, "wait-online", "--timeout", "1"])
        .output()
        .unwrap();
    let took = t.elapsed();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(10),
        "{took:?}"
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("internet") && err.contains("IPv4 is site"),
        "{err}"
    );
}

#[test]
fn level_family_and_interface_options() {
    let (host, _r) = topology(false);
    let run = |args: &[&str]| {
        let mut v = vec![
            "--netns",
            host.name.as_str(),
            "wait-online",
            "--timeout",
            "0.3",
        ];
        v.extend(args);
        netreach().args(&v).output().unwrap().status.code()
    };
    assert_eq!(run(&["--level", "site"]), Some(0));
    assert_eq!(run(&["--level", "site", "--family", "both"]), Some(1));
    assert_eq!(run(&["--level", "site", "--family", "ipv6"]), Some(1));
    assert_eq!(run(&["--level", "site", "--interface", "h0"]), Some(0));
    assert_eq!(run(&["--level", "site", "--interface", "nope*"]), Some(1));
    assert_eq!(run(&["--level", "internet"]), Some(1));
}

/// Bad flags exit 2 with clap's whole message, which says what is wrong with the value.
#[test]
fn bad_input_exits_2() {
    for (args, says) in [
        (vec!["wait-online", "--level", "bogus"], "possible values"),
        (vec!["wait-online", "--timeout", "-1"], "-1 is negative"),
        (vec!["wait-online", "--timeout", "soon"], "not a duration"),
        (vec!["wait-online", "--family", "ipv5"], "possible values"),
        (vec!["wait-online", "--interface", "a/b"], "'/'"),
        (vec!["wait-online", "-i", "h0:bogus"], "is not a level"),
        (
            vec!["wait-online", "-4", "--family", "ipv6"],
            "cannot be used with",
        ),
    ] {
        let out = netreach().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn status_json_has_connectivity() {
    let (host, _r) = topology(true);
    let out = netreach()
        .args(["--netns", &host.name, "status", "--json"])
        .output()
        .unwrap();
    let v = schema::check(Schema::Status, &String::from_utf8_lossy(&out.stdout));
    let c = &v["connectivity"];
    assert_eq!(c["ipv4"], "internet");
    assert_eq!(c["ipv6"], "disconnected");
    assert_eq!(c["overall"], "internet");
    assert_eq!(c["primary_interface"], "h0");
    assert_eq!(c["medium"], "virtual");
    assert_eq!(c["metered"], false);
    let text = netreach()
        .args(["--netns", &host.name, "status"])
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.starts_with("Connectivity: internet"), "{text}");
}

#[test]
fn watch_json_reports_connectivity_changes_once() {
    let (host, router) = topology(true);
    let mut child = netreach()
        .args(["--netns", &host.name, "watch", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stream = Stream::new(Schema::Watch);
    let ready = stream.line(&lines.next().unwrap().unwrap());
    assert_eq!(ready["type"], "ready");
    assert_eq!(ready["state"]["connectivity"]["ipv4"], "internet");
    router.ip("link set r0 down");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut ipv4_changes = Vec::new();
    let end = Instant::now() + Duration::from_secs(3);
    while let Ok(l) = rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
        let v = stream.line(&l);
        if v["type"] == "connectivity_changed" && v["family"] == "ipv4" {
            ipv4_changes.push(v);
        }
    }
    assert_eq!(
        ipv4_changes.len(),
        1,
        "exactly one IPv4 change: {ipv4_changes:#?}"
    );
    let c = &ipv4_changes[0];
    assert_eq!(c["old"], "internet");
    assert_ne!(c["new"], "internet");
    assert_eq!(c["reason"]["kind"], "carrier_lost", "{c}");
    assert_eq!(c["reason"]["interface"], "h0", "{c}");
    assert!(
        c["reason"]["message"].as_str().unwrap().contains("h0"),
        "{c}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Waits at most `limit` for `child` to exit; `None` if it still runs then.
fn exit_within(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `netreach --netns NS wait-online ARGS...`, killed after 20 s.
fn wait_online(ns: &Ns, args: &[&str]) -> std::process::Output {
    let mut child = netreach()
        .args(["--netns", &ns.name, "wait-online"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if exit_within(&mut child, Duration::from_secs(20)).is_none() {
        let _ = child.kill();
        panic!("wait-online {args:?} still ran after 20 s");
    }
    child.wait_with_output().unwrap()
}

/// systemd-networkd-wait-online's spellings, with its meanings: `-i IF[:LEVEL]` (each listed
/// interface must reach its level, unless `--any`), `-o`, `-4`, `-6`, `--ignore`, `-q`, and
/// nm-online's `-t`.
#[test]
fn networkd_spellings_and_meanings() {
    let (host, _r) = topology(false);
    // x0 is down: it reaches no level.
    host.veth("x0", "x1");
    let code = |args: &[&str]| {
        let mut v = vec!["-t", "0.3"];
        v.extend(args);
        wait_online(&host, &v).status.code()
    };
    // h0 has an address on a subnet (site) but no default route.
    assert_eq!(code(&["-i", "h0:routable"]), Some(0));
    assert_eq!(code(&["-i", "h0:degraded"]), Some(0));
    assert_eq!(code(&["-i", "h0:site"]), Some(0));
    assert_eq!(code(&["-i", "h0"]), Some(1), "--level internet by default");
    assert_eq!(code(&["-i", "h0", "-o", "routable"]), Some(0));
    assert_eq!(code(&["--interface", "h*:local"]), Some(0));
    assert_eq!(code(&["-i", "x0:local"]), Some(1));
    assert_eq!(
        code(&["-i", "h0:site", "-i", "x0:local"]),
        Some(1),
        "every one"
    );
    assert_eq!(code(&["-i", "h0:site", "-i", "x0:local", "--any"]), Some(0));
    assert_eq!(code(&["-4", "-o", "site"]), Some(0));
    assert_eq!(code(&["-6", "-o", "site"]), Some(1));
    assert_eq!(code(&["-4", "-6", "-o", "site"]), Some(1), "both families");
    assert_eq!(code(&["--ignore", "h0", "-o", "site"]), Some(1));
    assert_eq!(code(&["--exclude", "h0", "-o", "site"]), Some(1));

    let out = wait_online(&host, &["-t", "0.3", "-q"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = wait_online(&host, &["-t", "0.3", "-i", "h0:site", "-i", "x0:local"]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("x0 to reach local") && !err.contains("h0 to reach"),
        "says what is missing: {err}"
    );
}

/// `--timeout 0` waits for ever, as in networkd (it used to mean "check once").
#[test]
fn timeout_0_waits_for_ever() {
    let (host, _r) = topology(false);
    let mut child = netreach()
        .args(["--netns", &host.name, "wait-online", "--timeout", "0"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A bounded wait for an exit that must not come.
    let early = exit_within(&mut child, Duration::from_millis(1500));
    assert!(early.is_none(), "exited while offline: {early:?}");
    host.ip("route add default via 198.18.30.1");
    let status = exit_within(&mut child, Duration::from_secs(10));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert_eq!(status.and_then(|s| s.code()), Some(0), "exits once online");
}

/// `--timeout` bounds the whole command, probes included: a probe that hangs for its own
/// 30 s does not hold `wait-online --verified --timeout 2` past 2 s (it used to run 31 s and
/// then say that no interface had a default route).
#[test]
fn verified_timeout_is_a_hard_bound() {
    let (host, router) = topology(true);
    // Takes the connection and never answers: the probe waits for its own timeout.
    let _mute = router.run(|| std::net::TcpListener::bind("198.18.30.1:8080").expect("listen"));
    let url = "http://198.18.30.1:8080/generate_204";
    let t = Instant::now();
    let out = wait_online(
        &host,
        &[
            "--verified",
            "--timeout",
            "2",
            "--probe-timeout",
            "30",
            "--url",
            url,
        ],
    );
    let took = t.elapsed();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_millis(3500),
        "took {took:?}"
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("timed out after 2s"), "{err}");
    assert!(err.contains("no probe has answered yet"), "{err}");
    assert!(!err.contains("default route"), "there is one: {err}");

    // Without a default route, that is what it says.
    host.ip("route del default");
    let out = wait_online(&host, &["--verified", "-t", "1", "--url", url]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("no usable default route"), "{err}");
    assert!(err.contains("IPv4 is site"), "{err}");
}
