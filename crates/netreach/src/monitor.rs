//! The live monitor: an rtnetlink subscription, a thread that keeps the model current, and the
//! subscriptions that hand its changes out.
//!
//! Start-up order matters: the notification socket joins its multicast groups *before* the
//! state is dumped, so a change that happens during the dump is queued on the socket and
//! applied afterwards (applying is idempotent, so a change that the dump already shows is a
//! no-op). `Monitor::new` returns only once that first state is known, or a typed error.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::SystemTime;

use netreach_core::decode::{Parsed, parse_datagram};
use netreach_core::{Event, Family, Snapshot, Update, diff};
use rustix::event::{PollFd, PollFlags, poll};

use crate::subscription::{Batch, Hub, lock};
use crate::sys::imp::netlink::{NlSocket, RECV_BUF, Recv};
use crate::sys::imp::wake::Wake;
use crate::{Error, Netns, Subscription};

/// Most updates applied before publishing, so a long burst is handed out in slices.
const MAX_BATCH: usize = 4096;
/// Receive buffer asked for at start; doubled on each overflow up to [`MAX_RCVBUF`].
const INITIAL_RCVBUF: usize = 1 << 20;
const MAX_RCVBUF: usize = 64 << 20;

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
    /// Times IPv4 routes were dumped again after a silent kernel flush.
    pub route_refreshes: u64,
    /// Changes published.
    pub changes: u64,
    /// Current size of the socket's receive buffer in bytes.
    pub rcvbuf: u64,
}

#[derive(Debug, Default)]
struct Counters {
    messages: AtomicU64,
    decode_errors: AtomicU64,
    resyncs: AtomicU64,
    route_refreshes: AtomicU64,
    changes: AtomicU64,
    rcvbuf: AtomicU64,
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
#[derive(Debug)]
pub struct Monitor {
    hub: Arc<Hub>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    netns: Netns,
    queue: usize,
}

/// What the caller's handle and the thread share.
#[derive(Debug)]
struct Shared {
    wake: Wake,
    stop: AtomicBool,
    counters: Counters,
    failure: Mutex<Option<Arc<Error>>>,
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
        let shared = Arc::new(Shared {
            wake: Wake::new()?,
            stop: AtomicBool::new(false),
            counters: Counters::default(),
            failure: Mutex::new(None),
        });
        shared
            .counters
            .rcvbuf
            .store(events.rcvbuf() as u64, Ordering::Relaxed);
        let hub = Arc::new(Hub::new(snapshot));
        let driver = Driver {
            events,
            requests,
            snapshot: hub.snapshot(),
            hub: hub.clone(),
            shared: shared.clone(),
            rcvbuf: opts.rcvbuf,
            seq: 0,
        };
        let thread = std::thread::Builder::new()
            .name("netreach-monitor".into())
            .spawn(move || driver.run())
            .map_err(Error::Thread)?;
        Ok(Monitor {
            hub,
            shared,
            thread: Some(thread),
            netns: opts.netns,
            queue: opts.queue,
        })
    }

    /// The current state.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.hub.snapshot()
    }

    /// A new subscription: first the current state, then every change.
    pub fn subscribe(&self) -> Subscription {
        self.hub.subscribe(self.queue)
    }

    /// The namespace this monitor watches.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// Counters of what the monitor has done.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
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
        lock(&self.shared.failure).clone()
    }

    /// Test hook: blocks the monitor's thread at its next publish until the guard is dropped,
    /// so that a test can make the kernel overflow the socket. Do not hold any other monitor
    /// call while it lives (they wait for the same lock).
    #[doc(hidden)]
    pub fn __stall_for_test(&self) -> impl Drop + '_ {
        self.hub.stall()
    }

    /// Number of live subscriptions.
    pub fn subscriber_count(&self) -> usize {
        self.hub.subscribers()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The monitor's thread: read, decode, apply, publish, sleep.
struct Driver {
    events: NlSocket,
    requests: NlSocket,
    /// The driver's copy of the state; shared with readers until the next change.
    snapshot: Arc<Snapshot>,
    hub: Arc<Hub>,
    shared: Arc<Shared>,
    rcvbuf: usize,
    seq: u64,
}

impl Driver {
    fn run(mut self) {
        if let Err(e) = self.run_loop() {
            tracing::error!(error = %e, "netreach monitor stopped");
            *lock(&self.shared.failure) = Some(Arc::new(e));
        }
        self.hub.close();
    }

    fn run_loop(&mut self) -> Result<(), Error> {
        let mut buf = vec![0u8; RECV_BUF];
        let mut updates = Vec::new();
        loop {
            // Read everything queued, publishing in slices of at most MAX_BATCH updates.
            let mut overflow = false;
            loop {
                match self.events.recv(&mut buf)? {
                    Recv::Data(n) => self.decode(&buf[..n], &mut updates),
                    Recv::Empty => break,
                    Recv::Overflow => {
                        overflow = true;
                        break;
                    }
                }
                if updates.len() >= MAX_BATCH {
                    self.apply(std::mem::take(&mut updates))?;
                }
                if self.shared.stop.load(Ordering::Acquire) {
                    return Ok(());
                }
            }
            if overflow {
                updates.clear();
                self.resync(&mut buf)?;
                continue;
            }
            if !updates.is_empty() {
                self.apply(std::mem::take(&mut updates))?;
            }
            // Sleep until the kernel or the owner says something. No timeout: idle is idle.
            let mut fds = [
                PollFd::new(&self.events, PollFlags::IN),
                PollFd::new(&self.shared.wake, PollFlags::IN),
            ];
            match poll(&mut fds, None) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(Error::socket("poll", e)),
            }
            if !fds[1].revents().is_empty() {
                self.shared.wake.drain();
            }
            if self.shared.stop.load(Ordering::Acquire) {
                return Ok(());
            }
        }
    }

    fn decode(&self, datagram: &[u8], out: &mut Vec<Update>) {
        let c = &self.shared.counters;
        for msg in parse_datagram(datagram) {
            match msg {
                Ok(m) => {
                    c.messages.fetch_add(1, Ordering::Relaxed);
                    if let Parsed::Update(u) = m.parsed {
                        out.push(u);
                    }
                }
                Err(e) => {
                    c.decode_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "skipping undecodable kernel message");
                }
            }
        }
    }

    /// Applies a slice of updates, refreshes IPv4 routes if the kernel may have flushed some
    /// silently, and publishes the events.
    fn apply(&mut self, updates: Vec<Update>) -> Result<(), Error> {
        let mut events = Vec::with_capacity(updates.len());
        let mut refresh = false;
        {
            let snap = Arc::make_mut(&mut self.snapshot);
            for u in updates {
                refresh |= u.route_refresh_needed(snap) == Some(Family::Ipv4);
                snap.apply_into(u, &mut events);
            }
        }
        if refresh {
            self.shared
                .counters
                .route_refreshes
                .fetch_add(1, Ordering::Relaxed);
            let routes = self
                .requests
                .dump_routes(Family::Ipv4)?
                .into_iter()
                .filter_map(|u| match u {
                    Update::NewRoute { route, .. } => Some(route),
                    _ => None,
                })
                .collect();
            events.extend(Arc::make_mut(&mut self.snapshot).sync_routes(Family::Ipv4, routes));
        }
        self.publish(&events, false);
        Ok(())
    }

    /// After an overflow: a bigger buffer, a fresh dump, and the difference as events.
    fn resync(&mut self, buf: &mut [u8]) -> Result<(), Error> {
        let c = &self.shared.counters;
        c.resyncs.fetch_add(1, Ordering::Relaxed);
        if self.rcvbuf < MAX_RCVBUF {
            self.rcvbuf *= 2;
            self.events.set_rcvbuf(self.rcvbuf);
        }
        c.rcvbuf
            .store(self.events.rcvbuf() as u64, Ordering::Relaxed);
        // What is still queued predates the dump below, which supersedes it.
        while let Recv::Data(_) = self.events.recv(buf)? {}
        let fresh = self.requests.dump_all()?;
        let events = diff(&self.snapshot, &fresh);
        tracing::info!(changes = events.len(), "resynced after socket overflow");
        self.snapshot = Arc::new(fresh);
        self.publish(&events, true);
        Ok(())
    }

    fn publish(&mut self, events: &[Event], resynced: bool) {
        if events.is_empty() && !resynced {
            return;
        }
        self.shared
            .counters
            .changes
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        self.seq = self.hub.publish(Batch {
            snapshot: &self.snapshot,
            first_seq: self.seq,
            time: SystemTime::now(),
            events,
            resynced,
        });
    }
}
