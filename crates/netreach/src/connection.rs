//! The connection monitor: is the path of a (local, remote) pair still usable, and if not,
//! why. netreach's answer to Qt's `QNetworkConnectionMonitor`.
//!
//! The rules and the bookkeeping for any number of targets are the core's
//! ([`netreach_core::reach::ConnectionTracker`], one per connection monitor inside the monitor's
//! machine). The monitor's thread does its IO: the kernel's own route lookups (`RTM_GETROUTE`,
//! sent in pipelined batches through the backend). This module is the handle: it adds and
//! removes targets, reads the published states, and turns the monitor's one stream into
//! reachability notifications.

use std::net::IpAddr;
#[cfg(not(unix))]
use std::net::{TcpStream, UdpSocket};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use netreach_core::machine::ReachId;
use netreach_core::reach::{InterfaceRef, LookupSource, Reachability, Target, TargetId};

#[cfg(target_os = "linux")]
mod oneshot;

use crate::driver::Command;
use crate::hub::{Interest, Owners, ReachView};
use crate::subscription::{Adapter, Got, Next, Reader};
use crate::{Error, Monitor, Notification};

/// How many changes a subscriber may leave unread before it is told it lagged.
const QUEUE: usize = 65_536;

/// One item of a [`ReachSubscription`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ReachNotification {
    /// The first item: every target's state when the subscription started (`None`: its first
    /// route lookup has not been answered yet; a `Changed` follows).
    Ready {
        /// When.
        time: SystemTime,
        /// Each target and its state.
        targets: Vec<(TargetId, Target, Option<Reachability>)>,
    },
    /// Reachability, its reason or its path changed. The first report of a new target has
    /// `old: None` and is the state found by the kernel's lookup, never an assumption.
    Changed {
        /// Sequence number in the monitor's one stream ([`Monitor::stream`]): increasing, and
        /// shared with model changes and every other derived change.
        seq: u64,
        /// The model change that caused it.
        cause_seq: u64,
        /// When the change was found.
        time: SystemTime,
        /// Which target.
        id: TargetId,
        /// The target.
        target: Target,
        /// Before (`None` for the first report).
        old: Option<Arc<Reachability>>,
        /// Now (one value shared by the targets that got the same verdict).
        new: Arc<Reachability>,
    },
    /// The subscriber fell behind and changes were dropped; read the current states with
    /// [`ConnectionMonitor::reachability`].
    Lagged {
        /// When.
        time: SystemTime,
    },
}

/// What the handles of one connection monitor share.
#[derive(Debug)]
struct ConnShared {
    /// Live [`ConnectionMonitor`] handles (watches hold one each): the last one to go detaches
    /// the tracker, which ends the subscriptions.
    handles: AtomicUsize,
    /// The next target id.
    next_target: AtomicU64,
    /// Targets watched.
    len: AtomicUsize,
}

/// Watches any number of connections over the one netlink subscription of a [`Monitor`].
///
/// Adding a target returns a [`Watch`]; dropping the watch removes the target. After a network
/// change only the targets the change can affect are looked up again.
///
/// # Examples
///
/// ```no_run
/// use std::net::TcpStream;
/// use netreach::{ConnectionMonitor, Monitor, ReachNotification};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let monitor = Monitor::new()?;
/// let connections = ConnectionMonitor::new(&monitor);
/// let stream = TcpStream::connect("198.18.0.1:443")?;
/// let watch = connections.watch_tcp(&stream)?;
/// let mut changes = connections.subscribe();
/// while let Some(n) = changes.recv() {
///     if let ReachNotification::Changed { id, new, .. } = n {
///         if id == watch.id() {
///             println!("{new}");
///         }
///     }
/// }
/// # Ok(()) }
/// ```
///
/// # Platform specific behavior
///
/// Route lookups carry neither a socket's firewall mark nor its owner's uid: policy rules that
/// select by `fwmark` or `uidrange` are judged for an unmarked packet of the monitor's own uid.
#[derive(Debug)]
pub struct ConnectionMonitor {
    monitor: Monitor,
    id: ReachId,
    shared: Arc<ConnShared>,
}

impl ConnectionMonitor {
    /// Starts a connection monitor on `monitor`'s thread.
    pub fn new(monitor: &Monitor) -> ConnectionMonitor {
        let id = ReachId(monitor.next_owner());
        monitor
            .hub()
            .with_state(|st| st.reaches.insert(id, ReachView::default()));
        let (done, attached) = std::sync::mpsc::sync_channel(1);
        monitor.send(Command::AttachReach { id, done });
        let _ = attached.recv();
        ConnectionMonitor {
            monitor: monitor.clone(),
            id,
            shared: Arc::new(ConnShared {
                handles: AtomicUsize::new(1),
                next_target: AtomicU64::new(0),
                len: AtomicUsize::new(0),
            }),
        }
    }

    /// Checks a (local, remote) pair against the current state. See
    /// [`Target::new`] for what is rejected.
    pub fn target(
        &self,
        local: IpAddr,
        remote: IpAddr,
        interface: Option<InterfaceRef>,
    ) -> Result<Target, Error> {
        Ok(Target::new(
            local,
            remote,
            interface,
            &self.monitor.snapshot(),
        )?)
    }

    /// A target to `remote` from the source address the kernel would choose now (out of
    /// `interface`, when given), as `ip route get REMOTE [oif NAME]` shows it: one plain
    /// `RTM_GETROUTE` without a source, from the caller's thread.
    ///
    /// Fails with [`Error::InvalidTarget`] for a remote no source would make valid (unspecified,
    /// multicast, broadcast) or an unknown interface, and with [`Error::NoSource`] when the
    /// kernel has no route to the remote now.
    pub fn target_for(
        &self,
        remote: IpAddr,
        interface: Option<InterfaceRef>,
    ) -> Result<Target, Error> {
        #[cfg(target_os = "linux")]
        {
            let mut sock = self.socket()?;
            oneshot::source_target(&mut sock, &self.monitor.snapshot(), remote, interface)
        }
        #[cfg(windows)]
        {
            crate::sys::imp::lookup::source_target(&self.monitor.snapshot(), remote, interface)
        }
        #[cfg(not(any(target_os = "linux", windows)))]
        {
            let _ = (remote, interface);
            Err(Error::Unsupported {
                what: "route lookups",
            })
        }
    }

    /// One-shot: is `target` reachable now, and by which path? One route lookup from the
    /// caller's thread, judged by the same rules as watched targets.
    pub fn check(&self, target: &Target) -> Result<Reachability, Error> {
        self.check_with_source(target).map(|(state, _)| state)
    }

    /// [`ConnectionMonitor::check`], and where the route came from: the system's own lookup
    /// ([`LookupSource::System`]), or the longest-prefix match over the model's routes where the
    /// system cannot look routes up ([`LookupSource::Model`]).
    ///
    /// # Platform specific behavior
    ///
    /// Linux always answers with `RTM_GETROUTE` (`System`). Windows answers with
    /// `GetBestRoute2`, and where that fails or is a stub (under Wine) with the model's match
    /// (`docs/windows.md`).
    pub fn check_with_source(
        &self,
        target: &Target,
    ) -> Result<(Reachability, LookupSource), Error> {
        #[cfg(target_os = "linux")]
        {
            let mut sock = self.socket()?;
            let state = oneshot::check(&mut sock, target, &self.monitor.snapshot())?;
            Ok((state, LookupSource::System))
        }
        #[cfg(windows)]
        {
            Ok(crate::sys::imp::lookup::check(
                target,
                &self.monitor.snapshot(),
            ))
        }
        #[cfg(not(any(target_os = "linux", windows)))]
        {
            let _ = target;
            Err(Error::Unsupported {
                what: "route lookups",
            })
        }
    }

    /// One-shot: can `remote` be reached from here now, and by which path? Like GLib's
    /// `g_network_monitor_can_reach`. The source is the one the kernel would choose
    /// ([`ConnectionMonitor::target_for`]); with no route at all, the answer is the reason.
    pub fn can_reach(&self, remote: IpAddr) -> Result<Reachability, Error> {
        match self.target_for(remote, None) {
            Ok(target) => self.check(&target),
            Err(Error::NoSource { reason, .. }) => Ok(Reachability::Unreachable(reason)),
            Err(e) => Err(e),
        }
    }

    /// Starts watching a target. Its first report comes once the kernel answered its route
    /// lookup; [`Watch::wait_first`] waits for it.
    pub fn watch(&self, target: Target) -> Watch {
        let id = TargetId::new(self.shared.next_target.fetch_add(1, Ordering::Relaxed));
        let owner = self.id;
        // Into the published view first, so that a subscription made from now on lists it.
        self.monitor.hub().with_state(|st| {
            if let Some(v) = st.reaches.get_mut(&owner) {
                v.targets.insert(id, (target.clone(), None));
            }
        });
        self.shared.len.fetch_add(1, Ordering::Relaxed);
        self.monitor.send(Command::AddTarget { owner, id, target });
        Watch {
            id,
            conn: self.clone(),
        }
    }

    /// Watches a (local, remote) pair, checked as by [`ConnectionMonitor::target`].
    pub fn watch_pair(
        &self,
        local: IpAddr,
        remote: IpAddr,
        interface: Option<InterfaceRef>,
    ) -> Result<Watch, Error> {
        Ok(self.watch(self.target(local, remote, interface)?))
    }

    /// Watches the path of a connected TCP stream (its local and peer addresses): any
    /// connected socket, from std, tokio, async-std, smol or a raw descriptor you own, since
    /// it only needs the descriptor to ask the kernel for both addresses.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let monitor = netreach::Monitor::new()?;
    /// let connections = netreach::ConnectionMonitor::new(&monitor);
    /// let stream = std::net::TcpStream::connect("198.18.0.1:443")?;
    /// let watch = connections.watch_tcp(&stream)?;
    /// # let _ = watch; Ok(()) }
    /// ```
    #[cfg(unix)]
    pub fn watch_tcp<S: std::os::fd::AsFd>(&self, socket: &S) -> Result<Watch, Error> {
        self.watch_fd(socket.as_fd())
    }

    /// Watches the path of a connected UDP socket (any connected socket; see
    /// [`ConnectionMonitor::watch_tcp`]).
    #[cfg(unix)]
    pub fn watch_udp<S: std::os::fd::AsFd>(&self, socket: &S) -> Result<Watch, Error> {
        self.watch_fd(socket.as_fd())
    }

    /// Watches the path of a connected socket given by its descriptor.
    #[cfg(unix)]
    pub fn watch_socket<S: std::os::fd::AsFd>(&self, socket: &S) -> Result<Watch, Error> {
        self.watch_fd(socket.as_fd())
    }

    #[cfg(unix)]
    fn watch_fd(&self, fd: std::os::fd::BorrowedFd<'_>) -> Result<Watch, Error> {
        let sock = socket2::SockRef::from(&fd);
        let addr = |a: std::io::Result<socket2::SockAddr>| {
            a.and_then(|a| {
                a.as_socket().ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "not an IPv4 or IPv6 socket",
                    )
                })
            })
        };
        self.watch_socket_addrs(addr(sock.local_addr()), addr(sock.peer_addr()))
    }

    /// Watches the path of a connected TCP stream (its local and peer addresses).
    #[cfg(not(unix))]
    pub fn watch_tcp(&self, stream: &TcpStream) -> Result<Watch, Error> {
        let (local, peer) = (stream.local_addr(), stream.peer_addr());
        self.watch_socket_addrs(local, peer)
    }

    /// Watches the path of a connected UDP socket.
    #[cfg(not(unix))]
    pub fn watch_udp(&self, socket: &UdpSocket) -> Result<Watch, Error> {
        let (local, peer) = (socket.local_addr(), socket.peer_addr());
        self.watch_socket_addrs(local, peer)
    }

    fn watch_socket_addrs(
        &self,
        local: std::io::Result<std::net::SocketAddr>,
        peer: std::io::Result<std::net::SocketAddr>,
    ) -> Result<Watch, Error> {
        let local = local.map_err(|e| Error::socket("getsockname", e))?;
        let peer = peer.map_err(|e| Error::socket("getpeername (is it connected?)", e))?;
        let target = Target::from_socket_addrs(local, peer, None, &self.monitor.snapshot())?;
        Ok(self.watch(target))
    }

    /// The current state of a target; `None` before its first lookup was answered or when it
    /// is not watched.
    pub fn reachability(&self, id: TargetId) -> Option<Reachability> {
        self.monitor.hub().with_state(|st| {
            st.reaches
                .get(&self.id)
                .and_then(|v| v.targets.get(&id))
                .and_then(|(_, r)| r.as_deref().cloned())
        })
    }

    /// How many targets are watched.
    pub fn len(&self) -> usize {
        self.shared.len.load(Ordering::Relaxed)
    }

    /// True when no target is watched.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many route lookups the monitor's thread has sent for this connection monitor: a
    /// measure of the work changes cost (one-shot checks are not counted).
    pub fn route_lookups(&self) -> u64 {
        self.monitor
            .hub()
            .with_state(|st| st.reaches.get(&self.id).map_or(0, |v| v.lookups))
    }

    /// Changes of every target: first the current states, then each change.
    pub fn subscribe(&self) -> ReachSubscription {
        let owner = self.id;
        let interest = Interest {
            model: false,
            statuses: Owners::None,
            reaches: Owners::One(owner.0),
        };
        // Under the hub's lock, which the thread holds while it publishes: each change is
        // either in the states below or in this subscription's queue, never both or neither.
        let (reader, targets) = Reader::new(self.monitor.hub(), interest, QUEUE, |st| {
            // In target order (the map's).
            st.reaches
                .get(&owner)
                .map(|v| {
                    v.targets
                        .iter()
                        .map(|(id, (t, r))| (*id, t.clone(), r.as_deref().cloned()))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        });
        ReachSubscription {
            reader,
            reach: ReachAdapter {
                ready: Some(ReachNotification::Ready {
                    time: SystemTime::now(),
                    targets,
                }),
            },
        }
    }

    /// A request socket of its own in the monitor's namespace, for one-shot lookups.
    #[cfg(target_os = "linux")]
    fn socket(&self) -> Result<crate::sys::imp::netlink::NlSocket, Error> {
        self.monitor
            .netns()
            .run(crate::sys::imp::netlink::NlSocket::requests)?
    }
}

impl Clone for ConnectionMonitor {
    fn clone(&self) -> ConnectionMonitor {
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        ConnectionMonitor {
            monitor: self.monitor.clone(),
            id: self.id,
            shared: self.shared.clone(),
        }
    }
}

impl Drop for ConnectionMonitor {
    fn drop(&mut self) {
        // The last handle: detach the tracker, which ends the subscriptions.
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.monitor.send(Command::DetachReach(self.id));
        }
    }
}

/// A watched target; dropping it stops watching.
#[derive(Debug)]
pub struct Watch {
    id: TargetId,
    conn: ConnectionMonitor,
}

impl Watch {
    /// The target's id, as found in [`ReachNotification::Changed`].
    pub fn id(&self) -> TargetId {
        self.id
    }

    /// The current state; `None` until the first lookup was answered.
    pub fn reachability(&self) -> Option<Reachability> {
        self.conn.reachability(self.id)
    }

    /// Waits for the first report (the state found by the kernel's lookup).
    pub fn wait_first(&self, timeout: Duration) -> Option<Reachability> {
        let end = Instant::now().checked_add(timeout);
        let mut sub = self.conn.subscribe();
        loop {
            if let Some(r) = self.reachability() {
                return Some(r);
            }
            let left = end.map(|e| e.saturating_duration_since(Instant::now()));
            match left {
                Some(l) if l.is_zero() => return None,
                Some(l) => sub.recv_timeout(l)?,
                None => sub.recv()?,
            };
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let (owner, id) = (self.conn.id, self.id);
        self.conn.monitor.hub().with_state(|st| {
            if let Some(v) = st.reaches.get_mut(&owner) {
                v.targets.remove(&id);
            }
        });
        self.conn.shared.len.fetch_sub(1, Ordering::Relaxed);
        self.conn.monitor.send(Command::RemoveTarget { owner, id });
    }
}

/// Reachability changes from a [`ConnectionMonitor`], for blocking code and any async runtime.
#[derive(Debug)]
pub struct ReachSubscription {
    reader: Reader,
    reach: ReachAdapter,
}

/// Reachability items from the hub's, for [`ReachSubscription`].
#[derive(Debug)]
struct ReachAdapter {
    ready: Option<ReachNotification>,
}

impl ReachSubscription {
    /// The next item, waiting as long as it takes; `None` when the monitor has stopped.
    pub fn recv(&mut self) -> Option<ReachNotification> {
        self.reader.next_until(&mut self.reach, None)
    }

    /// The next item, waiting at most `timeout`; `None` on timeout or when stopped.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<ReachNotification> {
        self.reader
            .next_until(&mut self.reach, Instant::now().checked_add(timeout))
    }

    /// The next item without waiting: `Ok(None)` when nothing is pending.
    pub fn try_recv(&mut self) -> Result<Option<ReachNotification>, Error> {
        self.reader.try_next(&mut self.reach)
    }

    /// The next item, as a future for any async runtime; `None` when the monitor has stopped.
    pub fn recv_async(&mut self) -> Next<'_, ReachSubscription> {
        Next::new(self)
    }
}

impl Adapter for ReachAdapter {
    type Item = ReachNotification;

    fn pending(&mut self) -> Option<ReachNotification> {
        self.ready.take()
    }

    fn accept(&mut self, got: Got) -> Option<ReachNotification> {
        match got {
            Got::Item(item) => match item.notification {
                Notification::Reachability {
                    seq,
                    cause_seq,
                    time,
                    id,
                    target,
                    old,
                    new,
                } => Some(ReachNotification::Changed {
                    seq,
                    cause_seq,
                    time,
                    id,
                    target,
                    old,
                    new,
                }),
                _ => None,
            },
            Got::Lagged { .. } => Some(ReachNotification::Lagged {
                time: SystemTime::now(),
            }),
            Got::Empty | Got::Closed => None,
        }
    }
}

impl futures_core::Stream for ReachSubscription {
    type Item = ReachNotification;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ReachNotification>> {
        let this = self.get_mut();
        this.reader.poll_next(&mut this.reach, cx)
    }
}

/// The target to `probe.remote` once the system answered the source lookup `probe` (see
/// `RouteQuery::for_source`) with `route`: from `chosen` (a source the system named apart from
/// the route), else the route's preferred source, else a usable address of its interface.
#[cfg(any(target_os = "linux", windows))]
pub(crate) fn target_from_source(
    snap: &netreach_core::Snapshot,
    probe: &netreach_core::reach::RouteQuery,
    route: &netreach_core::Route,
    chosen: Option<IpAddr>,
    interface: Option<InterfaceRef>,
) -> Result<Target, Error> {
    let family = probe.family();
    let local = chosen.or(route.prefsrc).or_else(|| {
        // No source selected (an unusual answer): a usable address of the output interface.
        route.interface.and_then(|i| {
            snap.addresses_of(i)
                .filter(|a| a.family() == family && a.is_usable())
                .min_by_key(|a| a.is_link_local())
                .map(|a| a.address)
        })
    });
    let Some(local) = local else {
        // No address of the family to send from.
        return Err(Error::NoSource {
            remote: probe.remote,
            reason: netreach_core::reach::Reason::LocalAddressRemoved,
        });
    };
    Ok(Target::new(local, probe.remote, interface, snap)?)
}
