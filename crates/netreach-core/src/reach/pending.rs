//! The targets the model events of a batch named, and what each needs, until the tracker has
//! done it: a vector sorted by target, consumed from the front.
//!
//! A link going down names 10,000 targets two or three times (the link, the routes flushed
//! with it); an ordered map paid a search and often an allocation for each mark. The marks are
//! pushed as the index yields them (each event's in target order), then sorted once (runs that
//! are already sorted merge in linear time) and merged.

use crate::reach::tracker::TargetId;

/// What a model event means for a target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Need {
    /// The snapshot alone may change the verdict: evaluate the last answer again.
    pub(crate) reevaluate: bool,
    /// The kernel's route choice may change: look up again.
    pub(crate) lookup: bool,
}

impl Need {
    fn or(self, other: Need) -> Need {
        Need {
            reevaluate: self.reevaluate || other.reevaluate,
            lookup: self.lookup || other.lookup,
        }
    }
}

/// The targets left to do, each once, in target order.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// From `next` on: sorted by target, one entry per target (between [`Pending::mark`] and
    /// [`Pending::seal`], new marks follow unsorted).
    marks: Vec<(TargetId, Need)>,
    next: usize,
}

impl Pending {
    /// Starts adding marks: what is done already is dropped.
    pub(crate) fn open(&mut self) {
        self.marks.drain(..self.next);
        self.next = 0;
    }

    /// Adds a mark (after [`Pending::open`], before [`Pending::seal`]).
    pub(crate) fn mark(&mut self, id: TargetId, need: Need) {
        self.marks.push((id, need));
    }

    /// Sorts the marks by target and merges those of one target.
    pub(crate) fn seal(&mut self) {
        self.marks.sort_by_key(|(id, _)| *id);
        self.marks.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 = kept.1.or(later.1);
            }
            same
        });
    }

    /// What is left to do for a target.
    pub(crate) fn get(&self, id: TargetId) -> Option<Need> {
        let left = &self.marks[self.next..];
        left.binary_search_by_key(&id, |(t, _)| *t)
            .ok()
            .map(|k| left[k].1)
    }

    /// Forgets a target (it was removed).
    pub(crate) fn remove(&mut self, id: TargetId) {
        let left = &mut self.marks[self.next..];
        if let Ok(k) = left.binary_search_by_key(&id, |(t, _)| *t) {
            left[k].1 = Need::default();
        }
    }

    /// The next target to do, in target order.
    pub(crate) fn pop(&mut self) -> Option<(TargetId, Need)> {
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
            self.marks = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: Need = Need {
        reevaluate: true,
        lookup: false,
    };
    const L: Need = Need {
        reevaluate: false,
        lookup: true,
    };
    const B: Need = Need {
        reevaluate: true,
        lookup: true,
    };

    #[test]
    fn marks_come_out_once_per_target_in_order_with_their_needs_merged() {
        let mut p = Pending::default();
        p.open();
        for id in [5, 1, 3] {
            p.mark(TargetId(id), R);
        }
        for id in [1, 2, 5] {
            p.mark(TargetId(id), L);
        }
        p.seal();
        assert_eq!(p.len(), 4);
        assert_eq!(p.get(TargetId(1)), Some(B));
        assert_eq!(p.get(TargetId(4)), None);
        assert_eq!(p.pop(), Some((TargetId(1), B)));
        // Marks added while some are left merge with those.
        p.open();
        p.mark(TargetId(3), L);
        p.mark(TargetId(0), R);
        p.seal();
        p.remove(TargetId(5));
        let rest: Vec<_> = std::iter::from_fn(|| p.pop()).collect();
        assert_eq!(rest, [(TargetId(0), R), (TargetId(2), L), (TargetId(3), B)]);
        assert_eq!(p.len(), 0);
        assert_eq!(p.get(TargetId(0)), None);
    }
}
