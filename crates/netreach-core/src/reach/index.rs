//! The indexes that let the tracker find the targets a model event can affect without looking at
//! every target: by interface (the one the connection is bound to and the ones its last known
//! path uses), by local address, and by remote address in sorted order per family, so that
//! "every target whose remote lies in this prefix" is a range query.
//!
//! Ordered maps, not hash maps: iteration order is deterministic (reports come out in the same
//! order on every run) and no random seed is drawn from the system.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::Family;
use crate::reach::slots::Handle;
use crate::reach::target::Target;
use crate::reach::tracker::TargetId;

/// Targets by interface, local address and remote address.
#[derive(Debug, Default)]
pub(crate) struct TargetIndex {
    by_interface: BTreeMap<u32, BTreeSet<Handle>>,
    by_local: BTreeMap<IpAddr, BTreeSet<Handle>>,
    /// Per family (IPv4, IPv6): remote address as a number, then target.
    by_remote: [BTreeSet<(u128, Handle)>; 2],
}

fn slot(family: Family) -> usize {
    match family {
        Family::Ipv4 => 0,
        Family::Ipv6 => 1,
    }
}

fn number(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl TargetIndex {
    /// Indexes a new target by its addresses and its interfaces.
    pub(crate) fn insert(&mut self, id: Handle, target: &Target, interfaces: &[u32]) {
        self.by_local.entry(target.local()).or_default().insert(id);
        self.by_remote[slot(target.family())].insert((number(target.remote()), id));
        self.set_interfaces(id, &[], interfaces);
    }

    /// Forgets a target.
    pub(crate) fn remove(&mut self, id: Handle, target: &Target, interfaces: &[u32]) {
        if let Some(set) = self.by_local.get_mut(&target.local()) {
            set.remove(&id);
            if set.is_empty() {
                self.by_local.remove(&target.local());
            }
        }
        self.by_remote[slot(target.family())].remove(&(number(target.remote()), id));
        self.set_interfaces(id, interfaces, &[]);
    }

    /// Moves a target from the interfaces `old` to `new` (both sorted, without duplicates).
    pub(crate) fn set_interfaces(&mut self, id: Handle, old: &[u32], new: &[u32]) {
        for i in old.iter().filter(|i| !new.contains(i)) {
            if let Some(set) = self.by_interface.get_mut(i) {
                set.remove(&id);
                if set.is_empty() {
                    self.by_interface.remove(i);
                }
            }
        }
        for i in new.iter().filter(|i| !old.contains(i)) {
            self.by_interface.entry(*i).or_default().insert(id);
        }
    }

    /// Targets bound to interface `index` or whose last known path uses it.
    pub(crate) fn on_interface(&self, index: u32) -> impl Iterator<Item = Handle> + '_ {
        self.by_interface.get(&index).into_iter().flatten().copied()
    }

    /// Targets whose local address is `addr`.
    pub(crate) fn with_local(&self, addr: IpAddr) -> impl Iterator<Item = Handle> + '_ {
        self.by_local.get(&addr).into_iter().flatten().copied()
    }

    /// Targets whose remote address lies in `net`: a range query, `O(log n + k)`.
    pub(crate) fn remote_in(&self, net: IpNet) -> impl Iterator<Item = Handle> + '_ {
        let family = Family::of(&net.addr());
        let lo = (number(net.network()), Handle::first(TargetId::MIN));
        let hi = (number(net.broadcast()), Handle::last(TargetId::MAX));
        self.by_remote[slot(family)]
            .range(lo..=hi)
            .map(|(_, id)| *id)
    }

    /// Every target of a family.
    pub(crate) fn of_family(&self, family: Family) -> impl Iterator<Item = Handle> + '_ {
        self.by_remote[slot(family)].iter().map(|(_, id)| *id)
    }

    /// Number of targets indexed by interface, local address and remote (for tests).
    #[cfg(test)]
    pub(crate) fn sizes(&self) -> (usize, usize, usize) {
        (
            self.by_interface.values().map(BTreeSet::len).sum(),
            self.by_local.values().map(BTreeSet::len).sum(),
            self.by_remote.iter().map(BTreeSet::len).sum(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u64) -> Handle {
        Handle::new(TargetId(n), n as u32)
    }
    use crate::reach::target::RouteQuery;

    fn target(local: &str, remote: &str) -> Target {
        Target::unchecked(RouteQuery {
            remote: remote.parse().unwrap(),
            local: local.parse().unwrap(),
            interface: None,
        })
    }

    #[test]
    fn prefix_range_finds_exactly_the_remotes_inside() {
        let mut ix = TargetIndex::default();
        let remotes = [
            "198.18.4.255",
            "198.18.5.0",
            "198.18.5.77",
            "198.18.5.255",
            "198.18.6.0",
            "2001:db8:5::1",
        ];
        for (n, r) in remotes.iter().enumerate() {
            let local = if r.contains(':') {
                "2001:db8::2"
            } else {
                "198.18.0.2"
            };
            ix.insert(h(n as u64), &target(local, r), &[2]);
        }
        let inside: Vec<_> = ix
            .remote_in("198.18.5.0/24".parse().unwrap())
            .map(|h| h.id)
            .collect();
        assert_eq!(inside, [TargetId(1), TargetId(2), TargetId(3)]);
        assert_eq!(ix.remote_in("0.0.0.0/0".parse().unwrap()).count(), 5);
        assert_eq!(ix.remote_in("::/0".parse().unwrap()).count(), 1);
        assert_eq!(ix.remote_in("198.19.0.0/16".parse().unwrap()).count(), 0);
        assert_eq!(
            ix.of_family(Family::Ipv6).map(|h| h.id).collect::<Vec<_>>(),
            [TargetId(5)]
        );
    }

    #[test]
    fn interfaces_move_and_removal_leaves_nothing() {
        let mut ix = TargetIndex::default();
        let t = target("198.18.0.2", "198.18.5.1");
        ix.insert(h(1), &t, &[2]);
        ix.set_interfaces(h(1), &[2], &[3, 4]);
        assert_eq!(ix.on_interface(2).count(), 0);
        assert_eq!(ix.on_interface(4).collect::<Vec<_>>(), [h(1)]);
        assert_eq!(ix.with_local(t.local()).count(), 1);
        ix.remove(h(1), &t, &[3, 4]);
        assert_eq!(ix.sizes(), (0, 0, 0));
    }
}
