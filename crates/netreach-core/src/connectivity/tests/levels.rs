//! The rules: one snapshot in, levels, primary interface, medium and metered out.

use super::*;
use crate::connectivity::{Connectivity, ConnectivityConfig, Level, Medium, Pattern, evaluate};

use Level::{Disconnected as D, Internet as I, Local as L, Site as S};

fn config() -> ConnectivityConfig {
    ConnectivityConfig::default()
}

fn excluding(patterns: &[&str]) -> ConnectivityConfig {
    patterns
        .iter()
        .fold(config(), |c, p| c.with_excluded(Pattern::new(p).unwrap()))
}

fn eval(updates: &[Update], config: &ConnectivityConfig) -> Connectivity {
    evaluate(&snapshot(updates), config)
}

/// Every level of each family, from the network alone.
#[test]
fn levels_per_family() {
    let v4 = v4_internet(ETH0, "eth0", 0);
    let v6 = concat(&[&[eth(ETH0, "eth0")], &v6_internet(ETH0, 0)]);
    let v4_site = concat(&[&lo(), &v4[..3]]);
    let no_default6 = &v6[..5];
    let two_links = concat(&[&v4[..3], &v4_internet(ETH1, "eth1", 1)[..3]]);
    let (gw0, gw1) = ("198.18.0.1", "198.18.1.1");
    let blackhole = |kind| add(typed(default4("198.18.0.1", ETH0), kind));
    let cases: Vec<(&str, Vec<Update>, Level, Level)> = vec![
        ("nothing", vec![], D, D),
        ("loopback only", lo(), D, D),
        ("link up, no address", vec![eth(ETH0, "eth0")], D, D),
        (
            "link up with only fe80::",
            vec![eth(ETH0, "eth0"), addr(ETH0, "fe80::2/64")],
            D,
            L,
        ),
        (
            "IPv4 link-local only (with its route)",
            vec![
                eth(ETH0, "eth0"),
                addr(ETH0, "169.254.3.4/16"),
                add(route("169.254.0.0/16", None, ETH0)),
            ],
            L,
            D,
        ),
        ("routable address and on-link route", v4_site.clone(), S, D),
        (
            "routable address, no route (noprefixroute)",
            vec![eth(ETH0, "eth0"), addr(ETH0, "198.18.0.2/24")],
            L,
            D,
        ),
        (
            "routable address, route via another interface",
            vec![
                eth(ETH0, "eth0"),
                addr(ETH0, "198.18.0.2/24"),
                eth(ETH1, "eth1"),
                add(route("198.18.0.0/24", None, ETH1)),
            ],
            L,
            D,
        ),
        (
            "host-scope address is not routable",
            vec![
                eth(ETH0, "eth0"),
                Update::NewAddress(Address {
                    scope: Scope::Host,
                    ..address(ETH0, "198.18.0.9/32")
                }),
                add(route("198.18.0.0/24", None, ETH0)),
            ],
            L,
            D,
        ),
        ("default route", v4.clone(), I, D),
        (
            "default route without gateway (point-to-point)",
            vec![
                link(WG0, "wg0", LinkKind::Wireguard),
                addr(WG0, "198.18.7.2/32"),
                add(route("0.0.0.0/0", None, WG0)),
            ],
            I,
            D,
        ),
        (
            "admin down",
            concat(&[
                &v4,
                &[link_with(ETH0, "eth0", LinkKind::Ethernet, |i| {
                    i.admin_up = false
                })],
            ]),
            D,
            D,
        ),
        (
            "carrier lost",
            concat(&[
                &v4,
                &[link_with(ETH0, "eth0", LinkKind::Ethernet, |i| {
                    i.carrier = false
                })],
            ]),
            D,
            D,
        ),
        (
            "default route linkdown",
            concat(&[&v4, &[add(linkdown(default4("198.18.0.1", ETH0)))]]),
            S,
            D,
        ),
        (
            "on-link and default routes linkdown",
            concat(&[
                &v4[..2],
                &[
                    add(linkdown(route("198.18.0.0/24", None, ETH0))),
                    add(linkdown(default4("198.18.0.1", ETH0))),
                ],
            ]),
            L,
            D,
        ),
        (
            "blackhole default",
            concat(&[&v4_site, &[blackhole(RouteType::Blackhole)]]),
            S,
            D,
        ),
        (
            "unreachable default",
            concat(&[&v4_site, &[blackhole(RouteType::Unreachable)]]),
            S,
            D,
        ),
        (
            "prohibit default",
            concat(&[&v4_site, &[blackhole(RouteType::Prohibit)]]),
            S,
            D,
        ),
        (
            "unicast default beside a blackhole default (it simply does not count)",
            concat(&[&v4, &[blackhole(RouteType::Blackhole)]]),
            I,
            D,
        ),
        (
            "default in table 100, no rule reaches it",
            concat(&[
                &v4_site,
                &rules(default_rules(Family::Ipv4)),
                &[add(table(default4("198.18.0.1", ETH0), 100))],
            ]),
            S,
            D,
        ),
        (
            "default in table 100, no rules known (kernel defaults)",
            concat(&[&v4_site, &[add(table(default4("198.18.0.1", ETH0), 100))]]),
            S,
            D,
        ),
        (
            "default in table 100 reached by a rule",
            concat(&[
                &v4_site,
                &rules(default_rules(Family::Ipv4)),
                &rules(vec![Rule::lookup(Family::Ipv4, 100, 100)]),
                &[add(table(default4("198.18.0.1", ETH0), 100))],
            ]),
            I,
            D,
        ),
        (
            "rules without main: main's routes are not reached",
            concat(&[
                &v4,
                &rules(vec![Rule::lookup(Family::Ipv4, 0, Route::LOCAL_TABLE)]),
            ]),
            L,
            D,
        ),
        (
            "IPv6 rules do not hide IPv4 tables",
            concat(&[
                &v4,
                &rules(vec![Rule::lookup(Family::Ipv6, 0, Route::LOCAL_TABLE)]),
            ]),
            I,
            D,
        ),
        ("IPv6 default via link-local gateway", v6.clone(), D, I),
        ("IPv6 without default", no_default6.to_vec(), D, S),
        (
            "IPv6 global address tentative",
            concat(&[
                &v6,
                &[addr_flagged(
                    ETH0,
                    "2001:db8::2/64",
                    AddressFlags::TENTATIVE,
                )],
            ]),
            D,
            L,
        ),
        (
            "IPv6 global address dadfailed",
            concat(&[
                &v6,
                &[addr_flagged(
                    ETH0,
                    "2001:db8::2/64",
                    AddressFlags::DADFAILED | AddressFlags::TENTATIVE,
                )],
            ]),
            D,
            L,
        ),
        (
            "IPv6 optimistic address is usable",
            concat(&[
                &v6,
                &[addr_flagged(
                    ETH0,
                    "2001:db8::2/64",
                    AddressFlags::OPTIMISTIC,
                )],
            ]),
            D,
            I,
        ),
        (
            "IPv6 only link-local tentative",
            vec![
                eth(ETH0, "eth0"),
                addr_flagged(ETH0, "fe80::2/64", AddressFlags::TENTATIVE),
            ],
            D,
            D,
        ),
        (
            "default via an interface without a routable address",
            vec![
                eth(ETH0, "eth0"),
                addr(ETH0, "fe80::2/64"),
                add(default6("fe80::1", ETH0)),
                eth(ETH1, "eth1"),
                addr(ETH1, "2001:db8:1::2/64"),
                add(route("2001:db8:1::/64", None, ETH1)),
            ],
            D,
            S,
        ),
        (
            "address removed",
            concat(&[&v4, &[del_addr(ETH0, "198.18.0.2/24")]]),
            D,
            D,
        ),
        (
            "interface removed",
            concat(&[&v4, &[Update::DelLink(ETH0)]]),
            D,
            D,
        ),
        (
            "multipath: one hop linkdown, one fine",
            concat(&[
                &two_links,
                &[add(multipath(
                    "0.0.0.0/0",
                    &[(gw0, ETH0, true), (gw1, ETH1, false)],
                ))],
            ]),
            I,
            D,
        ),
        (
            "multipath: every hop linkdown",
            concat(&[
                &two_links,
                &[add(multipath(
                    "0.0.0.0/0",
                    &[(gw0, ETH0, true), (gw1, ETH1, true)],
                ))],
            ]),
            S,
            D,
        ),
        (
            "multipath: one hop linkdown, one via a missing interface",
            concat(&[
                &two_links,
                &[add(multipath(
                    "0.0.0.0/0",
                    &[(gw0, ETH0, true), (gw1, 9, false)],
                ))],
            ]),
            S,
            D,
        ),
        ("dual stack", dual_stack(), I, I),
    ];
    for (name, updates, v4, v6) in cases {
        let c = eval(&updates, &config());
        assert_eq!((c.ipv4, c.ipv6), (v4, v6), "{name}");
        assert_eq!(c.overall, v4.max(v6), "{name}");
        assert_eq!(c.is_online(), c.overall == I, "{name}");
        assert_eq!(c.primary.is_none(), c.overall == D, "{name}");
    }
}

/// Name, network, configuration, overall level, primary interface.
type ExclusionCase = (
    &'static str,
    Vec<Update>,
    ConnectivityConfig,
    Level,
    Option<&'static str>,
);

/// Excluded interfaces are ignored entirely: levels, routes, primary.
#[test]
fn exclusions() {
    let veth_default = concat(&[
        &v4_internet(ETH0, "eth0", 0)[..3],
        &v4_internet(VETH0, "veth0", 5),
    ]);
    let cases: Vec<ExclusionCase> = vec![
        (
            "excluded uplink",
            dual_stack(),
            excluding(&["eth*"]),
            D,
            None,
        ),
        ("exact name", dual_stack(), excluding(&["eth0"]), D, None),
        (
            "non-matching pattern",
            dual_stack(),
            excluding(&["eth?0", "docker*"]),
            I,
            Some("eth0"),
        ),
        (
            "default through an excluded veth",
            veth_default.clone(),
            excluding(&["veth*"]),
            S,
            Some("eth0"),
        ),
        (
            "default through a counted veth",
            veth_default,
            config(),
            I,
            Some("veth0"),
        ),
    ];
    for (name, updates, config, level, primary) in cases {
        let c = eval(&updates, &config);
        assert_eq!(c.overall, level, "{name}");
        assert_eq!(c.primary_interface(), primary, "{name}");
    }
}

/// Name, network, primary interface, its medium.
type PrimaryCase = (
    &'static str,
    Vec<Update>,
    Option<&'static str>,
    Option<Medium>,
);

/// The primary interface: the best default route of the better family (ties: IPv4).
#[test]
fn primary_interface() {
    let eth_then_wifi = |eth_metric, wifi_metric| {
        let mut u = concat(&[
            &v4_internet(ETH0, "eth0", 0)[..3],
            &[add(metric(default4("198.18.0.1", ETH0), eth_metric))],
        ]);
        u.extend([
            link(WLAN0, "wlan0", LinkKind::Wifi),
            addr(WLAN0, "198.18.4.2/24"),
            add(metric(default4("198.18.4.1", WLAN0), wifi_metric)),
        ]);
        u
    };
    let wg_quick = |wg_metric| {
        concat(&[
            &v4_internet(ETH0, "eth0", 0)[..3],
            &[add(metric(default4("198.18.0.1", ETH0), 100))],
            &rules(default_rules(Family::Ipv4)),
            &rules(vec![not_fwmark(Family::Ipv4, 32764, 51820)]),
            &[
                link(WG0, "wg0", LinkKind::Wireguard),
                addr(WG0, "198.18.7.2/32"),
                add(table(
                    metric(route("0.0.0.0/0", None, WG0), wg_metric),
                    51820,
                )),
            ],
        ])
    };
    let source_routed = concat(&[
        &v4_internet(ETH0, "eth0", 0)[..3],
        &[add(metric(default4("198.18.0.1", ETH0), 100))],
        &v4_internet(ETH1, "eth1", 1)[..3],
        &[add(table(default4("198.18.1.1", ETH1), 101))],
        &rules(default_rules(Family::Ipv4)),
        &rules(vec![selective(
            Rule::lookup(Family::Ipv4, 100, 101),
            "198.18.1.0/24",
        )]),
    ]);
    let v6_better = concat(&[
        &v4_internet(ETH0, "eth0", 0)[..3],
        &[link(WLAN0, "wlan0", LinkKind::Wifi)],
        &v6_internet(WLAN0, 4),
    ]);
    let locals = vec![
        eth(ETH1, "eth1"),
        addr(ETH1, "fe80::3/64"),
        eth(ETH0, "eth0"),
        addr(ETH0, "fe80::2/64"),
    ];
    let cases: Vec<PrimaryCase> = vec![
        ("disconnected", lo(), None, None),
        (
            "lower metric wins",
            eth_then_wifi(100, 600),
            Some("eth0"),
            Some(Medium::Ethernet),
        ),
        (
            "metric decides, not kind",
            eth_then_wifi(700, 600),
            Some("wlan0"),
            Some(Medium::Wifi),
        ),
        (
            "equal metrics: lower index",
            eth_then_wifi(50, 50),
            Some("eth0"),
            Some(Medium::Ethernet),
        ),
        (
            "dual stack tie: IPv4",
            dual_stack(),
            Some("eth0"),
            Some(Medium::Ethernet),
        ),
        (
            "IPv6 has the higher level",
            v6_better,
            Some("wlan0"),
            Some(Medium::Wifi),
        ),
        (
            "wg-quick full tunnel",
            wg_quick(0),
            Some("wg0"),
            Some(Medium::Tunnel),
        ),
        (
            "catch-all table before metric",
            wg_quick(5000),
            Some("wg0"),
            Some(Medium::Tunnel),
        ),
        (
            "source-routed table comes after main",
            source_routed,
            Some("eth0"),
            Some(Medium::Ethernet),
        ),
        (
            "below internet: lowest index",
            locals,
            Some("eth0"),
            Some(Medium::Ethernet),
        ),
    ];
    for (name, updates, primary, medium) in cases {
        let c = eval(&updates, &config());
        assert_eq!(c.primary_interface(), primary, "{name}");
        assert_eq!(c.medium(), medium, "{name}");
        assert_eq!(
            c.primary_index(),
            primary.and_then(|p| snapshot(&updates).interface_by_name(p).map(|i| i.index)),
            "{name}"
        );
    }
}

/// Medium hints from sysfs, metered patterns and cellular.
#[test]
fn medium_and_metered() {
    let wwan = v4_internet(WWAN0, "wwan0", 6);
    let mut hinted = config();
    hinted.set_medium_hint(WWAN0, Some(Medium::Cellular));
    let cases: Vec<(&str, ConnectivityConfig, Medium, bool)> = vec![
        ("no hint", config(), Medium::Ethernet, false),
        (
            "cellular hint: metered",
            hinted.clone(),
            Medium::Cellular,
            true,
        ),
        (
            "cellular not metered by config",
            hinted.clone().with_cellular_metered(false),
            Medium::Cellular,
            false,
        ),
        (
            "metered by name",
            config().with_metered(Pattern::new("wwan*").unwrap()),
            Medium::Ethernet,
            true,
        ),
        (
            "other metered pattern",
            config().with_metered(Pattern::new("usb*").unwrap()),
            Medium::Ethernet,
            false,
        ),
    ];
    for (name, config, medium, metered) in cases {
        let c = eval(&wwan, &config);
        assert_eq!(c.medium(), Some(medium), "{name}");
        assert_eq!(c.is_metered(), metered, "{name}");
    }
    // A loopback hint makes an interface loopback: never counted.
    let mut lo_hint = config();
    lo_hint.set_medium_hint(WWAN0, Some(Medium::Loopback));
    assert_eq!(eval(&wwan, &lo_hint).overall, D);
}

#[test]
fn display_and_json() {
    let c = eval(&v4_internet(ETH0, "eth0", 0), &config());
    assert_eq!(
        c.to_string(),
        "internet (ipv4 internet, ipv6 disconnected) via eth0 (ethernet)"
    );
    assert_eq!(
        serde_json::to_value(&c).unwrap(),
        serde_json::json!({
            "ipv4": "internet",
            "ipv6": "disconnected",
            "overall": "internet",
            "online": true,
            "primary": {"index": 2, "name": "eth0", "medium": "ethernet", "metered": false},
        })
    );
    let none = Connectivity::disconnected();
    assert_eq!(
        none.to_string(),
        "disconnected (ipv4 disconnected, ipv6 disconnected)"
    );
    assert_eq!(
        serde_json::to_value(&none).unwrap()["primary"],
        serde_json::Value::Null
    );
    assert!(D < L && L < S && S < I);
    for level in Level::ALL {
        assert_eq!(level.to_string().parse::<Level>(), Ok(level));
        assert_eq!(
            serde_json::to_value(level).unwrap(),
            serde_json::Value::String(level.to_string())
        );
    }
    assert!("online".parse::<Level>().is_err());
}
