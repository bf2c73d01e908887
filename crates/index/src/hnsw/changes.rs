//! Which slots changed since the last incremental snapshot.
//!
//! A bitset of atomic words, one bit per slot, grown with the index. Writers
//! set a slot's bit *after* changing what it guards; [`ChangeSet::take`]
//! clears the bits *before* the snapshot reads the data, so a change racing
//! with a snapshot is either in it or marked again for the next one (at
//! worst a slot is written twice, never missed).

use std::sync::atomic::{AtomicU64, Ordering};

/// One bit per slot: set when the slot changed since the last `take`.
#[derive(Debug)]
pub(crate) struct ChangeSet {
    words: Box<[AtomicU64]>,
}

impl ChangeSet {
    /// A clear set for `capacity` slots.
    pub(crate) fn new(capacity: usize) -> Self {
        ChangeSet { words: (0..capacity.div_ceil(64)).map(|_| AtomicU64::new(0)).collect() }
    }

    /// A copy with room for `capacity` slots, keeping the marks.
    pub(crate) fn grown(&self, capacity: usize) -> Self {
        let words = capacity.div_ceil(64);
        ChangeSet {
            words: (0..words)
                .map(|i| AtomicU64::new(self.words.get(i).map_or(0, |w| w.load(Ordering::Acquire))))
                .collect(),
        }
    }

    /// Marks `slot` changed.
    #[inline]
    pub(crate) fn mark(&self, slot: u32) {
        if let Some(word) = self.words.get((slot >> 6) as usize) {
            word.fetch_or(1 << (slot & 63), Ordering::AcqRel);
        }
    }

    /// Marks every slot below `used` changed.
    pub(crate) fn mark_all(&self, used: usize) {
        for slot in 0..used as u32 {
            self.mark(slot);
        }
    }

    /// The marked slots below `used`, ascending; clears their marks.
    pub(crate) fn take(&self, used: usize) -> Vec<u32> {
        let mut out = Vec::new();
        for (i, word) in self.words.iter().enumerate().take(used.div_ceil(64)) {
            let mut bits = word.swap(0, Ordering::AcqRel);
            while bits != 0 {
                let slot = (i * 64) as u32 + bits.trailing_zeros();
                if (slot as usize) < used {
                    out.push(slot);
                } else {
                    // Not handed out yet: keep the mark for later.
                    self.mark(slot);
                }
                bits &= bits - 1;
            }
        }
        out
    }

    /// Number of marked slots.
    pub(crate) fn count(&self) -> usize {
        self.words.iter().map(|w| w.load(Ordering::Relaxed).count_ones() as usize).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_returns_marks_once_and_growth_keeps_them() {
        let set = ChangeSet::new(100);
        set.mark(3);
        set.mark(64);
        set.mark(99);
        let grown = set.grown(300);
        grown.mark(250);
        assert_eq!(grown.count(), 4);
        assert_eq!(grown.take(200), vec![3, 64, 99], "slots at or above `used` stay marked");
        assert_eq!(grown.take(300), vec![250]);
        assert!(grown.take(300).is_empty());
    }
}
