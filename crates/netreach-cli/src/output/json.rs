//! The JSON shapes of `status --json`, `watch --json` and `reach --json`.
//!
//! Interfaces carry their addresses; routes name their interface; `watch` lines carry the same
//! fields as `status` plus `seq`, `time` (RFC 3339) and `type`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::SystemTime;

use netreach::core::connectivity::{Connectivity, ConnectivityChange};
use netreach::core::reach::{Reachability, Reason};
use netreach::probe::ProbeResult;
use netreach::{Address, AddressFlags, Event, Interface, Notification, Route, Rule, Snapshot};
use netreach::{Verification, VerificationChange};
use serde::Serialize;

/// Interface names by index, kept across removals so events about a removed interface still
/// name it.
#[derive(Debug, Default)]
pub struct Names(BTreeMap<u32, String>);

impl Names {
    pub fn learn(&mut self, snap: &Snapshot) {
        for i in snap.interfaces() {
            self.0.insert(i.index, i.name.clone());
        }
    }

    pub fn note(&mut self, event: &Event) {
        match event {
            Event::InterfaceAdded(i) | Event::InterfaceChanged { new: i, .. } => {
                self.0.insert(i.index, i.name.clone());
            }
            _ => {}
        }
    }

    pub fn get(&self, index: u32) -> Option<&str> {
        self.0.get(&index).map(String::as_str)
    }
}

#[derive(Serialize)]
pub struct Status<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    connectivity: Option<ConnectivityJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verification: Option<Verification>,
    interfaces: Vec<InterfaceJson<'a>>,
    routes: Vec<RouteJson<'a>>,
    rules: Vec<&'a Rule>,
}

impl<'a> Status<'a> {
    pub fn new(snap: &'a Snapshot) -> Status<'a> {
        let mut names = Names::default();
        names.learn(snap);
        Status {
            connectivity: None,
            verification: None,
            interfaces: snap
                .interfaces()
                .map(|i| InterfaceJson {
                    iface: i,
                    addresses: snap.addresses_of(i.index).map(AddressJson::from).collect(),
                })
                .collect(),
            routes: snap.routes().map(|r| RouteJson::new(r, &names)).collect(),
            rules: snap.rules().collect(),
        }
    }
}

impl<'a> Status<'a> {
    pub fn with_connectivity(mut self, c: &Connectivity) -> Self {
        self.connectivity = Some(ConnectivityJson::from(c));
        self
    }

    pub fn with_probes(mut self, results: &[ProbeResult]) -> Self {
        self.verification = Some(Verification::from_results(results.to_vec()));
        self
    }
}

/// `connectivity{ipv4,ipv6,overall,online,primary_interface,medium,metered}`.
#[derive(Serialize)]
pub struct ConnectivityJson {
    ipv4: &'static str,
    ipv6: &'static str,
    overall: &'static str,
    online: bool,
    primary_interface: Option<String>,
    medium: Option<&'static str>,
    metered: bool,
}

impl From<&Connectivity> for ConnectivityJson {
    fn from(c: &Connectivity) -> Self {
        ConnectivityJson {
            ipv4: c.ipv4.as_str(),
            ipv6: c.ipv6.as_str(),
            overall: c.overall.as_str(),
            online: c.is_online(),
            primary_interface: c.primary_interface().map(str::to_owned),
            medium: c.medium().map(|m| m.as_str()),
            metered: c.is_metered(),
        }
    }
}

/// One `probe_changed` line of `watch --probe --json`.
#[derive(Serialize)]
pub struct ProbeLine<'a> {
    seq: u64,
    /// The model change this verdict follows.
    #[serde(skip_serializing_if = "Option::is_none")]
    cause_seq: Option<u64>,
    time: String,
    #[serde(rename = "type")]
    kind: &'static str,
    interface: &'a str,
    family: netreach::Family,
    old: Option<&'static str>,
    new: Option<&'static str>,
    reason: Option<String>,
    portal_url: Option<&'a str>,
    latency_ms: Option<u128>,
    verification: &'a Verification,
}

impl<'a> ProbeLine<'a> {
    /// Names the model change the verdict follows.
    pub fn caused_by(mut self, seq: u64) -> Self {
        self.cause_seq = Some(seq);
        self
    }

    pub fn new(
        seq: u64,
        time: SystemTime,
        change: &'a VerificationChange,
        verification: &'a Verification,
    ) -> ProbeLine<'a> {
        ProbeLine {
            seq,
            cause_seq: None,
            time: rfc3339(time),
            kind: "probe_changed",
            interface: &change.interface,
            family: change.family,
            old: change.old.as_ref().map(|v| v.as_str()),
            new: change.new.as_ref().map(|v| v.as_str()),
            reason: change
                .new
                .as_ref()
                .and_then(|v| v.reason())
                .map(|r| r.to_string()),
            portal_url: change.new.as_ref().and_then(|v| v.portal_url()),
            latency_ms: change.result.as_ref().map(|r| r.latency.as_millis()),
            verification,
        }
    }
}

/// One `connectivity_changed` line of `watch --json`.
#[derive(Serialize)]
pub struct ConnectivityLine {
    seq: u64,
    /// The model change that caused this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    cause_seq: Option<u64>,
    time: String,
    #[serde(rename = "type")]
    kind: &'static str,
    /// `ipv4`, `ipv6`, `overall`, or `primary` for a change of primary interface.
    family: &'static str,
    old: Option<String>,
    new: Option<String>,
    reason: String,
    reason_data: serde_json::Value,
    connectivity: ConnectivityJson,
}

impl ConnectivityLine {
    /// Names the model change that caused it.
    pub fn caused_by(mut self, seq: u64) -> Self {
        self.cause_seq = Some(seq);
        self
    }

    pub fn new(
        seq: u64,
        time: SystemTime,
        change: &ConnectivityChange,
        after: &Connectivity,
    ) -> ConnectivityLine {
        let (family, old, new, reason) = match change {
            ConnectivityChange::Level(l) => (
                l.family.map_or("overall", |f| f.as_str()),
                Some(l.old.as_str().to_owned()),
                Some(l.new.as_str().to_owned()),
                &l.reason,
            ),
            ConnectivityChange::Primary(p) => (
                "primary",
                p.old.as_ref().map(|p| p.name.clone()),
                p.new.as_ref().map(|p| p.name.clone()),
                &p.reason,
            ),
            _ => ("unknown", None, None, change.reason()),
        };
        ConnectivityLine {
            seq,
            cause_seq: None,
            time: rfc3339(time),
            kind: "connectivity_changed",
            family,
            old,
            new,
            reason: reason.to_string(),
            reason_data: serde_json::to_value(reason).unwrap_or_default(),
            connectivity: after.into(),
        }
    }
}

#[derive(Serialize)]
struct InterfaceJson<'a> {
    #[serde(flatten)]
    iface: &'a Interface,
    addresses: Vec<AddressJson<'a>>,
}

#[derive(Serialize)]
struct AddressJson<'a> {
    address: IpAddr,
    prefix_len: u8,
    family: &'static str,
    scope: &'a netreach::Scope,
    flags: AddressFlags,
}

impl<'a> From<&'a Address> for AddressJson<'a> {
    fn from(a: &'a Address) -> Self {
        AddressJson {
            address: a.address,
            prefix_len: a.prefix_len,
            family: a.family().as_str(),
            scope: &a.scope,
            flags: a.flags,
        }
    }
}

#[derive(Serialize)]
struct RouteJson<'a> {
    family: &'static str,
    destination: String,
    gateway: Option<IpAddr>,
    interface: Option<String>,
    ifindex: Option<u32>,
    table: u32,
    metric: u32,
    #[serde(rename = "type")]
    kind: String,
    protocol: String,
    scope: String,
    prefsrc: Option<IpAddr>,
    linkdown: bool,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    nexthops: &'a [netreach::core::NextHop],
}

impl<'a> RouteJson<'a> {
    fn new(r: &'a Route, names: &Names) -> RouteJson<'a> {
        RouteJson {
            family: r.family.as_str(),
            destination: r.destination.to_string(),
            gateway: r.gateway,
            interface: r
                .interface
                .map(|i| names.get(i).map_or_else(|| format!("#{i}"), str::to_owned)),
            ifindex: r.interface,
            table: r.table,
            metric: r.metric,
            kind: r.kind.name(),
            protocol: r.protocol.name(),
            scope: r.scope.name(),
            prefsrc: r.prefsrc,
            linkdown: r.linkdown,
            nexthops: &r.nexthops,
        }
    }
}

/// One line of `watch --json`.
#[derive(Serialize)]
pub struct Line<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    time: String,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    body: Body<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Body<'a> {
    Ready {
        state: Status<'a>,
    },
    Interface {
        #[serde(flatten)]
        iface: &'a Interface,
        #[serde(skip_serializing_if = "Option::is_none")]
        changed: Option<Vec<&'static str>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        old: Option<&'a Interface>,
    },
    Address {
        interface: Option<String>,
        ifindex: u32,
        #[serde(flatten)]
        addr: AddressJson<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        old_flags: Option<AddressFlags>,
    },
    Route(RouteJson<'a>),
    Rule(&'a Rule),
    Lagged {
        missed: u64,
    },
    Empty {},
}

impl<'a> Line<'a> {
    /// Adds the connectivity to a `ready` line.
    pub fn with_connectivity(mut self, c: &Connectivity) -> Self {
        if let Body::Ready { state } = self.body {
            self.body = Body::Ready {
                state: state.with_connectivity(c),
            };
        }
        self
    }

    pub fn new(n: &'a Notification, names: &Names) -> Line<'a> {
        let time = rfc3339(n.time());
        let (kind, body) = match n {
            Notification::Ready { snapshot, .. } => (
                "ready",
                Body::Ready {
                    state: Status::new(snapshot),
                },
            ),
            Notification::Change { event, .. } => (event.type_name(), event_body(event, names)),
            Notification::Resynced { .. } => ("resynced", Body::Empty {}),
            Notification::Lagged { missed, .. } => ("lagged", Body::Lagged { missed: *missed }),
            _ => ("unknown", Body::Empty {}),
        };
        Line {
            seq: n.seq(),
            time,
            kind,
            body,
        }
    }
}

fn event_body<'a>(event: &'a Event, names: &Names) -> Body<'a> {
    let addr = |a: &'a Address, old_flags| Body::Address {
        interface: names.get(a.interface).map(str::to_owned),
        ifindex: a.interface,
        addr: AddressJson::from(a),
        old_flags,
    };
    match event {
        Event::InterfaceAdded(i) | Event::InterfaceRemoved(i) => Body::Interface {
            iface: i,
            changed: None,
            old: None,
        },
        Event::InterfaceChanged { old, new, changes } => Body::Interface {
            iface: new,
            changed: Some(changes.names().collect()),
            old: Some(old),
        },
        Event::AddressAdded(a) | Event::AddressRemoved(a) => addr(a, None),
        Event::AddressChanged { old, new } => addr(new, Some(old.flags)),
        Event::RouteAdded(r) | Event::RouteRemoved(r) => Body::Route(RouteJson::new(r, names)),
        Event::RuleAdded(r) | Event::RuleRemoved(r) => Body::Rule(r),
        _ => Body::Empty {},
    }
}

/// `reach --json`, and each line of `reach --watch --json` (with `type`, `seq`, `time` and
/// `initial`). `interface` is the output interface when reachable, and the interface the reason
/// is about (if any) when not; `reason` is the reason in words, `reason_kind` its name and
/// `reason_data` the reason with its fields.
#[derive(Serialize)]
pub struct Reach<'a> {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    initial: Option<bool>,
    local: Option<IpAddr>,
    remote: IpAddr,
    reachable: bool,
    reason: Option<String>,
    reason_kind: Option<&'static str>,
    reason_data: Option<&'a Reason>,
    interface: Option<String>,
    gateway: Option<IpAddr>,
    source: Option<IpAddr>,
}

impl<'a> Reach<'a> {
    /// The state of `remote` from `local` (`None`: the kernel chose no source).
    pub fn new(local: Option<IpAddr>, remote: IpAddr, state: &'a Reachability) -> Reach<'a> {
        let path = state.path();
        let reason = state.reason();
        Reach {
            kind: None,
            seq: None,
            time: None,
            initial: None,
            local,
            remote,
            reachable: path.is_some(),
            reason: reason.map(ToString::to_string),
            reason_kind: reason.map(Reason::kind_name),
            reason_data: reason,
            interface: match (path, reason) {
                (Some(p), _) => Some(p.interface_name.clone()),
                (None, Some(r)) => reason_interface(r),
                (None, None) => None,
            },
            gateway: path.and_then(|p| p.gateway),
            source: path.and_then(|p| p.source),
        }
    }

    /// As a line of `reach --watch --json`.
    pub fn changed(mut self, seq: u64, time: SystemTime, initial: bool) -> Reach<'a> {
        self.kind = Some("reachability_changed");
        self.seq = Some(seq);
        self.time = Some(rfc3339(time));
        self.initial = Some(initial);
        self
    }
}

/// The interface a reason is about, by name.
fn reason_interface(reason: &Reason) -> Option<String> {
    match reason {
        Reason::InterfaceDown { interface }
        | Reason::CarrierLost { interface }
        | Reason::LinkDown { interface } => Some(interface.name.clone()),
        Reason::InterfaceMismatch { path_interface, .. } => Some(path_interface.name.clone()),
        Reason::InterfaceGone { interface } => Some(format!("#{interface}")),
        _ => None,
    }
}

/// Formats a time stamp as RFC 3339 (UTC, microseconds).
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_micros(t).to_string()
}
