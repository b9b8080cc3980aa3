//! The IP Helper translation over fixtures: the tables of a Windows 11 laptop (loopback,
//! Ethernet unplugged, Wi-Fi up, IPv4 and IPv6, a tentative and a temporary address), written
//! from what `Get-NetAdapter`, `Get-NetIPAddress` and `Get-NetRoute` show, with documentation
//! addresses; and rows that break each identity rule.

use std::net::IpAddr;

use super::*;
use crate::diff;
use crate::reach::{RouteQuery, evaluate, lookup_in_model};

fn luid(if_type: u16, index: u32) -> u64 {
    (u64::from(if_type) << 48) | (u64::from(index) << 24)
}

const LO: u64 = 24 << 48 | 1 << 24;
const ETH: u64 = 6 << 48 | 1 << 24;
const WIFI: u64 = 71 << 48 | 2 << 24;

fn if_row(luid: u64, index: u32, alias: &str, if_type: u32) -> IfRow {
    IfRow {
        luid,
        index,
        guid: (
            0x6b29_fc40 + index,
            0xca47,
            0x1067,
            [0xb3, 0x1d, 0, 0xdd, 1, 6, 0x62, 0xda],
        ),
        alias: alias.into(),
        if_type,
        mtu: 1500,
        mac: vec![0x02, 0, 0x5e, 0x10, 0, index as u8],
        oper_status: 1,
        admin_status: 1,
        media_connect_state: 1,
    }
}

fn addr_row(luid: u64, index: u32, address: &str, prefix_len: u8) -> AddrRow {
    AddrRow {
        luid,
        index,
        address: address.parse().unwrap(),
        prefix_len,
        dad_state: 4,
        temporary: false,
    }
}

fn route_row(luid: u64, index: u32, dst: &str, len: u8, next_hop: &str, metric: u32) -> RouteRow {
    RouteRow {
        luid,
        index,
        destination: dst.parse().unwrap(),
        prefix_len: len,
        next_hop: next_hop.parse().unwrap(),
        metric,
        protocol: 2,
        loopback: false,
    }
}

/// The laptop: loopback (1), Ethernet (7, cable out), Wi-Fi (12).
fn laptop() -> (Vec<IfRow>, Vec<AddrRow>, Vec<RouteRow>) {
    let mut lo = if_row(LO, 1, "Loopback Pseudo-Interface 1", 24);
    lo.mac = Vec::new();
    lo.mtu = u32::MAX;
    lo.media_connect_state = 0;
    let mut eth = if_row(ETH, 7, "Ethernet", 6);
    eth.oper_status = 2;
    eth.media_connect_state = 2;
    let wifi = if_row(WIFI, 12, "Wi-Fi", 71);
    let mut tentative = addr_row(WIFI, 12, "2001:db8:1::99", 64);
    tentative.dad_state = 1;
    let mut temporary = addr_row(WIFI, 12, "2001:db8:1::aa", 64);
    temporary.temporary = true;
    let mut host = route_row(WIFI, 12, "198.18.5.20", 32, "0.0.0.0", 256);
    host.loopback = true;
    let mut static_route = route_row(WIFI, 12, "198.19.0.0", 16, "198.18.5.1", 5);
    static_route.protocol = 3;
    (
        vec![lo, eth, wifi],
        vec![
            addr_row(LO, 1, "127.0.0.1", 8),
            addr_row(LO, 1, "::1", 128),
            addr_row(ETH, 7, "169.254.7.7", 16),
            addr_row(WIFI, 12, "198.18.5.20", 24),
            addr_row(WIFI, 12, "fe80::1c2:3ff:fe04:506", 64),
            tentative,
            temporary,
        ],
        vec![
            route_row(LO, 1, "127.0.0.0", 8, "0.0.0.0", 256),
            route_row(WIFI, 12, "0.0.0.0", 0, "198.18.5.1", 0),
            route_row(WIFI, 12, "198.18.5.0", 24, "0.0.0.0", 256),
            host,
            static_route,
            route_row(WIFI, 12, "::", 0, "fe80::1", 0),
            route_row(WIFI, 12, "2001:db8:1::", 64, "::", 256),
            route_row(ETH, 7, "169.254.0.0", 16, "0.0.0.0", 256),
        ],
    )
}

#[test]
fn the_laptop_as_a_model() {
    let (ifs, addrs, routes) = laptop();
    let (snap, rejected) = snapshot(&ifs, &addrs, &routes);
    assert!(rejected.is_empty(), "{rejected:?}");
    let names: Vec<_> = snap
        .interfaces()
        .map(|i| (i.index, i.name.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            (1, "Loopback Pseudo-Interface 1"),
            (7, "Ethernet"),
            (12, "Wi-Fi")
        ]
    );
    let lo = snap.interface(1).unwrap();
    assert_eq!(lo.kind, LinkKind::Loopback);
    assert!(lo.carrier, "media state unknown and oper up: carrier");
    assert_eq!(lo.mac, None);
    let eth = snap.interface(7).unwrap();
    assert_eq!(
        (eth.kind.clone(), eth.admin_up, eth.oper_state, eth.carrier),
        (LinkKind::Ethernet, true, OperState::Down, false)
    );
    let wifi = snap.interface(12).unwrap();
    assert_eq!(wifi.kind, LinkKind::Wifi);
    assert!(wifi.is_running());
    assert_eq!(wifi.mac.as_ref().unwrap().to_string(), "02:00:5e:10:00:0c");

    assert_eq!(snap.addresses().count(), 7);
    let find = |a: &str| {
        let ip: IpAddr = a.parse().unwrap();
        snap.find_address(ip).next().unwrap().clone()
    };
    assert_eq!(find("127.0.0.1").scope, Scope::Host);
    assert_eq!(find("169.254.7.7").scope, Scope::Link);
    assert_eq!(find("fe80::1c2:3ff:fe04:506").scope, Scope::Link);
    assert_eq!(find("198.18.5.20").scope, Scope::Global);
    assert!(!find("2001:db8:1::99").is_usable(), "tentative");
    assert!(
        find("2001:db8:1::aa")
            .flags
            .contains(AddressFlags::TEMPORARY)
    );

    assert_eq!(snap.routes().count(), 8);
    let default4 = snap
        .routes()
        .find(|r| r.is_default() && r.family == Family::Ipv4)
        .unwrap();
    assert_eq!(default4.gateway, Some("198.18.5.1".parse().unwrap()));
    assert_eq!(
        (default4.interface, default4.scope),
        (Some(12), Scope::Global)
    );
    let host = snap
        .routes()
        .find(|r| r.destination.to_string() == "198.18.5.20/32")
        .unwrap();
    assert_eq!(
        (host.kind, host.table),
        (RouteType::Local, Route::LOCAL_TABLE)
    );
    let stat = snap
        .routes()
        .find(|r| r.destination.to_string() == "198.19.0.0/16")
        .unwrap();
    assert_eq!(stat.protocol.name(), "static");
}

#[test]
fn the_model_answers_lookups_the_way_windows_would() {
    let (ifs, addrs, routes) = laptop();
    let (snap, _) = snapshot(&ifs, &addrs, &routes);
    let q = |remote: &str, local: &str| RouteQuery {
        remote: remote.parse().unwrap(),
        local: local.parse().unwrap(),
        interface: None,
    };
    let on_link = q("198.18.5.77", "198.18.5.20");
    let v = evaluate(&on_link, &lookup_in_model(&on_link, &snap), &snap);
    assert_eq!(v.to_string(), "reachable dev Wi-Fi (on link)");
    let far = q("198.51.100.1", "198.18.5.20");
    let v = evaluate(&far, &lookup_in_model(&far, &snap), &snap);
    assert_eq!(v.to_string(), "reachable via 198.18.5.1 dev Wi-Fi");
    // The Ethernet's link-local address is on a link with no carrier.
    let apipa = q("169.254.9.9", "169.254.7.7");
    let v = evaluate(&apipa, &lookup_in_model(&apipa, &snap), &snap);
    assert_eq!(
        v.to_string(),
        "unreachable: interface Ethernet has no carrier"
    );
}

#[test]
fn a_repeat_of_the_same_tables_is_no_change() {
    let (ifs, addrs, routes) = laptop();
    let (a, _) = snapshot(&ifs, &addrs, &routes);
    let (b, _) = snapshot(&ifs, &addrs, &routes);
    assert!(diff(&a, &b).is_empty());
    // Order of rows does not matter either.
    let (mut ifs2, mut addrs2, mut routes2) = laptop();
    ifs2.reverse();
    addrs2.reverse();
    routes2.reverse();
    let (c, _) = snapshot(&ifs2, &addrs2, &routes2);
    assert_eq!(a, c);
}

#[test]
fn an_added_address_is_one_event() {
    let (ifs, mut addrs, routes) = laptop();
    let (before, _) = snapshot(&ifs, &addrs, &routes);
    addrs.push(addr_row(WIFI, 12, "198.18.5.21", 24));
    let (after, _) = snapshot(&ifs, &addrs, &routes);
    let events = diff(&before, &after);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        matches!(&events[0], crate::Event::AddressAdded(a) if a.address.to_string() == "198.18.5.21")
    );
}

#[test]
fn luids_are_parsed_not_trusted() {
    assert!(Luid::parse(ETH).is_ok());
    assert_eq!(Luid::parse(ETH).unwrap().if_type(), 6);
    assert_eq!(Luid::parse(WIFI).unwrap().net_luid_index(), 2);
    for bad in [0, 1, ETH | 1, 6 << 48, 1 << 24, u64::MAX] {
        assert_eq!(Luid::parse(bad), Err(RowError::BadLuid(bad)), "{bad:#x}");
    }
    assert_eq!(luid(6, 1), ETH);
}

#[test]
fn guids_are_parsed_and_nil_is_refused() {
    let g = Guid::from_text("{6B29FC40-CA47-1067-B31D-00DD010662DA}").unwrap();
    assert_eq!(g.to_string(), "{6B29FC40-CA47-1067-B31D-00DD010662DA}");
    assert_eq!(
        Guid::from_text("6b29fc40-ca47-1067-b31d-00dd010662da").unwrap(),
        g
    );
    for bad in [
        "",
        "{}",
        "{6B29FC40-CA47-1067-B31D-00DD010662DA",
        "6B29FC40CA471067B31D00DD010662DA",
        "{6B29FC40-CA47-1067-B31D-00DD010662DX}",
        "{6B29FC4-0CA47-1067-B31D-00DD010662DA}",
        "{+B29FC40-CA47-1067-B31D-00DD010662DA}",
        "{6B29FC40-CA47-1067-B31D-00DD010662DAé}",
    ] {
        assert!(
            matches!(Guid::from_text(bad), Err(RowError::BadGuidText(_))),
            "{bad:?}"
        );
    }
    assert_eq!(
        Guid::from_text("{00000000-0000-0000-0000-000000000000}"),
        Err(RowError::NilGuid)
    );
}

#[test]
fn interface_rows_that_break_identity_are_left_out() {
    let good = if_row(ETH, 7, "Ethernet", 6);
    let mut zero = good.clone();
    zero.index = 0;
    let mut bad_luid = if_row(ETH | 0x42, 8, "bad", 6);
    bad_luid.luid = ETH | 0x42;
    let wrong_type = if_row(ETH, 9, "wrong type", 71);
    let mut nil = if_row(luid(6, 5), 10, "nil", 6);
    nil.guid = (0, 0, 0, [0; 8]);
    let same_index = if_row(luid(6, 6), 7, "same index", 6);
    let same_luid = if_row(ETH, 11, "same luid", 6);
    let (snap, rejected) = snapshot(
        &[good, zero, bad_luid, wrong_type, nil, same_index, same_luid],
        &[],
        &[],
    );
    assert_eq!(snap.interfaces().count(), 1);
    let why: Vec<_> = rejected.interfaces.iter().map(|(_, e)| e.clone()).collect();
    assert_eq!(
        why,
        [
            RowError::ZeroIndex,
            RowError::BadLuid(ETH | 0x42),
            RowError::LuidTypeMismatch {
                luid: ETH,
                luid_type: 6,
                row_type: 71
            },
            RowError::NilGuid,
            RowError::Duplicate {
                index: 7,
                luid: luid(6, 6)
            },
            RowError::Duplicate {
                index: 11,
                luid: ETH
            },
        ]
    );
}

#[test]
fn an_index_is_never_used_without_its_luid() {
    let (ifs, _, _) = laptop();
    let addrs = [
        // The Wi-Fi's index with the Ethernet's LUID.
        addr_row(ETH, 12, "198.18.5.30", 24),
        // A LUID no interface has, with a real index.
        addr_row(luid(6, 9), 7, "198.18.5.31", 24),
        // A broken LUID.
        addr_row(3, 12, "198.18.5.32", 24),
        addr_row(WIFI, 12, "198.18.5.33", 33),
    ];
    let routes = [
        route_row(WIFI, 7, "198.18.9.0", 24, "0.0.0.0", 1),
        route_row(WIFI, 12, "198.18.9.0", 40, "0.0.0.0", 1),
        route_row(WIFI, 12, "198.18.9.0", 24, "2001:db8::1", 1),
        route_row(luid(71, 7), 12, "198.18.9.0", 24, "0.0.0.0", 1),
    ];
    let (snap, rejected) = snapshot(&ifs, &addrs, &routes);
    assert_eq!(snap.addresses().count(), 0);
    assert_eq!(snap.routes().count(), 0);
    assert_eq!(rejected.len(), 8);
    assert_eq!(
        rejected.addresses[0].1,
        RowError::IndexMismatch {
            luid: ETH,
            expected: 7,
            index: 12
        }
    );
    assert_eq!(rejected.addresses[1].1, RowError::UnknownLuid(luid(6, 9)));
    assert_eq!(rejected.addresses[2].1, RowError::BadLuid(3));
    assert!(matches!(
        rejected.addresses[3].1,
        RowError::BadPrefix { len: 33, .. }
    ));
    assert!(matches!(
        rejected.routes[1].1,
        RowError::BadPrefix { len: 40, .. }
    ));
    assert!(matches!(
        rejected.routes[2].1,
        RowError::FamilyMismatch { .. }
    ));
}

#[test]
fn every_field_at_its_extremes_translates_without_panic() {
    let statuses = [i32::MIN, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, i32::MAX];
    for &s in &statuses {
        for &t in &[0u32, 6, 24, 53, 71, 131, u32::MAX] {
            let mut row = if_row(luid(t as u16, 1), 1, "", t);
            row.oper_status = s;
            row.admin_status = s;
            row.media_connect_state = s;
            row.mac = vec![0xff; 64];
            let _ = interface(&row);
        }
        let mut a = addr_row(WIFI, 12, "2001:db8::1", 128);
        a.dad_state = s;
        let mut r = route_row(WIFI, 12, "::", 0, "::", u32::MAX);
        r.protocol = s;
        let (ifs, _, _) = laptop();
        let (snap, _) = snapshot(&ifs, &[a], &[r]);
        assert_eq!(snap.routes().count(), 1);
    }
    // An empty alias gets a name of its own.
    let (_, _, ifc) = interface(&if_row(ETH, 7, "", 6)).unwrap();
    assert_eq!(ifc.name, "if7");
}

/// The rows of `tests/fixtures/iphlp/wine-8.0-namespace.json` (see its README).
fn wine_rows() -> (Vec<IfRow>, Vec<AddrRow>, Vec<RouteRow>) {
    let v: serde_json::Value = serde_json::from_str(include_str!(
        "../../tests/fixtures/iphlp/wine-8.0-namespace.json"
    ))
    .expect("the fixture is JSON");
    let n = |v: &serde_json::Value| v.as_i64().expect("a number");
    let ip = |v: &serde_json::Value| -> IpAddr { v.as_str().unwrap().parse().unwrap() };
    let ifs = v["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let g = r["guid"].as_array().unwrap();
            let mut d4 = [0u8; 8];
            for (b, x) in d4.iter_mut().zip(g[3].as_array().unwrap()) {
                *b = n(x) as u8;
            }
            IfRow {
                luid: r["luid"].as_u64().unwrap(),
                index: n(&r["index"]) as u32,
                guid: (n(&g[0]) as u32, n(&g[1]) as u16, n(&g[2]) as u16, d4),
                alias: r["alias"].as_str().unwrap().to_owned(),
                if_type: n(&r["if_type"]) as u32,
                mtu: n(&r["mtu"]) as u32,
                mac: r["mac"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|b| n(b) as u8)
                    .collect(),
                oper_status: n(&r["oper_status"]) as i32,
                admin_status: n(&r["admin_status"]) as i32,
                media_connect_state: n(&r["media_connect_state"]) as i32,
            }
        })
        .collect();
    let addrs = v["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| AddrRow {
            luid: r["luid"].as_u64().unwrap(),
            index: n(&r["index"]) as u32,
            address: ip(&r["address"]),
            prefix_len: n(&r["prefix_len"]) as u8,
            dad_state: n(&r["dad_state"]) as i32,
            temporary: r["temporary"].as_bool().unwrap(),
        })
        .collect();
    let routes = v["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| RouteRow {
            luid: r["luid"].as_u64().unwrap(),
            index: n(&r["index"]) as u32,
            destination: ip(&r["destination"]),
            prefix_len: n(&r["prefix_len"]) as u8,
            next_hop: ip(&r["next_hop"]),
            metric: n(&r["metric"]) as u32,
            protocol: n(&r["protocol"]) as i32,
            loopback: r["loopback"].as_bool().unwrap(),
        })
        .collect();
    (ifs, addrs, routes)
}

#[test]
fn wine_rows_of_a_namespace_translate_as_ip_shows_it() {
    let (ifs, addrs, routes) = wine_rows();
    let (snap, rejected) = snapshot(&ifs, &addrs, &routes);
    assert!(
        rejected.is_empty(),
        "Wine's LUIDs and GUIDs pass: {rejected:?}"
    );
    let names: Vec<_> = snap
        .interfaces()
        .map(|i| (i.index, i.name.as_str(), i.kind.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            (1, "lo", "loopback"),
            (2, "w1", "ether"),
            (3, "w0", "ether"),
            (4, "w3", "ether"),
            (5, "w2", "ether")
        ]
    );
    let w0 = snap.interface(3).unwrap();
    assert!(w0.is_running());
    assert_eq!(w0.mac.as_ref().unwrap().to_string(), "42:de:61:f2:31:01");
    // Wine's words for a link Linux has down (w3) and one without carrier (w2).
    let w3 = snap.interface(4).unwrap();
    assert_eq!(
        (w3.admin_up, w3.oper_state, w3.carrier),
        (true, OperState::Down, false)
    );
    let w2 = snap.interface(5).unwrap();
    assert_eq!((w2.oper_state, w2.carrier), (OperState::Up, false));
    assert!(!w2.is_running(), "media disconnected: no carrier");

    let addresses: Vec<_> = snap
        .addresses()
        .map(|a| (a.interface, a.address.to_string(), a.prefix_len, a.scope))
        .collect();
    assert_eq!(
        addresses,
        [
            (1, "127.0.0.1".to_owned(), 8, Scope::Host),
            (1, "::1".to_owned(), 128, Scope::Host),
            (3, "198.18.7.1".to_owned(), 24, Scope::Global),
            (3, "2001:db8:7::1".to_owned(), 64, Scope::Global),
        ]
    );
    let shown: Vec<String> = snap
        .routes()
        .map(|r| {
            crate::model::RouteDisplay {
                route: r,
                snap: &snap,
            }
            .to_string()
        })
        .collect();
    assert_eq!(
        shown,
        ["default via 198.18.7.2 dev w0", "198.18.7.0/24 dev w0"]
    );

    // Wine's GetBestRoute2 answers ERROR_NOT_SUPPORTED: the model answers, on link.
    let q = RouteQuery {
        remote: "198.18.7.2".parse().unwrap(),
        local: "198.18.7.1".parse().unwrap(),
        interface: None,
    };
    let v = evaluate(&q, &lookup_in_model(&q, &snap), &snap);
    assert_eq!(v.to_string(), "reachable dev w0 (on link)");
}
