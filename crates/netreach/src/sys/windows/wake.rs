//! How the driver sleeps on Windows, and what wakes it: a flag under a mutex with a condition
//! variable ([`Waker`]), set by a handle's command or by an IP Helper callback through
//! [`Changes`]. No system call of its own, so no `unsafe`.
//!
//! The callbacks run on Windows' threads and never touch the model: they set
//! [`Changes::dirty`] and wake the driver, which reads the tables again on its own thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use crate::Error;

/// A flag and a condition variable: `wake` sets the flag, `sleep` waits for it and clears it.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    woken: Mutex<bool>,
    cond: Condvar,
}

impl Signal {
    pub(crate) fn wake(&self) {
        *self.woken.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.cond.notify_one();
    }

    /// Returns when woken or at `deadline` (`None`: no deadline), clearing the flag.
    pub(crate) fn sleep(&self, deadline: Option<Instant>) {
        let mut woken = self.woken.lock().unwrap_or_else(PoisonError::into_inner);
        while !*woken {
            match deadline {
                None => {
                    woken = self
                        .cond
                        .wait(woken)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break;
                    }
                    woken = self
                        .cond
                        .wait_timeout(woken, d - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        }
        *woken = false;
    }
}

/// What the handles use to wake the driver's thread.
#[derive(Debug)]
pub(crate) struct Waker(pub(crate) Arc<Signal>);

impl Waker {
    pub(crate) fn new() -> Result<Waker, Error> {
        Ok(Waker(Arc::default()))
    }

    pub(crate) fn wake(&self) {
        self.0.wake();
    }
}

/// What the IP Helper callbacks share with the backend: "the tables changed", and the driver's
/// signal to wake (known from the driver's first `wait`; a change before that is seen by the
/// flag alone).
#[derive(Debug, Default)]
pub(crate) struct Changes {
    dirty: AtomicBool,
    signal: OnceLock<Arc<Signal>>,
}

impl Changes {
    /// Called from a callback: the tables changed.
    pub(crate) fn mark(&self) {
        self.dirty.store(true, Ordering::Release);
        if let Some(s) = self.signal.get() {
            s.wake();
        }
    }

    /// Whether a change came since the last call, clearing it.
    pub(crate) fn take(&self) -> bool {
        self.dirty.swap(false, Ordering::AcqRel)
    }

    /// Whether a change is pending (not clearing it).
    pub(crate) fn pending(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }

    /// The driver's signal, for the callbacks to wake.
    pub(crate) fn attach(&self, signal: &Arc<Signal>) {
        let _ = self.signal.set(signal.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_wake_before_the_sleep_is_not_lost() {
        let s = Signal::default();
        s.wake();
        let t = Instant::now();
        s.sleep(Some(t + Duration::from_secs(10)));
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_mark_wakes_the_attached_signal() {
        let changes = Arc::new(Changes::default());
        let signal = Arc::new(Signal::default());
        changes.attach(&signal);
        let c = changes.clone();
        let h = std::thread::spawn(move || c.mark());
        signal.sleep(Some(Instant::now() + Duration::from_secs(10)));
        h.join().unwrap();
        assert!(changes.take());
        assert!(!changes.take());
    }
}
