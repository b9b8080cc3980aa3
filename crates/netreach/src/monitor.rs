//! The live monitor: an rtnetlink subscription, a thread that keeps the model current, and the
//! subscriptions that hand its changes out.
//!
//! Start-up order matters: the notification socket joins its multicast groups *before* the
//! state is dumped, so a change that happens during the dump is queued on the socket and
//! applied afterwards (applying is idempotent, so a change that the dump already shows is a
//! no-op). `Monitor::new` returns only once that first state is known, or a typed error.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use netreach_core::Snapshot;

use crate::driver::{Driver, DriverState, Shared};
use crate::subscription::{Hub, lock};
use crate::sys::imp::netlink::NlSocket;
use crate::{Error, Netns, Subscription};

/// Receive buffer asked for at start; doubled on each overflow up to 64 MiB.
const INITIAL_RCVBUF: usize = 1 << 20;

/// Counters describing what a monitor has done, for diagnostics and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Kernel messages decoded.
    pub messages: u64,
    /// Kernel messages that could not be decoded and were skipped.
    pub decode_errors: u64,
    /// Times the socket overflowed and the state was dumped again.
    pub resyncs: u64,
    /// Times a family's routes were dumped again after a change the kernel makes silently
    /// (a flush on link down, `linkdown` flags on carrier loss).
    pub route_refreshes: u64,
    /// Changes published.
    pub changes: u64,
    /// Current size of the socket's receive buffer in bytes.
    pub rcvbuf: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) messages: AtomicU64,
    pub(crate) decode_errors: AtomicU64,
    pub(crate) resyncs: AtomicU64,
    pub(crate) route_refreshes: AtomicU64,
    pub(crate) changes: AtomicU64,
    pub(crate) rcvbuf: AtomicU64,
}

/// Options for a [`Monitor`].
#[derive(Debug, Clone)]
pub struct MonitorBuilder {
    netns: Netns,
    queue: usize,
    rcvbuf: usize,
}

impl Default for MonitorBuilder {
    fn default() -> Self {
        MonitorBuilder {
            netns: Netns::Current,
            queue: 4096,
            rcvbuf: INITIAL_RCVBUF,
        }
    }
}

impl MonitorBuilder {
    /// Watch this network namespace instead of the caller's.
    pub fn netns(mut self, netns: Netns) -> Self {
        self.netns = netns;
        self
    }

    /// How many changes a subscriber may leave unread before its pending changes are merged
    /// (default 4096).
    pub fn queue_capacity(mut self, changes: usize) -> Self {
        self.queue = changes.max(1);
        self
    }

    /// The socket receive buffer to start with, in bytes (default 1 MiB). It doubles after
    /// each overflow, up to 64 MiB. A small value only makes overflows (and resyncs) likelier;
    /// it is useful to test them.
    pub fn receive_buffer(mut self, bytes: usize) -> Self {
        self.rcvbuf = bytes.max(1024);
        self
    }

    /// Opens the sockets, reads the current state and starts the monitor's thread.
    pub fn build(self) -> Result<Monitor, Error> {
        Monitor::start(self)
    }
}

/// A live model of one network namespace, kept current from kernel notifications.
///
/// The monitor owns one thread, which sleeps in `poll(2)` until the kernel reports a change;
/// there is no polling loop and no timer. Dropping the monitor stops the thread and closes
/// its sockets; subscriptions then end.
///
/// # Examples
///
/// ```no_run
/// # fn main() -> Result<(), netreach::Error> {
/// let monitor = netreach::Monitor::new()?;
/// for iface in monitor.snapshot().interfaces() {
///     println!("{} {}", iface.name, iface.oper_state);
/// }
/// # Ok(()) }
/// ```
///
/// # Platform specific behavior
///
/// Linux only (rtnetlink). Watching another namespace needs `CAP_SYS_ADMIN` to enter it.
///
/// `Monitor` is a cheap handle: clones share the one thread and socket, which stop when the last
/// handle (including status and connection monitors built on it) is dropped.
#[derive(Debug, Clone)]
pub struct Monitor {
    inner: Arc<Inner>,
}

/// The one monitor behind all handles; dropping it stops the thread.
#[derive(Debug)]
struct Inner {
    hub: Arc<Hub>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    netns: Netns,
    queue: usize,
}

impl Monitor {
    /// A monitor of the caller's network namespace.
    pub fn new() -> Result<Monitor, Error> {
        MonitorBuilder::default().build()
    }

    /// A monitor of another network namespace.
    pub fn in_netns(netns: Netns) -> Result<Monitor, Error> {
        MonitorBuilder::default().netns(netns).build()
    }

    /// Options.
    pub fn builder() -> MonitorBuilder {
        MonitorBuilder::default()
    }

    fn start(opts: MonitorBuilder) -> Result<Monitor, Error> {
        // Subscribe first, then dump: see the module docs.
        let (events, requests, snapshot) = opts.netns.run(|| {
            let events = NlSocket::notifications(opts.rcvbuf)?;
            let mut requests = NlSocket::requests()?;
            let snapshot = requests.dump_all()?;
            Ok::<_, Error>((events, requests, snapshot))
        })??;
        let shared = Arc::new(Shared::new()?);
        shared
            .counters
            .rcvbuf
            .store(events.rcvbuf() as u64, Ordering::Relaxed);
        let hub = Arc::new(Hub::new(snapshot));
        let thread = Driver::spawn(events, requests, hub.clone(), shared.clone(), opts.rcvbuf)?;
        Ok(Monitor {
            inner: Arc::new(Inner {
                hub,
                shared,
                thread: Some(thread),
                netns: opts.netns,
                queue: opts.queue,
            }),
        })
    }

    /// Runs `f` on the monitor's thread, which owns the sockets and the state.
    pub(crate) fn exec(&self, f: impl FnOnce(&mut DriverState) + Send + 'static) {
        lock(&self.inner.shared.commands).push(Box::new(f));
        self.inner.shared.wake.wake();
    }

    /// Wakes the monitor's thread so its extensions look at their inputs again.
    pub(crate) fn poke(&self) {
        self.inner.shared.poked.store(true, Ordering::Release);
        self.inner.shared.wake.wake();
    }

    /// The current state.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.hub.snapshot()
    }

    /// A new subscription: first the current state, then every change.
    pub fn subscribe(&self) -> Subscription {
        self.inner.hub.subscribe(self.inner.queue)
    }

    /// The namespace this monitor watches.
    pub fn netns(&self) -> &Netns {
        &self.inner.netns
    }

    /// Counters of what the monitor has done.
    pub fn stats(&self) -> Stats {
        let c = &self.inner.shared.counters;
        Stats {
            messages: c.messages.load(Ordering::Relaxed),
            decode_errors: c.decode_errors.load(Ordering::Relaxed),
            resyncs: c.resyncs.load(Ordering::Relaxed),
            route_refreshes: c.route_refreshes.load(Ordering::Relaxed),
            changes: c.changes.load(Ordering::Relaxed),
            rcvbuf: c.rcvbuf.load(Ordering::Relaxed),
        }
    }

    /// Why the monitor's thread stopped on its own, if it did (a socket error).
    pub fn failure(&self) -> Option<Arc<Error>> {
        lock(&self.inner.shared.failure).clone()
    }

    /// Test hook: blocks the monitor's thread at its next publish until the guard is dropped,
    /// so that a test can make the kernel overflow the socket. Do not hold any other monitor
    /// call while it lives (they wait for the same lock).
    #[doc(hidden)]
    pub fn __stall_for_test(&self) -> impl Drop + '_ {
        self.inner.hub.stall()
    }

    /// Number of live subscriptions.
    pub fn subscriber_count(&self) -> usize {
        self.inner.hub.subscribers()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
