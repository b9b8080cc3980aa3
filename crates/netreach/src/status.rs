//! The status monitor: connectivity per IP family, online and offline changes, waiting until
//! online. netreach's answer to Qt's `QNetworkStatusMonitor` / `QNetworkInformation`.
//!
//! It is a part of the [`Monitor`]'s machine ([`netreach_core::machine`]), fed on the monitor's
//! thread, so it shares the monitor's socket and costs no thread of its own. This module is the
//! handle: it attaches the rules, reads the published state, and turns the monitor's one stream
//! into status notifications.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use netreach_core::connectivity::{Connectivity, ConnectivityChange, ConnectivityConfig};
use netreach_core::machine::StatusId;

use crate::driver::Command;
use crate::hub::Hub;
use crate::hub::{Interest, Owners};
use crate::subscription::{Adapter, Got, Next, Reader};
use crate::verify::{ProbeConfig, Verification, VerificationChange, Verified};
use crate::{Monitor, Notification};

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
        /// Sequence number in the monitor's one stream ([`Monitor::stream`]): increasing, and
        /// shared with model changes and every other derived change.
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
    id: StatusId,
    /// Live handles: the last one to go detaches the rules (and ends the subscriptions).
    handles: Arc<AtomicUsize>,
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
        let id = StatusId(monitor.next_owner());
        // The state now is the baseline; changes from here are reported. Wait until the
        // thread has attached the rules, so that `connectivity()` is right at once. (If the
        // thread has stopped, the command is dropped and the wait ends.)
        let (done, attached) = std::sync::mpsc::sync_channel(1);
        monitor.send(Command::AttachStatus {
            id,
            config,
            probe,
            done,
        });
        let _ = attached.recv();
        StatusMonitor {
            monitor: monitor.clone(),
            id,
            handles: Arc::new(AtomicUsize::new(1)),
        }
    }

    /// The current connectivity.
    pub fn connectivity(&self) -> Connectivity {
        self.monitor
            .hub()
            .with_state(|st| st.statuses.get(&self.id).map(|v| v.connectivity.clone()))
            .unwrap_or_default()
    }

    /// What the probes say (all `unverified` when probing is off).
    pub fn verification(&self) -> Verification {
        self.monitor
            .hub()
            .with_state(|st| st.statuses.get(&self.id).map(|v| v.verification.clone()))
            .unwrap_or_default()
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
        let id = self.id;
        let interest = Interest {
            model: false,
            statuses: Owners::One(id.0),
            reaches: Owners::None,
        };
        let (reader, connectivity) = Reader::new(self.monitor.hub(), interest, QUEUE, |st| {
            st.statuses
                .get(&id)
                .map(|v| v.connectivity.clone())
                .unwrap_or_default()
        });
        StatusSubscription {
            status: StatusAdapter {
                hub: reader.hub().clone(),
                id,
                ready: Some(StatusNotification::Ready {
                    time: SystemTime::now(),
                    connectivity,
                }),
            },
            reader,
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

impl StatusMonitor {
    /// Waits, in any async runtime, until `condition` holds (at once if it already does);
    /// `None` when the monitor stopped first. Time it out with your runtime's timer.
    ///
    /// ```no_run
    /// # async fn f(status: netreach::StatusMonitor) {
    /// let online = status.wait_until_async(|c| c.is_online()).await;
    /// # let _ = online; }
    /// ```
    pub async fn wait_until_async(
        &self,
        mut condition: impl FnMut(&Connectivity) -> bool,
    ) -> Option<Connectivity> {
        let mut sub = self.subscribe();
        let mut last = self.connectivity();
        loop {
            if condition(&last) {
                return Some(last);
            }
            last = sub.recv_async().await?.connectivity().clone();
        }
    }

    /// Waits, in any async runtime, until the overall level is `internet`; `None` when the
    /// monitor stopped first.
    pub async fn wait_online(&self) -> Option<Connectivity> {
        self.wait_until_async(Connectivity::is_online).await
    }
}

impl Clone for StatusMonitor {
    fn clone(&self) -> StatusMonitor {
        self.handles.fetch_add(1, Ordering::Relaxed);
        StatusMonitor {
            monitor: self.monitor.clone(),
            id: self.id,
            handles: self.handles.clone(),
        }
    }
}

impl Drop for StatusMonitor {
    fn drop(&mut self) {
        // The last handle: detach the rules, which ends the subscriptions.
        if self.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.monitor.send(Command::DetachStatus(self.id));
        }
    }
}

/// Connectivity changes from a [`StatusMonitor`], for blocking code and any async runtime.
///
/// The first item is [`StatusNotification::Ready`]. Dropping it unsubscribes. It ends when the
/// last handle of its status monitor is dropped, or the monitor's thread stops.
#[derive(Debug)]
pub struct StatusSubscription {
    reader: Reader,
    status: StatusAdapter,
}

/// Status items from the hub's, for [`StatusSubscription`].
#[derive(Debug)]
struct StatusAdapter {
    hub: Arc<Hub>,
    id: StatusId,
    ready: Option<StatusNotification>,
}

impl StatusAdapter {
    fn current(&self) -> Connectivity {
        self.hub
            .with_state(|st| st.statuses.get(&self.id).map(|v| v.connectivity.clone()))
            .unwrap_or_default()
    }
}

impl StatusSubscription {
    /// The next item, waiting as long as it takes; `None` when the monitor has stopped.
    pub fn recv(&mut self) -> Option<StatusNotification> {
        self.reader.next_until(&mut self.status, None)
    }

    /// The next item, waiting at most `timeout`; `None` on timeout or when stopped.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<StatusNotification> {
        self.reader
            .next_until(&mut self.status, Instant::now().checked_add(timeout))
    }

    /// The next item without waiting: `Ok(None)` when nothing is pending.
    pub fn try_recv(&mut self) -> Result<Option<StatusNotification>, crate::Error> {
        self.reader.try_next(&mut self.status)
    }

    /// The next item, as a future for any async runtime; `None` when the monitor has stopped.
    pub fn recv_async(&mut self) -> Next<'_, StatusSubscription> {
        Next::new(self)
    }

    /// The connectivity now.
    pub fn current(&self) -> Connectivity {
        self.status.current()
    }
}

impl Adapter for StatusAdapter {
    type Item = StatusNotification;

    fn pending(&mut self) -> Option<StatusNotification> {
        self.ready.take()
    }

    fn accept(&mut self, got: Got) -> Option<StatusNotification> {
        match got {
            Got::Item(item) => match item.notification {
                Notification::Connectivity {
                    seq,
                    cause_seq,
                    time,
                    change,
                    connectivity,
                } => Some(StatusNotification::Changed {
                    seq,
                    model_seq: cause_seq,
                    time,
                    change: *change,
                    connectivity,
                }),
                Notification::Verification {
                    seq,
                    cause_seq,
                    time,
                    change,
                    verification,
                    connectivity,
                } => Some(StatusNotification::Verified {
                    seq,
                    model_seq: cause_seq,
                    time,
                    change: *change,
                    verification: *verification,
                    connectivity,
                }),
                _ => None,
            },
            Got::Lagged { .. } => Some(StatusNotification::Lagged {
                time: SystemTime::now(),
                connectivity: self.current(),
            }),
            Got::Empty | Got::Closed => None,
        }
    }
}

impl futures_core::Stream for StatusSubscription {
    type Item = StatusNotification;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<StatusNotification>> {
        let this = self.get_mut();
        this.reader.poll_next(&mut this.status, cx)
    }
}
