//! Graph search: greedy descent through the upper layers, beam search with
//! `ef` on a layer, and the neighbour-selection heuristic of Malkov &
//! Yashunin (Algorithm 4) shared by insertion and delete repair.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::graph::Graph;
use crate::Scorer;
use crate::visited::VisitedSet;

/// A node with its distance to the current query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Candidate {
    pub(crate) distance: f32,
    pub(crate) node: u32,
}

impl Eq for Candidate {}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.distance.total_cmp(&other.distance).then(self.node.cmp(&other.node))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Per-search working memory, pooled by the index so steady-state searches
/// allocate nothing.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    pub(crate) visited: VisitedSet,
    /// `C` in the paper: nodes still to expand, nearest first.
    pub(crate) candidates: BinaryHeap<Reverse<Candidate>>,
    /// `W` in the paper: the best `ef` accepted nodes, farthest on top.
    pub(crate) nearest: BinaryHeap<Candidate>,
    /// Unvisited neighbours of the node being expanded.
    pub(crate) batch: Vec<u32>,
    /// Spare buffers for callers (insert, repair).
    pub(crate) ids: Vec<u32>,
    pub(crate) sorted: Vec<Candidate>,
}

/// Greedy search at `level` from `start`: move to the nearest neighbour
/// until no neighbour is nearer (the paper's SEARCH-LAYER with ef = 1).
pub(crate) fn greedy<S: Scorer>(graph: &Graph, scorer: &S, start: Candidate, level: usize) -> Candidate {
    let mut best = start;
    loop {
        let mut improved = false;
        let from = best.node;
        graph.for_each_neighbour(from, level, |n| {
            let d = scorer.distance(n);
            if d < best.distance {
                best = Candidate { distance: d, node: n };
                improved = true;
            }
        });
        if !improved {
            return best;
        }
    }
}

/// Beam search on one layer (the paper's SEARCH-LAYER).
///
/// Starts from `entry` (already scored), expands nodes nearest-first and
/// leaves in `scratch.nearest` the best `ef` nodes for which `accept` holds.
/// Nodes that are not accepted (deleted ones, the node being inserted) are
/// still expanded, so they keep routing the search; the loop stops only when
/// the nearest unexpanded node is farther than the `ef`-th accepted one, so
/// it returns fewer than `ef` nodes only if fewer are reachable.
///
/// The caller prepares `scratch.visited` (a fresh set per layer searched).
pub(crate) fn search_layer<S: Scorer>(
    graph: &Graph,
    scorer: &S,
    scratch: &mut Scratch,
    entry: &[Candidate],
    ef: usize,
    level: usize,
    accept: impl Fn(u32) -> bool,
) {
    let Scratch { visited, candidates, nearest, batch, .. } = scratch;
    candidates.clear();
    nearest.clear();
    for &e in entry {
        if visited.insert(e.node) {
            candidates.push(Reverse(e));
            if accept(e.node) {
                nearest.push(e);
            }
        }
    }
    while nearest.len() > ef {
        nearest.pop();
    }
    let mut bound = bound_of(nearest, ef);

    while let Some(Reverse(current)) = candidates.pop() {
        if current.distance > bound {
            break;
        }
        if level == 0
            && let Some(Reverse(next)) = candidates.peek()
        {
            graph.prefetch_layer0(next.node);
        }
        batch.clear();
        graph.for_each_neighbour(current.node, level, |n| {
            if visited.insert(n) {
                scorer.prefetch(n);
                batch.push(n);
            }
        });
        for (i, &n) in batch.iter().enumerate() {
            if let Some(&next) = batch.get(i + 1) {
                scorer.prefetch_all(next);
            }
            let d = scorer.distance(n);
            if d < bound {
                let c = Candidate { distance: d, node: n };
                candidates.push(Reverse(c));
                if accept(n) {
                    nearest.push(c);
                    if nearest.len() > ef {
                        nearest.pop();
                    }
                    bound = bound_of(nearest, ef);
                }
            }
        }
    }
}

/// The distance a new node must beat to matter: the `ef`-th best so far, or
/// infinity while fewer than `ef` have been accepted.
#[inline]
fn bound_of(nearest: &BinaryHeap<Candidate>, ef: usize) -> f32 {
    if nearest.len() < ef { f32::INFINITY } else { nearest.peek().map_or(f32::INFINITY, |c| c.distance) }
}

/// The neighbour-selection heuristic (Algorithm 4 without extension or kept
/// pruned connections): walk `candidates` nearest-first and keep one only if
/// it is nearer to the base than to every neighbour kept so far, until `m`
/// are kept. Spreads links across directions instead of clustering them,
/// which is what keeps the graph navigable.
///
/// `candidates` must be sorted nearest-first; `pair` is the ranking distance
/// between two nodes. Returns the kept nodes in `out`, nearest-first.
pub(crate) fn select_neighbours(
    candidates: &[Candidate],
    m: usize,
    pair: impl Fn(u32, u32) -> f32,
    out: &mut Vec<Candidate>,
) {
    out.clear();
    if candidates.len() <= m {
        out.extend_from_slice(candidates);
        return;
    }
    for &c in candidates {
        if out.len() >= m {
            break;
        }
        if out.iter().all(|kept| pair(c.node, kept.node) >= c.distance) {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heuristic_skips_candidates_shadowed_by_a_kept_neighbour() {
        // Points on a line: base at 0, candidates at 1, 2 and -3.
        let pos = [0.0f32, 1.0, 2.0, -3.0];
        let pair = |a: u32, b: u32| (pos[a as usize] - pos[b as usize]).abs();
        let cands: Vec<Candidate> =
            [1u32, 2, 3].iter().map(|&n| Candidate { distance: pos[n as usize].abs(), node: n }).collect();
        let mut out = Vec::new();
        select_neighbours(&cands, 2, pair, &mut out);
        // 2 is nearer to 1 than to the base, so the heuristic takes -3 instead.
        assert_eq!(out.iter().map(|c| c.node).collect::<Vec<_>>(), vec![1, 3]);
        select_neighbours(&cands, 3, pair, &mut out);
        assert_eq!(out.len(), 3, "fewer candidates than m: all are kept");
    }
}
