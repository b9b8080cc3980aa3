//! A small broadcast channel for the status and connection monitors: bounded per receiver,
//! never blocking the sender, usable from blocking and async code.
//!
//! A receiver that falls `capacity` items behind loses its queue and is told it lagged; the
//! owner then hands it the current state instead (the model's own subscriptions merge finer,
//! see [`crate::Subscription`]).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use crate::subscription::lock;

/// The sending side, owned by the monitor's thread (and its handle, to subscribe).
#[derive(Debug)]
pub(crate) struct Broadcast<T> {
    state: Mutex<State<T>>,
}

#[derive(Debug)]
struct State<T> {
    receivers: Vec<(u64, Arc<Slot<T>>)>,
    next_id: u64,
    closed: bool,
}

#[derive(Debug)]
struct Slot<T> {
    queue: Mutex<Queue<T>>,
    ready: Condvar,
}

#[derive(Debug)]
struct Queue<T> {
    items: VecDeque<T>,
    capacity: usize,
    lagged: bool,
    closed: bool,
    waker: Option<Waker>,
}

/// What a receive gave.
#[derive(Debug)]
pub(crate) enum Received<T> {
    Item(T),
    /// Items were dropped because the receiver fell behind.
    Lagged,
    Empty,
    Closed,
}

impl<T: Clone> Broadcast<T> {
    pub(crate) fn new() -> Broadcast<T> {
        Broadcast {
            state: Mutex::new(State {
                receivers: Vec::new(),
                next_id: 0,
                closed: false,
            }),
        }
    }

    /// Sends to every receiver; never waits.
    pub(crate) fn send(&self, item: T) {
        let st = lock(&self.state);
        for (_, slot) in &st.receivers {
            let mut q = lock(&slot.queue);
            if q.lagged {
                continue;
            }
            if q.items.len() >= q.capacity {
                q.items.clear();
                q.lagged = true;
            } else {
                q.items.push_back(item.clone());
            }
            slot.notify(q);
        }
    }

    /// Ends every receiver's stream once it has read what it holds.
    pub(crate) fn close(&self) {
        let mut st = lock(&self.state);
        st.closed = true;
        for (_, slot) in st.receivers.drain(..) {
            let mut q = lock(&slot.queue);
            q.closed = true;
            slot.notify(q);
        }
    }

    /// A new receiver whose queue starts with `first`; after a lag it yields `on_lag()`.
    pub(crate) fn subscribe(
        self: &Arc<Self>,
        capacity: usize,
        first: T,
        on_lag: impl Fn() -> T + Send + Sync + 'static,
    ) -> Receiver<T> {
        let mut st = lock(&self.state);
        let slot = Arc::new(Slot {
            queue: Mutex::new(Queue {
                items: VecDeque::from([first]),
                capacity: capacity.max(1),
                lagged: false,
                closed: st.closed,
                waker: None,
            }),
            ready: Condvar::new(),
        });
        let id = st.next_id;
        st.next_id += 1;
        if !st.closed {
            st.receivers.push((id, slot.clone()));
        }
        Receiver {
            channel: self.clone(),
            id,
            slot,
            on_lag: Box::new(on_lag),
        }
    }

    #[cfg(test)]
    pub(crate) fn receivers(&self) -> usize {
        lock(&self.state).receivers.len()
    }
}

impl<T> Slot<T> {
    fn notify(&self, mut q: MutexGuard<'_, Queue<T>>) {
        let waker = q.waker.take();
        drop(q);
        self.ready.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The receiving side, for blocking code and any async runtime (it is a
/// [`futures_core::Stream`]). A lag is turned into the owner's catch-up item. Dropping it
/// unsubscribes.
pub(crate) struct Receiver<T> {
    channel: Arc<Broadcast<T>>,
    id: u64,
    slot: Arc<Slot<T>>,
    on_lag: Box<dyn Fn() -> T + Send + Sync>,
}

impl<T: std::fmt::Debug> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<T> Receiver<T> {
    /// `Some(Some(item))`, `Some(None)` for nothing yet, `None` at the end.
    fn item(&self, r: Received<T>) -> Option<Option<T>> {
        match r {
            Received::Item(i) => Some(Some(i)),
            Received::Lagged => Some(Some((self.on_lag)())),
            Received::Empty => Some(None),
            Received::Closed => None,
        }
    }

    /// The next item, waiting as long as it takes; `None` at the end.
    pub(crate) fn recv(&self) -> Option<T> {
        self.item(self.recv_deadline(None)).flatten()
    }

    /// The next item, waiting at most `timeout`; `None` on timeout or at the end.
    pub(crate) fn recv_timeout(&self, timeout: std::time::Duration) -> Option<T> {
        let deadline = Instant::now().checked_add(timeout);
        self.item(self.recv_deadline(deadline)).flatten()
    }

    /// The next item without waiting: `Ok(None)` when nothing is pending, an error at the end.
    pub(crate) fn try_recv(&self) -> Result<Option<T>, crate::Error> {
        self.item(self.try_recv_raw()).ok_or(crate::Error::Stopped)
    }

    /// For `Stream::poll_next`.
    pub(crate) fn poll_next_item(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        match self.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => match self.item(r) {
                Some(Some(i)) => Poll::Ready(Some(i)),
                Some(None) => Poll::Pending,
                None => Poll::Ready(None),
            },
        }
    }

    fn take(q: &mut Queue<T>) -> Received<T> {
        if q.lagged {
            q.lagged = false;
            return Received::Lagged;
        }
        match q.items.pop_front() {
            Some(i) => Received::Item(i),
            None if q.closed => Received::Closed,
            None => Received::Empty,
        }
    }

    pub(crate) fn try_recv_raw(&self) -> Received<T> {
        Self::take(&mut lock(&self.slot.queue))
    }

    /// Waits until an item, a lag, the end, or the deadline (then `Empty`).
    pub(crate) fn recv_deadline(&self, deadline: Option<Instant>) -> Received<T> {
        let mut q = lock(&self.slot.queue);
        loop {
            match Self::take(&mut q) {
                Received::Empty => {}
                other => return other,
            }
            q = match deadline {
                None => self
                    .slot
                    .ready
                    .wait(q)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Received::Empty;
                    }
                    self.slot
                        .ready
                        .wait_timeout(q, d - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }

    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Received<T>> {
        let mut q = lock(&self.slot.queue);
        match Self::take(&mut q) {
            Received::Empty => {
                q.waker = Some(cx.waker().clone());
                Poll::Pending
            }
            other => Poll::Ready(other),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        lock(&self.channel.state)
            .receivers
            .retain(|(i, _)| *i != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_reported_once_then_delivery_resumes() {
        let ch = Arc::new(Broadcast::new());
        let rx = ch.subscribe(2, 0, || -1);
        for i in 1..=5 {
            ch.send(i);
        }
        assert!(matches!(rx.try_recv_raw(), Received::Lagged));
        assert!(matches!(rx.try_recv_raw(), Received::Empty));
        ch.send(6);
        assert!(matches!(rx.try_recv_raw(), Received::Item(6)));
        for i in 7..=10 {
            ch.send(i);
        }
        assert_eq!(
            rx.try_recv().unwrap(),
            Some(-1),
            "a lag yields the owner's item"
        );
        drop(rx);
        assert_eq!(ch.receivers(), 0);
    }

    #[test]
    fn close_ends_after_draining() {
        let ch = Arc::new(Broadcast::new());
        let rx = ch.subscribe(8, 0, || -1);
        ch.send(1);
        ch.close();
        assert!(matches!(rx.recv_deadline(None), Received::Item(0)));
        assert!(matches!(rx.recv_deadline(None), Received::Item(1)));
        assert!(matches!(rx.recv_deadline(None), Received::Closed));
    }
}
