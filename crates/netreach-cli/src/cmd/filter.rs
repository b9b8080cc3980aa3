//! What `status` and `watch` print: `--interface`, `--ignore` and `--events` choose.
//!
//! This filters the printing only, the same for human and JSON output (the JSON shapes are
//! built from what passes). The connectivity rules see `--ignore` through their own
//! configuration ([`super::config`]) and never `--interface`: the connectivity printed stays
//! that of the whole namespace.
//!
//! A thing is shown when every interface it is about is shown. An interface is shown when its
//! name matches no `--ignore` pattern and, if `--interface` patterns are given, one of them. A
//! route is about its output interfaces (each next hop's too), a policy rule about the
//! interfaces its `iif` and `oif` name; one about no interface (a blackhole route, most rules)
//! is shown only without `--interface`.

use std::sync::Arc;

use netreach::core::connectivity::Pattern;
use netreach::{Event, Interface, Notification, Route, Rule, Snapshot};

use crate::cli::{EventKind, ViewArgs};
use crate::output::json::Names;

/// The printing filter of one `status` or `watch`.
#[derive(Debug, Clone)]
pub struct Shown {
    only: Vec<Pattern>,
    ignored: Vec<Pattern>,
    /// Empty: every kind.
    kinds: Vec<EventKind>,
}

impl Shown {
    /// The filter the flags ask for; `kinds` empty means every kind of event.
    pub fn new(view: &ViewArgs, kinds: &[EventKind]) -> Shown {
        Shown {
            only: view.interfaces.clone(),
            ignored: view.rules.exclude.clone(),
            kinds: kinds.to_vec(),
        }
    }

    // Used by `serve`, which is Linux only.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    /// Everything but the interfaces matching `ignored`, and every kind of event (`serve`).
    pub fn ignoring(ignored: Vec<Pattern>) -> Shown {
        Shown {
            only: Vec::new(),
            ignored,
            kinds: Vec::new(),
        }
    }

    /// Whether an interface of this name is shown.
    pub fn interface(&self, name: &str) -> bool {
        !self.ignored.iter().any(|p| p.matches(name))
            && (self.only.is_empty() || self.only.iter().any(|p| p.matches(name)))
    }

    /// Whether events of this kind are shown.
    pub fn kind(&self, kind: EventKind) -> bool {
        self.kinds.is_empty() || self.kinds.contains(&kind)
    }

    /// Whether a model event is shown. `names` resolves indexes to names, also of interfaces
    /// already removed; an index it does not know is shown only without `--interface`.
    pub fn event(&self, event: &Event, names: &Names) -> bool {
        let by_index = |index: u32| {
            names
                .get(index)
                .map_or(self.only.is_empty(), |n| self.interface(n))
        };
        match event {
            Event::InterfaceAdded(i) | Event::InterfaceRemoved(i) => {
                self.kind(EventKind::Interface) && self.interface(&i.name)
            }
            // A rename is shown under either name.
            Event::InterfaceChanged { old, new, .. } => {
                self.kind(EventKind::Interface)
                    && (self.interface(&old.name) || self.interface(&new.name))
            }
            Event::AddressAdded(a) | Event::AddressRemoved(a) => {
                self.kind(EventKind::Address) && by_index(a.interface)
            }
            Event::AddressChanged { new, .. } => {
                self.kind(EventKind::Address) && by_index(new.interface)
            }
            Event::RouteAdded(r) | Event::RouteRemoved(r) => {
                self.kind(EventKind::Route) && self.about(route_interfaces(r), by_index)
            }
            Event::RuleAdded(r) | Event::RuleRemoved(r) => {
                self.kind(EventKind::Rule) && self.rule(r)
            }
            // A kind of event this build does not know: shown, as before filters existed.
            _ => true,
        }
    }

    /// The part of `snap` that is shown. Without a filter, `snap` itself.
    pub fn snapshot(&self, snap: &Arc<Snapshot>) -> Arc<Snapshot> {
        if self.only.is_empty() && self.ignored.is_empty() {
            return snap.clone();
        }
        let shown = |i: &Interface| self.interface(&i.name);
        let by_index = |index: u32| snap.interface(index).is_some_and(shown);
        // Addresses on interfaces left out go with them (`from_parts`).
        let filtered = Snapshot::from_parts(
            snap.interfaces().filter(|i| shown(i)).cloned(),
            snap.addresses().cloned(),
            snap.routes()
                .filter(|r| self.about(route_interfaces(r), by_index))
                .cloned(),
        )
        .with_rules(snap.rules().filter(|r| self.rule(r)).cloned());
        Arc::new(filtered)
    }

    /// A `ready` notification holding only what is shown.
    pub fn ready(&self, n: &Notification) -> Notification {
        match n {
            Notification::Ready {
                seq,
                time,
                snapshot,
            } => Notification::Ready {
                seq: *seq,
                time: *time,
                snapshot: self.snapshot(snapshot),
            },
            other => other.clone(),
        }
    }

    /// A thing about these interfaces: shown when each is; with none, only without
    /// `--interface`.
    fn about(
        &self,
        mut interfaces: impl Iterator<Item = u32>,
        shown: impl Fn(u32) -> bool,
    ) -> bool {
        let mut any = false;
        let all = interfaces.all(|i| {
            any = true;
            shown(i)
        });
        if any { all } else { self.only.is_empty() }
    }

    fn rule(&self, r: &Rule) -> bool {
        let names: Vec<&str> = [&r.iif, &r.oif]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        if names.is_empty() {
            self.only.is_empty()
        } else {
            names.iter().all(|n| self.interface(n))
        }
    }
}

/// The output interfaces of a route: its own and each next hop's.
fn route_interfaces(r: &Route) -> impl Iterator<Item = u32> + '_ {
    r.interface
        .into_iter()
        .chain(r.nexthops.iter().map(|h| h.interface))
}
