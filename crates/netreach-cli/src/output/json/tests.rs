//! Every shape the namespace tests cannot make (every reason of every kind, every verdict, a
//! multipath route, `lagged` and `resynced` lines, an interface that is gone), built from
//! values and held to the schemas in `docs/schema/` with the same helper as the CLI tests.

#[path = "../../../tests/schema/mod.rs"]
mod schema;

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use netreach::core::connectivity::{self, ConnectivityConfig};
use netreach::core::probe::{ProbePhase, ProbeReason};
use netreach::core::reach::{LookupSource, NamedInterface, Path, Reachability, Reason};
use netreach::probe::{ProbeResult, ProbeVerdict};
use netreach::{Address, AddressFlags, Event, Family, Interface, InterfaceChanges, LinkKind};
use netreach::{Notification, OperState, Route, RouteType, Rule, Scope, Snapshot, Verification};
use schema::{Schema, check, check_value, errors, parse_strict};
use serde::Serialize;
use serde_json::Value;

use super::{Line, Names, Probe, Reach, ReasonJson, Status};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Serialises `v` and checks it as the binary's output would be: text, then schema.
fn printed(schema: Schema, v: &impl Serialize) -> Value {
    check(schema, &serde_json::to_string(v).unwrap())
}

fn up(index: u32, name: &str) -> Interface {
    let mut i = Interface::new(index, name, LinkKind::Veth);
    (i.admin_up, i.carrier, i.oper_state) = (true, true, OperState::Up);
    i
}

fn address(interface: u32, a: &str, prefix_len: u8) -> Address {
    Address {
        interface,
        address: ip(a),
        prefix_len,
        scope: Scope::Global,
        flags: AddressFlags::empty(),
    }
}

/// Two uplinks, a multipath route over both, a blackhole route in table 7 and a rule.
fn snapshot() -> Snapshot {
    let mut multipath = Route::unicast("198.19.0.0/16".parse().unwrap(), None, 2);
    multipath.nexthops = [(2, "198.18.1.1"), (3, "198.18.2.1")]
        .map(|(interface, gw)| netreach::core::NextHop {
            gateway: Some(ip(gw)),
            interface,
            linkdown: interface == 3,
        })
        .into();
    let mut blackhole = Route::unicast("198.18.200.0/24".parse().unwrap(), None, 2);
    (blackhole.kind, blackhole.table) = (RouteType::Blackhole, 7);
    let default = Route::unicast("0.0.0.0/0".parse().unwrap(), Some(ip("198.18.1.1")), 2);
    let v6 = Route::unicast("::/0".parse().unwrap(), Some(ip("2001:db8:1::1")), 3);
    Snapshot::from_parts(
        [up(2, "up0"), up(3, "up1")],
        [
            address(2, "198.18.1.2", 24),
            address(3, "198.18.2.2", 24),
            address(3, "2001:db8:1::2", 64),
        ],
        [multipath, blackhole, default, v6],
    )
    .with_rules([Rule::lookup(Family::Ipv4, 100, 7)])
}

fn results() -> Vec<ProbeResult> {
    let result = |interface: &str, family, verdict| ProbeResult {
        interface: interface.into(),
        family,
        verdict,
        latency: Duration::from_nanos(1_766_271),
        remote: Some("198.18.0.1:80".parse().unwrap()),
    };
    vec![
        result("up0", Family::Ipv4, ProbeVerdict::Full),
        result(
            "up1",
            Family::Ipv4,
            ProbeVerdict::Portal {
                url: Some("http://portal.test/login".into()),
                reason: ProbeReason::Redirect { status: 302 },
            },
        ),
        result(
            "up1",
            Family::Ipv6,
            ProbeVerdict::Limited {
                reason: ProbeReason::Timeout {
                    phase: ProbePhase::Tls,
                },
            },
        ),
        ProbeResult {
            remote: None,
            latency: Duration::ZERO,
            ..result(
                "up0",
                Family::Ipv6,
                ProbeVerdict::None {
                    reason: ProbeReason::NoRoute,
                },
            )
        },
    ]
}

#[test]
fn status_with_every_part() {
    let snap = snapshot();
    let conn = connectivity::evaluate(&snap, &ConnectivityConfig::default());
    let results = results();
    let v = printed(
        Schema::Status,
        &Status::new(&snap)
            .with_connectivity(&conn)
            .with_probes(&results),
    );
    assert_eq!(v["schema_version"], 1);
    assert!(v["connectivity"]["primary_interface"].is_string(), "{v}");
    let routes = v["routes"].as_array().unwrap();
    let multipath = routes
        .iter()
        .find(|r| r["destination"] == "198.19.0.0/16")
        .unwrap();
    assert_eq!(multipath["nexthops"][1]["interface"], "up1");
    assert_eq!(multipath["nexthops"][1]["ifindex"], 3);
    assert!(routes.iter().any(|r| r["route_type"] == "blackhole"));
    let probes = &v["verification"]["results"];
    assert_eq!(
        probes[0]["latency_us"], 1766,
        "whole microseconds: {probes}"
    );
    assert_eq!(probes[1]["reason"]["kind"], "redirect");
    assert_eq!(probes[1]["reason"]["status"], 302);
    assert_eq!(probes[1]["reason"]["message"], "redirected with 302");
    assert_eq!(probes[1]["portal_url"], "http://portal.test/login");

    // Without probes and connectivity: `verification` is null, and a status without its
    // connectivity is no status.
    let v = printed(Schema::Status, &Status::new(&snap).with_connectivity(&conn));
    assert_eq!(v["verification"], Value::Null);
    let bare = serde_json::to_value(Status::new(&snap)).unwrap();
    assert!(!errors(Schema::Status, &bare).is_empty());

    // Windows' Network List Manager hint, where the system gives one.
    assert!(v.get("system_hint").is_none(), "absent without a hint: {v}");
    let hint = netreach::SystemHint::from_raw(0x40 | 0x200, Some(0x2));
    let v = printed(
        Schema::Status,
        &Status::new(&snap)
            .with_connectivity(&conn)
            .with_system_hint(Some(hint)),
    );
    assert_eq!(v["system_hint"]["ipv4"], "internet");
    assert_eq!(v["system_hint"]["ipv6"], "local_network");
    assert_eq!(v["system_hint"]["metered"], true);
    let unknown_cost = netreach::SystemHint::from_raw(0, None);
    let v = printed(
        Schema::Status,
        &Status::new(&snap)
            .with_connectivity(&conn)
            .with_system_hint(Some(unknown_cost)),
    );
    assert_eq!(v["system_hint"]["metered"], Value::Null);
}

#[test]
fn probe_document_has_every_verdict() {
    let v = Verification::from_results(results());
    let doc = printed(Schema::Probe, &Probe::new(&v));
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["internet"], "full");
    let verdicts: Vec<_> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["full", "portal", "limited", "none"]);
}

/// Every probe reason, in a result of the verdict it belongs to.
#[test]
fn every_probe_reason() {
    use ProbeReason as R;
    let portal = [
        R::Redirect { status: 307 },
        R::NetworkAuthenticationRequired,
        R::WrongContent { status: 200 },
        R::WrongHeader,
    ];
    let limited = [
        R::UnexpectedStatus { status: 502 },
        R::DnsFailed,
        R::NoAddressForFamily,
        R::ConnectionRefused,
        R::ConnectionReset,
        R::HostUnreachable,
        R::Timeout {
            phase: ProbePhase::Dns,
        },
        R::Timeout {
            phase: ProbePhase::Connect,
        },
        R::Timeout {
            phase: ProbePhase::Response,
        },
        R::TlsHandshake,
        R::TlsCertificate,
        R::MalformedResponse,
        R::OversizedHeaders,
        R::ConnectionClosed,
        R::NoResult,
    ];
    let none = [
        R::NoSuchInterface,
        R::InterfaceDown,
        R::NoRoute,
        R::NoSourceAddress,
    ];
    let verdicts = portal
        .into_iter()
        .map(|reason| ProbeVerdict::Portal { url: None, reason })
        .chain(limited.map(|reason| ProbeVerdict::Limited { reason }))
        .chain(none.map(|reason| ProbeVerdict::None { reason }));
    for verdict in verdicts {
        let v = Verification::from_results(vec![ProbeResult {
            interface: "up0".into(),
            family: Family::Ipv4,
            verdict,
            latency: Duration::from_millis(3),
            remote: None,
        }]);
        printed(Schema::Probe, &Probe::new(&v));
    }
}

#[test]
fn every_connectivity_reason() {
    use netreach::core::connectivity::Reason as R;
    let interface = || "eth0".to_owned();
    let (address, prefix_len) = (ip("2001:db8::2"), 64);
    let destination = "198.18.0.0/24".parse().unwrap();
    let reasons = [
        R::InterfaceAdded {
            interface: interface(),
        },
        R::InterfaceRemoved {
            interface: interface(),
        },
        R::InterfaceUp {
            interface: interface(),
        },
        R::InterfaceDown {
            interface: interface(),
        },
        R::InterfaceRenamed {
            old: "eth0".into(),
            new: "wan0".into(),
        },
        R::CarrierLost {
            interface: interface(),
        },
        R::CarrierRestored {
            interface: interface(),
        },
        R::AddressAdded {
            address,
            prefix_len,
            interface: interface(),
        },
        R::AddressRemoved {
            address,
            prefix_len,
            interface: interface(),
        },
        R::AddressNowUsable {
            address,
            prefix_len,
            interface: interface(),
        },
        R::AddressTentative {
            address,
            prefix_len,
            interface: interface(),
        },
        R::AddressDadFailed {
            address,
            prefix_len,
            interface: interface(),
        },
        R::DefaultRouteAdded {
            via: Some(ip("198.18.0.1")),
            interface: interface(),
            table: 254,
        },
        R::DefaultRouteRemoved {
            via: None,
            interface: interface(),
            table: 7,
        },
        R::RouteAdded {
            destination,
            interface: interface(),
        },
        R::RouteRemoved {
            destination,
            interface: interface(),
        },
        R::RouteBecameLinkdown {
            destination,
            interface: interface(),
        },
        R::RouteLinkRestored {
            destination,
            interface: interface(),
        },
        R::RuleAdded { priority: 100 },
        R::RuleRemoved { priority: 100 },
        R::ConfigChanged,
        R::Other,
    ];
    for r in &reasons {
        let v = printed(Schema::Def("connectivity_reason"), &ReasonJson::new(r));
        assert_eq!(v["message"], r.to_string());
    }
}

/// Every reachability reason, in `reach --json` and both kinds of `reach --watch` line.
#[test]
fn every_reach_reason_and_line() {
    let named = |index, name: &str| NamedInterface {
        index,
        name: name.into(),
    };
    let reasons = [
        Reason::LocalAddressRemoved,
        Reason::LocalAddressUnusable {
            flags: AddressFlags::TENTATIVE,
        },
        Reason::InterfaceGone { interface: 7 },
        Reason::InterfaceDown {
            interface: named(2, "h0"),
        },
        Reason::CarrierLost {
            interface: named(2, "h0"),
        },
        Reason::LinkDown {
            interface: named(2, "h0"),
        },
        Reason::NoRoute,
        Reason::RouteType(RouteType::Prohibit),
        Reason::InterfaceMismatch {
            path_interface: named(2, "h0"),
            local_interface: named(3, "h1"),
        },
        Reason::LookupFailed { errno: 74 },
    ];
    let path = Path {
        interface: 2,
        interface_name: "h0".into(),
        gateway: Some(ip("198.18.20.1")),
        source: None,
    };
    let states = reasons
        .into_iter()
        .map(Reachability::Unreachable)
        .chain([Reachability::Reachable(path)]);
    let (local, remote) = (Some(ip("198.18.20.2")), ip("198.18.30.2"));
    let now = SystemTime::now();
    for state in states {
        let v = printed(Schema::Reach, &Reach::new(local, remote, &state));
        assert_eq!(v["reachable"], state.path().is_some());
        assert!(v.get("lookup").is_none(), "{v}");
        for source in [LookupSource::System, LookupSource::Model] {
            let doc = Reach::new(local, remote, &state).with_lookup(Some(source));
            let v = printed(Schema::Reach, &doc);
            assert_eq!(v["lookup"], source.as_str());
        }
        printed(Schema::Reach, &Reach::new(None, remote, &state));
        let line = Reach::new(local, remote, &state).changed(9, 4, now, false);
        let v = printed(Schema::ReachWatch, &line);
        assert_eq!((&v["seq"], &v["cause_seq"]), (&9.into(), &4.into()));
        let v = printed(
            Schema::ReachWatch,
            &Reach::new(local, remote, &state).lagged(now),
        );
        assert!(v.get("seq").is_none(), "{v}");
    }
    // The interface a gone interface's reason is about has no name.
    let gone = Reachability::Unreachable(Reason::InterfaceGone { interface: 7 });
    let v = printed(Schema::Reach, &Reach::new(local, remote, &gone));
    assert_eq!(v["interface"], Value::Null);
    assert_eq!(v["reason"]["interface"], 7);
}

/// One `watch` line of every model event, `ready`, `resynced` and `lagged`: none repeats a
/// key (a route's type is `route_type`), each is closed.
#[test]
fn every_watch_line() {
    let snap = snapshot();
    let time = SystemTime::now();
    let mut names = Names::default();
    names.learn(&snap);
    let ready = Notification::Ready {
        seq: 3,
        time,
        snapshot: snap.clone().into(),
    };
    let conn = connectivity::evaluate(&snap, &ConnectivityConfig::default());
    let v = printed(
        Schema::Watch,
        &Line::new(&ready, &names).with_connectivity(&conn),
    );
    assert_eq!(v["schema_version"], 1);

    let renamed = up(2, "wan0");
    let mut addr = address(2, "2001:db8::2", 64);
    addr.flags = AddressFlags::TENTATIVE;
    let done = address(2, "2001:db8::2", 64);
    let routes: Vec<&Route> = snap.routes().collect();
    let rule = Rule::lookup(Family::Ipv6, 200, 7);
    let events = [
        Event::InterfaceAdded(up(4, "new0")),
        Event::InterfaceChanged {
            changes: InterfaceChanges::between(&up(2, "up0"), &renamed),
            old: up(2, "up0"),
            new: renamed,
        },
        Event::AddressAdded(addr.clone()),
        Event::AddressChanged {
            old: addr,
            new: done.clone(),
        },
        Event::AddressRemoved(done),
        Event::RouteAdded(routes[0].clone()),
        Event::RouteRemoved(routes[1].clone()),
        Event::RuleAdded(rule.clone()),
        Event::RuleRemoved(rule),
        Event::InterfaceRemoved(up(4, "new0")),
    ];
    let mut stream = schema::Stream::new(Schema::Watch);
    stream
        .line(&serde_json::to_string(&Line::new(&ready, &names).with_connectivity(&conn)).unwrap());
    for (seq, event) in (4..).zip(events) {
        names.note(&event);
        let n = Notification::Change {
            seq,
            time,
            event: Box::new(event),
        };
        let v = stream.line(&serde_json::to_string(&Line::new(&n, &names)).unwrap());
        assert_eq!(v["type"], n_type(&n));
    }
    for n in [
        Notification::Resynced { seq: 20, time },
        Notification::Lagged { missed: 5, time },
    ] {
        stream.line(&serde_json::to_string(&Line::new(&n, &names)).unwrap());
    }
    // A route through an interface no line named: its interface is null, never a made-up name.
    let stray = Route::unicast("198.18.9.0/24".parse().unwrap(), None, 99);
    let n = Notification::Change {
        seq: 21,
        time,
        event: Box::new(Event::RouteRemoved(stray)),
    };
    let v = stream.line(&serde_json::to_string(&Line::new(&n, &names)).unwrap());
    assert_eq!((&v["interface"], &v["ifindex"]), (&Value::Null, &99.into()));
}

fn n_type(n: &Notification) -> &'static str {
    match n {
        Notification::Change { event, .. } => event.type_name(),
        _ => "",
    }
}

/// The checks themselves: a repeated key is refused (`Value` would keep the last), an
/// extra key breaks a closed shape, and a derived line must name a cause shown before it.
#[test]
fn the_checks_catch_what_they_are_for() {
    let twice = r#"{"type":"route_added","seq":1,"a":{"type":"x","type":"unicast"}}"#;
    let err = parse_strict(twice).unwrap_err();
    assert!(err.contains("duplicate key \"type\""), "{err}");
    assert!(
        parse_strict(r#"{"a":1} {"b":2}"#).is_err(),
        "one value per text"
    );

    let snap = snapshot();
    let conn = connectivity::evaluate(&snap, &ConnectivityConfig::default());
    let mut v = serde_json::to_value(Status::new(&snap).with_connectivity(&conn)).unwrap();
    check_value(Schema::Status, &v);
    v["routes"][0]["type"] = "unicast".into();
    let errs = errors(Schema::Status, &v);
    assert!(!errs.is_empty(), "a route with `type` is refused");
    v["routes"][0].as_object_mut().unwrap().remove("type");
    check_value(Schema::Status, &v);
    let mut bad = v.clone();
    bad["interfaces"][0]["mtu"] = 1.5.into();
    assert!(
        !errors(Schema::Status, &bad).is_empty(),
        "mtu is an integer"
    );
    let mut bad = v.clone();
    bad["interfaces"][0]["addresses"][0]["address"] = "198.18.300.1".into();
    assert!(
        !errors(Schema::Status, &bad).is_empty(),
        "formats are asserted"
    );

    let line = |seq: u64, cause: u64| {
        format!(
            r#"{{"type":"primary_changed","seq":{seq},"cause_seq":{cause},"time":"2026-01-01T00:00:00.000000Z","old":null,"new":null,"reason":{{"kind":"other","message":"network state changed"}},"connectivity":{{"ipv4":"disconnected","ipv6":"disconnected","overall":"disconnected","online":false,"primary_interface":null,"medium":null,"metered":false}}}}"#
        )
    };
    check(Schema::Watch, &line(5, 4));
    let late = line(5, 4).replace(".000000Z", "+01:00");
    assert!(
        !errors(Schema::Watch, &parse_strict(&late).unwrap()).is_empty(),
        "UTC only"
    );
    let unseen = std::panic::catch_unwind(|| schema::Stream::new(Schema::Watch).line(&line(5, 4)));
    assert!(
        unseen.is_err(),
        "a cause the stream never showed is refused"
    );
}

/// The examples of `docs/json.md` (blocks marked ```` ```json SCHEMA ````) are valid, line by
/// line: the page cannot show a shape the schemas do not allow.
#[test]
fn the_examples_in_the_docs_are_valid() {
    let page = include_str!("../../../../../docs/json.md");
    let mut checked = 0;
    let mut schema = None;
    for line in page.lines() {
        if let Some(info) = line.strip_prefix("```json ") {
            schema = Some(match info.trim() {
                "status" => Schema::Status,
                "watch" => Schema::Watch,
                "reach" => Schema::Reach,
                "reach-watch" => Schema::ReachWatch,
                "probe" => Schema::Probe,
                other => panic!("docs/json.md: no schema {other:?}"),
            });
        } else if line.starts_with("```") {
            schema = None;
        } else if let Some(s) = schema {
            check(s, line);
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} examples found");
}
