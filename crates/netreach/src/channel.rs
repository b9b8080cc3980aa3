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

    /// A new receiver whose queue starts with `first`.
    pub(crate) fn subscribe(self: &Arc<Self>, capacity: usize, first: T) -> Receiver<T> {
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

/// The receiving side. Dropping it unsubscribes.
#[derive(Debug)]
pub(crate) struct Receiver<T> {
    channel: Arc<Broadcast<T>>,
    id: u64,
    slot: Arc<Slot<T>>,
}

impl<T> Receiver<T> {
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

    pub(crate) fn try_recv(&self) -> Received<T> {
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
        let rx = ch.subscribe(2, 0);
        for i in 1..=5 {
            ch.send(i);
        }
        assert!(matches!(rx.try_recv(), Received::Lagged));
        assert!(matches!(rx.try_recv(), Received::Empty));
        ch.send(6);
        assert!(matches!(rx.try_recv(), Received::Item(6)));
        drop(rx);
        assert_eq!(ch.receivers(), 0);
    }

    #[test]
    fn close_ends_after_draining() {
        let ch = Arc::new(Broadcast::new());
        let rx = ch.subscribe(8, 0);
        ch.send(1);
        ch.close();
        assert!(matches!(rx.recv_deadline(None), Received::Item(0)));
        assert!(matches!(rx.recv_deadline(None), Received::Item(1)));
        assert!(matches!(rx.recv_deadline(None), Received::Closed));
    }
}
