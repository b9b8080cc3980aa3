//! `netreach serve` under load and abuse, and scraped by a real Prometheus: 1,000 event
//! streams, a stream that never reads, hostile requests, and Prometheus's own view of a
//! default route that goes away. Every wait is bounded; each test takes seconds.

#![cfg(target_os = "linux")]

#[path = "../../netreach/tests/common/mod.rs"]
mod common;
mod schema;
mod serve_util;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Ns;
use serve_util::{Scratch, Serve, Sse, connect, require_tool, scratch};

fn online(tag: &str) -> Ns {
    let ns = Ns::new(tag);
    ns.veth("l0", "l1");
    ns.ip("link set l0 up");
    ns.ip("link set l1 up");
    ns.ip("addr add 198.18.22.2/24 dev l0");
    ns.ip("route add default via 198.18.22.1");
    ns
}

fn metric(srv: &Serve, name: &str) -> f64 {
    let (_, text) = srv.get("/metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in\n{text}"))
}

/// A configuration file in a scratch directory (removed with the guard).
fn config(text: &str) -> (Scratch, String) {
    let dir = Scratch(scratch("cfg"));
    let p = dir.0.join("netreach.toml");
    std::fs::write(&p, text).unwrap();
    (dir, p.display().to_string())
}

#[test]
fn a_thousand_streams_all_get_the_change() {
    let ns = online("srvmany");
    let srv = Serve::start(&ns.name, &[]);
    let sent: Vec<_> = (0..1000)
        .map(|_| Sse::send(&srv.socket, "/v1/events?types=route_added", &[]))
        .collect();
    let mut clients: Vec<Sse> = sent.into_iter().map(|s| s.head()).collect();
    for c in &mut clients {
        assert_eq!(c.next().unwrap().event, "ready");
    }
    assert_eq!(metric(&srv, "netreach_sse_clients"), 1000.0);
    let rss = srv.rss_kb();
    eprintln!("RSS with 1,000 streams: {rss} kB");
    ns.ip("route add 198.18.42.0/24 via 198.18.22.1");
    let start = Instant::now();
    for c in &mut clients {
        // IPv6's own routes for the veth's link-local address may come first (once its
        // duplicate address detection is over, which a loaded machine may see after the
        // streams opened); nothing but `route_added` comes, and the change within a few.
        let mut seen = Vec::new();
        while seen.len() < 8 {
            let e = c.next().unwrap();
            assert_eq!(e.event, "route_added");
            if e.data.contains("198.18.42.0/24") {
                break;
            }
            seen.push(e.data);
        }
        assert!(seen.len() < 8, "the change is not among {seen:?}");
    }
    eprintln!("1,000 streams read the change in {:?}", start.elapsed());
}

/// A stream that never reads is closed once its queue is full; the service's memory stays
/// bounded and the others keep being served.
#[test]
fn a_stream_that_never_reads_is_dropped() {
    let ns = online("srvslow");
    let cfg = config("[limits]\nsse_queue = 2048\nbacklog = 256\n");
    let srv = Serve::start(&ns.name, &["--config", &cfg.1]);
    let mut slow = connect(&srv.socket);
    slow.write_all(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut reader = Sse::open(&srv.socket, "/v1/events?types=route_removed", &[]);
    reader.next().unwrap();
    // The reader reads as the changes come (its queue holds 2,048; a burst is at most 1,000 of its type).
    let reader = std::thread::spawn(move || {
        let mut removed = 0;
        while removed < 2000 {
            let e = reader.next().expect("the reader keeps its stream");
            if e.event == "route_removed" {
                removed += 1;
            }
        }
    });
    let before = srv.rss_kb();
    // 4,000 changes, far more than the slow stream's queue and socket buffer hold. Each
    // batch waits until the service has it: the polling backend would merge an addition and
    // its removal within one poll into nothing.
    let routes = |verb: &str| -> String {
        (0..1000)
            .map(|i| format!("route {verb} 198.19.{}.{}/32 dev l0\n", i / 250, i % 250))
            .collect()
    };
    for _ in 0..2 {
        ns.ip_batch(&routes("add"));
        common::wait_until("1,000 routes added", Duration::from_secs(20), || {
            srv.get("/v1/status").1.contains("198.19.3.249/32")
        });
        ns.ip_batch(&routes("del"));
        common::wait_until("1,000 routes removed", Duration::from_secs(20), || {
            !srv.get("/v1/status").1.contains("198.19.3.249/32")
        });
    }
    common::wait_until("the slow stream dropped", Duration::from_secs(20), || {
        metric(&srv, "netreach_sse_dropped_total") >= 1.0
    });
    let after = srv.rss_kb();
    eprintln!("RSS before {before} kB, after 4,000 changes with a stuck stream {after} kB");
    assert!(
        after < before + 30 * 1024,
        "memory bounded: {before} → {after} kB"
    );
    // The slow client finds its stream closed once it reads what its socket held.
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut sink = vec![0; 1 << 16];
    let mut total = 0usize;
    loop {
        match slow.read(&mut sink) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) => panic!("the stuck stream was not closed: {e} after {total} bytes"),
        }
        assert!(total < 64 << 20, "bounded");
    }
    // The reading client got every removal.
    reader.join().expect("the reader got every change");
    assert_eq!(srv.get("/healthz").0, 200);
}

/// A 1 MiB header, a slowloris client, a malformed request line and 2,000 idle connections:
/// each is answered or closed within its limit, and the service keeps serving the others.
#[test]
fn hostile_requests_are_bounded() {
    let ns = online("srvhostile");
    let cfg = config("[limits]\nheader_timeout_ms = 1000\nmax_connections = 2100\n");
    let srv = Serve::start(&ns.name, &["--config", &cfg.1]);
    // An event stream lives longer than the header timeout.
    let mut stream = Sse::open(&srv.socket, "/v1/events?types=route_added", &[]);
    stream.next().unwrap();
    // 2,000 idle connections, then one more than the limit allows.
    let idle: Vec<_> = (0..2000).map(|_| connect(&srv.socket)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let (code, _) = srv.get("/healthz");
    assert_eq!(code, 200, "served beside 2,000 idle connections");
    let mut extra: Vec<_> = (0..200).map(|_| connect(&srv.socket)).collect();
    let mut refused = 0;
    for c in &mut extra {
        let mut buf = String::new();
        if c.read_to_string(&mut buf).is_ok() && buf.starts_with("HTTP/1.1 503") {
            refused += 1;
        }
    }
    assert!(
        refused >= 90,
        "over max_connections: 503 ({refused} of 200)"
    );
    // A 1 MiB header: 431, or the connection closed; never held.
    let mut big = connect(&srv.socket);
    let mut req = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', 1 << 20));
    req.extend(b"\r\n\r\n");
    let _ = big.write_all(&req);
    let mut answer = String::new();
    let _ = big.read_to_string(&mut answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer:.80}"
    );
    // A malformed request line: 400.
    let mut bad = connect(&srv.socket);
    bad.write_all(b"GARBAGE\x01 / NOT-HTTP\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = bad.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:.80}");
    // Slowloris: a header a byte every 50 ms is cut off at the header timeout (1 s).
    let mut slowloris = connect(&srv.socket);
    let start = Instant::now();
    let cut = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
        .iter()
        .cycle()
        .take(100)
        .any(|b| {
            std::thread::sleep(Duration::from_millis(50));
            slowloris.write_all(&[*b]).is_err()
        });
    assert!(cut, "slowloris cut off");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    // The idle connections were closed by the header timeout.
    for mut c in idle {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0; 512];
        match c.read(&mut buf) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => panic!("an idle connection stayed open: {e}"),
        }
    }
    // And the stream opened first still gets its changes.
    ns.ip("route add 198.18.43.0/24 via 198.18.22.1");
    let e = stream
        .next()
        .expect("the stream outlives the header timeout");
    assert_eq!(e.event, "route_added");
    assert_eq!(srv.get("/healthz").0, 200);
}

/// A free TCP port on the loopback of the namespace.
fn free_port(ns: &Ns) -> u16 {
    ns.run(|| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    })
}

/// One GET on the loopback of the namespace: the body, or `None` if nothing answers.
fn get_in(ns: &Ns, port: u16, path: &str) -> Option<String> {
    let path = path.to_owned();
    ns.run(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())
    })
}

/// Debian's Prometheus, in the same namespace as the service (a server on the host's
/// loopback cannot reach one inside a namespace, and Prometheus scrapes no Unix socket),
/// scraping every second, sees the IPv4 internet level go from 1 to 0.
#[test]
fn prometheus_sees_the_default_route_go() {
    require_tool("prometheus", "prometheus");
    let ns = online("srvprom");
    let (port, prom_port) = (free_port(&ns), free_port(&ns));
    let listen = format!("127.0.0.1:{port}");
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &ns.name, env!("CARGO_BIN_EXE_netreach")]);
    c.args(common::backend_args());
    let _srv = Serve::spawn(c, &["--listen", &listen]);
    let dir = scratch("prom");
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  \
             - job_name: netreach\n    static_configs:\n      - targets: ['{listen}']\n"
        ),
    )
    .unwrap();
    let prom = Command::new("ip")
        .args(["netns", "exec", &ns.name, "prometheus"])
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    struct Kill(std::process::Child, std::path::PathBuf);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
            let _ = std::fs::remove_dir_all(&self.1);
        }
    }
    let _prom = Kill(prom, dir.clone());
    let query = "/api/v1/query?query=netreach_connectivity_state%7Bfamily%3D%22ipv4%22%2Clevel%3D%22internet%22%7D";
    let value = || -> Option<String> {
        let body = get_in(&ns, prom_port, query)?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["data"]["result"][0]["value"][1]
            .as_str()
            .map(str::to_owned)
    };
    common::wait_until("Prometheus scrapes 1", Duration::from_secs(60), || {
        value().as_deref() == Some("1")
    });
    ns.ip("route del default");
    common::wait_until("Prometheus scrapes 0", Duration::from_secs(30), || {
        value().as_deref() == Some("0")
    });
}
