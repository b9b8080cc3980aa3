//! The machine: one sans-IO state machine per monitored namespace that owns the model, the
//! connectivity trackers, the probe book-keeping and the connection trackers, and turns what the
//! backend says into **one ordered stream** of outputs.
//!
//! Every output has a sequence number from one counter; a derived output (a connectivity,
//! verification or reachability change) names the model change that caused it (`cause`). The
//! machine asks the glue for IO with [`Action`]s (dump, dump one interface's routes, look a
//! route up, run a probe, read a medium hint) and learns the answers through `handle_*`. It keeps
//! one timer table and says when it next wants [`Machine::handle_timeout`] with
//! [`Machine::poll_timeout`]. It does no IO: time comes in as arguments.
//!
//! # Calling order
//!
//! The glue (the driver thread of the `netreach` crate, or the simulator in tests) runs a loop:
//!
//! 1. **Feed** what happened: kernel updates ([`Machine::handle_updates`]), a lost-notification
//!    overflow ([`Machine::handle_overflow`]), a full state from a polling backend
//!    ([`Machine::handle_state`]), commands from handles (attach and detach monitors, add and
//!    remove targets), finished probes ([`Machine::handle_probe_result`]), and, when the
//!    deadline of [`Machine::poll_timeout`] has passed, [`Machine::handle_timeout`].
//! 2. **Act**: drain [`Machine::poll_action`] (which first works out what the model changes
//!    handed in mean for connectivity and reachability) and answer each action through its
//!    `handle_*`
//!    ([`Machine::handle_dump`], [`Machine::handle_routes`], [`Machine::handle_lookup`],
//!    [`Machine::handle_medium_hint`]; a probe's answer may come much later). Answers may arrive
//!    in any order; actions may be batched (route lookups are pipelined).
//! 3. **Publish**: drain [`Machine::poll_output`]; [`Machine::snapshot`] is the state after the
//!    last model output drained.
//! 4. **Arm the timer** with [`Machine::poll_timeout`] and sleep until the backend, a handle or
//!    the deadline wakes the loop. `None` means no timer: idle is idle.
//!
//! Steps 2 and 3 may interleave: publishing the model outputs before the first `poll_action`,
//! and between batches of lookups, keeps latency low. The outputs are always in stream order.
//!
//! # What derived outputs wait for
//!
//! The effects of a batch of model changes on connectivity and reachability are computed once
//! the batch is complete: after the route dumps it needed (the kernel changes routes silently on
//! link down and carrier changes, see `docs/model.md`) and the medium hints of new interfaces
//! are in. So a link going down is judged once, with its routes already gone.
//!
//! # Failures of the glue
//!
//! They come back as typed inputs and never stop the machine: a failed full dump is retried
//! with backoff (the model stays as it was until one succeeds); a failed dump of one interface's
//! routes becomes a full dump (a resync); a route lookup whose socket failed is a
//! [`LookupFailure::Transport`], never a verdict: the target keeps its state and is looked up
//! again after [`LOOKUP_RETRY`].

mod owners;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
mod timer;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::connectivity::{Connectivity, ConnectivityChange, ConnectivityConfig, Medium};
use crate::diff::diff;
use crate::event::{Event, Refresh, RouteRefresh, Update};
use crate::model::{Family, Route, Snapshot};
use crate::probe::{ProbeKey, ProbeResult, ProbeSchedule, Verification, VerificationChange};
use crate::reach::{Errno, LookupAnswer, LookupId, Reachability, RouteQuery, Target, TargetId};

use owners::{ReachPart, StatusPart};
use timer::{Backoff, Timer, TimerTable};

/// Targets judged per slice of deferred reachability work (see [`Machine::poll_action`]).
const REACH_SLICE: usize = 256;

/// With at most this many connection targets watched, [`Machine::derive`] judges them too.
const DERIVE_TARGETS: usize = 32;

/// A failed route lookup is tried again after this long.
pub const LOOKUP_RETRY: Duration = Duration::from_millis(500);
/// A failed full dump is tried again after this long, doubling up to [`DUMP_RETRY_MAX`].
pub const DUMP_RETRY_MIN: Duration = Duration::from_millis(50);
/// The longest wait between two attempts at a full dump.
pub const DUMP_RETRY_MAX: Duration = Duration::from_secs(5);

/// Names a status monitor attached to a [`Machine`]; chosen by the caller, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatusId(pub u64);

/// Names a connection monitor attached to a [`Machine`]; chosen by the caller, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReachId(pub u64);

/// Something the machine needs done outside the core.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Dump the whole state (links, addresses, routes, rules) and hand it to
    /// [`Machine::handle_dump`].
    Dump,
    /// Dump the routes of `family` (through `interface` only, when given) and hand them to
    /// [`Machine::handle_routes`] with the same arguments.
    DumpRoutes {
        /// The family.
        family: Family,
        /// Only the routes through this interface (a dump filtered by output interface).
        interface: Option<u32>,
    },
    /// Ask the kernel which route `query` takes and hand the answer to
    /// [`Machine::handle_lookup`] with `owner` and `id`.
    LookupRoute {
        /// The connection monitor that asks.
        owner: ReachId,
        /// Names the lookup in the answer.
        id: LookupId,
        /// What to look up.
        query: RouteQuery,
    },
    /// Probe internet access over `interface` (index `key.ifindex`) for `key.family`, with the
    /// endpoint of status monitor `owner`, and hand the result to
    /// [`Machine::handle_probe_result`].
    Probe {
        /// The status monitor whose probe this is.
        owner: StatusId,
        /// Which interface and family.
        key: ProbeKey,
        /// The interface's name, to bind the probe to.
        interface: String,
    },
    /// Read what the system says about the medium of this interface (sysfs on Linux) and hand
    /// it to [`Machine::handle_medium_hint`]. Asked only when the machine was built with
    /// [`MachineConfig::medium_hints`].
    ReadMediumHint {
        /// The interface's index.
        ifindex: u32,
        /// Its name.
        name: String,
    },
}

/// Why a dump failed; the machine retries or resyncs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DumpFailure {
    /// What the glue says went wrong, for logs.
    pub message: String,
}

impl DumpFailure {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> DumpFailure {
        DumpFailure {
            message: message.into(),
        }
    }
}

impl fmt::Display for DumpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Why a route lookup has no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LookupFailure {
    /// Sending the request or receiving its answer failed with this errno: the kernel never
    /// judged the route. Not a verdict.
    Transport(Errno),
}

/// One item of the machine's ordered stream.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Output {
    /// A model change.
    Model {
        /// Its sequence number.
        seq: u64,
        /// What changed (boxed, as the other large payloads: the stream's items are as large
        /// as the largest, and a verdict, the item 10,000 targets bring at once, is small).
        event: Box<Event>,
    },
    /// Notifications were lost and the state was dumped again; the differences were the model
    /// outputs just before this one.
    Resynced {
        /// Its sequence number.
        seq: u64,
    },
    /// The connectivity of status monitor `owner` changed.
    Connectivity {
        /// Its sequence number.
        seq: u64,
        /// The last model change this one accounts for.
        cause: u64,
        /// Which status monitor.
        owner: StatusId,
        /// What changed and why.
        change: Box<ConnectivityChange>,
        /// Connectivity after the change.
        connectivity: Connectivity,
    },
    /// A probe verdict of status monitor `owner` changed.
    Verification {
        /// Its sequence number.
        seq: u64,
        /// The last model change when the verdict came.
        cause: u64,
        /// Which status monitor.
        owner: StatusId,
        /// What changed.
        change: Box<VerificationChange>,
        /// The summary after it.
        verification: Box<Verification>,
        /// Connectivity now.
        connectivity: Connectivity,
    },
    /// A target of connection monitor `owner` changed reachability, reason or path.
    Reachability {
        /// Its sequence number.
        seq: u64,
        /// The last model change this one accounts for.
        cause: u64,
        /// Which connection monitor.
        owner: ReachId,
        /// Which target.
        id: TargetId,
        /// The target.
        target: Target,
        /// Before (`None` for the first report).
        old: Option<Arc<Reachability>>,
        /// Now (shared by the targets that got the same verdict).
        new: Arc<Reachability>,
    },
}

impl Output {
    /// The sequence number.
    pub fn seq(&self) -> u64 {
        match self {
            Output::Model { seq, .. }
            | Output::Resynced { seq }
            | Output::Connectivity { seq, .. }
            | Output::Verification { seq, .. }
            | Output::Reachability { seq, .. } => *seq,
        }
    }
}

/// Options of a [`Machine`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MachineConfig {
    /// Ask the glue for medium hints of each interface ([`Action::ReadMediumHint`]); only where
    /// the glue can read them for the namespace watched.
    pub medium_hints: bool,
}

impl MachineConfig {
    /// With or without medium hints.
    pub fn medium_hints(mut self, on: bool) -> Self {
        self.medium_hints = on;
        self
    }
}

/// Counters of what the machine did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MachineStats {
    /// Model changes in the stream.
    pub changes: u64,
    /// Full dumps after lost notifications or a failed refresh.
    pub resyncs: u64,
    /// Route dumps after a change the kernel makes silently.
    pub route_refreshes: u64,
    /// Route changes the kernel makes silently, derived from the model instead of dumped
    /// (see [`Update::silent_effects`]).
    pub derived_routes: u64,
    /// Dumps that failed (and were retried or became a resync).
    pub dump_failures: u64,
    /// Route lookups whose transport failed (and were retried).
    pub lookup_failures: u64,
}

/// Where the full dump stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DumpState {
    Idle,
    /// Asked for (an [`Action::Dump`] is queued or out).
    Asked,
    /// Failed; asked again at the dump-retry timer.
    Waiting,
}

/// The sans-IO heart of a monitor. See the [module docs](self) for the calling order.
#[derive(Debug)]
pub struct Machine {
    config: MachineConfig,
    snapshot: Arc<Snapshot>,
    /// The last sequence number handed out.
    seq: u64,
    /// The sequence number of the last model change.
    model_seq: u64,
    statuses: BTreeMap<StatusId, StatusPart>,
    reaches: BTreeMap<ReachId, ReachPart>,
    hints: BTreeMap<u32, Option<Medium>>,
    actions: VecDeque<Action>,
    outputs: VecDeque<Output>,
    timers: TimerTable,
    dump: DumpState,
    dump_backoff: Backoff,
    /// Route dumps and medium hints asked for and not yet answered: derived work waits.
    pending: usize,
    /// Model events whose effects on the derived state are not computed yet.
    batch: Vec<Event>,
    /// The batch includes a resync: every target is looked up again.
    batch_resynced: bool,
    /// A settled batch the connection trackers have not looked at yet (its events, and
    /// whether it was a resync): `poll_action` hands it to them before their first slice, so
    /// that [`Machine::derive`] stays cheap with many targets.
    reach_batch: Option<(Vec<Event>, bool)>,
    /// The time of the latest input, for the work [`Machine::poll_action`] does.
    now: Option<Instant>,
    stats: MachineStats,
}

impl Machine {
    /// A machine whose model starts as `snapshot` (the first dump), with sequence number 0.
    pub fn new(snapshot: Snapshot, config: MachineConfig) -> Machine {
        let mut m = Machine {
            config,
            snapshot: Arc::new(snapshot),
            seq: 0,
            model_seq: 0,
            statuses: BTreeMap::new(),
            reaches: BTreeMap::new(),
            hints: BTreeMap::new(),
            actions: VecDeque::new(),
            outputs: VecDeque::new(),
            timers: TimerTable::default(),
            dump: DumpState::Idle,
            dump_backoff: Backoff::new(DUMP_RETRY_MIN, DUMP_RETRY_MAX),
            pending: 0,
            batch: Vec::new(),
            batch_resynced: false,
            reach_batch: None,
            now: None,
            stats: MachineStats::default(),
        };
        if config.medium_hints {
            let ifaces: Vec<_> = m
                .snapshot
                .interfaces()
                .map(|i| (i.index, i.name.clone()))
                .collect();
            for (ifindex, name) in ifaces {
                m.ask_hint(ifindex, name);
            }
        }
        m
    }

    /// The model after the last model output.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
    }

    /// The last sequence number handed out (0 before the first output).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The sequence number of the last model change.
    pub fn model_seq(&self) -> u64 {
        self.model_seq
    }

    /// Counters.
    pub fn stats(&self) -> MachineStats {
        self.stats
    }

    /// The connectivity of status monitor `id`.
    pub fn connectivity(&self, id: StatusId) -> Option<&Connectivity> {
        self.statuses.get(&id).map(StatusPart::connectivity)
    }

    /// What the probes of status monitor `id` say.
    pub fn verification(&self, id: StatusId) -> Option<Verification> {
        self.statuses.get(&id).map(StatusPart::verification)
    }

    /// The reachability last reported for a target.
    pub fn reachability(&self, owner: ReachId, id: TargetId) -> Option<&Reachability> {
        self.reaches.get(&owner)?.tracker.reachability(id)
    }

    /// The route lookups connection monitor `owner` asked for so far.
    pub fn lookups(&self, owner: ReachId) -> u64 {
        self.reaches.get(&owner).map_or(0, |r| r.lookups)
    }

    /// The number of targets of connection monitor `owner`.
    pub fn target_count(&self, owner: ReachId) -> usize {
        self.reaches.get(&owner).map_or(0, |r| r.tracker.len())
    }

    // ---- inputs from the backend -------------------------------------------------------

    /// Kernel updates, in the order they came. Each is applied (idempotently) and yields its
    /// model outputs at once; their effects on connectivity and reachability follow once any
    /// route dump they need is answered.
    pub fn handle_updates(&mut self, updates: impl IntoIterator<Item = Update>, now: Instant) {
        let mut refresh = RouteRefresh::default();
        let mut events = Vec::new();
        {
            let snap = Arc::make_mut(&mut self.snapshot);
            for u in updates {
                let silent = u.silent_effects(snap);
                refresh.merge(silent.refresh);
                snap.apply_into(u, &mut events);
                for derived in silent.updates {
                    self.stats.derived_routes += 1;
                    snap.apply_into(derived, &mut events);
                }
            }
        }
        for (family, scope) in refresh.families() {
            self.stats.route_refreshes += 1;
            match scope {
                Refresh::Interfaces(indexes) => {
                    for index in indexes {
                        self.ask(Action::DumpRoutes {
                            family,
                            interface: Some(index),
                        });
                    }
                }
                _ => self.ask(Action::DumpRoutes {
                    family,
                    interface: None,
                }),
            }
        }
        self.model_events(events);
        self.now = self.now.max(Some(now));
    }

    /// The backend lost notifications (socket overflow): the state is dumped again and the
    /// difference becomes model outputs, followed by [`Output::Resynced`].
    pub fn handle_overflow(&mut self) {
        self.ask_dump();
    }

    /// A full state from a backend that polls instead of being notified: the difference to the
    /// model becomes model outputs (no resync marker: nothing was lost).
    pub fn handle_state(&mut self, state: Snapshot, now: Instant) {
        let events = diff(&self.snapshot, &state);
        if events.is_empty() {
            return;
        }
        self.snapshot = Arc::new(state);
        self.model_events(events);
        self.now = self.now.max(Some(now));
    }

    /// The answer to [`Action::Dump`].
    pub fn handle_dump(&mut self, result: Result<Snapshot, DumpFailure>, now: Instant) {
        if self.dump != DumpState::Asked {
            return;
        }
        match result {
            Ok(state) => {
                self.dump = DumpState::Idle;
                self.dump_backoff.reset();
                self.timers.clear(Timer::DumpRetry);
                self.stats.resyncs += 1;
                let events = diff(&self.snapshot, &state);
                self.snapshot = Arc::new(state);
                self.model_events(events);
                self.seq += 1;
                self.outputs.push_back(Output::Resynced { seq: self.seq });
                self.batch_resynced = true;
                self.now = self.now.max(Some(now));
            }
            Err(_) => {
                self.stats.dump_failures += 1;
                self.dump = DumpState::Waiting;
                let wait = self.dump_backoff.next();
                self.timers.set(Timer::DumpRetry, now + wait);
            }
        }
    }

    /// The answer to [`Action::DumpRoutes`] with the same `family` and `interface`. A failure
    /// becomes a full dump.
    pub fn handle_routes(
        &mut self,
        family: Family,
        interface: Option<u32>,
        result: Result<Vec<Route>, DumpFailure>,
        now: Instant,
    ) {
        self.pending = self.pending.saturating_sub(1);
        match result {
            Ok(routes) => {
                let snap = Arc::make_mut(&mut self.snapshot);
                let events = match interface {
                    Some(index) => snap.sync_interface_routes(family, index, routes),
                    None => snap.sync_routes(family, routes),
                };
                self.model_events(events);
            }
            Err(_) => {
                self.stats.dump_failures += 1;
                self.ask_dump();
            }
        }
        self.now = self.now.max(Some(now));
    }

    /// The answer to [`Action::ReadMediumHint`].
    pub fn handle_medium_hint(&mut self, ifindex: u32, medium: Option<Medium>, now: Instant) {
        self.pending = self.pending.saturating_sub(1);
        if self.snapshot.interface(ifindex).is_some() {
            self.hints.insert(ifindex, medium);
            for s in self.statuses.values_mut() {
                s.tracker.set_medium_hint(ifindex, medium);
            }
        }
        self.now = self.now.max(Some(now));
    }

    /// The answer to [`Action::LookupRoute`].
    pub fn handle_lookup(
        &mut self,
        owner: ReachId,
        id: LookupId,
        answer: Result<LookupAnswer, LookupFailure>,
        now: Instant,
    ) {
        // A settled batch the trackers have not seen may name the target: they must know
        // before judging an answer that may predate it.
        self.defer_reach();
        let Some(part) = self.reaches.get_mut(&owner) else {
            return;
        };
        match answer {
            Ok(answer) => part.tracker.handle_lookup(id, answer, &self.snapshot),
            Err(LookupFailure::Transport(_)) => {
                self.stats.lookup_failures += 1;
                if let Some(target) = part.tracker.handle_lookup_failed(id) {
                    part.retry.insert(target);
                    if self.timers.get(Timer::LookupRetry).is_none() {
                        self.timers.set(Timer::LookupRetry, now + LOOKUP_RETRY);
                    }
                }
            }
        }
        self.drain_reach(owner);
    }

    /// A probe asked for by [`Action::Probe`] finished. `None`: it could not run at all (no
    /// privilege to bind to the interface, say); the schedule tries again later.
    pub fn handle_probe_result(
        &mut self,
        owner: StatusId,
        key: ProbeKey,
        result: Option<ProbeResult>,
        now: Instant,
    ) {
        let Some(part) = self.statuses.get_mut(&owner) else {
            return;
        };
        let Some(result) = result else {
            return;
        };
        let mut changes = Vec::new();
        part.handle_probe_result(key, result, now, &mut changes);
        self.push_verifications(owner, changes);
        self.start_probes(now);
    }

    /// Time has come: the deadline of [`Machine::poll_timeout`] passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        for timer in self.timers.expired(now) {
            match timer {
                Timer::DumpRetry => {
                    if self.dump == DumpState::Waiting {
                        self.dump = DumpState::Asked;
                        self.actions.push_back(Action::Dump);
                    }
                }
                Timer::LookupRetry => {
                    let owners: Vec<ReachId> = self.reaches.keys().copied().collect();
                    for owner in owners {
                        if let Some(part) = self.reaches.get_mut(&owner) {
                            for target in std::mem::take(&mut part.retry) {
                                part.tracker.refresh(target);
                            }
                        }
                        self.drain_reach(owner);
                    }
                }
            }
        }
        self.start_probes(now);
    }

    // ---- inputs from handles -----------------------------------------------------------

    /// Attaches a status monitor with these rules; with `probe`, it verifies internet access on
    /// that schedule. The current state is its baseline: nothing is reported for it.
    pub fn attach_status(
        &mut self,
        id: StatusId,
        mut config: ConnectivityConfig,
        probe: Option<ProbeSchedule>,
        now: Instant,
    ) {
        for (&index, &medium) in &self.hints {
            config.set_medium_hint(index, medium);
        }
        let part = StatusPart::new(&self.snapshot, config, probe, now);
        self.statuses.insert(id, part);
        self.start_probes(now);
    }

    /// Detaches a status monitor; its probes in flight are ignored when they return.
    pub fn detach_status(&mut self, id: StatusId) {
        self.statuses.remove(&id);
    }

    /// Attaches a connection monitor with no targets.
    pub fn attach_reach(&mut self, id: ReachId) {
        self.reaches.entry(id).or_default();
    }

    /// Detaches a connection monitor and forgets its targets.
    pub fn detach_reach(&mut self, id: ReachId) {
        self.reaches.remove(&id);
    }

    /// Starts watching `target` under `id` for connection monitor `owner`; its first report
    /// follows the kernel's answer to its lookup. Returns `false` for an unknown owner or an id
    /// already taken.
    pub fn add_target(&mut self, owner: ReachId, id: TargetId, target: Target) -> bool {
        let Some(part) = self.reaches.get_mut(&owner) else {
            return false;
        };
        let added = part.tracker.insert(id, target);
        self.drain_reach(owner);
        added
    }

    /// Stops watching a target.
    pub fn remove_target(&mut self, owner: ReachId, id: TargetId) {
        if let Some(part) = self.reaches.get_mut(&owner) {
            part.tracker.remove(id);
            part.retry.remove(&id);
        }
    }

    // ---- outputs -------------------------------------------------------------------------

    /// The next action for the glue. The effects of the model changes handed in so far on
    /// connectivity and reachability are computed here, once nothing they need is pending, so
    /// that the glue can publish the model changes (from [`Machine::poll_output`]) before that
    /// work.
    pub fn poll_action(&mut self) -> Option<Action> {
        if let Some(now) = self.now {
            self.settle(now);
        }
        loop {
            if let Some(a) = self.actions.pop_front() {
                return Some(a);
            }
            // The targets a batch named are judged a slice at a time: each slice's verdicts
            // are outputs (the glue may publish them, see `ready_outputs`) and its lookups are
            // actions, before the next slice is looked at.
            if !self.work_reach(REACH_SLICE) {
                shrink(&mut self.actions);
                return None;
            }
        }
    }

    /// Computes what follows from the model changes so far and needs no IO (connectivity and
    /// probe verdicts) and queues it as outputs, so that the glue can hand it over together
    /// with the model changes that caused it (one wake-up of a reader, not two). Nothing while
    /// a route dump the batch needs is out. Calling it is optional: `poll_action` does the
    /// same first.
    ///
    /// Reachability too, when few targets are watched (at most 32 in all): what the model
    /// alone decides (the path's interface down, the local address gone, no route left) is
    /// queued now, and the route lookups to confirm it become actions. With more targets that
    /// work is left for [`Machine::poll_action`], a slice at a time: finding the targets a
    /// change affects grows with them, and the model change goes out first.
    pub fn derive(&mut self) {
        if let Some(now) = self.now {
            self.settle(now);
        }
        let watched: usize = self.reaches.values().map(|p| p.tracker.len()).sum();
        if watched > 0 && watched <= DERIVE_TARGETS {
            self.work_reach(DERIVE_TARGETS);
        }
    }

    /// How many outputs wait in the stream: a glue that drains [`Machine::poll_action`] may
    /// publish them as soon as there are enough, before it asks for the next action.
    pub fn ready_outputs(&self) -> usize {
        self.outputs.len()
    }

    /// The next item of the stream.
    pub fn poll_output(&mut self) -> Option<Output> {
        let o = self.outputs.pop_front();
        if o.is_none() {
            shrink(&mut self.outputs);
        }
        o
    }

    /// When [`Machine::handle_timeout`] is next wanted; `None`: no timer at all.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let probes = self
            .statuses
            .values()
            .filter_map(StatusPart::poll_timeout)
            .min();
        match (self.timers.next(), probes) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ---- internals -----------------------------------------------------------------------

    fn ask(&mut self, action: Action) {
        self.pending += 1;
        self.actions.push_back(action);
    }

    fn ask_hint(&mut self, ifindex: u32, name: String) {
        self.ask(Action::ReadMediumHint { ifindex, name });
    }

    fn ask_dump(&mut self) {
        if self.dump == DumpState::Idle {
            self.dump = DumpState::Asked;
            self.actions.push_back(Action::Dump);
        }
    }

    /// Model events: into the stream now, into the batch for the derived state.
    fn model_events(&mut self, events: Vec<Event>) {
        self.stats.changes += events.len() as u64;
        for event in &events {
            self.seq += 1;
            self.model_seq = self.seq;
            if self.config.medium_hints {
                if let Event::InterfaceAdded(i) = event {
                    self.ask_hint(i.index, i.name.clone());
                }
            }
            self.outputs.push_back(Output::Model {
                seq: self.seq,
                event: Box::new(event.clone()),
            });
        }
        if self.batch.is_empty() {
            self.batch = events;
        } else {
            self.batch.extend(events);
        }
    }

    /// Once nothing the batch needs is pending: its effects on every status and connection
    /// monitor, in that order.
    fn settle(&mut self, now: Instant) {
        if self.pending > 0 || self.dump == DumpState::Asked {
            return;
        }
        let events = std::mem::take(&mut self.batch);
        let resynced = std::mem::take(&mut self.batch_resynced);
        if events.is_empty() && !resynced {
            return;
        }
        let owners: Vec<StatusId> = self.statuses.keys().copied().collect();
        for owner in owners {
            let Some(part) = self.statuses.get_mut(&owner) else {
                continue;
            };
            let mut verifications = Vec::new();
            let changes = part.handle_update(&self.snapshot, &events, now, &mut verifications);
            for change in changes {
                self.seq += 1;
                let connectivity = part.connectivity().clone();
                self.outputs.push_back(Output::Connectivity {
                    seq: self.seq,
                    cause: self.model_seq,
                    owner,
                    change: Box::new(change),
                    connectivity,
                });
            }
            self.push_verifications(owner, verifications);
        }
        // The connection trackers look at the batch in `work_reach`, and do the work a slice
        // at a time.
        let batch = self.reach_batch.get_or_insert_default();
        batch.0.extend(events);
        batch.1 |= resynced;
        self.start_probes(now);
    }

    /// Hands the settled batch to the connection trackers, which find the targets it affects.
    fn defer_reach(&mut self) {
        let Some((events, resynced)) = self.reach_batch.take() else {
            return;
        };
        let owners: Vec<ReachId> = self.reaches.keys().copied().collect();
        for owner in owners {
            if let Some(part) = self.reaches.get_mut(&owner) {
                part.tracker.defer_events(&events);
                if resynced {
                    part.tracker.refresh_all();
                }
            }
            self.drain_reach(owner);
        }
    }

    fn push_verifications(&mut self, owner: StatusId, changes: Vec<VerificationChange>) {
        let Some(part) = self.statuses.get(&owner) else {
            return;
        };
        if changes.is_empty() {
            return;
        }
        let verification = part.verification();
        for change in changes {
            self.seq += 1;
            self.outputs.push_back(Output::Verification {
                seq: self.seq,
                cause: self.model_seq,
                owner,
                change: Box::new(change),
                verification: Box::new(verification.clone()),
                connectivity: part.connectivity().clone(),
            });
        }
    }

    /// Hands out what a connection tracker has: changes into the stream, lookups as actions.
    /// Does at most `limit` targets of deferred reachability work (spread over the connection
    /// monitors); `false` when there was none.
    fn work_reach(&mut self, limit: usize) -> bool {
        // As for the batch itself: not while a route dump or hint it needs is out.
        if self.pending > 0 || self.dump == DumpState::Asked {
            return false;
        }
        self.defer_reach();
        let owners: Vec<ReachId> = self
            .reaches
            .iter()
            .filter(|(_, p)| p.tracker.has_work())
            .map(|(id, _)| *id)
            .collect();
        if owners.is_empty() {
            return false;
        }
        let share = (limit / owners.len()).max(1);
        for owner in owners {
            if let Some(part) = self.reaches.get_mut(&owner) {
                part.tracker.work(&self.snapshot, share);
            }
            self.drain_reach(owner);
        }
        true
    }

    fn drain_reach(&mut self, owner: ReachId) {
        let Some(part) = self.reaches.get_mut(&owner) else {
            return;
        };
        while let Some((change, target)) = part.tracker.poll_change_with_target() {
            self.seq += 1;
            self.outputs.push_back(Output::Reachability {
                seq: self.seq,
                cause: self.model_seq,
                owner,
                id: change.target,
                target,
                old: change.old,
                new: change.new,
            });
        }
        while let Some(action) = part.tracker.poll_action() {
            match action {
                crate::reach::Action::LookupRoute { id, query } => {
                    part.lookups += 1;
                    self.actions
                        .push_back(Action::LookupRoute { owner, id, query });
                }
            }
        }
    }

    fn start_probes(&mut self, now: Instant) {
        for (&owner, part) in &mut self.statuses {
            while let Some(key) = part.poll_probe(now) {
                let Some(name) = self.snapshot.interface_name(key.ifindex) else {
                    continue;
                };
                self.actions.push_back(Action::Probe {
                    owner,
                    key,
                    interface: name.to_owned(),
                });
            }
        }
    }
}

/// A queue that held a burst (10,000 targets' first reports) keeps its capacity; give it back
/// once drained, so that the burst's memory is not held for ever.
pub(crate) fn shrink<T>(queue: &mut VecDeque<T>) {
    // More than a slice of work's outputs (see `REACH_SLICE`): a queue that shrank after every
    // slice allocated and freed (and the allocator mapped and unmapped) its memory each time.
    const KEEP: usize = 2 * REACH_SLICE;
    if queue.capacity() > 4 * KEEP {
        queue.shrink_to(KEEP);
    }
}
