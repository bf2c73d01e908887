//! Two-step insertion: *stage* a vector (store it and make it searchable),
//! then *link* it into the graph.
//!
//! Staging is O(dim): the vector is written into a reserved slot, its level
//! drawn, its id mapped and its state set to `LIVE`, and the slot is added
//! to the *pending-link* set. Searches score every live pending slot
//! exactly (a linear scan of a set that is small in steady state), so a
//! staged vector is found at once, before any graph work. Linking (the
//! paper's Algorithm 1, in [`super::insert`]) happens later, by whoever
//! *claims* the slot first: the writer that staged it, the background
//! maintenance ([`Hnsw::link_pending`]), or recovery's follow-up. A claim is
//! an atomic flag per pending slot, so each slot is linked exactly once.
//!
//! This is what lets a write path hold its ordering lock only for the
//! staging (no graph work, no IO), and lets recovery replay a log tail at
//! memory speed: replayed vectors are staged and linked in the background
//! after the node is ready.
//!
//! Invariants: a pending slot is never freed while someone links it
//! (linking holds the shape lock shared; freeing needs it exclusive), and a
//! freed slot leaves the pending set under that exclusive lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::search::Scratch;
use super::{DELETED, Hnsw, Inner, LIVE};
use crate::IndexError;

/// Slots staged but not yet linked; the flag says whether a linker has
/// claimed the slot.
pub(super) type PendingLinks = HashMap<u32, AtomicBool>;

impl Hnsw {
    /// Validates a batch (dimension, finite values, cosine zero vectors,
    /// duplicate ids); returns the storage scale of each vector. Nothing is
    /// changed.
    pub fn check_batch(&self, batch: &[(u64, &[f32])]) -> Result<Vec<f32>, IndexError> {
        let mut scales = Vec::with_capacity(batch.len());
        let mut seen = std::collections::HashSet::with_capacity(batch.len());
        for &(id, vector) in batch {
            scales.push(self.validate(vector)?);
            if !seen.insert(id) {
                return Err(IndexError::DuplicateId(id));
            }
        }
        Ok(scales)
    }

    /// Stores a batch and makes it searchable at once without linking it
    /// into the graph (see the module docs); returns the slots to pass to
    /// [`Hnsw::link_slots`]. The whole batch is validated first: on error
    /// nothing is stored. An id already present is replaced (its old slot
    /// is deleted and repaired later). Cost: O(batch × dim).
    pub fn stage_batch(&self, batch: &[(u64, &[f32])]) -> Result<Vec<u32>, IndexError> {
        let scales = self.check_batch(batch)?;
        let _gate = self.write_gate.read();
        self.reserve(batch.len())?;
        let mut slots = Vec::with_capacity(batch.len());
        for (&(id, vector), &scale) in batch.iter().zip(&scales) {
            slots.push(self.stage_validated(id, vector, scale)?);
        }
        Ok(slots)
    }

    /// Stages one validated vector; the caller holds `write_gate` shared.
    pub(super) fn stage_validated(&self, id: u64, vector: &[f32], scale: f32) -> Result<u32, IndexError> {
        let (inner, slot) = self.reserve_slot()?;
        let level = self.random_level();
        // SAFETY: `slot` was just reserved by this thread and is not yet
        // reachable from the graph, the entry point, the id map or the
        // pending set.
        unsafe { inner.vectors.write(slot, vector, scale) };
        if let Some(quant) = &inner.quant {
            // SAFETY: as above, the slot is still ours alone.
            unsafe { quant.encode_slot(&inner, slot) };
        }
        inner.labels[slot as usize].store(id, Ordering::Release);
        inner.graph.init_node(slot, level);
        inner.changed_vectors.mark(slot);
        self.pending_links.write().insert(slot, AtomicBool::new(false));
        let mut ids = self.ids.lock();
        inner.states[slot as usize].store(LIVE, Ordering::Release);
        match ids.insert(id, slot) {
            Some(old) => {
                inner.states[old as usize].store(DELETED, Ordering::Release);
                inner.graph.changed.mark(old);
                drop(ids);
                self.pending_deletes.lock().push(old);
            }
            None => {
                self.live.fetch_add(1, Ordering::AcqRel);
            }
        }
        Ok(slot)
    }

    /// Links staged slots into the graph with up to `threads` threads
    /// (threads are only started for batches big enough to pay for them).
    /// Slots already linked or claimed by another linker are skipped, so it
    /// is safe to call with any slots, any number of times.
    /// Returns how many slots this call linked.
    pub fn link_slots(&self, slots: &[u32], threads: usize) -> usize {
        /// Slots per thread below which one thread does the whole batch.
        const MIN_PER_THREAD: usize = 64;
        let _gate = self.write_gate.read();
        let inner = self.inner.read();
        let threads = threads.clamp(1, slots.len().div_ceil(MIN_PER_THREAD).max(1));
        let linked = AtomicUsize::new(0);
        let next = AtomicUsize::new(0);
        let inner = &*inner;
        let work = || {
            let mut scratch = self.take_scratch();
            while let Some(&slot) = slots.get(next.fetch_add(1, Ordering::Relaxed)) {
                if self.link_claimed(inner, slot, &mut scratch) {
                    linked.fetch_add(1, Ordering::Relaxed);
                }
            }
            self.return_scratch(scratch);
        };
        if threads == 1 {
            work();
        } else {
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(work);
                }
            });
        }
        self.linked_since_relink.fetch_add(linked.load(Ordering::Relaxed), Ordering::Relaxed);
        linked.into_inner()
    }

    /// Links up to `max` pending slots (oldest claim first is not
    /// guaranteed); returns how many this call linked.
    pub fn link_pending(&self, max: usize) -> usize {
        let slots: Vec<u32> = {
            let pending = self.pending_links.read();
            pending.iter().filter(|(_, claimed)| !claimed.load(Ordering::Relaxed)).map(|(&s, _)| s).take(max).collect()
        };
        self.link_slots(&slots, 1)
    }

    /// Staged slots not linked yet (searched by exact scan meanwhile).
    pub fn unlinked(&self) -> usize {
        self.pending_links.read().len()
    }

    /// Claims `slot` if it is pending and unclaimed, links it if it is
    /// still live, and takes it out of the pending set; returns whether
    /// this call claimed it.
    fn link_claimed(&self, inner: &Inner, slot: u32, scratch: &mut Scratch) -> bool {
        {
            let pending = self.pending_links.read();
            match pending.get(&slot) {
                Some(claimed) if !claimed.swap(true, Ordering::AcqRel) => {}
                _ => return false,
            }
        }
        if inner.is_live(slot) {
            self.link(inner, slot, inner.graph.level(slot), scratch);
        }
        self.pending_links.write().remove(&slot);
        // Linked now: the next incremental snapshot records it.
        inner.graph.changed.mark(slot);
        true
    }
}
