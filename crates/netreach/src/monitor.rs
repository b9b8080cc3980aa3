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
use std::time::Duration;

use netreach_core::Snapshot;
use netreach_core::machine::{Machine, MachineConfig};

use crate::driver::{Command, Driver, Shared};
use crate::hub::{Hub, Interest, lock};
use crate::subscription::EVERYTHING;
use crate::sys::{BackendKind, DumpHook, HintCell};
use crate::{Error, Netns, Subscription};
use netreach_core::nlm::SystemHint;

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
    /// Polling dumps that failed and were tried again at the next poll (polling backend).
    pub poll_failures: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) messages: AtomicU64,
    pub(crate) decode_errors: AtomicU64,
    pub(crate) resyncs: AtomicU64,
    pub(crate) route_refreshes: AtomicU64,
    pub(crate) changes: AtomicU64,
    pub(crate) rcvbuf: AtomicU64,
    pub(crate) poll_failures: AtomicU64,
    /// Ids of the status and connection monitors attached.
    pub(crate) owners: AtomicU64,
}

/// Options for a [`Monitor`].
#[derive(Clone)]
pub struct MonitorBuilder {
    netns: Netns,
    queue: usize,
    rcvbuf: usize,
    backend: BackendKind,
    dump_hook: Option<DumpHook>,
}

impl std::fmt::Debug for MonitorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitorBuilder")
            .field("netns", &self.netns)
            .field("queue", &self.queue)
            .field("rcvbuf", &self.rcvbuf)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Default for MonitorBuilder {
    fn default() -> Self {
        MonitorBuilder {
            netns: Netns::Current,
            queue: 4096,
            rcvbuf: INITIAL_RCVBUF,
            backend: BackendKind::Netlink,
            dump_hook: None,
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

    /// How to learn of changes: the kernel's notifications (the default) or polling dumps.
    ///
    /// ```
    /// use std::time::Duration;
    /// use netreach::{BackendKind, Monitor};
    ///
    /// let builder = Monitor::builder().backend(BackendKind::Polling {
    ///     interval: Duration::from_secs(2),
    /// });
    /// # let _ = builder;
    /// ```
    pub fn backend(mut self, backend: BackendKind) -> Self {
        self.backend = backend;
        self
    }

    /// Polls every `interval` instead of listening to the kernel's notifications: the same as
    /// [`MonitorBuilder::backend`] with [`BackendKind::Polling`].
    pub fn poll_every(self, interval: Duration) -> Self {
        self.backend(BackendKind::Polling { interval })
    }

    /// Test hook: `hook` runs on the monitor's dumping thread after each part of each dump is
    /// read, with what is dumped (`"link"`, `"address"`, `"route"`, `"rule"`) and the attempt
    /// (0 first; the kernel flags a dump interrupted when its table changed between two parts,
    /// and the dump is redone). A test can change the kernel's tables from there, which no
    /// timing can do reliably: `tests/live_model.rs` proves so that an interrupted dump is
    /// redone, and that the notifications queued meanwhile are applied after it.
    #[doc(hidden)]
    pub fn __dump_hook_for_test(
        mut self,
        hook: impl Fn(&'static str, u32) + Send + Sync + 'static,
    ) -> Self {
        self.dump_hook = Some(std::sync::Arc::new(hook));
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
/// there is no polling loop and no timer (unless [`BackendKind::Polling`] was asked for, or
/// a status monitor probes). Dropping the monitor stops the thread and closes
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
/// Linux (rtnetlink, or polling dumps over rtnetlink). Watching another namespace needs
/// `CAP_SYS_ADMIN` to enter it. On other systems every constructor returns
/// [`Error::Unsupported`].
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
    backend: BackendKind,
    system_hint: Option<HintCell>,
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
        let shared = Arc::new(Shared::new()?);
        // Subscribe first, then dump: see the module docs.
        let (backend, snapshot) = crate::sys::open(
            opts.backend,
            &opts.netns,
            opts.rcvbuf,
            opts.dump_hook.clone(),
        )?;
        shared
            .counters
            .rcvbuf
            .store(backend.rcvbuf() as u64, Ordering::Relaxed);
        let config = MachineConfig::default().medium_hints(backend.has_medium_hints());
        let system_hint = backend.system_hint();
        let kind = backend.kind().unwrap_or(opts.backend);
        let machine = Machine::new(snapshot, config);
        let hub = Arc::new(Hub::new(machine.snapshot().clone()));
        let thread = Driver::spawn(
            machine,
            backend,
            hub.clone(),
            shared.clone(),
            opts.netns.clone(),
        )?;
        Ok(Monitor {
            inner: Arc::new(Inner {
                hub,
                shared,
                thread: Some(thread),
                netns: opts.netns,
                queue: opts.queue,
                backend: kind,
                system_hint,
            }),
        })
    }

    /// Asks the monitor's thread to do something.
    pub(crate) fn send(&self, command: Command) {
        self.inner.shared.send(command);
    }

    /// A new id for a status or connection monitor.
    pub(crate) fn next_owner(&self) -> u64 {
        self.inner
            .shared
            .counters
            .owners
            .fetch_add(1, Ordering::Relaxed)
            + 1
    }

    pub(crate) fn hub(&self) -> &Arc<Hub> {
        &self.inner.hub
    }

    /// The current state.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.hub.snapshot()
    }

    /// A new subscription: first the current state, then every model change.
    pub fn subscribe(&self) -> Subscription {
        Subscription::new(&self.inner.hub, Interest::MODEL, self.inner.queue)
    }

    /// The monitor's whole stream: the current state, then every model change, resync,
    /// connectivity change, probe verdict and reachability change of the status and connection
    /// monitors attached to it, in one order, each with its own sequence number (a derived
    /// change names the model change that caused it in
    /// [`Notification::cause_seq`](crate::Notification::cause_seq)).
    pub fn stream(&self) -> Subscription {
        Subscription::new(&self.inner.hub, EVERYTHING, self.inner.queue)
    }

    /// What the system itself says about connectivity, where it has an opinion: a hint beside
    /// netreach's own levels, which never depend on it. `None` where the system has none, or
    /// has not answered.
    ///
    /// # Platform specific behavior
    ///
    /// Windows: the Network List Manager (`INetworkListManager::GetConnectivity`,
    /// `INetworkCostManager::GetCost`), read on a thread of the monitor's own and kept current
    /// by its events (`docs/windows.md`). Elsewhere always `None`.
    pub fn system_hint(&self) -> Option<SystemHint> {
        let cell = self.inner.system_hint.as_ref()?;
        *cell
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How this monitor learns of changes.
    ///
    /// # Platform specific behavior
    ///
    /// On Windows, a monitor asked for [`BackendKind::Netlink`] whose notifications could not
    /// be registered (under Wine) says [`BackendKind::Polling`] here, with the interval it polls
    /// at.
    pub fn backend(&self) -> BackendKind {
        self.inner.backend
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
            poll_failures: c.poll_failures.load(Ordering::Relaxed),
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
        lock(&self.inner.hub.state)
    }

    /// Number of live subscriptions of the model ([`Monitor::subscribe`], [`Monitor::stream`];
    /// the status and connection monitors' own are not counted).
    pub fn subscriber_count(&self) -> usize {
        self.inner.hub.subscribers()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
