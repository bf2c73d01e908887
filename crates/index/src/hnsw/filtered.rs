//! Filtered search: the two plans a caller chooses between once it knows
//! how many vectors a filter lets through.
//!
//! * [`Hnsw::score_ids`] scores exactly the given ids — no graph at all.
//!   It is the right plan when few vectors match: its cost is the number
//!   of matches, and its answer is exact.
//! * [`Hnsw::search_filtered`] walks the graph checking the filter
//!   *before* computing a distance, so non-matching vectors cost a filter
//!   check, never a distance. When a node's neighbours fail the filter the
//!   walk looks through them, at their own neighbours (two hops), so the
//!   walk stays connected across regions where the filter is rare — the
//!   ACORN-1 idea (Patel et al., SIGMOD 2024) as Lucene and Weaviate adapt
//!   it to a graph built without the filter in mind. Besides the usual
//!   entry point, the walk starts from a few matching vectors the caller
//!   picks (`seeds`), so a filter whose matches lie in other regions of
//!   the graph than the query's is still reached. The walk gives up
//!   (`None`) once it has scored more vectors than its budget — the caller
//!   passes the number of matching vectors, beyond which scoring them all
//!   exactly is cheaper.
//!
//! Both run on quantized codes when the index has a trained quantizer and
//! rescore the best `oversampling · k` with full vectors, as unfiltered
//! searches do.

use std::cmp::Reverse;
use std::sync::atomic::Ordering;

use super::graph::Graph;
use super::search::{self, Candidate, Scratch};
use super::{ExactScorer, Hnsw, HnswParams, Inner};
use crate::{IndexError, Neighbor, Scorer};

/// A filter on external ids, checked by a walk before scoring a vector.
pub type IdFilter<'a> = &'a (dyn Fn(u64) -> bool + Sync);

/// Up to this many neighbours are scored per expanded node: the layer-0
/// degree bound, so a node expands to as many matching candidates as an
/// unfiltered walk scores neighbours.
fn batch_cap(graph: &Graph) -> usize {
    graph.max_degree(0)
}

/// What restricts a filtered walk: the filter, the slots it starts from
/// besides the entry point, and how many vectors it may score.
#[derive(Clone, Copy)]
struct Walk<'a> {
    filter: IdFilter<'a>,
    seeds: &'a [u32],
    budget: usize,
}

impl Hnsw {
    /// The `k` nearest of the vectors with the given ids, nearest first,
    /// by scoring every one of them (ids absent from the index are
    /// skipped). On a quantized index the codes are scored and the best
    /// `oversampling · k` rescored with full vectors.
    pub fn score_ids(&self, query: &[f32], ids: &[u64], k: usize) -> Result<Vec<Neighbor>, IndexError> {
        let prepared = self.prepare_query(query)?;
        if k == 0 || ids.is_empty() {
            return Ok(Vec::new());
        }
        let inner = self.inner.read();
        let slots: Vec<u32> = {
            let map = self.ids.lock();
            ids.iter().filter_map(|id| map.get(id).copied()).collect()
        };
        let exact = ExactScorer { inner: &inner, query: &prepared, metric: self.metric, kernels: self.kernels };
        let best = match &inner.quant {
            Some(quant) => {
                let table = quant.quantizer.query(&prepared);
                let codes = super::quantized::CodeScorer::new(&quant.codes, &table);
                let rerank = k.saturating_mul(self.oversampling()).max(k);
                let coarse = top_k(&slots, &codes, rerank, |n| inner.is_live(n));
                let nodes: Vec<u32> = coarse.iter().map(|c| c.node).collect();
                top_k(&nodes, &exact, k, |_| true)
            }
            None => top_k(&slots, &exact, k, |n| inner.is_live(n)),
        };
        Ok(self.to_neighbors(&inner, best, |d| self.metric.reported(d)))
    }

    /// The `k` nearest vectors whose id passes `filter`, by a walk that
    /// checks the filter before scoring (module docs), with beam width
    /// `ef`, starting also from the vectors `seeds` (ids that pass the
    /// filter; absent ones are skipped). `None` when the walk scored more
    /// than `budget` vectors, or found fewer than `min(ef, budget)` (it ran
    /// out of matches it could reach): the caller should then score the
    /// matching vectors exactly. `budget` is meant to be the number of
    /// matching vectors.
    pub fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: IdFilter<'_>,
        seeds: &[u64],
        budget: usize,
    ) -> Result<Option<Vec<Neighbor>>, IndexError> {
        let prepared = self.prepare_query(query)?;
        if ef > HnswParams::MAX_EF {
            return Err(IndexError::InvalidParameter {
                name: "ef",
                reason: format!("must be at most {}", HnswParams::MAX_EF),
            });
        }
        if k == 0 {
            return Ok(Some(Vec::new()));
        }
        let inner = self.inner.read();
        let seeds: Vec<u32> = {
            let map = self.ids.lock();
            seeds.iter().filter_map(|id| map.get(id).copied()).collect()
        };
        let exact = ExactScorer { inner: &inner, query: &prepared, metric: self.metric, kernels: self.kernels };
        let Some(quant) = &inner.quant else {
            let hits = self.walk_filtered(&inner, &exact, k, ef, Walk { filter, seeds: &seeds, budget });
            return Ok(hits.map(|hits| self.to_neighbors(&inner, hits, |d| self.metric.reported(d))));
        };
        let table = quant.quantizer.query(&prepared);
        let codes = super::quantized::CodeScorer::new(&quant.codes, &table);
        let rerank = k.saturating_mul(self.oversampling()).max(k);
        let Some(coarse) =
            self.walk_filtered(&inner, &codes, rerank, ef.max(rerank), Walk { filter, seeds: &seeds, budget })
        else {
            return Ok(None);
        };
        let nodes: Vec<u32> = coarse.iter().map(|c| c.node).collect();
        let best = top_k(&nodes, &exact, k, |_| true);
        Ok(Some(self.to_neighbors(&inner, best, |d| self.metric.reported(d))))
    }

    /// The query as the index stores vectors (normalised under cosine),
    /// after checking it.
    fn prepare_query<'q>(&self, query: &'q [f32]) -> Result<std::borrow::Cow<'q, [f32]>, IndexError> {
        let scale = self.validate(query)?;
        Ok(if scale == 1.0 { query.into() } else { query.iter().map(|x| x * scale).collect::<Vec<_>>().into() })
    }

    /// Descent through the upper layers (unfiltered: they only route),
    /// then the filtered beam search on layer 0, then the staged slots not
    /// linked yet; up to `k` slots, nearest first, or `None` past `budget`.
    fn walk_filtered<S: Scorer>(
        &self,
        inner: &Inner,
        scorer: &S,
        k: usize,
        ef: usize,
        walk: Walk<'_>,
    ) -> Option<Vec<Candidate>> {
        let Walk { filter, seeds, budget } = walk;
        let passes = |n: u32| inner.is_live(n) && filter(inner.labels[n as usize].load(Ordering::Acquire));
        let ef = ef.max(k);
        let mut scratch = self.take_scratch();
        scratch.visited.prepare(inner.capacity());
        let mut within_budget = true;
        match self.entry_point() {
            Some(entry) => {
                let mut current = Candidate { distance: scorer.distance(entry.node), node: entry.node };
                for level in (1..=entry.level).rev() {
                    current = search::greedy(&inner.graph, scorer, current, level);
                }
                let mut entries = vec![current];
                entries.extend(
                    seeds
                        .iter()
                        .filter(|&&s| s != current.node && passes(s))
                        .map(|&s| Candidate { distance: scorer.distance(s), node: s }),
                );
                within_budget = layer0_filtered(&inner.graph, scorer, &mut scratch, &entries, ef, &passes, budget);
            }
            None => scratch.nearest.clear(),
        }
        if within_budget {
            self.score_pending(inner, scorer, &mut scratch, ef, passes);
        }
        let mut hits: Vec<Candidate> = scratch.nearest.drain().collect();
        self.return_scratch(scratch);
        // A beam that did not fill although `budget` (the caller's count
        // of matching vectors) says it could have: the walk ran out of
        // matches it could reach, and what it found may not be the nearest.
        if !within_budget || hits.len() < ef.min(budget) {
            return None;
        }
        hits.sort_unstable();
        super::distinct_nearest(inner, &mut hits, k);
        Some(hits)
    }
}

/// The filtered beam search on layer 0 from `entries` (scored; module
/// docs): only nodes that pass are scored, enter the beam and are
/// expanded; a node that fails is looked through, to its own neighbours.
/// An entry routes the walk even when it fails the filter. Leaves the best
/// `ef` in `scratch.nearest`; returns `false` as soon as more than
/// `budget` nodes were scored.
fn layer0_filtered<S: Scorer>(
    graph: &Graph,
    scorer: &S,
    scratch: &mut Scratch,
    entries: &[Candidate],
    ef: usize,
    passes: &impl Fn(u32) -> bool,
    budget: usize,
) -> bool {
    let Scratch { visited, candidates, nearest, batch, ids: misses, .. } = scratch;
    candidates.clear();
    nearest.clear();
    let mut scored = entries.len();
    for &entry in entries {
        if visited.insert(entry.node) {
            candidates.push(Reverse(entry));
            if passes(entry.node) {
                nearest.push(entry);
            }
        }
    }
    while nearest.len() > ef {
        nearest.pop();
    }
    let cap = batch_cap(graph);
    let mut bound =
        if nearest.len() >= ef { nearest.peek().map_or(f32::INFINITY, |c| c.distance) } else { f32::INFINITY };
    while let Some(Reverse(current)) = candidates.pop() {
        if current.distance > bound {
            break;
        }
        if let Some(Reverse(next)) = candidates.peek() {
            graph.prefetch_layer0(next.node);
        }
        batch.clear();
        misses.clear();
        graph.for_each_neighbour(current.node, 0, |n| {
            if visited.insert(n) {
                if passes(n) {
                    scorer.prefetch(n);
                    batch.push(n);
                } else {
                    graph.prefetch_layer0(n);
                    misses.push(n);
                }
            }
        });
        // Look through the neighbours that fail, to theirs, until the batch
        // holds as many candidates as a full neighbour list. Nodes seen
        // only at two hops and failing are not marked visited: they may
        // still be looked through from a node they neighbour.
        'through: for &miss in misses.iter() {
            if batch.len() >= cap {
                break;
            }
            let mut full = false;
            graph.for_each_neighbour(miss, 0, |n| {
                if full || visited.contains(n) || !passes(n) {
                    return;
                }
                visited.insert(n);
                scorer.prefetch(n);
                batch.push(n);
                full = batch.len() >= cap;
            });
            if full {
                break 'through;
            }
        }
        for (i, &n) in batch.iter().enumerate() {
            if let Some(&next) = batch.get(i + 1) {
                scorer.prefetch_all(next);
            }
            let d = scorer.distance(n);
            scored += 1;
            if d < bound {
                let c = Candidate { distance: d, node: n };
                candidates.push(Reverse(c));
                nearest.push(c);
                if nearest.len() > ef {
                    nearest.pop();
                }
                if nearest.len() >= ef {
                    bound = nearest.peek().map_or(f32::INFINITY, |c| c.distance);
                }
            }
        }
        if scored > budget {
            return false;
        }
    }
    true
}

/// The `k` best of `nodes` that `keep` lets through, nearest first.
fn top_k<S: Scorer>(nodes: &[u32], scorer: &S, k: usize, keep: impl Fn(u32) -> bool) -> Vec<Candidate> {
    let mut best: std::collections::BinaryHeap<Candidate> = std::collections::BinaryHeap::with_capacity(k + 1);
    for (i, &n) in nodes.iter().enumerate() {
        // Far enough ahead that the loads overlap the scoring.
        if let Some(&ahead) = nodes.get(i + 4) {
            scorer.prefetch(ahead);
        }
        if let Some(&next) = nodes.get(i + 1) {
            scorer.prefetch_all(next);
        }
        if !keep(n) {
            continue;
        }
        let c = Candidate { distance: scorer.distance(n), node: n };
        if best.len() < k {
            best.push(c);
        } else if best.peek().is_some_and(|worst| c < *worst) {
            best.pop();
            best.push(c);
        }
    }
    best.into_sorted_vec()
}

#[cfg(test)]
mod tests {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::{HnswOptions, Metric, Quantization};

    /// `n` points around 30 random centres; the label of point `i` is
    /// `i % 100`, so "label < p" matches p % of the points, spread over
    /// every cluster.
    fn clustered(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = SmallRng::seed_from_u64(seed);
        let centres: Vec<Vec<f32>> =
            (0..30).map(|_| (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect()).collect();
        (0..n)
            .map(|_| {
                let c = &centres[rng.random_range(0..centres.len())];
                c.iter().map(|x| x + rng.random_range(-0.3f32..0.3)).collect()
            })
            .collect()
    }

    fn truth(data: &[Vec<f32>], q: &[f32], k: usize, keep: impl Fn(u64) -> bool) -> Vec<u64> {
        let mut all: Vec<(f32, u64)> = data
            .iter()
            .enumerate()
            .filter(|(i, _)| keep(*i as u64))
            .map(|(i, v)| (Metric::Euclidean.distance(q, v), i as u64))
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        all.into_iter().take(k).map(|p| p.1).collect()
    }

    fn build(data: &[Vec<f32>], quantization: Quantization) -> Hnsw {
        let params = HnswParams { m: 12, ef_construction: 100, ..HnswParams::default() };
        let options = HnswOptions { quantization, training_size: 1000, ..HnswOptions::default() };
        let index = Hnsw::with_options(data[0].len(), Metric::Euclidean, params, options).expect("options");
        let batch: Vec<(u64, &[f32])> = data.iter().enumerate().map(|(i, v)| (i as u64, v.as_slice())).collect();
        index.insert_batch(&batch, 1).expect("batch");
        index
    }

    #[test]
    fn scoring_ids_is_exact_and_skips_absent_ones() {
        let seed = 41;
        let data = clustered(2000, 24, seed);
        for quantization in [Quantization::None, Quantization::Sq8] {
            let index = build(&data, quantization);
            index.delete(7);
            let queries = clustered(20, 24, seed + 1);
            for q in &queries {
                let ids: Vec<u64> = (0..2000u64).filter(|i| i % 10 == 7).chain([5000, 6000]).collect();
                let got: Vec<u64> = index.score_ids(q, &ids, 10).expect("query").iter().map(|n| n.id).collect();
                let want = truth(&data, q, 10, |i| i % 10 == 7 && i != 7);
                // With codes, the rescored top-k equals the exact one when
                // the true neighbours are among the oversampled best.
                let overlap = got.iter().filter(|id| want.contains(id)).count();
                assert!(overlap >= 9, "seed {seed} {quantization:?}: {got:?} vs {want:?}");
                assert!(got.iter().all(|id| id % 10 == 7 && *id != 7));
            }
        }
    }

    #[test]
    fn the_filtered_walk_finds_matches_at_every_selectivity() {
        let seed = 43;
        let data = clustered(4000, 24, seed);
        let queries = clustered(40, 24, seed + 1);
        let index = build(&data, Quantization::None);
        for percent in [50u64, 20, 10] {
            let keep = move |id: u64| id % 100 < percent;
            let seeds: Vec<u64> = (0..4000u64).filter(|&i| keep(i)).step_by(13).take(16).collect();
            let mut hits = 0;
            for q in &queries {
                let got =
                    index.search_filtered(q, 10, 64, &keep, &seeds, usize::MAX).expect("query").expect("no budget");
                assert_eq!(got.len(), 10, "seed {seed}: {percent} %");
                assert!(got.iter().all(|n| keep(n.id)), "seed {seed}: {percent} %: a result fails the filter");
                let want = truth(&data, q, 10, keep);
                hits += got.iter().filter(|n| want.contains(&n.id)).count();
            }
            let recall = hits as f64 / (10 * queries.len()) as f64;
            assert!(recall >= 0.95, "seed {seed}: recall {recall} at {percent} %");
        }
    }

    #[test]
    fn the_walk_gives_up_past_its_budget() {
        let data = clustered(3000, 16, 45);
        let index = build(&data, Quantization::None);
        let keep = |id: u64| id.is_multiple_of(2);
        assert!(index.search_filtered(&data[0], 10, 64, &keep, &[], 20).expect("query").is_none());
        let unlimited = index.search_filtered(&data[0], 10, 64, &keep, &[], usize::MAX).expect("query");
        assert!(unlimited.is_some_and(|hits| hits.iter().all(|n| keep(n.id))));
    }
}
