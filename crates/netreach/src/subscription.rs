//! Subscriptions: every change, in order, to any number of readers, none of which can block
//! the monitor or make its memory grow without bound.
//!
//! Every kind of subscription reads the one [`crate::hub`]: a [`Reader`] does the queue, the
//! waiting and the lag detection, and each subscription type turns what it reads into its own
//! notifications. [`Subscription`] is the model's (and, from [`crate::Monitor::stream`], the whole
//! stream's): when it falls behind, the changes it missed are merged into the difference between
//! the state it last saw (its *view*) and the current state, preceded by a
//! [`Notification::Lagged`]. Applying every change a subscription yields to its first snapshot
//! always gives the current state; the subscription itself applies nothing (each item carries
//! the state after its batch).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use netreach_core::connectivity::{Connectivity, ConnectivityChange};
use netreach_core::probe::{Verification, VerificationChange};
use netreach_core::reach::{Reachability, Target, TargetId};
use netreach_core::{Event, Snapshot, diff};

use crate::hub::{Hub, HubState, Interest, Item, Owners, Slot, lock};

/// One item of a subscription's stream.
///
/// A [`crate::Monitor::subscribe`] subscription yields the model's items (`Ready`, `Change`,
/// `Resynced`, `Lagged`); a [`crate::Monitor::stream`] subscription yields every item of the
/// monitor's one stream, derived changes included, each with its place in one sequence.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Notification {
    /// The first item: the state when the subscription started.
    Ready {
        /// Sequence number of the last item included in the snapshot.
        seq: u64,
        /// When the subscription was made.
        time: SystemTime,
        /// The state.
        snapshot: Arc<Snapshot>,
    },
    /// One model change.
    Change {
        /// Sequence number: one counter for every item of the monitor's stream.
        seq: u64,
        /// When the monitor learnt of it.
        time: SystemTime,
        /// What changed. Boxed, as the other large payloads: every item of a queue is as large
        /// as the largest kind, and the kind that comes by the thousand (a verdict) is small.
        event: Box<Event>,
    },
    /// The monitor lost kernel notifications (socket overflow), dumped the state again, and
    /// sent the difference as ordinary changes just before this marker.
    Resynced {
        /// Sequence number.
        seq: u64,
        /// When.
        time: SystemTime,
    },
    /// This subscriber fell behind; the model changes it missed follow, merged into the
    /// smallest set of changes that leads from what it had seen to the current state.
    Lagged {
        /// How many items were merged away.
        missed: u64,
        /// When the subscriber caught up.
        time: SystemTime,
    },
    /// The connectivity of a status monitor changed (whole stream only).
    Connectivity {
        /// Sequence number.
        seq: u64,
        /// The model change that caused it.
        cause_seq: u64,
        /// When.
        time: SystemTime,
        /// What changed and why.
        change: Box<ConnectivityChange>,
        /// Connectivity after the change.
        connectivity: Connectivity,
    },
    /// A probe verdict of a status monitor changed (whole stream only).
    Verification {
        /// Sequence number.
        seq: u64,
        /// The last model change when the verdict came.
        cause_seq: u64,
        /// When.
        time: SystemTime,
        /// What changed.
        change: Box<VerificationChange>,
        /// The summary after it.
        verification: Box<Verification>,
        /// Connectivity now.
        connectivity: Connectivity,
    },
    /// A watched target's reachability, reason or path changed (whole stream only).
    Reachability {
        /// Sequence number.
        seq: u64,
        /// The model change that caused it.
        cause_seq: u64,
        /// When.
        time: SystemTime,
        /// Which target.
        id: TargetId,
        /// The target.
        target: Target,
        /// Before (`None` for its first report).
        old: Option<Arc<Reachability>>,
        /// Now (one value shared by the targets that got the same verdict).
        new: Arc<Reachability>,
    },
}

impl Notification {
    /// The sequence number, where the item has one.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Notification::Ready { seq, .. }
            | Notification::Change { seq, .. }
            | Notification::Resynced { seq, .. }
            | Notification::Connectivity { seq, .. }
            | Notification::Verification { seq, .. }
            | Notification::Reachability { seq, .. } => Some(*seq),
            Notification::Lagged { .. } => None,
        }
    }

    /// The sequence number of the model change a derived item follows.
    pub fn cause_seq(&self) -> Option<u64> {
        match self {
            Notification::Connectivity { cause_seq, .. }
            | Notification::Verification { cause_seq, .. }
            | Notification::Reachability { cause_seq, .. } => Some(*cause_seq),
            _ => None,
        }
    }

    /// The time stamp.
    pub fn time(&self) -> SystemTime {
        match self {
            Notification::Ready { time, .. }
            | Notification::Change { time, .. }
            | Notification::Resynced { time, .. }
            | Notification::Lagged { time, .. }
            | Notification::Connectivity { time, .. }
            | Notification::Verification { time, .. }
            | Notification::Reachability { time, .. } => *time,
        }
    }
}

/// What a reader got. Transient, never stored: the size difference between variants does not
/// matter.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Got {
    Item(Item),
    /// Items were dropped; the state now, to merge against.
    Lagged {
        missed: u64,
        resynced: bool,
        snapshot: Arc<Snapshot>,
        seq: u64,
    },
    Empty,
    Closed,
}

/// The reading side of one hub subscriber, shared by every subscription type.
#[derive(Debug)]
pub(crate) struct Reader {
    hub: Arc<Hub>,
    id: u64,
    slot: Arc<Slot>,
    /// Items taken from the queue and not handed out yet: the reader takes all there is under
    /// one lock (10,000 verdicts cost 10,000 lock round trips with the monitor's thread
    /// otherwise), oldest first; the queue's own allocation goes back to it empty. They no
    /// longer count against the queue's capacity: a slow reader holds at most one queue's
    /// worth more before it lags.
    taken: VecDeque<Item>,
    /// States the adapter let go of, for the monitor's thread to drop (see `Queue::retired`):
    /// handed over the next time the queue is locked.
    retired: Vec<Arc<Snapshot>>,
}

impl Reader {
    /// Subscribes; `capture` reads the views at the moment of subscribing.
    pub(crate) fn new<T>(
        hub: &Arc<Hub>,
        interest: Interest,
        capacity: usize,
        capture: impl FnOnce(&HubState) -> T,
    ) -> (Reader, T) {
        let (id, slot, captured) = hub.subscribe(interest, capacity, capture);
        (
            Reader {
                hub: hub.clone(),
                id,
                slot,
                taken: VecDeque::new(),
                retired: Vec::new(),
            },
            captured,
        )
    }

    pub(crate) fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// The next thing without waiting.
    pub(crate) fn take(&mut self) -> Got {
        if let Some(item) = self.taken.pop_front() {
            return Got::Item(item);
        }
        let mut q = lock(&self.slot.queue);
        q.retired.append(&mut self.retired);
        if q.take_all(&mut self.taken) {
            drop(q);
            return self.taken.pop_front().map_or(Got::Empty, Got::Item);
        }
        if q.missed == 0 {
            return if q.closed { Got::Closed } else { Got::Empty };
        }
        // Take the state and reset the queue under the hub's lock (taken first, as the monitor
        // does), so that no change lands in between and is counted twice or not at all.
        drop(q);
        let st = lock(&self.hub.state);
        let mut q = lock(&self.slot.queue);
        let missed = std::mem::take(&mut q.missed);
        let resynced = std::mem::take(&mut q.missed_resync);
        if let Some(item) = q.pop() {
            // The rest of the batch being read came in meanwhile (a lagging queue still takes
            // it, see `Queue::push`): it goes first, the merge after it.
            q.missed = missed;
            q.missed_resync = resynced;
            return Got::Item(item);
        }
        Got::Lagged {
            missed,
            resynced,
            snapshot: st.snapshot.clone(),
            seq: st.seq,
        }
    }

    /// The next thing, waiting until `deadline` (`None`: for ever). `None` on timeout.
    pub(crate) fn take_until(&mut self, deadline: Option<Instant>) -> Option<Got> {
        loop {
            match self.take() {
                Got::Empty => {}
                got => return Some(got),
            }
            let q = lock(&self.slot.queue);
            drop(self.slot.wait(q, deadline)?);
        }
    }

    /// The next thing for an async reader.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Got> {
        if let Some(item) = self.taken.pop_front() {
            return Poll::Ready(Got::Item(item));
        }
        // Register before looking, so that a change published in between wakes us.
        lock(&self.slot.queue).set_waker(cx.waker());
        match self.take() {
            Got::Empty => Poll::Pending,
            got => Poll::Ready(got),
        }
    }
}

/// Turns what a [`Reader`] gets into one subscription type's items. The loops that wait, poll
/// and end are the reader's, written once for every subscription type.
pub(crate) trait Adapter {
    type Item;
    /// An item to hand out before reading the queue (the first state, merged changes).
    fn pending(&mut self) -> Option<Self::Item>;
    /// The item that `got` gives (`None`: nothing to hand out).
    fn accept(&mut self, got: Got) -> Option<Self::Item>;
    /// A state the adapter stopped holding and held the last reference to, for the monitor's
    /// thread to drop (see `Queue::retired`).
    fn retire(&mut self) -> Option<Arc<Snapshot>> {
        None
    }
}

impl Reader {
    /// The adapter's pending item, keeping what it retired.
    fn pending<A: Adapter>(&mut self, a: &mut A) -> Option<A::Item> {
        let n = a.pending();
        self.retired.extend(a.retire());
        n
    }

    /// The item the adapter makes of `got`, keeping what it retired.
    fn accept<A: Adapter>(&mut self, a: &mut A, got: Got) -> Option<A::Item> {
        let n = a.accept(got);
        self.retired.extend(a.retire());
        n
    }

    /// The next item without waiting: `Ok(None)` when nothing is pending, `Err(Stopped)` once
    /// the monitor is gone and everything was read.
    pub(crate) fn try_next<A: Adapter>(
        &mut self,
        a: &mut A,
    ) -> Result<Option<A::Item>, crate::Error> {
        loop {
            if let Some(n) = self.pending(a) {
                return Ok(Some(n));
            }
            match self.take() {
                Got::Empty => return Ok(None),
                Got::Closed => return Err(crate::Error::Stopped),
                got => {
                    if let Some(n) = self.accept(a, got) {
                        return Ok(Some(n));
                    }
                }
            }
        }
    }

    /// The next item, waiting until `deadline` (`None`: for ever); `None` on timeout or once
    /// the monitor is gone.
    pub(crate) fn next_until<A: Adapter>(
        &mut self,
        a: &mut A,
        deadline: Option<Instant>,
    ) -> Option<A::Item> {
        loop {
            if let Some(n) = self.pending(a) {
                return Some(n);
            }
            match self.take_until(deadline)? {
                Got::Closed => return None,
                got => {
                    if let Some(n) = self.accept(a, got) {
                        return Some(n);
                    }
                }
            }
        }
    }

    /// The next item for an async reader.
    pub(crate) fn poll_next<A: Adapter>(
        &mut self,
        a: &mut A,
        cx: &mut Context<'_>,
    ) -> Poll<Option<A::Item>> {
        loop {
            if let Some(n) = self.pending(a) {
                return Poll::Ready(Some(n));
            }
            match self.poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Got::Closed) => return Poll::Ready(None),
                Poll::Ready(got) => {
                    if let Some(n) = self.accept(a, got) {
                        return Poll::Ready(Some(n));
                    }
                }
            }
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.hub.unsubscribe(self.id);
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
    reader: Reader,
    model: ModelAdapter,
}

/// The model's merge-on-lag, for [`Subscription`].
#[derive(Debug)]
struct ModelAdapter {
    /// The state after the batch of the last item handed out.
    view: Arc<Snapshot>,
    /// Merged changes waiting to be handed out after a lag.
    pending: VecDeque<Notification>,
    /// The state the merged changes lead to; becomes the view once they are handed out.
    view_target: Option<Arc<Snapshot>>,
    /// The view replaced last, when this adapter held the last reference to it.
    retired: Option<Arc<Snapshot>>,
}

impl Subscription {
    pub(crate) fn new(hub: &Arc<Hub>, interest: Interest, capacity: usize) -> Subscription {
        let (reader, view) = Reader::new(hub, interest, capacity, |st| st.snapshot.clone());
        Subscription {
            reader,
            model: ModelAdapter {
                view,
                pending: VecDeque::new(),
                view_target: None,
                retired: None,
            },
        }
    }

    /// The state after the last item this subscription handed out (after its whole batch: a
    /// batch is what one read of the kernel's messages changed; the first read after a quiet
    /// spell takes only the first message, so that the change itself goes out before its
    /// consequences are decoded). Applying the changes still to come leads to
    /// [`Subscription::current`].
    pub fn view(&self) -> &Snapshot {
        &self.model.view
    }

    /// The monitor's current state, whatever this subscriber has read so far.
    pub fn current(&self) -> Arc<Snapshot> {
        self.reader.hub().snapshot()
    }

    /// The next item without waiting: `Ok(None)` when nothing is pending, `Err(Stopped)` once
    /// the monitor is gone and everything was read.
    pub fn try_recv(&mut self) -> Result<Option<Notification>, crate::Error> {
        self.reader.try_next(&mut self.model)
    }

    /// The next item, waiting as long as it takes; `None` once the monitor is gone.
    pub fn recv(&mut self) -> Option<Notification> {
        self.reader.next_until(&mut self.model, None)
    }

    /// The next item, waiting at most `timeout`; `None` on timeout or when the monitor is gone
    /// (tell them apart with [`Subscription::try_recv`]).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<Notification> {
        self.reader
            .next_until(&mut self.model, Instant::now().checked_add(timeout))
    }

    /// The next item, as a future for any async runtime (same as `StreamExt::next`);
    /// `None` once the monitor is gone.
    pub fn recv_async(&mut self) -> Next<'_, Subscription> {
        Next { sub: self }
    }
}

impl Adapter for ModelAdapter {
    type Item = Notification;

    fn pending(&mut self) -> Option<Notification> {
        let n = self.pending.pop_front()?;
        if self.pending.is_empty() {
            if let Some(target) = self.view_target.take() {
                self.replace_view(target);
            }
        }
        Some(n)
    }

    fn accept(&mut self, got: Got) -> Option<Notification> {
        match got {
            Got::Item(item) => {
                self.replace_view(item.snapshot);
                Some(item.notification)
            }
            Got::Lagged {
                missed,
                resynced,
                snapshot,
                seq,
            } => {
                self.merge(missed, resynced, snapshot, seq);
                self.pending()
            }
            Got::Empty | Got::Closed => None,
        }
    }

    fn retire(&mut self) -> Option<Arc<Snapshot>> {
        self.retired.take()
    }
}

impl ModelAdapter {
    /// Makes `view` the view. The old one goes to the monitor's thread when this was its last
    /// reference (a state shared with others is only counted down here).
    fn replace_view(&mut self, view: Arc<Snapshot>) {
        if Arc::ptr_eq(&self.view, &view) {
            return;
        }
        let old = std::mem::replace(&mut self.view, view);
        if Arc::strong_count(&old) == 1 {
            self.retired = Some(old);
        }
    }

    /// Replaces the missed changes by the difference between the view and the current state.
    /// Each merged change stands for at least one missed one, so the sequence numbers given to
    /// them, the last ones before the current, were never handed out.
    fn merge(&mut self, missed: u64, resynced: bool, current: Arc<Snapshot>, seq: u64) {
        let time = SystemTime::now();
        let events = diff(&self.view, &current);
        self.pending
            .push_back(Notification::Lagged { missed, time });
        // With a resync marker, it takes the current number and the changes the ones before.
        let numbered = events.len() as u64 + u64::from(resynced);
        let first = seq.saturating_sub(numbered);
        for (i, event) in events.into_iter().enumerate() {
            self.pending.push_back(Notification::Change {
                seq: first + i as u64 + 1,
                time,
                event: Box::new(event),
            });
        }
        if resynced {
            self.pending.push_back(Notification::Resynced { seq, time });
        }
        self.view_target = Some(current);
    }
}

impl futures_core::Stream for Subscription {
    type Item = Notification;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Notification>> {
        let this = self.get_mut();
        this.reader.poll_next(&mut this.model, cx)
    }
}

/// The future returned by the `recv_async` methods of the subscription types.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Next<'a, S> {
    sub: &'a mut S,
}

impl<'a, S> Next<'a, S> {
    pub(crate) fn new(sub: &'a mut S) -> Next<'a, S> {
        Next { sub }
    }
}

impl<S: futures_core::Stream + Unpin> std::future::Future for Next<'_, S> {
    type Output = Option<S::Item>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        Pin::new(&mut *self.get_mut().sub).poll_next(cx)
    }
}

/// The interest of a whole-stream subscription: the model and every attached monitor.
pub(crate) const EVERYTHING: Interest = Interest {
    model: true,
    statuses: Owners::All,
    reaches: Owners::All,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{Batch, Tag};
    use netreach_core::{Interface, LinkKind, Update};

    /// The monitor's side: applies updates, numbers the changes, publishes one batch.
    struct Feed {
        hub: Arc<Hub>,
        snap: Arc<Snapshot>,
        seq: u64,
        /// What the publications let go of, as the driver keeps it until a batch is out.
        garbage: Vec<Arc<Snapshot>>,
        /// Whether the last publication woke a reader.
        woke: bool,
    }

    impl Feed {
        fn new() -> Feed {
            let snap = Arc::new(Snapshot::new());
            Feed {
                hub: Arc::new(Hub::new(snap.clone())),
                snap,
                seq: 0,
                garbage: Vec::new(),
                woke: false,
            }
        }

        fn publish(&mut self, updates: Vec<Update>) {
            self.publish_sliced(updates, usize::MAX, |_| {});
        }

        /// Applies `updates` as one state and hands its changes over in slices of `slice`, as
        /// the driver does, calling `between` after each slice.
        fn publish_sliced(
            &mut self,
            updates: Vec<Update>,
            slice: usize,
            mut between: impl FnMut(&Feed),
        ) {
            let mut events = Vec::new();
            for u in updates {
                Arc::make_mut(&mut self.snap).apply_into(u, &mut events);
            }
            let time = SystemTime::now();
            let items = events
                .into_iter()
                .map(|event| {
                    self.seq += 1;
                    let n = Notification::Change {
                        seq: self.seq,
                        time,
                        event: Box::new(event),
                    };
                    (Tag::Model, n)
                })
                .collect::<Vec<_>>();
            let mut rest = items.as_slice();
            while !rest.is_empty() {
                let (now, later) = rest.split_at(slice.min(rest.len()));
                rest = later;
                self.woke = self.hub.publish(
                    Batch {
                        snapshot: self.snap.clone(),
                        seq: now.last().map_or(self.seq, |(_, n)| n.seq().unwrap_or(0)),
                        items: now.to_vec(),
                    },
                    &mut self.garbage,
                );
                between(self);
            }
        }

        fn subscribe(&self, capacity: usize) -> Subscription {
            Subscription::new(&self.hub, Interest::MODEL, capacity)
        }
    }

    fn link(i: u32, mtu: u32) -> Update {
        let mut l = Interface::new(i, format!("veth{i}"), LinkKind::Veth);
        l.mtu = mtu;
        Update::NewLink(l)
    }

    /// Reads everything pending, replaying the changes onto the first snapshot as a subscriber
    /// that keeps its own copy would; returns the replayed state and whether it lagged.
    fn drain(sub: &mut Subscription, replay: &mut Option<Snapshot>) -> bool {
        let mut lagged = false;
        while let Ok(Some(n)) = sub.try_recv() {
            match n {
                Notification::Ready { snapshot, .. } => *replay = Some((*snapshot).clone()),
                Notification::Change { event, .. } => {
                    replay
                        .as_mut()
                        .expect("ready first")
                        .apply(event.to_update());
                }
                Notification::Lagged { .. } => lagged = true,
                _ => {}
            }
        }
        lagged
    }

    /// A reader that held the last reference to its old view does not free it: the view goes
    /// back through the queue to the publisher, which frees it when its batch is out.
    #[test]
    fn a_view_let_go_of_is_freed_by_the_publisher() {
        let mut feed = Feed::new();
        let mut sub = feed.subscribe(16);
        drain(&mut sub, &mut None);
        feed.publish(vec![link(1, 1500)]);
        assert!(matches!(
            sub.try_recv(),
            Ok(Some(Notification::Change { .. }))
        ));
        let old = Arc::downgrade(&sub.model.view);
        feed.publish(vec![link(2, 1500)]);
        // The publisher let go of the state it replaced; only the reader's view holds it now.
        feed.garbage.clear();
        assert_eq!(old.strong_count(), 1);
        assert!(matches!(
            sub.try_recv(),
            Ok(Some(Notification::Change { .. }))
        ));
        assert!(old.upgrade().is_some(), "the reader freed its old view");
        // The next look at the queue hands it over; the next publication takes it.
        assert!(matches!(sub.try_recv(), Ok(None)));
        feed.publish(vec![link(3, 1500)]);
        assert!(old.upgrade().is_some(), "freed before the batch was out");
        feed.garbage.clear();
        assert!(
            old.upgrade().is_none(),
            "the old view outlived the publisher's garbage"
        );
    }

    /// A publication wakes a reader that waits (here an async task) and says so; with no one
    /// waiting it wakes no one, and costs no system call.
    #[test]
    fn a_publication_says_whether_it_woke_a_reader() {
        struct Count(std::sync::atomic::AtomicUsize);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let mut feed = Feed::new();
        let mut sub = feed.subscribe(16);
        let mut replay = None;
        drain(&mut sub, &mut replay);
        feed.publish(vec![link(1, 1500)]);
        assert!(!feed.woke, "no reader waited");
        drain(&mut sub, &mut replay);
        let count = Arc::new(Count(std::sync::atomic::AtomicUsize::new(0)));
        let waker = std::task::Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(futures_core::Stream::poll_next(Pin::new(&mut sub), &mut cx).is_pending());
        feed.publish(vec![link(2, 1500)]);
        assert!(feed.woke, "the waiting reader was not counted as woken");
        assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(matches!(
            futures_core::Stream::poll_next(Pin::new(&mut sub), &mut cx),
            Poll::Ready(Some(Notification::Change { .. }))
        ));
    }

    /// One state handed over in slices is one batch: a reader that lags in the middle of it
    /// still gets the rest of it (its view already holds the rest), and a subscription made
    /// between two slices gets none of its changes (its first snapshot holds them all).
    #[test]
    fn a_state_published_in_slices_replays_for_every_reader() {
        let mut feed = Feed::new();
        let mut early = feed.subscribe(4);
        let mut early_replay = None;
        drain(&mut early, &mut early_replay);
        let mut late = None;
        let updates: Vec<Update> = (1..=20).map(|i| link(i, 1500)).collect();
        let mut slices = 0;
        feed.publish_sliced(updates, 4, |f| {
            slices += 1;
            if slices == 1 {
                // The early reader starts on the state: its view is now the whole state.
                match early.try_recv().unwrap() {
                    Some(Notification::Change { event, .. }) => {
                        early_replay.as_mut().unwrap().apply(event.to_update());
                    }
                    other => panic!("a change first: {other:?}"),
                }
            }
            if slices == 2 {
                late = Some(f.subscribe(64));
            }
        });
        // The early reader's queue is full: later states are merged for it.
        for round in 0..10 {
            feed.publish(vec![link(round % 5 + 1, 9000 + round)]);
        }
        assert!(
            drain(&mut early, &mut early_replay),
            "the early reader lagged"
        );
        assert_eq!(
            early_replay.as_ref(),
            Some(&*feed.snap),
            "the lagging reader"
        );
        let mut late = late.unwrap();
        let mut late_replay = None;
        drain(&mut late, &mut late_replay);
        assert_eq!(
            late_replay.as_ref(),
            Some(&*feed.snap),
            "the reader made between slices"
        );
    }

    #[test]
    fn in_step_subscriber_gets_every_change_in_order() {
        let mut feed = Feed::new();
        let mut sub = feed.subscribe(16);
        feed.publish(vec![link(1, 1500), link(2, 1500)]);
        feed.publish(vec![link(1, 9000)]);
        assert!(matches!(
            sub.recv(),
            Some(Notification::Ready { seq: 0, .. })
        ));
        let seqs: Vec<_> = (0..3).filter_map(|_| sub.recv()?.seq()).collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(sub.view(), &*feed.snap);
        assert_eq!(sub.try_recv().unwrap(), None);
    }

    #[test]
    fn slow_subscriber_is_merged_not_grown() {
        let mut feed = Feed::new();
        let mut sub = feed.subscribe(4);
        for i in 1..=100 {
            feed.publish(vec![link(i % 10 + 1, 1000 + i)]);
            assert!(lock(&sub.reader.slot.queue).items.len() <= 4);
        }
        let mut replay = None;
        assert!(drain(&mut sub, &mut replay), "it lagged");
        assert_eq!(sub.view(), &*feed.snap, "merged view equals the state");
        assert_eq!(replay.as_ref(), Some(&*feed.snap), "so does the replay");
    }

    #[test]
    fn a_batch_being_read_is_kept_whole_when_later_ones_are_dropped() {
        let mut feed = Feed::new();
        // Room for the first item and one batch of three, not more.
        let mut sub = feed.subscribe(5);
        let mut replay = None;
        feed.publish(vec![link(1, 1500), link(2, 1500), link(3, 1500)]);
        // Ready, then the first change of the batch.
        for _ in 0..2 {
            match sub.try_recv().unwrap().unwrap() {
                Notification::Ready { snapshot, .. } => replay = Some((*snapshot).clone()),
                Notification::Change { event, .. } => {
                    replay.as_mut().unwrap().apply(event.to_update());
                }
                other => panic!("{other:?}"),
            }
        }
        for i in 0..10 {
            feed.publish(vec![link(4 + i, 1500)]);
        }
        // The rest of the batch comes first, then the merge.
        let next: Vec<_> = (0..2).map(|_| sub.try_recv().unwrap().unwrap()).collect();
        assert!(
            next.iter()
                .all(|n| matches!(n, Notification::Change { .. }))
        );
        for n in next {
            if let Notification::Change { event, .. } = n {
                replay.as_mut().unwrap().apply(event.to_update());
            }
        }
        assert!(drain(&mut sub, &mut replay));
        assert_eq!(replay.as_ref(), Some(&*feed.snap));
        assert_eq!(sub.view(), &*feed.snap);
    }

    #[test]
    fn merged_sequence_numbers_increase_and_were_never_handed_out() {
        let mut feed = Feed::new();
        let mut sub = feed.subscribe(2);
        let mut seen = Vec::new();
        for round in 0..5 {
            for i in 0..20 {
                feed.publish(vec![link(i % 7 + 1, 1000 + round * 20 + i)]);
            }
            while let Ok(Some(n)) = sub.try_recv() {
                seen.extend(n.seq());
            }
        }
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    }

    #[test]
    fn a_merge_with_a_resync_numbers_every_item_once() {
        let mut feed = Feed::new();
        let mut sub = feed.subscribe(2);
        assert!(matches!(sub.recv(), Some(Notification::Ready { .. })));
        for i in 0..5 {
            feed.publish(vec![link(i + 1, 1500)]);
        }
        // A resync marker among what the subscriber misses.
        feed.seq += 1;
        let marker = Notification::Resynced {
            seq: feed.seq,
            time: SystemTime::now(),
        };
        feed.hub.publish(
            Batch {
                snapshot: feed.snap.clone(),
                seq: feed.seq,
                items: vec![(Tag::Model, marker)],
            },
            &mut Vec::new(),
        );
        let mut seqs = Vec::new();
        let mut resynced = false;
        while let Ok(Some(n)) = sub.try_recv() {
            resynced |= matches!(n, Notification::Resynced { .. });
            seqs.extend(n.seq());
        }
        assert!(resynced, "the marker survives the merge");
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        assert_eq!(seqs.last(), Some(&feed.seq));
    }

    #[test]
    fn drop_unsubscribes_and_close_ends_the_stream() {
        let feed = Feed::new();
        let sub = feed.subscribe(4);
        let mut sub2 = feed.subscribe(4);
        assert_eq!(feed.hub.subscribers(), 2);
        drop(sub);
        assert_eq!(feed.hub.subscribers(), 1);
        feed.hub.close();
        assert!(matches!(sub2.recv(), Some(Notification::Ready { .. })));
        assert_eq!(sub2.recv(), None);
        assert!(matches!(sub2.try_recv(), Err(crate::Error::Stopped)));
    }
}
