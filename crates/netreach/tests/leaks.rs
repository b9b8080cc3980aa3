//! Dropping monitors and subscriptions leaks no thread, no file descriptor and no memory.
//!
//! Each round builds all three monitors on one namespace: a [`Monitor`] with subscriptions, a
//! [`StatusMonitor`] that probes a test HTTP server (so probe threads run, each entering the
//! namespace on a helper thread of its own) and a [`ConnectionMonitor`] watching a target. It
//! takes the default route away and back, checks that every subscription sees it, and drops
//! everything. After each round the process's threads (`/proc/self/task`), descriptors
//! (`/proc/self/fd`) and heap (a counting global allocator in this binary) are back where they
//! started.
//!
//! Every wait has a deadline and fails with what it was waiting for. This file holds one test
//! on purpose: it counts the threads, descriptors and allocations of its own process, which
//! other tests running in parallel would disturb.
//!
//! ```text
//! client  c0 198.18.50.1/24 ── s0 198.18.50.2/24  server (the probe endpoint, port 80)
//!         default via 198.18.50.2
//! ```

// Every test here builds network namespaces, which only Linux has.
#![cfg(target_os = "linux")]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Debug;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::Ns;
use netreach::core::connectivity::ConnectivityConfig;
use netreach::core::probe::ProbeSchedule;
use netreach::core::reach::Reachability;
use netreach::probe::ProbeEndpoint;
use netreach::{
    ConnectionMonitor, Event, Notification, ProbeConfig, ReachNotification, ReachSubscription,
    StatusMonitor, StatusNotification, StatusSubscription, Subscription,
};

/// How long any one wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(20);
/// Rounds measured after the warm-up round.
const ROUNDS: usize = 8;
/// Heap bytes that may stay allocated after the rounds, beyond the baseline: room for a cache
/// that fills once (none is known: today the heap returns to the byte).
const HEAP_MARGIN_BYTES: isize = 1024;
/// Heap blocks that may stay allocated after the rounds: fewer than one per round, so even
/// the smallest leak in every round fails.
const HEAP_MARGIN_BLOCKS: isize = ROUNDS as isize - 1;

const CLIENT: &str = "198.18.50.1";
const SERVER: &str = "198.18.50.2";
/// A remote beyond the gateway: reachable only through the default route.
const FAR: &str = "198.19.0.1";

// ---------------------------------------------------------------------------------------------
// The counting allocator.
//
// House style keeps `unsafe` to the library's system-call module; a global allocator cannot
// be written without it (`GlobalAlloc` is an unsafe trait). It lives here, in this one test
// binary, and only forwards to the system allocator while counting.

/// The system allocator, counting the bytes and blocks that are allocated and not yet freed.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static LIVE_BLOCKS: AtomicIsize = AtomicIsize::new(0);

fn counted(p: *mut u8, bytes: usize) -> *mut u8 {
    if !p.is_null() {
        LIVE_BYTES.fetch_add(bytes as isize, Ordering::Relaxed);
        LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
    }
    p
}

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the counting beside it neither allocates nor touches the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract (a non-zero size), passed on as is.
        counted(unsafe { System.alloc(layout) }, layout.size())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        counted(unsafe { System.alloc_zeroed(layout) }, layout.size())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller passes a block this allocator (so `System`) gave, with its layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller passes a block `System` gave, its layout and a valid new size.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // The old block is freed and a new one of `new_size` is live: the block count
            // stays.
            LIVE_BYTES.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Heap bytes and blocks allocated and not freed, by every thread of this process.
fn heap() -> (isize, isize) {
    (
        LIVE_BYTES.load(Ordering::Relaxed),
        LIVE_BLOCKS.load(Ordering::Relaxed),
    )
}

// ---------------------------------------------------------------------------------------------
// What the process holds.

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The names of this process's threads that netreach started (`netreach-*`).
fn netreach_threads() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|c| c.trim().to_owned())
        .filter(|c| c.starts_with("netreach-"))
        .collect()
}

/// Waits until the process has `t0` threads again, failing after 5 s with the netreach threads
/// still running. A bounded wait: joined threads may linger in `/proc` for a moment until the
/// OS reaps them.
fn threads_back_to(t0: usize, when: &str) {
    let end = Instant::now() + Duration::from_secs(5);
    while threads() != t0 {
        assert!(
            Instant::now() < end,
            "{when}: {} threads, not the {t0} of the baseline; netreach's still running: {:?}",
            threads(),
            netreach_threads()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------------
// Waiting with deadlines.

/// The three kinds of subscription, read the same way.
trait Stream {
    type Item: Debug;
    /// The next item within `timeout`; `None` on timeout or at the end.
    fn next_within(&mut self, timeout: Duration) -> Option<Self::Item>;
    /// True once the stream has ended (and everything was read).
    fn has_ended(&mut self) -> bool;
}

impl Stream for Subscription {
    type Item = Notification;
    fn next_within(&mut self, timeout: Duration) -> Option<Notification> {
        self.recv_timeout(timeout)
    }
    fn has_ended(&mut self) -> bool {
        matches!(self.try_recv(), Err(netreach::Error::Stopped))
    }
}

impl Stream for StatusSubscription {
    type Item = StatusNotification;
    fn next_within(&mut self, timeout: Duration) -> Option<StatusNotification> {
        self.recv_timeout(timeout)
    }
    fn has_ended(&mut self) -> bool {
        matches!(self.try_recv(), Err(netreach::Error::Stopped))
    }
}

impl Stream for ReachSubscription {
    type Item = ReachNotification;
    fn next_within(&mut self, timeout: Duration) -> Option<ReachNotification> {
        self.recv_timeout(timeout)
    }
    fn has_ended(&mut self) -> bool {
        matches!(self.try_recv(), Err(netreach::Error::Stopped))
    }
}

/// Reads `s` until an item that `want` accepts; fails naming `what` when the stream times
/// out, ends or runs past [`WAIT`] without one.
fn expect<S: Stream>(s: &mut S, what: &str, want: impl Fn(&S::Item) -> bool) -> S::Item {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no {what} within {WAIT:?}");
        match s.next_within(left) {
            Some(item) if want(&item) => return item,
            Some(_) => {}
            None if s.has_ended() => panic!("the stream ended before {what}"),
            None => panic!("no {what} within {WAIT:?}"),
        }
    }
}

/// Reads `s` to its end; fails naming `what` when it does not end within [`WAIT`].
fn expect_end<S: Stream>(s: &mut S, what: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "{what} did not end within {WAIT:?}");
        if s.next_within(left).is_none() {
            assert!(s.has_ended(), "{what} did not end within {WAIT:?}");
            return;
        }
    }
}

fn default_route_removed(n: &Notification) -> bool {
    matches!(n, Notification::Change { event, .. } if matches!(&**event, Event::RouteRemoved(r) if r.is_default()))
}

fn default_route_added(n: &Notification) -> bool {
    matches!(n, Notification::Change { event, .. } if matches!(&**event, Event::RouteAdded(r) if r.is_default()))
}

fn status_changed(online: bool) -> impl Fn(&StatusNotification) -> bool {
    move |n| {
        matches!(n, StatusNotification::Changed { connectivity, .. }
            if connectivity.is_online() == online)
    }
}

fn reach_changed(
    id: netreach::core::reach::TargetId,
    reachable: bool,
) -> impl Fn(&ReachNotification) -> bool {
    move |n| {
        matches!(n, ReachNotification::Changed { id: i, new, .. }
            if *i == id && matches!(**new, Reachability::Reachable(_)) == reachable)
    }
}

// ---------------------------------------------------------------------------------------------
// The probe endpoint.

/// The answer that makes a probe `full`.
const NO_CONTENT: &[u8] = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n";

/// An HTTP server listening inside the server namespace, answering every request with `204`
/// on one thread of its own, one connection at a time. It keeps nothing per request, so its
/// heap stays flat. Stops on drop.
struct ProbeServer {
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl ProbeServer {
    fn start(ns: &Ns, addr: SocketAddr) -> ProbeServer {
        let listener = ns
            .run(move || TcpListener::bind(addr))
            .unwrap_or_else(|e| panic!("listen on {addr} in {}: {e}", ns.name));
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let thread = {
            let listener = listener.try_clone().expect("clone the listener");
            let (stop, answered) = (stop.clone(), answered.clone());
            std::thread::spawn(move || {
                // `accept` fails once the listener is shut down (see `drop`).
                while let Ok((mut stream, _)) = listener.accept() {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut head = [0u8; 2048];
                    let mut len = 0;
                    while !head[..len].windows(4).any(|w| w == b"\r\n\r\n") && len < head.len() {
                        match stream.read(&mut head[len..]) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => len += n,
                        }
                    }
                    // Counted before the answer goes out: the prober may verify, and the
                    // test read the count, before this thread runs again.
                    answered.fetch_add(1, Ordering::Release);
                    let _ = stream.write_all(NO_CONTENT);
                }
            })
        };
        ProbeServer {
            listener,
            stop,
            answered,
            thread: Some(thread),
        }
    }

    fn answered(&self) -> usize {
        self.answered.load(Ordering::Acquire)
    }
}

impl Drop for ProbeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Shutting a listening socket down wakes a thread blocked in `accept` (Linux).
        let _ = rustix::net::shutdown(self.listener.as_fd(), rustix::net::Shutdown::Read);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn probe_config() -> ProbeConfig {
    let url = format!("http://{SERVER}/generate_204");
    ProbeConfig::new(ProbeEndpoint::no_content(url.parse().expect("test URL")))
        .timeout(Duration::from_secs(3))
        .schedule(ProbeSchedule {
            settle: Duration::from_millis(50),
            retry_min: Duration::from_millis(200),
            retry_max: Duration::from_millis(800),
            full_interval: Duration::from_secs(600),
            in_flight_limit: Duration::from_secs(10),
        })
}

// ---------------------------------------------------------------------------------------------
// The test.

fn ip(addr: &str) -> IpAddr {
    addr.parse().expect("test address")
}

/// One round: all three monitors, a change seen by every subscription, everything dropped.
fn round(client: &Ns, server: &ProbeServer, baseline: (usize, usize), n: usize) {
    let (t0, f0) = baseline;
    let monitor = common::monitor_in(client.netns()).expect("monitor");
    assert!(threads() > t0, "the monitor runs a thread of its own");
    assert!(fds() > f0, "the monitor holds sockets");
    let mut subs: Vec<_> = (0..4).map(|_| monitor.subscribe()).collect();
    assert_eq!(monitor.subscriber_count(), 4);

    let status = StatusMonitor::with_probe(&monitor, ConnectivityConfig::default(), probe_config());
    let mut status_sub = status.subscribe();
    let conns = ConnectionMonitor::new(&monitor);
    let watch = conns
        .watch_pair(ip(CLIENT), ip(FAR), None)
        .expect("a valid target");
    let mut reach_sub = conns.subscribe();

    // The first answers: a route lookup, and a probe run on a probe thread.
    let first = watch.wait_first(WAIT);
    assert!(
        matches!(first, Some(Reachability::Reachable(_))),
        "round {n}: {FAR} is reachable at first, got {first:?}"
    );
    let answered = server.answered();
    if let Err(v) = status.wait_verified(Some(WAIT)) {
        panic!("round {n}: the probe did not verify internet within {WAIT:?}: {v:?}");
    }
    assert!(
        server.answered() > answered,
        "round {n}: the probe reached the test server"
    );

    // Without a default route: every subscription hears of it.
    client.ip("route del default");
    for s in &mut subs {
        expect(s, "the default route's removal", default_route_removed);
    }
    expect(&mut status_sub, "going offline", status_changed(false));
    expect(
        &mut reach_sub,
        "the far target becoming unreachable",
        reach_changed(watch.id(), false),
    );

    // And back: online, reachable, probed again (another probe thread).
    let answered = server.answered();
    client.ip(&format!("route add default via {SERVER}"));
    for s in &mut subs {
        expect(s, "the default route's return", default_route_added);
    }
    expect(&mut status_sub, "coming back online", status_changed(true));
    expect(
        &mut reach_sub,
        "the far target becoming reachable again",
        reach_changed(watch.id(), true),
    );
    if let Err(v) = status.wait_verified(Some(WAIT)) {
        panic!("round {n}: no probe verified internet again within {WAIT:?}: {v:?}");
    }
    assert!(
        server.answered() > answered,
        "round {n}: the status monitor probed the server again"
    );

    // Dropping a subscription unsubscribes.
    subs.truncate(1);
    assert_eq!(monitor.subscriber_count(), 1);
    // Dropping the connection monitor (and its watch) ends its subscription; dropping the
    // status monitor ends its own; the monitor's thread runs on until the last handle goes.
    drop(watch);
    drop(conns);
    expect_end(&mut reach_sub, "the reach subscription");
    drop(status);
    expect_end(&mut status_sub, "the status subscription");
    assert!(
        threads() > t0,
        "the monitor's thread runs while a handle lives"
    );
    drop(monitor);
    for s in &mut subs {
        expect_end(s, "a model subscription");
    }
}

#[test]
fn monitors_subscriptions_and_probes_leak_no_thread_fd_or_memory() {
    let client = Ns::new("leakc");
    let server_ns = Ns::new("leaks");
    client.veth_to("c0", &server_ns, "s0");
    server_ns.ip(&format!("addr add {SERVER}/24 dev s0"));
    server_ns.ip("link set s0 up");
    client.ip(&format!("addr add {CLIENT}/24 dev c0"));
    client.ip("link set c0 up");
    client.ip(&format!("route add default via {SERVER}"));
    let server = ProbeServer::start(&server_ns, SocketAddr::new(ip(SERVER), 80));

    // A first round warms up what is built once (the test harness, std's lazy statics).
    let (t0, f0) = (threads(), fds());
    round(&client, &server, (t0, f0), 0);
    threads_back_to(t0, "after the warm-up round");
    assert_eq!(fds(), f0, "the warm-up round leaked file descriptors");

    let mut heap_after = Vec::with_capacity(ROUNDS);
    let heap0 = heap();
    for n in 1..=ROUNDS {
        round(&client, &server, (t0, f0), n);
        threads_back_to(t0, &format!("after round {n}"));
        assert_eq!(fds(), f0, "round {n} leaked file descriptors");
        heap_after.push(heap());
    }
    let (bytes, blocks) = heap();
    assert!(
        bytes - heap0.0 <= HEAP_MARGIN_BYTES && blocks - heap0.1 <= HEAP_MARGIN_BLOCKS,
        "{} bytes in {} blocks stayed allocated after {ROUNDS} rounds \
         (baseline {heap0:?}; bytes and blocks after each round: {heap_after:?})",
        bytes - heap0.0,
        blocks - heap0.1,
    );
}
