//! The machine's timer table: one deadline per kind of timer, and the earliest of them is what
//! the glue arms its one real timer with. (The probe schedules keep their own deadlines; the
//! machine takes the earliest of both.)

use std::time::{Duration, Instant};

/// The kinds of timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// Try a failed full dump again.
    DumpRetry,
    /// Look up again the targets whose lookup failed in transport.
    LookupRetry,
}

const TIMERS: [Timer; 2] = [Timer::DumpRetry, Timer::LookupRetry];

impl Timer {
    fn slot(self) -> usize {
        match self {
            Timer::DumpRetry => 0,
            Timer::LookupRetry => 1,
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct TimerTable {
    deadlines: [Option<Instant>; 2],
}

impl TimerTable {
    pub(super) fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer.slot()] = Some(at);
    }

    pub(super) fn clear(&mut self, timer: Timer) {
        self.deadlines[timer.slot()] = None;
    }

    pub(super) fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer.slot()]
    }

    /// The earliest deadline.
    pub(super) fn next(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// The timers whose deadline has passed, cleared.
    pub(super) fn expired(&mut self, now: Instant) -> Vec<Timer> {
        TIMERS
            .into_iter()
            .filter(|t| {
                let slot = &mut self.deadlines[t.slot()];
                let due = slot.is_some_and(|d| d <= now);
                if due {
                    *slot = None;
                }
                due
            })
            .collect()
    }
}

/// Doubling waits between retries, from `min` up to `max`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(super) fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    /// The wait before the next attempt.
    pub(super) fn next(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    pub(super) fn reset(&mut self) {
        self.next = self.min;
    }
}
