//! The targets the model events of a batch named, and what each needs, until the tracker has
//! done it: a vector sorted by target, consumed from the front.
//!
//! A link going down names 10,000 targets two or three times (the link, the routes flushed
//! with it); an ordered map paid a search and often an allocation for each mark. Each event's
//! targets come as one run (the index yields most runs in target order already; the others
//! are sorted), merged in one linear pass with the targets already marked: about as many
//! instructions as sorting all marks once at the end (callgrind), and the marks are in order
//! after every event.

use crate::reach::slots::Handle;

/// What a model event means for a target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Need {
    /// The snapshot alone may change the verdict: evaluate the last answer again.
    pub(crate) reevaluate: bool,
    /// The kernel's route choice may change: look up again.
    pub(crate) lookup: bool,
    /// A route containing the remote went: if the model holds no other, the kernel can only
    /// answer "no route", and that is reported before the lookup says so.
    pub(crate) route_gone: bool,
}

/// Evaluate again.
pub(crate) const REEVALUATE: Need = Need {
    reevaluate: true,
    lookup: false,
    route_gone: false,
};
/// Look up again.
pub(crate) const LOOKUP: Need = Need {
    reevaluate: false,
    lookup: true,
    route_gone: false,
};
/// Both.
pub(crate) const BOTH: Need = Need {
    reevaluate: true,
    lookup: true,
    route_gone: false,
};
/// A route containing the remote was removed: look up again, and see whether any is left.
pub(crate) const ROUTE_GONE: Need = Need {
    reevaluate: false,
    lookup: true,
    route_gone: true,
};

impl Need {
    fn or(self, other: Need) -> Need {
        Need {
            reevaluate: self.reevaluate || other.reevaluate,
            lookup: self.lookup || other.lookup,
            route_gone: self.route_gone || other.route_gone,
        }
    }
}

/// The targets left to do, each once, in target order.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// From `next` on: sorted by target, one entry per target.
    marks: Vec<(Handle, Need)>,
    next: usize,
    /// The run being merged, and the merge's output (kept to reuse their memory in a batch).
    run: Vec<Handle>,
    merged: Vec<(Handle, Need)>,
}

impl Pending {
    /// Marks the targets `ids` (one event's, in any order) with `need`; returns how many.
    pub(crate) fn mark(&mut self, ids: impl Iterator<Item = Handle>, need: Need) -> usize {
        self.run.clear();
        self.run.extend(ids);
        let count = self.run.len();
        if count == 0 {
            return 0;
        }
        if !self.run.is_sorted() {
            self.run.sort_unstable();
        }
        self.run.dedup();
        let left = &self.marks[self.next..];
        self.merged.clear();
        self.merged.reserve(left.len() + self.run.len());
        let (mut a, mut b) = (0, 0);
        while a < left.len() && b < self.run.len() {
            let (id, n) = left[a];
            let other = self.run[b];
            if id < other {
                self.merged.push((id, n));
                a += 1;
            } else if other < id {
                self.merged.push((other, need));
                b += 1;
            } else {
                self.merged.push((id, n.or(need)));
                a += 1;
                b += 1;
            }
        }
        self.merged.extend_from_slice(&left[a..]);
        self.merged
            .extend(self.run[b..].iter().map(|id| (*id, need)));
        std::mem::swap(&mut self.marks, &mut self.merged);
        self.next = 0;
        count
    }

    /// What is left to do for a target.
    pub(crate) fn get(&self, h: Handle) -> Option<Need> {
        let left = &self.marks[self.next..];
        left.binary_search_by_key(&h, |(t, _)| *t)
            .ok()
            .map(|k| left[k].1)
    }

    /// Forgets a target (it was removed).
    pub(crate) fn remove(&mut self, h: Handle) {
        let left = &mut self.marks[self.next..];
        if let Ok(k) = left.binary_search_by_key(&h, |(t, _)| *t) {
            left[k].1 = Need::default();
        }
    }

    /// The next target to do, in target order.
    pub(crate) fn pop(&mut self) -> Option<(Handle, Need)> {
        loop {
            let Some(&(id, need)) = self.marks.get(self.next) else {
                self.release();
                return None;
            };
            self.next += 1;
            if need != Need::default() {
                return Some((id, need));
            }
        }
    }

    /// How many targets are left (removed ones included until they are reached).
    pub(crate) fn len(&self) -> usize {
        self.marks.len() - self.next
    }

    /// All done: the burst's memory goes back.
    fn release(&mut self) {
        self.marks.clear();
        self.next = 0;
        if self.marks.capacity() > 256 {
            *self = Pending::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reach::tracker::TargetId;

    const R: Need = REEVALUATE;
    const L: Need = LOOKUP;
    const B: Need = BOTH;

    #[test]
    fn marks_come_out_once_per_target_in_order_with_their_needs_merged() {
        let h = |i: u64| Handle::new(TargetId(i), i as u32);
        let ids = |v: &[u64]| v.iter().map(|i| h(*i)).collect::<Vec<_>>().into_iter();
        let mut p = Pending::default();
        assert_eq!(p.mark(ids(&[5, 1, 3, 1]), R), 4);
        assert_eq!(p.mark(ids(&[1, 2, 5]), L), 3);
        assert_eq!(p.mark(ids(&[]), L), 0);
        assert_eq!(p.len(), 4);
        assert_eq!(p.get(h(1)), Some(B));
        assert_eq!(p.get(h(4)), None);
        assert_eq!(p.pop(), Some((h(1), B)));
        // Marks added while some are left merge with those.
        p.mark(ids(&[3]), L);
        p.mark(ids(&[0]), R);
        p.remove(h(5));
        let rest: Vec<_> = std::iter::from_fn(|| p.pop()).collect();
        assert_eq!(rest, [(h(0), R), (h(2), L), (h(3), B)]);
        assert_eq!(p.len(), 0);
        assert_eq!(p.get(h(0)), None);
    }
}
