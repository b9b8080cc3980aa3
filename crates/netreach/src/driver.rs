//! The monitor's thread: read kernel messages, apply them, publish the changes, let the
//! extensions (status and connection monitors) act on them, sleep.
//!
//! One loop, commented step by step in [`Driver::run_loop`]. The thread sleeps in `poll(2)` on
//! the notification socket and a wake-up descriptor, with no timeout. Handles talk to it by
//! queueing closures ([`crate::Monitor::exec`]) or poking it ([`crate::Monitor::poke`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

use netreach_core::decode::{Parsed, parse_datagram};
use netreach_core::{Event, Refresh, RouteRefresh, Snapshot, Update, diff};
use rustix::event::{PollFd, PollFlags, poll};

use crate::Error;
use crate::monitor::Counters;
use crate::subscription::{Batch, Hub, lock};
use crate::sys::imp::netlink::{NlSocket, RECV_BUF, Recv};
use crate::sys::imp::wake::Wake;

/// Most updates applied before publishing, so a long burst is handed out in slices.
const MAX_BATCH: usize = 4096;
/// The receive buffer never grows beyond this.
const MAX_RCVBUF: usize = 64 << 20;

/// A closure run on the monitor's thread.
pub(crate) type Command = Box<dyn FnOnce(&mut DriverState) + Send>;

/// What the caller's handles and the thread share.
pub(crate) struct Shared {
    pub(crate) wake: Wake,
    pub(crate) stop: AtomicBool,
    pub(crate) poked: AtomicBool,
    pub(crate) counters: Counters,
    pub(crate) failure: Mutex<Option<Arc<Error>>>,
    pub(crate) commands: Mutex<Vec<Command>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("stop", &self.stop)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for DriverState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriverState")
            .field("extensions", &self.extensions.len())
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new() -> Result<Shared, Error> {
        Ok(Shared {
            wake: Wake::new()?,
            stop: AtomicBool::new(false),
            poked: AtomicBool::new(false),
            counters: Counters::default(),
            failure: Mutex::new(None),
            commands: Mutex::new(Vec::new()),
        })
    }
}

/// Something that runs on the monitor's thread and reacts to each batch of changes: the status
/// and connection monitors. It owns a sans-IO core and does that core's IO through [`Cx`].
pub(crate) trait Extension: Send {
    /// After each batch of changes (and once, with no events, when attached).
    fn on_batch(&mut self, cx: &mut Cx<'_>, events: &[Event]);
    /// When a handle poked the thread: new inputs (targets added, say) wait.
    fn on_poke(&mut self, cx: &mut Cx<'_>);
    /// True once every handle of this extension is gone; the driver then drops it.
    fn is_detached(&self) -> bool;
    /// The next moment the extension wants [`Extension::on_timeout`]; the driver sleeps no
    /// longer than the earliest of these. `None`: no timer (the default).
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    /// A deadline from [`Extension::poll_timeout`] has passed.
    fn on_timeout(&mut self, _cx: &mut Cx<'_>, _now: Instant) {}
    /// Kernel notifications were lost and the state was dumped again (the differences were
    /// just passed to [`Extension::on_batch`]): anything learnt from the kernel other than
    /// the model, such as route lookups, may be stale.
    fn on_resync(&mut self, _cx: &mut Cx<'_>) {}
}

/// Lets another thread (a probe worker) wake the driver so its extensions look at their
/// inputs again. Holding one does not keep the monitor alive.
#[derive(Debug, Clone)]
pub(crate) struct Poker(Arc<Shared>);

impl Poker {
    pub(crate) fn poke(&self) {
        self.0.poked.store(true, Ordering::Release);
        self.0.wake.wake();
    }
}

/// What an extension may use: the current state, the request socket, a way to be woken.
pub(crate) struct Cx<'a> {
    pub(crate) snapshot: &'a Snapshot,
    /// Sequence number of the last model change published: what `snapshot` includes.
    pub(crate) seq: u64,
    pub(crate) requests: &'a mut NlSocket,
    pub(crate) poker: &'a Poker,
}

/// The part of the driver that commands may touch.
pub(crate) struct DriverState {
    pub(crate) requests: NlSocket,
    pub(crate) snapshot: Arc<Snapshot>,
    pub(crate) extensions: Vec<Box<dyn Extension>>,
    poker: Poker,
    /// Sequence number of the last model change published.
    seq: u64,
}

impl DriverState {
    /// Attaches an extension and lets it see the current state at once.
    pub(crate) fn attach(&mut self, mut ext: Box<dyn Extension>) {
        let mut cx = Cx {
            snapshot: &self.snapshot,
            seq: self.seq,
            requests: &mut self.requests,
            poker: &self.poker,
        };
        ext.on_batch(&mut cx, &[]);
        self.extensions.push(ext);
    }

    /// The earliest deadline of any extension.
    fn next_deadline(&self) -> Option<Instant> {
        self.extensions
            .iter()
            .filter_map(|e| e.poll_timeout())
            .min()
    }

    fn run_timeouts(&mut self, now: Instant) {
        for ext in &mut self.extensions {
            if ext.poll_timeout().is_some_and(|d| d <= now) {
                let mut cx = Cx {
                    snapshot: &self.snapshot,
                    seq: self.seq,
                    requests: &mut self.requests,
                    poker: &self.poker,
                };
                ext.on_timeout(&mut cx, now);
            }
        }
    }

    fn run_extensions(&mut self, events: &[Event], poked: bool, resynced: bool) {
        self.extensions.retain(|e| !e.is_detached());
        for ext in &mut self.extensions {
            let mut cx = Cx {
                snapshot: &self.snapshot,
                seq: self.seq,
                requests: &mut self.requests,
                poker: &self.poker,
            };
            if !events.is_empty() {
                ext.on_batch(&mut cx, events);
            }
            if resynced {
                ext.on_resync(&mut cx);
            }
            if poked {
                ext.on_poke(&mut cx);
            }
        }
    }
}

/// The monitor's thread: read, decode, apply, publish, sleep.
pub(crate) struct Driver {
    events: NlSocket,
    state: DriverState,
    hub: Arc<Hub>,
    shared: Arc<Shared>,
    rcvbuf: usize,
    seq: u64,
}

impl Driver {
    /// Starts the thread.
    pub(crate) fn spawn(
        events: NlSocket,
        requests: NlSocket,
        hub: Arc<Hub>,
        shared: Arc<Shared>,
        rcvbuf: usize,
    ) -> Result<JoinHandle<()>, Error> {
        let driver = Driver {
            events,
            state: DriverState {
                requests,
                snapshot: hub.snapshot(),
                extensions: Vec::new(),
                poker: Poker(shared.clone()),
                seq: 0,
            },
            hub,
            shared,
            rcvbuf,
            seq: 0,
        };
        std::thread::Builder::new()
            .name("netreach-monitor".into())
            .spawn(move || driver.run())
            .map_err(Error::Thread)
    }

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
            // Sleep until the kernel or the owner says something, or an extension's deadline
            // (a probe's backoff) passes. With no deadline there is no timeout: idle is idle.
            let deadline = self.state.next_deadline();
            let timeout = deadline.map(|d| {
                let left = d.saturating_duration_since(Instant::now());
                rustix::event::Timespec {
                    tv_sec: left.as_secs().min(i64::MAX as u64) as i64,
                    tv_nsec: i64::from(left.subsec_nanos()),
                }
            });
            let mut fds = [
                PollFd::new(&self.events, PollFlags::IN),
                PollFd::new(&self.shared.wake, PollFlags::IN),
            ];
            match poll(&mut fds, timeout.as_ref()) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(Error::socket("poll", e)),
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                self.state.run_timeouts(Instant::now());
            }
            if !fds[1].revents().is_empty() {
                self.shared.wake.drain();
            }
            if self.shared.stop.load(Ordering::Acquire) {
                return Ok(());
            }
            // Requests from handles: run queued commands, then let extensions look again.
            let commands = std::mem::take(&mut *lock(&self.shared.commands));
            for c in commands {
                c(&mut self.state);
            }
            if self.shared.poked.swap(false, Ordering::AcqRel) {
                self.state.run_extensions(&[], true, false);
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

    /// Applies a slice of updates, dumps the routes again where the kernel may have changed
    /// them silently, and publishes the events.
    fn apply(&mut self, updates: Vec<Update>) -> Result<(), Error> {
        let mut events = Vec::with_capacity(updates.len());
        let mut refresh = RouteRefresh::default();
        {
            let snap = Arc::make_mut(&mut self.state.snapshot);
            for u in updates {
                refresh.merge(u.route_refresh_needed(snap));
                snap.apply_into(u, &mut events);
            }
        }
        for (family, scope) in refresh.families() {
            self.shared
                .counters
                .route_refreshes
                .fetch_add(1, Ordering::Relaxed);
            let requests = &mut self.state.requests;
            match scope {
                Refresh::Interfaces(indexes) => {
                    for index in indexes {
                        let routes = requests.dump_interface_routes(family, index)?;
                        let snap = Arc::make_mut(&mut self.state.snapshot);
                        events.extend(snap.sync_interface_routes(family, index, routes));
                    }
                }
                _ => {
                    let routes = requests.dump_routes(family)?;
                    let snap = Arc::make_mut(&mut self.state.snapshot);
                    events.extend(snap.sync_routes(family, routes));
                }
            }
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
        let fresh = self.state.requests.dump_all()?;
        let events = diff(&self.state.snapshot, &fresh);
        tracing::info!(changes = events.len(), "resynced after socket overflow");
        self.state.snapshot = Arc::new(fresh);
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
            snapshot: &self.state.snapshot,
            first_seq: self.seq,
            time: SystemTime::now(),
            events,
            resynced,
        });
        self.state.seq = self.seq;
        self.state.run_extensions(events, false, resynced);
    }
}
