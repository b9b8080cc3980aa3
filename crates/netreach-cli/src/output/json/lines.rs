//! The lines of `watch --json`: `type` first, then `seq` (every line but `lagged`), `cause_seq`
//! (every derived line: connectivity, primary interface, probe verdict), `time`, and the
//! fields of the event, flattened. The keys of a flattened struct never repeat the line's own
//! (`route_type`, not `type`).

use std::time::SystemTime;

use netreach::core::connectivity::{Connectivity, ConnectivityChange};
use netreach::{Address, AddressFlags, Event, Interface, Notification, Rule};
use netreach::{Verification, VerificationChange};
use serde::Serialize;

use super::{
    AddressJson, ConnectivityJson, Names, PrimaryJson, ReasonJson, RouteJson, SCHEMA_VERSION,
    State, VerificationJson, micros, rfc3339,
};

/// One model line of `watch --json`: `ready`, an event, `resynced` or `lagged`.
#[derive(Serialize)]
pub struct Line<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    /// Absent only on `lagged`, which is this reader's marker, not an item of the stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    time: String,
    #[serde(flatten)]
    body: Body<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Body<'a> {
    Ready {
        schema_version: u32,
        state: State<'a>,
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
    /// Adds the connectivity to a `ready` line (the schema requires it).
    pub fn with_connectivity(mut self, c: &Connectivity) -> Self {
        if let Body::Ready { state, .. } = &mut self.body {
            state.connectivity = Some(ConnectivityJson::from(c));
        }
        self
    }

    // Used by `serve`, which is Linux only.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    /// Adds the probes' verdicts to a `ready` line (`serve --probe`: a client that joins late
    /// learns them here, not from `probe_changed` lines it never saw).
    pub fn with_verification(mut self, v: &'a Verification) -> Self {
        if let Body::Ready { state, .. } = &mut self.body {
            state.verification = Some(VerificationJson::from(v));
        }
        self
    }

    // Used by `serve`, which is Linux only.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    /// A `ready` line as a `resynced` line with the whole state: what `serve` sends a client
    /// whose `Last-Event-ID` is older than its backlog (docs/serve.md).
    pub fn into_resynced(mut self) -> Self {
        if let Body::Ready { .. } = self.body {
            self.kind = "resynced";
        }
        self
    }

    pub fn new(n: &'a Notification, names: &Names) -> Line<'a> {
        let time = rfc3339(n.time());
        let (kind, body) = match n {
            Notification::Ready { snapshot, .. } => (
                "ready",
                Body::Ready {
                    schema_version: SCHEMA_VERSION,
                    state: State::new(snapshot),
                },
            ),
            Notification::Change { event, .. } => (event.type_name(), event_body(event, names)),
            Notification::Resynced { .. } => ("resynced", Body::Empty {}),
            Notification::Lagged { missed, .. } => ("lagged", Body::Lagged { missed: *missed }),
            _ => ("unknown", Body::Empty {}),
        };
        Line {
            kind,
            seq: n.seq(),
            time,
            body,
        }
    }
}

fn event_body<'a>(event: &'a Event, names: &Names) -> Body<'a> {
    let addr = |a: &'a Address, old_flags| Body::Address {
        interface: names.of(a.interface),
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

/// A `connectivity_changed` line (a level of `ipv4`, `ipv6` or `overall`) or a
/// `primary_changed` line (the primary interface, its medium or metered flag), with the
/// connectivity after it.
#[derive(Serialize)]
pub struct ConnectivityLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    seq: u64,
    /// The model change that caused it; set by [`ConnectivityLine::caused_by`].
    cause_seq: Option<u64>,
    time: String,
    #[serde(flatten)]
    body: ConnectivityBody<'a>,
    reason: ReasonJson,
    connectivity: ConnectivityJson,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ConnectivityBody<'a> {
    Level {
        family: &'static str,
        old: &'static str,
        new: &'static str,
    },
    Primary {
        old: Option<PrimaryJson<'a>>,
        new: Option<PrimaryJson<'a>>,
    },
}

impl<'a> ConnectivityLine<'a> {
    /// Names the model change that caused it (the schema requires it).
    pub fn caused_by(mut self, seq: u64) -> Self {
        self.cause_seq = Some(seq);
        self
    }

    pub fn new(
        seq: u64,
        time: SystemTime,
        change: &'a ConnectivityChange,
        after: &Connectivity,
    ) -> ConnectivityLine<'a> {
        let (kind, body) = match change {
            ConnectivityChange::Level(l) => (
                "connectivity_changed",
                ConnectivityBody::Level {
                    family: l.family.map_or("overall", |f| f.as_str()),
                    old: l.old.as_str(),
                    new: l.new.as_str(),
                },
            ),
            ConnectivityChange::Primary(p) => (
                "primary_changed",
                ConnectivityBody::Primary {
                    old: p.old.as_ref().map(PrimaryJson::from),
                    new: p.new.as_ref().map(PrimaryJson::from),
                },
            ),
            // A kind of change this version does not know: say that the overall level was
            // re-evaluated, which is true of every change.
            _ => (
                "connectivity_changed",
                ConnectivityBody::Level {
                    family: "overall",
                    old: after.overall.as_str(),
                    new: after.overall.as_str(),
                },
            ),
        };
        ConnectivityLine {
            kind,
            seq,
            cause_seq: None,
            time: rfc3339(time),
            body,
            reason: ReasonJson::new(change.reason()),
            connectivity: after.into(),
        }
    }
}

/// One `probe_changed` line of `watch --probe --json`.
#[derive(Serialize)]
pub struct ProbeLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    seq: u64,
    /// The last model change when the verdict came; set by [`ProbeLine::caused_by`].
    cause_seq: Option<u64>,
    time: String,
    interface: &'a str,
    ifindex: u32,
    family: &'static str,
    old: Option<&'static str>,
    new: Option<&'static str>,
    reason: Option<ReasonJson>,
    portal_url: Option<&'a str>,
    latency_us: Option<u64>,
    verification: VerificationJson<'a>,
}

impl<'a> ProbeLine<'a> {
    /// Names the model change the verdict follows (the schema requires it).
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
        let new = change.new.as_ref();
        ProbeLine {
            kind: "probe_changed",
            seq,
            cause_seq: None,
            time: rfc3339(time),
            interface: &change.interface,
            ifindex: change.ifindex,
            family: change.family.as_str(),
            old: change.old.as_ref().map(|v| v.as_str()),
            new: new.map(|v| v.as_str()),
            reason: new.and_then(|v| v.reason()).map(ReasonJson::new),
            portal_url: new.and_then(|v| v.portal_url()),
            latency_us: change.result.as_ref().map(|r| micros(r.latency)),
            verification: VerificationJson::from(verification),
        }
    }
}

/// The `watch --json` line of one item of the monitor's stream, the one rendering `watch` and
/// `serve` share: `None` for the items that have their own (`ready`, which carries the state)
/// or none (reachability, which `watch` does not print).
pub fn stream_line(n: &Notification, names: &Names) -> Option<serde_json::Result<String>> {
    match n {
        Notification::Ready { .. } | Notification::Reachability { .. } => None,
        Notification::Connectivity {
            seq,
            cause_seq,
            time,
            change,
            connectivity,
        } => Some(serde_json::to_string(
            &ConnectivityLine::new(*seq, *time, change, connectivity).caused_by(*cause_seq),
        )),
        Notification::Verification {
            seq,
            cause_seq,
            time,
            change,
            verification,
            ..
        } => Some(serde_json::to_string(
            &ProbeLine::new(*seq, *time, change, verification).caused_by(*cause_seq),
        )),
        _ => Some(serde_json::to_string(&Line::new(n, names))),
    }
}
