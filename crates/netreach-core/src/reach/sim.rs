//! A deterministic simulator for the reachability tests: a fake kernel that answers route lookups
//! from a snapshot the way Linux 6.18 does with `RTM_F_FIB_MATCH` (the errno per route type and
//! rule action, and the checks on the source and output interface, as captured in
//! `tests/fixtures/route-lookup/`; IPv6's preference for, not restriction to, the output
//! interface is simplified to a restriction when the interface exists), a small network to start from, and a driver loop that feeds
//! a [`ConnectionTracker`] like the glue does.

use std::cmp::Reverse;
use std::net::IpAddr;

use crate::event::Update;
use crate::flags::AddressFlags;
use crate::model::{
    Address, Family, Interface, LinkKind, Route, RouteType, Rule, RuleAction, Scope, Snapshot,
};
use crate::reach::evaluate::LookupAnswer;
use crate::reach::target::{RouteQuery, Target};
use crate::reach::tracker::{Action, ConnectionTracker, ReachabilityChange, TargetId};
use crate::reach::verdict::Reachability;

pub(crate) const LO: u32 = 1;
pub(crate) const ETH0: u32 = 2;
pub(crate) const WLAN0: u32 = 3;

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

/// A running interface.
pub(crate) fn running(index: u32, name: &str, kind: LinkKind) -> Interface {
    let mut i = Interface::new(index, name, kind);
    i.admin_up = true;
    i.carrier = true;
    i
}

/// An address, `"198.18.0.2/24"`.
pub(crate) fn addr(interface: u32, cidr: &str) -> Address {
    let (a, len) = cidr.split_once('/').expect("cidr");
    let address = ip(a);
    Address {
        interface,
        address,
        prefix_len: len.parse().expect("prefix length"),
        scope: if address.is_loopback() {
            Scope::Host
        } else {
            Scope::Global
        },
        flags: AddressFlags::empty(),
    }
}

/// A unicast route in the main table, `gw` empty for a connected route.
pub(crate) fn route(dst: &str, gw: &str, dev: u32) -> Route {
    let gateway = (!gw.is_empty()).then(|| ip(gw));
    let mut r = Route::unicast(dst.parse().expect("prefix"), gateway, dev);
    if r.family == Family::Ipv6 {
        r.metric = if gw.is_empty() { 256 } else { 1024 };
    }
    r
}

/// A route of another type, without interface, in the main table.
pub(crate) fn reject(dst: &str, kind: RouteType) -> Route {
    let mut r = route(dst, "", 0);
    r.interface = None;
    r.kind = kind;
    r
}

/// A `local` route in the local table, as the kernel adds for every address.
pub(crate) fn local(dst: &str, dev: u32) -> Route {
    let mut r = route(dst, "", dev);
    r.kind = RouteType::Local;
    r.table = Route::LOCAL_TABLE;
    r.scope = Scope::Host;
    r.prefsrc = Some(r.destination.addr());
    r
}

/// `lo` (127.0.0.1/8, ::1), `eth0` (198.18.0.2/24, 2001:db8::2/64, fe80::2/64, the default
/// routes via 198.18.0.1 and 2001:db8::1) and `wlan0` (198.18.1.2/24, no default route).
pub(crate) fn network() -> Snapshot {
    let mut connected = route("198.18.0.0/24", "", ETH0);
    connected.prefsrc = Some(ip("198.18.0.2"));
    let mut wlan = route("198.18.1.0/24", "", WLAN0);
    wlan.prefsrc = Some(ip("198.18.1.2"));
    Snapshot::from_parts(
        [
            running(LO, "lo", LinkKind::Loopback),
            running(ETH0, "eth0", LinkKind::Ethernet),
            running(WLAN0, "wlan0", LinkKind::Wifi),
        ],
        [
            addr(LO, "127.0.0.1/8"),
            addr(LO, "::1/128"),
            addr(ETH0, "198.18.0.2/24"),
            addr(ETH0, "2001:db8::2/64"),
            addr(ETH0, "fe80::2/64"),
            addr(WLAN0, "198.18.1.2/24"),
        ],
        [
            connected,
            wlan,
            route("0.0.0.0/0", "198.18.0.1", ETH0),
            route("2001:db8::/64", "", ETH0),
            route("fe80::/64", "", ETH0),
            route("::/0", "2001:db8::1", ETH0),
            local("127.0.0.0/8", LO),
            local("127.0.0.1/32", LO),
            local("198.18.0.2/32", ETH0),
            local("198.18.1.2/32", WLAN0),
            local("2001:db8::2/128", ETH0),
            local("::1/128", LO),
        ],
    )
}

/// The fake kernel: the answer Linux gives to an `RTM_GETROUTE` with `RTM_F_FIB_MATCH`.
pub(crate) fn kernel_lookup(snap: &Snapshot, q: &RouteQuery) -> LookupAnswer {
    let family = q.family();
    let mut q = *q;
    if let Some(oif) = q.interface {
        match snap.interface(oif) {
            None if family == Family::Ipv4 => return Err(libc::ENODEV),
            // IPv6 looks a global destination up as if no interface had been given.
            None => q.interface = None,
            Some(i) if !i.admin_up && family == Family::Ipv4 => return Err(libc::ENETUNREACH),
            Some(_) => {}
        }
    }
    // IPv4 checks that the source is this host's; IPv6 does not (not even for tentative ones).
    if family == Family::Ipv4 && snap.find_address(q.local).next().is_none() {
        return Err(libc::ENETUNREACH);
    }
    let answer = fib_lookup(snap, &q, family);
    // IPv4 with an output interface makes up an on-link route for any failed lookup, and
    // FIB_MATCH refuses that route with EHOSTUNREACH.
    match answer {
        Err(_) if family == Family::Ipv4 && q.interface.is_some() => Err(libc::EHOSTUNREACH),
        answer => answer,
    }
}

/// The policy rules and tables, in order.
fn fib_lookup(snap: &Snapshot, q: &RouteQuery, family: Family) -> LookupAnswer {
    let mut rules: Vec<Rule> = snap
        .rules()
        .filter(|r| r.family == family)
        .cloned()
        .collect();
    if rules.is_empty() {
        rules = [
            (0, Route::LOCAL_TABLE),
            (32766, Route::MAIN_TABLE),
            (32767, 253),
        ]
        .into_iter()
        .map(|(prio, table)| Rule::lookup(family, prio, table))
        .collect();
    }
    rules.sort_by_key(|r| r.priority);
    for rule in rules.iter().filter(|r| rule_matches(r, q)) {
        match rule.action {
            RuleAction::ToTable(t) => match longest_match(snap, t, q) {
                None => continue,
                Some(r) => match r.kind {
                    RouteType::Throw => continue,
                    RouteType::Unreachable => return Err(libc::EHOSTUNREACH),
                    RouteType::Blackhole => return Err(libc::EINVAL),
                    RouteType::Prohibit => return Err(libc::EACCES),
                    _ => return Ok(r.clone()),
                },
            },
            RuleAction::Unreachable => return Err(libc::ENETUNREACH),
            RuleAction::Prohibit => return Err(libc::EACCES),
            RuleAction::Blackhole => return Err(libc::EINVAL),
            _ => continue,
        }
    }
    Err(libc::ENETUNREACH)
}

fn rule_matches(r: &Rule, q: &RouteQuery) -> bool {
    let hit = r.source.is_none_or(|s| s.contains(&q.local))
        && r.destination.is_none_or(|d| d.contains(&q.remote));
    hit != r.invert
}

fn longest_match<'a>(snap: &'a Snapshot, table: u32, q: &RouteQuery) -> Option<&'a Route> {
    snap.routes()
        .filter(|r| r.table == table && r.destination.contains(&q.remote))
        .filter(|r| {
            q.interface.is_none_or(|oif| {
                r.uses_interface(oif) || r.interface.is_none() || r.kind == RouteType::Local
            })
        })
        .max_by_key(|r| (r.destination.prefix_len(), Reverse(r.metric)))
}

/// The glue in miniature: a snapshot, a tracker, and the fake kernel answering its lookups.
pub(crate) struct Sim {
    pub(crate) snap: Snapshot,
    pub(crate) tracker: ConnectionTracker,
    /// Lookups answered so far.
    pub(crate) lookups: usize,
}

impl Sim {
    pub(crate) fn new(snap: Snapshot) -> Sim {
        Sim {
            snap,
            tracker: ConnectionTracker::new(),
            lookups: 0,
        }
    }

    pub(crate) fn target(&self, local: &str, remote: &str) -> Target {
        Target::new(ip(local), ip(remote), None, &self.snap).expect("valid target")
    }

    /// Applies kernel updates to the snapshot and hands the events to the tracker.
    pub(crate) fn apply(&mut self, updates: impl IntoIterator<Item = Update>) {
        let mut events = Vec::new();
        for u in updates {
            self.snap.apply_into(u, &mut events);
        }
        self.tracker.handle_events(&self.snap, &events);
    }

    /// The actions queued now, without answering them.
    pub(crate) fn take_actions(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.tracker.poll_action()).collect()
    }

    /// Answers actions from the current snapshot until none is left.
    pub(crate) fn run(&mut self) {
        while let Some(action) = self.tracker.poll_action() {
            self.answer(action);
        }
    }

    pub(crate) fn answer(&mut self, action: Action) {
        let Action::LookupRoute { id, query } = action;
        let answer = kernel_lookup(&self.snap, &query);
        self.lookups += 1;
        self.tracker.handle_lookup(id, answer, &self.snap);
    }

    /// The changes so far, their shared states copied out (comparable with plain values).
    pub(crate) fn changes(&mut self) -> Vec<Change> {
        std::iter::from_fn(|| self.tracker.poll_change())
            .map(|c: ReachabilityChange| Change {
                target: c.target,
                old: c.old.as_deref().cloned(),
                new: Reachability::clone(&c.new),
            })
            .collect()
    }
}

/// A [`ReachabilityChange`] with its states copied out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) target: TargetId,
    pub(crate) old: Option<Reachability>,
    pub(crate) new: Reachability,
}
