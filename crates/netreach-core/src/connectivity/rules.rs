//! The rules proper: a snapshot and a configuration in, a [`Connectivity`] out.
//!
//! Kept apart from the tracker so that they read as one page; `docs/connectivity.md` states the
//! same rules in prose and must change with this file.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;

use super::config::ConnectivityConfig;
use super::medium::Medium;
use super::{Connectivity, FAMILIES, Level, Primary, family_slot};
use crate::model::{Address, Family, Interface, Route, RouteType, Rule, Scope, Snapshot};

/// The connectivity of `snapshot`: the level of each family, the overall level, the primary
/// interface with its medium, and whether it is metered.
///
/// Pure and total: any snapshot gives an answer. The rules are in the [module
/// docs](super) and, in full, in `docs/connectivity.md`.
pub fn evaluate(snapshot: &Snapshot, config: &ConnectivityConfig) -> Connectivity {
    Evaluation::of(snapshot, config).connectivity
}

/// The interfaces that give `family` the `internet` level: each is the output interface of a
/// usable default route (empty below `internet`). These are what an HTTP probe verifies.
///
/// ```
/// use netreach_core::connectivity::{ConnectivityConfig, internet_interfaces};
/// use netreach_core::{Family, Snapshot};
///
/// let none = internet_interfaces(&Snapshot::new(), &ConnectivityConfig::new(), Family::Ipv4);
/// assert!(none.is_empty());
/// ```
pub fn internet_interfaces(
    snapshot: &Snapshot,
    config: &ConnectivityConfig,
    family: Family,
) -> BTreeSet<u32> {
    let result = Rules { snapshot, config }.family(family);
    if result.level == Level::Internet {
        result.interfaces
    } else {
        BTreeSet::new()
    }
}

/// An evaluation with the detail the tracker needs to explain changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Evaluation {
    /// The result.
    pub(crate) connectivity: Connectivity,
    /// Per family (see [`family_slot`]): the interfaces that give the family its level (empty
    /// when disconnected). Events about other interfaces cannot explain a change of it.
    pub(crate) interfaces: [BTreeSet<u32>; 2],
}

impl Evaluation {
    pub(crate) fn of(snapshot: &Snapshot, config: &ConnectivityConfig) -> Evaluation {
        let rules = Rules { snapshot, config };
        let [v4, v6] = FAMILIES.map(|f| rules.family(f));
        // The better family names the primary interface; on a tie, IPv4.
        let better = if v6.level > v4.level { &v6 } else { &v4 };
        let primary = better
            .best
            .or_else(|| better.interfaces.first().copied())
            .and_then(|index| snapshot.interface(index))
            .map(|i| Primary {
                index: i.index,
                name: i.name.clone(),
                medium: config.medium_of(i),
                metered: config.is_metered(i),
            });
        let connectivity = Connectivity {
            ipv4: v4.level,
            ipv6: v6.level,
            overall: v4.level.max(v6.level),
            primary,
        };
        Evaluation {
            connectivity,
            interfaces: [v4.interfaces, v6.interfaces],
        }
    }

    /// The interfaces behind `family`'s level.
    pub(crate) fn interfaces(&self, family: Family) -> &BTreeSet<u32> {
        &self.interfaces[family_slot(family)]
    }
}

/// The result for one family.
struct FamilyResult {
    level: Level,
    interfaces: BTreeSet<u32>,
    /// With a usable default route: the interface of the best one.
    best: Option<u32>,
}

struct Rules<'a> {
    snapshot: &'a Snapshot,
    config: &'a ConnectivityConfig,
}

impl Rules<'_> {
    fn family(&self, family: Family) -> FamilyResult {
        let tables = self.snapshot.reachable_tables(family);
        let precedence = TablePrecedence::new(self.snapshot, family);
        let mut internet = BTreeSet::new();
        let mut site = BTreeSet::new();
        // (table precedence, metric, interface index): lowest wins.
        let mut best: Option<((u8, u32), u32, u32)> = None;
        // Only a hop through a running interface counts (`is_eligible`): the routes through
        // those (an index of the snapshot's), not every route of every table. A route through
        // several of them is looked at once for each, for its hops through that one.
        let routes = self.snapshot.running_interfaces().flat_map(|i| {
            let via = i.index;
            self.snapshot
                .routes_via(via)
                .filter(|r| r.kind == RouteType::Unicast)
                .filter(|r| r.family == family && tables.contains(&r.table))
                .map(move |r| (via, r))
        });
        for (via, route) in routes {
            for hop in hops(route).filter(|h| h.interface == Some(via)) {
                let index = via;
                if hop.linkdown || !self.has_address(index, family, is_routable) {
                    continue;
                }
                if route.is_default() {
                    internet.insert(index);
                    let key = (precedence.of(route.table), route.metric, index);
                    best = Some(best.map_or(key, |b| b.min(key)));
                } else if !is_link_local_net(&route.destination) {
                    site.insert(index);
                }
            }
        }
        if !internet.is_empty() {
            return FamilyResult {
                level: Level::Internet,
                interfaces: internet,
                best: best.map(|(_, _, index)| index),
            };
        }
        if !site.is_empty() {
            return FamilyResult {
                level: Level::Site,
                interfaces: site,
                best: None,
            };
        }
        // Only a running interface is eligible: the index of those, not every interface.
        let local: BTreeSet<u32> = self
            .snapshot
            .running_interfaces()
            .map(|i| i.index)
            .filter(|&index| self.has_address(index, family, Address::is_usable))
            .collect();
        FamilyResult {
            level: if local.is_empty() {
                Level::Disconnected
            } else {
                Level::Local
            },
            interfaces: local,
            best: None,
        }
    }

    /// The interface counts (not loopback, not excluded) and is up with carrier.
    fn is_eligible(&self, interface: &Interface) -> bool {
        // Cheapest first: at 10,000 mostly idle interfaces, every evaluation below `site`
        // asks this of each one, and the name patterns are the dearest part.
        interface.is_running()
            && interface.kind != crate::model::LinkKind::Loopback
            && self.config.medium_hint(interface.index) != Some(Medium::Loopback)
            && !self.config.is_excluded(&interface.name)
    }

    /// Interface `index` is eligible and holds an address of `family` that passes `test`.
    fn has_address(&self, index: u32, family: Family, test: fn(&Address) -> bool) -> bool {
        self.snapshot
            .interface(index)
            .is_some_and(|i| self.is_eligible(i))
            && self
                .snapshot
                .addresses_of(index)
                .any(|a| a.family() == family && test(a))
    }
}

/// Usable, and neither link-local nor host or nowhere scope.
fn is_routable(address: &Address) -> bool {
    address.is_usable()
        && !address.is_link_local()
        && !matches!(address.scope, Scope::Host | Scope::Nowhere)
}

/// The destination lies inside `169.254.0.0/16` or `fe80::/10`.
fn is_link_local_net(net: &IpNet) -> bool {
    match net {
        IpNet::V4(n) => n.prefix_len() >= 16 && n.addr().is_link_local(),
        IpNet::V6(n) => n.prefix_len() >= 10 && (n.addr().segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// One way out of a route.
pub(crate) struct Hop {
    pub(crate) gateway: Option<IpAddr>,
    pub(crate) interface: Option<u32>,
    pub(crate) linkdown: bool,
}

/// The next hops of a route: its multipath hops, or the route itself when it has none.
pub(crate) fn hops(route: &Route) -> impl Iterator<Item = Hop> + '_ {
    let single = route.nexthops.is_empty().then_some(Hop {
        gateway: route.gateway,
        interface: route.interface,
        linkdown: route.linkdown,
    });
    single.into_iter().chain(route.nexthops.iter().map(|h| Hop {
        gateway: h.gateway,
        interface: Some(h.interface),
        linkdown: h.linkdown,
    }))
}

/// In which order ordinary traffic meets the tables of one family.
///
/// A table looked up by a catch-all rule (no source, destination, interface or mark selector;
/// or "not fwmark M", which unmarked traffic matches, as wg-quick installs it) comes first, in
/// rule-priority order; tables reached only through selective rules come after, also by
/// priority. Without rules of the family, the kernel's defaults: local, main, default.
struct TablePrecedence {
    /// (table, (0 catch-all or 1 selective, lowest rule priority)).
    ranks: Vec<(u32, (u8, u32))>,
}

impl TablePrecedence {
    fn new(snapshot: &Snapshot, family: Family) -> TablePrecedence {
        let mut ranks: Vec<(u32, (u8, u32))> = Vec::new();
        for rule in snapshot.rules().filter(|r| r.family == family) {
            let crate::model::RuleAction::ToTable(table) = rule.action else {
                continue;
            };
            let rank = (u8::from(!is_catch_all(rule)), rule.priority);
            match ranks.iter_mut().find(|(t, _)| *t == table) {
                Some((_, r)) => *r = (*r).min(rank),
                None => ranks.push((table, rank)),
            }
        }
        if ranks.is_empty() {
            ranks = vec![
                (Route::LOCAL_TABLE, (0, 0)),
                (Route::MAIN_TABLE, (0, 32766)),
                (253, (0, 32767)),
            ];
        }
        TablePrecedence { ranks }
    }

    fn of(&self, table: u32) -> (u8, u32) {
        self.ranks
            .iter()
            .find(|(t, _)| *t == table)
            .map_or((u8::MAX, u32::MAX), |(_, r)| *r)
    }
}

/// The rule matches all ordinary (unmarked) traffic.
fn is_catch_all(rule: &Rule) -> bool {
    rule.source.is_none()
        && rule.destination.is_none()
        && rule.iif.is_none()
        && rule.oif.is_none()
        && rule.fwmark.is_some() == rule.invert
}
