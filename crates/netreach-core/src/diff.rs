//! Comparing two snapshots: the events that turn the one into the other.
//!
//! Used after a full re-dump (socket overflow, a route refresh) and to merge the pending changes
//! of a subscriber that fell behind. Applying the result to `old` in order gives `new`.

use std::collections::BTreeMap;

use crate::event::{Event, InterfaceChanges};
use crate::model::Snapshot;

/// The events that turn `old` into `new`, in a safe order: routes, then addresses, then
/// interfaces are removed; then interfaces are added or changed, then addresses, then routes
/// added. Equal snapshots give no event.
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
    let mut events = Vec::new();
    // Removals, most dependent first.
    for r in old.rules.difference(&new.rules) {
        events.push(Event::RuleRemoved(r.clone()));
    }
    for_each_removed(&old.routes, &new.routes, |r| {
        events.push(Event::RouteRemoved(r.clone()))
    });
    for_each_removed(&old.addresses, &new.addresses, |a| {
        events.push(Event::AddressRemoved(a.clone()))
    });
    for_each_removed(&old.interfaces, &new.interfaces, |i| {
        events.push(Event::InterfaceRemoved(i.clone()))
    });
    // Additions and changes, least dependent first.
    for (idx, i) in &new.interfaces {
        match old.interfaces.get(idx) {
            None => events.push(Event::InterfaceAdded(i.clone())),
            Some(o) => {
                let changes = InterfaceChanges::between(o, i);
                if !changes.is_empty() {
                    events.push(Event::InterfaceChanged {
                        old: o.clone(),
                        new: i.clone(),
                        changes,
                    });
                }
            }
        }
    }
    for (k, a) in &new.addresses {
        match old.addresses.get(k) {
            None => events.push(Event::AddressAdded(a.clone())),
            Some(o) if o != a => events.push(Event::AddressChanged {
                old: o.clone(),
                new: a.clone(),
            }),
            Some(_) => {}
        }
    }
    // A route whose key is equal but whose attributes differ is removed, then added.
    for (k, r) in &new.routes {
        match old.routes.get(k) {
            None => events.push(Event::RouteAdded(r.clone())),
            Some(o) if o != r => {
                events.push(Event::RouteRemoved(o.clone()));
                events.push(Event::RouteAdded(r.clone()));
            }
            Some(_) => {}
        }
    }
    for r in new.rules.difference(&old.rules) {
        events.push(Event::RuleAdded(r.clone()));
    }
    events
}

fn for_each_removed<K: Ord, V>(old: &BTreeMap<K, V>, new: &BTreeMap<K, V>, mut f: impl FnMut(&V)) {
    for (k, v) in old {
        if !new.contains_key(k) {
            f(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Address, AddressFlags, Interface, LinkKind, Route, Scope};

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
                let mut i = new.interfaces[&1].clone();
                i.mtu = 9000;
                new.interfaces.insert(1, i);
            }
            let mut s = old.clone();
            for e in diff(&old, &new) {
                s.apply(e.to_update());
            }
            assert_eq!(s, new, "diff {a} -> {b}");
        }
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
