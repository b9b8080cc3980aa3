//! Verified internet: the status monitor's HTTP probes, per interface and family.
//!
//! The schedule is the core's ([`ProbeScheduler`]: re-probe soon after a connectivity change,
//! back off while `limited` or `portal`, rarely while `full`, at most one probe in flight per
//! interface and family). This module feeds it, runs each probe it asks for on a worker thread
//! inside the monitor's namespace, hands the verdicts back, and keeps the summary. Nothing is
//! ever probed unless a [`ProbeConfig`] was given.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netreach_core::connectivity::{ConnectivityConfig, internet_interfaces};
use netreach_core::probe::{
    ProbeEndpoint, ProbeKey, ProbeResult, ProbeSchedule, ProbeScheduler, ProbeVerdict,
};
use netreach_core::{Event, Family, Snapshot};
use serde::Serialize;

use crate::Netns;
use crate::driver::Poker;
use crate::probe::{ProbeOptions, probe_with};
use crate::subscription::lock;

/// How the status monitor verifies internet access. Probing is off unless one is given.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProbeConfig {
    /// What to fetch and what answer proves full access.
    pub endpoint: ProbeEndpoint,
    /// Hard limit for one probe: name resolution, connection and response together.
    pub timeout: Duration,
    /// When to probe again.
    pub schedule: ProbeSchedule,
    /// TLS settings for `https` endpoints (default: the public web roots).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl ProbeConfig {
    /// Probe `endpoint` with a 5 s timeout and the default schedule.
    pub fn new(endpoint: ProbeEndpoint) -> ProbeConfig {
        ProbeConfig {
            endpoint,
            timeout: Duration::from_secs(5),
            schedule: ProbeSchedule::default(),
            tls: None,
        }
    }

    /// A different timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A different schedule.
    pub fn schedule(mut self, schedule: ProbeSchedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// TLS settings for `https` endpoints.
    pub fn tls(mut self, tls: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(tls);
        self
    }

    fn options(&self) -> ProbeOptions {
        let o = ProbeOptions::new(self.timeout);
        match &self.tls {
            Some(t) => o.tls(t.clone()),
            None => o,
        }
    }
}

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

type Inbox = Arc<Mutex<Vec<(ProbeKey, ProbeResult)>>>;

/// The probing part of the status extension.
pub(crate) struct Verifier {
    config: ProbeConfig,
    netns: Netns,
    scheduler: ProbeScheduler,
    keys: BTreeSet<ProbeKey>,
    latest: BTreeMap<ProbeKey, ProbeResult>,
    inbox: Inbox,
    workers: Vec<JoinHandle<()>>,
}

impl Verifier {
    pub(crate) fn new(config: ProbeConfig, netns: Netns) -> Verifier {
        Verifier {
            scheduler: ProbeScheduler::new(config.schedule),
            config,
            netns,
            keys: BTreeSet::new(),
            latest: BTreeMap::new(),
            inbox: Arc::default(),
            workers: Vec::new(),
        }
    }

    pub(crate) fn summary(&self) -> Verification {
        Verification::from_results(self.latest.values().cloned().collect())
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.scheduler.poll_timeout()
    }

    /// After a batch of changes: which interfaces to probe, and which must be probed again.
    pub(crate) fn handle_update(
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

    /// Takes in the verdicts the workers delivered.
    pub(crate) fn collect(&mut self, now: Instant, changes: &mut Vec<VerificationChange>) {
        self.workers.retain(|w| !w.is_finished());
        let done = std::mem::take(&mut *lock(&self.inbox));
        for (key, result) in done {
            if !self.keys.contains(&key) {
                continue; // the interface lost internet while it was probed
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
    }

    /// Starts every probe the schedule says is due.
    pub(crate) fn start_due(&mut self, snap: &Snapshot, now: Instant, poker: &Poker) {
        while let Some(action) = self.scheduler.poll_action(now) {
            let key = action.key;
            let Some(name) = snap.interface_name(key.ifindex).map(str::to_owned) else {
                continue;
            };
            let endpoint = self.config.endpoint.clone();
            let options = self.config.options();
            let netns = self.netns.clone();
            let inbox = self.inbox.clone();
            let poker = poker.clone();
            let spawned = std::thread::Builder::new()
                .name("netreach-probe".into())
                .spawn(move || {
                    let outcome = netns.run(|| probe_with(&endpoint, &name, key.family, &options));
                    match outcome {
                        Ok(Ok(result)) => {
                            lock(&inbox).push((key, result));
                            poker.poke();
                        }
                        // The probe itself could not run (no privilege to bind to the
                        // interface, say): no verdict; the schedule retries later.
                        Ok(Err(e)) => tracing::warn!(error = %e, %key, "probe failed to run"),
                        Err(e) => tracing::warn!(error = %e, %key, "probe failed to run"),
                    }
                });
            match spawned {
                Ok(handle) => self.workers.push(handle),
                Err(e) => tracing::warn!(error = %e, "cannot start a probe thread"),
            }
        }
    }
}

impl Drop for Verifier {
    /// Waits for probes in flight (each ends within its timeout), so no thread outlives the
    /// monitor.
    fn drop(&mut self) {
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
