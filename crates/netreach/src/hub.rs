//! The hub: the one place where the machine's ordered stream meets its readers.
//!
//! The monitor's thread publishes each batch of outputs with the state after it. The hub keeps
//! that state and the published view of every attached status and connection monitor (what the
//! handles read), and puts each item into the bounded queue of every subscriber interested in it.
//! Every subscription kind (model, status, reachability, the whole stream) is a reader of this
//! one hub: none applies events to a copy of its own, each item carries the state after its
//! batch.
//!
//! A subscriber that falls behind (its queue is full) loses its queue, not its information:
//! whole batches are dropped, never the rest of one it has started reading, and when it next
//! reads, what it missed is merged: model changes into the difference between the state it last
//! saw and the current one, derived changes into the current values (see the subscription
//! types).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::{Instant, SystemTime};

use netreach_core::Snapshot;
use netreach_core::connectivity::Connectivity;
use netreach_core::machine::{ReachId, StatusId};
use netreach_core::probe::Verification;
use netreach_core::reach::{Reachability, Target, TargetId};

use crate::Notification;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep going with it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Which owners' items a subscriber wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owners {
    None,
    One(u64),
    All,
}

impl Owners {
    fn has(self, id: u64) -> bool {
        match self {
            Owners::None => false,
            Owners::One(o) => o == id,
            Owners::All => true,
        }
    }
}

/// What a subscriber wants from the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Interest {
    pub(crate) model: bool,
    pub(crate) statuses: Owners,
    pub(crate) reaches: Owners,
}

impl Interest {
    pub(crate) const MODEL: Interest = Interest {
        model: true,
        statuses: Owners::None,
        reaches: Owners::None,
    };

    fn wants(&self, tag: Tag) -> bool {
        match tag {
            Tag::Model => self.model,
            Tag::Status(id) => self.statuses.has(id.0),
            Tag::Reach(id) => self.reaches.has(id.0),
        }
    }
}

/// Whose item a notification is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tag {
    Model,
    Status(StatusId),
    Reach(ReachId),
}

/// The published view of a status monitor.
#[derive(Debug, Clone, Default)]
pub(crate) struct StatusView {
    pub(crate) connectivity: Connectivity,
    pub(crate) verification: Verification,
}

/// The published view of a connection monitor.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReachView {
    /// Every watched target and its last reported state (shared with the targets that got the
    /// same verdict). Targets are added and removed by the handles (so a new subscription sees
    /// a target at once), states by the monitor's thread. Ordered: the states of a change come
    /// in target order, so that each search runs down the nodes the previous one loaded (a
    /// hash map put each of 10,000 targets on a cache line of its own, and finding it was most
    /// of the cost of publishing a verdict).
    pub(crate) targets: BTreeMap<TargetId, (Target, Option<Arc<Reachability>>)>,
    pub(crate) lookups: u64,
}

/// One queued item: the notification and the state after its batch.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub(crate) notification: Notification,
    pub(crate) snapshot: Arc<Snapshot>,
    batch: u64,
}

/// The monitor side: current state, views and subscribers.
#[derive(Debug)]
pub(crate) struct Hub {
    pub(crate) state: Mutex<HubState>,
}

#[derive(Debug)]
pub(crate) struct HubState {
    pub(crate) snapshot: Arc<Snapshot>,
    pub(crate) seq: u64,
    pub(crate) statuses: BTreeMap<StatusId, StatusView>,
    pub(crate) reaches: BTreeMap<ReachId, ReachView>,
    batch: u64,
    next_id: u64,
    subscribers: Vec<(u64, Arc<Slot>)>,
    closed: bool,
}

/// One subscriber's queue, shared between the monitor thread and the subscriber.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) queue: Mutex<Queue>,
    ready: Condvar,
    interest: Interest,
    /// The batch whose state the subscriber's `Ready` snapshot is: model items of it published
    /// after the subscription are already in that snapshot and are not queued.
    subscribed: u64,
}

#[derive(Debug)]
pub(crate) struct Queue {
    pub(crate) items: VecDeque<Item>,
    capacity: usize,
    /// Changes dropped since the subscriber last read; 0 when in step.
    pub(crate) missed: u64,
    /// A resync marker was among the dropped items.
    pub(crate) missed_resync: bool,
    /// The batch of the last item handed out: kept whole on overflow.
    pub(crate) reading: u64,
    pub(crate) closed: bool,
    waker: Option<Waker>,
    /// Threads waiting on the slot's condition variable (a subscription has one reader; a
    /// count keeps it right whatever the callers do).
    waiting: u32,
    /// States the reader let go of while holding the last reference to them: the monitor's
    /// thread drops them after its next publication. Freeing a state's own nodes, and counting
    /// down the nodes it shares with the next, touches the memory the monitor's thread copies
    /// on the next change; done by the reader, it would be on the reader's path (before it gets
    /// the change) and move those cache lines to the reader's core and back.
    pub(crate) retired: Vec<Arc<Snapshot>>,
}

/// A batch of the stream, as the monitor's thread hands it over.
pub(crate) struct Batch {
    pub(crate) snapshot: Arc<Snapshot>,
    pub(crate) seq: u64,
    pub(crate) items: Vec<(Tag, Notification)>,
}

impl Hub {
    pub(crate) fn new(snapshot: Arc<Snapshot>) -> Hub {
        Hub {
            state: Mutex::new(HubState {
                snapshot,
                seq: 0,
                statuses: BTreeMap::new(),
                reaches: BTreeMap::new(),
                batch: 0,
                next_id: 0,
                subscribers: Vec::new(),
                closed: false,
            }),
        }
    }

    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        lock(&self.state).snapshot.clone()
    }

    /// The model subscriptions ([`crate::Monitor::subscribe`] and [`crate::Monitor::stream`]).
    pub(crate) fn subscribers(&self) -> usize {
        lock(&self.state)
            .subscribers
            .iter()
            .filter(|(_, s)| s.interest.model)
            .count()
    }

    /// Publishes a batch: the views and the state are updated, and every interested subscriber
    /// gets its items.
    ///
    /// Whether it woke a reader that was waiting (a thread or an async task). The states let
    /// go of (the one this batch replaces, those readers retired) go into `garbage`, for the
    /// caller to free once it has nothing more urgent to do.
    pub(crate) fn publish(&self, batch: Batch, garbage: &mut Vec<Arc<Snapshot>>) -> bool {
        let mut st = lock(&self.state);
        // The driver hands one state over in slices (and the derived changes that follow it,
        // with the same state): they are one batch. Every item carries the state after the
        // whole batch, so a subscriber that read one item of it has a view that includes all
        // of them: the rest must reach it (see `Queue::push`), never be merged away.
        if !Arc::ptr_eq(&batch.snapshot, &st.snapshot) {
            st.batch += 1;
        }
        let id = st.batch;
        for (tag, n) in &batch.items {
            st.note(*tag, n);
        }
        let previous = std::mem::replace(&mut st.snapshot, batch.snapshot.clone());
        garbage.push(previous);
        st.seq = batch.seq;
        // Each item is cloned for every interested subscriber but the last, which gets it.
        let last: Vec<Option<usize>> = batch
            .items
            .iter()
            .map(|(tag, _)| {
                st.subscribers
                    .iter()
                    .rposition(|(_, slot)| slot.interest.wants(*tag))
            })
            .collect();
        let mut items: Vec<Option<(Tag, Notification)>> =
            batch.items.into_iter().map(Some).collect();
        let mut woke = false;
        for (k, (_, slot)) in st.subscribers.iter().enumerate() {
            let mut q = lock(&slot.queue);
            garbage.append(&mut q.retired);
            let mut pushed = false;
            for (item, last) in items.iter_mut().zip(&last) {
                let Some((tag, n)) = item else { continue };
                if !slot.interest.wants(*tag) || (*tag == Tag::Model && id == slot.subscribed) {
                    continue;
                }
                let notification = if *last == Some(k) {
                    item.take().map(|(_, n)| n)
                } else {
                    Some(n.clone())
                };
                if let Some(notification) = notification {
                    q.push(Item {
                        notification,
                        snapshot: batch.snapshot.clone(),
                        batch: id,
                    });
                    pushed = true;
                }
            }
            if pushed {
                woke |= slot.notify(q);
            }
        }
        drop(st);
        drop(items);
        woke
    }

    /// Updates a view without publishing anything (a monitor attached, a target added).
    pub(crate) fn with_state<R>(&self, f: impl FnOnce(&mut HubState) -> R) -> R {
        f(&mut lock(&self.state))
    }

    /// Ends the subscriptions that follow only `tag`'s owner (its monitor is gone): they drain
    /// what they have, then end.
    pub(crate) fn close_owner(&self, tag: Tag) {
        let mut st = lock(&self.state);
        match tag {
            Tag::Status(id) => {
                st.statuses.remove(&id);
            }
            Tag::Reach(id) => {
                st.reaches.remove(&id);
            }
            Tag::Model => {}
        }
        let only = |i: &Interest| match tag {
            Tag::Status(id) => !i.model && i.statuses == Owners::One(id.0),
            Tag::Reach(id) => !i.model && i.reaches == Owners::One(id.0),
            Tag::Model => false,
        };
        st.subscribers.retain(|(_, slot)| {
            if only(&slot.interest) {
                let mut q = lock(&slot.queue);
                q.closed = true;
                slot.notify(q);
                false
            } else {
                true
            }
        });
    }

    /// Marks the hub closed: subscribers drain what they have, then see the end.
    pub(crate) fn close(&self) {
        let mut st = lock(&self.state);
        st.closed = true;
        for (_, slot) in st.subscribers.drain(..) {
            let mut q = lock(&slot.queue);
            q.closed = true;
            slot.notify(q);
        }
    }

    /// A new subscriber, whose first item is [`Notification::Ready`] with the state at this
    /// moment; `capture` reads the views at the same moment (under the hub's lock, so that
    /// every later change is in the queue and no earlier one).
    pub(crate) fn subscribe<T>(
        &self,
        interest: Interest,
        capacity: usize,
        capture: impl FnOnce(&HubState) -> T,
    ) -> (u64, Arc<Slot>, T) {
        let mut st = lock(&self.state);
        let slot = Arc::new(Slot {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                capacity: capacity.max(1),
                missed: 0,
                missed_resync: false,
                reading: st.batch,
                closed: st.closed,
                waker: None,
                waiting: 0,
                retired: Vec::new(),
            }),
            ready: Condvar::new(),
            interest,
            subscribed: st.batch,
        });
        let id = st.next_id;
        st.next_id += 1;
        let captured = capture(&st);
        lock(&slot.queue).items.push_back(Item {
            notification: Notification::Ready {
                seq: st.seq,
                time: SystemTime::now(),
                snapshot: st.snapshot.clone(),
            },
            snapshot: st.snapshot.clone(),
            batch: st.batch,
        });
        if !st.closed {
            st.subscribers.push((id, slot.clone()));
        }
        (id, slot, captured)
    }

    pub(crate) fn unsubscribe(&self, id: u64) {
        lock(&self.state).subscribers.retain(|(i, _)| *i != id);
    }
}

impl HubState {
    /// Keeps the views current with a published item.
    fn note(&mut self, tag: Tag, n: &Notification) {
        match (tag, n) {
            (Tag::Status(id), Notification::Connectivity { connectivity, .. }) => {
                if let Some(v) = self.statuses.get_mut(&id) {
                    v.connectivity = connectivity.clone();
                }
            }
            (
                Tag::Status(id),
                Notification::Verification {
                    verification,
                    connectivity,
                    ..
                },
            ) => {
                if let Some(v) = self.statuses.get_mut(&id) {
                    v.verification = Verification::clone(verification);
                    v.connectivity = connectivity.clone();
                }
            }
            (Tag::Reach(owner), Notification::Reachability { id, new, .. }) => {
                if let Some(v) = self.reaches.get_mut(&owner) {
                    if let Some(entry) = v.targets.get_mut(id) {
                        entry.1 = Some(Arc::clone(new));
                    }
                }
            }
            _ => {}
        }
    }
}

impl Queue {
    fn push(&mut self, item: Item) {
        let counts = |n: &Notification| u64::from(!matches!(n, Notification::Resynced { .. }));
        if item.batch == self.reading {
            // The rest of the batch being read: its state is already the reader's view, so a
            // merge would not bring it back. Kept whole, beyond the capacity if need be (by at
            // most one batch: the outputs of one state of the machine).
            self.items.push_back(item);
            return;
        }
        if self.missed > 0 {
            // Already behind: the merge on the next read covers this one too.
            self.missed += counts(&item.notification);
            self.missed_resync |= matches!(item.notification, Notification::Resynced { .. });
            return;
        }
        if self.items.len() >= self.capacity {
            // Keep the rest of the batch being read; drop every later one whole.
            let reading = self.reading;
            let mut dropped = counts(&item.notification);
            self.missed_resync |= matches!(item.notification, Notification::Resynced { .. });
            let mut resync = false;
            self.items.retain(|i| {
                let keep = i.batch == reading;
                if !keep {
                    dropped += counts(&i.notification);
                    resync |= matches!(i.notification, Notification::Resynced { .. });
                }
                keep
            });
            self.missed_resync |= resync;
            // Keep `missed` non-zero even when only markers were dropped.
            self.missed = dropped.max(1);
            return;
        }
        self.items.push_back(item);
    }

    /// Takes the next queued item, remembering its batch.
    pub(crate) fn pop(&mut self) -> Option<Item> {
        let item = self.items.pop_front()?;
        self.reading = item.batch;
        Some(item)
    }

    /// Moves every queued item to the end of `into` (empty: it swaps with the queue, so each
    /// side keeps reusing its allocation), remembering the last one's batch as the one being
    /// read: the reader holds its start, so the rest of it must reach the reader. `false`
    /// when there was none.
    pub(crate) fn take_all(&mut self, into: &mut VecDeque<Item>) -> bool {
        let Some(last) = self.items.back() else {
            return false;
        };
        self.reading = last.batch;
        if into.is_empty() {
            std::mem::swap(into, &mut self.items);
        } else {
            into.append(&mut self.items);
        }
        true
    }

    pub(crate) fn set_waker(&mut self, waker: &Waker) {
        match &self.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => self.waker = Some(waker.clone()),
        }
    }

    /// Something to hand out (or the end).
    pub(crate) fn has_news(&self) -> bool {
        !self.items.is_empty() || self.missed > 0 || self.closed
    }
}

impl Slot {
    /// Wakes the reader, if it waits; whether it did.
    fn notify(&self, mut q: MutexGuard<'_, Queue>) -> bool {
        let waker = q.waker.take();
        let waiting = q.waiting > 0;
        drop(q);
        // A reader checks for news and starts waiting under the lock, so one that was not
        // waiting above will see what was just pushed: no system call for it.
        if waiting {
            self.ready.notify_all();
        }
        let woke = waiting || waker.is_some();
        if let Some(w) = waker {
            w.wake();
        }
        woke
    }

    /// Waits until the queue has news or `deadline` passes; returns the guard.
    pub(crate) fn wait<'a>(
        &'a self,
        mut q: MutexGuard<'a, Queue>,
        deadline: Option<Instant>,
    ) -> Option<MutexGuard<'a, Queue>> {
        while !q.has_news() {
            let timeout = match deadline {
                None => None,
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return None;
                    }
                    Some(d - now)
                }
            };
            q.waiting += 1;
            q = match timeout {
                None => self.ready.wait(q).unwrap_or_else(PoisonError::into_inner),
                Some(t) => {
                    self.ready
                        .wait_timeout(q, t)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
            q.waiting -= 1;
        }
        Some(q)
    }
}
