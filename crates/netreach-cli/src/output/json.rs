//! The JSON shapes of `status --json`, `watch --json`, `reach --json` and `probe --json`: one
//! place, so every output spells a thing the same way.
//!
//! The contract, written down in `docs/json.md` and checked by the schemas in `docs/schema/`:
//! - a document (`status`, `probe`, `reach` and each `reach --watch` line, the `ready` line of
//!   `watch`) carries `schema_version` ([`SCHEMA_VERSION`]);
//! - no object carries a key twice (flattened structs are checked against each other by the
//!   tests, which parse every line with a duplicate-key check);
//! - every key of a shape is always present, `null` when it has no value;
//! - an interface is named by `interface` (its name, `null` when unknown) and `ifindex`;
//! - a reason is one object everywhere: `{"kind", "message", ...its fields}` ([`ReasonJson`]);
//! - durations are integers with the unit in the name (`latency_us`).
//!
//! The lines of `watch --json` are in [`lines`].

mod lines;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::SystemTime;

use netreach::SystemHint;
use netreach::core::connectivity::{Connectivity, Primary};
use netreach::core::reach::{LookupSource, Reachability, Reason};
use netreach::probe::ProbeResult;
use netreach::{Address, AddressFlags, Event, Interface, Route, Rule, Snapshot, Verification};
use serde::Serialize;
use serde_json::{Map, Value};

pub use lines::{Line, stream_line};

/// The version of the shapes below. Raised when a key is removed or changes meaning; a key
/// added to an open shape does not raise it.
pub const SCHEMA_VERSION: u32 = 1;

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

    /// The name as JSON: `null` when unknown.
    fn of(&self, index: u32) -> Option<String> {
        self.get(index).map(str::to_owned)
    }
}

/// `status --json`: the schema version, then the [`State`].
#[derive(Serialize)]
pub struct Status<'a> {
    schema_version: u32,
    #[serde(flatten)]
    state: State<'a>,
    /// What the system itself says (Windows' Network List Manager), where it says anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    system_hint: Option<SystemHint>,
}

impl<'a> Status<'a> {
    /// The state of `snap`; add the connectivity with [`Status::with_connectivity`] (the
    /// schema requires it).
    pub fn new(snap: &'a Snapshot) -> Status<'a> {
        Status {
            schema_version: SCHEMA_VERSION,
            state: State::new(snap),
            system_hint: None,
        }
    }

    /// With the system's own connectivity opinion (`system_hint`), when it has one.
    pub fn with_system_hint(mut self, hint: Option<SystemHint>) -> Self {
        self.system_hint = hint;
        self
    }

    pub fn with_connectivity(mut self, c: &Connectivity) -> Self {
        self.state.connectivity = Some(ConnectivityJson::from(c));
        self
    }

    // Used by `serve`, which is Linux only.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    /// The probes' verdicts as a status monitor keeps them (`serve --probe`).
    pub fn with_verification(mut self, v: &'a Verification) -> Self {
        self.state.verification = Some(VerificationJson::from(v));
        self
    }

    pub fn with_probes(mut self, results: &'a [ProbeResult]) -> Self {
        let summary = Verification::from_results(results.to_vec());
        self.state.verification = Some(VerificationJson {
            results: results.iter().map(ProbeResultJson::from).collect(),
            ..VerificationJson::summary(&summary)
        });
        self
    }
}

/// Connectivity, probe verdicts (`null` when not probed), interfaces with their addresses,
/// routes and rules: the body of `status --json` and the `state` of the `ready` line.
#[derive(Serialize)]
struct State<'a> {
    connectivity: Option<ConnectivityJson>,
    verification: Option<VerificationJson<'a>>,
    interfaces: Vec<InterfaceJson<'a>>,
    routes: Vec<RouteJson<'a>>,
    rules: Vec<&'a Rule>,
}

impl<'a> State<'a> {
    fn new(snap: &'a Snapshot) -> State<'a> {
        let mut names = Names::default();
        names.learn(snap);
        State {
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

/// `connectivity{ipv4,ipv6,overall,online,primary_interface,medium,metered}`.
#[derive(Serialize)]
struct ConnectivityJson {
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

/// The primary interface in a `primary_changed` line: `{interface, ifindex, medium, metered}`.
#[derive(Serialize)]
struct PrimaryJson<'a> {
    interface: &'a str,
    ifindex: u32,
    medium: &'static str,
    metered: bool,
}

impl<'a> From<&'a Primary> for PrimaryJson<'a> {
    fn from(p: &'a Primary) -> Self {
        PrimaryJson {
            interface: &p.name,
            ifindex: p.index,
            medium: p.medium.as_str(),
            metered: p.metered,
        }
    }
}

/// A reason, the one shape of every output: `{"kind": "carrier_lost", "message": "carrier
/// lost on eth0", "interface": "eth0"}`. `kind` and the fields are the library's serde of the
/// reason (connectivity, reachability or probe), `message` its `Display`.
#[derive(Serialize)]
struct ReasonJson {
    kind: String,
    message: String,
    #[serde(flatten)]
    fields: Map<String, Value>,
}

impl ReasonJson {
    fn new(reason: &(impl Serialize + fmt::Display)) -> ReasonJson {
        let mut fields = match serde_json::to_value(reason) {
            Ok(Value::Object(m)) => m,
            // Every reason type serialises as a map with a `kind`; the schema catches one
            // that does not.
            _ => Map::new(),
        };
        let kind = match fields.remove("kind") {
            Some(Value::String(k)) => k,
            _ => String::new(),
        };
        ReasonJson {
            kind,
            message: reason.to_string(),
            fields,
        }
    }
}

/// `probe --json`: the schema version and the verification.
#[derive(Serialize)]
pub struct Probe<'a> {
    schema_version: u32,
    #[serde(flatten)]
    verification: VerificationJson<'a>,
}

impl<'a> Probe<'a> {
    pub fn new(v: &'a Verification) -> Probe<'a> {
        Probe {
            schema_version: SCHEMA_VERSION,
            verification: VerificationJson::from(v),
        }
    }
}

/// What the probes say: `{internet, ipv4, ipv6, portal_url, results}`.
#[derive(Serialize)]
struct VerificationJson<'a> {
    internet: &'static str,
    ipv4: &'static str,
    ipv6: &'static str,
    portal_url: Option<String>,
    results: Vec<ProbeResultJson<'a>>,
}

impl VerificationJson<'_> {
    /// The summary of `v`, without its results.
    fn summary(v: &Verification) -> Self {
        VerificationJson {
            internet: v.internet.as_str(),
            ipv4: v.ipv4.as_str(),
            ipv6: v.ipv6.as_str(),
            portal_url: v.portal_url.clone(),
            results: Vec::new(),
        }
    }
}

impl<'a> From<&'a Verification> for VerificationJson<'a> {
    fn from(v: &'a Verification) -> Self {
        VerificationJson {
            results: v.results.iter().map(ProbeResultJson::from).collect(),
            ..VerificationJson::summary(v)
        }
    }
}

/// One probe's result: `{interface, family, verdict, portal_url, reason, latency_us, remote}`.
#[derive(Serialize)]
struct ProbeResultJson<'a> {
    interface: &'a str,
    family: &'static str,
    verdict: &'static str,
    portal_url: Option<&'a str>,
    reason: Option<ReasonJson>,
    latency_us: u64,
    remote: Option<SocketAddr>,
}

impl<'a> From<&'a ProbeResult> for ProbeResultJson<'a> {
    fn from(r: &'a ProbeResult) -> Self {
        ProbeResultJson {
            interface: &r.interface,
            family: r.family.as_str(),
            verdict: r.verdict.as_str(),
            portal_url: r.verdict.portal_url(),
            reason: r.verdict.reason().map(ReasonJson::new),
            latency_us: micros(r.latency),
            remote: r.remote,
        }
    }
}

/// Whole microseconds, saturating.
fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
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

/// A route, in `status` and in `route_*` lines alike. Its type is `route_type`: a line's
/// `type` is the event's.
#[derive(Serialize)]
struct RouteJson<'a> {
    family: &'static str,
    destination: String,
    gateway: Option<IpAddr>,
    interface: Option<String>,
    ifindex: Option<u32>,
    table: u32,
    metric: u32,
    route_type: String,
    protocol: String,
    scope: String,
    prefsrc: Option<IpAddr>,
    linkdown: bool,
    /// The hops of a multipath route; empty otherwise.
    nexthops: Vec<NextHopJson<'a>>,
}

impl<'a> RouteJson<'a> {
    fn new(r: &'a Route, names: &Names) -> RouteJson<'a> {
        RouteJson {
            family: r.family.as_str(),
            destination: r.destination.to_string(),
            gateway: r.gateway,
            interface: r.interface.and_then(|i| names.of(i)),
            ifindex: r.interface,
            table: r.table,
            metric: r.metric,
            route_type: r.kind.name(),
            protocol: r.protocol.name(),
            scope: r.scope.name(),
            prefsrc: r.prefsrc,
            linkdown: r.linkdown,
            nexthops: r
                .nexthops
                .iter()
                .map(|h| NextHopJson {
                    gateway: h.gateway.as_ref(),
                    interface: names.of(h.interface),
                    ifindex: h.interface,
                    linkdown: h.linkdown,
                })
                .collect(),
        }
    }
}

/// One hop of a multipath route, its interface named like a route's.
#[derive(Serialize)]
struct NextHopJson<'a> {
    gateway: Option<&'a IpAddr>,
    interface: Option<String>,
    ifindex: u32,
    linkdown: bool,
}

/// `reach --json`, and each line of `reach --watch --json` (with `type`, `seq`, `cause_seq`,
/// `time` and `initial`; a `lagged` line has `type` and `time` and the state now).
/// `interface` is the output interface when reachable, and the interface the reason is about
/// (if any) when not.
#[derive(Serialize)]
pub struct Reach {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(flatten)]
    change: Option<ReachChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    initial: Option<bool>,
    schema_version: u32,
    local: Option<IpAddr>,
    remote: IpAddr,
    reachable: bool,
    reason: Option<ReasonJson>,
    interface: Option<String>,
    gateway: Option<IpAddr>,
    source: Option<IpAddr>,
    /// Where the route came from (one-shot answers only): `system` or `model`.
    #[serde(skip_serializing_if = "Option::is_none")]
    lookup: Option<LookupSource>,
}

/// The place of a `reachability_changed` line in the monitor's stream.
#[derive(Serialize)]
struct ReachChange {
    seq: u64,
    cause_seq: u64,
}

impl Reach {
    /// The state of `remote` from `local` (`None`: the kernel chose no source).
    pub fn new(local: Option<IpAddr>, remote: IpAddr, state: &Reachability) -> Reach {
        let path = state.path();
        let reason = state.reason();
        Reach {
            kind: None,
            change: None,
            time: None,
            initial: None,
            schema_version: SCHEMA_VERSION,
            local,
            remote,
            reachable: path.is_some(),
            reason: reason.map(ReasonJson::new),
            interface: match (path, reason) {
                (Some(p), _) => Some(p.interface_name.clone()),
                (None, Some(r)) => reason_interface(r),
                (None, None) => None,
            },
            gateway: path.and_then(|p| p.gateway),
            source: path.and_then(|p| p.source),
            lookup: None,
        }
    }

    /// With where the route came from (a one-shot answer): the `lookup` field.
    pub fn with_lookup(mut self, lookup: Option<LookupSource>) -> Reach {
        self.lookup = lookup;
        self
    }

    /// As a `reachability_changed` line of `reach --watch --json`: item `seq` of the stream,
    /// caused by the model change `cause_seq`.
    pub fn changed(mut self, seq: u64, cause_seq: u64, time: SystemTime, initial: bool) -> Reach {
        self.kind = Some("reachability_changed");
        self.change = Some(ReachChange { seq, cause_seq });
        self.time = Some(rfc3339(time));
        self.initial = Some(initial);
        self
    }

    /// As a `lagged` line of `reach --watch --json`: changes were dropped, this is the state
    /// now (no `seq`: it is no item of the stream).
    pub fn lagged(mut self, time: SystemTime) -> Reach {
        self.kind = Some("lagged");
        self.time = Some(rfc3339(time));
        self
    }
}

/// The interface a reason is about, by name (`None` for one that is gone: the reason has its
/// index).
fn reason_interface(reason: &Reason) -> Option<String> {
    match reason {
        Reason::InterfaceDown { interface }
        | Reason::CarrierLost { interface }
        | Reason::LinkDown { interface } => Some(interface.name.clone()),
        Reason::InterfaceMismatch { path_interface, .. } => Some(path_interface.name.clone()),
        _ => None,
    }
}

/// Formats a time stamp as RFC 3339 (UTC, microseconds).
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_micros(t).to_string()
}

#[cfg(test)]
mod tests;
