//! `netreach serve` against the real kernel, in throwaway namespaces: the JSON endpoints held
//! to the schemas, the event stream in order and after a reconnect, the metrics checked by
//! `promtool` and scraped by a real Prometheus, many clients, clients that do not read, and
//! hostile requests. Every wait is bounded.

#![cfg(target_os = "linux")]

#[path = "../../netreach/tests/common/mod.rs"]
mod common;
mod schema;
mod serve_util;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Ns;
use schema::{Schema, Stream};
use serve_util::{Serve, Sse, get_with, require_tool};

/// A namespace with a veth pair up, an address and a default route: `internet` on IPv4.
fn online(tag: &str) -> Ns {
    let ns = Ns::new(tag);
    ns.veth("s0", "s1");
    ns.ip("link set s0 up");
    ns.ip("link set s1 up");
    ns.ip("addr add 198.18.20.2/24 dev s0");
    ns.ip("route add default via 198.18.20.1");
    ns
}

/// Polls `/v1/status` until the overall level is `level` (at most 10 s).
fn wait_level(srv: &Serve, level: &str) {
    common::wait_until(&format!("overall {level}"), Duration::from_secs(10), || {
        let (_, body) = srv.get("/v1/status");
        body.contains(&format!("\"overall\":\"{level}\""))
    });
}

/// Polls `/v1/status` until it holds `text` (at most 10 s).
fn wait_status(srv: &Serve, text: &str) {
    common::wait_until(text, Duration::from_secs(10), || {
        srv.get("/v1/status").1.contains(text)
    });
}

/// The service needs no privilege of its own: as `nobody`, with no capability at all, started
/// inside the namespace (entering one is what needs `CAP_SYS_ADMIN`), it serves the state.
#[test]
fn it_runs_unprivileged() {
    require_tool("setpriv", "util-linux");
    let ns = online("servenobody");
    let dir = serve_util::scratch("nobody");
    // The socket is made by `nobody`.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &ns.name])
        .args([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ])
        .args(["--inh-caps=-all", "--bounding-set=-all"])
        .arg(env!("CARGO_BIN_EXE_netreach"))
        .args(common::backend_args());
    let srv = Serve::spawn_in(dir, c, &[]);
    let uid = std::fs::read_to_string(format!("/proc/{}/status", srv.pid()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|u| u.split_whitespace().next().unwrap_or_default().to_owned())
        });
    // The pid is `ip`'s, which execs setpriv, which execs netreach: the same process.
    assert_eq!(uid.as_deref(), Some("65534"), "it runs as nobody");
    let (status, body) = srv.get("/v1/status");
    assert_eq!(status, 200, "{body}");
    let v = schema::check(Schema::Status, &body);
    assert_eq!(v["connectivity"]["ipv4"], "internet", "{v}");
    assert_eq!(srv.get("/healthz").0, 200);
}

#[test]
fn the_json_endpoints_are_the_clis() {
    let ns = online("srvjson");
    let srv = Serve::start(&ns.name, &[]);
    wait_level(&srv, "internet");
    let (code, body) = srv.get("/v1/status");
    assert_eq!(code, 200);
    let v = schema::check(Schema::Status, body.trim());
    assert!(
        v["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"] == "s0")
    );
    assert_eq!(srv.get("/healthz"), (200, "ok\n".to_owned()));
    let (code, body) = srv.get("/nope");
    assert_eq!(code, 404);
    assert!(body.contains("/v1/events"), "{body}");
    // Reach: the same object as `reach --json`, the same one-line message for bad input.
    let (code, body) = srv.get("/v1/reach?remote=198.18.30.1");
    assert_eq!(code, 200);
    let v = schema::check(Schema::Reach, body.trim());
    assert_eq!(v["reachable"], true);
    assert_eq!(v["interface"], "s0");
    let (code, body) = srv.get("/v1/reach?remote=198.18.30.1&local=198.18.99.9");
    assert_eq!(code, 400, "{body}");
    let cli = Command::new(env!("CARGO_BIN_EXE_netreach"))
        .args([
            "--netns",
            &ns.name,
            "reach",
            "198.18.30.1",
            "--local",
            "198.18.99.9",
        ])
        .output()
        .unwrap();
    assert_eq!(cli.status.code(), Some(2));
    let cli_line = String::from_utf8_lossy(&cli.stderr);
    assert_eq!(
        cli_line.trim().strip_prefix("netreach: ").unwrap(),
        body.trim(),
        "the service says what the CLI says"
    );
    let (code, body) = srv.get("/v1/reach?remote=nope");
    assert_eq!(code, 400);
    assert!(body.contains("invalid value 'nope'"), "{body}");
    let (code, _) = get_with(&srv.socket, "/v1/events?types=bogus", &[]);
    assert_eq!(code, 400);
}

/// Every change of a scripted sequence, in order, ids strictly increasing and equal to the
/// line's `seq`, `event:` its `type`; the same from curl; a reconnect with `Last-Event-ID`
/// gets exactly what the client that stayed got.
#[test]
fn events_in_order_and_after_a_reconnect() {
    require_tool("curl", "curl");
    let ns = online("srvsse");
    let srv = Serve::start(&ns.name, &[]);
    wait_level(&srv, "internet");
    let mut stayed = Sse::open(&srv.socket, "/v1/events", &[]);
    let mut leaver = Sse::open(&srv.socket, "/v1/events", &[]);
    let mut curl = Command::new("curl")
        .args(["-sN", "--max-time", "20", "--unix-socket"])
        .arg(&srv.socket)
        .arg("http://netreach/v1/events")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let ready = stayed.until("ready", 1);
    let mut check = Stream::new(Schema::Watch);
    for e in &ready {
        check.line(&e.data);
    }
    assert_eq!(leaver.until("ready", 1)[0].event, "ready");
    // curl is live once its ready event is out: a thread reads its output and says when.
    let (live, curl_live) = std::sync::mpsc::channel();
    let curl_out = curl.stdout.take().unwrap();
    let curl_reader = std::thread::spawn(move || {
        let mut out = String::new();
        for line in BufReader::new(curl_out).lines().map_while(Result::ok) {
            if line == "event: ready" {
                let _ = live.send(());
            }
            out.push_str(&line);
            out.push('\n');
        }
        out
    });
    curl_live
        .recv_timeout(Duration::from_secs(20))
        .expect("curl's ready event");
    ns.ip("route add 198.18.40.0/24 via 198.18.20.1");
    let first = leaver.until("route_added", 50);
    let resume = first.last().unwrap().id.unwrap();
    drop(leaver);
    // Each change waits until the service has it: the polling backend would merge a
    // removal and a re-adding within one poll into no change at all.
    ns.ip("route del default");
    wait_level(&srv, "site");
    ns.ip("addr add 198.18.21.2/24 dev s0");
    wait_status(&srv, "198.18.21.2");
    ns.ip("route add default via 198.18.20.1");
    wait_level(&srv, "internet");
    ns.ip("route add blackhole 198.18.41.0/24");
    let mut all = Vec::new();
    for e in stayed.until("route_added", 50) {
        all.push(e);
    }
    // The blackhole route is the last change: read to it.
    loop {
        let e = stayed.next().expect("the stream goes on");
        let last = e.data.contains("198.18.41.0/24");
        all.push(e);
        if last {
            break;
        }
    }
    let mut last_id = ready[0].id.unwrap();
    for e in &all {
        let v = check.line(&e.data);
        assert_eq!(e.event, v["type"].as_str().unwrap());
        let id = e.id.expect("every change has an id");
        assert_eq!(Some(id), v["seq"].as_u64());
        assert!(id > last_id, "{id} after {last_id}");
        last_id = id;
    }
    let kinds: Vec<&str> = all.iter().map(|e| e.event.as_str()).collect();
    for k in [
        "route_added",
        "route_removed",
        "address_added",
        "connectivity_changed",
    ] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    // The reconnect gets exactly what came after its last id.
    let header = format!("Last-Event-ID: {resume}");
    let mut back = Sse::open(&srv.socket, "/v1/events", &[&header]);
    let expected: Vec<_> = all.iter().filter(|e| e.id.unwrap() > resume).collect();
    for want in &expected {
        let got = back.next().unwrap();
        assert_eq!(&&got, want);
    }
    // An id from before the backlog (or another run): one resynced event with the state.
    let mut stale = Sse::open(&srv.socket, "/v1/events", &["Last-Event-ID: 99999999"]);
    let e = stale.next().unwrap();
    assert_eq!(e.event, "resynced");
    let v = schema::check(Schema::Watch, &e.data);
    assert_eq!(v["state"]["connectivity"]["overall"], "internet");
    // curl printed the same events as the Rust client, once the service ends its stream.
    let mut srv = srv;
    assert!(srv.terminate().success());
    let out = curl_reader.join().unwrap();
    let _ = curl.wait();
    let curl_ids: Vec<u64> = out
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .map(|v| v.parse().unwrap())
        .collect();
    // Its first id is its ready event's: the state it started from, which holds what came
    // before (an IPv6 address finishing DAD after the Rust client subscribed, say).
    let curl_ready = curl_ids
        .first()
        .copied()
        .expect("curl's ready event has an id");
    for e in all.iter().filter(|e| e.id.unwrap() > curl_ready) {
        assert!(curl_ids.contains(&e.id.unwrap()), "curl saw {e:?}");
    }
    assert!(
        all.last().unwrap().id.unwrap() > curl_ready,
        "curl was live before the last change"
    );
    assert!(curl_ids.windows(2).all(|w| w[0] < w[1]), "{curl_ids:?}");
    assert!(out.contains(": the service is stopping"), "a last comment");
    // The Rust client sees the same end.
    assert!(stayed.next().is_none());
    assert!(
        stayed
            .comments
            .iter()
            .any(|c| c == "the service is stopping")
    );
}

/// `promtool check metrics` finds nothing; OpenMetrics when asked; 2,000 scrapes, no error.
#[test]
fn metrics_pass_promtool_and_take_scraping() {
    require_tool("promtool", "prometheus");
    let ns = online("srvmet");
    let srv = Serve::start(&ns.name, &[]);
    wait_level(&srv, "internet");
    ns.ip("route add 198.18.44.0/24 via 198.18.20.1");
    common::wait_until("a counted event", Duration::from_secs(10), || {
        srv.get("/metrics")
            .1
            .contains("netreach_events_total{type=\"route_added\"}")
    });
    let (code, text) = srv.get("/metrics");
    assert_eq!(code, 200);
    for want in [
        "netreach_connectivity_state{family=\"ipv4\",level=\"internet\"} 1",
        "netreach_online 1",
        "netreach_interface_up{device=\"s0\"} 1",
        "netreach_interface_carrier{device=\"s0\"}",
        "netreach_events_total{type=",
        "netreach_resyncs_total 0",
        "netreach_netlink_messages_total",
        "netreach_sse_clients 0",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert!(text.contains(want), "{want} in\n{text}");
    }
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, om) = get_with(
        &srv.socket,
        "/metrics",
        &["Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"],
    );
    assert_eq!(code, 200);
    assert!(om.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    let start = Instant::now();
    for i in 0..2000 {
        let (code, body) = srv.get("/metrics");
        assert!(
            code == 200 && body.contains("netreach_online"),
            "scrape {i}: {code}"
        );
    }
    eprintln!("2000 scrapes in {:?}", start.elapsed());
}

/// A bad file is one line naming file, line and column, exit 2; on SIGHUP a bad file keeps
/// the running configuration, a good one replaces it.
#[test]
fn the_configuration_file_and_its_reload() {
    let ns = online("srvcfg");
    let dir = serve_util::scratch("cfg");
    let file = dir.join("netreach.toml");
    std::fs::write(&file, "[limits]\nmax_sse_clients = \"many\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_netreach"))
        .args(["--netns", &ns.name, "serve", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("netreach: {}:2:19: ", file.display())),
        "{err}"
    );
    std::fs::write(&file, "[limits]\nmax_sse_clients = 1\n").unwrap();
    let srv = Serve::start(&ns.name, &["--config", file.to_str().unwrap()]);
    let mut first = Sse::open(&srv.socket, "/v1/events", &[]);
    first.next().unwrap();
    assert_eq!(
        get_with(&srv.socket, "/v1/events", &[]).0,
        503,
        "one stream at most"
    );
    // A bad reload: the old configuration stays (still one stream at most, the first open).
    std::fs::write(&file, "[limits\n").unwrap();
    serve_util::signal(srv.pid(), "HUP");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(get_with(&srv.socket, "/v1/events", &[]).0, 503);
    assert_eq!(srv.get("/healthz").0, 200);
    // A good one: streams are closed with a comment, the new limit holds.
    std::fs::write(&file, "[limits]\nmax_sse_clients = 2\n").unwrap();
    serve_util::signal(srv.pid(), "HUP");
    // The old stream ends, with the comment; a change the namespace made meanwhile (IPv6
    // duplicate address detection finishing late on a loaded machine) may come before it.
    // Each read is bounded (10 s), and the stream ends or the test fails.
    let mut before_end = 0;
    while first.next().is_some() {
        before_end += 1;
        assert!(before_end < 100, "the old stream does not end");
    }
    assert!(
        first.comments.iter().any(|c| c.contains("reloading")),
        "the old stream ends with the reload comment: {:?}",
        first.comments
    );
    // The listeners are bound again: wait until the socket answers. A connection made to the
    // old listener while it closes is refused or reset (documented): not an answer yet.
    let answers = |socket: &std::path::Path| -> bool {
        let Ok(mut s) = std::os::unix::net::UnixStream::connect(socket) else {
            return false;
        };
        let req = b"GET /healthz HTTP/1.1\r\nHost: netreach\r\nConnection: close\r\n\r\n";
        let mut raw = Vec::new();
        s.write_all(req).is_ok()
            && s.read_to_end(&mut raw).is_ok()
            && raw.starts_with(b"HTTP/1.1 200")
    };
    common::wait_until(
        "the new configuration serves",
        Duration::from_secs(10),
        || answers(&srv.socket),
    );
    let _a = Sse::open(&srv.socket, "/v1/events", &[]);
    let _b = Sse::open(&srv.socket, "/v1/events", &[]);
    assert_eq!(get_with(&srv.socket, "/v1/events", &[]).0, 503);
    let _ = std::fs::remove_dir_all(&dir);
}
