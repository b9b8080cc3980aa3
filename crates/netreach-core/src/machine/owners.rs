//! What the machine keeps per attached monitor: a status monitor's tracker and probe book, a
//! connection monitor's tracker and the targets waiting to be looked up again.

use std::collections::BTreeSet;
use std::time::Instant;

use crate::connectivity::{Connectivity, ConnectivityChange, ConnectivityConfig, StatusTracker};
use crate::event::Event;
use crate::model::Snapshot;
use crate::probe::{
    ProbeBook, ProbeKey, ProbeResult, ProbeSchedule, Verification, VerificationChange,
};
use crate::reach::{ConnectionTracker, TargetId};

/// One status monitor.
#[derive(Debug)]
pub(super) struct StatusPart {
    pub(super) tracker: StatusTracker,
    probe: Option<ProbeBook>,
}

impl StatusPart {
    pub(super) fn new(
        snapshot: &Snapshot,
        config: ConnectivityConfig,
        probe: Option<ProbeSchedule>,
        now: Instant,
    ) -> StatusPart {
        let tracker = StatusTracker::from_snapshot(snapshot, config);
        let probe = probe.map(|schedule| {
            let mut book = ProbeBook::new(schedule);
            // No verdict yet, so no change comes of this: it only says what to probe.
            book.handle_update(snapshot, tracker.config(), &[], now, &mut Vec::new());
            book
        });
        StatusPart { tracker, probe }
    }

    pub(super) fn connectivity(&self) -> &Connectivity {
        self.tracker.status()
    }

    pub(super) fn verification(&self) -> Verification {
        self.probe
            .as_ref()
            .map(ProbeBook::summary)
            .unwrap_or_default()
    }

    /// A batch of model events: the connectivity changes, in order, and the verification
    /// changes they cause (pairs that lost internet).
    pub(super) fn handle_update(
        &mut self,
        snapshot: &Snapshot,
        events: &[Event],
        now: Instant,
        verifications: &mut Vec<VerificationChange>,
    ) -> Vec<ConnectivityChange> {
        self.tracker.handle_update(snapshot, events);
        let changes = std::iter::from_fn(|| self.tracker.poll_change()).collect();
        if let Some(book) = &mut self.probe {
            book.handle_update(snapshot, self.tracker.config(), events, now, verifications);
        }
        changes
    }

    pub(super) fn handle_probe_result(
        &mut self,
        key: ProbeKey,
        result: ProbeResult,
        now: Instant,
        changes: &mut Vec<VerificationChange>,
    ) {
        if let Some(book) = &mut self.probe {
            book.handle_result(key, result, now, changes);
        }
    }

    pub(super) fn poll_probe(&mut self, now: Instant) -> Option<ProbeKey> {
        self.probe.as_mut()?.poll_probe(now)
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.probe.as_ref()?.poll_timeout()
    }
}

/// One connection monitor.
#[derive(Debug, Default)]
pub(super) struct ReachPart {
    pub(super) tracker: ConnectionTracker,
    /// Targets whose lookup failed in transport, looked up again at the retry timer.
    pub(super) retry: BTreeSet<TargetId>,
    /// Route lookups asked for.
    pub(super) lookups: u64,
}
