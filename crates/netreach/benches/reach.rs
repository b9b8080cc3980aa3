//! Benchmark of the connection monitor with 11,000 targets: how long a link going down (and
//! coming back) takes to reach every affected target's notification, how many route lookups an
//! event costs, how little an unrelated event costs, and the memory a target takes. Compared, in
//! the same run, with the naive alternative: one route lookup per target per event.
//!
//! Run as root (it makes network namespaces): `cargo bench -p netreach --bench reach`. Prints a
//! Markdown table; `docs/BENCHMARKS.md` keeps the figures.
//!
//! ```text
//! host  b0 198.18.0.2/24 ── p0  peer     198.19.0.0/16 via 198.18.0.1, default via 198.18.0.1
//!       b1 198.18.4.2/22 ── p1  peer     1,000 same-subnet targets (198.18.4.0/22)
//!       b3 198.18.12.2/24 ── p3 peer     no target: the unrelated interface
//!       d0 198.18.8.2/24 ── d1 (host)     the barrier target (198.18.9.1, on link)
//! ```
//!
//! The 10,000 "far" targets (198.18.0.2 -> 198.19.x.y) go through b0. Events are made with
//! in-process netlink requests, so `ip`'s start-up is not timed; the clock starts just before
//! the request is sent and stops when the subscriber receives the last notification. The
//! kernel's own delay (until it sends the link or route notification) is told apart by the time
//! stamp of the first model change published after the request. After each event a "barrier"
//! (a /31 route through a gateway, toggled for the barrier target, whose report comes after
//! everything queued before it) shows that the monitor has finished, so the lookup counts are
//! complete. Only addresses in 198.18.0.0/15 are used, inside the namespaces.

// The benchmark builds network namespaces, which only Linux has. Elsewhere the crate is empty:
// `no_main` lets `cargo check --all-targets` pass there (`cargo bench` would not link).
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "reach/netlink.rs"]
mod netlink;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::Ns;
use netlink::{Rtnl, naive_lookups};
use netreach::core::reach::{Reachability, Reason, RouteQuery, TargetId};
use netreach::{
    ConnectionMonitor, Event, Monitor, Notification, ReachNotification, ReachSubscription,
    Subscription, Watch,
};

const FAR: usize = 10_000;
const NEAR: usize = 1_000;
const ROUNDS: usize = 5;
const WAIT: Duration = Duration::from_secs(60);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

fn main() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("the reach benchmark makes network namespaces: run it as root");
        std::process::exit(2);
    }
    let lab = BenchLab::new();
    let monitor = Monitor::in_netns(lab.host.netns()).expect("monitor");
    let conn = ConnectionMonitor::new(&monitor);
    let snap = monitor.snapshot();
    let index = |name: &str| {
        snap.interface_by_name(name)
            .map(|i| i.index)
            .expect("interface")
    };
    let (b0, b3, p0) = (index("b0"), index("b3"), lab.peer_index("p0"));
    let host = Rtnl::open(&lab.host);
    let peer = Rtnl::open(&lab.peer);

    // Targets, and the memory they take: measured before anything subscribes, so that only the
    // monitor's own state counts (no subscriber's queue, no copy of the states here).
    let rss_before = rss_kib();
    let t0 = Instant::now();
    let far: Vec<Watch> = (0..FAR)
        .map(|n| {
            let remote = [198, 19, (n / 250) as u8, (n % 250 + 1) as u8];
            watch(&conn, [198, 18, 0, 2], remote)
        })
        .collect();
    let near: Vec<Watch> = (0..NEAR)
        .map(|n| {
            let remote = [198, 18, (4 + n / 250) as u8, (n % 250 + 3) as u8];
            watch(&conn, [198, 18, 4, 2], remote)
        })
        .collect();
    let barrier = watch(&conn, [198, 18, 8, 2], [198, 18, 9, 1]);
    let mut known = 0;
    let watches: Vec<&Watch> = far.iter().chain(&near).chain([&barrier]).collect();
    while known < watches.len() {
        match watches[known].reachability() {
            Some(_) => known += 1,
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    let startup = t0.elapsed();
    let startup_lookups = conn.route_lookups();
    let rss_after = rss_kib();
    let targets = watches.len();
    let per_target = (rss_after.saturating_sub(rss_before) as f64 * 1024.0) / targets as f64;

    let mut r = Reader::new(&conn, &monitor, &lab.host, barrier.id());
    let far_ids: HashSet<TargetId> = far.iter().map(Watch::id).collect();
    let near_ids: HashSet<TargetId> = near.iter().map(Watch::id).collect();
    let all: HashSet<TargetId> = far_ids.union(&near_ids).copied().collect();
    assert!(
        all.iter()
            .all(|id| r.states.get(id).is_some_and(|s| reachable(s))),
        "every target is reachable at the start"
    );

    let none = HashSet::new();
    let (far_only, everyone) = ((&far_ids, &near_ids), (&none, &all));
    let carrier_lost =
        |v: &Reachability| matches!(v, Reachability::Unreachable(Reason::CarrierLost { .. }));
    let down =
        |v: &Reachability| matches!(v, Reachability::Unreachable(Reason::InterfaceDown { .. }));
    // The model change that carries the event: b0's link change, or any for the unrelated ones.
    let b0_changed =
        move |e: &Event| matches!(e, Event::InterfaceChanged { new, .. } if new.index == b0);
    let any = |_: &Event| true;
    let mut rows: Vec<(&str, Vec<Sample>)> = Vec::new();
    for round in 0..ROUNDS {
        let samples = [
            // Carrier lost: the peer's end goes down; b0's routes stay (flagged linkdown).
            (
                "carrier lost (peer end down)",
                r.event(
                    &conn,
                    far_only,
                    || peer.link(p0, false),
                    &b0_changed,
                    carrier_lost,
                ),
            ),
            (
                "carrier back",
                r.event(
                    &conn,
                    far_only,
                    || peer.link(p0, true),
                    &b0_changed,
                    reachable,
                ),
            ),
            // Administratively down: the kernel flushes b0's routes; they come back with the
            // link (the connected one) or are added again (the others), as a network manager
            // would.
            (
                "b0 administratively down",
                r.event(&conn, far_only, || host.link(b0, false), &b0_changed, down),
            ),
            (
                "b0 up, its two routes added",
                r.event(
                    &conn,
                    far_only,
                    || {
                        host.link(b0, true);
                        host.route_add(Ipv4Addr::new(198, 19, 0, 0), 16, GATEWAY, b0);
                        host.route_add(Ipv4Addr::UNSPECIFIED, 0, GATEWAY, b0);
                    },
                    &b0_changed,
                    reachable,
                ),
            ),
            // Unrelated to every target: another interface, and the default route,
            // which every target's more specific route shadows.
            (
                "unrelated: b3 down and up",
                r.event(
                    &conn,
                    everyone,
                    || {
                        host.link(b3, false);
                        host.link(b3, true);
                    },
                    &any,
                    reachable,
                ),
            ),
            (
                "unrelated: default route deleted and added",
                r.event(
                    &conn,
                    everyone,
                    || {
                        host.route_del_default();
                        host.route_add(Ipv4Addr::UNSPECIFIED, 0, GATEWAY, b0);
                    },
                    &any,
                    reachable,
                ),
            ),
        ];
        for (name, sample) in samples {
            match rows.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => v.push(sample),
                None => rows.push((name, vec![sample])),
            }
        }
        eprintln!("round {} of {ROUNDS} done", round + 1);
    }

    // The naive way: look every target up again after each event.
    let queries: Vec<RouteQuery> = far
        .iter()
        .chain(&near)
        .filter_map(|w| r.targets.get(&w.id()).copied())
        .collect();
    let naive: Vec<Duration> = (0..ROUNDS)
        .map(|_| naive_lookups(&lab.host, &queries))
        .collect();

    println!("### {targets} targets ({FAR} through b0, {NEAR} on b1, 1 barrier)");
    println!();
    println!(
        "Set-up: first report of all {targets} targets {} after the first watch, with {startup_lookups} lookups.",
        ms(startup)
    );
    println!(
        "Memory: RSS {rss_before} KiB before the targets, {rss_after} KiB after: {per_target:.0} bytes per target."
    );
    println!();
    println!(
        "| event ({ROUNDS} rounds: median, min to max) | kernel's notification | first target notified | last target notified | of which netreach | notifications | lookups | unaffected targets notified |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, samples) in &rows {
        let pick = |f: fn(&Sample) -> Option<Duration>| -> Vec<Duration> {
            samples.iter().filter_map(f).collect()
        };
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} |",
            spread(&pick(|s| s.kernel)),
            spread(&pick(|s| s.first)),
            spread(&pick(|s| s.last)),
            spread(&pick(|s| s.netreach)),
            same(samples.iter().map(|s| s.notified as u64)),
            same(samples.iter().map(|s| s.lookups)),
            same(samples.iter().map(|s| s.unaffected as u64)),
        );
    }
    println!(
        "| naive: one lookup per target, pipelined as the monitor does | | | | {} | | {} | |",
        spread(&naive),
        queries.len()
    );
    drop(far);
    drop(near);
}

fn watch(conn: &ConnectionMonitor, local: [u8; 4], remote: [u8; 4]) -> Watch {
    conn.watch_pair(IpAddr::from(local), IpAddr::from(remote), None)
        .expect("target")
}

fn reachable(r: &Reachability) -> bool {
    matches!(r, Reachability::Reachable(_))
}

/// What one event cost.
struct Sample {
    /// From the request to the first model change the monitor published.
    kernel: Option<Duration>,
    /// From the request to the subscriber's first and last notification of a waited-for target.
    first: Option<Duration>,
    last: Option<Duration>,
    /// From the first model change to the last waited-for notification the monitor published.
    netreach: Option<Duration>,
    notified: usize,
    lookups: u64,
    unaffected: usize,
}

/// Reads the notifications, keeps every target's state, and passes barriers.
struct Reader<'a> {
    sub: ReachSubscription,
    model: Subscription,
    states: HashMap<TargetId, Arc<Reachability>>,
    targets: HashMap<TargetId, RouteQuery>,
    /// The barrier target, its namespace, and whether its route is in place.
    barrier: TargetId,
    ns: &'a Ns,
    routed: bool,
}

/// What `until` saw.
struct Seen {
    first: Option<Instant>,
    last: Instant,
    /// When the monitor published the last change of a target waited for.
    last_published: Option<SystemTime>,
    changed: HashMap<TargetId, usize>,
}

impl<'a> Reader<'a> {
    fn new(
        conn: &ConnectionMonitor,
        monitor: &Monitor,
        ns: &'a Ns,
        barrier: TargetId,
    ) -> Reader<'a> {
        let mut sub = conn.subscribe();
        let Some(ReachNotification::Ready { targets, .. }) = sub.recv_timeout(WAIT) else {
            panic!("expected Ready first")
        };
        let mut r = Reader {
            sub,
            model: monitor.subscribe(),
            states: HashMap::new(),
            targets: HashMap::new(),
            barrier,
            ns,
            routed: false,
        };
        for (id, target, state) in targets {
            r.targets.insert(id, *target.query());
            if let Some(state) = state {
                r.states.insert(id, Arc::new(state));
            }
        }
        r
    }

    /// Reads until every target of `ids` is in a state `want` accepts. The loop does no more
    /// than a lean subscriber would (flags by id, a log); the maps are kept after it, so that
    /// the reader's own bookkeeping does not hold up the notifications it times.
    fn until(
        &mut self,
        ids: &HashSet<TargetId>,
        what: &str,
        want: impl Fn(&Reachability) -> bool,
    ) -> Seen {
        let slot = |id: TargetId| usize::try_from(id.as_u64()).expect("a small id");
        let size = ids.iter().map(|id| slot(*id) + 1).max().unwrap_or(0);
        let mut wanted = vec![false; size];
        let mut ok = vec![false; size];
        let mut left = ids.len();
        for id in ids {
            wanted[slot(*id)] = true;
            if self.states.get(id).is_some_and(|s| want(s)) {
                ok[slot(*id)] = true;
                left -= 1;
            }
        }
        let mut seen = Seen {
            first: None,
            last: Instant::now(),
            last_published: None,
            changed: HashMap::new(),
        };
        let mut log = Vec::with_capacity(ids.len());
        while left > 0 {
            match self.sub.recv_timeout(WAIT) {
                Some(ReachNotification::Changed {
                    id,
                    target,
                    new,
                    time,
                    ..
                }) => {
                    let now = Instant::now();
                    let k = slot(id);
                    if wanted.get(k).copied().unwrap_or(false) {
                        seen.first.get_or_insert(now);
                        seen.last = now;
                        seen.last_published = Some(time);
                        let good = want(&new);
                        if good != ok[k] {
                            ok[k] = good;
                            if good {
                                left -= 1;
                            } else {
                                left += 1;
                            }
                        }
                    }
                    log.push((id, target, new));
                }
                Some(other) => panic!("{what}: unexpected {other:?}"),
                None => panic!(
                    "{what}: {} of {} targets after {WAIT:?}",
                    ids.len() - left,
                    ids.len()
                ),
            }
        }
        for (id, target, new) in log {
            *seen.changed.entry(id).or_default() += 1;
            self.targets.insert(id, *target.query());
            self.states.insert(id, new);
        }
        seen
    }

    /// Forgets the model changes so far.
    fn drain_model(&mut self) {
        while let Ok(Some(_)) = self.model.try_recv() {}
    }

    /// The time stamp of the first model change published since the last drain that `cause`
    /// accepts.
    fn first_model_change(&mut self, cause: &dyn Fn(&Event) -> bool) -> Option<SystemTime> {
        let mut first = None;
        while let Ok(Some(n)) = self.model.try_recv() {
            if let Notification::Change { time, event, .. } = n {
                if cause(&event) {
                    first.get_or_insert(time);
                }
            }
        }
        first
    }

    /// Toggles the barrier target's route and waits for its report: the monitor's thread has
    /// then handled everything before. The route is a /31 through a gateway: the path changes
    /// (a gateway or none), and it is more specific than the default route, so no event of the
    /// benchmark touches the barrier itself.
    fn barrier(&mut self) -> Seen {
        let id = self.barrier;
        let verb = if self.routed { "del" } else { "add" };
        self.ns
            .ip(&format!("route {verb} 198.18.9.0/31 via 198.18.8.1 dev d0"));
        self.routed = !self.routed;
        let routed = self.routed;
        self.until(&HashSet::from([id]), "barrier", |v| {
            v.path().is_some_and(|p| p.gateway.is_some() == routed)
        })
    }

    /// Times one event: `act` makes it, the kernel reports it as a model change that `cause`
    /// accepts, `affected` must reach `want`; then the barrier.
    fn event(
        &mut self,
        conn: &ConnectionMonitor,
        (affected, unaffected): (&HashSet<TargetId>, &HashSet<TargetId>),
        act: impl FnOnce(),
        cause: &dyn Fn(&Event) -> bool,
        want: impl Fn(&Reachability) -> bool,
    ) -> Sample {
        self.drain_model();
        let lookups = conn.route_lookups();
        let t0 = Instant::now();
        let t0_wall = SystemTime::now();
        act();
        let seen = self.until(affected, "event", want);
        let after = self.barrier();
        // After the barrier every model change of the event has been published, before the
        // barrier's own.
        let model = self.first_model_change(cause);
        let since = |later: SystemTime| later.duration_since(t0_wall).unwrap_or_default();
        let changes = seen.changed.iter().chain(&after.changed);
        Sample {
            kernel: model.map(since),
            first: seen.first.map(|f| f.duration_since(t0)),
            last: seen.first.map(|_| seen.last.duration_since(t0)),
            netreach: model
                .zip(seen.last_published)
                .map(|(m, last)| last.duration_since(m).unwrap_or_default()),
            // The barrier's own report and lookup are not the event's.
            notified: changes.clone().map(|(_, n)| n).sum::<usize>() - 1,
            lookups: conn.route_lookups() - lookups - 1,
            unaffected: changes
                .filter(|(id, _)| unaffected.contains(id))
                .map(|(_, n)| n)
                .sum(),
        }
    }
}

/// The bench's namespaces.
struct BenchLab {
    host: Ns,
    peer: Ns,
}

impl BenchLab {
    fn new() -> BenchLab {
        let host = Ns::new("bench-host");
        let peer = Ns::new("bench-peer");
        for (h, p) in [("b0", "p0"), ("b1", "p1"), ("b3", "p3")] {
            host.veth_to(h, &peer, p);
            peer.ip(&format!("link set {p} up"));
        }
        host.ip_batch(
            "link set b0 up\nlink set b1 up\nlink set b3 up\n\
             link add d0 type veth peer name d1\nlink set d1 up\nlink set d0 up\n\
             addr add 198.18.0.2/24 dev b0\naddr add 198.18.4.2/22 dev b1\n\
             addr add 198.18.12.2/24 dev b3\naddr add 198.18.8.2/24 dev d0\n\
             route add 198.19.0.0/16 via 198.18.0.1 dev b0\n\
             route add default via 198.18.0.1 dev b0\n\
             route add 198.18.9.0/24 dev d0\n",
        );
        BenchLab { host, peer }
    }

    fn peer_index(&self, name: &str) -> u32 {
        let v = self.peer.ip_json(&format!("link show {name}"));
        v[0]["ifindex"].as_u64().expect("ifindex") as u32
    }
}

/// Resident set size of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Median (min to max) of the samples.
fn spread(v: &[Duration]) -> String {
    if v.is_empty() {
        return "none".into();
    }
    let mut v = v.to_vec();
    v.sort();
    format!(
        "{} ({} to {})",
        ms(v[v.len() / 2]),
        ms(v[0]),
        ms(v[v.len() - 1])
    )
}

/// One value if all rounds agree, else "min to max".
fn same(v: impl Iterator<Item = u64>) -> String {
    let v: Vec<u64> = v.collect();
    match (v.iter().min(), v.iter().max()) {
        (Some(a), Some(b)) if a == b => a.to_string(),
        (Some(a), Some(b)) => format!("{a} to {b}"),
        _ => "none".into(),
    }
}
