//! `netreach probe`, `status --probe` and `wait-online --verified` against test servers in
//! namespaces made here. The default (public) endpoints are never used: every run names a URL
//! of a test server.

// Every test here builds network namespaces, which only Linux has.
#![cfg(target_os = "linux")]

#[path = "../../netreach/tests/common/mod.rs"]
mod common;
#[path = "../../netreach/tests/probe/lab.rs"]
#[allow(dead_code)] // The lab serves several test files; this one uses part of it.
mod lab;
mod schema;

use std::process::Command;
use std::time::{Duration, Instant};

use lab::{Conn, ENDPOINT_V4, Lab, NO_CONTENT, Server};
use schema::{Schema, Stream};

const PORTAL: &[u8] = b"HTTP/1.1 511 Network Authentication Required\r\nContent-Length: 0\r\n\r\n";

fn netreach(lab: &Lab, args: &[&str]) -> std::process::Output {
    let url = format!("http://{ENDPOINT_V4}/generate_204");
    let mut v = vec!["--netns", lab.client.name()];
    v.extend(args);
    v.extend(["--url", &url, "--probe-timeout", "3"]);
    Command::new(env!("CARGO_BIN_EXE_netreach"))
        .args(common::backend_args())
        .args(&v)
        .output()
        .unwrap()
}

fn serve(lab: &Lab, i: usize, answer: &'static [u8]) -> Server {
    Server::start(
        &lab.servers[i],
        &format!("{ENDPOINT_V4}:80"),
        move |mut c: Conn| c.send(answer),
    )
}

#[test]
fn probe_gives_one_verdict_per_interface_and_family() {
    let lab = Lab::new();
    let _a = serve(&lab, 0, NO_CONTENT);
    let _b = serve(&lab, 1, PORTAL);
    let out = netreach(&lab, &["probe", "--family", "ipv4", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = schema::check(Schema::Probe, &String::from_utf8_lossy(&out.stdout));
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["internet"], "full");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{v:#}");
    let of = |i: &str| results.iter().find(|r| r["interface"] == i).unwrap();
    assert_eq!(of("up0")["verdict"], "full");
    assert_eq!(of("up0")["family"], "ipv4");
    assert!(of("up0")["latency_us"].is_u64(), "whole microseconds: {v}");
    assert_eq!(of("up0")["reason"], serde_json::Value::Null);
    assert_eq!(of("up1")["verdict"], "portal");
    assert_eq!(
        of("up1")["reason"]["kind"],
        "network_authentication_required"
    );
    assert!(of("up1")["reason"]["message"].is_string(), "{v}");

    // Only the portal uplink: not full, exit 1; human output names it.
    let out = netreach(&lab, &["probe", "--interface", "up1", "--family", "ipv4"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("up1") && text.contains("portal"), "{text}");
}

#[test]
fn probe_bad_input_exits_2() {
    let lab = Lab::new();
    let out = netreach(&lab, &["probe", "--interface", "nope0"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8(out.stderr).unwrap().lines().count(), 1);
    // The parser's mistakes: its whole message, saying what is wrong with the value.
    for (args, says) in [
        (vec!["probe", "--expect-status", "42"], "100..=599"),
        (vec!["probe", "--timeout", "x"], "not a duration"),
    ] {
        let out = netreach(&lab, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.starts_with("error: ") && err.contains(says), "{err}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_netreach"))
        .args(common::backend_args())
        .args(["probe", "--url", "ftp://198.18.0.1/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn status_probe_includes_the_verified_state() {
    let lab = Lab::new();
    let _a = serve(&lab, 0, PORTAL);
    let _b = serve(&lab, 1, PORTAL);
    let out = netreach(&lab, &["status", "--probe", "--json"]);
    assert!(out.status.success());
    let v = schema::check(Schema::Status, &String::from_utf8_lossy(&out.stdout));
    assert_eq!(v["connectivity"]["overall"], "internet");
    assert_eq!(v["verification"]["internet"], "portal");
    assert_eq!(v["verification"]["ipv4"], "portal");
    let results = v["verification"]["results"].as_array().unwrap();
    assert!(results.iter().all(|r| r["latency_us"].is_u64()), "{v}");
    // Without --probe: no verification, and no request reaches a server.
    let before = (_a.accepted(), _b.accepted());
    let out = netreach(&lab, &["status", "--json"]);
    let v = schema::check(Schema::Status, &String::from_utf8_lossy(&out.stdout));
    assert!(v["verification"].is_null(), "{v}");
    assert_eq!((_a.accepted(), _b.accepted()), before);
}

#[test]
fn wait_online_verified_waits_for_full() {
    let lab = Lab::new();
    let _a = serve(&lab, 0, PORTAL);
    let _b = serve(&lab, 1, PORTAL);
    let t = Instant::now();
    let out = netreach(&lab, &["wait-online", "--verified", "--timeout", "3"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a portal is not verified internet"
    );
    assert!(t.elapsed() >= Duration::from_secs(3) - Duration::from_millis(100));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("not verified") && err.contains("portal"),
        "{err}"
    );
    drop(_a);
    let _healthy = serve(&lab, 0, NO_CONTENT);
    let out = netreach(&lab, &["wait-online", "--verified", "--timeout", "20"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn watch_probe_reports_verdict_changes() {
    use std::io::{BufRead, BufReader};
    let lab = Lab::new();
    let _a = serve(&lab, 0, NO_CONTENT);
    let _b = serve(&lab, 1, PORTAL);
    let url = format!("http://{ENDPOINT_V4}/generate_204");
    let mut child = Command::new(env!("CARGO_BIN_EXE_netreach"))
        .args(common::backend_args())
        .args([
            "--netns",
            lab.client.name(),
            "watch",
            "--json",
            "--probe",
            "--url",
            &url,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut stream = Stream::new(Schema::Watch);
    let mut verdicts = std::collections::BTreeMap::new();
    let end = Instant::now() + Duration::from_secs(20);
    while verdicts.len() < 2 {
        let l = rx
            .recv_timeout(end.saturating_duration_since(Instant::now()))
            .expect("probe_changed lines");
        let v = stream.line(&l);
        if v["type"] == "probe_changed" && v["family"] == "ipv4" {
            assert!(v["cause_seq"].is_u64(), "{v}");
            assert!(v["verification"]["results"].is_array(), "{v}");
            verdicts.insert(
                v["interface"].as_str().unwrap().to_owned(),
                v["new"].clone(),
            );
        }
    }
    assert_eq!(verdicts["up0"], "full");
    assert_eq!(verdicts["up1"], "portal");
    child.kill().unwrap();
    child.wait().unwrap();
}
