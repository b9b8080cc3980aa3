//! Real-kernel tests of the HTTP probe: namespaces, veth uplinks and test servers, all made here.
//!
//! The client namespace has two uplinks, each to its own server namespace holding the same
//! endpoint address, so a verdict can only differ between uplinks if the probe really went out
//! through the interface it was bound to. Probes run on a thread inside the client namespace;
//! the DNS tests run the probe in a child process under `ip netns exec`, which bind-mounts the
//! namespace's own `resolv.conf`, `hosts` and `nsswitch.conf`. Addresses are only from
//! 198.18.0.0/15 and 2001:db8::/32; the default (public) endpoints are never used.
//!
//! Needs root (namespaces, `SO_BINDTODEVICE`) and iproute2.

#[path = "probe/lab.rs"]
mod lab;

use std::io::{Read, Write};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lab::{Conn, ENDPOINT_V4, ENDPOINT_V6, Lab, Netns, Server};
use netreach::probe::{
    ProbeEndpoint, ProbeOptions, ProbeResult, ProbeVerdict, probe, probe_with, tls_config,
};
use netreach_core::Family;
use netreach_core::probe::{ProbePhase, ProbeReason};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const TIMEOUT: Duration = Duration::from_secs(5);
const BODY: &str = "netreach probe ok";
const NO_CONTENT: &[u8] = b"HTTP/1.1 204 No Content\r\nX-Probe: genuine\r\n\r\n";
const LOGIN_PAGE: &str = "<html><head><title>Guest WiFi</title></head><body>Log in</body></html>";

/// A `204` endpoint at `url`.
fn no_content(url: &str) -> ProbeEndpoint {
    ProbeEndpoint::no_content(url.parse().expect("test URL"))
}

/// A `200` endpoint at `url` answering [`BODY`].
fn body(url: &str) -> ProbeEndpoint {
    ProbeEndpoint::body(url.parse().expect("test URL"), BODY)
}

/// Probes from a thread inside the lab's client namespace.
fn probe_from(
    lab: &Lab,
    endpoint: ProbeEndpoint,
    interface: &str,
    family: Family,
    timeout: Duration,
) -> ProbeResult {
    let interface = interface.to_owned();
    lab.client
        .run(move || probe(&endpoint, &interface, family, timeout))
        .expect("probe could run")
}

fn limited(reason: ProbeReason) -> ProbeVerdict {
    ProbeVerdict::Limited { reason }
}

/// A `200` with `body`, with its length.
fn ok_with(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn healthy_endpoint_is_full() {
    let lab = Lab::new();
    let v4 = Server::start(&lab.servers[0], "198.18.1.2:8080", |mut c: Conn| {
        c.send(NO_CONTENT)
    });
    let v6 = Server::start(&lab.servers[0], "[2001:db8:1::2]:8080", |mut c: Conn| {
        c.send(&ok_with(BODY))
    });

    let result = probe_from(
        &lab,
        no_content("http://198.18.1.2:8080/generate_204").with_header("x-probe", "genuine"),
        "up0",
        Family::Ipv4,
        TIMEOUT,
    );
    assert_eq!(result.verdict, ProbeVerdict::Full, "{result}");
    assert_eq!(result.remote, Some(v4.addr));
    assert_eq!(
        (result.interface.as_str(), result.family),
        ("up0", Family::Ipv4)
    );
    assert!(result.latency < TIMEOUT);
    let requests = v4.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert!(
        request.starts_with("GET /generate_204 HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request.contains("\r\nHost: 198.18.1.2:8080\r\n"),
        "{request}"
    );
    assert!(request.contains("\r\nUser-Agent: netreach/"), "{request}");
    assert!(request.contains("\r\nConnection: close\r\n"), "{request}");

    let result = probe_from(
        &lab,
        body("http://[2001:db8:1::2]:8080/connecttest.txt"),
        "up0",
        Family::Ipv6,
        TIMEOUT,
    );
    assert_eq!(result.verdict, ProbeVerdict::Full, "{result}");
    assert_eq!(result.remote, Some(v6.addr));
    assert!(v6.requests()[0].contains("\r\nHost: [2001:db8:1::2]:8080\r\n"));
}

#[test]
fn redirect_is_portal_with_its_url() {
    let lab = Lab::new();
    let _server = Server::start(&lab.servers[0], "198.18.1.2:80", |mut c: Conn| {
        c.send(
            b"HTTP/1.1 302 Found\r\nLocation: http://198.18.1.2/login?from=probe\r\n\
              Content-Length: 0\r\n\r\n",
        )
    });
    let result = probe_from(
        &lab,
        no_content("http://198.18.1.2/generate_204"),
        "up0",
        Family::Ipv4,
        TIMEOUT,
    );
    assert_eq!(
        result.verdict,
        ProbeVerdict::Portal {
            url: Some("http://198.18.1.2/login?from=probe".into()),
            reason: ProbeReason::Redirect { status: 302 },
        },
        "{result}"
    );
}

#[test]
fn login_page_body_is_portal() {
    let lab = Lab::new();
    let _server = Server::start(&lab.servers[0], "198.18.1.2:80", |mut c: Conn| {
        c.send(&ok_with(LOGIN_PAGE))
    });
    let result = probe_from(
        &lab,
        body("http://198.18.1.2/connecttest.txt"),
        "up0",
        Family::Ipv4,
        TIMEOUT,
    );
    assert_eq!(
        result.verdict,
        ProbeVerdict::Portal {
            url: None,
            reason: ProbeReason::WrongContent { status: 200 },
        },
        "{result}"
    );
}

#[test]
fn network_authentication_required_is_portal() {
    let lab = Lab::new();
    let _server = Server::start(&lab.servers[0], "[2001:db8:1::2]:80", |mut c: Conn| {
        let page = format!("<meta http-equiv=refresh content=\"0;url=/login\">{LOGIN_PAGE}");
        c.send(
            format!(
                "HTTP/1.1 511 Network Authentication Required\r\nContent-Length: {}\r\n\r\n{page}",
                page.len()
            )
            .as_bytes(),
        )
    });
    let result = probe_from(
        &lab,
        no_content("http://[2001:db8:1::2]/generate_204"),
        "up0",
        Family::Ipv6,
        TIMEOUT,
    );
    assert_eq!(
        result.verdict,
        ProbeVerdict::Portal {
            url: None,
            reason: ProbeReason::NetworkAuthenticationRequired,
        },
        "{result}"
    );
}

#[test]
fn silent_server_is_limited_within_the_timeout() {
    let lab = Lab::new();
    let server = Server::start(&lab.servers[0], "198.18.1.2:80", |c: Conn| c.hold());
    let timeout = Duration::from_millis(1500);
    let start = Instant::now();
    let result = probe_from(
        &lab,
        no_content("http://198.18.1.2/generate_204"),
        "up0",
        Family::Ipv4,
        timeout,
    );
    let elapsed = start.elapsed();
    assert_eq!(
        result.verdict,
        limited(ProbeReason::Timeout {
            phase: ProbePhase::Response
        }),
        "{result}"
    );
    assert!(elapsed >= timeout, "gave up early: {elapsed:?}");
    assert!(
        elapsed < timeout + Duration::from_secs(1),
        "overran: {elapsed:?}"
    );
    assert_eq!(server.accepted(), 1);
}

#[test]
fn refused_connection_is_limited() {
    let lab = Lab::new();
    // Nothing listens on port 81 of the server: its kernel answers with a reset.
    for (url, family) in [
        ("http://198.18.1.2:81/", Family::Ipv4),
        ("http://[2001:db8:1::2]:81/", Family::Ipv6),
    ] {
        let result = probe_from(&lab, no_content(url), "up0", family, TIMEOUT);
        assert_eq!(
            result.verdict,
            limited(ProbeReason::ConnectionRefused),
            "{result}"
        );
    }
}

#[test]
fn unanswered_connect_times_out() {
    let lab = Lab::new();
    // 198.18.1.99 is on the uplink's subnet but nobody has it: no neighbour ever answers.
    let timeout = Duration::from_secs(1);
    let result = probe_from(
        &lab,
        no_content("http://198.18.1.99/"),
        "up0",
        Family::Ipv4,
        timeout,
    );
    assert_eq!(
        result.verdict,
        limited(ProbeReason::Timeout {
            phase: ProbePhase::Connect
        }),
        "{result}"
    );
    assert!(
        result.latency < timeout + Duration::from_millis(500),
        "{result}"
    );
}

#[test]
fn endless_body_is_bounded_and_returns() {
    let lab = Lab::new();
    let server = Server::start(&lab.servers[0], "198.18.1.2:80", |mut c: Conn| {
        c.send(format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n{BODY}").as_bytes());
        let chunk = vec![b'x'; 64 * 1024];
        let until = Instant::now() + Duration::from_secs(30);
        // Stream until the client hangs up (or the test ends).
        while Instant::now() < until {
            if std::io::Write::write_all(&mut c.stream, &chunk).is_err() {
                break;
            }
        }
    });
    let result = probe_from(
        &lab,
        body("http://198.18.1.2/connecttest.txt"),
        "up0",
        Family::Ipv4,
        TIMEOUT,
    );
    assert_eq!(result.verdict, ProbeVerdict::Full, "{result}");
    assert!(
        result.latency < Duration::from_secs(2),
        "did not stop at the body prefix: {result}"
    );
    assert_eq!(server.accepted(), 1);
}

#[test]
fn oversized_headers_are_limited() {
    let lab = Lab::new();
    let _server = Server::start(&lab.servers[0], "198.18.1.2:80", |mut c: Conn| {
        let mut head = String::from("HTTP/1.1 204 No Content\r\n");
        for i in 0..1000 {
            head.push_str(&format!("X-Filler-{i}: {}\r\n", "a".repeat(40)));
        }
        head.push_str("\r\n");
        c.send(head.as_bytes());
    });
    let result = probe_from(
        &lab,
        no_content("http://198.18.1.2/generate_204"),
        "up0",
        Family::Ipv4,
        TIMEOUT,
    );
    assert_eq!(
        result.verdict,
        limited(ProbeReason::OversizedHeaders),
        "{result}"
    );
}

#[test]
fn tls_failure_is_limited() {
    let lab = Lab::new();
    // A plain-HTTP server where the probe expects TLS: it answers the ClientHello with HTTP.
    let server = Server::start_raw(&lab.servers[0], "198.18.1.2:443", |mut c: Conn| {
        c.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    });
    let result = probe_from(
        &lab,
        no_content("https://198.18.1.2/generate_204"),
        "up0",
        Family::Ipv4,
        TIMEOUT,
    );
    assert_eq!(
        result.verdict,
        limited(ProbeReason::TlsHandshake),
        "{result}"
    );
    assert_eq!(server.accepted(), 1);
}

/// The test server's TLS configuration: a certificate for 198.18.1.2, 2001:db8:1::2 and
/// `probe.test`, issued by a test CA whose key was thrown away (see `probe/tls/`).
fn tls_server_config() -> Arc<rustls::ServerConfig> {
    let cert = CertificateDer::from_pem_slice(include_bytes!("probe/tls/server.pem")).unwrap();
    let key = PrivateKeyDer::from_pem_slice(include_bytes!("probe/tls/server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    Arc::new(config)
}

/// Answers `204` over TLS.
fn tls_no_content(config: &Arc<rustls::ServerConfig>, c: Conn) {
    let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, c.stream);
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let _ = tls.write_all(NO_CONTENT);
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

#[test]
fn https_endpoint_with_a_trusted_certificate_is_full() {
    let lab = Lab::new();
    let config = tls_server_config();
    let mut servers = Vec::new();
    for addr in ["198.18.1.2:443", "[2001:db8:1::2]:443"] {
        let config = config.clone();
        servers.push(Server::start_raw(&lab.servers[0], addr, move |c: Conn| {
            tls_no_content(&config, c)
        }));
    }
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(include_bytes!("probe/tls/ca.pem")).unwrap())
        .unwrap();
    let trusting = ProbeOptions::new(TIMEOUT).tls(tls_config(roots).unwrap());
    for (url, family) in [
        ("https://198.18.1.2/generate_204", Family::Ipv4),
        ("https://[2001:db8:1::2]/generate_204", Family::Ipv6),
    ] {
        let endpoint = no_content(url);
        let options = trusting.clone();
        let result = lab
            .client
            .run(move || probe_with(&endpoint, "up0", family, &options))
            .unwrap();
        assert_eq!(result.verdict, ProbeVerdict::Full, "{result}");
    }
    // With the default (public) roots the test CA is not trusted.
    let result = probe_from(
        &lab,
        no_content("https://198.18.1.2/generate_204"),
        "up0",
        Family::Ipv4,
        TIMEOUT,
    );
    assert_eq!(
        result.verdict,
        limited(ProbeReason::TlsCertificate),
        "{result}"
    );
    assert_eq!(servers[0].accepted(), 2);
    assert_eq!(servers[1].accepted(), 1);
}

#[test]
fn uplinks_are_told_apart() {
    let lab = Lab::new();
    // The same endpoint address behind both uplinks: healthy behind up0, a portal behind up1.
    let mut servers = Vec::new();
    for addr in [format!("{ENDPOINT_V4}:80"), format!("[{ENDPOINT_V6}]:80")] {
        servers.push(Server::start(&lab.servers[0], &addr, |mut c: Conn| {
            c.send(NO_CONTENT)
        }));
        servers.push(Server::start(&lab.servers[1], &addr, |mut c: Conn| {
            c.send(
                b"HTTP/1.1 302 Found\r\nLocation: http://portal.test/\r\nContent-Length: 0\r\n\r\n",
            )
        }));
    }
    for (url, family) in [
        (format!("http://{ENDPOINT_V4}/generate_204"), Family::Ipv4),
        (format!("http://[{ENDPOINT_V6}]/generate_204"), Family::Ipv6),
    ] {
        let endpoint = no_content(&url);
        let healthy = probe_from(&lab, endpoint.clone(), "up0", family, TIMEOUT);
        let portal = probe_from(&lab, endpoint, "up1", family, TIMEOUT);
        assert_eq!(healthy.verdict, ProbeVerdict::Full, "{healthy}");
        assert_eq!(
            portal.verdict.portal_url(),
            Some("http://portal.test/"),
            "{portal}"
        );
    }
    // Each server saw exactly the probe of its own uplink and family.
    for server in &servers {
        assert_eq!(server.accepted(), 1, "{}", server.addr);
    }
}

#[test]
fn missing_or_down_interface_is_none() {
    let lab = Lab::new();
    let _server = Server::start(&lab.servers[1], "198.18.2.2:80", |mut c: Conn| {
        c.send(NO_CONTENT)
    });
    let endpoint = no_content("http://198.18.2.2/");
    let result = probe_from(&lab, endpoint.clone(), "nope0", Family::Ipv4, TIMEOUT);
    assert_eq!(
        result.verdict,
        ProbeVerdict::None {
            reason: ProbeReason::NoSuchInterface
        },
        "{result}"
    );
    assert_eq!(
        probe_from(&lab, endpoint.clone(), "up1", Family::Ipv4, TIMEOUT).verdict,
        ProbeVerdict::Full
    );
    lab.client.ip(&["link", "set", "up1", "down"]);
    // Taking the link down removes its routes: nothing can be sent through it.
    let result = probe_from(&lab, endpoint, "up1", Family::Ipv4, TIMEOUT);
    assert_eq!(
        result.verdict,
        ProbeVerdict::None {
            reason: ProbeReason::NoRoute
        },
        "{result}"
    );
}

#[test]
fn invalid_interface_name_is_an_error() {
    let endpoint = no_content("http://198.18.1.2/");
    // Rejected before any socket is made, so no namespace is needed.
    for name in ["", "a-very-long-interface-name", "eth0/1", "eth 0"] {
        assert!(
            probe(&endpoint, name, Family::Ipv4, TIMEOUT).is_err(),
            "{name:?}"
        );
    }
}

/// Runs [`child_probe`] under `ip netns exec` in `ns`, so the probe resolves names with the
/// namespace's `/etc/netns/<name>/` files; returns the result as JSON.
fn probe_via_netns_exec(
    ns: &Netns,
    url: &str,
    interface: &str,
    family: Family,
    timeout: Duration,
) -> serde_json::Value {
    let exe = std::env::current_exe().expect("test executable");
    let spec = format!("{url} {interface} {family} {}", timeout.as_millis());
    let out = Command::new("ip")
        .args(["netns", "exec", ns.name()])
        .arg(exe)
        .args(["child_probe", "--exact", "--ignored", "--nocapture"])
        .env("NETREACH_PROBE_CHILD", &spec)
        .output()
        .expect("run child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("NETREACH-RESULT "))
        .unwrap_or_else(|| {
            panic!(
                "child printed no result for {spec}: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    serde_json::from_str(line).expect("child result is JSON")
}

/// Gives the lab's client namespace its own resolver files: `probe.test` in `hosts`, and
/// `nameserver` as the only DNS server.
fn resolver_files(ns: &Netns, nameserver: &str) {
    ns.write_etc("nsswitch.conf", "hosts: files dns\n");
    ns.write_etc(
        "hosts",
        &format!("127.0.0.1 localhost\n{ENDPOINT_V4} probe.test\n{ENDPOINT_V6} probe.test\n"),
    );
    ns.write_etc(
        "resolv.conf",
        &format!("nameserver {nameserver}\noptions timeout:3 attempts:1\n"),
    );
}

/// Not a test: the probe half of the DNS tests, run in a child process inside a namespace.
#[test]
#[ignore = "helper run by the DNS tests under `ip netns exec`"]
fn child_probe() {
    let Ok(spec) = std::env::var("NETREACH_PROBE_CHILD") else {
        return;
    };
    let parts: Vec<&str> = spec.split(' ').collect();
    let [url, interface, family, millis] = parts[..] else {
        panic!("bad child spec {spec:?}");
    };
    let family = if family == "ipv6" {
        Family::Ipv6
    } else {
        Family::Ipv4
    };
    let timeout = Duration::from_millis(millis.parse().expect("millis"));
    let result = probe(&no_content(url), interface, family, timeout).expect("probe could run");
    println!(
        "NETREACH-RESULT {}",
        serde_json::to_string(&result).expect("json")
    );
}

#[test]
fn names_resolve_with_the_namespace_resolver() {
    let lab = Lab::new();
    resolver_files(&lab.client, "198.18.1.2");
    let mut servers = Vec::new();
    for addr in [format!("{ENDPOINT_V4}:80"), format!("[{ENDPOINT_V6}]:80")] {
        servers.push(Server::start(&lab.servers[0], &addr, |mut c: Conn| {
            c.send(NO_CONTENT)
        }));
        servers.push(Server::start(&lab.servers[1], &addr, |mut c: Conn| {
            c.send(b"HTTP/1.1 511 Network Authentication Required\r\nContent-Length: 0\r\n\r\n")
        }));
    }
    for family in [Family::Ipv4, Family::Ipv6] {
        let url = "http://probe.test/generate_204";
        let up0 = probe_via_netns_exec(&lab.client, url, "up0", family, TIMEOUT);
        let up1 = probe_via_netns_exec(&lab.client, url, "up1", family, TIMEOUT);
        assert_eq!(up0["verdict"], "full", "{up0}");
        assert_eq!(up1["verdict"], "portal", "{up1}");
        assert_eq!(up1["reason"]["kind"], "network_authentication_required");
        let endpoint = match family {
            Family::Ipv4 => format!("{ENDPOINT_V4}:80"),
            Family::Ipv6 => format!("[{ENDPOINT_V6}]:80"),
        };
        assert_eq!(up0["remote"], endpoint.as_str(), "{up0}");
    }
    for server in &servers {
        assert_eq!(server.accepted(), 1, "{}", server.addr);
        assert!(server.requests()[0].contains("\r\nHost: probe.test\r\n"));
    }
}

#[test]
fn unresolvable_name_is_limited() {
    let lab = Lab::new();
    // The only DNS server is the first server namespace, where nothing listens on port 53:
    // the query is refused at once.
    resolver_files(&lab.client, "198.18.1.2");
    let result = probe_via_netns_exec(
        &lab.client,
        "http://nowhere.test/generate_204",
        "up0",
        Family::Ipv4,
        TIMEOUT,
    );
    assert_eq!(result["verdict"], "limited", "{result}");
    assert_eq!(result["reason"]["kind"], "dns_failed", "{result}");
    assert!(result["remote"].is_null(), "{result}");
}

#[test]
fn unanswered_dns_times_out() {
    let lab = Lab::new();
    // A DNS server address on the uplink's subnet that nobody has: queries go unanswered
    // longer than the probe's timeout.
    resolver_files(&lab.client, "198.18.1.99");
    let timeout = Duration::from_secs(1);
    let result = probe_via_netns_exec(
        &lab.client,
        "http://nowhere.test/generate_204",
        "up0",
        Family::Ipv4,
        timeout,
    );
    assert_eq!(result["verdict"], "limited", "{result}");
    assert_eq!(result["reason"]["kind"], "timeout", "{result}");
    assert_eq!(result["reason"]["phase"], "dns", "{result}");
    let latency = result["latency_ms"].as_f64().expect("latency");
    assert!((1000.0..1500.0).contains(&latency), "{result}");
}
