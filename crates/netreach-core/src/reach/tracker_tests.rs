//! Scenarios for the connection tracker, run against the fake kernel of [`super::sim`]: first
//! reports, change suppression, in-flight coalescing, snapshot-only re-evaluation, and the work a
//! change costs with ten thousand targets.

use crate::event::Update;
use crate::model::{Family, Interface, LinkKind, Route, Rule};
use crate::reach::sim::{Change, ETH0, LO, Sim, WLAN0, addr, ip, network, route, running};
use crate::reach::{
    Action, NamedInterface, Path, Reachability, ReachabilityChange, Reason, Target, TargetId,
};

fn link(sim: &Sim, index: u32, f: impl Fn(&mut Interface)) -> Update {
    let mut i = sim.snap.interface(index).cloned().unwrap();
    f(&mut i);
    Update::NewLink(i)
}

fn new_route(r: Route) -> Update {
    Update::NewRoute {
        route: r,
        replace: false,
    }
}

fn via(gw: &str, interface: u32, name: &str) -> Reachability {
    Reachability::Reachable(Path {
        interface,
        interface_name: name.into(),
        gateway: Some(ip(gw)),
        source: None,
    })
}

fn eth0() -> NamedInterface {
    NamedInterface {
        index: ETH0,
        name: "eth0".into(),
    }
}

/// Adds targets and answers their first lookups; drops the first reports.
fn started(targets: &[(&str, &str)]) -> (Sim, Vec<TargetId>) {
    let mut sim = Sim::new(network());
    let ids = targets
        .iter()
        .map(|(l, r)| {
            let t = sim.target(l, r);
            sim.tracker.add(t)
        })
        .collect();
    sim.run();
    sim.changes();
    (sim, ids)
}

#[test]
fn first_report_follows_the_first_answer() {
    let mut sim = Sim::new(network());
    let t = sim.target("198.18.0.2", "198.18.5.1");
    let id = sim.tracker.add(t);
    assert_eq!(sim.tracker.reachability(id), None);
    assert!(
        sim.changes().is_empty(),
        "no report before the kernel answered"
    );
    let actions = sim.take_actions();
    assert_eq!(actions.len(), 1);
    for a in actions {
        sim.answer(a);
    }
    let want = via("198.18.0.1", ETH0, "eth0");
    assert_eq!(
        sim.changes(),
        [Change {
            target: id,
            old: None,
            new: want.clone()
        }]
    );
    assert_eq!(sim.tracker.reachability(id), Some(&want));
    // An unreachable target's first report says so, with its reason.
    let t = sim.target("198.18.0.2", "198.18.0.2");
    let lo = sim.tracker.add(t);
    sim.apply([link(&sim, LO, |i| i.admin_up = false)]);
    sim.run();
    let c = sim.changes();
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].target, c[0].old.clone()), (lo, None));
    assert!(matches!(
        c[0].new,
        Reachability::Unreachable(Reason::InterfaceDown { .. })
    ));
}

#[test]
fn the_same_verdict_is_not_reported_twice() {
    let (mut sim, _) = started(&[
        ("198.18.0.2", "198.18.5.1"),
        ("2001:db8::2", "2001:db8:5::1"),
    ]);
    // A default-route refresh that changes nothing the rules look at, and a full refresh.
    let mut same = route("0.0.0.0/0", "198.18.0.1", ETH0);
    same.protocol = crate::model::RouteProtocol(16);
    sim.apply([new_route(same)]);
    sim.tracker.refresh_all();
    sim.run();
    assert!(sim.lookups >= 4);
    assert!(sim.changes().is_empty());
    // MTU and MAC changes are not even looked at.
    sim.apply([link(&sim, ETH0, |i| i.mtu = 9000)]);
    assert_eq!(sim.tracker.last_examined(), 0);
    assert!(sim.take_actions().is_empty());
}

#[test]
fn carrier_loss_is_reported_from_the_snapshot_at_once() {
    let (mut sim, ids) = started(&[("198.18.0.2", "198.18.5.1")]);
    sim.apply([link(&sim, ETH0, |i| i.carrier = false)]);
    let lost = Reachability::Unreachable(Reason::CarrierLost { interface: eth0() });
    let c = sim.changes();
    assert_eq!(c.len(), 1, "before any lookup was answered");
    assert_eq!((c[0].target, &c[0].new), (ids[0], &lost));
    assert_eq!(c[0].old, Some(via("198.18.0.1", ETH0, "eth0")));
    // The lookup is still made (routes may have moved); it confirms, so nothing more.
    let mut down = route("0.0.0.0/0", "198.18.0.1", ETH0);
    down.linkdown = true;
    sim.apply([new_route(down)]);
    sim.run();
    assert!(sim.changes().is_empty());
    // Carrier back: reachable again.
    sim.apply([
        link(&sim, ETH0, |i| i.carrier = true),
        new_route(route("0.0.0.0/0", "198.18.0.1", ETH0)),
    ]);
    sim.run();
    let c = sim.changes();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].new, via("198.18.0.1", ETH0, "eth0"));
}

#[test]
fn local_address_removal_is_reported_from_the_snapshot() {
    let (mut sim, ids) = started(&[("198.18.0.2", "198.18.5.1"), ("198.18.1.2", "198.18.1.1")]);
    sim.apply([Update::DelAddress(addr(ETH0, "198.18.0.2/24"))]);
    let c = sim.changes();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].target, ids[0]);
    assert_eq!(
        c[0].new,
        Reachability::Unreachable(Reason::LocalAddressRemoved)
    );
    // Only the target with that address is looked up again.
    assert_eq!(sim.take_actions().len(), 1);
}

#[test]
fn a_route_change_moves_the_path() {
    let (mut sim, ids) = started(&[("198.18.1.2", "198.18.5.1"), ("198.18.0.2", "198.18.5.1")]);
    // From wlan0's address the default route through eth0 is a mismatch.
    assert!(matches!(
        sim.tracker.reachability(ids[0]),
        Some(Reachability::Unreachable(Reason::InterfaceMismatch { .. }))
    ));
    sim.apply([
        Update::DelRoute(route("0.0.0.0/0", "198.18.0.1", ETH0)),
        new_route(route("0.0.0.0/0", "198.18.1.1", WLAN0)),
    ]);
    sim.run();
    let c = sim.changes();
    assert_eq!(c.len(), 2);
    assert_eq!(
        (c[0].target, &c[0].new),
        (ids[0], &via("198.18.1.1", WLAN0, "wlan0"))
    );
    assert_eq!(c[1].target, ids[1]);
    assert!(matches!(
        c[1].new,
        Reachability::Unreachable(Reason::InterfaceMismatch { .. })
    ));
}

#[test]
fn policy_rules_affect_only_what_they_select() {
    let (mut sim, ids) = started(&[("198.18.1.2", "198.18.5.1"), ("198.18.0.2", "198.18.5.1")]);
    let mut table = route("0.0.0.0/0", "198.18.1.1", WLAN0);
    table.table = 100;
    sim.apply([new_route(table)]);
    let actions = sim.take_actions();
    assert_eq!(actions.len(), 2, "a route in any table may matter");
    for a in actions {
        sim.answer(a);
    }
    assert!(sim.changes().is_empty(), "no rule reaches table 100 yet");
    let mut rule = Rule::lookup(Family::Ipv4, 100, 100);
    rule.source = Some("198.18.1.2/32".parse().unwrap());
    let defaults = [(0, Route::LOCAL_TABLE), (32766, Route::MAIN_TABLE)]
        .map(|(p, t)| Update::NewRule(Rule::lookup(Family::Ipv4, p, t)));
    sim.apply(defaults);
    sim.run();
    sim.apply([Update::NewRule(rule)]);
    let actions = sim.take_actions();
    assert_eq!(actions.len(), 1, "only the target from 198.18.1.2");
    for a in actions {
        sim.answer(a);
    }
    let c = sim.changes();
    assert_eq!(c.len(), 1);
    assert_eq!(
        (c[0].target, &c[0].new),
        (ids[0], &via("198.18.1.1", WLAN0, "wlan0"))
    );
}

#[test]
fn a_lookup_in_flight_is_not_asked_for_twice() {
    let mut sim = Sim::new(network());
    let t = sim.target("198.18.0.2", "198.18.5.1");
    let id = sim.tracker.add(t);
    // Changes while the first lookup is still queued need nothing more.
    sim.apply([new_route(route("198.18.5.0/24", "198.18.0.1", ETH0))]);
    let mut actions = sim.take_actions();
    assert_eq!(actions.len(), 1);
    // Changes while it is in flight mark it stale, once however many.
    sim.apply([Update::DelRoute(route("198.18.5.0/24", "198.18.0.1", ETH0))]);
    sim.apply([new_route(route("198.18.5.0/26", "198.18.0.1", ETH0))]);
    assert!(sim.take_actions().is_empty());
    // The stale answer is held back and asked again; the fresh one is reported.
    sim.answer(actions.remove(0));
    assert!(sim.changes().is_empty());
    let mut again = sim.take_actions();
    assert_eq!(again.len(), 1);
    sim.answer(again.remove(0));
    let c = sim.changes();
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].target, c[0].old.clone()), (id, None));
    assert_eq!(sim.lookups, 2);
}

#[test]
fn stale_answers_are_reported_when_changes_never_stop() {
    let mut sim = Sim::new(network());
    let t = sim.target("198.18.0.2", "198.18.5.1");
    sim.tracker.add(t);
    let mut answered = 0;
    while sim.changes().is_empty() {
        let Some(action) = sim.tracker.poll_action() else {
            panic!("no lookup left and no report")
        };
        // Every lookup is overtaken by another route change.
        let n = answered % 2;
        sim.apply([new_route(route(
            &format!("198.18.{n}.0/16"),
            "198.18.0.1",
            ETH0,
        ))]);
        sim.answer(action);
        answered += 1;
    }
    assert_eq!(answered, 3, "two held back, the third reported");
}

#[test]
fn removed_targets_are_forgotten() {
    let mut sim = Sim::new(network());
    let t = sim.target("198.18.0.2", "198.18.5.1");
    let id = sim.tracker.add(t.clone());
    let actions = sim.take_actions();
    assert_eq!(sim.tracker.remove(id), Some(t));
    for a in actions {
        sim.answer(a);
    }
    assert!(sim.changes().is_empty());
    assert!(sim.tracker.is_empty());
    assert_eq!(sim.tracker.remove(id), None);
    assert!(!sim.tracker.refresh(id));
    // A target removed with a change pending: the change goes too.
    let id = sim.tracker.add(sim.target("198.18.0.2", "198.18.5.1"));
    sim.run();
    sim.tracker.remove(id);
    assert!(sim.changes().is_empty());
    sim.apply([link(&sim, ETH0, |i| i.admin_up = false)]);
    assert_eq!(sim.tracker.last_examined(), 0);
}

#[test]
fn the_path_interface_coming_back_brings_a_lookup() {
    let (mut sim, ids) = started(&[("198.18.0.2", "198.18.5.1")]);
    // Admin down: IPv4 flushes the routes (the driver re-dumps them and diffs).
    sim.apply([
        link(&sim, ETH0, |i| i.admin_up = false),
        Update::DelRoute(route("0.0.0.0/0", "198.18.0.1", ETH0)),
    ]);
    sim.run();
    // The lookup then finds no route; the cause is still the interface, and one change.
    let news: Vec<_> = sim.changes().into_iter().map(|c| c.new).collect();
    assert_eq!(
        news,
        [Reachability::Unreachable(Reason::InterfaceDown {
            interface: eth0()
        })]
    );
    // Up again: the target is still indexed under eth0, so it is looked up.
    sim.apply([link(&sim, ETH0, |i| i.admin_up = true)]);
    let actions = sim.take_actions();
    assert_eq!(actions.len(), 1);
    assert!(sim.changes().is_empty(), "good news waits for the lookup");
    for a in actions {
        sim.answer(a);
    }
    // Nobody put the default route back: now there is no route, and the interface is fine.
    assert_eq!(
        sim.tracker.reachability(ids[0]),
        Some(&Reachability::Unreachable(Reason::NoRoute))
    );
    sim.apply([new_route(route("0.0.0.0/0", "198.18.0.1", ETH0))]);
    sim.run();
    assert_eq!(
        sim.tracker.reachability(ids[0]),
        Some(&via("198.18.0.1", ETH0, "eth0"))
    );
}

#[test]
fn no_route_after_the_path_interface_went_away_names_the_interface() {
    let (mut sim, ids) = started(&[("198.18.0.2", "198.18.5.1"), ("198.18.1.2", "198.18.1.9")]);
    // wlan0 is deleted with its address and routes: the near target's address is gone first.
    sim.apply([Update::DelLink(WLAN0)]);
    sim.run();
    assert_eq!(
        sim.tracker.reachability(ids[1]),
        Some(&Reachability::Unreachable(Reason::LocalAddressRemoved))
    );
    // eth0 loses carrier and someone deletes the default route meanwhile: carrier, not route.
    sim.apply([
        link(&sim, ETH0, |i| i.carrier = false),
        Update::DelRoute(route("0.0.0.0/0", "198.18.0.1", ETH0)),
    ]);
    sim.run();
    let c = sim.changes();
    assert!(
        matches!(
            c.last().map(|c| &c.new),
            Some(Reachability::Unreachable(Reason::CarrierLost { .. }))
        ),
        "{c:?}"
    );
    assert_eq!(c.iter().filter(|c| c.target == ids[0]).count(), 1);
}

/// Ten thousand targets: a change costs in proportion to the targets it can affect.
#[test]
fn unrelated_changes_queue_no_lookup_at_scale() {
    let mut snap = network();
    snap.apply(Update::NewLink(running(4, "eth1", LinkKind::Ethernet)));
    let mut sim = Sim::new(snap);
    for n in 0..10_000u32 {
        let remote = format!("198.19.{}.{}", n / 250, n % 250 + 1);
        let t = Target::new(ip("198.18.0.2"), ip(&remote), None, &sim.snap).unwrap();
        sim.tracker.add(t);
    }
    sim.run();
    assert_eq!(sim.changes().len(), 10_000);
    assert_eq!(sim.lookups, 10_000);

    // A link event on an interface no target uses: nothing looked at, nothing queued.
    sim.apply([link(&sim, 4, |i| i.carrier = false)]);
    assert_eq!(sim.tracker.last_examined(), 0);
    assert!(sim.take_actions().is_empty());
    // Nor an address of another interface, nor a route outside every remote.
    sim.apply([
        Update::NewAddress(addr(4, "198.18.4.2/24")),
        new_route(route("198.18.4.0/24", "", 4)),
        new_route(route("2001:db8:4::/64", "", 4)),
    ]);
    assert_eq!(sim.tracker.last_examined(), 0);
    assert!(sim.take_actions().is_empty());

    // A route for one /24 of the remotes: exactly the 250 targets inside.
    sim.apply([new_route(route("198.19.7.0/24", "198.18.0.1", ETH0))]);
    assert_eq!(sim.tracker.last_examined(), 250);
    assert_eq!(sim.take_actions().len(), 250);

    // The path interface loses carrier: all are re-evaluated at once, each looked up once.
    sim.apply([link(&sim, ETH0, |i| i.carrier = false)]);
    assert_eq!(sim.changes().len(), 10_000);
    let actions = sim.take_actions();
    assert_eq!(
        actions.len(),
        10_000 - 250,
        "those in flight are only marked stale"
    );
    assert!(actions.iter().all(
        |a| matches!(a, Action::LookupRoute { query, .. } if query.local == ip("198.18.0.2"))
    ));
}

#[test]
fn changes_serialise_for_machines() {
    let (mut sim, ids) = started(&[("198.18.0.2", "198.18.5.1")]);
    sim.apply([link(&sim, ETH0, |i| i.carrier = false)]);
    let c: ReachabilityChange = sim.tracker.poll_change().unwrap();
    assert_eq!(c.target, ids[0]);
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "target": 0,
            "old": {"state": "reachable", "path": {
                "interface": 2, "interface_name": "eth0", "gateway": "198.18.0.1", "source": null}},
            "new": {"state": "unreachable", "reason": {
                "kind": "carrier_lost", "interface": {"index": 2, "name": "eth0"}}},
        })
    );
    assert_eq!(
        c.to_string(),
        "target 0: unreachable: interface eth0 has no carrier (was reachable via 198.18.0.1 dev eth0)"
    );
}

/// A default route coming or going concerns the targets that use it, not those a more
/// specific route of the same table serves; a route in another table concerns them all.
#[test]
fn routes_shadowed_by_a_more_specific_one_cost_nothing() {
    let near: Vec<(String, String)> = (0..50)
        .map(|n| ("198.18.1.2".to_owned(), format!("198.18.1.{}", n + 10)))
        .collect();
    let far: Vec<(String, String)> = (0..50)
        .map(|n| ("198.18.0.2".to_owned(), format!("198.19.0.{}", n + 10)))
        .collect();
    let pairs: Vec<(&str, &str)> = near
        .iter()
        .chain(&far)
        .map(|(l, r)| (l.as_str(), r.as_str()))
        .collect();
    let (mut sim, ids) = started(&pairs);
    let default = route("0.0.0.0/0", "198.18.0.1", ETH0);
    sim.apply([Update::DelRoute(default.clone())]);
    let looked: Vec<_> = sim.take_actions();
    assert_eq!(
        looked.len(),
        50,
        "only the targets through the default route"
    );
    assert!(looked.iter().all(
        |a| matches!(a, Action::LookupRoute { query, .. } if query.local == ip("198.18.0.2"))
    ));
    for a in looked {
        sim.answer(a);
    }
    assert!(ids[50..].iter().all(
        |id| sim.tracker.reachability(*id) == Some(&Reachability::Unreachable(Reason::NoRoute))
    ));
    sim.apply([new_route(default)]);
    assert_eq!(sim.take_actions().len(), 50);
    // The same default route in another table: the near targets' answers say nothing about it.
    let mut other = route("0.0.0.0/0", "198.18.1.1", WLAN0);
    other.table = 100;
    sim.apply([new_route(other)]);
    assert_eq!(sim.tracker.last_examined(), 100);
}

/// A target removed while the work of a batch is deferred, and a target added again under the
/// same id before the work is done: the old mark does nothing to the new target, whose first
/// report is its own first answer.
#[test]
fn a_target_removed_and_added_again_under_its_id_mid_batch_starts_afresh() {
    let (mut sim, ids) = started(&[("198.18.0.2", "198.18.5.1"), ("198.18.0.2", "198.18.5.2")]);
    let mut events = Vec::new();
    sim.snap
        .apply_into(link(&sim, ETH0, |i| i.carrier = false), &mut events);
    sim.tracker.defer_events(&events);
    assert!(sim.tracker.has_work());
    assert!(sim.tracker.remove(ids[0]).is_some());
    let again = sim.target("198.18.0.2", "198.18.5.3");
    assert!(sim.tracker.insert(ids[0], again.clone()));
    assert_eq!(sim.tracker.work(&sim.snap, usize::MAX), 0);
    let changes = sim.changes();
    assert_eq!(
        changes.iter().map(|c| c.target).collect::<Vec<_>>(),
        [ids[1]],
        "only the target that stayed is judged by the batch"
    );
    sim.run();
    let first = sim.changes();
    assert_eq!(first.len(), 1);
    assert_eq!((first[0].target, &first[0].old), (ids[0], &None));
    assert_eq!(sim.tracker.target(ids[0]), Some(&again));
}

#[test]
fn no_route_left_in_the_model_is_reported_with_the_model_event() {
    let (mut sim, ids) = started(&[
        ("198.18.0.2", "198.18.5.1"),
        ("2001:db8::2", "2001:db8:5::1"),
        ("198.18.0.2", "198.18.0.9"),
    ]);
    sim.apply([Update::DelRoute(route("0.0.0.0/0", "198.18.0.1", ETH0))]);
    let c = sim.changes();
    assert_eq!(c.len(), 1, "before any lookup was answered: {c:?}");
    assert_eq!(
        (c[0].target, &c[0].new),
        (ids[0], &Reachability::Unreachable(Reason::NoRoute))
    );
    assert_eq!(c[0].old, Some(via("198.18.0.1", ETH0, "eth0")));
    // The lookup is still made, and the kernel confirms: nothing more.
    let actions = sim.take_actions();
    assert_eq!(actions.len(), 1, "the connected target is shadowed");
    for a in actions {
        sim.answer(a);
    }
    assert!(sim.changes().is_empty());
    // The route back: reachable again once the kernel says so, not before.
    sim.apply([new_route(route("0.0.0.0/0", "198.18.0.1", ETH0))]);
    assert!(sim.changes().is_empty(), "good news waits for the lookup");
    sim.run();
    let c = sim.changes();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].new, via("198.18.0.1", ETH0, "eth0"));
    // IPv6 the same way.
    sim.apply([Update::DelRoute(route("::/0", "2001:db8::1", ETH0))]);
    let c = sim.changes();
    assert_eq!(c.len(), 1);
    assert_eq!(
        (c[0].target, &c[0].new),
        (ids[1], &Reachability::Unreachable(Reason::NoRoute))
    );
}

#[test]
fn a_route_left_in_any_table_or_a_rejecting_rule_waits_for_the_lookup() {
    let (mut sim, ids) = started(&[("198.18.0.2", "198.18.5.1")]);
    // A route of another table still contains the remote: a rule may lead there.
    let mut other = route("198.18.0.0/16", "198.18.0.1", ETH0);
    other.table = 100;
    sim.apply([new_route(other)]);
    sim.run();
    sim.apply([Update::DelRoute(route("0.0.0.0/0", "198.18.0.1", ETH0))]);
    assert!(sim.changes().is_empty(), "decided by the lookup");
    sim.run();
    let c = sim.changes();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].new, Reachability::Unreachable(Reason::NoRoute));
    // Back to reachable; then a `prohibit` rule after `main`: a failed lookup ends there.
    let mut other = route("198.18.0.0/16", "198.18.0.1", ETH0);
    other.table = 100;
    let mut prohibit = Rule::lookup(Family::Ipv4, 40000, 0);
    prohibit.action = crate::model::RuleAction::Prohibit;
    sim.apply([
        Update::DelRoute(other),
        new_route(route("0.0.0.0/0", "198.18.0.1", ETH0)),
        Update::NewRule(Rule::lookup(Family::Ipv4, 32766, Route::MAIN_TABLE)),
        Update::NewRule(prohibit),
    ]);
    sim.run();
    assert_eq!(sim.changes().len(), 1);
    assert_eq!(
        sim.tracker.reachability(ids[0]),
        Some(&via("198.18.0.1", ETH0, "eth0"))
    );
    sim.apply([Update::DelRoute(route("0.0.0.0/0", "198.18.0.1", ETH0))]);
    assert!(
        sim.changes().is_empty(),
        "the rule decides, through the lookup"
    );
    sim.run();
    let c = sim.changes();
    assert_eq!(c.len(), 1);
    assert_eq!(
        c[0].new,
        Reachability::Unreachable(Reason::RouteType(crate::model::RouteType::Prohibit))
    );
}

#[test]
fn a_link_going_down_with_its_routes_names_the_link_once() {
    let (mut sim, ids) = started(&[("198.18.0.2", "198.18.5.1")]);
    sim.apply([
        link(&sim, ETH0, |i| i.admin_up = false),
        Update::DelRoute(route("0.0.0.0/0", "198.18.0.1", ETH0)),
    ]);
    let c = sim.changes();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].target, ids[0]);
    assert!(
        matches!(
            c[0].new,
            Reachability::Unreachable(Reason::InterfaceDown { .. })
        ),
        "{c:?}"
    );
    sim.run();
    assert!(
        sim.changes().is_empty(),
        "the lookup's no route names the link too"
    );
}

#[test]
fn no_route_from_the_model_never_makes_a_first_report() {
    let mut sim = Sim::new(network());
    let t = sim.target("198.18.0.2", "198.18.5.1");
    let id = sim.tracker.add(t);
    let actions = sim.take_actions();
    // The default route goes while the first lookup is out, and before the tracker worked on
    // the batch; the answer predates the removal.
    let mut events = Vec::new();
    sim.snap.apply_into(
        Update::DelRoute(route("0.0.0.0/0", "198.18.0.1", ETH0)),
        &mut events,
    );
    sim.tracker.defer_events(&events);
    let Some(Action::LookupRoute { id: lookup, .. }) = actions.into_iter().next() else {
        panic!("the first lookup");
    };
    sim.tracker.handle_lookup(
        lookup,
        Ok(route("0.0.0.0/0", "198.18.0.1", ETH0)),
        &sim.snap,
    );
    sim.tracker.work(&sim.snap, usize::MAX);
    assert!(
        sim.changes().is_empty(),
        "the first report follows a usable answer"
    );
    sim.run();
    assert_eq!(
        sim.changes(),
        [Change {
            target: id,
            old: None,
            new: Reachability::Unreachable(Reason::NoRoute)
        }]
    );
}
