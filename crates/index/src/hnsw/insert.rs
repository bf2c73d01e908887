//! Linking a staged node (the paper's Algorithm 1; staging, which writes
//! the vector into a reserved slot, is in [`super::staging`]): descend
//! greedily to the new node's level, then on each layer below
//! find `efConstruction` candidates, keep `M` by the heuristic, and link both
//! ways, re-pruning a neighbour's list with the same heuristic when it
//! overflows its degree bound.

use super::search::{self, Candidate, Scratch};
use super::{Entry, ExactScorer, Hnsw, Inner};
use crate::Scorer;

impl Hnsw {
    /// Connects `node` (vector written, level initialised) into the graph.
    pub(super) fn link(&self, inner: &Inner, node: u32, level: usize, scratch: &mut Scratch) {
        let query = inner.vector(node);
        let scorer = ExactScorer { inner, query, metric: self.metric, kernels: self.kernels };

        // A node above the current top layer becomes the new entry point;
        // hold the entry lock for its whole insertion so no other node
        // claims the top concurrently (rare: about log_M(n) times in all).
        let mut entry_guard = None;
        let mut entry = self.entry_point();
        if entry.is_none_or(|e| level > e.level) {
            entry_guard = Some(self.entry_lock.lock());
            entry = self.entry_point();
            match entry {
                None => {
                    self.set_entry_point(Some(Entry { node, level }));
                    return;
                }
                Some(e) if level <= e.level => entry_guard = None,
                Some(_) => {}
            }
        }
        let Some(entry) = entry else { return };

        let mut current = Candidate { distance: scorer.distance(entry.node), node: entry.node };
        for l in (level + 1..=entry.level).rev() {
            current = search::greedy(&inner.graph, &scorer, current, l);
        }

        // Neighbours are chosen top-down (each layer's search starts from
        // the one above), then published bottom-up: once another search
        // can reach `node` on a layer, its lists below are set, so a greedy
        // descent through it never ends on a node without layer-0 links
        // (found by the concurrency oracle: exact searches that started
        // there answered a handful of points).
        let mut entry_points = vec![current];
        let mut chosen: Vec<(usize, Vec<u32>)> = Vec::with_capacity(level.min(entry.level) + 1);
        let accept = |n: u32| n != node && inner.is_live(n);
        // Whether layer 0 had no live node reachable from the entry point
        // (e.g. the only vector was just replaced by this one).
        let mut isolated = false;
        let pair = |a: u32, b: u32| self.pair_distance(inner, a, b);
        let mut selected = Vec::with_capacity(self.params.m);
        for l in (0..=level.min(entry.level)).rev() {
            scratch.visited.prepare(inner.capacity());
            search::search_layer(&inner.graph, &scorer, scratch, &entry_points, self.params.ef_construction, l, accept);
            let mut found = std::mem::take(&mut scratch.sorted);
            found.clear();
            found.extend(scratch.nearest.drain());
            found.sort_unstable();
            if found.is_empty() {
                // Nothing live reachable on this layer: keep descending from
                // where we are.
                isolated = l == 0;
                scratch.sorted = found;
                continue;
            }
            search::select_neighbours(&found, self.params.m, pair, &mut selected);
            chosen.push((l, selected.iter().map(|c| c.node).collect()));
            entry_points.clear();
            entry_points.extend_from_slice(&found);
            scratch.sorted = found;
        }
        for (l, mut selected_ids) in chosen.into_iter().rev() {
            self.set_own_links(inner, node, l, &mut selected_ids, scratch);
            for &neighbour in &selected_ids {
                self.add_link(inner, neighbour, node, l, scratch);
            }
            if l == 0 {
                self.ensure_in_link(inner, node, &selected_ids, scratch);
            }
        }

        if entry_guard.is_some() {
            self.set_entry_point(Some(Entry { node, level }));
        } else if isolated {
            // No live node is reachable from the entry point, so nothing
            // reachable is lost by starting searches here instead; otherwise
            // this node would stay unreachable until the next repair.
            let _guard = self.entry_lock.lock();
            if self.entry_point().is_some_and(|e| e.node == entry.node && !inner.is_live(e.node)) {
                self.set_entry_point(Some(Entry { node, level }));
            }
        }
    }

    /// Sets `node`'s list on layer `l` to `selected`, keeping the links other
    /// threads added meanwhile: a concurrent insert may already have chosen
    /// `node` (reached through a layer above, where it is linked) and added
    /// its back-link `node → other`; overwriting it would leave `other`
    /// with one link fewer, and concurrent batches of close points (a 1-d
    /// line linked by two threads) then split into unreachable pieces. When
    /// the union is over the degree bound, the heuristic re-selects.
    fn set_own_links(&self, inner: &Inner, node: u32, l: usize, selected: &mut Vec<u32>, scratch: &mut Scratch) {
        let graph = &inner.graph;
        let _lock = graph.lock(node);
        graph.neighbours_into(node, l, &mut scratch.ids);
        if scratch.ids.iter().all(|n| selected.contains(n)) {
            graph.set_neighbours(node, l, selected);
            return;
        }
        for &n in selected.iter() {
            if !scratch.ids.contains(&n) {
                scratch.ids.push(n);
            }
        }
        let max_degree = graph.max_degree(l);
        if scratch.ids.len() > max_degree {
            let kept = self.reselect(inner, node, &scratch.ids, max_degree);
            scratch.ids.clear();
            scratch.ids.extend(kept);
        }
        graph.set_neighbours(node, l, &scratch.ids);
        selected.clear();
        selected.extend_from_slice(&scratch.ids);
    }

    /// Makes sure some node links to `node` on layer 0 after its
    /// neighbours re-selected their lists: when every back-link was pruned,
    /// the new node would be unreachable until the next reachability pass
    /// (found by nothing but a scan). The nearest neighbour then links to
    /// `node` instead of to one of `node`'s own out-neighbours `x`, so `x`
    /// stays reachable through `n0 → node → x`.
    fn ensure_in_link(&self, inner: &Inner, node: u32, out: &[u32], scratch: &mut Scratch) {
        let graph = &inner.graph;
        for &n in out {
            graph.neighbours_into(n, 0, &mut scratch.ids);
            if scratch.ids.contains(&node) {
                return;
            }
        }
        let Some(&nearest) = out.first() else { return };
        let _lock = graph.lock(nearest);
        graph.neighbours_into(nearest, 0, &mut scratch.ids);
        if scratch.ids.contains(&node) {
            return;
        }
        if let Some(position) = scratch.ids.iter().position(|x| out.contains(x)) {
            scratch.ids[position] = node;
            graph.set_neighbours(nearest, 0, &scratch.ids);
        }
    }

    /// Adds the link `from → to` on `level`, re-selecting `from`'s list with
    /// the heuristic when it is full.
    fn add_link(&self, inner: &Inner, from: u32, to: u32, level: usize, scratch: &mut Scratch) {
        let graph = &inner.graph;
        let max_degree = graph.max_degree(level);
        let _lock = graph.lock(from);
        graph.neighbours_into(from, level, &mut scratch.ids);
        if scratch.ids.contains(&to) {
            return;
        }
        if scratch.ids.len() < max_degree {
            scratch.ids.push(to);
            graph.set_neighbours(from, level, &scratch.ids);
            return;
        }
        scratch.ids.push(to);
        let kept = self.reselect(inner, from, &scratch.ids, max_degree);
        scratch.ids.clear();
        scratch.ids.extend(kept);
        graph.set_neighbours(from, level, &scratch.ids);
    }

    /// At most `max_degree` of `ids` as `node`'s neighbours, chosen by the
    /// heuristic (nearest first, skipping candidates closer to a kept one
    /// than to `node`).
    pub(super) fn reselect(&self, inner: &Inner, node: u32, ids: &[u32], max_degree: usize) -> Vec<u32> {
        let base = inner.vector(node);
        let mut candidates: Vec<Candidate> = ids
            .iter()
            .map(|&n| Candidate {
                distance: self.metric.ranking_distance(self.kernels, base, inner.vector(n)),
                node: n,
            })
            .collect();
        candidates.sort_unstable();
        let mut kept = Vec::with_capacity(max_degree);
        search::select_neighbours(&candidates, max_degree, |a, b| self.pair_distance(inner, a, b), &mut kept);
        kept.iter().map(|c| c.node).collect()
    }

    /// Ranking distance between two stored vectors.
    #[inline]
    pub(super) fn pair_distance(&self, inner: &Inner, a: u32, b: u32) -> f32 {
        self.metric.ranking_distance(self.kernels, inner.vector(a), inner.vector(b))
    }
}
