//! Deletion with graph repair.
//!
//! A delete is immediate for readers: the id leaves the id map and the node
//! turns `DELETED`, so no search or `get` returns it from then on. The node
//! keeps routing searches until its links are repaired, which happens in
//! batches (a single repair pass serves many deletes):
//!
//! 1. Every live node `p` with an out-link to a deleted node `d` gets a new
//!    list chosen by the neighbour-selection heuristic from its surviving
//!    neighbours plus the neighbours of each `d` it pointed to (the deleted
//!    node's neighbourhood is where the paths through `d` led). This is the
//!    consolidation rule of FreshDiskANN applied per HNSW layer.
//! 2. Under the exclusive lock (no search in flight, so no reader holds a
//!    stale link) any link to a deleted node added by a racing insert is
//!    dropped, the entry point moves off a deleted node to the live node on
//!    the highest layer, and the slots are freed.
//!
//! Reachability ([`Hnsw::relink_unreachable`]): a live node that lost its
//! last path from the entry point (possible when most of a neighbourhood
//! is deleted and the heuristic prunes the survivors' links to it, and,
//! rarely, when insertion prunes a node's last in-link — a known weakness
//! of HNSW) is linked from its nearest reachable node, taking the place of
//! a link whose target has another in-link. It runs under the shared lock,
//! changing one list at a time under that node's lock.
//!
//! When repair and the reachability pass run is decided in
//! [`super::maintenance`]: in the caller's thread after a mutation by
//! default, or only when the owner calls [`Hnsw::maintain`].

use std::sync::atomic::{AtomicUsize, Ordering};

use super::search::{self, Candidate, Scratch};
use super::{DELETED, Entry, FREE, Hnsw, Inner, LIVE};
use crate::Scorer;

impl Hnsw {
    /// Deletes `id`; returns whether it was present. The vector disappears
    /// from searches at once; its links are repaired in batches (see
    /// [`Hnsw::repair_deletes`]).
    pub fn delete(&self, id: u64) -> bool {
        {
            let _gate = self.write_gate.read();
            let inner = self.inner.read();
            let Some(slot) = self.ids.lock().remove(&id) else {
                return false;
            };
            inner.states[slot as usize].store(DELETED, Ordering::Release);
            inner.graph.changed.mark(slot);
            self.live.fetch_sub(1, Ordering::AcqRel);
            self.pending_deletes.lock().push(slot);
        }
        // An error here can only come from quantizer training, which a
        // delete never starts (the live count shrank).
        let _ = self.maintain_inline();
        true
    }

    /// Number of deleted nodes whose links have not been repaired yet.
    pub fn pending_deletes(&self) -> usize {
        self.pending_deletes.lock().len()
    }

    /// Repairs the links around every deleted node now and frees their
    /// slots, then makes every live node reachable again.
    pub fn repair_deletes(&self) {
        let _gate = self.write_gate.read();
        self.repair_pending();
        self.relink_unreachable_now();
    }

    /// The repair pass; the caller holds `write_gate` shared.
    pub(super) fn repair_pending(&self) {
        let deleted_slots = std::mem::take(&mut *self.pending_deletes.lock());
        if deleted_slots.is_empty() {
            return;
        }
        {
            let inner = self.inner.read();
            let mut is_deleted = vec![false; inner.used()];
            for &d in &deleted_slots {
                is_deleted[d as usize] = true;
            }
            self.reconnect_in_neighbours(&inner, &is_deleted);
        }
        let mut inner = self.inner.write();
        let mut is_deleted = vec![false; inner.used()];
        for &d in &deleted_slots {
            is_deleted[d as usize] = true;
        }
        drop_links_to(&inner, &is_deleted);
        self.replace_deleted_entry(&inner, &is_deleted);
        let mut free = self.free.lock();
        let mut pending_links = self.pending_links.write();
        for &d in &deleted_slots {
            inner.graph.reset(d);
            inner.labels[d as usize].store(0, Ordering::Relaxed);
            inner.states[d as usize].store(FREE, Ordering::Release);
            pending_links.remove(&d);
            free.push(d);
        }
    }

    /// Step 1 of the module docs, spread over the available cores.
    fn reconnect_in_neighbours(&self, inner: &Inner, is_deleted: &[bool]) {
        let used = is_deleted.len();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
        const CHUNK: usize = 1024;
        let next = AtomicUsize::new(0);
        let work = || {
            let mut scratch = Scratch::default();
            loop {
                let start = next.fetch_add(CHUNK, Ordering::Relaxed);
                if start >= used {
                    break;
                }
                for p in start..(start + CHUNK).min(used) {
                    let p = p as u32;
                    if inner.state(p) != LIVE {
                        continue;
                    }
                    for level in 0..=inner.graph.level(p) {
                        self.reconnect(inner, p, level, is_deleted, &mut scratch);
                    }
                }
            }
        };
        if threads <= 1 || used < 4 * CHUNK {
            work();
        } else {
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(work);
                }
            });
        }
    }

    /// Rebuilds `p`'s list on `level` if it links to a deleted node.
    fn reconnect(&self, inner: &Inner, p: u32, level: usize, is_deleted: &[bool], scratch: &mut Scratch) {
        let dead = |n: u32| is_deleted.get(n as usize).copied().unwrap_or(false);
        let graph = &inner.graph;
        let _lock = graph.lock(p);
        graph.neighbours_into(p, level, &mut scratch.ids);
        if !scratch.ids.iter().any(|&n| dead(n)) {
            return;
        }
        let mut pool: Vec<u32> = Vec::with_capacity(scratch.ids.len() * 2);
        let mut second_hand = Vec::new();
        for &n in &scratch.ids {
            if !dead(n) {
                pool.push(n);
                continue;
            }
            graph.neighbours_into(n, level, &mut second_hand);
            pool.extend(second_hand.iter().copied().filter(|&x| x != p && !dead(x) && inner.state(x) == LIVE));
        }
        pool.sort_unstable();
        pool.dedup();
        let kept = self.reselect(inner, p, &pool, graph.max_degree(level));
        graph.set_neighbours(p, level, &kept);
    }

    /// Moves the entry point off a deleted node (under the exclusive lock).
    fn replace_deleted_entry(&self, inner: &Inner, is_deleted: &[bool]) {
        let _guard = self.entry_lock.lock();
        let Some(entry) = self.entry_point() else {
            return;
        };
        if !is_deleted.get(entry.node as usize).copied().unwrap_or(false) {
            return;
        }
        // A staged slot not linked yet has no links: searches starting
        // there would find nothing but the staged slots (found by the
        // concurrency oracle: exact searches answered 4 of 3,000 points).
        // A linked node is taken when there is one.
        let pending = self.pending_links.read();
        let replacement = (0..inner.used() as u32)
            .filter(|&s| inner.state(s) == LIVE)
            .map(|s| (!pending.contains_key(&s), Entry { node: s, level: inner.graph.level(s) }))
            .max_by_key(|(linked, e)| (*linked, e.level, std::cmp::Reverse(e.node)))
            .map(|(_, e)| e);
        self.set_entry_point(replacement);
    }
}

impl Hnsw {
    /// Runs the reachability pass now (module docs); the caller holds
    /// `write_gate` shared.
    pub(super) fn relink_unreachable_now(&self) {
        self.linked_since_relink.store(0, std::sync::atomic::Ordering::Relaxed);
        let inner = self.inner.read();
        self.relink_unreachable(&inner);
    }

    /// Makes every linked live node reachable on layer 0 from the entry
    /// point (module docs). Runs alongside searches and inserts: lists are
    /// read without locks and each changed list is re-read and written
    /// under its node's lock; staged nodes not linked yet are left to
    /// their linker. Returns how many nodes it relinked.
    pub(super) fn relink_unreachable(&self, inner: &Inner) -> usize {
        let Some(entry) = self.entry_point() else {
            return 0;
        };
        let used = inner.used();
        let graph = &inner.graph;
        let mut in_degree = vec![0u32; used];
        let mut ids = Vec::new();
        for p in 0..used as u32 {
            if inner.state(p) != LIVE {
                continue;
            }
            graph.neighbours_into(p, 0, &mut ids);
            for &n in &ids {
                if let Some(d) = in_degree.get_mut(n as usize) {
                    *d += 1;
                }
            }
        }
        let mut reachable = vec![false; used];
        let mut stack = Vec::new();
        let mut mark_from = |start: u32, reachable: &mut Vec<bool>| {
            reachable[start as usize] = true;
            stack.push(start);
            while let Some(n) = stack.pop() {
                graph.for_each_neighbour(n, 0, |m| {
                    if let Some(seen) = reachable.get_mut(m as usize)
                        && !*seen
                    {
                        *seen = true;
                        stack.push(m);
                    }
                });
            }
        };
        if entry.node as usize >= used {
            return 0;
        }
        mark_from(entry.node, &mut reachable);
        let unlinked: std::collections::HashSet<u32> = self.pending_links.read().keys().copied().collect();
        let mut scratch = Scratch::default();
        let mut relinked = 0;
        for u in 0..used as u32 {
            if reachable[u as usize] || inner.state(u) != LIVE || unlinked.contains(&u) {
                continue;
            }
            // The nearest reachable nodes to u, by a beam search that only
            // accepts reachable nodes.
            let query = inner.vector(u);
            let scorer = super::ExactScorer { inner, query, metric: self.metric, kernels: self.kernels };
            let start = Candidate { distance: scorer.distance(entry.node), node: entry.node };
            scratch.visited.prepare(inner.capacity());
            search::search_layer(graph, &scorer, &mut scratch, &[start], 32, 0, |n| {
                reachable.get(n as usize).copied().unwrap_or(false) && inner.state(n) == LIVE
            });
            let mut near: Vec<Candidate> = scratch.nearest.drain().collect();
            near.sort_unstable();
            for r in near {
                let guard = graph.lock(r.node);
                graph.neighbours_into(r.node, 0, &mut ids);
                if ids.contains(&u) {
                    break;
                }
                if ids.len() < graph.max_degree(0) {
                    ids.push(u);
                } else {
                    // Replace the farthest neighbour that keeps another in-link.
                    let base = inner.vector(r.node);
                    let victim = ids
                        .iter()
                        .enumerate()
                        .filter(|&(_, &x)| in_degree.get(x as usize).is_some_and(|&d| d > 1))
                        .max_by(|a, b| {
                            let da = self.metric.ranking_distance(self.kernels, base, inner.vector(*a.1));
                            let db = self.metric.ranking_distance(self.kernels, base, inner.vector(*b.1));
                            da.total_cmp(&db)
                        })
                        .map(|(i, _)| i);
                    let Some(i) = victim else { continue };
                    if let Some(d) = in_degree.get_mut(ids[i] as usize) {
                        *d -= 1;
                    }
                    ids[i] = u;
                }
                in_degree[u as usize] += 1;
                graph.set_neighbours(r.node, 0, &ids);
                drop(guard);
                mark_from(u, &mut reachable);
                relinked += 1;
                break;
            }
        }
        relinked
    }
}

/// Step 3: removes any remaining link to a deleted node (exclusive access).
fn drop_links_to(inner: &Inner, is_deleted: &[bool]) {
    let dead = |n: u32| is_deleted.get(n as usize).copied().unwrap_or(false);
    let mut ids = Vec::new();
    for p in 0..is_deleted.len() as u32 {
        if dead(p) || inner.state(p) == FREE {
            continue;
        }
        for level in 0..=inner.graph.level(p) {
            inner.graph.neighbours_into(p, level, &mut ids);
            if ids.iter().any(|&n| dead(n)) {
                ids.retain(|&n| !dead(n));
                inner.graph.set_neighbours(p, level, &ids);
            }
        }
    }
}
