//! The status monitor: connectivity per IP family, online and offline changes, waiting until
//! online. netreach's answer to Qt's `QNetworkStatusMonitor` / `QNetworkInformation`.
//!
//! It runs on the [`Monitor`]'s thread, fed with each batch of model changes, so it shares the
//! monitor's socket and costs no thread of its own. The rules are the core's
//! ([`netreach_core::connectivity`]); this module feeds them and hands their changes out.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use netreach_core::connectivity::{
    Connectivity, ConnectivityChange, ConnectivityConfig, StatusTracker, medium_hint_from_sysfs,
};
use netreach_core::{Event, Snapshot};

use crate::channel::{Broadcast, Receiver};
use crate::driver::{Cx, Extension, Poker};
use crate::subscription::lock;
use crate::verify::{ProbeConfig, Verification, VerificationChange, Verified, Verifier};
use crate::{Monitor, Netns};

/// How many status changes a subscriber may leave unread before it is told it lagged.
const QUEUE: usize = 256;

/// One item of a [`StatusSubscription`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StatusNotification {
    /// The first item: connectivity when the subscription started.
    Ready {
        /// When.
        time: SystemTime,
        /// The connectivity.
        connectivity: Connectivity,
    },
    /// A real change, never a duplicate, with its cause.
    Changed {
        /// Sequence number, increasing by one per change of this status monitor.
        seq: u64,
        /// The sequence number of the last model change ([`crate::Notification`]) this one
        /// accounts for: a change is caused by model changes up to this one.
        model_seq: u64,
        /// When the monitor learnt of it.
        time: SystemTime,
        /// What changed and why.
        change: ConnectivityChange,
        /// Connectivity after the change.
        connectivity: Connectivity,
    },
    /// A probe verdict changed (only with probing enabled: [`StatusMonitor::with_probe`]).
    Verified {
        /// Sequence number, shared with `Changed`.
        seq: u64,
        /// The sequence number of the last model change when the verdict came.
        model_seq: u64,
        /// When the verdict came.
        time: SystemTime,
        /// What changed.
        change: VerificationChange,
        /// The summary after it.
        verification: Verification,
        /// Connectivity now.
        connectivity: Connectivity,
    },
    /// The subscriber fell behind and changes were dropped; this is the current state.
    Lagged {
        /// When.
        time: SystemTime,
        /// The connectivity now.
        connectivity: Connectivity,
    },
}

impl StatusNotification {
    /// Connectivity after this item.
    pub fn connectivity(&self) -> &Connectivity {
        match self {
            StatusNotification::Ready { connectivity, .. }
            | StatusNotification::Changed { connectivity, .. }
            | StatusNotification::Verified { connectivity, .. }
            | StatusNotification::Lagged { connectivity, .. } => connectivity,
        }
    }
}

/// Shared between the handles and the extension on the monitor's thread.
#[derive(Debug)]
struct StatusShared {
    /// Live [`StatusMonitor`] handles. Counted apart from the `Arc`, which subscriptions and
    /// the extension hold too: the extension detaches when the last handle goes, and that ends
    /// the subscriptions.
    handles: AtomicUsize,
    current: std::sync::Mutex<(Connectivity, u64)>,
    verification: std::sync::Mutex<Verification>,
    changes: Arc<Broadcast<StatusNotification>>,
}

/// Connectivity of a network namespace, kept current on the [`Monitor`]'s thread.
///
/// # Examples
///
/// ```no_run
/// use netreach::{Monitor, StatusMonitor};
/// use netreach::core::connectivity::ConnectivityConfig;
///
/// # fn main() -> Result<(), netreach::Error> {
/// let monitor = Monitor::new()?;
/// let status = StatusMonitor::new(&monitor, ConnectivityConfig::default());
/// println!("online: {}", status.is_online());
/// let mut changes = status.subscribe();
/// while let Some(n) = changes.recv() {
///     println!("{:?}", n.connectivity().overall);
/// }
/// # Ok(()) }
/// ```
///
/// # Platform specific behavior
///
/// The transport medium of an interface comes from its link kind and, in the caller's own
/// namespace only, from sysfs (`/sys/class/net/NAME`): sysfs shows the namespace that mounted
/// it, so for another namespace only the link kind is used.
#[derive(Debug)]
pub struct StatusMonitor {
    monitor: Monitor,
    shared: Arc<StatusShared>,
}

impl StatusMonitor {
    /// Starts computing connectivity on `monitor`'s thread with these rules. Nothing is
    /// probed; see [`StatusMonitor::with_probe`].
    pub fn new(monitor: &Monitor, config: ConnectivityConfig) -> StatusMonitor {
        StatusMonitor::start(monitor, config, None)
    }

    /// Like [`StatusMonitor::new`], and also verifies internet access with HTTP probes on
    /// every interface and family that has a usable default route: after each connectivity
    /// change, then on the probe schedule. Each verdict change is a
    /// [`StatusNotification::Verified`].
    pub fn with_probe(
        monitor: &Monitor,
        config: ConnectivityConfig,
        probe: ProbeConfig,
    ) -> StatusMonitor {
        StatusMonitor::start(monitor, config, Some(probe))
    }

    fn start(
        monitor: &Monitor,
        config: ConnectivityConfig,
        probe: Option<ProbeConfig>,
    ) -> StatusMonitor {
        let sysfs = *monitor.netns() == Netns::Current;
        let snap = monitor.snapshot();
        let mut config = config;
        let mut hinted = BTreeSet::new();
        if sysfs {
            for i in snap.interfaces() {
                config.set_medium_hint(i.index, sysfs_hint(&i.name));
                hinted.insert(i.index);
            }
        }
        // The state now is the baseline; the extension reports what changes from here.
        let tracker = StatusTracker::from_snapshot(&snap, config);
        let shared = Arc::new(StatusShared {
            handles: AtomicUsize::new(1),
            current: std::sync::Mutex::new((tracker.status().clone(), 0)),
            verification: std::sync::Mutex::new(Verification::default()),
            changes: Arc::new(Broadcast::new()),
        });
        let ext = StatusExtension {
            tracker,
            shared: shared.clone(),
            sysfs,
            hinted,
            verifier: probe.map(|p| Verifier::new(p, monitor.netns().clone())),
        };
        monitor.exec(move |state| state.attach(Box::new(ext)));
        StatusMonitor {
            monitor: monitor.clone(),
            shared,
        }
    }

    /// The current connectivity.
    pub fn connectivity(&self) -> Connectivity {
        lock(&self.shared.current).0.clone()
    }

    /// What the probes say (all `unverified` when probing is off).
    pub fn verification(&self) -> Verification {
        lock(&self.shared.verification).clone()
    }

    /// Online: the overall level is `internet`.
    pub fn is_online(&self) -> bool {
        self.connectivity().is_online()
    }

    /// The model this status is computed from.
    pub fn monitor(&self) -> &Monitor {
        &self.monitor
    }

    /// A stream of connectivity changes: first the current state, then each real change.
    pub fn subscribe(&self) -> StatusSubscription {
        let current = self.connectivity();
        let shared = self.shared.clone();
        let rx = self.shared.changes.subscribe(
            QUEUE,
            StatusNotification::Ready {
                time: SystemTime::now(),
                connectivity: current,
            },
            move || StatusNotification::Lagged {
                time: SystemTime::now(),
                connectivity: lock(&shared.current).0.clone(),
            },
        );
        StatusSubscription {
            rx,
            shared: self.shared.clone(),
        }
    }

    /// Waits until the probes verify full internet access (needs [`StatusMonitor::with_probe`]),
    /// or `timeout` passes. Returns the verification seen last.
    pub fn wait_verified(&self, timeout: Option<Duration>) -> Result<Verification, Verification> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut sub = self.subscribe();
        loop {
            let v = self.verification();
            if v.internet == Verified::Full {
                return Ok(v);
            }
            let next = match deadline {
                None => sub.recv(),
                Some(d) => sub.recv_timeout(d.saturating_duration_since(Instant::now())),
            };
            if next.is_none() {
                return Err(self.verification());
            }
        }
    }

    /// Waits until `condition` holds (at once if it already does), or `timeout` passes.
    /// Sleeps until the kernel reports a change; no polling. Returns the connectivity that
    /// satisfied the condition, or the last one seen on timeout.
    pub fn wait_until(
        &self,
        timeout: Option<Duration>,
        mut condition: impl FnMut(&Connectivity) -> bool,
    ) -> Result<Connectivity, Connectivity> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut sub = self.subscribe();
        let mut last = self.connectivity();
        loop {
            if condition(&last) {
                return Ok(last);
            }
            let next = match deadline {
                None => sub.recv(),
                Some(d) => sub.recv_timeout(d.saturating_duration_since(Instant::now())),
            };
            match next {
                Some(n) => last = n.connectivity().clone(),
                None => return Err(last),
            }
        }
    }
}

impl Clone for StatusMonitor {
    fn clone(&self) -> StatusMonitor {
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        StatusMonitor {
            monitor: self.monitor.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl Drop for StatusMonitor {
    fn drop(&mut self) {
        // The last handle: let the thread drop the extension, which ends the subscriptions.
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.monitor.poke();
        }
    }
}

/// Reads what sysfs says about the medium of interface `name` (caller's namespace only).
fn sysfs_hint(name: &str) -> Option<netreach_core::connectivity::Medium> {
    if name.contains('/') || name.starts_with('.') {
        return None;
    }
    let dir = std::path::Path::new("/sys/class/net").join(name);
    let uevent = std::fs::read_to_string(dir.join("uevent")).unwrap_or_default();
    let wireless = dir.join("wireless").exists() || dir.join("phy80211").exists();
    medium_hint_from_sysfs(&uevent, wireless)
}

/// The status rules, running on the monitor's thread.
struct StatusExtension {
    tracker: StatusTracker,
    shared: Arc<StatusShared>,
    sysfs: bool,
    hinted: BTreeSet<u32>,
    verifier: Option<Verifier>,
}

impl StatusExtension {
    /// Takes in probe verdicts and starts the probes that are due; publishes what changed.
    fn verify(
        &mut self,
        snapshot: &Snapshot,
        model_seq: u64,
        events: Option<&[Event]>,
        poker: &Poker,
    ) {
        let Some(v) = &mut self.verifier else {
            return;
        };
        let now = Instant::now();
        let mut changes = Vec::new();
        if let Some(events) = events {
            v.handle_update(snapshot, self.tracker.config(), events, now, &mut changes);
        }
        v.collect(now, &mut changes);
        v.start_due(snapshot, now, poker);
        if changes.is_empty() {
            return;
        }
        let verification = v.summary();
        *lock(&self.shared.verification) = verification.clone();
        let time = SystemTime::now();
        for change in changes {
            let (connectivity, seq) = {
                let mut cur = lock(&self.shared.current);
                cur.1 += 1;
                (cur.0.clone(), cur.1)
            };
            tracing::info!(%change, "probe verdict changed");
            self.shared.changes.send(StatusNotification::Verified {
                seq,
                model_seq,
                time,
                change,
                verification: verification.clone(),
                connectivity,
            });
        }
    }

    fn update(&mut self, snapshot: &Snapshot, model_seq: u64, events: &[Event]) {
        if self.sysfs {
            for e in events {
                if let Event::InterfaceAdded(i) = e {
                    if self.hinted.insert(i.index) {
                        self.tracker.set_medium_hint(i.index, sysfs_hint(&i.name));
                    }
                }
            }
            self.hinted.retain(|i| snapshot.interface(*i).is_some());
        }
        self.tracker.handle_update(snapshot, events);
        let time = SystemTime::now();
        while let Some(change) = self.tracker.poll_change() {
            let connectivity = self.tracker.status().clone();
            let seq = {
                let mut cur = lock(&self.shared.current);
                cur.1 += 1;
                cur.0 = connectivity.clone();
                cur.1
            };
            tracing::info!(%change, "connectivity changed");
            self.shared.changes.send(StatusNotification::Changed {
                seq,
                model_seq,
                time,
                change,
                connectivity,
            });
        }
        // The tracker's status may have changed in ways no change reports (none today); keep
        // the shared copy exact.
        lock(&self.shared.current).0 = self.tracker.status().clone();
    }
}

impl Extension for StatusExtension {
    fn on_batch(&mut self, cx: &mut Cx<'_>, events: &[Event]) {
        self.update(cx.snapshot, cx.seq, events);
        self.verify(cx.snapshot, cx.seq, Some(events), cx.poker);
    }

    fn on_poke(&mut self, cx: &mut Cx<'_>) {
        self.verify(cx.snapshot, cx.seq, None, cx.poker);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.verifier.as_ref().and_then(Verifier::poll_timeout)
    }

    fn on_timeout(&mut self, cx: &mut Cx<'_>, _now: Instant) {
        self.verify(cx.snapshot, cx.seq, None, cx.poker);
    }

    fn is_detached(&self) -> bool {
        self.shared.handles.load(Ordering::Acquire) == 0
    }
}

impl Drop for StatusExtension {
    fn drop(&mut self) {
        self.shared.changes.close();
    }
}

/// Connectivity changes from a [`StatusMonitor`], for blocking code and any async runtime.
///
/// The first item is [`StatusNotification::Ready`]. Dropping it unsubscribes. It ends when the
/// monitor's thread stops.
#[derive(Debug)]
pub struct StatusSubscription {
    rx: Receiver<StatusNotification>,
    shared: Arc<StatusShared>,
}

impl StatusSubscription {
    /// The next item, waiting as long as it takes; `None` when the monitor has stopped.
    pub fn recv(&mut self) -> Option<StatusNotification> {
        self.rx.recv()
    }

    /// The next item, waiting at most `timeout`; `None` on timeout or when stopped.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<StatusNotification> {
        self.rx.recv_timeout(timeout)
    }

    /// The next item without waiting: `Ok(None)` when nothing is pending.
    pub fn try_recv(&mut self) -> Result<Option<StatusNotification>, crate::Error> {
        self.rx.try_recv()
    }

    /// The connectivity now.
    pub fn current(&self) -> Connectivity {
        lock(&self.shared.current).0.clone()
    }
}

impl futures_core::Stream for StatusSubscription {
    type Item = StatusNotification;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<StatusNotification>> {
        self.rx.poll_next_item(cx)
    }
}
