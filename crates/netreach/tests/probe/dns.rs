//! The DNS tests: the probe runs in a child process under `ip netns exec`, so that it resolves
//! with the namespace's own `/etc/netns/<name>/` files (`resolv.conf`, `hosts`, `nsswitch.conf`).

use std::process::Command;
use std::time::Duration;

use netreach::probe::probe;
use netreach_core::Family;

use super::lab::{Conn, ENDPOINT_V4, ENDPOINT_V6, Lab, NO_CONTENT, Netns, Server};
use super::{TIMEOUT, no_content};

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
        .args(["dns::child_probe", "--exact", "--ignored", "--nocapture"])
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
