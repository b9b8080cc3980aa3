//! The observers whose change-to-event latency is compared: netreach and its peers, each
//! turned into one stream of time-stamped observations about the interface under test.
//!
//! Every observer runs the way its documentation says it is used, on its own thread, and
//! stamps the time the moment its API hands over a change: netreach's `Subscription::recv`,
//! a line read from `ip monitor`'s standard output, an `if-watch` event, a new `netwatch`
//! state. The peers that need an executor get a current-thread tokio runtime on a thread that
//! entered the namespace, so their sockets (and any thread they spawn) live there.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Instant;

use netreach::{Event, Monitor, Notification};

use crate::common::Ns;
use crate::nl::enter;

/// The interface every change is made on.
pub const IFACE: &str = "va";

/// What an observer reported about [`IFACE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    AddressAdded(IpAddr),
    AddressRemoved(IpAddr),
    LinkDown,
    LinkUp,
    /// Anything else (another interface, a route, a repeat).
    Other,
}

/// One observation and when the observer's API handed it over.
#[derive(Debug, Clone)]
pub struct Obs {
    pub seen: Seen,
    pub at: Instant,
}

/// The libraries and tools measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Netreach,
    IpMonitor,
    IfWatch,
    Netwatch,
}

impl Peer {
    pub const ALL: [Peer; 4] = [
        Peer::Netreach,
        Peer::IpMonitor,
        Peer::IfWatch,
        Peer::Netwatch,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Peer::Netreach if crate::knobs::pipe_wake() => "netreach (stream, woken by a pipe)",
            Peer::Netreach => "netreach (Subscription::recv)",
            Peer::IpMonitor => "ip monitor link address",
            Peer::IfWatch => "if-watch 3 (tokio)",
            Peer::Netwatch => "netwatch 0.20 (netmon)",
        }
    }

    pub fn tag(self) -> &'static str {
        match self {
            Peer::Netreach => "netreach",
            Peer::IpMonitor => "ipmon",
            Peer::IfWatch => "ifwatch",
            Peer::Netwatch => "netwatch",
        }
    }

    /// Whether the peer reports a link going down at all. if-watch reports addresses only.
    pub fn sees_links(self) -> bool {
        self != Peer::IfWatch
    }
}

/// A running observer; dropping it stops it.
pub struct Observer {
    pub peer: Peer,
    pub rx: Receiver<Obs>,
    stop: Option<Stop>,
    thread: Option<JoinHandle<()>>,
}

enum Stop {
    Monitor(Monitor),
    Child(Child),
    Runtime(tokio::sync::oneshot::Sender<()>),
}

impl Observer {
    /// Starts `peer` watching the namespace `ns`.
    pub fn start(peer: Peer, ns: &Ns) -> Observer {
        let (tx, rx) = channel();
        let (stop, thread) = match peer {
            Peer::Netreach => netreach(ns, tx),
            Peer::IpMonitor => ip_monitor(ns, tx),
            Peer::IfWatch => if_watch(ns, tx),
            Peer::Netwatch => netwatch(ns, tx),
        };
        Observer {
            peer,
            rx,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The monitor's counters, for netreach (`NETREACH_BENCH_TRACE`).
    pub fn stats(&self) -> Option<netreach::Stats> {
        match &self.stop {
            Some(Stop::Monitor(m)) => Some(m.stats()),
            _ => None,
        }
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        match self.stop.take() {
            Some(Stop::Monitor(m)) => drop(m),
            Some(Stop::Child(mut c)) => {
                let _ = c.kill();
                let _ = c.wait();
            }
            Some(Stop::Runtime(tx)) => {
                let _ = tx.send(());
            }
            None => {}
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn send(tx: &Sender<Obs>, seen: Seen, at: Instant) -> bool {
    tx.send(Obs { seen, at }).is_ok()
}

fn netreach(ns: &Ns, tx: Sender<Obs>) -> (Stop, JoinHandle<()>) {
    let monitor = Monitor::in_netns(ns.netns()).expect("netreach monitor");
    let index = monitor
        .snapshot()
        .interface_by_name(IFACE)
        .expect("the interface under test")
        .index;
    let mut sub = monitor.subscribe();
    let pipe_wake = crate::knobs::pipe_wake();
    let thread = std::thread::spawn(move || {
        let pipe = pipe_wake.then(PipeWait::new);
        let mut next = || match &pipe {
            Some(p) => p.next(&mut sub),
            None => sub.recv(),
        };
        while let Some(n) = next() {
            let at = Instant::now();
            let Notification::Change { event, .. } = n else {
                continue;
            };
            let seen = match *event {
                Event::AddressAdded(a) if a.interface == index => Seen::AddressAdded(a.address),
                Event::AddressRemoved(a) if a.interface == index => Seen::AddressRemoved(a.address),
                Event::InterfaceChanged { new, changes, .. }
                    if new.index == index && changes.admin_up =>
                {
                    if new.admin_up {
                        Seen::LinkUp
                    } else {
                        Seen::LinkDown
                    }
                }
                _ => Seen::Other,
            };
            if !send(&tx, seen, at) {
                break;
            }
        }
    });
    (Stop::Monitor(monitor), thread)
}

/// A pipe's write end as a waker: the kernel wakes a pipe's reader as a synchronous wake-up
/// (on the writer's CPU when the writer is about to sleep), where a futex wake-up, as a
/// condition variable's, goes to the reader's previous CPU (`NETREACH_BENCH_PIPE_WAKE=1`).
struct PipeWaker(std::os::fd::OwnedFd);

impl std::task::Wake for PipeWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        let _ = rustix::io::write(&self.0, &[1]);
    }
}

/// A reader's own pipe, and the waker that writes to it.
struct PipeWait {
    read: std::os::fd::OwnedFd,
    waker: std::task::Waker,
}

impl PipeWait {
    fn new() -> PipeWait {
        let (read, write) = rustix::pipe::pipe().expect("pipe");
        PipeWait {
            read,
            waker: std::task::Waker::from(std::sync::Arc::new(PipeWaker(write))),
        }
    }

    /// The next notification, the subscription polled as a stream, sleeping on the pipe.
    fn next(&self, sub: &mut netreach::Subscription) -> Option<Notification> {
        use std::future::Future;
        use std::task::{Context, Poll};
        let mut cx = Context::from_waker(&self.waker);
        loop {
            let mut next = sub.recv_async();
            match std::pin::Pin::new(&mut next).poll(&mut cx) {
                Poll::Ready(n) => return n,
                Poll::Pending => {
                    let mut buf = [0u8; 64];
                    let _ = rustix::io::read(&self.read, &mut buf);
                }
            }
        }
    }
}

fn ip_monitor(ns: &Ns, tx: Sender<Obs>) -> (Stop, JoinHandle<()>) {
    let mut child = Command::new("ip")
        .args(["-n", &ns.name, "monitor", "link", "address"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run ip monitor");
    let out = child.stdout.take().expect("stdout");
    let thread = std::thread::spawn(move || {
        let mut reader = BufReader::new(out);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let at = Instant::now();
            if !send(&tx, parse_ip_monitor(&line), at) {
                break;
            }
        }
    });
    (Stop::Child(child), thread)
}

/// One line of `ip monitor link address`: `3: va    inet 198.18.2.1/32 scope global va`,
/// `Deleted 3: va    inet6 ...`, or `3: va@vb: <BROADCAST,MULTICAST,UP> mtu ...`.
fn parse_ip_monitor(line: &str) -> Seen {
    let (deleted, rest) = match line.strip_prefix("Deleted ") {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let mut words = rest.split_whitespace();
    let (Some(index), Some(name), Some(third)) = (words.next(), words.next(), words.next()) else {
        return Seen::Other;
    };
    if index
        .strip_suffix(':')
        .is_none_or(|i| i.parse::<u32>().is_err())
    {
        return Seen::Other;
    }
    if name == IFACE && (third == "inet" || third == "inet6") {
        let addr = words.next().and_then(|a| a.split('/').next()?.parse().ok());
        return match addr {
            Some(a) if deleted => Seen::AddressRemoved(a),
            Some(a) => Seen::AddressAdded(a),
            None => Seen::Other,
        };
    }
    let ifname = name.trim_end_matches(':').split('@').next();
    if ifname == Some(IFACE) && !deleted && third.starts_with('<') {
        let up = third.trim_matches(['<', '>']).split(',').any(|f| f == "UP");
        return if up { Seen::LinkUp } else { Seen::LinkDown };
    }
    Seen::Other
}

/// A thread inside `ns` running `body` on a current-thread tokio runtime until told to stop.
fn on_runtime<F>(
    ns: &Ns,
    body: impl FnOnce(tokio::sync::oneshot::Receiver<()>) -> F + Send + 'static,
) -> (Stop, JoinHandle<()>)
where
    F: std::future::Future<Output = ()>,
{
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let name = ns.name.clone();
    let thread = std::thread::spawn(move || {
        enter(&name);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        rt.block_on(body(stop_rx));
    });
    (Stop::Runtime(stop_tx), thread)
}

fn if_watch(ns: &Ns, tx: Sender<Obs>) -> (Stop, JoinHandle<()>) {
    on_runtime(ns, move |mut stop| async move {
        use if_watch::IfEvent;
        let mut watcher = if_watch::tokio::IfWatcher::new().expect("if-watch");
        loop {
            tokio::select! {
                _ = &mut stop => break,
                ev = std::future::poll_fn(|cx| watcher.poll_if_event(cx)) => {
                    let at = Instant::now();
                    let seen = match ev {
                        Ok(IfEvent::Up(net)) => Seen::AddressAdded(net.addr()),
                        Ok(IfEvent::Down(net)) => Seen::AddressRemoved(net.addr()),
                        Err(e) => {
                            eprintln!("if-watch stopped: {e}");
                            break;
                        }
                    };
                    if !send(&tx, seen, at) {
                        break;
                    }
                }
            }
        }
    })
}

fn netwatch(ns: &Ns, tx: Sender<Obs>) -> (Stop, JoinHandle<()>) {
    on_runtime(ns, move |mut stop| async move {
        use n0_watcher::Watcher as _;
        let monitor = netwatch::netmon::Monitor::new().await.expect("netwatch");
        let mut watcher = monitor.interface_state();
        let mut prev = watcher.get();
        loop {
            tokio::select! {
                _ = &mut stop => break,
                state = watcher.updated() => {
                    let at = Instant::now();
                    let Ok(state) = state else { break };
                    for seen in netwatch_diff(&prev, &state) {
                        if !send(&tx, seen, at) {
                            return;
                        }
                    }
                    prev = state;
                }
            }
        }
    })
}

/// What changed on [`IFACE`] between two netwatch states.
fn netwatch_diff(old: &netwatch::netmon::State, new: &netwatch::netmon::State) -> Vec<Seen> {
    let view = |s: &netwatch::netmon::State| {
        s.interfaces
            .get(IFACE)
            .map(|i| {
                (
                    i.is_up(),
                    i.addrs().map(|n| n.addr()).collect::<BTreeSet<_>>(),
                )
            })
            .unwrap_or_default()
    };
    let ((was_up, before), (is_up, after)) = (view(old), view(new));
    let mut seen = Vec::new();
    if was_up != is_up {
        seen.push(if is_up { Seen::LinkUp } else { Seen::LinkDown });
    }
    seen.extend(after.difference(&before).map(|a| Seen::AddressAdded(*a)));
    seen.extend(before.difference(&after).map(|a| Seen::AddressRemoved(*a)));
    if seen.is_empty() {
        seen.push(Seen::Other);
    }
    seen
}
