//! A wake-up descriptor (`eventfd`) so another thread can interrupt the driver's `poll(2)`.
//!
//! The driver sleeps in `poll` on the netlink socket and this descriptor, with no timeout:
//! idle means idle, no timer wake-ups.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::{EventfdFlags, eventfd};

use crate::Error;

/// The write side wakes, the read side is polled. Both are the one eventfd.
#[derive(Debug)]
pub(crate) struct Wake(OwnedFd);

impl Wake {
    pub(crate) fn new() -> Result<Wake, Error> {
        eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
            .map(Wake)
            .map_err(|e| Error::socket("eventfd", e))
    }

    /// Makes the next (or current) poll return.
    pub(crate) fn wake(&self) {
        // A full counter (EAGAIN) already means "woken": nothing to do.
        let _ = rustix::io::write(&self.0, &1u64.to_ne_bytes());
    }

    /// Resets the counter after a wake-up.
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.0, &mut buf);
    }
}

impl AsFd for Wake {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
