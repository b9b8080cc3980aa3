//! Model updates (what the kernel said) and events (what changed), and applying the one to a
//! snapshot to get the other.
//!
//! Applying is idempotent: a new-message is an upsert, a del-message a delete, and a message that
//! repeats what the snapshot already holds yields no event. That makes "dump again and diff" a
//! safe answer to any doubt (see [`crate::diff`]).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::model::{
    Address, Family, Interface, Route, RouteDisplay, RouteKey, Rule, RuleDisplay, Snapshot,
};

/// One decoded kernel message, in model terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// `RTM_NEWLINK`: an interface appeared or changed.
    NewLink(Interface),
    /// `RTM_DELLINK`: the interface with this index is gone.
    DelLink(u32),
    /// `RTM_NEWADDR`.
    NewAddress(Address),
    /// `RTM_DELADDR`.
    DelAddress(Address),
    /// `RTM_NEWROUTE`; `replace` is the `NLM_F_REPLACE` flag of the notification.
    NewRoute {
        /// The route.
        route: Route,
        /// The route replaces the one with the same destination, table, TOS and metric.
        replace: bool,
    },
    /// `RTM_DELROUTE`.
    DelRoute(Route),
    /// `RTM_NEWRULE`.
    NewRule(Rule),
    /// `RTM_DELRULE`.
    DelRule(Rule),
}

/// Which routes of one family must be dumped again.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Refresh {
    /// None.
    #[default]
    Nothing,
    /// Those through these interfaces (a dump filtered by output interface).
    Interfaces(BTreeSet<u32>),
    /// All of them.
    All,
}

impl Refresh {
    fn via(index: u32) -> Refresh {
        Refresh::Interfaces(BTreeSet::from([index]))
    }

    /// Widens this refresh to cover `other` too.
    pub fn merge(&mut self, other: Refresh) {
        *self = match (std::mem::take(self), other) {
            (Refresh::All, _) | (_, Refresh::All) => Refresh::All,
            (Refresh::Nothing, x) | (x, Refresh::Nothing) => x,
            (Refresh::Interfaces(mut a), Refresh::Interfaces(b)) => {
                a.extend(b);
                Refresh::Interfaces(a)
            }
        };
    }
}

/// Which routes must be dumped again because the kernel changed them without a notification.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteRefresh {
    /// IPv4 routes.
    pub ipv4: Refresh,
    /// IPv6 routes.
    pub ipv6: Refresh,
}

impl RouteRefresh {
    fn both(r: Refresh) -> RouteRefresh {
        RouteRefresh {
            ipv4: r.clone(),
            ipv6: r,
        }
    }

    /// Nothing to refresh.
    pub fn is_empty(&self) -> bool {
        self.ipv4 == Refresh::Nothing && self.ipv6 == Refresh::Nothing
    }

    /// Widens this refresh to cover `other` too.
    pub fn merge(&mut self, other: RouteRefresh) {
        self.ipv4.merge(other.ipv4);
        self.ipv6.merge(other.ipv6);
    }

    /// What to refresh, per family.
    pub fn families(self) -> impl Iterator<Item = (Family, Refresh)> {
        [(Family::Ipv4, self.ipv4), (Family::Ipv6, self.ipv6)]
            .into_iter()
            .filter(|(_, r)| *r != Refresh::Nothing)
    }
}

impl Snapshot {
    /// What the kernel may change silently when IPv4 address `a` is removed from this state.
    fn refresh_after_removing(&self, a: &Address) -> Refresh {
        if self.sources_routes(a.address) {
            return Refresh::All;
        }
        if !self.addresses.contains_key(&a.key()) {
            // Not held (refused, or removed already): nothing of the model hangs on it.
            return Refresh::Nothing;
        }
        let last = !self
            .addresses_of(a.interface)
            .any(|o| o.family() == Family::Ipv4 && o.key() != a.key());
        if last {
            Refresh::via(a.interface)
        } else {
            Refresh::Nothing
        }
    }
}

impl Update {
    /// Which routes the kernel may have changed without telling and the model cannot derive,
    /// so that the driver dumps them again and applies the difference (an interface going
    /// down or changing carrier is derived: [`Update::silent_effects`]):
    ///
    /// - an interface going away: multipath routes may keep their other hops (all routes, as
    ///   a dump cannot be filtered by an interface that no longer exists);
    /// - an IPv4 address removed: the routes the kernel made for it go with notifications,
    ///   but other routes using it as preferred source are flushed silently (all IPv4 routes,
    ///   when the model holds such a route), and so are all routes through its interface when
    ///   it was the interface's last IPv4 address (that interface's routes). Removing one of
    ///   several addresses that no route names as source costs no dump: the kernel says all.
    pub fn route_refresh_needed(&self, before: &Snapshot) -> RouteRefresh {
        match self {
            Update::DelLink(index) if before.interface(*index).is_some() => {
                RouteRefresh::both(Refresh::All)
            }
            Update::DelAddress(a) if a.family() == Family::Ipv4 => RouteRefresh {
                ipv4: before.refresh_after_removing(a),
                ipv6: Refresh::Nothing,
            },
            _ => RouteRefresh::default(),
        }
    }
}

/// What changed on an interface, as a small set of flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct InterfaceChanges {
    /// Administrative state.
    pub admin_up: bool,
    /// Carrier.
    pub carrier: bool,
    /// Operational state.
    pub oper_state: bool,
    /// Name.
    pub name: bool,
    /// MTU.
    pub mtu: bool,
    /// Hardware address.
    pub mac: bool,
    /// Link kind.
    pub kind: bool,
}

impl InterfaceChanges {
    /// Compares two versions of an interface.
    pub fn between(old: &Interface, new: &Interface) -> InterfaceChanges {
        InterfaceChanges {
            admin_up: old.admin_up != new.admin_up,
            carrier: old.carrier != new.carrier,
            oper_state: old.oper_state != new.oper_state,
            name: old.name != new.name,
            mtu: old.mtu != new.mtu,
            mac: old.mac != new.mac,
            kind: old.kind != new.kind,
        }
    }

    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.names().next().is_none()
    }

    /// Names of the changed fields, as used in JSON (`admin_up`, `carrier`, ...).
    pub fn names(&self) -> impl Iterator<Item = &'static str> {
        [
            (self.admin_up, "admin_up"),
            (self.carrier, "carrier"),
            (self.oper_state, "oper_state"),
            (self.name, "name"),
            (self.mtu, "mtu"),
            (self.mac, "mac"),
            (self.kind, "kind"),
        ]
        .into_iter()
        .filter(|(c, _)| *c)
        .map(|(_, n)| n)
    }
}

/// A typed change of the model.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A new interface.
    InterfaceAdded(Interface),
    /// An interface is gone (its addresses and routes were removed first, each with an event).
    InterfaceRemoved(Interface),
    /// An interface changed.
    InterfaceChanged {
        /// Before.
        old: Interface,
        /// After.
        new: Interface,
        /// What differs.
        changes: InterfaceChanges,
    },
    /// A new address.
    AddressAdded(Address),
    /// An address is gone.
    AddressRemoved(Address),
    /// An address changed its scope or flags (for example DAD finished: no longer tentative).
    AddressChanged {
        /// Before.
        old: Address,
        /// After.
        new: Address,
    },
    /// A new route.
    RouteAdded(Route),
    /// A route is gone.
    RouteRemoved(Route),
    /// A new policy-routing rule.
    RuleAdded(Rule),
    /// A policy-routing rule is gone.
    RuleRemoved(Rule),
}

impl Event {
    /// The `type` name used in JSON (`interface_added`, `route_removed`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::InterfaceAdded(_) => "interface_added",
            Event::InterfaceRemoved(_) => "interface_removed",
            Event::InterfaceChanged { .. } => "interface_changed",
            Event::AddressAdded(_) => "address_added",
            Event::AddressRemoved(_) => "address_removed",
            Event::AddressChanged { .. } => "address_changed",
            Event::RouteAdded(_) => "route_added",
            Event::RouteRemoved(_) => "route_removed",
            Event::RuleAdded(_) => "rule_added",
            Event::RuleRemoved(_) => "rule_removed",
        }
    }

    /// The index of the interface this event is about (a route's output interface).
    pub fn interface_index(&self) -> Option<u32> {
        match self {
            Event::InterfaceAdded(i) | Event::InterfaceRemoved(i) => Some(i.index),
            Event::InterfaceChanged { new, .. } => Some(new.index),
            Event::AddressAdded(a) | Event::AddressRemoved(a) => Some(a.interface),
            Event::AddressChanged { new, .. } => Some(new.interface),
            Event::RouteAdded(r) | Event::RouteRemoved(r) => r.interface,
            Event::RuleAdded(_) | Event::RuleRemoved(_) => None,
        }
    }

    /// The update that applies this event to a snapshot: `apply(e.to_update())` on the state
    /// before the event gives the state after it.
    pub fn to_update(&self) -> Update {
        match self.clone() {
            Event::InterfaceAdded(i) => Update::NewLink(i),
            Event::InterfaceChanged { new, .. } => Update::NewLink(new),
            Event::InterfaceRemoved(i) => Update::DelLink(i.index),
            Event::AddressAdded(a) => Update::NewAddress(a),
            Event::AddressChanged { new, .. } => Update::NewAddress(new),
            Event::AddressRemoved(a) => Update::DelAddress(a),
            Event::RouteAdded(route) => Update::NewRoute {
                route,
                replace: false,
            },
            Event::RouteRemoved(r) => Update::DelRoute(r),
            Event::RuleAdded(r) => Update::NewRule(r),
            Event::RuleRemoved(r) => Update::DelRule(r),
        }
    }

    /// A one-line human description, resolving interface names from `snap` (the state after
    /// the event; a removed interface's name comes from the event itself).
    pub fn describe<'a>(&'a self, snap: &'a Snapshot) -> impl fmt::Display + 'a {
        Describe { event: self, snap }
    }
}

struct Describe<'a> {
    event: &'a Event,
    snap: &'a Snapshot,
}

impl fmt::Display for Describe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |idx: u32| -> String {
            self.snap
                .interface_name(idx)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("#{idx}"))
        };
        match self.event {
            Event::InterfaceAdded(i) => write!(
                f,
                "interface {} added ({}, {}, carrier {})",
                i.name,
                i.kind,
                if i.admin_up { "up" } else { "down" },
                if i.carrier { "on" } else { "off" }
            ),
            Event::InterfaceRemoved(i) => write!(f, "interface {} removed", i.name),
            Event::InterfaceChanged { old, new, changes } => {
                write!(f, "interface {} changed:", new.name)?;
                if changes.name {
                    write!(f, " name {} -> {}", old.name, new.name)?;
                }
                if changes.admin_up {
                    let s = |b: bool| if b { "up" } else { "down" };
                    write!(f, " admin {} -> {}", s(old.admin_up), s(new.admin_up))?;
                }
                if changes.carrier {
                    let s = |b: bool| if b { "on" } else { "off" };
                    write!(f, " carrier {} -> {}", s(old.carrier), s(new.carrier))?;
                }
                if changes.oper_state {
                    write!(f, " state {} -> {}", old.oper_state, new.oper_state)?;
                }
                if changes.mtu {
                    write!(f, " mtu {} -> {}", old.mtu, new.mtu)?;
                }
                if changes.mac {
                    let m = |m: &Option<crate::MacAddr>| {
                        m.as_ref().map(|m| m.to_string()).unwrap_or("none".into())
                    };
                    write!(f, " mac {} -> {}", m(&old.mac), m(&new.mac))?;
                }
                if changes.kind {
                    write!(f, " kind {} -> {}", old.kind, new.kind)?;
                }
                Ok(())
            }
            Event::AddressAdded(a) => write!(
                f,
                "address {}/{} added on {}{}",
                a.address,
                a.prefix_len,
                name(a.interface),
                a.flags.display_suffix()
            ),
            Event::AddressRemoved(a) => write!(
                f,
                "address {}/{} removed from {}",
                a.address,
                a.prefix_len,
                name(a.interface)
            ),
            Event::AddressChanged { old, new } => write!(
                f,
                "address {}/{} on {} changed: flags [{}] -> [{}]",
                new.address,
                new.prefix_len,
                name(new.interface),
                old.flags,
                new.flags
            ),
            Event::RouteAdded(r) => write!(
                f,
                "route added: {}",
                RouteDisplay {
                    route: r,
                    snap: self.snap
                }
            ),
            Event::RouteRemoved(r) => write!(
                f,
                "route removed: {}",
                RouteDisplay {
                    route: r,
                    snap: self.snap
                }
            ),
            Event::RuleAdded(r) => write!(f, "rule added: {}", RuleDisplay(r)),
            Event::RuleRemoved(r) => write!(f, "rule removed: {}", RuleDisplay(r)),
        }
    }
}

impl Snapshot {
    /// Applies one kernel update and returns what changed, in order. Pure and idempotent.
    ///
    /// The model follows the kernel's rule that addresses and routes live on interfaces (see
    /// [`Snapshot`]):
    ///
    /// - removing an interface also removes its addresses and the routes through it, as their
    ///   output interface or one of their next hops' (each with its own event, before the
    ///   interface's): the kernel does not always say so itself (it flushes IPv4 routes
    ///   silently);
    /// - an address on an interface the snapshot does not hold, or a route through one, is
    ///   refused: no change, no event. The kernel has no such thing; the model has not seen
    ///   the link yet (a dump that raced with it), and the link's own message, with those of
    ///   its addresses and routes, follows. A refused replace removes nothing either.
    ///
    /// So a snapshot never names a missing interface, and the events of [`crate::diff`]
    /// replay exactly.
    pub fn apply(&mut self, update: Update) -> Vec<Event> {
        let mut events = Vec::new();
        self.apply_into(update, &mut events);
        events
    }

    /// Applies an update without computing events: the fast path for building a snapshot from
    /// a dump. The state it leaves is the one [`Snapshot::apply`] leaves, refusals included:
    /// load the links of a dump before its addresses and routes.
    pub fn load(&mut self, update: Update) {
        match update {
            Update::NewLink(i) => {
                self.insert_interface(i);
            }
            Update::NewAddress(a) if self.holds_interface_of(&a) => {
                self.insert_address(a);
            }
            Update::NewRoute {
                route,
                replace: false,
            } if self.holds_interfaces_of(&route) => {
                self.insert_route(route);
            }
            Update::NewRule(r) => {
                self.rules.insert(r);
            }
            // Deletes, replaces and refusals: as applying does.
            other => self.apply_into(other, &mut Vec::new()),
        }
    }

    /// Replaces the routes of `family` with a fresh dump of them and returns the differences
    /// (removals first), without copying the rest of the snapshot. Routes of the dump through
    /// an interface the snapshot does not hold are left out, as [`Snapshot::apply`] refuses
    /// them.
    pub fn sync_routes(&mut self, family: Family, routes: Vec<Route>) -> Vec<Event> {
        self.sync_routes_where(family, routes, |_| true)
    }

    /// Like [`Snapshot::sync_routes`] for the routes through interface `index` only (the
    /// answer to a dump filtered by output interface).
    pub fn sync_interface_routes(
        &mut self,
        family: Family,
        index: u32,
        routes: Vec<Route>,
    ) -> Vec<Event> {
        // The model's routes through `index` come from the interface index: the work is the
        // interface's routes, not the table's.
        let held: Vec<RouteKey> = self
            .routes_via(index)
            .filter(|r| r.family == family)
            .map(Route::key)
            .collect();
        self.sync_routes_of(family, routes, held, |r| r.uses_interface(index))
    }

    fn sync_routes_where(
        &mut self,
        family: Family,
        routes: Vec<Route>,
        in_scope: impl Fn(&Route) -> bool,
    ) -> Vec<Event> {
        let held: Vec<RouteKey> = self
            .routes
            .iter()
            .filter(|(k, r)| k.family == family && in_scope(r))
            .map(|(k, _)| k.clone())
            .collect();
        self.sync_routes_of(family, routes, held, in_scope)
    }

    /// Replaces the routes `held` (the model's routes in scope) with the `routes` of a dump in
    /// scope, and returns the differences, removals first.
    fn sync_routes_of(
        &mut self,
        family: Family,
        routes: Vec<Route>,
        held: Vec<RouteKey>,
        in_scope: impl Fn(&Route) -> bool,
    ) -> Vec<Event> {
        use std::collections::BTreeMap;
        let fresh: BTreeMap<_, _> = routes
            .into_iter()
            .filter(|r| r.family == family && in_scope(r) && self.holds_interfaces_of(r))
            .map(|r| (r.key(), r))
            .collect();
        let mut events = Vec::new();
        let stale = held.into_iter().filter(|k| !fresh.contains_key(k));
        for k in stale {
            if let Some(r) = self.remove_route(&k) {
                events.push(Event::RouteRemoved(r));
            }
        }
        for (k, r) in fresh {
            match self.routes.get(&k) {
                Some(old) if *old == r => {}
                Some(_) => {
                    if let Some(old) = self.insert_route(r.clone()) {
                        events.push(Event::RouteRemoved(old));
                    }
                    events.push(Event::RouteAdded(r));
                }
                None => {
                    self.insert_route(r.clone());
                    events.push(Event::RouteAdded(r));
                }
            }
        }
        events
    }

    /// Like [`Snapshot::apply`], appending to `events` (no allocation per call).
    pub fn apply_into(&mut self, update: Update, events: &mut Vec<Event>) {
        match update {
            // Looked up before anything is copied: the kernel sends link messages that change
            // nothing netreach keeps (statistics, IPv6 flags).
            Update::NewLink(new) => match self.interface(new.index) {
                Some(old) => {
                    let changes = InterfaceChanges::between(old, &new);
                    if !changes.is_empty() {
                        if let Some(old) = self.insert_interface(new.clone()) {
                            let old = Arc::unwrap_or_clone(old);
                            events.push(Event::InterfaceChanged { old, new, changes });
                        }
                    }
                }
                None => {
                    self.insert_interface(new.clone());
                    events.push(Event::InterfaceAdded(new));
                }
            },
            Update::DelLink(index) => {
                // Nothing hangs on an interface the snapshot does not hold: nothing to do.
                let Some(iface) = self.remove_interface(index) else {
                    return;
                };
                let keys: Vec<_> = self.addresses_of(index).map(Address::key).collect();
                for k in keys {
                    if let Some(a) = self.remove_address(&k) {
                        events.push(Event::AddressRemoved(a));
                    }
                }
                let routes: Vec<_> = self.routes_via(index).map(Route::key).collect();
                for k in routes {
                    if let Some(r) = self.remove_route(&k) {
                        events.push(Event::RouteRemoved(r));
                    }
                }
                events.push(Event::InterfaceRemoved(Arc::unwrap_or_clone(iface)));
            }
            // Refused: the kernel removes an interface's addresses with it (see `apply`).
            Update::NewAddress(new) if !self.holds_interface_of(&new) => {}
            Update::NewAddress(new) => match self.addresses.get_mut(&new.key()) {
                Some(old) if *old == new => {}
                Some(old) => {
                    let old = std::mem::replace(old, new.clone());
                    events.push(Event::AddressChanged { old, new });
                }
                None => {
                    self.insert_address(new.clone());
                    events.push(Event::AddressAdded(new));
                }
            },
            Update::DelAddress(a) => {
                if let Some(old) = self.remove_address(&a.key()) {
                    events.push(Event::AddressRemoved(old));
                }
            }
            // Refused, replace included: the kernel flushes an interface's routes with it.
            Update::NewRoute { route, .. } if !self.holds_interfaces_of(&route) => {}
            Update::NewRoute { route, replace } => {
                let key = route.key();
                if self.routes.get(&key) == Some(&route) {
                    return;
                }
                if replace {
                    // The replace key (family, table, destination, TOS, metric) is a prefix of
                    // the route key's order, so the routes it matches are one range.
                    let (lo, hi) = key.replace_range();
                    let gone: Vec<_> = self
                        .routes
                        .range(lo..=hi)
                        .map(|(k, _)| k)
                        .filter(|k| **k != key)
                        .cloned()
                        .collect();
                    for k in gone {
                        if let Some(r) = self.remove_route(&k) {
                            events.push(Event::RouteRemoved(r));
                        }
                    }
                }
                match self.insert_route(route.clone()) {
                    // Same identity, other attributes (linkdown, prefsrc, protocol): the old
                    // route is gone and the new one is in.
                    Some(old) => {
                        events.push(Event::RouteRemoved(old));
                        events.push(Event::RouteAdded(route));
                    }
                    None => events.push(Event::RouteAdded(route)),
                }
            }
            Update::DelRoute(route) => {
                if let Some(old) = self.remove_route(&route.key()) {
                    events.push(Event::RouteRemoved(old));
                }
            }
            Update::NewRule(rule) => {
                if self.rules.insert(rule.clone()).is_none() {
                    events.push(Event::RuleAdded(rule));
                }
            }
            Update::DelRule(rule) => {
                if self.rules.remove(&rule).is_some() {
                    events.push(Event::RuleRemoved(rule));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AddressFlags, LinkKind, NextHop, OperState, RouteProtocol, RouteType, Scope};
    use std::net::IpAddr;

    fn addr(ifindex: u32, a: &str, len: u8) -> Address {
        Address {
            interface: ifindex,
            address: a.parse().unwrap(),
            prefix_len: len,
            scope: Scope::Global,
            flags: AddressFlags::empty(),
        }
    }

    /// Down Ethernet interfaces with these indexes, for addresses and routes to live on.
    fn links<const N: usize>(indexes: [u32; N]) -> Snapshot {
        let eth = |i| Interface::new(i, format!("eth{i}"), LinkKind::Ethernet);
        Snapshot::from_parts(indexes.map(eth), [], [])
    }

    fn up(mut i: Interface) -> Interface {
        i.admin_up = true;
        i.carrier = true;
        i.oper_state = OperState::Up;
        i
    }

    #[test]
    fn link_lifecycle() {
        let mut s = Snapshot::new();
        let v = Interface::new(3, "veth0", LinkKind::Veth);
        assert_eq!(
            s.apply(Update::NewLink(v.clone())),
            [Event::InterfaceAdded(v.clone())]
        );
        let ev = s.apply(Update::NewLink(up(v.clone())));
        match &ev[..] {
            [Event::InterfaceChanged { changes, .. }] => {
                assert_eq!(
                    changes.names().collect::<Vec<_>>(),
                    ["admin_up", "carrier", "oper_state"]
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(s.apply(Update::NewLink(up(v.clone()))).is_empty());
        assert_eq!(
            s.apply(Update::DelLink(3)),
            [Event::InterfaceRemoved(up(v))]
        );
        assert!(s.apply(Update::DelLink(3)).is_empty());
        assert!(s.is_empty());
    }

    #[test]
    fn the_running_interfaces_are_indexed() {
        let running = |s: &Snapshot| s.running_interfaces().map(|i| i.index).collect::<Vec<_>>();
        let mut s = links([2, 3]);
        assert!(running(&s).is_empty());
        let eth = up(Interface::new(3, "eth3", LinkKind::Ethernet));
        s.apply(Update::NewLink(eth.clone()));
        assert_eq!(running(&s), [3]);
        s.load(Update::NewLink(up(Interface::new(
            4,
            "eth4",
            LinkKind::Ethernet,
        ))));
        assert_eq!(running(&s), [3, 4]);
        let mut no_carrier = eth;
        no_carrier.carrier = false;
        s.apply(Update::NewLink(no_carrier));
        assert_eq!(running(&s), [4]);
        s.apply(Update::DelLink(4));
        assert!(running(&s).is_empty());
        // Built from parts, the same index.
        let parts = Snapshot::from_parts(s.interfaces().cloned(), [], []);
        assert_eq!(parts, s);
    }

    #[test]
    fn address_refresh_is_silent_but_flag_change_is_not() {
        let mut s = links([2]);
        let mut a = addr(2, "2001:db8::1", 64);
        a.flags = AddressFlags::TENTATIVE;
        assert_eq!(s.apply(Update::NewAddress(a.clone())).len(), 1);
        assert!(s.apply(Update::NewAddress(a.clone())).is_empty());
        let mut done = a.clone();
        done.flags = AddressFlags::empty();
        assert_eq!(
            s.apply(Update::NewAddress(done.clone())),
            [Event::AddressChanged {
                old: a,
                new: done.clone()
            }]
        );
        assert_eq!(
            s.apply(Update::DelAddress(done.clone())),
            [Event::AddressRemoved(done.clone())]
        );
        assert!(s.apply(Update::DelAddress(done)).is_empty());
    }

    #[test]
    fn removing_a_link_removes_what_hangs_on_it() {
        let mut s = Snapshot::new();
        s.apply(Update::NewLink(up(Interface::new(
            2,
            "eth0",
            LinkKind::Ethernet,
        ))));
        s.apply(Update::NewAddress(addr(2, "198.18.0.2", 24)));
        let gw: IpAddr = "198.18.0.1".parse().unwrap();
        s.apply(Update::NewRoute {
            route: Route::unicast("0.0.0.0/0".parse().unwrap(), Some(gw), 2),
            replace: false,
        });
        let ev = s.apply(Update::DelLink(2));
        let types: Vec<_> = ev.iter().map(Event::type_name).collect();
        assert_eq!(
            types,
            ["address_removed", "route_removed", "interface_removed"]
        );
        assert!(s.is_empty());
    }

    /// The kernel has no address or route on a missing interface, so neither has the model:
    /// `apply` and `load` refuse them alike, and accept them once the interface is known.
    #[test]
    fn addresses_and_routes_need_their_interfaces() {
        let dst = "0.0.0.0/0".parse().unwrap();
        let via2 = Route::unicast(dst, Some("198.18.0.1".parse().unwrap()), 2);
        let mut via2_and_3 = Route::unicast("198.18.5.0/24".parse().unwrap(), None, 2);
        via2_and_3.nexthops = [2, 3]
            .map(|interface| crate::NextHop {
                gateway: None,
                interface,
                linkdown: false,
            })
            .into();
        let replace = Route::unicast(dst, Some("198.18.1.1".parse().unwrap()), 3);
        let updates = || {
            [
                Update::NewAddress(addr(2, "198.18.0.2", 24)),
                Update::NewRoute {
                    route: via2.clone(),
                    replace: false,
                },
                Update::NewRoute {
                    route: via2_and_3.clone(),
                    replace: false,
                },
                Update::NewRoute {
                    route: replace.clone(),
                    replace: true,
                },
            ]
        };
        let mut applied = Snapshot::new();
        let mut loaded = Snapshot::new();
        for u in updates() {
            assert_eq!(applied.apply(u.clone()), [], "{u:?}");
            loaded.load(u);
        }
        assert!(applied.is_empty() && loaded.is_empty());
        // With eth0 (2) known: the address and the route through it, not those through 3.
        let eth = Interface::new(2, "eth0", LinkKind::Ethernet);
        for s in [&mut applied, &mut loaded] {
            s.apply(Update::NewLink(eth.clone()));
        }
        for u in updates() {
            applied.apply(u.clone());
            loaded.load(u);
        }
        assert_eq!(applied, loaded);
        assert_eq!(applied.addresses().count(), 1);
        assert_eq!(applied.routes().collect::<Vec<_>>(), [&via2]);
        // With eth1 (3) too, the replace replaces, when loaded as when applied.
        for s in [&mut applied, &mut loaded] {
            s.apply(Update::NewLink(Interface::new(
                3,
                "eth1",
                LinkKind::Ethernet,
            )));
        }
        for u in updates() {
            applied.apply(u.clone());
            loaded.load(u);
        }
        assert_eq!(applied, loaded);
        assert_eq!(
            applied.routes().collect::<Vec<_>>(),
            [&replace, &via2_and_3]
        );
        // A dump that lists a route through a missing interface does not bring it in.
        let mut gone = via2.clone();
        gone.interface = Some(9);
        assert_eq!(applied.sync_routes(Family::Ipv4, vec![gone]).len(), 2);
        assert_eq!(applied.routes().count(), 0);
    }

    #[test]
    fn replace_swaps_the_next_hop() {
        let mut s = links([2, 3]);
        let dst = "0.0.0.0/0".parse().unwrap();
        let a = Route::unicast(dst, Some("198.18.0.1".parse().unwrap()), 2);
        let b = Route::unicast(dst, Some("198.18.1.1".parse().unwrap()), 3);
        s.apply(Update::NewRoute {
            route: a.clone(),
            replace: false,
        });
        let ev = s.apply(Update::NewRoute {
            route: b.clone(),
            replace: true,
        });
        assert_eq!(ev, [Event::RouteRemoved(a), Event::RouteAdded(b.clone())]);
        assert_eq!(s.routes().collect::<Vec<_>>(), [&b]);
    }

    #[test]
    fn linkdown_flag_is_a_change() {
        let mut s = links([2]);
        let r = Route::unicast("198.18.0.0/24".parse().unwrap(), None, 2);
        s.apply(Update::NewRoute {
            route: r.clone(),
            replace: false,
        });
        let mut down = r.clone();
        down.linkdown = true;
        let ev = s.apply(Update::NewRoute {
            route: down.clone(),
            replace: false,
        });
        assert_eq!(ev, [Event::RouteRemoved(r), Event::RouteAdded(down)]);
    }

    #[test]
    fn sync_routes_reports_silent_flushes() {
        let mut s = links([2, 3]);
        let a = Route::unicast("198.18.0.0/24".parse().unwrap(), None, 2);
        let b = Route::unicast("198.18.1.0/24".parse().unwrap(), None, 3);
        let v6 = Route::unicast("2001:db8::/64".parse().unwrap(), None, 2);
        for r in [&a, &b, &v6] {
            s.apply(Update::NewRoute {
                route: r.clone(),
                replace: false,
            });
        }
        assert_eq!(
            s.sync_routes(Family::Ipv4, vec![b.clone()]),
            [Event::RouteRemoved(a)]
        );
        assert!(s.sync_routes(Family::Ipv4, vec![b.clone()]).is_empty());
        assert_eq!(s.routes().count(), 2, "IPv6 routes are untouched");
        // An interface-filtered dump only touches that interface's routes.
        assert!(s.sync_interface_routes(Family::Ipv4, 2, vec![]).is_empty());
        assert_eq!(
            s.sync_interface_routes(Family::Ipv4, 3, vec![]),
            [Event::RouteRemoved(b)]
        );
    }

    #[test]
    fn the_address_and_unicast_indexes_follow_every_change() {
        let mut s = links([2, 3]);
        let find = |s: &Snapshot, a: &str| {
            s.find_address(a.parse().unwrap())
                .map(|a| a.interface)
                .collect::<Vec<_>>()
        };
        s.apply(Update::NewAddress(addr(2, "198.18.0.2", 24)));
        s.apply(Update::NewAddress(addr(3, "198.18.0.2", 24)));
        s.apply(Update::NewAddress(addr(3, "198.18.0.2", 25)));
        assert_eq!(find(&s, "198.18.0.2"), [2, 3, 3]);
        assert!(find(&s, "198.18.0.3").is_empty());
        s.apply(Update::DelAddress(addr(3, "198.18.0.2", 25)));
        assert_eq!(find(&s, "198.18.0.2"), [2, 3]);
        let unicast = Route::unicast("198.19.0.0/16".parse().unwrap(), None, 3);
        let mut local = Route::unicast("198.18.0.2/32".parse().unwrap(), None, 3);
        local.kind = RouteType::Local;
        local.table = Route::LOCAL_TABLE;
        for r in [&unicast, &local] {
            s.apply(Update::NewRoute {
                route: r.clone(),
                replace: false,
            });
        }
        // Routes through an interface, next hops included; a replace with other hops moves
        // the route between interfaces.
        let via = |s: &Snapshot, i: u32| s.routes_via(i).map(|r| r.destination).collect::<Vec<_>>();
        assert_eq!(via(&s, 3).len(), 2);
        assert!(via(&s, 2).is_empty());
        let mut multipath = Route::unicast("198.19.9.0/24".parse().unwrap(), None, 2);
        multipath.nexthops = vec![
            NextHop {
                gateway: None,
                interface: 2,
                linkdown: false,
            },
            NextHop {
                gateway: None,
                interface: 3,
                linkdown: false,
            },
        ];
        s.apply(Update::NewRoute {
            route: multipath.clone(),
            replace: false,
        });
        assert_eq!(via(&s, 2), [multipath.destination]);
        assert_eq!(via(&s, 3).len(), 3);
        let mut single = multipath.clone();
        single.nexthops.clear();
        s.apply(Update::NewRoute {
            route: single,
            replace: true,
        });
        assert_eq!(via(&s, 2), [multipath.destination]);
        assert_eq!(via(&s, 3).len(), 2);
        s.apply(Update::DelLink(3));
        assert_eq!(via(&s, 2), [multipath.destination]);
        assert_eq!(find(&s, "198.18.0.2"), [2]);
        assert!(via(&s, 3).is_empty());
        // Built from parts, compacted: the same state, indexes included.
        let rebuilt = Snapshot::from_parts(
            s.interfaces().cloned(),
            s.addresses().cloned(),
            s.routes().cloned(),
        );
        assert_eq!(rebuilt, s);
    }

    #[test]
    fn removing_an_ipv4_address_refreshes_only_what_the_kernel_flushes_silently() {
        let mut s = links([2, 3]);
        let refresh = |s: &Snapshot, a: &str| {
            Update::DelAddress(addr(2, a, 24))
                .route_refresh_needed(s)
                .families()
                .collect::<Vec<_>>()
        };
        // Not held: nothing hangs on it.
        assert!(refresh(&s, "198.18.0.2").is_empty());
        s.apply(Update::NewAddress(addr(2, "198.18.0.2", 24)));
        s.apply(Update::NewAddress(addr(2, "198.18.0.3", 24)));
        // The routes the kernel made for the address (proto kernel, source the address) go
        // with notifications: removing one of two addresses costs no dump.
        let mut local = Route::unicast("198.18.0.2/32".parse().unwrap(), None, 2);
        local.table = Route::LOCAL_TABLE;
        local.kind = RouteType::Local;
        local.protocol = RouteProtocol(2);
        local.prefsrc = Some("198.18.0.2".parse().unwrap());
        s.apply(Update::NewRoute {
            route: local,
            replace: false,
        });
        assert!(refresh(&s, "198.18.0.2").is_empty());
        // The last IPv4 address of the interface: the kernel flushes its routes.
        s.apply(Update::DelAddress(addr(2, "198.18.0.3", 24)));
        assert_eq!(refresh(&s, "198.18.0.2"), [(Family::Ipv4, Refresh::via(2))]);
        // Another route using it as source, through another interface: all IPv4 routes. Until
        // that route is gone.
        let mut sourced = Route::unicast("198.19.0.0/16".parse().unwrap(), None, 3);
        sourced.prefsrc = Some("198.18.0.2".parse().unwrap());
        sourced.protocol = RouteProtocol(4);
        s.apply(Update::NewRoute {
            route: sourced.clone(),
            replace: false,
        });
        assert_eq!(refresh(&s, "198.18.0.2"), [(Family::Ipv4, Refresh::All)]);
        // Replaced by a route without a source: the index forgets it.
        let mut plain = sourced.clone();
        plain.prefsrc = None;
        s.apply(Update::NewRoute {
            route: plain.clone(),
            replace: true,
        });
        assert_eq!(refresh(&s, "198.18.0.2"), [(Family::Ipv4, Refresh::via(2))]);
        s.apply(Update::NewRoute {
            route: sourced.clone(),
            replace: true,
        });
        s.apply(Update::DelRoute(sourced));
        assert_eq!(refresh(&s, "198.18.0.2"), [(Family::Ipv4, Refresh::via(2))]);
        assert!(s.sourced.is_empty());
        // Taken along with its interface.
        s.apply(Update::NewRoute {
            route: {
                let mut r = plain.clone();
                r.prefsrc = Some("198.18.0.2".parse().unwrap());
                r
            },
            replace: true,
        });
        assert_eq!(s.sourced.len(), 1);
        s.apply(Update::DelLink(3));
        assert!(s.sourced.is_empty());
    }

    #[test]
    fn refresh_is_requested_when_the_kernel_changes_routes_silently() {
        let mut s = Snapshot::new();
        let eth = up(Interface::new(2, "eth0", LinkKind::Ethernet));
        s.apply(Update::NewLink(eth.clone()));
        // Link changes are derived, not dumped (`silent.rs`).
        let mut down = eth.clone();
        down.admin_up = false;
        assert!(Update::NewLink(down).route_refresh_needed(&s).is_empty());
        let via2 = RouteRefresh::both(Refresh::via(2));
        let mut mtu = eth.clone();
        mtu.mtu = 9000;
        assert!(Update::NewLink(mtu).route_refresh_needed(&s).is_empty());
        assert!(Update::NewLink(eth).route_refresh_needed(&s).is_empty());
        assert_eq!(
            Update::DelLink(2).route_refresh_needed(&s),
            RouteRefresh::both(Refresh::All)
        );
        assert!(Update::DelLink(9).route_refresh_needed(&s).is_empty());
        let v6 = Update::DelAddress(addr(2, "2001:db8::1", 64));
        assert!(v6.route_refresh_needed(&s).is_empty());
        // A route through another interface with the address as its source (not one the
        // kernel made for the address): flushed silently when the address goes.
        s.apply(Update::NewAddress(addr(2, "198.18.0.2", 24)));
        s.apply(Update::NewLink(up(Interface::new(
            3,
            "eth1",
            LinkKind::Ethernet,
        ))));
        let mut sourced = Route::unicast("198.19.0.0/16".parse().unwrap(), None, 3);
        sourced.prefsrc = Some("198.18.0.2".parse().unwrap());
        s.apply(Update::NewRoute {
            route: sourced,
            replace: false,
        });
        let v4 = Update::DelAddress(addr(2, "198.18.0.2", 24)).route_refresh_needed(&s);
        assert_eq!(
            v4.clone().families().collect::<Vec<_>>(),
            [(Family::Ipv4, Refresh::All)]
        );
        let mut r = via2.clone();
        r.merge(RouteRefresh::both(Refresh::via(3)));
        assert_eq!(r.ipv4, Refresh::Interfaces(BTreeSet::from([2, 3])));
        r.merge(v4);
        assert_eq!(
            (r.ipv4, r.ipv6),
            (Refresh::All, Refresh::Interfaces(BTreeSet::from([2, 3])))
        );
    }
}
