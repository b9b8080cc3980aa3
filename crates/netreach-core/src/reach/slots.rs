//! The tracker's targets, stored by slot: a vector of entries and a small map from id to slot.
//!
//! The work after a change walks the affected targets in id order; ids are mostly handed out
//! in ascending order, so the slots it visits are mostly consecutive, and the map it searches
//! (an id and a slot per target) stays in the cache where a map of whole entries would not:
//! a hash map of 10,000 entries put each one on a random cache line.

use std::collections::HashMap;

use crate::reach::tracker::TargetId;

type IdMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// Values by target id.
#[derive(Debug)]
pub(crate) struct Slots<T> {
    slot_of: IdMap<TargetId, u32>,
    /// In chunks of [`CHUNK`] slots, each allocated whole: one vector of 10,000 entries grown by
    /// doubling held room for 16,384 (70 bytes a target for nothing); chunks waste at most one.
    chunks: Vec<Vec<Option<(TargetId, T)>>>,
    /// Slots in use or freed: the next new slot is `len`.
    len: u32,
    /// Empty slots below `len`, reused last freed first.
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
    pub(crate) fn contains_key(&self, id: &TargetId) -> bool {
        self.slot_of.contains_key(id)
    }

    pub(crate) fn get(&self, id: &TargetId) -> Option<&T> {
        let slot = *self.slot_of.get(id)? as usize;
        self.chunks
            .get(slot / CHUNK)?
            .get(slot % CHUNK)?
            .as_ref()
            .map(|(_, v)| v)
    }

    pub(crate) fn get_mut(&mut self, id: &TargetId) -> Option<&mut T> {
        let slot = *self.slot_of.get(id)? as usize;
        self.chunks
            .get_mut(slot / CHUNK)?
            .get_mut(slot % CHUNK)?
            .as_mut()
            .map(|(_, v)| v)
    }

    fn cell(&mut self, slot: u32) -> Option<&mut Option<(TargetId, T)>> {
        let slot = slot as usize;
        self.chunks.get_mut(slot / CHUNK)?.get_mut(slot % CHUNK)
    }

    /// Stores `value` under a new id; `false`, and nothing stored, when the id is taken or
    /// every one of the 2^32 slots is.
    pub(crate) fn insert(&mut self, id: TargetId, value: T) -> bool {
        if self.slot_of.contains_key(&id) {
            return false;
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
                let Some(next) = slot.checked_add(1) else {
                    return false;
                };
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
        true
    }

    pub(crate) fn remove(&mut self, id: &TargetId) -> Option<T> {
        let slot = self.slot_of.remove(id)?;
        let (_, value) = self.cell(slot)?.take()?;
        self.free.push(slot);
        if self.slot_of.is_empty() {
            // Emptied: the memory goes back.
            *self = Slots::default();
        }
        Some(value)
    }

    /// Every id and value, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&TargetId, &T)> {
        self.chunks
            .iter()
            .flatten()
            .filter_map(|e| e.as_ref().map(|(id, v)| (id, v)))
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &TargetId> {
        self.iter().map(|(id, _)| id)
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
            assert!(s.insert(TargetId(id), id * 10));
        }
        assert!(!s.insert(TargetId(3), 0), "an id is stored once");
        assert_eq!(s.remove(&TargetId(3)), Some(30));
        assert_eq!(s.remove(&TargetId(3)), None);
        assert!(s.insert(TargetId(42), 420));
        assert_eq!(s.get(&TargetId(42)), Some(&420));
        assert_eq!(s.get(&TargetId(3)), None);
        *s.get_mut(&TargetId(4)).unwrap() += 1;
        assert_eq!(s.get(&TargetId(4)), Some(&41));
        assert_eq!(s.len(), 10);
        let mut ids: Vec<u64> = s.keys().map(|id| id.0).collect();
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
            assert!(s.insert(TargetId(id), id));
        }
        assert_eq!(s.chunks.len(), 3);
        assert_eq!(
            s.get(&TargetId(2 * CHUNK as u64 + 2)),
            Some(&(2 * CHUNK as u64 + 2))
        );
        assert_eq!(s.iter().count(), 2 * CHUNK + 3);
    }
}
