//! The HNSW link structure, independent of how vectors are stored.
//!
//! Layout: layer 0 is one flat array with a fixed stride of `1 + M0` words
//! per node — a count followed by up to `M0 = 2·M` neighbour slots — so a
//! node's base-layer list is found by multiplication, with no pointer chase.
//! Upper layers (on average `1/(M−1)` of the nodes) live in one boxed array per
//! node holding `level` segments of `1 + M` words, created once when the node
//! is inserted.
//!
//! Concurrency: every word is an atomic. A writer changes a node's lists only
//! while holding that node's lock, writing the ids before the count (release),
//! so a lock-free reader (acquire) sees either list or a mix of two valid
//! lists — always ids of nodes that were published before. Growing the arrays
//! and resetting freed slots take `&mut self`, which the index only hands out
//! under its exclusive lock.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};

use parking_lot::{Mutex, MutexGuard};

use super::changes::ChangeSet;

/// Highest level a node may be assigned (the chance of exceeding it with
/// `mL = 1/ln M`, M ≥ 2, is below 10⁻⁹ per node).
pub(crate) const MAX_LEVEL: usize = 30;

/// Link storage for `capacity` node slots.
#[derive(Debug)]
pub(crate) struct Graph {
    /// Maximum out-degree on upper layers (`M` in the paper).
    m: usize,
    /// Maximum out-degree on layer 0 (`M_max0`, 2·M by default).
    m0: usize,
    layer0: Box<[AtomicU32]>,
    upper: Vec<OnceLock<Box<[AtomicU32]>>>,
    levels: Box<[AtomicU8]>,
    locks: Box<[Mutex<()>]>,
    /// Nodes whose level, lists, id or state changed since the last
    /// incremental snapshot took them.
    pub(crate) changed: ChangeSet,
}

fn atomics<T, A>(n: usize, mut make: impl FnMut(usize) -> T, wrap: impl Fn(T) -> A) -> Box<[A]> {
    (0..n).map(|i| wrap(make(i))).collect()
}

impl Graph {
    pub(crate) fn new(m: usize, m0: usize, capacity: usize) -> Self {
        Graph {
            m,
            m0,
            layer0: atomics(capacity * (1 + m0), |_| 0, AtomicU32::new),
            upper: (0..capacity).map(|_| OnceLock::new()).collect(),
            levels: atomics(capacity, |_| 0, AtomicU8::new),
            locks: (0..capacity).map(|_| Mutex::new(())).collect(),
            changed: ChangeSet::new(capacity),
        }
    }

    /// Maximum out-degree at `level`.
    #[inline]
    pub(crate) fn max_degree(&self, level: usize) -> usize {
        if level == 0 { self.m0 } else { self.m }
    }

    /// Returns a copy with room for `capacity` slots holding the first `used`.
    pub(crate) fn grown(&mut self, capacity: usize, used: usize) -> Self {
        let stride = 1 + self.m0;
        let load = |a: &AtomicU32| a.load(Ordering::Relaxed);
        let mut upper: Vec<OnceLock<Box<[AtomicU32]>>> = std::mem::take(&mut self.upper);
        upper.truncate(used);
        upper.resize_with(capacity, OnceLock::new);
        Graph {
            m: self.m,
            m0: self.m0,
            layer0: atomics(
                capacity * stride,
                |i| {
                    if i < used * stride { load(&self.layer0[i]) } else { 0 }
                },
                AtomicU32::new,
            ),
            upper,
            levels: atomics(
                capacity,
                |i| {
                    if i < used { self.levels[i].load(Ordering::Relaxed) } else { 0 }
                },
                AtomicU8::new,
            ),
            locks: (0..capacity).map(|_| Mutex::new(())).collect(),
            changed: self.changed.grown(capacity),
        }
    }

    /// Prepares a freshly reserved slot for a node of `level`. The slot must
    /// be unpublished and empty (new, or reset by [`Graph::reset`]).
    pub(crate) fn init_node(&self, node: u32, level: usize) {
        debug_assert!(level <= MAX_LEVEL);
        self.levels[node as usize].store(level as u8, Ordering::Release);
        self.layer0[node as usize * (1 + self.m0)].store(0, Ordering::Release);
        if level > 0 {
            let words = level * (1 + self.m);
            let fresh: Box<[AtomicU32]> = atomics(words, |_| 0, AtomicU32::new);
            let set = self.upper[node as usize].set(fresh);
            debug_assert!(set.is_ok(), "slot {node} was not reset before reuse");
        }
        self.changed.mark(node);
    }

    /// Forgets everything about `node` so its slot can be reused.
    pub(crate) fn reset(&mut self, node: u32) {
        self.levels[node as usize].store(0, Ordering::Relaxed);
        self.layer0[node as usize * (1 + self.m0)].store(0, Ordering::Relaxed);
        self.upper[node as usize].take();
        self.changed.mark(node);
    }

    #[inline]
    pub(crate) fn level(&self, node: u32) -> usize {
        self.levels[node as usize].load(Ordering::Acquire) as usize
    }

    /// The `[count, ids...]` words of `node` at `level`.
    #[inline]
    fn segment(&self, node: u32, level: usize) -> &[AtomicU32] {
        if level == 0 {
            let stride = 1 + self.m0;
            let start = node as usize * stride;
            &self.layer0[start..start + stride]
        } else {
            let stride = 1 + self.m;
            match self.upper[node as usize].get() {
                Some(words) if words.len() >= level * stride => &words[(level - 1) * stride..level * stride],
                // A node seen above its level (possible only while a slot is
                // being initialised) has no links there.
                _ => &[],
            }
        }
    }

    /// Calls `visit` for each neighbour of `node` at `level`.
    #[inline]
    pub(crate) fn for_each_neighbour(&self, node: u32, level: usize, mut visit: impl FnMut(u32)) {
        let seg = self.segment(node, level);
        let Some((count, ids)) = seg.split_first() else {
            return;
        };
        let n = (count.load(Ordering::Acquire) as usize).min(ids.len());
        for id in &ids[..n] {
            visit(id.load(Ordering::Acquire));
        }
    }

    /// Copies the neighbours of `node` at `level` into `out` (cleared first).
    pub(crate) fn neighbours_into(&self, node: u32, level: usize, out: &mut Vec<u32>) {
        out.clear();
        self.for_each_neighbour(node, level, |id| out.push(id));
    }

    /// Replaces the neighbours of `node` at `level`. The caller holds the
    /// node's lock (or exclusive access to the graph).
    pub(crate) fn set_neighbours(&self, node: u32, level: usize, ids: &[u32]) {
        let seg = self.segment(node, level);
        let Some((count, slots)) = seg.split_first() else {
            return;
        };
        debug_assert!(ids.len() <= slots.len(), "degree bound exceeded");
        let n = ids.len().min(slots.len());
        for (slot, &id) in slots.iter().zip(&ids[..n]) {
            slot.store(id, Ordering::Release);
        }
        count.store(n as u32, Ordering::Release);
        self.changed.mark(node);
    }

    /// Hints the CPU to load the layer-0 list of `node`.
    #[inline]
    pub(crate) fn prefetch_layer0(&self, node: u32) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let p = self.layer0.as_ptr().wrapping_add(node as usize * (1 + self.m0)).cast::<i8>();
            // SAFETY: prefetch is a hint and never faults.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(p);
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64));
            }
        }
    }

    /// Locks `node`'s lists against other writers.
    #[inline]
    pub(crate) fn lock(&self, node: u32) -> MutexGuard<'_, ()> {
        self.locks[node as usize].lock()
    }

    /// Raw layer-0 words of the first `used` slots (for serialisation).
    pub(crate) fn layer0_words(&self, used: usize) -> impl Iterator<Item = u32> + '_ {
        self.layer0[..used * (1 + self.m0)].iter().map(|w| w.load(Ordering::Acquire))
    }

    /// Raw upper-layer words of `node` (empty for level-0 nodes).
    pub(crate) fn upper_words(&self, node: u32) -> impl Iterator<Item = u32> + '_ {
        self.upper[node as usize].get().map(|w| &w[..]).unwrap_or(&[]).iter().map(|w| w.load(Ordering::Acquire))
    }

    /// Restores a node's raw words (deserialisation; exclusive access).
    pub(crate) fn restore_node(&mut self, node: u32, level: usize, layer0: &[u32], upper: &[u32]) {
        let stride = 1 + self.m0;
        let base = node as usize * stride;
        for (slot, &w) in self.layer0[base..base + stride].iter().zip(layer0) {
            slot.store(w, Ordering::Relaxed);
        }
        self.levels[node as usize].store(level as u8, Ordering::Relaxed);
        self.upper[node as usize] = if level > 0 {
            OnceLock::from(upper.iter().map(|&w| AtomicU32::new(w)).collect::<Box<[AtomicU32]>>())
        } else {
            OnceLock::new()
        };
    }

    /// The raw count word and link words of `node` at `level` (for
    /// validating loaded data; the count may exceed the words if corrupt).
    pub(crate) fn raw_list(&self, node: u32, level: usize) -> (usize, Vec<u32>) {
        let seg = self.segment(node, level);
        match seg.split_first() {
            Some((count, ids)) => {
                (count.load(Ordering::Acquire) as usize, ids.iter().map(|w| w.load(Ordering::Acquire)).collect())
            }
            None => (0, Vec::new()),
        }
    }
}
