//! The pollable descriptor of each status and connection monitor: an `eventfd` that the
//! subscription's waker signals, so a foreign event loop (poll, epoll, `QSocketNotifier`,
//! GLib) learns that an event may be pending without any callback on a library thread.
//!
//! The descriptor is level-triggered from the caller's point of view: it stays readable while
//! events may be pending, and `_next_event` clears it only when it finds none (then the waker
//! is registered again, so the next event signals it). A waker that outlives the handle (the
//! monitor's thread may hold a clone) keeps the descriptor open until it is dropped: it never
//! writes to a closed or reused descriptor.

use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures_core::Stream;
use rustix::event::{EventfdFlags, eventfd};

use crate::boundary::Failure;
use crate::error::netreach_result;

#[derive(Debug)]
pub(crate) struct EventFd(OwnedFd);

impl EventFd {
    pub(crate) fn new() -> Result<Arc<EventFd>, Failure> {
        eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
            .map(|fd| Arc::new(EventFd(fd)))
            .map_err(|e| {
                Failure::new(
                    netreach_result::System,
                    format!("eventfd: {}", std::io::Error::from(e)),
                )
            })
    }

    pub(crate) fn raw(&self) -> i32 {
        self.0.as_raw_fd()
    }

    fn signal(&self) {
        // A full counter (EAGAIN) already means "readable": nothing to do.
        let _ = rustix::io::write(&self.0, &1u64.to_ne_bytes());
    }

    fn clear(&self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.0, &mut buf);
    }
}

impl Wake for EventFd {
    fn wake(self: Arc<Self>) {
        self.signal();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.signal();
    }
}

/// A subscription read through a descriptor.
#[derive(Debug)]
pub(crate) struct Pollable<S> {
    sub: S,
    fd: Arc<EventFd>,
    waker: Waker,
}

impl<S: Stream + Unpin> Pollable<S> {
    pub(crate) fn new(sub: S) -> Result<Pollable<S>, Failure> {
        let fd = EventFd::new()?;
        let waker = Waker::from(fd.clone());
        // Readable at once: the subscription's first state is pending.
        fd.signal();
        Ok(Pollable { sub, fd, waker })
    }

    pub(crate) fn fd(&self) -> i32 {
        self.fd.raw()
    }

    /// The next item without waiting: `Poll::Pending` when none is pending (the descriptor is
    /// then clear until the next one), `Ready(None)` once the subscription has ended (the
    /// descriptor is then left clear for good).
    pub(crate) fn next(&mut self) -> Poll<Option<S::Item>> {
        // Clear first, then look: an item published after the look signals the waker that the
        // look registered; one published before it is found by the look.
        self.fd.clear();
        let mut cx = Context::from_waker(&self.waker);
        let got = Pin::new(&mut self.sub).poll_next(&mut cx);
        if matches!(got, Poll::Ready(Some(_))) {
            // More may be pending: readable until a look finds nothing (or the end).
            self.fd.signal();
        }
        got
    }

    pub(crate) fn get(&self) -> &S {
        &self.sub
    }
}
