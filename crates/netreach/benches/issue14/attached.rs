//! Attached monitors: a [`Monitor`] with a [`StatusMonitor`] and a [`ConnectionMonitor`]
//! attached, read through its one stream ([`Monitor::stream`]) on one thread, as
//! `netreach watch` and `serve` read it. For one change the clock starts just before the
//! request is sent and stops three times: at the model event, at the connectivity change and at
//! the reachability change of a target through the changed link. Next to it, `ip monitor link
//! route` (the kernel's notification crossing a process boundary) in the same namespace, taking
//! turns in alternating blocks as the `live` benchmark's scaled latency does.
//!
//! Two changes on the uplink `va` (198.18.0.1/24, default route via 198.18.0.2): the default
//! route deleted (connectivity drops to local, the target loses its route), and `va` set down
//! (connectivity drops, the target's interface is down). Each is reverted and the revert awaited
//! before the next.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netreach::core::connectivity::ConnectivityConfig;
use netreach::{ConnectionMonitor, Event, Family, Monitor, Notification, StatusMonitor, Watch};

use crate::common::Ns;
use crate::nl::Rtnl;
use crate::observers::IFACE;
use crate::stats::{Samples, Table, dur, ratio};
use crate::{Config, latency, snapshot};

const GATEWAY: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The watched target's remote end: reached through the default route only.
const REMOTE: Ipv4Addr = Ipv4Addr::new(198, 19, 200, 1);
/// `latency::prepare`'s IPv6 address on `va`, dropped by the kernel when `va` goes down.
const V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const WAIT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    DefaultRouteDeleted,
    UplinkDown,
}

impl Change {
    const ALL: [Change; 2] = [Change::DefaultRouteDeleted, Change::UplinkDown];

    fn name(self) -> &'static str {
        match self {
            Change::DefaultRouteDeleted => "default route deleted",
            Change::UplinkDown => "uplink down",
        }
    }
}

/// What an observer reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// The model event of the change (the default route removed, `va` down).
    Model(Change),
    /// The model event of the revert's last step (the default route added).
    Restored,
    /// The connectivity is online, or not.
    Online(bool),
    /// The target is reachable, or not.
    Reachable(bool),
    Other,
}

/// What is timed: the three items of netreach's stream, and `ip monitor`'s line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Model,
    Connectivity,
    Reachability,
    IpMonitor,
}

impl Item {
    const ALL: [Item; 4] = [
        Item::Model,
        Item::Connectivity,
        Item::Reachability,
        Item::IpMonitor,
    ];

    fn name(self) -> &'static str {
        match self {
            Item::Model => "netreach: model event",
            Item::Connectivity => "netreach: connectivity change",
            Item::Reachability => "netreach: reachability change",
            Item::IpMonitor => "ip monitor link route",
        }
    }
}

/// A running observer; dropping it stops it.
struct Observer {
    rx: Receiver<(Seen, Instant)>,
    // Kept for their lifetimes: dropping the monitors ends the stream, killing `ip` its output.
    parts: Option<(Monitor, StatusMonitor, ConnectionMonitor, Watch)>,
    child: Option<Child>,
    thread: Option<JoinHandle<()>>,
}

impl Observer {
    fn netreach(ns: &Ns, va: u32) -> Observer {
        let monitor = Monitor::in_netns(ns.netns()).expect("monitor");
        let status = StatusMonitor::new(&monitor, ConnectivityConfig::default());
        let conns = ConnectionMonitor::new(&monitor);
        let watch = conns
            .watch_pair(IpAddr::V4(LOCAL), IpAddr::V4(REMOTE), None)
            .expect("target");
        let id = watch.id();
        assert!(
            watch.wait_first(WAIT).is_some_and(|r| r.path().is_some()),
            "the target is reachable at the start"
        );
        assert!(status.is_online(), "online at the start");
        let mut stream = monitor.stream();
        let (tx, rx) = channel();
        let classify = move |n: Notification| match n {
            Notification::Change { event, .. } => model(&event, va),
            Notification::Connectivity { connectivity, .. } => {
                Seen::Online(connectivity.is_online())
            }
            Notification::Reachability { id: t, new, .. } if t == id => {
                Seen::Reachable(new.path().is_some())
            }
            _ => Seen::Other,
        };
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            while let Some(n) = stream.recv() {
                seen.push((classify(n), Instant::now()));
                // What the same hand-over brought is stamped before the main thread hears of
                // any of it: waking that thread (onto a core, maybe the monitor's) is this
                // benchmark's cost, not the stream's.
                while let Ok(Some(n)) = stream.try_recv() {
                    seen.push((classify(n), Instant::now()));
                }
                if seen.drain(..).any(|s| tx.send(s).is_err()) {
                    break;
                }
            }
        });
        Observer {
            rx,
            parts: Some((monitor, status, conns, watch)),
            child: None,
            thread: Some(thread),
        }
    }

    fn ip_monitor(ns: &Ns) -> Observer {
        let mut child = Command::new("ip")
            .args(["-n", &ns.name, "monitor", "link", "route"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run ip monitor");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = channel();
        let thread = std::thread::spawn(move || {
            let mut reader = BufReader::new(out);
            let mut line = String::new();
            while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
                let at = Instant::now();
                if tx.send((parse_ip_monitor(&line), at)).is_err() {
                    break;
                }
                line.clear();
            }
        });
        Observer {
            rx,
            parts: None,
            child: Some(child),
            thread: Some(thread),
        }
    }

    fn is_netreach(&self) -> bool {
        self.parts.is_some()
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        drop(self.parts.take());
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn model(event: &Event, va: u32) -> Seen {
    match event {
        Event::RouteRemoved(r) if is_default(r) => Seen::Model(Change::DefaultRouteDeleted),
        Event::RouteAdded(r) if is_default(r) => Seen::Restored,
        Event::InterfaceChanged { new, changes, .. }
            if new.index == va && changes.admin_up && !new.admin_up =>
        {
            Seen::Model(Change::UplinkDown)
        }
        _ => Seen::Other,
    }
}

fn is_default(r: &netreach::Route) -> bool {
    r.family == Family::Ipv4 && r.destination.prefix_len() == 0 && r.table == 254
}

/// A line of `ip monitor link route`: `Deleted default via 198.18.0.2 dev va`, `default via
/// ...`, or `3: va@vb: <BROADCAST,MULTICAST> mtu ...`.
fn parse_ip_monitor(line: &str) -> Seen {
    if line.starts_with("Deleted default via") {
        return Seen::Model(Change::DefaultRouteDeleted);
    }
    if line.starts_with("default via") {
        return Seen::Restored;
    }
    let mut words = line.split_whitespace();
    let (Some(_index), Some(name), Some(flags)) = (words.next(), words.next(), words.next()) else {
        return Seen::Other;
    };
    let ifname = name.trim_end_matches(':').split('@').next();
    if ifname == Some(IFACE) && flags.starts_with('<') {
        let up = flags.trim_matches(['<', '>']).split(',').any(|f| f == "UP");
        if !up {
            return Seen::Model(Change::UplinkDown);
        }
    }
    Seen::Other
}

/// Waits for `want` stamped after `since`; the time from `since`, `None` on timeout.
fn wait_for(rx: &Receiver<(Seen, Instant)>, want: Seen, since: Instant) -> Option<Duration> {
    let end = Instant::now() + WAIT;
    loop {
        let left = end.checked_duration_since(Instant::now())?;
        match rx.recv_timeout(left) {
            Ok((seen, at)) if seen == want && at >= since => return Some(at - since),
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
        }
    }
}

/// Waits for each of `wants` (in any order), returning their times from `since`.
fn wait_all(
    rx: &Receiver<(Seen, Instant)>,
    wants: &[Seen],
    since: Instant,
) -> Vec<Option<Duration>> {
    let mut got = vec![None; wants.len()];
    let end = Instant::now() + WAIT;
    while got.iter().any(Option::is_none) {
        let Some(left) = end.checked_duration_since(Instant::now()) else {
            break;
        };
        match rx.recv_timeout(left) {
            Ok((seen, at)) if at >= since => {
                for (g, w) in got.iter_mut().zip(wants) {
                    if g.is_none() && *w == seen {
                        *g = Some(at - since);
                    }
                }
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    got
}

fn default_route(oif: u32) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = AddressFamily::Inet;
    m.header.table = RouteHeader::RT_TABLE_MAIN;
    m.header.protocol = RouteProtocol::Static;
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unicast;
    m.attributes
        .push(RouteAttribute::Gateway(RouteAddress::Inet(GATEWAY)));
    m.attributes.push(RouteAttribute::Oif(oif));
    m
}

/// The namespace of one size: `live`'s interface under test and `n` bridges with an address,
/// plus the default route through `va`.
fn lab(size: usize) -> (Ns, u32) {
    let ns = Ns::new(&format!("att{size}"));
    latency::prepare(&ns);
    snapshot::populate(&ns, size);
    ns.ip(&format!(
        "route add default via {GATEWAY} dev {IFACE} proto static"
    ));
    let va = ns.ip_json(&format!("link show dev {IFACE}"))[0]["ifindex"]
        .as_u64()
        .expect("ifindex") as u32;
    (ns, va)
}

/// Makes `change`; returns the instant just before the request was sent.
fn make(rtnl: &mut Rtnl, change: Change, va: u32) -> Instant {
    match change {
        Change::DefaultRouteDeleted => {
            rtnl.change(RouteNetlinkMessage::DelRoute(default_route(va)), 0)
        }
        Change::UplinkDown => rtnl.set_link(va, false),
    }
}

/// Undoes `change`; returns the instant just before the last request (the default route
/// added) was sent.
fn revert(rtnl: &mut Rtnl, change: Change, va: u32) -> Instant {
    if change == Change::UplinkDown {
        rtnl.set_link(va, true);
        rtnl.add_address(va, IpAddr::V6(V6), 64);
    }
    rtnl.change(
        RouteNetlinkMessage::NewRoute(default_route(va)),
        NLM_F_CREATE | NLM_F_EXCL,
    )
}

type Rows = Vec<(Change, Item, Samples)>;

fn samples(rows: &mut Rows, change: Change, item: Item) -> &mut Samples {
    let i = rows
        .iter()
        .position(|(c, i, _)| *c == change && *i == item)
        .expect("every row made up front");
    &mut rows[i].2
}

/// One change and its revert with observer `obs`, recorded in `rows`.
fn measure(obs: &Observer, rtnl: &mut Rtnl, change: Change, va: u32, rows: &mut Rows) {
    let t0 = make(rtnl, change, va);
    if obs.is_netreach() {
        let got = wait_all(
            &obs.rx,
            &[
                Seen::Model(change),
                Seen::Online(false),
                Seen::Reachable(false),
            ],
            t0,
        );
        for (item, d) in [Item::Model, Item::Connectivity, Item::Reachability]
            .into_iter()
            .zip(got)
        {
            samples(rows, change, item).record(d);
        }
        let t1 = revert(rtnl, change, va);
        wait_all(&obs.rx, &[Seen::Online(true), Seen::Reachable(true)], t1);
    } else {
        let d = wait_for(&obs.rx, Seen::Model(change), t0);
        samples(rows, change, Item::IpMonitor).record(d);
        let t1 = revert(rtnl, change, va);
        wait_for(&obs.rx, Seen::Restored, t1);
    }
    std::thread::sleep(Duration::from_millis(5));
    while obs.rx.try_recv().is_ok() {}
}

/// Waits until `ip monitor` reports changes (it subscribes some time after it starts).
fn until_listening(obs: &Observer, rtnl: &mut Rtnl, va: u32) {
    for _ in 0..20 {
        let t0 = make(rtnl, Change::DefaultRouteDeleted, va);
        let seen = wait_for(&obs.rx, Seen::Model(Change::DefaultRouteDeleted), t0).is_some();
        let t1 = revert(rtnl, Change::DefaultRouteDeleted, va);
        wait_for(&obs.rx, Seen::Restored, t1);
        if seen {
            std::thread::sleep(Duration::from_millis(5));
            while obs.rx.try_recv().is_ok() {}
            return;
        }
    }
    panic!("ip monitor never reported a change");
}

/// The scenario at every size of `cfg`; prints its table.
pub fn run(cfg: &Config) {
    let mut table = Table::new(&[
        "interfaces",
        "change",
        "observer",
        "median",
        "p90",
        "n",
        "missed",
        "÷ model event (median)",
        "(p90)",
        "model event ÷ it (median)",
        "(p90)",
    ]);
    for &size in &cfg.sizes {
        let t = Instant::now();
        let (ns, va) = lab(size);
        let mut rtnl = Rtnl::open_in(&ns.name);
        let mut rows: Rows = Change::ALL
            .iter()
            .flat_map(|&c| Item::ALL.iter().map(move |&i| (c, i, Samples::default())))
            .collect();
        // Alternating blocks, a different observer first in each.
        let blocks = 2;
        for block in 0..blocks {
            let in_block = cfg.reps / blocks + usize::from(block < cfg.reps % blocks);
            for k in 0..2 {
                let obs = if (block + k) % 2 == 0 {
                    Observer::netreach(&ns, va)
                } else {
                    let o = Observer::ip_monitor(&ns);
                    until_listening(&o, &mut rtnl, va);
                    o
                };
                for _ in 0..in_block {
                    for change in Change::ALL {
                        measure(&obs, &mut rtnl, change, va, &mut rows);
                    }
                }
            }
        }
        for change in Change::ALL {
            let of = |item: Item| {
                rows.iter()
                    .find(|(c, i, _)| *c == change && *i == item)
                    .map(|(_, _, s)| s.clone())
                    .unwrap_or_default()
            };
            let m = of(Item::Model);
            for item in Item::ALL {
                let s = of(item);
                let (vs_model, vs_model90, model_vs, model_vs90) = match item {
                    Item::Model => Default::default(),
                    Item::IpMonitor => (
                        String::new(),
                        String::new(),
                        ratio(m.median(), s.median()),
                        ratio(m.p90(), s.p90()),
                    ),
                    _ => (
                        ratio(s.median(), m.median()),
                        ratio(s.p90(), m.p90()),
                        String::new(),
                        String::new(),
                    ),
                };
                table.row(vec![
                    size.to_string(),
                    change.name().into(),
                    item.name().into(),
                    dur(s.median()),
                    dur(s.p90()),
                    s.len().to_string(),
                    s.missed.to_string(),
                    vs_model,
                    vs_model90,
                    model_vs,
                    model_vs90,
                ]);
            }
        }
        eprintln!("attached: {size} interfaces done in {:.1?}", t.elapsed());
    }
    println!(
        "## Attached monitors: change to model event, connectivity and reachability \
         ({} repetitions per change and observer)\n\n{}",
        cfg.reps,
        table.render()
    );
}
