//! The change tracker: a sans-IO state machine that turns a stream of snapshots into a stream
//! of connectivity changes, each with its reason, never twice the same.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;

use serde::Serialize;

use super::config::ConnectivityConfig;
use super::medium::Medium;
use super::reason::{Direction, Explain, Reason};
use super::rules::Evaluation;
use super::{Connectivity, FAMILIES, Level, Primary, family_label, family_slot};
use crate::event::Event;
use crate::model::{Family, Snapshot};

/// Follows the connectivity of a changing snapshot and reports what changed, and why.
///
/// # Calling order
///
/// 1. Create it with [`StatusTracker::new`] (the status starts disconnected, so the first
///    update reports how the network came up) or [`StatusTracker::from_snapshot`] (the first
///    snapshot is the baseline and reports nothing).
/// 2. Before each update, record what sysfs says about new interfaces with
///    [`StatusTracker::set_medium_hint`].
/// 3. After applying each batch of kernel updates to the snapshot, call
///    [`StatusTracker::handle_update`] with the snapshot and the events the batch produced
///    (after a re-dump, the events of [`crate::diff`]). Changing the configuration is
///    [`StatusTracker::handle_config`].
/// 4. Drain [`StatusTracker::poll_change`] until it returns `None`; [`StatusTracker::status`]
///    is the status after the latest update.
///
/// It keeps no timers, so there is no `poll_timeout`: debouncing flaps is the caller's choice.
///
/// # What is reported
///
/// Per update, in this order: a [`LevelChange`] for IPv4 if its level changed, one for IPv6,
/// one for the overall level (family `None`) if it changed, and a [`PrimaryChange`] if the
/// primary interface, its name, medium or metered flag changed. Every change is against the
/// status of the previous update, so an update that changes nothing (unrelated events, a
/// repeated dump) reports nothing, and no change is reported twice.
///
/// # Examples
///
/// ```
/// use netreach_core::{
///     ConnectivityChange, ConnectivityConfig, Interface, Level, LinkKind, Snapshot,
///     StatusTracker, Update,
/// };
///
/// let mut snap = Snapshot::new();
/// let mut tracker = StatusTracker::new(ConnectivityConfig::default());
/// let mut eth = Interface::new(2, "eth0", LinkKind::Ethernet);
/// (eth.admin_up, eth.carrier) = (true, true);
/// let events = snap.apply(Update::NewLink(eth));
/// tracker.handle_update(&snap, &events);
/// // An interface without an address is not connected yet: nothing to report.
/// assert_eq!(tracker.poll_change(), None);
/// assert_eq!(tracker.status().overall, Level::Disconnected);
/// ```
#[derive(Debug, Clone)]
pub struct StatusTracker {
    config: ConnectivityConfig,
    last: Evaluation,
    changes: VecDeque<ConnectivityChange>,
    /// The configuration changed since the last evaluation.
    config_changed: bool,
}

impl StatusTracker {
    /// A tracker whose status starts disconnected.
    pub fn new(config: ConnectivityConfig) -> StatusTracker {
        StatusTracker {
            config,
            last: Evaluation::default(),
            changes: VecDeque::new(),
            config_changed: false,
        }
    }

    /// A tracker whose baseline is `snapshot`: nothing is reported for it.
    pub fn from_snapshot(snapshot: &Snapshot, config: ConnectivityConfig) -> StatusTracker {
        StatusTracker {
            last: Evaluation::of(snapshot, &config),
            config,
            changes: VecDeque::new(),
            config_changed: false,
        }
    }

    /// Records (`Some`) or forgets (`None`) the sysfs medium of interface `index`. Takes effect
    /// at the next [`StatusTracker::handle_update`]; hints of interfaces that are no longer in
    /// the snapshot are dropped there.
    pub fn set_medium_hint(&mut self, index: u32, medium: Option<Medium>) {
        if self.config.medium_hint(index) != medium {
            self.config.set_medium_hint(index, medium);
            self.config_changed = true;
        }
    }

    /// Re-evaluates `snapshot` after a batch of model `events` and queues what changed.
    pub fn handle_update(&mut self, snapshot: &Snapshot, events: &[Event]) {
        self.config
            .retain_hints(|index| snapshot.interface(index).is_some());
        self.evaluate(snapshot, events);
    }

    /// Replaces the configuration and queues what changed because of it (reason
    /// [`Reason::ConfigChanged`]). The medium hints recorded so far are kept; hints in `config`
    /// are added to them (and win).
    pub fn handle_config(&mut self, snapshot: &Snapshot, mut config: ConnectivityConfig) {
        for (&index, &medium) in self.config.medium_hints() {
            if config.medium_hint(index).is_none() {
                config.set_medium_hint(index, Some(medium));
            }
        }
        if config != self.config {
            self.config = config;
            self.config_changed = true;
        }
        self.evaluate(snapshot, &[]);
    }

    /// The next queued change, oldest first.
    pub fn poll_change(&mut self) -> Option<ConnectivityChange> {
        self.changes.pop_front()
    }

    /// The status after the latest update.
    pub fn status(&self) -> &Connectivity {
        &self.last.connectivity
    }

    /// The configuration in use, with the medium hints recorded so far.
    pub fn config(&self) -> &ConnectivityConfig {
        &self.config
    }

    fn evaluate(&mut self, snapshot: &Snapshot, events: &[Event]) {
        let new = Evaluation::of(snapshot, &self.config);
        let explain = Explain {
            snapshot,
            events,
            config_changed: self.config_changed,
        };
        let (old_c, new_c) = (&self.last.connectivity, &new.connectivity);

        let mut reasons: [Option<Reason>; 2] = [None, None];
        for family in FAMILIES {
            let (old, new_level) = (old_c.level(family), new_c.level(family));
            if old == new_level {
                continue;
            }
            let reason = if new_level < old {
                let held = self.last.interfaces(family);
                explain.pick(Some(family), Direction::Down, held, old == Level::Internet)
            } else {
                let holds = new.interfaces(family);
                explain.pick(
                    Some(family),
                    Direction::Up,
                    holds,
                    new_level == Level::Internet,
                )
            };
            reasons[family_slot(family)] = Some(reason.clone());
            self.changes
                .push_back(ConnectivityChange::Level(LevelChange {
                    family: Some(family),
                    old,
                    new: new_level,
                    reason,
                }));
        }

        if old_c.overall != new_c.overall {
            // The family that made the difference: going down, one that held the old overall
            // level and lost it; going up, one that reached the new overall level.
            let down = new_c.overall < old_c.overall;
            let driver = FAMILIES.into_iter().find(|&f| {
                let (o, n) = (old_c.level(f), new_c.level(f));
                if down {
                    o == old_c.overall && n < o
                } else {
                    n == new_c.overall && o < n
                }
            });
            let reason = driver
                .and_then(|f| reasons[family_slot(f)].clone())
                .unwrap_or_else(|| explain.fallback());
            self.changes
                .push_back(ConnectivityChange::Level(LevelChange {
                    family: None,
                    old: old_c.overall,
                    new: new_c.overall,
                    reason,
                }));
        }

        if old_c.primary != new_c.primary {
            let reason = primary_reason(&explain, &old_c.primary, &new_c.primary);
            self.changes
                .push_back(ConnectivityChange::Primary(PrimaryChange {
                    old: old_c.primary.clone(),
                    new: new_c.primary.clone(),
                    reason,
                }));
        }

        self.last = new;
        self.config_changed = false;
    }
}

/// Why the primary interface changed: the old one's loss, else the new one's gain; for the same
/// interface (name, medium or metered changed), a rename, else the configuration.
fn primary_reason(explain: &Explain<'_>, old: &Option<Primary>, new: &Option<Primary>) -> Reason {
    let one = |p: &Primary| -> BTreeSet<u32> { std::iter::once(p.index).collect() };
    match (old, new) {
        (Some(o), Some(n)) if o.index == n.index => explain
            .rename(n.index)
            .unwrap_or_else(|| explain.fallback()),
        _ => {
            let lost = old
                .as_ref()
                .map(|o| explain.pick(None, Direction::Down, &one(o), true));
            match lost {
                Some(r) if !matches!(r, Reason::ConfigChanged | Reason::Other) => r,
                _ => match new {
                    Some(n) => explain.pick(None, Direction::Up, &one(n), true),
                    None => lost.unwrap_or_else(|| explain.fallback()),
                },
            }
        }
    }
}

/// One reported change of a [`StatusTracker`].
///
/// Serialises with a `change` tag: `{"change": "level", "family": "ipv4", "old": "internet",
/// "new": "site", "reason": {...}}` or `{"change": "primary", "old": {...}, "new": null, ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConnectivityChange {
    /// The level of a family, or the overall level, changed.
    Level(LevelChange),
    /// The primary interface, its name, medium or metered flag changed.
    Primary(PrimaryChange),
}

impl ConnectivityChange {
    /// Why it changed.
    pub fn reason(&self) -> &Reason {
        match self {
            ConnectivityChange::Level(c) => &c.reason,
            ConnectivityChange::Primary(c) => &c.reason,
        }
    }
}

impl fmt::Display for ConnectivityChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectivityChange::Level(c) => c.fmt(f),
            ConnectivityChange::Primary(c) => c.fmt(f),
        }
    }
}

/// A level changed: `IPv4 internet → site: default route via 198.18.0.1 on eth0 removed`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct LevelChange {
    /// The family, or `None` for the overall level (the online/offline signal: see
    /// [`Connectivity::is_online`]).
    pub family: Option<Family>,
    /// The level before.
    pub old: Level,
    /// The level now.
    pub new: Level,
    /// Why.
    pub reason: Reason,
}

impl LevelChange {
    /// The change went from not online to online or back (an overall change across
    /// [`Level::Internet`]).
    pub fn is_online_change(&self) -> bool {
        self.family.is_none() && ((self.old == Level::Internet) != (self.new == Level::Internet))
    }
}

impl fmt::Display for LevelChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} → {}: {}",
            family_label(self.family),
            self.old,
            self.new,
            self.reason
        )
    }
}

/// The primary interface changed:
/// `primary interface eth0 (ethernet) → wwan0 (cellular, metered): carrier lost on eth0`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct PrimaryChange {
    /// Before.
    pub old: Option<Primary>,
    /// Now.
    pub new: Option<Primary>,
    /// Why.
    pub reason: Reason,
}

impl fmt::Display for PrimaryChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = |p: &Option<Primary>| p.as_ref().map_or("none".into(), |p| p.to_string());
        write!(
            f,
            "primary interface {} → {}: {}",
            side(&self.old),
            side(&self.new),
            self.reason
        )
    }
}
