//! Comparing two snapshots: the events that turn the one into the other.
//!
//! Used after a full re-dump (socket overflow, a route refresh) and to merge the pending changes
//! of a subscriber that fell behind. Applying the result to `old` in order gives `new`, and
//! applying each event reports just that event.
//!
//! That holds because a snapshot never names a missing interface (see [`Snapshot`]): when an
//! interface goes, [`Snapshot::apply`] takes its addresses and routes along, and `new`, which
//! has lost the interface, has lost them too, so the diff removes them itself, before the
//! interface, and the removal of the interface finds nothing left to take.

use imbl::OrdMap;
use imbl::ordmap::DiffItem;

use crate::event::{Event, InterfaceChanges};
use crate::model::{Interface, Route, Snapshot};

/// The events that turn `old` into `new`, in a safe order: rules, routes (those that change
/// too), then addresses, then interfaces are removed; then interfaces are added or changed,
/// then addresses, then routes added, then rules. Equal snapshots give no event.
///
/// ```
/// use netreach_core::{diff, Interface, LinkKind, Snapshot, Event};
///
/// let old = Snapshot::new();
/// let new = Snapshot::from_parts([Interface::new(1, "lo", LinkKind::Loopback)], [], []);
/// assert_eq!(diff(&old, &new).len(), 1);
/// assert!(diff(&new, &new).is_empty());
/// ```
pub fn diff(old: &Snapshot, new: &Snapshot) -> Vec<Event> {
    // The maps are persistent: `OrdMap::diff` skips the subtrees two snapshots share, so
    // comparing a state with one a few changes away costs about those changes.
    let interfaces = Changes::of(&old.interfaces, &new.interfaces);
    let addresses = Changes::of(&old.addresses, &new.addresses);
    let routes = Changes::of(&old.routes, &new.routes);
    let mut events = Vec::new();
    // Removals, most dependent first.
    for r in old.rules.iter().filter(|r| !new.rules.contains(*r)) {
        events.push(Event::RuleRemoved(r.clone()));
    }
    // A route whose key is equal but whose attributes differ is removed, then added: here,
    // with the others, as its old next hops may go through an interface about to be removed.
    let mut removed: Vec<&Route> = routes.removed.clone();
    removed.extend(routes.updated.iter().map(|(o, _)| *o));
    removed.sort_by_key(|r| r.key());
    events.extend(removed.into_iter().map(|r| Event::RouteRemoved(r.clone())));
    events.extend(
        addresses
            .removed
            .iter()
            .map(|a| Event::AddressRemoved((*a).clone())),
    );
    events.extend(
        interfaces
            .removed
            .iter()
            .map(|i| Event::InterfaceRemoved(Interface::clone(i))),
    );
    // Additions and changes, least dependent first, each kind in key order.
    let mut ifaces: Vec<_> = interfaces
        .added
        .iter()
        .map(|i| (i.index, Event::InterfaceAdded(Interface::clone(i))))
        .chain(interfaces.updated.iter().filter_map(|(o, i)| {
            let changes = InterfaceChanges::between(o, i);
            (!changes.is_empty()).then(|| {
                (
                    i.index,
                    Event::InterfaceChanged {
                        old: Interface::clone(o),
                        new: Interface::clone(i),
                        changes,
                    },
                )
            })
        }))
        .collect();
    ifaces.sort_by_key(|(index, _)| *index);
    events.extend(ifaces.into_iter().map(|(_, e)| e));
    let mut addrs: Vec<_> = addresses
        .added
        .iter()
        .map(|a| (a.key(), Event::AddressAdded((*a).clone())))
        .chain(addresses.updated.iter().map(|(o, a)| {
            (
                a.key(),
                Event::AddressChanged {
                    old: (*o).clone(),
                    new: (*a).clone(),
                },
            )
        }))
        .collect();
    addrs.sort_by_key(|(key, _)| *key);
    events.extend(addrs.into_iter().map(|(_, e)| e));
    let mut added: Vec<&Route> = routes.added.clone();
    added.extend(routes.updated.iter().map(|(_, r)| *r));
    added.sort_by_key(|r| r.key());
    events.extend(added.into_iter().map(|r| Event::RouteAdded(r.clone())));
    for r in new.rules.iter().filter(|r| !old.rules.contains(*r)) {
        events.push(Event::RuleAdded(r.clone()));
    }
    events
}

/// What differs between two versions of one map.
struct Changes<'a, V> {
    removed: Vec<&'a V>,
    added: Vec<&'a V>,
    updated: Vec<(&'a V, &'a V)>,
}

impl<'a, V: Clone + PartialEq> Changes<'a, V> {
    fn of<K: Ord + Clone>(old: &'a OrdMap<K, V>, new: &'a OrdMap<K, V>) -> Changes<'a, V> {
        let mut c = Changes {
            removed: Vec::new(),
            added: Vec::new(),
            updated: Vec::new(),
        };
        for item in old.diff(new) {
            match item {
                DiffItem::Remove(_, v) => c.removed.push(v),
                DiffItem::Add(_, v) => c.added.push(v),
                DiffItem::Update { old, new } if old.1 != new.1 => c.updated.push((old.1, new.1)),
                DiffItem::Update { .. } => {}
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Address, AddressFlags, Interface, LinkKind, NextHop, Route, Scope, Update};

    fn sample(n: u32) -> Snapshot {
        let ifs = (1..=n).map(|i| Interface::new(i, format!("veth{i}"), LinkKind::Veth));
        let addrs = (1..=n).map(|i| Address {
            interface: i,
            address: format!("198.18.{}.{}", i / 250, i % 250 + 1)
                .parse()
                .unwrap(),
            prefix_len: 24,
            scope: Scope::Global,
            flags: AddressFlags::empty(),
        });
        let routes =
            (1..=n).map(|i| Route::unicast(format!("198.19.{i}.0/24").parse().unwrap(), None, i));
        Snapshot::from_parts(ifs, addrs, routes)
    }

    /// Applying the diff to the old snapshot gives the new one, for random-ish pairs.
    #[test]
    fn diff_then_apply_roundtrips() {
        for (a, b) in [(0, 5), (5, 0), (3, 7), (7, 3), (4, 4)] {
            let old = sample(a);
            let mut new = sample(b);
            if b > 1 {
                // Change one interface and one address flag too.
                let mut i = Interface::clone(&new.interfaces[&1]);
                i.mtu = 9000;
                new.insert_interface(i);
            }
            let mut s = old.clone();
            for e in diff(&old, &new) {
                s.apply(e.to_update());
            }
            assert_eq!(s, new, "diff {a} -> {b}");
        }
    }

    /// Applies each event of `diff(old, new)` to `old`, checking that it reports just itself.
    fn replay(old: &Snapshot, new: &Snapshot) -> Snapshot {
        let mut s = old.clone();
        for e in diff(old, new) {
            assert_eq!(s.apply(e.to_update()), [e]);
        }
        s
    }

    fn eth(index: u32) -> Interface {
        Interface::new(index, format!("eth{index}"), LinkKind::Ethernet)
    }

    /// The fuzzer's case: a dump that raced with the removal of `eth2` lists `eth2`'s address
    /// and route but not `eth2`. A snapshot that kept them made the diff remove only the
    /// interface, and applying that took the address and route along: the replay missed them.
    #[test]
    fn a_removed_interface_takes_its_address_and_routes_in_the_diff_too() {
        let addr = Address {
            interface: 2,
            address: "198.18.0.2".parse().unwrap(),
            prefix_len: 24,
            scope: Scope::Global,
            flags: AddressFlags::empty(),
        };
        let route = Route::unicast("198.18.0.0/24".parse().unwrap(), None, 2);
        let old = Snapshot::from_parts([eth(2), eth(3)], [addr.clone()], [route.clone()]);
        let mut new = Snapshot::new();
        new.load(Update::NewLink(eth(3)));
        new.load(Update::NewAddress(addr));
        new.load(Update::NewRoute {
            route,
            replace: false,
        });
        assert_eq!(replay(&old, &new), new);
        assert_eq!(new, Snapshot::from_parts([eth(3)], [], []));
    }

    /// A multipath route that loses its hop through a removed interface is removed before the
    /// interface, not taken along by it.
    #[test]
    fn a_route_that_loses_a_hop_is_removed_before_the_hops_interface() {
        let hop = |interface| NextHop {
            gateway: None,
            interface,
            linkdown: false,
        };
        let mut both = Route::unicast("198.18.5.0/24".parse().unwrap(), None, 2);
        both.nexthops = vec![hop(2), hop(3)];
        let mut one = both.clone();
        one.nexthops.truncate(1);
        let old = Snapshot::from_parts([eth(2), eth(3)], [], [both.clone()]);
        let new = Snapshot::from_parts([eth(2)], [], [one.clone()]);
        assert_eq!(
            diff(&old, &new),
            [
                Event::RouteRemoved(both),
                Event::InterfaceRemoved(eth(3)),
                Event::RouteAdded(one)
            ]
        );
        assert_eq!(replay(&old, &new), new);
    }

    #[test]
    fn order_is_removals_then_additions() {
        let ev = diff(&sample(2), &Snapshot::new());
        let t: Vec<_> = ev.iter().map(Event::type_name).collect();
        assert_eq!(
            t,
            [
                "route_removed",
                "route_removed",
                "address_removed",
                "address_removed",
                "interface_removed",
                "interface_removed"
            ]
        );
    }
}
