use super::*;
use crate::event::Event;
use crate::model::{LinkKind, NextHop};

fn eth(index: u32) -> Interface {
    let mut i = Interface::new(index, format!("eth{index}"), LinkKind::Ethernet);
    i.admin_up = true;
    i.carrier = true;
    i.oper_state = OperState::Up;
    i
}

fn route(dst: &str, interface: u32) -> Route {
    Route::unicast(dst.parse().unwrap(), None, interface)
}

fn local(dst: &str, interface: u32) -> Route {
    Route {
        kind: RouteType::Local,
        scope: Scope::Host,
        table: Route::LOCAL_TABLE,
        ..route(dst, interface)
    }
}

fn broadcast(dst: &str, interface: u32) -> Route {
    Route {
        kind: RouteType::Broadcast,
        table: Route::LOCAL_TABLE,
        ..route(dst, interface)
    }
}

/// eth2 with what the kernel gives an interface with 198.18.0.1/24 and 2001:db8::1/64, a
/// gateway route through it, and eth3 with a route of its own.
fn lab() -> Snapshot {
    let mut gateway = route("198.19.0.0/16", 2);
    gateway.gateway = Some("198.18.0.2".parse().unwrap());
    gateway.scope = Scope::Global;
    Snapshot::from_parts(
        [eth(2), eth(3)],
        [],
        [
            route("198.18.0.0/24", 2),
            local("198.18.0.1/32", 2),
            broadcast("198.18.0.255/32", 2),
            gateway,
            route("2001:db8::/64", 2),
            local("2001:db8::1/128", 2),
            Route {
                kind: RouteType::Multicast,
                table: Route::LOCAL_TABLE,
                ..route("ff00::/8", 2)
            },
            route("198.18.1.0/24", 3),
        ],
    )
}

fn dsts(updates: &[Update]) -> Vec<String> {
    updates
        .iter()
        .map(|u| match u {
            Update::DelRoute(r) => format!("del {}", r.destination),
            Update::NewRoute { route, .. } => {
                format!(
                    "{} {}",
                    route.destination,
                    if route.linkdown { "linkdown" } else { "up" }
                )
            }
            other => panic!("not a route change: {other:?}"),
        })
        .collect()
}

fn apply(s: &mut Snapshot, u: Update) -> Vec<Event> {
    let silent = u.silent_effects(s);
    assert!(
        silent.refresh.is_empty(),
        "nothing dumped: {:?}",
        silent.refresh
    );
    let mut events = s.apply(u);
    for d in silent.updates {
        events.extend(s.apply(d));
    }
    events
}

#[test]
fn going_down_flushes_all_but_the_host_routes_and_every_ipv6_route() {
    let s = lab();
    let down = Interface {
        admin_up: false,
        carrier: false,
        oper_state: OperState::Down,
        ..eth(2)
    };
    let silent = Update::NewLink(down.clone()).silent_effects(&s);
    assert!(silent.refresh.is_empty());
    let mut got = dsts(&silent.updates);
    got.sort();
    assert_eq!(
        got,
        [
            "del 198.18.0.0/24",
            "del 198.18.0.255/32",
            "del 198.19.0.0/16",
            "del 2001:db8::/64",
            "del 2001:db8::1/128",
            "del ff00::/8",
        ]
    );
    // Applied: eth2 keeps its local IPv4 route, eth3 is untouched.
    let mut s = s;
    apply(&mut s, Update::NewLink(down.clone()));
    let left: Vec<_> = s.routes().map(|r| r.destination.to_string()).collect();
    assert_eq!(left, ["198.18.1.0/24", "198.18.0.1/32"]);
    // Down again (a repeat) or back up: nothing more.
    assert_eq!(Update::NewLink(down).silent_effects(&s), Silent::default());
    assert_eq!(
        Update::NewLink(eth(2)).silent_effects(&s),
        Silent::default()
    );
}

#[test]
fn carrier_loss_flags_the_routes_the_kernel_flags_and_its_return_clears_them() {
    let mut s = lab();
    let lost = Interface {
        carrier: false,
        oper_state: OperState::LowerLayerDown,
        ..eth(2)
    };
    let silent = Update::NewLink(lost.clone()).silent_effects(&s);
    let mut got = dsts(&silent.updates);
    got.sort();
    assert_eq!(
        got,
        [
            "198.18.0.0/24 linkdown",
            "198.18.0.255/32 linkdown",
            "198.19.0.0/16 linkdown",
            "2001:db8::/64 linkdown",
            "ff00::/8 linkdown",
        ]
    );
    let events = apply(&mut s, Update::NewLink(lost.clone()));
    // The link change, then each flagged route as removed and added again.
    assert!(matches!(events[0], Event::InterfaceChanged { .. }));
    assert_eq!(events.len(), 1 + 2 * 5);
    let flagged = |s: &Snapshot| {
        let mut v: Vec<_> = s
            .routes()
            .filter(|r| r.linkdown)
            .map(|r| r.destination.to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(flagged(&s).len(), 5);
    // Carrier back: every flag cleared, in the model's order of routes.
    let silent = Update::NewLink(eth(2)).silent_effects(&s);
    assert_eq!(
        dsts(&silent.updates),
        [
            "198.18.0.0/24 up",
            "198.19.0.0/16 up",
            "198.18.0.255/32 up",
            "2001:db8::/64 up",
            "ff00::/8 up",
        ]
    );
    apply(&mut s, Update::NewLink(eth(2)));
    assert_eq!(s, lab());
}

#[test]
fn dormant_keeps_ipv4_routes_up_but_not_ipv6() {
    let s = lab();
    // 802.1X not done yet: carrier, but not up for IPv6.
    let dormant = Interface {
        oper_state: OperState::Dormant,
        ..eth(2)
    };
    let silent = Update::NewLink(dormant).silent_effects(&s);
    let mut got = dsts(&silent.updates);
    got.sort();
    assert_eq!(got, ["2001:db8::/64 linkdown", "ff00::/8 linkdown"]);
}

#[test]
fn multipath_routes_through_the_interface_are_dumped() {
    let mut s = lab();
    let mut multi = route("198.19.9.0/24", 2);
    multi.nexthops = vec![
        NextHop {
            gateway: Some("198.18.0.2".parse().unwrap()),
            interface: 2,
            linkdown: false,
        },
        NextHop {
            gateway: Some("198.18.1.2".parse().unwrap()),
            interface: 3,
            linkdown: false,
        },
    ];
    s.apply(Update::NewRoute {
        route: multi,
        replace: false,
    });
    let down = Interface {
        admin_up: false,
        ..eth(2)
    };
    let silent = Update::NewLink(down.clone()).silent_effects(&s);
    assert_eq!(silent.refresh.ipv4, Refresh::Interfaces([2].into()));
    assert_eq!(silent.refresh.ipv6, Refresh::Nothing);
    // IPv6 is still derived; IPv4 is left to the dump.
    assert!(silent.updates.iter().all(|u| match u {
        Update::DelRoute(r) => r.family == Family::Ipv6,
        _ => false,
    }));
    // The other interface of the multipath route: dumped too when it loses carrier.
    let lost = Interface {
        carrier: false,
        oper_state: OperState::LowerLayerDown,
        ..eth(3)
    };
    let silent = Update::NewLink(lost).silent_effects(&s);
    assert_eq!(silent.refresh.ipv4, Refresh::Interfaces([3].into()));
    // Coming back up revives dead hops: dumped, even with nothing else changing.
    s.apply(Update::NewLink(down));
    let silent = Update::NewLink(eth(2)).silent_effects(&s);
    assert_eq!(silent.refresh.ipv4, Refresh::Interfaces([2].into()));
}

#[test]
fn other_link_changes_change_no_route() {
    let s = lab();
    let mtu = Interface {
        mtu: 9000,
        ..eth(2)
    };
    assert_eq!(Update::NewLink(mtu).silent_effects(&s), Silent::default());
    // An interface the model does not hold yet.
    assert_eq!(
        Update::NewLink(eth(9)).silent_effects(&s),
        Silent::default()
    );
    // Other updates keep their refresh.
    assert_eq!(
        Update::DelLink(2).silent_effects(&s).refresh,
        RouteRefresh {
            ipv4: Refresh::All,
            ipv6: Refresh::All
        }
    );
}
