//! A reusable visited set for graph traversal.
//!
//! A bitset over node slots plus the list of words that were dirtied, so
//! clearing costs O(nodes visited), not O(capacity): a search over a large
//! index touches a few thousand bits and clears just those words. The bitset
//! is 1/32 the size of the `u32` epoch arrays some implementations use, so it
//! stays in L1/L2 cache for indexes of a few hundred thousand nodes.

/// Visited-node bitset with O(touched) reset.
#[derive(Debug, Default)]
pub(crate) struct VisitedSet {
    words: Vec<u64>,
    dirty: Vec<u32>,
}

impl VisitedSet {
    /// Makes room for node slots `0..capacity` and clears the set.
    pub(crate) fn prepare(&mut self, capacity: usize) {
        self.clear();
        let words = capacity.div_ceil(64);
        if self.words.len() < words {
            self.words.resize(words, 0);
        }
    }

    /// Marks `node` visited; returns `true` if it was not visited before.
    #[inline]
    pub(crate) fn insert(&mut self, node: u32) -> bool {
        let word = (node >> 6) as usize;
        let bit = 1u64 << (node & 63);
        let slot = &mut self.words[word];
        if *slot & bit != 0 {
            return false;
        }
        if *slot == 0 {
            self.dirty.push(word as u32);
        }
        *slot |= bit;
        true
    }

    /// Whether `node` was visited.
    #[inline]
    pub(crate) fn contains(&self, node: u32) -> bool {
        self.words[(node >> 6) as usize] & (1u64 << (node & 63)) != 0
    }

    fn clear(&mut self) {
        for &w in &self.dirty {
            self.words[w as usize] = 0;
        }
        self.dirty.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_reports_first_visit_and_prepare_clears() {
        let mut v = VisitedSet::default();
        v.prepare(1000);
        assert!(v.insert(3));
        assert!(!v.insert(3));
        assert!(v.insert(999));
        assert!(v.contains(999));
        assert!(!v.contains(998));
        v.prepare(2000);
        assert!(!v.contains(3) && !v.contains(999));
        assert!(v.insert(1999));
    }
}
