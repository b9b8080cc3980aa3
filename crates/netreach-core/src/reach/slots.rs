//! The tracker's targets, stored by slot: a vector of entries and a small map from id to slot.
//!
//! The work after a change walks the affected targets in id order; ids are mostly handed out
//! in ascending order, so the slots it visits are mostly consecutive, and the map it searches
//! (an id and a slot per target) stays in the cache where a map of whole entries would not:
//! a hash map of 10,000 entries put each one on a random cache line.

use std::collections::HashMap;

use crate::reach::tracker::TargetId;

type IdMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// A target and its slot: what the index and the pending marks hold, so that the work after
/// a change reaches each entry without a search. Ordered by target (the slot follows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Handle {
    pub(crate) id: TargetId,
    slot: u32,
}

impl Handle {
    pub(crate) const fn new(id: TargetId, slot: u32) -> Handle {
        Handle { id, slot }
    }

    /// Sorts before every handle of `id`.
    pub(crate) const fn first(id: TargetId) -> Handle {
        Handle { id, slot: 0 }
    }

    /// Sorts after every handle of `id`.
    pub(crate) const fn last(id: TargetId) -> Handle {
        Handle { id, slot: u32::MAX }
    }
}

/// Values by target id.
#[derive(Debug)]
pub(crate) struct Slots<T> {
    slot_of: IdMap<TargetId, u32>,
    /// In chunks of [`CHUNK`] slots, each allocated whole: one vector of 10,000 entries grown by
    /// doubling held room for 16,384 (70 bytes a target for nothing); chunks waste at most one.
    chunks: Vec<Vec<Option<(TargetId, T)>>>,
    /// Slots in use or freed: the next new slot is `len`.
    len: u32,
    /// Empty slots below `len`, reused last freed first. Freed slots are kept for reuse, not
    /// given back, until the store is empty (then everything is).
    free: Vec<u32>,
}

const CHUNK: usize = 256;

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            slot_of: IdMap::default(),
            chunks: Vec::new(),
            len: 0,
            free: Vec::new(),
        }
    }
}

impl<T> Slots<T> {
    pub(crate) fn get(&self, id: &TargetId) -> Option<&T> {
        let slot = *self.slot_of.get(id)? as usize;
        self.chunks
            .get(slot / CHUNK)?
            .get(slot % CHUNK)?
            .as_ref()
            .map(|(_, v)| v)
    }

    fn cell(&mut self, slot: u32) -> Option<&mut Option<(TargetId, T)>> {
        let slot = slot as usize;
        self.chunks.get_mut(slot / CHUNK)?.get_mut(slot % CHUNK)
    }

    /// The handle of a stored id.
    pub(crate) fn handle(&self, id: &TargetId) -> Option<Handle> {
        self.slot_of.get(id).map(|&slot| Handle::new(*id, slot))
    }

    /// The value of a handle, if its target is still the slot's.
    pub(crate) fn at(&self, h: Handle) -> Option<&T> {
        let slot = h.slot as usize;
        match self.chunks.get(slot / CHUNK)?.get(slot % CHUNK)? {
            Some((id, v)) if *id == h.id => Some(v),
            _ => None,
        }
    }

    pub(crate) fn at_mut(&mut self, h: Handle) -> Option<&mut T> {
        match self.cell(h.slot)? {
            Some((id, v)) if *id == h.id => Some(v),
            _ => None,
        }
    }

    /// Stores `value` under a new id and returns its handle; `None`, and nothing stored, when
    /// the id is taken or every one of the 2^32 slots is.
    pub(crate) fn insert(&mut self, id: TargetId, value: T) -> Option<Handle> {
        if self.slot_of.contains_key(&id) {
            return None;
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                if let Some(cell) = self.cell(slot) {
                    *cell = Some((id, value));
                }
                slot
            }
            None => {
                let slot = self.len;
                let next = slot.checked_add(1)?;
                if slot as usize % CHUNK == 0 {
                    self.chunks.push(Vec::with_capacity(CHUNK));
                }
                if let Some(chunk) = self.chunks.last_mut() {
                    chunk.push(Some((id, value)));
                }
                self.len = next;
                slot
            }
        };
        self.slot_of.insert(id, slot);
        Some(Handle::new(id, slot))
    }

    pub(crate) fn remove(&mut self, id: &TargetId) -> Option<(Handle, T)> {
        let slot = self.slot_of.remove(id)?;
        let (_, value) = self.cell(slot)?.take()?;
        self.free.push(slot);
        if self.slot_of.is_empty() {
            // Emptied: the memory goes back.
            *self = Slots::default();
        }
        Some((Handle::new(*id, slot), value))
    }

    /// Every handle, in slot order.
    pub(crate) fn handles(&self) -> impl Iterator<Item = Handle> + '_ {
        self.chunks.iter().enumerate().flat_map(|(c, chunk)| {
            chunk.iter().enumerate().filter_map(move |(k, e)| {
                let slot = u32::try_from(c * CHUNK + k).ok()?;
                e.as_ref().map(|(id, _)| Handle::new(*id, slot))
            })
        })
    }

    /// Every id and value, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&TargetId, &T)> {
        self.chunks
            .iter()
            .flatten()
            .filter_map(|e| e.as_ref().map(|(id, v)| (id, v)))
    }

    pub(crate) fn len(&self) -> usize {
        self.slot_of.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slot_of.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_found_by_id_after_removals_and_reuse() {
        let mut s = Slots::default();
        for id in 0..10 {
            assert!(s.insert(TargetId(id), id * 10).is_some());
        }
        assert!(s.insert(TargetId(3), 0).is_none(), "an id is stored once");
        let three = s.handle(&TargetId(3)).unwrap();
        assert_eq!(s.at(three), Some(&30));
        assert_eq!(s.remove(&TargetId(3)).map(|(_, v)| v), Some(30));
        assert!(s.remove(&TargetId(3)).is_none());
        let h = s.insert(TargetId(42), 420).unwrap();
        assert_eq!(s.at(h), Some(&420));
        assert_eq!(
            s.at(three),
            None,
            "a reused slot does not answer for its old target"
        );
        assert_eq!(s.handles().count(), 10);
        assert_eq!(s.get(&TargetId(42)), Some(&420));
        assert_eq!(s.get(&TargetId(3)), None);
        *s.at_mut(s.handle(&TargetId(4)).unwrap()).unwrap() += 1;
        assert_eq!(s.get(&TargetId(4)), Some(&41));
        assert_eq!(s.len(), 10);
        let mut ids: Vec<u64> = s.iter().map(|(id, _)| id.0).collect();
        ids.sort_unstable();
        assert_eq!(ids, [0, 1, 2, 4, 5, 6, 7, 8, 9, 42]);
        // Freed slots are reused; an empty store holds nothing.
        for id in [9, 8, 42, 0, 1, 2, 4, 5, 6, 7] {
            assert!(s.remove(&TargetId(id)).is_some());
        }
        assert!(s.is_empty());
        assert_eq!((s.chunks.capacity(), s.free.capacity()), (0, 0));
        // Past one chunk.
        for id in 0..(2 * CHUNK as u64 + 3) {
            assert!(s.insert(TargetId(id), id).is_some());
        }
        assert_eq!(s.chunks.len(), 3);
        assert_eq!(
            s.get(&TargetId(2 * CHUNK as u64 + 2)),
            Some(&(2 * CHUNK as u64 + 2))
        );
        assert_eq!(s.iter().count(), 2 * CHUNK + 3);
    }
}
