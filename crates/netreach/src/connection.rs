//! The connection monitor: is the path of a (local, remote) pair still usable, and if not,
//! why. netreach's answer to Qt's `QNetworkConnectionMonitor`.
//!
//! The rules and the bookkeeping for any number of targets are the core's
//! ([`netreach_core::reach::ConnectionTracker`]). This module runs the tracker on the
//! [`Monitor`]'s thread and does its IO: the kernel's own route lookups (`RTM_GETROUTE`, sent in
//! pipelined batches on the monitor's request socket), and handing the changes out.

use std::collections::HashMap;
use std::net::{IpAddr, TcpStream, UdpSocket};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use netreach_core::Event;
use netreach_core::reach::{
    Action, ConnectionTracker, InterfaceRef, LookupAnswer, LookupId, Reachability, RouteQuery,
    Target, TargetId, evaluate, parse_route_lookup_answer, route_lookup_request,
};

mod oneshot;

use crate::channel::{Broadcast, Receiver};
use crate::driver::{Cx, Extension};
use crate::subscription::lock;
use crate::sys::imp::netlink::{NlSocket, RECV_BUF};
use crate::{Error, Monitor};

/// Lookups sent before their answers are read: the answers must fit the socket's buffer.
const PIPELINE: usize = 256;
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
        /// Sequence number, increasing by one per change of this connection monitor.
        seq: u64,
        /// When the change was found.
        time: SystemTime,
        /// Which target.
        id: TargetId,
        /// The target.
        target: Target,
        /// Before (`None` for the first report).
        old: Option<Reachability>,
        /// Now.
        new: Reachability,
    },
    /// The subscriber fell behind and changes were dropped; read the current states with
    /// [`ConnectionMonitor::reachability`].
    Lagged {
        /// When.
        time: SystemTime,
    },
}

#[derive(Debug)]
struct ConnShared {
    tracker: Mutex<ConnectionTracker>,
    changes: Arc<Broadcast<ReachNotification>>,
    /// The last change's sequence number.
    seq: AtomicU64,
    /// Route lookups sent by the monitor's thread.
    lookups: AtomicU64,
    /// Live [`ConnectionMonitor`] handles (watches hold one each). Counted apart from the
    /// `Arc`, which the last handle still holds while it pokes the thread to drop the extension.
    handles: AtomicUsize,
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
    shared: Arc<ConnShared>,
}

impl ConnectionMonitor {
    /// Starts a connection monitor on `monitor`'s thread.
    pub fn new(monitor: &Monitor) -> ConnectionMonitor {
        let shared = Arc::new(ConnShared {
            tracker: Mutex::new(ConnectionTracker::new()),
            changes: Arc::new(Broadcast::new()),
            seq: AtomicU64::new(0),
            lookups: AtomicU64::new(0),
            handles: AtomicUsize::new(1),
        });
        let ext = ConnExtension {
            shared: shared.clone(),
            inflight: HashMap::new(),
            buf: vec![0; RECV_BUF],
        };
        monitor.exec(move |state| {
            // Room for a pipeline of answers.
            state.requests.set_rcvbuf(4 << 20);
            state.attach(Box::new(ext));
        });
        ConnectionMonitor {
            monitor: monitor.clone(),
            shared,
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
        let mut sock = self.socket()?;
        self.target_on(&mut sock, remote, interface)
    }

    /// One-shot: is `target` reachable now, and by which path? One route lookup from the
    /// caller's thread, judged by the same rules as watched targets.
    pub fn check(&self, target: &Target) -> Result<Reachability, Error> {
        let mut sock = self.socket()?;
        self.check_on(&mut sock, target)
    }

    /// One-shot: can `remote` be reached from here now, and by which path? Like GLib's
    /// `g_network_monitor_can_reach`. The source is the one the kernel would choose
    /// ([`ConnectionMonitor::target_for`]); with no route at all, the answer is the reason.
    pub fn can_reach(&self, remote: IpAddr) -> Result<Reachability, Error> {
        let mut sock = self.socket()?;
        match self.target_on(&mut sock, remote, None) {
            Ok(target) => self.check_on(&mut sock, &target),
            Err(Error::NoSource { reason, .. }) => Ok(Reachability::Unreachable(reason)),
            Err(e) => Err(e),
        }
    }

    /// Starts watching a target. Its first report comes once the kernel answered its route
    /// lookup; [`Watch::wait_first`] waits for it.
    pub fn watch(&self, target: Target) -> Watch {
        let id = lock(&self.shared.tracker).add(target);
        self.monitor.poke();
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

    /// Watches the path of a connected TCP stream (its local and peer addresses).
    pub fn watch_tcp(&self, stream: &TcpStream) -> Result<Watch, Error> {
        let (local, peer) = (stream.local_addr(), stream.peer_addr());
        self.watch_socket_addrs(local, peer)
    }

    /// Watches the path of a connected UDP socket.
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
        lock(&self.shared.tracker).reachability(id).cloned()
    }

    /// How many targets are watched.
    pub fn len(&self) -> usize {
        lock(&self.shared.tracker).len()
    }

    /// True when no target is watched.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many route lookups the monitor's thread has sent for this connection monitor: a
    /// measure of the work changes cost (one-shot checks are not counted).
    pub fn route_lookups(&self) -> u64 {
        self.shared.lookups.load(Ordering::Relaxed)
    }

    /// Changes of every target: first the current states, then each change.
    pub fn subscribe(&self) -> ReachSubscription {
        // Under the tracker's lock, which the thread holds while it hands changes out: each
        // change is either in the states below or sent to this subscription, never both or
        // neither.
        let t = lock(&self.shared.tracker);
        let targets = t
            .targets()
            .map(|(id, target)| (id, target.clone(), t.reachability(id).cloned()))
            .collect();
        let rx = self.shared.changes.subscribe(
            QUEUE,
            ReachNotification::Ready {
                time: SystemTime::now(),
                targets,
            },
            || ReachNotification::Lagged {
                time: SystemTime::now(),
            },
        );
        drop(t);
        ReachSubscription { rx }
    }

    /// A request socket of its own in the monitor's namespace, for one-shot lookups.
    fn socket(&self) -> Result<NlSocket, Error> {
        self.monitor.netns().run(NlSocket::requests)?
    }

    fn target_on(
        &self,
        sock: &mut NlSocket,
        remote: IpAddr,
        interface: Option<InterfaceRef>,
    ) -> Result<Target, Error> {
        oneshot::source_target(sock, &self.monitor.snapshot(), remote, interface)
    }

    fn check_on(&self, sock: &mut NlSocket, target: &Target) -> Result<Reachability, Error> {
        let answer = oneshot::lookup(sock, target.query(), true)?;
        Ok(evaluate(target.query(), &answer, &self.monitor.snapshot()))
    }
}

impl Clone for ConnectionMonitor {
    fn clone(&self) -> ConnectionMonitor {
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        ConnectionMonitor {
            monitor: self.monitor.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl Drop for ConnectionMonitor {
    fn drop(&mut self) {
        // The last handle: let the thread drop the extension, which ends the subscriptions.
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.monitor.poke();
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
        lock(&self.conn.shared.tracker).remove(self.id);
    }
}

/// The tracker's IO, on the monitor's thread.
struct ConnExtension {
    shared: Arc<ConnShared>,
    /// Lookups sent and not yet answered, by netlink sequence number.
    inflight: HashMap<u32, LookupId>,
    buf: Vec<u8>,
}

impl ConnExtension {
    /// Does every lookup the tracker asks for, in pipelined batches, publishing the changes of
    /// each batch as soon as its answers are in.
    fn drive(&mut self, cx: &mut Cx<'_>) {
        loop {
            let batch: Vec<(LookupId, RouteQuery)> = {
                let mut t = lock(&self.shared.tracker);
                std::iter::from_fn(|| t.poll_action())
                    .filter_map(|a| match a {
                        Action::LookupRoute { id, query } => Some((id, query)),
                        // The only action today; a newer core's others have no IO here.
                        _ => None,
                    })
                    .take(PIPELINE)
                    .collect()
            };
            if batch.is_empty() {
                break;
            }
            let answers = self.lookup_batch(cx.requests, &batch);
            {
                let mut t = lock(&self.shared.tracker);
                for (id, answer) in answers {
                    t.handle_lookup(id, answer, cx.snapshot);
                }
            }
            self.publish();
        }
    }

    /// Sends a batch of lookups, then reads their answers. Every lookup gets exactly one answer
    /// (an errno when sending or receiving failed).
    fn lookup_batch(
        &mut self,
        sock: &mut NlSocket,
        batch: &[(LookupId, RouteQuery)],
    ) -> Vec<(LookupId, LookupAnswer)> {
        let mut answers = Vec::with_capacity(batch.len());
        self.inflight.clear();
        self.shared
            .lookups
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        for (id, query) in batch {
            let seq = sock.next_seq();
            match sock.send_bytes(&route_lookup_request(seq, query, true)) {
                Ok(()) => {
                    self.inflight.insert(seq, *id);
                }
                Err(e) => answers.push((*id, Err(errno_of(&e)))),
            }
        }
        while !self.inflight.is_empty() {
            let n = match sock.recv_answer(&mut self.buf) {
                Ok(n) => n,
                Err(e) => {
                    let errno = errno_of(&e);
                    answers.extend(self.inflight.drain().map(|(_, id)| (id, Err(errno))));
                    break;
                }
            };
            let datagram = &self.buf[..n];
            let Some(seq) = datagram
                .get(8..12)
                .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            else {
                continue;
            };
            if let Some(id) = self.inflight.get(&seq).copied() {
                if let Some(answer) = parse_route_lookup_answer(datagram, seq) {
                    self.inflight.remove(&seq);
                    answers.push((id, answer));
                }
            }
        }
        answers
    }

    /// Hands the tracker's changes out, holding its lock so that a new subscription sees each
    /// change exactly once (see [`ConnectionMonitor::subscribe`]). Sending never waits.
    fn publish(&self) {
        let time = SystemTime::now();
        let mut t = lock(&self.shared.tracker);
        while let Some(change) = t.poll_change() {
            let Some(target) = t.target(change.target).cloned() else {
                continue; // removed meanwhile
            };
            let seq = self.shared.seq.fetch_add(1, Ordering::Relaxed) + 1;
            self.shared.changes.send(ReachNotification::Changed {
                seq,
                time,
                id: change.target,
                target,
                old: change.old,
                new: change.new,
            });
        }
    }
}

fn errno_of(e: &Error) -> i32 {
    use std::error::Error as _;
    e.source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .and_then(std::io::Error::raw_os_error)
        .unwrap_or(libc_eio())
}

/// `EIO`, for a failure that carries no errno.
const fn libc_eio() -> i32 {
    5
}

impl Extension for ConnExtension {
    fn on_batch(&mut self, cx: &mut Cx<'_>, events: &[Event]) {
        lock(&self.shared.tracker).handle_events(cx.snapshot, events);
        // Bad news the snapshot alone decides (carrier lost, address removed) goes out now,
        // before the lookups that follow.
        self.publish();
        self.drive(cx);
    }

    fn on_poke(&mut self, cx: &mut Cx<'_>) {
        self.drive(cx);
    }

    /// Notifications were lost: the difference came as events, but look every target up again
    /// anyway (as the tracker's contract asks); only what really changed is reported.
    fn on_resync(&mut self, cx: &mut Cx<'_>) {
        lock(&self.shared.tracker).refresh_all();
        self.drive(cx);
    }

    fn is_detached(&self) -> bool {
        self.shared.handles.load(Ordering::Acquire) == 0
    }
}

impl Drop for ConnExtension {
    fn drop(&mut self) {
        self.shared.changes.close();
    }
}

/// Reachability changes from a [`ConnectionMonitor`], for blocking code and any async runtime.
#[derive(Debug)]
pub struct ReachSubscription {
    rx: Receiver<ReachNotification>,
}

impl ReachSubscription {
    /// The next item, waiting as long as it takes; `None` when the monitor has stopped.
    pub fn recv(&mut self) -> Option<ReachNotification> {
        self.rx.recv()
    }

    /// The next item, waiting at most `timeout`; `None` on timeout or when stopped.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<ReachNotification> {
        self.rx.recv_timeout(timeout)
    }

    /// The next item without waiting: `Ok(None)` when nothing is pending.
    pub fn try_recv(&mut self) -> Result<Option<ReachNotification>, Error> {
        self.rx.try_recv()
    }
}

impl futures_core::Stream for ReachSubscription {
    type Item = ReachNotification;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ReachNotification>> {
        self.rx.poll_next_item(cx)
    }
}
