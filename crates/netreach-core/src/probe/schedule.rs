//! When to probe which interface and family: a timer table with backoff, sans IO.
//!
//! Each (interface index, family) has one entry that is either waiting for its due time or has
//! a probe in flight, so at most one probe per key is ever out. Time is passed in; the scheduler
//! never reads a clock. The driver owns the one real timer and arms it at
//! [`ProbeScheduler::poll_timeout`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{ProbeReason, ProbeVerdict};
use crate::model::Family;

/// Which interface and family a probe is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ProbeKey {
    /// The interface index.
    pub ifindex: u32,
    /// The family.
    pub family: Family,
}

impl fmt::Display for ProbeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "if{}/{}", self.ifindex, self.family)
    }
}

/// A probe the driver should run now, then report with
/// [`ProbeScheduler::handle_result`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProbeAction {
    /// What to probe.
    pub key: ProbeKey,
}

/// The intervals of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSchedule {
    /// Delay after a connectivity change before probing, so addresses and routes settle.
    pub settle: Duration,
    /// First retry interval while `limited` or `portal`; doubles after each such result.
    pub retry_min: Duration,
    /// The retry interval stops doubling here; also the interval after a `none` verdict.
    pub retry_max: Duration,
    /// Interval while `full`.
    pub full_interval: Duration,
    /// A probe without a result after this long counts as `limited` ([`ProbeReason::NoResult`])
    /// and is rescheduled; keep it above the probe timeout the driver uses.
    pub in_flight_limit: Duration,
}

impl Default for ProbeSchedule {
    /// Settle 1 s; retry from 10 s doubling to 2 min; 5 min while full; give up on a result
    /// after 1 min.
    fn default() -> ProbeSchedule {
        ProbeSchedule {
            settle: Duration::from_secs(1),
            retry_min: Duration::from_secs(10),
            retry_max: Duration::from_secs(120),
            full_interval: Duration::from_secs(300),
            in_flight_limit: Duration::from_secs(60),
        }
    }
}

/// What an entry is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Probe at `due`.
    Waiting { due: Instant },
    /// A probe is out; the result is awaited until `expires`. `changed` notes a connectivity
    /// change while it was out, so the result may describe the old state.
    InFlight { expires: Instant, changed: Changed },
}

/// Whether connectivity changed while a probe was out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Changed {
    No,
    Yes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    phase: Phase,
    /// The next retry interval after a `limited` or `portal` result.
    retry: Duration,
    /// The last verdict.
    verdict: Option<ProbeVerdict>,
}

/// Decides when each (interface, family) is probed.
///
/// # Calling order
///
/// 1. Feed inputs as they happen: [`handle_connectivity_change`] when an interface gains or
///    loses a route or address of a family (this also starts tracking a key),
///    [`handle_removed`] when it goes away for good, [`handle_result`] when a probe returns.
/// 2. Call [`poll_action`] until it returns `None`, and start each probe it hands out.
/// 3. Arm the timer at [`poll_timeout`]; when it fires, go to 2.
///
/// Intervals: a change probes after [`ProbeSchedule::settle`]; while `limited` or `portal` the
/// interval starts at [`ProbeSchedule::retry_min`] and doubles up to
/// [`ProbeSchedule::retry_max`]; `full` re-checks every [`ProbeSchedule::full_interval`];
/// `none` re-checks after `retry_max` (a change will usually come sooner). A change resets
/// the backoff.
///
/// [`handle_connectivity_change`]: Self::handle_connectivity_change
/// [`handle_removed`]: Self::handle_removed
/// [`handle_result`]: Self::handle_result
/// [`poll_action`]: Self::poll_action
/// [`poll_timeout`]: Self::poll_timeout
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use netreach_core::Family;
/// use netreach_core::probe::{ProbeKey, ProbeSchedule, ProbeScheduler, ProbeVerdict};
///
/// let mut sched = ProbeScheduler::new(ProbeSchedule::default());
/// let t0 = Instant::now(); // the driver's clock; the scheduler reads none
/// let key = ProbeKey { ifindex: 2, family: Family::Ipv4 };
/// sched.handle_connectivity_change(key, t0);
/// assert_eq!(sched.poll_timeout(), Some(t0 + Duration::from_secs(1)));
///
/// let t1 = t0 + Duration::from_secs(1);
/// let action = sched.poll_action(t1).expect("due");
/// assert_eq!(action.key, key);
/// assert_eq!(sched.poll_action(t1), None); // one probe in flight per key
///
/// sched.handle_result(key, ProbeVerdict::Full, t1);
/// assert_eq!(sched.poll_timeout(), Some(t1 + Duration::from_secs(300)));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ProbeScheduler {
    schedule: ProbeSchedule,
    entries: BTreeMap<ProbeKey, Entry>,
}

impl ProbeScheduler {
    /// A scheduler tracking no keys yet.
    pub fn new(schedule: ProbeSchedule) -> ProbeScheduler {
        ProbeScheduler {
            schedule,
            entries: BTreeMap::new(),
        }
    }

    /// Connectivity of `key` changed (or it is new): probe soon and reset the backoff. With a
    /// probe in flight, the next one follows its result after the settle delay.
    pub fn handle_connectivity_change(&mut self, key: ProbeKey, now: Instant) {
        let settle = self.schedule.settle;
        let entry = self.entries.entry(key).or_insert(Entry {
            phase: Phase::Waiting { due: now + settle },
            retry: self.schedule.retry_min,
            verdict: None,
        });
        entry.retry = self.schedule.retry_min;
        entry.phase = match entry.phase {
            Phase::Waiting { due } => Phase::Waiting {
                due: due.min(now + settle),
            },
            Phase::InFlight { expires, .. } => Phase::InFlight {
                expires,
                changed: Changed::Yes,
            },
        };
    }

    /// `key` is gone (interface removed, family no longer configured): forget it. A result
    /// still in flight for it is then ignored.
    pub fn handle_removed(&mut self, key: ProbeKey) {
        self.entries.remove(&key);
    }

    /// A probe handed out by [`poll_action`](Self::poll_action) returned. Results for keys
    /// with no probe in flight (removed meanwhile, or given up on) are ignored.
    pub fn handle_result(&mut self, key: ProbeKey, verdict: ProbeVerdict, now: Instant) {
        let schedule = self.schedule;
        let Some(entry) = self.entries.get_mut(&key) else {
            return;
        };
        let Phase::InFlight { changed, .. } = entry.phase else {
            return;
        };
        entry.complete(verdict, changed, now, &schedule);
    }

    /// The next probe to run now, if one is due. Call until `None`.
    pub fn poll_action(&mut self, now: Instant) -> Option<ProbeAction> {
        let schedule = self.schedule;
        // Give up on results that never came; the key is then due again by its backoff.
        for entry in self.entries.values_mut() {
            if let Phase::InFlight { expires, changed } = entry.phase {
                if expires <= now {
                    let verdict = ProbeVerdict::Limited {
                        reason: ProbeReason::NoResult,
                    };
                    entry.complete(verdict, changed, now, &schedule);
                }
            }
        }
        let (key, entry) = self
            .entries
            .iter_mut()
            .filter_map(|(key, entry)| match entry.phase {
                Phase::Waiting { due } if due <= now => Some((due, key, entry)),
                _ => None,
            })
            .min_by_key(|(due, key, _)| (*due, **key))
            .map(|(_, key, entry)| (*key, entry))?;
        entry.phase = Phase::InFlight {
            expires: now + schedule.in_flight_limit,
            changed: Changed::No,
        };
        Some(ProbeAction { key })
    }

    /// When [`poll_action`](Self::poll_action) has something next: the earliest due time or
    /// in-flight expiry. `None` when no key is tracked.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.entries
            .values()
            .map(|entry| match entry.phase {
                Phase::Waiting { due } => due,
                Phase::InFlight { expires, .. } => expires,
            })
            .min()
    }

    /// The last verdict for `key`, if it was probed.
    pub fn verdict(&self, key: ProbeKey) -> Option<&ProbeVerdict> {
        self.entries.get(&key)?.verdict.as_ref()
    }

    /// Every tracked key with its last verdict, in key order.
    pub fn verdicts(&self) -> impl Iterator<Item = (ProbeKey, Option<&ProbeVerdict>)> + '_ {
        self.entries
            .iter()
            .map(|(key, entry)| (*key, entry.verdict.as_ref()))
    }

    /// A probe for `key` is in flight.
    pub fn in_flight(&self, key: ProbeKey) -> bool {
        self.entries
            .get(&key)
            .is_some_and(|e| matches!(e.phase, Phase::InFlight { .. }))
    }
}

impl Entry {
    /// Records a result and schedules the next probe.
    fn complete(
        &mut self,
        verdict: ProbeVerdict,
        changed: Changed,
        now: Instant,
        schedule: &ProbeSchedule,
    ) {
        let interval = match verdict {
            ProbeVerdict::Full => {
                self.retry = schedule.retry_min;
                schedule.full_interval
            }
            ProbeVerdict::Portal { .. } | ProbeVerdict::Limited { .. } => {
                let interval = self.retry;
                self.retry = (self.retry * 2).min(schedule.retry_max);
                interval
            }
            ProbeVerdict::None { .. } => schedule.retry_max,
        };
        let interval = match changed {
            Changed::Yes => schedule.settle,
            Changed::No => interval,
        };
        self.verdict = Some(verdict);
        self.phase = Phase::Waiting {
            due: now + interval,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A virtual clock: seconds since an arbitrary origin.
    struct Clock(Instant);

    impl Clock {
        fn at(&self, secs: u64) -> Instant {
            self.0 + Duration::from_secs(secs)
        }
    }

    const A4: ProbeKey = ProbeKey {
        ifindex: 2,
        family: Family::Ipv4,
    };
    const A6: ProbeKey = ProbeKey {
        ifindex: 2,
        family: Family::Ipv6,
    };
    const B4: ProbeKey = ProbeKey {
        ifindex: 3,
        family: Family::Ipv4,
    };

    fn limited() -> ProbeVerdict {
        ProbeVerdict::Limited {
            reason: ProbeReason::ConnectionRefused,
        }
    }

    fn portal() -> ProbeVerdict {
        ProbeVerdict::Portal {
            url: None,
            reason: ProbeReason::NetworkAuthenticationRequired,
        }
    }

    /// Runs a probe for `key` at `t` answering `verdict`; returns the next due time.
    fn probe(s: &mut ProbeScheduler, key: ProbeKey, t: Instant, verdict: ProbeVerdict) -> Instant {
        assert_eq!(
            s.poll_timeout().map(|d| d <= t),
            Some(true),
            "not due at {t:?}"
        );
        assert_eq!(s.poll_action(t), Some(ProbeAction { key }));
        s.handle_result(key, verdict, t);
        s.poll_timeout().expect("rescheduled")
    }

    #[test]
    fn nothing_tracked_nothing_due() {
        let mut s = ProbeScheduler::default();
        assert_eq!(s.poll_timeout(), None);
        assert_eq!(s.poll_action(Instant::now()), None);
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_full_is_long() {
        let c = Clock(Instant::now());
        let mut s = ProbeScheduler::new(ProbeSchedule::default());
        s.handle_connectivity_change(A4, c.at(0));
        assert_eq!(s.poll_action(c.at(0)), None, "settle first");
        let mut t = c.at(1);
        let mut intervals = Vec::new();
        for verdict in [
            limited(),
            portal(),
            limited(),
            limited(),
            limited(),
            portal(),
        ] {
            let next = probe(&mut s, A4, t, verdict);
            intervals.push(next.duration_since(t).as_secs());
            t = next;
        }
        assert_eq!(intervals, [10, 20, 40, 80, 120, 120]);
        assert_eq!(s.verdict(A4), Some(&portal()));
        let next = probe(&mut s, A4, t, ProbeVerdict::Full);
        assert_eq!(next.duration_since(t).as_secs(), 300);
        // Full reset the backoff.
        let t = next;
        let next = probe(&mut s, A4, t, limited());
        assert_eq!(next.duration_since(t).as_secs(), 10);
    }

    #[test]
    fn none_rechecks_at_the_cap() {
        let c = Clock(Instant::now());
        let mut s = ProbeScheduler::default();
        s.handle_connectivity_change(A4, c.at(0));
        let verdict = ProbeVerdict::None {
            reason: ProbeReason::NoRoute,
        };
        let next = probe(&mut s, A4, c.at(1), verdict);
        assert_eq!(next, c.at(121));
    }

    #[test]
    fn change_resets_backoff_and_probes_soon() {
        let c = Clock(Instant::now());
        let mut s = ProbeScheduler::default();
        s.handle_connectivity_change(A4, c.at(0));
        let mut t = c.at(1);
        for _ in 0..4 {
            t = probe(&mut s, A4, t, limited());
        }
        assert_eq!(t, c.at(1 + 10 + 20 + 40 + 80));
        // A change before the due time brings the probe forward to the settle delay...
        s.handle_connectivity_change(A4, c.at(100));
        assert_eq!(s.poll_timeout(), Some(c.at(101)));
        // ...and resets the backoff.
        let next = probe(&mut s, A4, c.at(101), limited());
        assert_eq!(next, c.at(111));
        // A change never postpones a probe that is already due.
        s.handle_connectivity_change(A4, c.at(115));
        assert_eq!(s.poll_timeout(), Some(c.at(111)));
    }

    #[test]
    fn one_probe_in_flight_per_key() {
        let c = Clock(Instant::now());
        let mut s = ProbeScheduler::default();
        for key in [A4, A6, B4] {
            s.handle_connectivity_change(key, c.at(0));
        }
        let t = c.at(1);
        let mut out = Vec::new();
        while let Some(action) = s.poll_action(t) {
            out.push(action.key);
        }
        assert_eq!(out, [A4, A6, B4]);
        // Changes while in flight never hand out a second probe for the same key.
        s.handle_connectivity_change(A4, c.at(2));
        assert_eq!(s.poll_action(c.at(30)), None);
        assert!(s.in_flight(A4));
        // The result of the in-flight probe predates the change: re-probe after settle.
        s.handle_result(A4, ProbeVerdict::Full, c.at(31));
        assert_eq!(s.poll_action(c.at(31)), None);
        assert_eq!(s.poll_action(c.at(32)), Some(ProbeAction { key: A4 }));
    }

    #[test]
    fn stale_and_unknown_results_are_ignored() {
        let c = Clock(Instant::now());
        let mut s = ProbeScheduler::default();
        s.handle_result(A4, ProbeVerdict::Full, c.at(0));
        assert_eq!(s.verdict(A4), None);
        s.handle_connectivity_change(A4, c.at(0));
        // Not in flight: a result is ignored.
        s.handle_result(A4, ProbeVerdict::Full, c.at(0));
        assert_eq!(s.verdict(A4), None);
        assert_eq!(s.poll_action(c.at(1)), Some(ProbeAction { key: A4 }));
        s.handle_removed(A4);
        s.handle_result(A4, ProbeVerdict::Full, c.at(2));
        assert_eq!(s.verdict(A4), None);
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn lost_results_time_out() {
        let c = Clock(Instant::now());
        let mut s = ProbeScheduler::default();
        s.handle_connectivity_change(A4, c.at(0));
        assert!(s.poll_action(c.at(1)).is_some());
        assert_eq!(s.poll_timeout(), Some(c.at(61)));
        assert_eq!(s.poll_action(c.at(60)), None);
        assert_eq!(
            s.poll_action(c.at(61)),
            None,
            "retried after backoff, not at once"
        );
        assert_eq!(
            s.verdict(A4),
            Some(&ProbeVerdict::Limited {
                reason: ProbeReason::NoResult
            })
        );
        assert_eq!(s.poll_timeout(), Some(c.at(71)));
        assert_eq!(s.poll_action(c.at(71)), Some(ProbeAction { key: A4 }));
    }

    #[test]
    fn earliest_due_first() {
        let c = Clock(Instant::now());
        let mut s = ProbeScheduler::default();
        s.handle_connectivity_change(B4, c.at(0));
        s.handle_connectivity_change(A4, c.at(5));
        assert_eq!(s.poll_timeout(), Some(c.at(1)));
        assert_eq!(s.poll_action(c.at(10)), Some(ProbeAction { key: B4 }));
        assert_eq!(s.poll_action(c.at(10)), Some(ProbeAction { key: A4 }));
        assert_eq!(s.poll_timeout(), Some(c.at(70)));
        let keys: Vec<_> = s.verdicts().map(|(k, _)| k).collect();
        assert_eq!(keys, [A4, B4]);
    }
}
