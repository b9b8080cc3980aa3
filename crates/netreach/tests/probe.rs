//! Real-kernel tests of the HTTP probe: namespaces, veth uplinks and test servers, all made here.
//!
//! The client namespace has two uplinks, each to its own server namespace holding the same
//! endpoint address, so a verdict can only differ between uplinks if the probe really went out
//! through the interface it was bound to. Probes run on a thread inside the client namespace;
//! the DNS tests run the probe in a child process under `ip netns exec`, which bind-mounts the
//! namespace's own `resolv.conf`, `hosts` and `nsswitch.conf` (`probe/dns.rs`); the namespaces,
//! topology and servers are in `probe/lab.rs`. Addresses are only from
//! 198.18.0.0/15 and 2001:db8::/32; the default (public) endpoints are never used.
//!
//! Needs root (namespaces, `SO_BINDTODEVICE`) and iproute2.

// Every test here builds network namespaces, which only Linux has.
#![cfg(target_os = "linux")]

#[path = "probe/dns.rs"]
mod dns;
#[path = "probe/lab.rs"]
#[allow(dead_code)] // The lab serves several test files; this one uses part of it.
mod lab;

use std::time::{Duration, Instant};

use lab::{
    Conn, ENDPOINT_V4, ENDPOINT_V6, Lab, NO_CONTENT, Server, tls_no_content, tls_server_config,
};
use netreach::probe::{
    ProbeEndpoint, ProbeOptions, ProbeResult, ProbeVerdict, probe, probe_with, tls_config,
};
use netreach_core::Family;
use netreach_core::probe::{ProbePhase, ProbeReason};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

pub const TIMEOUT: Duration = Duration::from_secs(5);
const BODY: &str = "netreach probe ok";
const LOGIN_PAGE: &str = "<html><head><title>Guest WiFi</title></head><body>Log in</body></html>";

/// A `204` endpoint at `url`.
pub fn no_content(url: &str) -> ProbeEndpoint {
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

#[test]
fn address_literal_of_the_other_family_is_limited() {
    // Decided before any socket exists, so no namespace is needed and nothing is sent.
    let result = probe(
        &no_content("http://198.18.1.2/generate_204"),
        "lo",
        Family::Ipv6,
        TIMEOUT,
    )
    .unwrap();
    assert_eq!(
        result.verdict,
        limited(ProbeReason::NoAddressForFamily),
        "{result}"
    );
    assert_eq!(result.remote, None);
}
