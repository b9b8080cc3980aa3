//! Subscriptions: every change, in order, to any number of readers, none of which can block
//! the monitor or make its memory grow without bound.
//!
//! The monitor's thread publishes each batch of events into a bounded queue per subscriber.
//! A subscriber that falls behind (its queue is full) loses its queue, not its information:
//! when it next reads, the events it missed are merged into the difference between the state
//! it last saw (its *view*) and the current state, preceded by a [`Notification::Lagged`].
//! Applying every change a subscription yields to its initial snapshot always gives the
//! current state.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use netreach_core::{Event, Snapshot, diff};

/// One item of a subscription's stream.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Notification {
    /// The first item: the state when the subscription started.
    Ready {
        /// Sequence number of the last change included in the snapshot.
        seq: u64,
        /// When the subscription was made.
        time: SystemTime,
        /// The state.
        snapshot: Arc<Snapshot>,
    },
    /// One change.
    Change {
        /// Sequence number, increasing by one per change of the monitor.
        seq: u64,
        /// When the monitor learnt of it.
        time: SystemTime,
        /// What changed.
        event: Event,
    },
    /// The monitor lost kernel notifications (socket overflow), dumped the state again, and
    /// sent the difference as ordinary changes just before this marker.
    Resynced {
        /// Sequence number of the last change of the resync.
        seq: u64,
        /// When.
        time: SystemTime,
    },
    /// This subscriber fell behind; the changes it missed follow, merged into the smallest set
    /// of changes that leads from what it had seen to the current state.
    Lagged {
        /// How many changes were merged away.
        missed: u64,
        /// When the subscriber caught up.
        time: SystemTime,
    },
}

impl Notification {
    /// The sequence number, where the item has one.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Notification::Ready { seq, .. }
            | Notification::Change { seq, .. }
            | Notification::Resynced { seq, .. } => Some(*seq),
            Notification::Lagged { .. } => None,
        }
    }

    /// The time stamp.
    pub fn time(&self) -> SystemTime {
        match self {
            Notification::Ready { time, .. }
            | Notification::Change { time, .. }
            | Notification::Resynced { time, .. }
            | Notification::Lagged { time, .. } => *time,
        }
    }
}

/// What the monitor publishes: the new state and the changes that led to it.
pub(crate) struct Batch<'a> {
    pub(crate) snapshot: &'a Arc<Snapshot>,
    pub(crate) first_seq: u64,
    pub(crate) time: SystemTime,
    pub(crate) events: &'a [Event],
    pub(crate) resynced: bool,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep going with it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The monitor side: current state and the list of subscribers.
#[derive(Debug)]
pub(crate) struct Hub {
    state: Mutex<HubState>,
}

#[derive(Debug)]
struct HubState {
    snapshot: Arc<Snapshot>,
    seq: u64,
    next_id: u64,
    subscribers: Vec<(u64, Arc<Slot>)>,
    closed: bool,
}

/// One subscriber's queue, shared between the monitor thread and the subscriber.
#[derive(Debug)]
struct Slot {
    queue: Mutex<Queue>,
    ready: Condvar,
}

#[derive(Debug)]
struct Queue {
    items: VecDeque<Notification>,
    capacity: usize,
    /// Changes dropped since the subscriber last read; 0 when it is in step.
    missed: u64,
    /// A resync marker was among what was dropped; it is handed out after the merge.
    missed_resync: bool,
    closed: bool,
    waker: Option<Waker>,
}

impl Hub {
    pub(crate) fn new(snapshot: Snapshot) -> Hub {
        Hub {
            state: Mutex::new(HubState {
                snapshot: Arc::new(snapshot),
                seq: 0,
                next_id: 0,
                subscribers: Vec::new(),
                closed: false,
            }),
        }
    }

    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        lock(&self.state).snapshot.clone()
    }

    #[cfg(test)]
    pub(crate) fn seq(&self) -> u64 {
        lock(&self.state).seq
    }

    /// Holds the state lock: the monitor thread blocks at its next publish while this lives.
    pub(crate) fn stall(&self) -> impl Drop + '_ {
        lock(&self.state)
    }

    pub(crate) fn subscribers(&self) -> usize {
        lock(&self.state).subscribers.len()
    }

    /// Publishes a batch: the state becomes `snapshot`, and every subscriber gets the events.
    /// Returns the sequence number of the last event.
    pub(crate) fn publish(&self, batch: Batch<'_>) -> u64 {
        let mut st = lock(&self.state);
        // The monitor's copy-on-write usually leaves the hub with the last reference to the
        // previous state: freeing it takes a while with many interfaces (0.5 ms at 10,000),
        // so it happens after the subscribers were told and the lock is released.
        let previous = std::mem::replace(&mut st.snapshot, batch.snapshot.clone());
        for slot in st.subscribers.iter().map(|(_, s)| s) {
            let mut q = lock(&slot.queue);
            let mut seq = batch.first_seq;
            for event in batch.events {
                seq += 1;
                q.push(Notification::Change {
                    seq,
                    time: batch.time,
                    event: event.clone(),
                });
            }
            if batch.resynced {
                q.push(Notification::Resynced {
                    seq,
                    time: batch.time,
                });
            }
            slot.notify(q);
        }
        st.seq = batch.first_seq + batch.events.len() as u64;
        let seq = st.seq;
        drop(st);
        drop(previous);
        seq
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

    pub(crate) fn subscribe(self: &Arc<Hub>, capacity: usize) -> Subscription {
        let mut st = lock(&self.state);
        let slot = Arc::new(Slot {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                capacity: capacity.max(1),
                missed: 0,
                missed_resync: false,
                closed: st.closed,
                waker: None,
            }),
            ready: Condvar::new(),
        });
        let id = st.next_id;
        st.next_id += 1;
        if !st.closed {
            st.subscribers.push((id, slot.clone()));
        }
        let view = st.snapshot.clone();
        let seq = st.seq;
        drop(st);
        lock(&slot.queue).items.push_back(Notification::Ready {
            seq,
            time: SystemTime::now(),
            snapshot: view.clone(),
        });
        Subscription {
            hub: self.clone(),
            id,
            slot,
            view,
            pending: VecDeque::new(),
            view_target: None,
        }
    }

    fn unsubscribe(&self, id: u64) {
        lock(&self.state).subscribers.retain(|(i, _)| *i != id);
    }
}

impl Queue {
    fn push(&mut self, n: Notification) {
        if self.missed > 0 {
            // Already behind: the merge on the next read covers this change too.
            self.missed += u64::from(matches!(n, Notification::Change { .. }));
            self.missed_resync |= matches!(n, Notification::Resynced { .. });
            return;
        }
        if self.items.len() >= self.capacity {
            self.missed_resync |= matches!(n, Notification::Resynced { .. })
                || self
                    .items
                    .iter()
                    .any(|n| matches!(n, Notification::Resynced { .. }));
            let dropped = self
                .items
                .drain(..)
                .filter(|n| matches!(n, Notification::Change { .. }))
                .count() as u64;
            self.missed = dropped + u64::from(matches!(n, Notification::Change { .. }));
            // Keep `missed` non-zero even when only markers were dropped.
            self.missed = self.missed.max(1);
            return;
        }
        self.items.push_back(n);
    }
}

impl Slot {
    fn notify(&self, mut q: MutexGuard<'_, Queue>) {
        let waker = q.waker.take();
        drop(q);
        self.ready.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// A stream of changes from a [`crate::Monitor`], usable from blocking code
/// ([`Subscription::recv`]) and from any async runtime (it is a [`futures_core::Stream`]).
///
/// The first item is [`Notification::Ready`] with the state at the time of subscribing; then
/// every change follows in order. Dropping the subscription unsubscribes. When the monitor is
/// dropped, the subscription yields what it still holds, then `None`.
///
/// # Examples
///
/// ```no_run
/// # fn main() -> Result<(), netreach::Error> {
/// let monitor = netreach::Monitor::new()?;
/// let mut sub = monitor.subscribe();
/// while let Some(n) = sub.recv() {
///     println!("{n:?}");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Subscription {
    hub: Arc<Hub>,
    id: u64,
    slot: Arc<Slot>,
    /// The state as of the last item handed out.
    view: Arc<Snapshot>,
    /// Merged changes waiting to be handed out after a lag.
    pending: VecDeque<Notification>,
    /// The state the merged changes lead to; becomes the view once they are handed out.
    view_target: Option<Arc<Snapshot>>,
}

impl Subscription {
    /// The state as of the last item this subscription handed out. Applying the changes
    /// still to come leads to [`Subscription::current`].
    pub fn view(&self) -> &Snapshot {
        &self.view
    }

    /// The monitor's current state, whatever this subscriber has read so far.
    pub fn current(&self) -> Arc<Snapshot> {
        self.hub.snapshot()
    }

    /// The next item without waiting: `Ok(None)` when nothing is pending, `Err(Stopped)` once
    /// the monitor is gone and everything was read.
    pub fn try_recv(&mut self) -> Result<Option<Notification>, crate::Error> {
        let slot = self.slot.clone();
        match self.take(lock(&slot.queue)) {
            Taken::Item(n) => Ok(Some(n)),
            Taken::Empty => Ok(None),
            Taken::Closed => Err(crate::Error::Stopped),
        }
    }

    /// The next item, waiting as long as it takes; `None` once the monitor is gone.
    pub fn recv(&mut self) -> Option<Notification> {
        self.recv_deadline(None)
    }

    /// The next item, waiting at most `timeout`; `None` on timeout or when the monitor is gone
    /// (tell them apart with [`Subscription::try_recv`]).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<Notification> {
        self.recv_deadline(Instant::now().checked_add(timeout))
    }

    fn recv_deadline(&mut self, deadline: Option<Instant>) -> Option<Notification> {
        let slot = self.slot.clone();
        let mut q = lock(&slot.queue);
        loop {
            match self.take(q) {
                Taken::Item(n) => return Some(n),
                Taken::Closed => return None,
                Taken::Empty => {}
            }
            q = lock(&slot.queue);
            if !q.items.is_empty() || q.missed > 0 || q.closed {
                continue;
            }
            q = match deadline {
                None => slot.ready.wait(q).unwrap_or_else(PoisonError::into_inner),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return None;
                    }
                    slot.ready
                        .wait_timeout(q, d - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }

    /// Takes the next item: merged changes first, then the queue.
    fn take(&mut self, mut q: MutexGuard<'_, Queue>) -> Taken {
        if let Some(n) = self.pending.pop_front() {
            drop(q);
            self.advance(&n);
            return Taken::Item(n);
        }
        if q.missed > 0 {
            // Take the state and reset the queue under the hub's lock (taken first, as the
            // monitor does), so no change can land in between and be counted twice.
            drop(q);
            let st = lock(&self.hub.state);
            let mut q = lock(&self.slot.queue);
            let missed = std::mem::take(&mut q.missed);
            let resynced = std::mem::take(&mut q.missed_resync);
            q.items.clear();
            let (current, seq) = (st.snapshot.clone(), st.seq);
            drop(q);
            drop(st);
            self.merge(missed, current, seq);
            if resynced {
                self.pending.push_back(Notification::Resynced {
                    seq,
                    time: SystemTime::now(),
                });
            }
            return match self.pending.pop_front() {
                Some(n) => {
                    self.advance(&n);
                    Taken::Item(n)
                }
                None => Taken::Empty,
            };
        }
        match q.items.pop_front() {
            Some(n) => {
                drop(q);
                self.advance(&n);
                Taken::Item(n)
            }
            None if q.closed => Taken::Closed,
            None => Taken::Empty,
        }
    }

    /// Replaces the missed changes by the difference between the view and the current state.
    fn merge(&mut self, missed: u64, current: Arc<Snapshot>, seq: u64) {
        let time = SystemTime::now();
        let events = diff(&self.view, &current);
        self.pending
            .push_back(Notification::Lagged { missed, time });
        let first = seq.saturating_sub(events.len() as u64);
        for (i, event) in events.into_iter().enumerate() {
            self.pending.push_back(Notification::Change {
                seq: first + i as u64 + 1,
                time,
                event,
            });
        }
        self.view_target = Some(current);
    }

    /// Keeps the view in step with what was handed out.
    fn advance(&mut self, n: &Notification) {
        match n {
            Notification::Ready { snapshot, .. } => self.view = snapshot.clone(),
            Notification::Change { event, .. } => {
                Arc::make_mut(&mut self.view).apply_into(event.to_update(), &mut Vec::new());
            }
            _ => {}
        }
        if self.pending.is_empty() {
            if let Some(target) = self.view_target.take() {
                // After a merge the view is exactly the state the merge aimed at; sharing it
                // saves a copy.
                self.view = target;
            }
        }
    }
}

// Transient, never stored: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Taken {
    Item(Notification),
    Empty,
    Closed,
}

impl futures_core::Stream for Subscription {
    type Item = Notification;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Notification>> {
        let this = self.get_mut();
        let slot = this.slot.clone();
        let mut q = lock(&slot.queue);
        // Register before looking, so a change published in between wakes us.
        q.waker = Some(cx.waker().clone());
        match this.take(q) {
            Taken::Item(n) => Poll::Ready(Some(n)),
            Taken::Closed => Poll::Ready(None),
            Taken::Empty => {
                // `take` may have merged and found nothing new; check the queue once more.
                let q = lock(&slot.queue);
                if !q.items.is_empty() || q.missed > 0 || q.closed {
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            }
        }
    }
}

impl Subscription {
    /// The next item, as a future for any async runtime (same as `StreamExt::next`);
    /// `None` once the monitor is gone.
    pub fn recv_async(&mut self) -> Next<'_> {
        Next { sub: self }
    }
}

/// The future returned by [`Subscription::recv_async`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Next<'a> {
    sub: &'a mut Subscription,
}

impl std::future::Future for Next<'_> {
    type Output = Option<Notification>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Notification>> {
        futures_core::Stream::poll_next(Pin::new(&mut *self.get_mut().sub), cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netreach_core::{Interface, LinkKind, Update};

    fn publish(hub: &Hub, snap: &mut Arc<Snapshot>, updates: Vec<Update>) {
        let mut events = Vec::new();
        for u in updates {
            Arc::make_mut(snap).apply_into(u, &mut events);
        }
        hub.publish(Batch {
            snapshot: snap,
            first_seq: hub.seq(),
            time: SystemTime::now(),
            events: &events,
            resynced: false,
        });
    }

    fn link(i: u32, mtu: u32) -> Update {
        let mut l = Interface::new(i, format!("veth{i}"), LinkKind::Veth);
        l.mtu = mtu;
        Update::NewLink(l)
    }

    #[test]
    fn in_step_subscriber_gets_every_change_in_order() {
        let hub = Arc::new(Hub::new(Snapshot::new()));
        let mut snap = hub.snapshot();
        let mut sub = hub.subscribe(16);
        publish(&hub, &mut snap, vec![link(1, 1500), link(2, 1500)]);
        publish(&hub, &mut snap, vec![link(1, 9000)]);
        assert!(matches!(
            sub.recv(),
            Some(Notification::Ready { seq: 0, .. })
        ));
        let seqs: Vec<_> = (0..3).filter_map(|_| sub.recv()?.seq()).collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(sub.view(), &*snap);
        assert_eq!(sub.try_recv().unwrap(), None);
    }

    #[test]
    fn slow_subscriber_is_merged_not_grown() {
        let hub = Arc::new(Hub::new(Snapshot::new()));
        let mut snap = hub.snapshot();
        let mut sub = hub.subscribe(4);
        for i in 1..=100 {
            publish(&hub, &mut snap, vec![link(i % 10 + 1, 1000 + i)]);
            assert!(lock(&sub.slot.queue).items.len() <= 4);
        }
        let mut lagged = false;
        while let Ok(Some(n)) = sub.try_recv() {
            lagged |= matches!(n, Notification::Lagged { .. });
        }
        assert!(lagged);
        assert_eq!(
            sub.view(),
            &*snap,
            "merged view must equal the current state"
        );
    }

    #[test]
    fn drop_unsubscribes_and_close_ends_the_stream() {
        let hub = Arc::new(Hub::new(Snapshot::new()));
        let sub = hub.subscribe(4);
        let mut sub2 = hub.subscribe(4);
        assert_eq!(hub.subscribers(), 2);
        drop(sub);
        assert_eq!(hub.subscribers(), 1);
        hub.close();
        assert!(matches!(sub2.recv(), Some(Notification::Ready { .. })));
        assert_eq!(sub2.recv(), None);
    }
}
