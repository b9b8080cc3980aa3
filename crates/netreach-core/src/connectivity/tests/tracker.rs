//! The tracker: each transition reported once, per family, with the reason in words.

use super::*;
use crate::connectivity::{
    ConnectivityChange, ConnectivityConfig, Level, Medium, Pattern, Reason, StatusTracker,
};
use crate::{Event, diff, evaluate};

/// A snapshot and a tracker, fed the way the live monitor feeds them.
struct Run {
    snap: Snapshot,
    tracker: StatusTracker,
}

impl Run {
    /// A tracker whose baseline is `base`.
    fn new(base: &[Update], config: ConnectivityConfig) -> Run {
        let snap = snapshot(base);
        let tracker = StatusTracker::from_snapshot(&snap, config);
        Run { snap, tracker }
    }

    /// Applies one batch and returns the changes, as data.
    fn changes(&mut self, batch: &[Update]) -> Vec<ConnectivityChange> {
        let mut events: Vec<Event> = Vec::new();
        for u in batch {
            self.snap.apply_into(u.clone(), &mut events);
        }
        self.tracker.handle_update(&self.snap, &events);
        self.drain()
    }

    /// Applies one batch and returns the changes, in words.
    fn step(&mut self, batch: &[Update]) -> Vec<String> {
        self.changes(batch).iter().map(|c| c.to_string()).collect()
    }

    fn drain(&mut self) -> Vec<ConnectivityChange> {
        std::iter::from_fn(|| self.tracker.poll_change()).collect()
    }
}

fn carrier(index: u32, name: &str, on: bool) -> Update {
    link_with(index, name, LinkKind::Ethernet, |i| i.carrier = on)
}

/// eth0 (metric 100) and wlan0 (metric 600, IPv4 only), both online.
fn eth_and_wlan() -> Vec<Update> {
    concat(&[
        &v4_internet(ETH0, "eth0", 0)[..3],
        &[add(metric(default4("198.18.0.1", ETH0), 100))],
        &[
            link(WLAN0, "wlan0", LinkKind::Wifi),
            addr(WLAN0, "198.18.4.2/24"),
            add(route("198.18.4.0/24", None, WLAN0)),
            add(metric(default4("198.18.4.1", WLAN0), 600)),
        ],
    ])
}

fn all(reason: &str, lines: &[&str]) -> Vec<String> {
    lines.iter().map(|l| format!("{l}: {reason}")).collect()
}

/// Name, baseline network, configuration, one batch of updates, the changes in words.
type TransitionCase = (
    &'static str,
    Vec<Update>,
    ConnectivityConfig,
    Vec<Update>,
    Vec<String>,
);

/// Every transition of one batch, per family, in words.
#[test]
fn transitions() {
    let dual = dual_stack();
    let v4_site = concat(&[&lo(), &v4_internet(ETH0, "eth0", 0)[..3]]);
    let v4 = concat(&[&lo(), &v4_internet(ETH0, "eth0", 0)]);
    let policy = concat(&[
        &v4_site,
        &rules(default_rules(Family::Ipv4)),
        &[add(table(default4("198.18.0.1", ETH0), 100))],
    ]);
    let policy_reached = concat(&[&policy, &rules(vec![Rule::lookup(Family::Ipv4, 100, 100)])]);
    let v6_tentative = concat(&[
        &lo(),
        &[eth(ETH0, "eth0")],
        &v6_internet(ETH0, 0),
        &[addr_flagged(
            ETH0,
            "2001:db8::2/64",
            AddressFlags::TENTATIVE,
        )],
    ]);
    let no_carrier = concat(&[
        &v4,
        &[
            carrier(ETH0, "eth0", false),
            add(linkdown(route("198.18.0.0/24", None, ETH0))),
            add(linkdown(default4("198.18.0.1", ETH0))),
        ],
    ]);
    let default_linkdown = concat(&[&v4, &[add(linkdown(default4("198.18.0.1", ETH0)))]]);
    let everything_lost = [
        "IPv4 internet → disconnected",
        "IPv6 internet → disconnected",
        "overall internet → disconnected",
        "primary interface eth0 (ethernet) → none",
    ];
    let v4_up = ["IPv4 site → internet", "overall site → internet"];
    let excluded_veth = || ConnectivityConfig::new().with_excluded("veth*".parse().unwrap());

    #[rustfmt::skip]
    let cases: Vec<TransitionCase> = vec![
        ("IPv4 default route removed", dual.clone(), ConnectivityConfig::new(),
            vec![del(default4("198.18.0.1", ETH0))],
            vec!["IPv4 internet → site: default route via 198.18.0.1 on eth0 removed".into()]),
        ("IPv6 default route removed", dual.clone(), ConnectivityConfig::new(),
            vec![del(default6("fe80::1", ETH0))],
            vec!["IPv6 internet → site: default route via fe80::1 on eth0 removed".into()]),
        ("IPv4 default route added", v4_site.clone(), ConnectivityConfig::new(),
            vec![add(default4("198.18.0.1", ETH0))],
            all("default route via 198.18.0.1 on eth0 added", &v4_up)),
        ("carrier lost (routes marked linkdown)", dual.clone(), ConnectivityConfig::new(),
            vec![carrier(ETH0, "eth0", false), add(linkdown(default4("198.18.0.1", ETH0)))],
            all("carrier lost on eth0", &everything_lost)),
        ("carrier restored (linkdown cleared)", no_carrier, ConnectivityConfig::new(),
            vec![
                carrier(ETH0, "eth0", true),
                add(route("198.18.0.0/24", None, ETH0)),
                add(default4("198.18.0.1", ETH0)),
            ],
            all("carrier restored on eth0", &[
                "IPv4 disconnected → internet",
                "overall disconnected → internet",
                "primary interface none → eth0 (ethernet)",
            ])),
        ("default route becomes linkdown", v4.clone(), ConnectivityConfig::new(),
            vec![add(linkdown(default4("198.18.0.1", ETH0)))],
            all("default route on eth0 is linkdown", &[
                "IPv4 internet → site",
                "overall internet → site",
            ])),
        ("default route no longer linkdown", default_linkdown, ConnectivityConfig::new(),
            vec![add(default4("198.18.0.1", ETH0))],
            all("default route on eth0 is no longer linkdown", &v4_up)),
        ("set down (kernel flushes routes)", dual.clone(), ConnectivityConfig::new(),
            vec![
                link_with(ETH0, "eth0", LinkKind::Ethernet, |i| {
                    (i.admin_up, i.carrier) = (false, false)
                }),
                del(default4("198.18.0.1", ETH0)),
                del(route("198.18.0.0/24", None, ETH0)),
            ],
            all("interface eth0 set down", &everything_lost)),
        ("interface removed", dual.clone(), ConnectivityConfig::new(),
            vec![Update::DelLink(ETH0)],
            all("interface eth0 removed", &everything_lost)),
        ("IPv4 address removed", dual.clone(), ConnectivityConfig::new(),
            vec![del_addr(ETH0, "198.18.0.2/24")],
            vec!["IPv4 internet → disconnected: address 198.18.0.2/24 removed from eth0".into()]),
        ("IPv6 DAD failed", dual.clone(), ConnectivityConfig::new(),
            vec![addr_flagged(ETH0, "2001:db8::2/64", AddressFlags::DADFAILED)],
            vec!["IPv6 internet → local: address 2001:db8::2/64 on eth0 failed duplicate \
                  address detection".into()]),
        ("IPv6 address tentative again", dual.clone(), ConnectivityConfig::new(),
            vec![addr_flagged(ETH0, "2001:db8::2/64", AddressFlags::TENTATIVE)],
            vec!["IPv6 internet → local: address 2001:db8::2/64 on eth0 is tentative".into()]),
        ("IPv6 DAD done", v6_tentative, ConnectivityConfig::new(),
            vec![addr(ETH0, "2001:db8::2/64")],
            all("address 2001:db8::2/64 on eth0 passed duplicate address detection", &[
                "IPv6 local → internet",
                "overall local → internet",
            ])),
        ("rule reaches the policy table", policy.clone(), ConnectivityConfig::new(),
            rules(vec![Rule::lookup(Family::Ipv4, 100, 100)]),
            all("policy rule 100 added", &v4_up)),
        ("rule to the policy table removed", policy_reached, ConnectivityConfig::new(),
            vec![Update::DelRule(Rule::lookup(Family::Ipv4, 100, 100))],
            all("policy rule 100 removed", &["IPv4 internet → site", "overall internet → site"])),
        ("primary fails over", eth_and_wlan(), ConnectivityConfig::new(),
            vec![carrier(ETH0, "eth0", false)],
            vec!["primary interface eth0 (ethernet) → wlan0 (wifi): carrier lost on eth0".into()]),
        ("renamed into an exclusion", dual.clone(), excluded_veth(),
            vec![link(ETH0, "veth9", LinkKind::Ethernet)],
            all("interface eth0 renamed veth9", &everything_lost)),
        ("renamed", dual.clone(), ConnectivityConfig::new(),
            vec![link(ETH0, "lan0", LinkKind::Ethernet)],
            vec!["primary interface eth0 (ethernet) → lan0 (ethernet): interface eth0 renamed \
                  lan0".into()]),
        // Nothing the rules look at: no change at all.
        ("unrelated events", dual.clone(), ConnectivityConfig::new(),
            vec![
                link_with(ETH0, "eth0", LinkKind::Ethernet, |i| i.mtu = 9000),
                eth(ETH1, "eth1"),
                addr(ETH1, "198.18.1.2/24"),
                add(table(default4("198.18.1.1", ETH1), 100)),
                add(typed(metric(default4("198.18.0.1", ETH0), 5), RouteType::Unreachable)),
                add(route("198.19.0.0/16", Some("198.18.0.254"), ETH0)),
                addr(ETH0, "2001:db8::3/64"),
            ],
            vec![]),
        ("a repeated dump", dual.clone(), ConnectivityConfig::new(), dual.clone(), vec![]),
        ("excluded interface comes and goes", dual.clone(), excluded_veth(),
            concat(&[&v4_internet(VETH0, "veth0", 5), &[Update::DelLink(VETH0)]]),
            vec![]),
    ];
    for (name, base, config, batch, want) in cases {
        let mut run = Run::new(&base, config);
        assert_eq!(run.step(&batch), want, "{name}");
        // The same batch again changes nothing, so reports nothing.
        assert_eq!(run.step(&batch), Vec::<String>::new(), "{name}, repeated");
    }
}

/// The first update after `new()` reports how the network came up, from the dump's events.
#[test]
fn initial_report() {
    let snap = snapshot(&dual_stack());
    let mut tracker = StatusTracker::new(ConnectivityConfig::new());
    assert_eq!(tracker.status().overall, Level::Disconnected);
    tracker.handle_update(&snap, &diff(&Snapshot::new(), &snap));
    let got: Vec<String> = std::iter::from_fn(|| tracker.poll_change())
        .map(|c| c.to_string())
        .collect();
    let v4 = "default route via 198.18.0.1 on eth0 added";
    assert_eq!(
        got,
        [
            format!("IPv4 disconnected → internet: {v4}"),
            "IPv6 disconnected → internet: default route via fe80::1 on eth0 added".into(),
            format!("overall disconnected → internet: {v4}"),
            format!("primary interface none → eth0 (ethernet): {v4}"),
        ]
    );
    assert!(tracker.status().is_online());

    // Without events the reason is unknown, but the changes are the same.
    let mut tracker = StatusTracker::new(ConnectivityConfig::new());
    tracker.handle_update(&snap, &[]);
    let reasons: Vec<Reason> = std::iter::from_fn(|| tracker.poll_change())
        .map(|c| c.reason().clone())
        .collect();
    assert_eq!(reasons, vec![Reason::Other; 4]);

    // from_snapshot() takes the snapshot as given.
    let mut tracker = StatusTracker::from_snapshot(&snap, ConnectivityConfig::new());
    assert_eq!(tracker.poll_change(), None);
    assert_eq!(tracker.status().primary_interface(), Some("eth0"));
}

/// A link that comes up goes through local only once IPv6 DAD is done, and each transition is
/// reported exactly once over a sequence of batches.
#[test]
fn sequence_reports_each_transition_once() {
    let mut run = Run::new(
        &[Update::NewLink(Interface::new(
            ETH0,
            "eth0",
            LinkKind::Ethernet,
        ))],
        ConnectivityConfig::new(),
    );
    let fe80 = "address fe80::2/64 on eth0 passed duplicate address detection";
    let steps: Vec<(Vec<Update>, Vec<String>)> = vec![
        (
            vec![
                eth(ETH0, "eth0"),
                addr_flagged(ETH0, "fe80::2/64", AddressFlags::TENTATIVE),
            ],
            vec![],
        ),
        (
            vec![addr(ETH0, "fe80::2/64")],
            all(
                fe80,
                &[
                    "IPv6 disconnected → local",
                    "overall disconnected → local",
                    "primary interface none → eth0 (ethernet)",
                ],
            ),
        ),
        (
            v4_internet(ETH0, "eth0", 0),
            all(
                "default route via 198.18.0.1 on eth0 added",
                &["IPv4 disconnected → internet", "overall local → internet"],
            ),
        ),
        // Unrelated: another interface, down.
        (
            vec![Update::NewLink(Interface::new(
                ETH1,
                "eth1",
                LinkKind::Ethernet,
            ))],
            vec![],
        ),
        (
            vec![carrier(ETH0, "eth0", false)],
            all(
                "carrier lost on eth0",
                &[
                    "IPv4 internet → disconnected",
                    "IPv6 local → disconnected",
                    "overall internet → disconnected",
                    "primary interface eth0 (ethernet) → none",
                ],
            ),
        ),
        (vec![carrier(ETH0, "eth0", false)], vec![]),
        (
            vec![carrier(ETH0, "eth0", true)],
            all(
                "carrier restored on eth0",
                &[
                    "IPv4 disconnected → internet",
                    "IPv6 disconnected → local",
                    "overall disconnected → internet",
                    "primary interface none → eth0 (ethernet)",
                ],
            ),
        ),
        (vec![carrier(ETH0, "eth0", true)], vec![]),
    ];
    for (i, (batch, want)) in steps.into_iter().enumerate() {
        assert_eq!(run.step(&batch), want, "step {i}");
    }
}

/// Multipath: losing one hop moves the primary interface, not the level.
#[test]
fn multipath_hop_lost() {
    let base = concat(&[
        &v4_internet(ETH0, "eth0", 0)[..3],
        &v4_internet(ETH1, "eth1", 1)[..3],
        &[add(multipath(
            "0.0.0.0/0",
            &[("198.18.0.1", ETH0, false), ("198.18.1.1", ETH1, false)],
        ))],
    ]);
    let mut run = Run::new(&base, ConnectivityConfig::new());
    let batch = [
        carrier(ETH0, "eth0", false),
        add(multipath(
            "0.0.0.0/0",
            &[("198.18.0.1", ETH0, true), ("198.18.1.1", ETH1, false)],
        )),
    ];
    assert_eq!(
        run.step(&batch),
        ["primary interface eth0 (ethernet) → eth1 (ethernet): carrier lost on eth0"]
    );
}

/// Metered and medium changes are primary changes; configuration changes say so.
#[test]
fn medium_metered_and_config() {
    let base = concat(&[
        &v4_internet(ETH0, "eth0", 0)[..3],
        &[add(metric(default4("198.18.0.1", ETH0), 100))],
        &v4_internet(WWAN0, "wwan0", 6)[..3],
        &[add(metric(default4("198.18.6.1", WWAN0), 700))],
    ]);
    let mut config = ConnectivityConfig::new();
    config.set_medium_hint(WWAN0, Some(Medium::Cellular));
    let mut run = Run::new(&base, config);
    assert!(!run.tracker.status().is_metered());
    assert_eq!(
        run.step(&[Update::DelLink(ETH0)]),
        ["primary interface eth0 (ethernet) → wwan0 (cellular, metered): interface eth0 removed"]
    );
    assert!(run.tracker.status().is_metered());

    // Hints: a change is reported once, a repeated hint is no change, stale hints are dropped.
    run.tracker.set_medium_hint(WWAN0, Some(Medium::Wifi));
    assert_eq!(
        run.step(&[]),
        ["primary interface wwan0 (cellular, metered) → wwan0 (wifi): configuration changed"]
    );
    run.tracker.set_medium_hint(WWAN0, Some(Medium::Wifi));
    assert_eq!(run.step(&[]), Vec::<String>::new());
    run.tracker.set_medium_hint(99, Some(Medium::Bluetooth));
    assert_eq!(run.step(&[]), Vec::<String>::new());
    assert_eq!(run.tracker.config().medium_hint(99), None);

    // A new configuration: the hints recorded so far stay.
    let metered = ConnectivityConfig::new().with_metered(Pattern::new("wwan*").unwrap());
    let snap = run.snap.clone();
    run.tracker.handle_config(&snap, metered);
    assert_eq!(
        run.drain()
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>(),
        ["primary interface wwan0 (wifi) → wwan0 (wifi, metered): configuration changed"]
    );
    assert_eq!(run.tracker.config().medium_hint(WWAN0), Some(Medium::Wifi));

    let excluded = ConnectivityConfig::new().with_excluded(Pattern::new("wwan0").unwrap());
    run.tracker.handle_config(&snap, excluded.clone());
    assert_eq!(
        run.drain()
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>(),
        all(
            "configuration changed",
            &[
                "IPv4 internet → disconnected",
                "overall internet → disconnected",
                "primary interface wwan0 (wifi, metered) → none",
            ]
        )
    );
    run.tracker.handle_config(&snap, excluded);
    assert_eq!(run.drain(), []);
}

#[test]
fn changes_serialise_with_reasons() {
    let mut run = Run::new(&dual_stack(), ConnectivityConfig::new());
    let changes = run.changes(&[del(default4("198.18.0.1", ETH0))]);
    assert_eq!(
        serde_json::to_value(&changes).unwrap(),
        serde_json::json!([{
            "change": "level",
            "family": "ipv4",
            "old": "internet",
            "new": "site",
            "reason": {
                "kind": "default_route_removed",
                "via": "198.18.0.1",
                "interface": "eth0",
                "table": 254,
            },
        }])
    );
    let ConnectivityChange::Level(level) = &changes[0] else {
        panic!("{changes:?}");
    };
    assert!(!level.is_online_change());

    let changes = run.changes(&[Update::DelLink(ETH0)]);
    let online: Vec<bool> = changes
        .iter()
        .filter_map(|c| match c {
            ConnectivityChange::Level(l) => Some(l.is_online_change()),
            _ => None,
        })
        .collect();
    assert_eq!(online, [false, false, true]);
    assert_eq!(
        serde_json::to_value(&changes[3]).unwrap()["new"],
        serde_json::Value::Null
    );
}

/// Random batches (a fixed-seed generator): the tracker's status is always what `evaluate`
/// says, and every change goes from the previous status to the new one, once.
#[test]
fn random_batches_keep_the_tracker_consistent() {
    let mut seed: u64 = 0x5eed;
    let mut next = move |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as usize) % n
    };
    let names = [
        (ETH0, "eth0"),
        (ETH1, "eth1"),
        (WLAN0, "wlan0"),
        (VETH0, "veth0"),
    ];
    let addrs = [
        "198.18.0.2/24",
        "169.254.0.2/16",
        "fe80::2/64",
        "2001:db8::2/64",
    ];
    let flags = [
        AddressFlags::empty(),
        AddressFlags::TENTATIVE,
        AddressFlags::DADFAILED,
    ];
    let config = ConnectivityConfig::new().with_excluded("veth*".parse().unwrap());
    let mut run = Run::new(&[], config.clone());
    for _ in 0..400 {
        let batch: Vec<Update> = (0..1 + next(4))
            .map(|_| {
                let (index, name) = names[next(names.len())];
                let mut r = match next(4) {
                    0 => default4("198.18.0.1", index),
                    1 => default6("fe80::1", index),
                    2 => route("198.18.0.0/24", None, index),
                    _ => route("2001:db8::/64", None, index),
                };
                r.linkdown = next(4) == 0;
                r.table = [Route::MAIN_TABLE, 100][next(2)];
                match next(9) {
                    0 => link_with(index, name, LinkKind::Ethernet, |i| {
                        (i.admin_up, i.carrier) = (next(4) > 0, next(3) > 0)
                    }),
                    1 => Update::DelLink(index),
                    2 => addr_flagged(index, addrs[next(4)], flags[next(3)]),
                    3 => del_addr(index, addrs[next(4)]),
                    4 | 5 => add(r),
                    6 => del(r),
                    7 => Update::NewRule(Rule::lookup(Family::Ipv4, 100, 100)),
                    _ => Update::DelRule(Rule::lookup(Family::Ipv4, 100, 100)),
                }
            })
            .collect();
        let before = run.tracker.status().clone();
        let changes = run.changes(&batch);
        let after = run.tracker.status().clone();
        assert_eq!(after, evaluate(&run.snap, &config));
        let mut seen = Vec::new();
        for change in &changes {
            match change {
                ConnectivityChange::Level(c) => {
                    let (old, new) = match c.family {
                        Some(f) => (before.level(f), after.level(f)),
                        None => (before.overall, after.overall),
                    };
                    assert_eq!((c.old, c.new), (old, new));
                    assert_ne!(c.old, c.new);
                    assert!(!seen.contains(&c.family), "duplicate {change}");
                    seen.push(c.family);
                }
                ConnectivityChange::Primary(c) => {
                    assert_eq!((&c.old, &c.new), (&before.primary, &after.primary));
                    assert_ne!(c.old, c.new);
                }
            }
        }
        let expected = [Family::Ipv4, Family::Ipv6]
            .iter()
            .filter(|&&f| before.level(f) != after.level(f))
            .count()
            + usize::from(before.overall != after.overall)
            + usize::from(before.primary != after.primary);
        assert_eq!(changes.len(), expected);
    }
}
