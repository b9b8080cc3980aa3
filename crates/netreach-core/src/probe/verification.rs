//! What the probes say, summed up, and the book-keeping of one status monitor's probes: which
//! (interface, family) pairs to probe, the latest result of each, and the verdict changes.
//!
//! Pure: the [`ProbeBook`] decides and remembers; the glue runs the probes it asks for and
//! hands the results back. [`crate::machine::Machine`] drives one per status monitor.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Instant;

use serde::Serialize;

use super::{ProbeKey, ProbeResult, ProbeSchedule, ProbeScheduler, ProbeVerdict};
use crate::connectivity::{ConnectivityConfig, internet_interfaces};
use crate::event::Event;
use crate::model::{Family, Snapshot};

/// What the probes say, summed up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Verified {
    /// Probing is off, or no probe has answered yet.
    #[default]
    Unverified,
    /// No probe could reach the endpoint (no usable route).
    None,
    /// The endpoint could not be reached: DNS failed, refused, timed out.
    Limited,
    /// A captive portal answered instead of the endpoint.
    Portal,
    /// The endpoint answered as expected: full internet access.
    Full,
}

impl Verified {
    fn of(v: &ProbeVerdict) -> Verified {
        match v {
            ProbeVerdict::Full => Verified::Full,
            ProbeVerdict::Portal { .. } => Verified::Portal,
            ProbeVerdict::Limited { .. } => Verified::Limited,
            _ => Verified::None,
        }
    }

    /// The lowercase name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Verified::Unverified => "unverified",
            Verified::None => "none",
            Verified::Limited => "limited",
            Verified::Portal => "portal",
            Verified::Full => "full",
        }
    }
}

impl fmt::Display for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The latest probe results and their summary. The best result wins: one interface with
/// `full` access makes the machine's internet `full`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Verification {
    /// Over both families.
    pub internet: Verified,
    /// IPv4.
    pub ipv4: Verified,
    /// IPv6.
    pub ipv6: Verified,
    /// The portal's address, when a portal answered and said where to log in.
    pub portal_url: Option<String>,
    /// The latest result per interface and family.
    pub results: Vec<ProbeResult>,
}

impl Verification {
    /// Sums up probe results (the latest per interface and family).
    pub fn from_results(results: Vec<ProbeResult>) -> Verification {
        let best = |family: Option<Family>| {
            results
                .iter()
                .filter(|r| family.is_none_or(|f| r.family == f))
                .map(|r| Verified::of(&r.verdict))
                .max()
                .unwrap_or_default()
        };
        Verification {
            internet: best(None),
            ipv4: best(Some(Family::Ipv4)),
            ipv6: best(Some(Family::Ipv6)),
            portal_url: results
                .iter()
                .find_map(|r| r.verdict.portal_url().map(str::to_owned)),
            results,
        }
    }
}

/// A probe verdict of one interface and family changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VerificationChange {
    /// The interface's name.
    pub interface: String,
    /// Its index.
    pub ifindex: u32,
    /// The family.
    pub family: Family,
    /// The verdict before (`None`: not probed).
    pub old: Option<ProbeVerdict>,
    /// The verdict now (`None`: no longer probed, the interface lost internet).
    pub new: Option<ProbeVerdict>,
    /// The probe that gave the new verdict.
    pub result: Option<ProbeResult>,
}

impl fmt::Display for VerificationChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = |v: &Option<ProbeVerdict>| v.as_ref().map_or("unprobed", |v| v.as_str());
        write!(
            f,
            "probe on {} ({}): {} → {}",
            self.interface,
            self.family,
            v(&self.old),
            v(&self.new)
        )?;
        match &self.new {
            Some(ProbeVerdict::Portal { url: Some(u), .. }) => write!(f, " at {u}"),
            Some(other) => match other.reason() {
                Some(r) => write!(f, ": {r}"),
                None => Ok(()),
            },
            None => f.write_str(": no usable default route"),
        }
    }
}

/// The (interface, family) pairs whose connectivity an event changes, for re-probing: link
/// state, an address of that family, a default route of that family. Other events (a more
/// specific route, an MTU change) neither re-probe nor reset the backoff.
fn affects(event: &Event) -> Vec<(u32, Family)> {
    let both = |i: u32| vec![(i, Family::Ipv4), (i, Family::Ipv6)];
    match event {
        Event::InterfaceChanged { new, changes, .. }
            if changes.admin_up || changes.carrier || changes.oper_state =>
        {
            both(new.index)
        }
        Event::AddressAdded(a)
        | Event::AddressRemoved(a)
        | Event::AddressChanged { new: a, .. } => {
            vec![(a.interface, a.family())]
        }
        Event::RouteAdded(r) | Event::RouteRemoved(r) if r.is_default() => {
            r.interface.map(|i| vec![(i, r.family)]).unwrap_or_default()
        }
        _ => Vec::new(),
    }
}

/// One status monitor's probes: which pairs have internet by the rules and so are probed,
/// the schedule, and the latest result of each. The one place probe verdicts are kept.
#[derive(Debug, Clone)]
pub struct ProbeBook {
    scheduler: ProbeScheduler,
    keys: BTreeSet<ProbeKey>,
    latest: BTreeMap<ProbeKey, ProbeResult>,
}

impl ProbeBook {
    /// Nothing probed yet; the first [`ProbeBook::handle_update`] says what to probe.
    pub fn new(schedule: ProbeSchedule) -> ProbeBook {
        ProbeBook {
            scheduler: ProbeScheduler::new(schedule),
            keys: BTreeSet::new(),
            latest: BTreeMap::new(),
        }
    }

    /// The summary of the latest results.
    pub fn summary(&self) -> Verification {
        Verification::from_results(self.latest.values().cloned().collect())
    }

    /// When [`ProbeBook::poll_probe`] may have something next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.scheduler.poll_timeout()
    }

    /// After a batch of model `events` (the state after them is `snap`): which pairs to probe,
    /// and which to probe again soon. Pairs that lost internet are forgotten, with a change.
    pub fn handle_update(
        &mut self,
        snap: &Snapshot,
        rules: &ConnectivityConfig,
        events: &[Event],
        now: Instant,
        changes: &mut Vec<VerificationChange>,
    ) {
        let keys: BTreeSet<ProbeKey> = [Family::Ipv4, Family::Ipv6]
            .into_iter()
            .flat_map(|family| {
                internet_interfaces(snap, rules, family)
                    .into_iter()
                    .map(move |ifindex| ProbeKey { ifindex, family })
            })
            .collect();
        let touched: BTreeSet<(u32, Family)> = events.iter().flat_map(affects).collect();
        for key in self.keys.difference(&keys) {
            self.scheduler.handle_removed(*key);
            if let Some(old) = self.latest.remove(key) {
                changes.push(VerificationChange {
                    interface: old.interface.clone(),
                    ifindex: key.ifindex,
                    family: key.family,
                    old: Some(old.verdict),
                    new: None,
                    result: None,
                });
            }
        }
        for key in &keys {
            if !self.keys.contains(key) || touched.contains(&(key.ifindex, key.family)) {
                self.scheduler.handle_connectivity_change(*key, now);
            }
        }
        self.keys = keys;
    }

    /// A probe's result. A result for a pair that lost internet while it was probed is
    /// dropped: it says nothing about the state now.
    pub fn handle_result(
        &mut self,
        key: ProbeKey,
        result: ProbeResult,
        now: Instant,
        changes: &mut Vec<VerificationChange>,
    ) {
        if !self.keys.contains(&key) {
            return;
        }
        self.scheduler
            .handle_result(key, result.verdict.clone(), now);
        let old = self.latest.insert(key, result.clone()).map(|r| r.verdict);
        if old.as_ref() != Some(&result.verdict) {
            changes.push(VerificationChange {
                interface: result.interface.clone(),
                ifindex: key.ifindex,
                family: key.family,
                old,
                new: Some(result.verdict.clone()),
                result: Some(result),
            });
        }
    }

    /// The next probe due now, if any. Call until `None`.
    pub fn poll_probe(&mut self, now: Instant) -> Option<ProbeKey> {
        self.scheduler.poll_action(now).map(|a| a.key)
    }
}
