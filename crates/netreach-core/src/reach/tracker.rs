//! The connection tracker: the sans-IO state machine that keeps the reachability of many targets
//! current, asking the kernel for route lookups only for the targets a change can affect.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use crate::event::Event;
use crate::intern::Interned;
use crate::model::{Family, LinkKind, Route, RouteType, RuleAction, Snapshot};
use crate::reach::evaluate::{LookupAnswer, evaluate_along};
use crate::reach::index::TargetIndex;
use crate::reach::model_lookup::NO_ROUTE;
use crate::reach::pending::{BOTH, LOOKUP, Pending, REEVALUATE, ROUTE_GONE};
use crate::reach::slots::{Handle, Slots};
use crate::reach::target::{RouteQuery, Target};
use crate::reach::verdict::{Reachability, Reason};

/// Identifies a target of a [`ConnectionTracker`]; never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct TargetId(pub(crate) u64);

impl TargetId {
    /// A target id chosen by the caller (see [`ConnectionTracker::insert`]).
    pub const fn new(id: u64) -> TargetId {
        TargetId(id)
    }

    /// The id as a number.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    pub(crate) const MIN: TargetId = TargetId(0);
    pub(crate) const MAX: TargetId = TargetId(u64::MAX);
}

impl fmt::Display for TargetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "target {}", self.0)
    }
}

/// Identifies one route lookup the tracker asked for; never reused. The glue maps it to the
/// netlink sequence number of its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct LookupId(pub(crate) u64);

impl LookupId {
    /// The id as a number, for logs or as a netlink sequence number (its low 32 bits).
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

/// Something the tracker needs done outside the core.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Ask the kernel which route `query` takes (an `RTM_GETROUTE` with `RTM_F_FIB_MATCH`, see
    /// [`route_lookup_request`](super::route_lookup_request)) and hand the answer to
    /// [`ConnectionTracker::handle_lookup`] with this `id`.
    LookupRoute {
        /// Names the lookup in the answer.
        id: LookupId,
        /// What to look up.
        query: RouteQuery,
    },
}

/// A target's reachability changed: reachable or not, the reason, or the path.
///
/// The states are shared: the targets one change affects mostly share their verdict, and
/// 10,000 of them hand out one value, not 10,000 copies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReachabilityChange {
    /// Which target.
    pub target: TargetId,
    /// What was reported before; `None` for the first report of a target.
    pub old: Option<Arc<Reachability>>,
    /// What holds now.
    pub new: Arc<Reachability>,
}

impl fmt::Display for ReachabilityChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.target, self.new)?;
        if let Some(old) = &self.old {
            write!(f, " (was {old})")?;
        }
        Ok(())
    }
}

/// Where a target's route lookup stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    /// No lookup asked for.
    Idle,
    /// Asked for, not yet handed out by `poll_action`: a change now needs nothing more.
    Queued(LookupId),
    /// Handed out, answer pending.
    Sent(LookupId),
    /// Handed out, and the model changed since: the answer may be stale; look up again.
    SentStale(LookupId),
}

/// How many stale answers in a row are held back before one is reported anyway, so a target
/// whose routes never stop changing still gets reports.
const MAX_HELD_BACK: u8 = 2;

/// One target. The verdict and the answer are shared with the targets that have equal ones
/// (see [`Interned`]): 10,000 targets through one route hold one route and one verdict.
#[derive(Debug)]
struct Entry {
    target: Target,
    reported: Option<Arc<Reachability>>,
    answer: Option<Arc<LookupAnswer>>,
    lookup: Lookup,
    held_back: u8,
    /// Sorted, without duplicates: the bound interface and those of the last known path.
    /// Shared as the answer is (targets through one route have one list), so that sharing a
    /// verdict compares pointers, not lists on 10,000 heap blocks.
    interfaces: Arc<[u32]>,
}

/// Keeps the reachability of many connections current, without IO.
///
/// # Calling order
///
/// The driver owns the `NETLINK_ROUTE` sockets and the model [`Snapshot`]; the tracker owns the
/// targets. It never blocks, never reads a clock, and never does IO: it asks for route lookups
/// with [`Action`]s and is told the answers.
///
/// 1. [`add`](Self::add) a [`Target`] (made with [`Target::new`] against the current snapshot)
///    or [`remove`](Self::remove) one, at any time. Adding queues the target's first lookup.
/// 2. After applying kernel messages to the snapshot, pass the events they produced, and the
///    snapshot as it is after them, to [`handle_events`](Self::handle_events). The tracker
///    re-evaluates what the snapshot alone decides (carrier lost on the path, the local address
///    removed, the last route to the remote gone) and queues lookups for the targets whose
///    route may have changed.
/// 3. Call [`poll_action`](Self::poll_action) until it returns `None`, and perform each action:
///    send the `RTM_GETROUTE` request (built by
///    [`route_lookup_request`](super::route_lookup_request) with `fib_match`).
/// 4. For every answer ([`parse_route_lookup_answer`](super::parse_route_lookup_answer)) call
///    [`handle_lookup`](Self::handle_lookup). Every action must be answered exactly once: when
///    the request could not be sent, answer with its errno. Then go back to 3: an answer that
///    arrived after a change may queue another lookup.
/// 5. Call [`poll_change`](Self::poll_change) until it returns `None`, and publish the changes.
///
/// A target's first change (with `old: None`) comes after its first answer: it is the state at
/// the time the target was added, never an assumption. After that, a change is reported only
/// when the verdict differs: reachable or not, the reason, or the path.
///
/// When in doubt (the event socket overflowed and the snapshot was dumped again), call
/// [`refresh_all`](Self::refresh_all): every target is looked up again, and only what differs is
/// reported.
///
/// # Examples
///
/// ```
/// use netreach_core::reach::{Action, ConnectionTracker, Reachability, Target};
/// use netreach_core::{Address, AddressFlags, Interface, LinkKind, Route, Scope, Snapshot};
///
/// let mut eth = Interface::new(2, "eth0", LinkKind::Ethernet);
/// eth.admin_up = true;
/// eth.carrier = true;
/// let addr = Address {
///     interface: 2,
///     address: "198.18.0.2".parse().unwrap(),
///     prefix_len: 24,
///     scope: Scope::Global,
///     flags: AddressFlags::empty(),
/// };
/// let snap = Snapshot::from_parts([eth], [addr], []);
///
/// let mut tracker = ConnectionTracker::new();
/// let target = Target::new(
///     "198.18.0.2".parse().unwrap(),
///     "198.18.0.1".parse().unwrap(),
///     None,
///     &snap,
/// )?;
/// let id = tracker.add(target);
///
/// // The glue performs the lookup; here, the kernel's answer is the connected route.
/// let Some(Action::LookupRoute { id: lookup, query }) = tracker.poll_action() else {
///     unreachable!()
/// };
/// let route = Route::unicast("198.18.0.0/24".parse().unwrap(), None, 2);
/// tracker.handle_lookup(lookup, Ok(route), &snap);
///
/// let change = tracker.poll_change().unwrap();
/// assert_eq!(change.target, id);
/// assert_eq!(change.old, None);
/// assert!(matches!(*change.new, Reachability::Reachable(_)));
/// assert!(tracker.poll_change().is_none());
/// # Ok::<(), netreach_core::reach::TargetError>(())
/// ```
#[derive(Debug, Default)]
pub struct ConnectionTracker {
    next_target: u64,
    next_lookup: u64,
    /// By slot: the index, the marks and the outstanding lookups hold an entry's slot, so the
    /// work after a change searches nothing. The id-to-slot map and the lookups are hash maps
    /// with a fixed seed; nothing iterates them where the order shows (see
    /// [`ConnectionTracker::targets`]).
    entries: Slots<Entry>,
    lookups: IdMap<LookupId, Handle>,
    /// Each with its target: handing the lookup out needs no search of the lookups.
    queued: VecDeque<(LookupId, Handle)>,
    /// Each with its target, for [`ConnectionTracker::poll_change_with_target`].
    changes: VecDeque<(ReachabilityChange, Target)>,
    index: TargetIndex,
    /// Targets that events named and that are not re-evaluated or queued yet (see
    /// [`ConnectionTracker::defer_events`]).
    pending: Pending,
    /// Targets the last `handle_events` looked at (a measure of its work, for tests).
    examined: usize,
    answers: Interned<LookupAnswer>,
    verdicts: Interned<Reachability>,
    paths: Interned<[u32]>,
}

type IdMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

impl ConnectionTracker {
    /// A tracker with no targets.
    pub fn new() -> ConnectionTracker {
        ConnectionTracker::default()
    }

    /// Starts watching a target and queues its first lookup. Its first report follows the
    /// answer.
    pub fn add(&mut self, target: Target) -> TargetId {
        let id = TargetId(self.next_target);
        self.insert(id, target);
        id
    }

    /// Starts watching a target under an id the caller chose (so that a handle on another
    /// thread can name the target before the tracker has seen it). Returns `false`, and changes
    /// nothing, when the id is taken. Ids taken this way are never handed out by
    /// [`ConnectionTracker::add`].
    pub fn insert(&mut self, id: TargetId, target: Target) -> bool {
        let entry = Entry {
            interfaces: self
                .paths
                .get_owned(target.interface().into_iter().collect::<Vec<u32>>()),
            target,
            reported: None,
            answer: None,
            lookup: Lookup::Idle,
            held_back: 0,
        };
        let Some(h) = self.entries.insert(id, entry) else {
            return false;
        };
        if let Some(e) = self.entries.at(h) {
            self.index.insert(h, &e.target, &e.interfaces);
        }
        self.next_target = self.next_target.max(id.0.saturating_add(1));
        self.queue_lookup(h);
        true
    }

    /// Stops watching a target. Its pending changes are dropped, and the answer to a lookup in
    /// flight for it will be ignored. Returns the target, or `None` if the id is unknown.
    pub fn remove(&mut self, id: TargetId) -> Option<Target> {
        let (h, entry) = self.entries.remove(&id)?;
        if let Lookup::Queued(l) | Lookup::Sent(l) | Lookup::SentStale(l) = entry.lookup {
            self.forget_lookup(l);
        }
        self.index.remove(h, &entry.target, &entry.interfaces);
        self.changes.retain(|(c, _)| c.target != id);
        self.pending.remove(h);
        Some(entry.target)
    }

    /// The targets a batch of model events can affect are re-evaluated from `snapshot` (the
    /// state after the events) or queued for a lookup, or both. Targets the events cannot affect
    /// are not looked at: the cost is proportional to the affected targets, not to all targets.
    ///
    /// | event | targets | then |
    /// |---|---|---|
    /// | interface removed, admin state or carrier changed | bound to it or with a path through it | re-evaluate and look up |
    /// | interface renamed | the same | re-evaluate |
    /// | interface added | bound to it or with a path through it | look up |
    /// | address added or removed | with that local address | re-evaluate and look up |
    /// | address flags changed | with that local address | re-evaluate |
    /// | route added or removed (any table) | with the remote inside its prefix (a default route: all of its family), unless their last answer is a more specific route of the same table | look up; after a removal, judge "no route" now if the snapshot holds none for the remote (and no rule rejects) |
    /// | policy rule added or removed | matching its `from`/`to` selectors (all of the family when it has none or is inverted) | look up |
    pub fn handle_events(&mut self, snapshot: &Snapshot, events: &[Event]) {
        self.defer_events(events);
        self.work(snapshot, usize::MAX);
    }

    /// [`handle_events`](Self::handle_events) in two steps: this one finds the targets the
    /// events can affect and what each needs; [`work`](Self::work) does it, a slice at a time,
    /// so that the glue can hand out the first verdicts while the tracker computes the rest.
    /// Until `work` has done them all, [`has_work`](Self::has_work) is true.
    pub fn defer_events(&mut self, events: &[Event]) {
        let needs = &mut self.pending;
        let mut examined = 0usize;
        let ix = &self.index;
        let entries = &self.entries;
        for event in events {
            examined += match event {
                Event::InterfaceAdded(i) => needs.mark(ix.on_interface(i.index), LOOKUP),
                Event::InterfaceRemoved(i) => needs.mark(ix.on_interface(i.index), BOTH),
                Event::InterfaceChanged { new, changes, .. } => {
                    if changes.admin_up || changes.carrier {
                        needs.mark(ix.on_interface(new.index), BOTH)
                    } else if changes.name {
                        needs.mark(ix.on_interface(new.index), REEVALUATE)
                    } else {
                        0
                    }
                }
                Event::AddressAdded(a) | Event::AddressRemoved(a) => {
                    needs.mark(ix.with_local(a.address), BOTH)
                }
                Event::AddressChanged { new, .. } => {
                    needs.mark(ix.with_local(new.address), REEVALUATE)
                }
                Event::RouteAdded(r) | Event::RouteRemoved(r) => {
                    let affected = ix
                        .remote_in(r.destination)
                        .filter(|h| entries.at(*h).is_none_or(|e| !shadowed(e, r)));
                    let need = match event {
                        Event::RouteRemoved(_) => ROUTE_GONE,
                        _ => LOOKUP,
                    };
                    needs.mark(affected, need)
                }
                Event::RuleAdded(r) | Event::RuleRemoved(r) => {
                    let candidates: Vec<Handle> = match r.destination {
                        Some(dst) if !r.invert => ix.remote_in(dst).collect(),
                        _ => ix.of_family(r.family).collect(),
                    };
                    let selected = candidates.into_iter().filter(|h| {
                        r.invert
                            || r.source.is_none_or(|src| {
                                entries
                                    .at(*h)
                                    .is_some_and(|e| src.contains(&e.target.local()))
                            })
                    });
                    needs.mark(selected, LOOKUP)
                }
            };
        }
        self.examined = examined;
    }

    /// Re-evaluates or queues at most `limit` of the targets the deferred events named, from
    /// `snapshot` (the current model), in target order; returns how many are left.
    pub fn work(&mut self, snapshot: &Snapshot, limit: usize) -> usize {
        let mut verdicts = Verdicts::default();
        let mut rejecting = RejectingRules::default();
        let interned = &mut self.verdicts;
        for _ in 0..limit {
            let Some((h, need)) = self.pending.pop() else {
                break;
            };
            // No search: the mark holds the entry's slot, and both steps work on the entry.
            let Some(entry) = self.entries.at_mut(h) else {
                continue;
            };
            if need.reevaluate {
                // With a lookup to follow, only what the snapshot alone decides is reported now:
                // the last answer predates the change, and a verdict resting on it (a path, a
                // `linkdown` flag) may be stale. Without one, the snapshot is all that changed.
                let report = if need.lookup {
                    Report::SnapshotReasons
                } else {
                    Report::Any
                };
                if let Some(change) = judge(h.id, entry, snapshot, report, &mut verdicts, interned)
                {
                    self.changes.push_back(change);
                }
            }
            if need.route_gone && no_route_left(entry, snapshot, &mut rejecting) {
                // The kernel can answer nothing but "no route": say so now, with the model
                // event, not one lookup later. The lookup still follows and confirms.
                entry.answer = Some(self.answers.get(Err(NO_ROUTE)));
                if let Some(change) =
                    judge(h.id, entry, snapshot, Report::Any, &mut verdicts, interned)
                {
                    self.changes.push_back(change);
                }
            }
            if need.lookup {
                ask(
                    h,
                    entry,
                    &mut self.next_lookup,
                    &mut self.lookups,
                    &mut self.queued,
                );
            }
        }
        self.pending.len()
    }

    /// Deferred targets are left for [`work`](Self::work).
    pub fn has_work(&self) -> bool {
        self.pending.len() > 0
    }

    /// The kernel's answer to lookup `id` (see [`Action::LookupRoute`]); `snapshot` is the
    /// current model. An answer for a removed target or an unknown id is ignored.
    ///
    /// When the model changed after the lookup was sent, the answer may predate the change: it
    /// is kept for re-evaluations but not reported (at most twice in a row), and the target is
    /// looked up again.
    pub fn handle_lookup(&mut self, id: LookupId, answer: LookupAnswer, snapshot: &Snapshot) {
        let Some(h) = self.forget_lookup(id) else {
            return;
        };
        let Some(entry) = self.entries.at_mut(h) else {
            return;
        };
        let stale = entry.lookup == Lookup::SentStale(id);
        entry.lookup = Lookup::Idle;
        let interfaces = path_interfaces(&entry.target, &answer, snapshot, &entry.interfaces);
        if *interfaces != *entry.interfaces {
            self.index.set_interfaces(h, &entry.interfaces, &interfaces);
        }
        entry.interfaces = self.paths.get_owned(interfaces);
        entry.answer = Some(self.answers.get(answer));
        if self.pending.get(h).is_some_and(|n| n.lookup) {
            // Events named the target after this lookup was sent and their work is not done:
            // the answer may predate them, and `work` looks the target up again.
            return;
        }
        if stale && entry.held_back < MAX_HELD_BACK {
            entry.held_back += 1;
            self.queue_lookup(h);
            return;
        }
        entry.held_back = 0;
        self.reevaluate(h, snapshot, Report::Any, &mut Verdicts::default());
        if stale {
            self.queue_lookup(h);
        }
    }

    /// Lookup `id` got no answer: sending or receiving it failed (a transport error, which says
    /// nothing about the route). The target keeps its last verdict and is idle again; returns
    /// it so that the caller can look it up again later with [`ConnectionTracker::refresh`].
    /// `None` for an unknown id or a removed target.
    pub fn handle_lookup_failed(&mut self, id: LookupId) -> Option<TargetId> {
        let h = self.forget_lookup(id)?;
        let entry = self.entries.at_mut(h)?;
        if let Lookup::Sent(l) | Lookup::SentStale(l) = entry.lookup {
            if l == id {
                entry.lookup = Lookup::Idle;
            }
        }
        Some(h.id)
    }

    /// The next action to perform, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        while let Some((id, h)) = self.queued.pop_front() {
            let Some(entry) = self.entries.at_mut(h) else {
                continue;
            };
            if entry.lookup != Lookup::Queued(id) {
                continue;
            }
            entry.lookup = Lookup::Sent(id);
            return Some(Action::LookupRoute {
                id,
                query: *entry.target.query(),
            });
        }
        crate::machine::shrink(&mut self.queued);
        None
    }

    /// The next change to report, oldest first.
    pub fn poll_change(&mut self) -> Option<ReachabilityChange> {
        self.poll_change_with_target().map(|(c, _)| c)
    }

    /// [`poll_change`](Self::poll_change) with the change's target (the machine's stream
    /// names it; no search for it).
    pub(crate) fn poll_change_with_target(&mut self) -> Option<(ReachabilityChange, Target)> {
        let c = self.changes.pop_front();
        if c.is_none() {
            crate::machine::shrink(&mut self.changes);
        }
        c
    }

    /// Looks a target up again (a lookup already in flight is followed by another). Returns
    /// `false` for an unknown id.
    pub fn refresh(&mut self, id: TargetId) -> bool {
        let Some(h) = self.entries.handle(&id) else {
            return false;
        };
        self.queue_lookup(h);
        true
    }

    /// Looks every target up again: the answer to any doubt about the model.
    pub fn refresh_all(&mut self) {
        let mut all: Vec<Handle> = self.entries.handles().collect();
        all.sort_unstable();
        for h in all {
            self.queue_lookup(h);
        }
    }

    /// A watched target.
    pub fn target(&self, id: TargetId) -> Option<&Target> {
        self.entries.get(&id).map(|e| &e.target)
    }

    /// The reachability last reported for a target (`None` before its first report).
    pub fn reachability(&self, id: TargetId) -> Option<&Reachability> {
        self.entries.get(&id).and_then(|e| e.reported.as_deref())
    }

    /// All watched targets, by id.
    pub fn targets(&self) -> impl ExactSizeIterator<Item = (TargetId, &Target)> {
        let mut all: Vec<(TargetId, &Target)> = self
            .entries
            .iter()
            .map(|(id, e)| (*id, &e.target))
            .collect();
        all.sort_unstable_by_key(|(id, _)| *id);
        all.into_iter()
    }

    /// Number of watched targets.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no target is watched.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many targets the last [`handle_events`](Self::handle_events) looked at, counting a
    /// target once per event that named it.
    pub fn last_examined(&self) -> usize {
        self.examined
    }

    /// The target of lookup `id`, which is answered or moot. The map's memory goes back once
    /// no lookup is out: a hash map keeps the room of its largest burst (10,000 first lookups,
    /// 26 bytes a target) otherwise.
    fn forget_lookup(&mut self, id: LookupId) -> Option<Handle> {
        let target = self.lookups.remove(&id);
        if self.lookups.is_empty() && self.lookups.capacity() > 64 {
            self.lookups = IdMap::default();
        }
        target
    }

    fn queue_lookup(&mut self, target: Handle) {
        if let Some(entry) = self.entries.at_mut(target) {
            ask(
                target,
                entry,
                &mut self.next_lookup,
                &mut self.lookups,
                &mut self.queued,
            );
        }
    }

    /// Evaluates the last answer against `snapshot` and reports a change (see [`judge`]).
    fn reevaluate(
        &mut self,
        target: Handle,
        snapshot: &Snapshot,
        report: Report,
        verdicts: &mut Verdicts,
    ) {
        let Some(entry) = self.entries.at_mut(target) else {
            return;
        };
        if let Some(change) = judge(
            target.id,
            entry,
            snapshot,
            report,
            verdicts,
            &mut self.verdicts,
        ) {
            self.changes.push_back(change);
        }
    }
}

/// Queues a lookup for `target` (`entry`), unless one is queued; one in flight is marked stale.
fn ask(
    target: Handle,
    entry: &mut Entry,
    next_lookup: &mut u64,
    lookups: &mut IdMap<LookupId, Handle>,
    queued: &mut VecDeque<(LookupId, Handle)>,
) {
    match entry.lookup {
        Lookup::Queued(_) | Lookup::SentStale(_) => {}
        Lookup::Sent(l) => entry.lookup = Lookup::SentStale(l),
        Lookup::Idle => {
            let id = LookupId(*next_lookup);
            *next_lookup += 1;
            lookups.insert(id, target);
            entry.lookup = Lookup::Queued(id);
            queued.push_back((id, target));
        }
    }
}

/// Evaluates `entry`'s last answer against `snapshot`: the change to report, if any. Nothing
/// before the first answer. `verdicts` holds those computed from the same `snapshot` before.
fn judge(
    target: TargetId,
    entry: &mut Entry,
    snapshot: &Snapshot,
    report: Report,
    verdicts: &mut Verdicts,
    interned: &mut Interned<Reachability>,
) -> Option<(ReachabilityChange, Target)> {
    let answer = entry.answer.as_ref()?;
    let new = verdicts.get(entry, answer, snapshot, interned);
    if let Some(reported) = &entry.reported {
        if Arc::ptr_eq(reported, &new) || **reported == *new {
            return None;
        }
    }
    if report == Report::SnapshotReasons && !decided_by_snapshot(&new) {
        return None;
    }
    let old = entry.reported.replace(Arc::clone(&new));
    Some((
        ReachabilityChange { target, old, new },
        entry.target.clone(),
    ))
}

/// The verdicts computed from one snapshot, by what they depend on: a verdict is a function of
/// the local address, the bound interface, the kernel's answer and the last known path (the
/// remote only through its family, which is the local address's), so the 10,000 targets behind
/// one route and one local address are judged once. Lives for one call: the snapshot may
/// change after it.
#[derive(Debug, Default)]
struct Verdicts {
    seen: Vec<(Judged, Arc<Reachability>)>,
}

/// What a verdict was computed from.
#[derive(Debug)]
struct Judged {
    local: IpAddr,
    interface: Option<u32>,
    answer: Arc<LookupAnswer>,
    path: Arc<[u32]>,
}

impl Verdicts {
    /// Distinct inputs remembered: a change affects targets behind a few routes at a time.
    const KEEP: usize = 8;

    /// The verdict for `entry` with its last `answer`, shared with the targets judged before
    /// from the same inputs; a new one is shared through `interned` with the last one handed
    /// out.
    fn get(
        &mut self,
        entry: &Entry,
        answer: &Arc<LookupAnswer>,
        snapshot: &Snapshot,
        interned: &mut Interned<Reachability>,
    ) -> Arc<Reachability> {
        let query = entry.target.query();
        let found = self.seen.iter().find(|(j, _)| {
            j.local == query.local
                && j.interface == query.interface
                && Arc::ptr_eq(&j.answer, answer)
                && (Arc::ptr_eq(&j.path, &entry.interfaces) || j.path == entry.interfaces)
        });
        if let Some((_, verdict)) = found {
            // The rule above, checked wherever debug assertions are on (the tests).
            debug_assert_eq!(
                **verdict,
                evaluate_along(query, answer, snapshot, &entry.interfaces),
                "a shared verdict differs from the target's own"
            );
            return Arc::clone(verdict);
        }
        let verdict = interned.get(evaluate_along(query, answer, snapshot, &entry.interfaces));
        if self.seen.len() == Self::KEEP {
            self.seen.remove(0);
        }
        self.seen.push((
            Judged {
                local: query.local,
                interface: query.interface,
                answer: Arc::clone(answer),
                path: Arc::clone(&entry.interfaces),
            },
            Arc::clone(&verdict),
        ));
        verdict
    }
}

/// The target's last answer is a more specific route of the same table than `changed`: the
/// kernel's longest-prefix match in that table still picks it, so `changed` coming or going
/// cannot change the answer. (A change in another table, a rule, or of the route itself still
/// brings a lookup.) Host routes are left out: a plain lookup's answer is a `/32` or `/128`
/// built for the lookup, which says nothing about the table.
fn shadowed(entry: &Entry, changed: &Route) -> bool {
    let Some(Ok(found)) = entry.answer.as_deref() else {
        return false;
    };
    let full = match found.family {
        Family::Ipv4 => 32,
        Family::Ipv6 => 128,
    };
    let len = found.destination.prefix_len();
    found.table != 0
        && found.table == changed.table
        && len < full
        && len > changed.destination.prefix_len()
}

/// A route containing `entry`'s remote went, and the model now holds none, in any table, while
/// no policy rule of the family rejects what finds no route: the kernel's lookup can only fail
/// with `ENETUNREACH` (see `docs/reachability.md`, "No route, from the model"). Only asked
/// while the target's verdict rests on its last answer: not before its first report (which
/// follows the kernel's first answer, never an assumption), not when that answer already is
/// "no route", and not when the snapshot already explains the verdict (the interface went
/// down with the route: 10,000 targets behind it need no search each).
fn no_route_left(entry: &Entry, snapshot: &Snapshot, rejecting: &mut RejectingRules) -> bool {
    let (Some(answer), Some(reported)) = (entry.answer.as_deref(), entry.reported.as_deref())
    else {
        return false;
    };
    if matches!(answer, Err(e) if e.saturating_abs() == NO_ROUTE) || decided_by_snapshot(reported) {
        return false;
    }
    let remote = entry.target.remote();
    !rejecting.any(snapshot, Family::of(&remote)) && !snapshot.has_route_to(remote)
}

/// Whether the snapshot holds a policy rule of a family that rejects (`blackhole`,
/// `prohibit`, or an action netreach does not know): a lookup that finds no route may end at
/// one with its own errno. An `unreachable` rule answers `ENETUNREACH` as no route does.
/// Worked out once per family in a call of [`ConnectionTracker::work`].
#[derive(Debug, Default)]
struct RejectingRules {
    ipv4: Option<bool>,
    ipv6: Option<bool>,
}

impl RejectingRules {
    fn any(&mut self, snapshot: &Snapshot, family: Family) -> bool {
        let slot = match family {
            Family::Ipv4 => &mut self.ipv4,
            Family::Ipv6 => &mut self.ipv6,
        };
        *slot.get_or_insert_with(|| {
            snapshot.rules().any(|r| {
                r.family == family
                    && matches!(
                        r.action,
                        RuleAction::Blackhole | RuleAction::Prohibit | RuleAction::Other(_)
                    )
            })
        })
    }
}

/// Which re-evaluated verdicts are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Report {
    /// Any change.
    Any,
    /// Only a verdict the snapshot alone decides (see [`decided_by_snapshot`]).
    SnapshotReasons,
}

/// Unreachable for a reason the snapshot alone establishes, whatever a new lookup answers: the
/// local address is gone or unusable, or the last known path's interface is gone, down or
/// without carrier. Bad news travels fast; good news waits for the kernel's answer.
fn decided_by_snapshot(verdict: &Reachability) -> bool {
    matches!(
        verdict,
        Reachability::Unreachable(
            Reason::LocalAddressRemoved
                | Reason::LocalAddressUnusable { .. }
                | Reason::InterfaceGone { .. }
                | Reason::InterfaceDown { .. }
                | Reason::CarrierLost { .. }
        )
    )
}

/// The interfaces a target is indexed under after an answer: the one it is bound to, and those
/// of the path (every hop of a multipath route; the loopback interface for a local route). A
/// failed lookup keeps the last known path, so that the path interface coming back brings a
/// lookup.
fn path_interfaces(
    target: &Target,
    answer: &LookupAnswer,
    snapshot: &Snapshot,
    previous: &[u32],
) -> Vec<u32> {
    let mut out: Vec<u32> = match answer {
        Err(_) => previous.to_vec(),
        Ok(route) => {
            let mut v: Vec<u32> = route.interface.into_iter().collect();
            v.extend(route.nexthops.iter().map(|h| h.interface));
            if route.kind == RouteType::Local {
                v.extend(
                    snapshot
                        .interfaces()
                        .filter(|i| i.kind == LinkKind::Loopback)
                        .map(|i| i.index),
                );
            }
            v
        }
    };
    out.extend(target.interface());
    out.sort_unstable();
    out.dedup();
    out
}
