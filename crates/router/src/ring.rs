//! Placement. Collections created with partitions (every collection made
//! through this router) place *partitions* on shards: each partition ranks
//! the shards by `hash(collection, partition, shard address)` (rendezvous
//! hashing), and [`Ring::placement`] gives each partition its `R` best
//! ranked shards that still have room, so shards hold equal numbers of
//! partition copies (±1). Every router computes the same table from the
//! same shard list, whatever its order. The table depends on `R`: the
//! replication factor is fixed for a cluster's data, like the shard list.
//! Collections created before partitions existed keep the per-id ring
//! below, with one copy.
//!
//! The per-id ring: a consistent-hash ring over the shards with virtual
//! nodes.
//!
//! Each shard is added `vnodes` times to a [`hashring::HashRing`] as a
//! `(shard address, vnode number)` entry; a vector `(collection, id)` is
//! owned by the first entry clockwise from its hash. Adding or removing a
//! shard therefore moves only about `1/shards` of the ids.
//!
//! Stability: every router given the same shard addresses must compute the
//! same owner, in every process and build. The hash is hashring's default,
//! SipHash-2-4 with the fixed keys (0, 0) — no per-process random seed —
//! and it is fed only explicit bytes (`Hasher::write` of UTF-8 and
//! little-endian integers, never `write_u64`, whose byte order is the
//! platform's):
//!
//! - a ring entry hashes `address bytes, 0xFF, vnode as u64 LE`;
//! - a key hashes `collection bytes, 0xFF, id as u64 LE` (0xFF never occurs
//!   in UTF-8, so the separator is unambiguous).
//!
//! Entries are inserted in sorted address order, so the order of the
//! configured list does not matter either. `tests::placement_is_pinned`
//! pins a few owners: if it fails, the hash changed and existing clusters
//! would lose track of their data.
//!
//! Balance: a shard's share of the ring is a sum of `vnodes` random arcs,
//! so its relative spread is about `1/√vnodes`. Measured (`vnode_sweep`,
//! 100 000 ids, worst shard over six collections): 512 vnodes gave 8.1 %
//! (3 shards) / 8.1 % (5), 1024 gave 5.8 % / 8.7 %, 2048 gave 2.0 % (3),
//! 2.7 % (4), 2.7 % (5); hence the default of 2048 (6 144 ring entries for
//! 3 shards, a few hundred KiB, ~13 comparisons per lookup).
//! `balance_over_three_shards` checks ±10 % for several address sets.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use hashring::HashRing;
use siphasher::sip::SipHasher24;

/// One virtual node: shard `shard` (an index into the configured list),
/// placed on the ring by `address` and `vnode`.
#[derive(Debug, Clone)]
struct VNode {
    shard: usize,
    address: Arc<str>,
    vnode: u64,
}

impl Hash for VNode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.address.as_bytes());
        state.write(&[0xFF]);
        state.write(&self.vnode.to_le_bytes());
    }
}

/// The placement key of a vector.
struct Key<'a> {
    collection: &'a str,
    id: u64,
}

impl Hash for Key<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.collection.as_bytes());
        state.write(&[0xFF]);
        state.write(&self.id.to_le_bytes());
    }
}

/// The consistent-hash ring. Cheap to query (`O(log(shards · vnodes))`),
/// immutable once built.
pub struct Ring {
    ring: HashRing<VNode>,
    shards: usize,
    addresses: Vec<Arc<str>>,
    placements: Mutex<HashMap<(String, u32, usize), Arc<Placement>>>,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring").field("shards", &self.shards).field("entries", &self.ring.len()).finish()
    }
}

impl Ring {
    /// Builds the ring for `addresses` (normalised shard URLs, see
    /// [`crate::RouterConfig::shard_addresses`]) with `vnodes` entries each.
    /// Owners are indexes into `addresses`.
    pub fn new(addresses: &[String], vnodes: usize) -> Ring {
        let mut order: Vec<usize> = (0..addresses.len()).collect();
        order.sort_by(|&a, &b| addresses[a].cmp(&addresses[b]));
        let mut ring = HashRing::new();
        let mut entries = Vec::with_capacity(addresses.len() * vnodes);
        for shard in order {
            let address: Arc<str> = Arc::from(addresses[shard].as_str());
            for vnode in 0..vnodes as u64 {
                entries.push(VNode { shard, address: Arc::clone(&address), vnode });
            }
        }
        ring.batch_add(entries);
        Ring {
            ring,
            shards: addresses.len(),
            addresses: addresses.iter().map(|a| Arc::from(a.as_str())).collect(),
            placements: Mutex::new(HashMap::new()),
        }
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// The index of the shard that owns vector `id` of `collection`.
    ///
    /// A ring with no shards (never built by the router, which requires at
    /// least one) answers 0.
    pub fn owner(&self, collection: &str, id: u64) -> usize {
        self.ring.get(&Key { collection, id }).map_or(0, |v| v.shard)
    }

    /// The shard of vector `id` in a cluster with one copy of everything:
    /// its partition's shard when the collection has `partitions`, else the
    /// per-id ring's owner.
    pub fn owner_of(&self, collection: &str, id: u64, partitions: Option<u32>) -> usize {
        match partitions {
            Some(p) => {
                let partition = ruvector_api::partition_of(collection, id, p);
                self.copies(collection, p, partition, 1).first().copied().unwrap_or(0)
            }
            None => self.owner(collection, id),
        }
    }

    /// The shards holding partition `partition` of a collection with
    /// `partitions` partitions: `copies` distinct shards (fewer if there are
    /// fewer shards), most preferred first. See [`Ring::placement`].
    pub fn copies(&self, collection: &str, partitions: u32, partition: u32, copies: usize) -> Vec<usize> {
        self.placement(collection, partitions, copies).get(partition as usize).cloned().unwrap_or_default()
    }

    /// Every shard by preference for `partition`: SipHash-2-4 with keys (0,
    /// 0) over `collection, 0xFF, partition as u32 LE, 0xFF, address`,
    /// highest first (rendezvous hashing), stable across processes and
    /// builds and independent of the configured order.
    fn ranked(&self, collection: &str, partition: u32) -> Vec<usize> {
        let mut scored: Vec<(u64, usize)> = self
            .addresses
            .iter()
            .enumerate()
            .map(|(shard, address)| {
                let mut h = SipHasher24::new_with_keys(0, 0);
                h.write(collection.as_bytes());
                h.write(&[0xFF]);
                h.write(&partition.to_le_bytes());
                h.write(&[0xFF]);
                h.write(address.as_bytes());
                (h.finish(), shard)
            })
            .collect();
        // Highest score first; ties (astronomically unlikely) by address.
        scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| self.addresses[a.1].cmp(&self.addresses[b.1])));
        scored.into_iter().map(|(_, shard)| shard).collect()
    }

    /// The copies of every partition of a collection with `partitions`
    /// partitions and `copies` copies each: row `p` lists partition `p`'s
    /// shards, most preferred first. Balanced: partitions are taken in
    /// order and each copy goes to the most preferred shard (rendezvous
    /// rank) that still has room — every shard gets ⌊partitions × copies /
    /// shards⌋ copies, the remainder going one each to the first shards
    /// that want more — so shards differ by at most one partition copy. A pure
    /// function of the shard addresses, the name and the two counts: every
    /// router computes the same table. Cached per collection.
    pub fn placement(&self, collection: &str, partitions: u32, copies: usize) -> Arc<Placement> {
        let key = (collection.to_owned(), partitions, copies);
        if let Ok(cache) = self.placements.lock()
            && let Some(table) = cache.get(&key)
        {
            return Arc::clone(table);
        }
        let copies = copies.clamp(1, self.shards.max(1));
        let partitions = partitions.max(1);
        // `total` copies over the shards: every shard's quota is `floor`,
        // and the first `total mod shards` shards by address take one more.
        let total = partitions as usize * copies;
        let n = self.shards.max(1);
        let mut by_address: Vec<usize> = (0..self.shards).collect();
        by_address.sort_by(|&a, &b| self.addresses[a].cmp(&self.addresses[b]));
        let mut room = vec![total / n; self.shards];
        for &shard in by_address.iter().take(total % n) {
            room[shard] += 1;
        }
        let mut table = Vec::with_capacity(partitions as usize);
        for p in 0..partitions {
            let ranked = self.ranked(collection, p);
            let later = (partitions - p - 1) as usize;
            let mut row: Vec<usize> = Vec::with_capacity(copies);
            // A shard with more room than partitions left after this one
            // must take a copy now (each partition holds it at most once).
            let mut forced: Vec<usize> = ranked.iter().copied().filter(|&s| room[s] > later).collect();
            forced.sort_by_key(|&s| std::cmp::Reverse(room[s]));
            for shard in forced.into_iter().chain(ranked.iter().copied()) {
                if row.len() == copies {
                    break;
                }
                if room[shard] > 0 && !row.contains(&shard) {
                    room[shard] -= 1;
                    row.push(shard);
                }
            }
            // Quotas always suffice; keep the row full whatever happens.
            for &shard in &ranked {
                if row.len() == copies {
                    break;
                }
                if !row.contains(&shard) {
                    row.push(shard);
                }
            }
            // Most preferred first, whatever order the copies were chosen in.
            row.sort_by_key(|s| ranked.iter().position(|r| r == s));
            table.push(row);
        }
        let table = Arc::new(table);
        if let Ok(mut cache) = self.placements.lock() {
            if cache.len() >= MAX_CACHED_PLACEMENTS {
                cache.clear();
            }
            cache.insert(key, Arc::clone(&table));
        }
        table
    }
}

impl Ring {
    /// Where the copies of a collection should go from where they are,
    /// moving as few as possible: `settled` lists each partition's ready
    /// copies, `pending` the copies being filled (a move already under
    /// way), both as indexes into this ring's shards.
    ///
    /// Every shard's quota is the one [`Ring::placement`] gives (⌊P·R/S⌋,
    /// +1 for the first `P·R mod S` shards by address). A shard over its
    /// quota gives up the partitions it ranks worst (rendezvous rank); then
    /// every partition short of copies takes first its pending copies on
    /// shards with room, then the best-ranked shards with room. So growing
    /// from S to S+1 shards moves only what the new shard's quota needs,
    /// draining one moves only its copies, and a balanced placement is
    /// kept as it is. The driving router computes it once per change and
    /// keeps it until the moves are done; honouring pending copies lets a
    /// successor that starts mid-move continue the same moves.
    pub fn rebalance(
        &self,
        collection: &str,
        partitions: u32,
        copies: usize,
        settled: &Placement,
        pending: &Placement,
    ) -> Placement {
        let n = self.shards;
        if n == 0 {
            return vec![Vec::new(); partitions as usize];
        }
        let copies = copies.clamp(1, n);
        let total = partitions as usize * copies;
        let mut by_address: Vec<usize> = (0..n).collect();
        by_address.sort_by(|&a, &b| self.addresses[a].cmp(&self.addresses[b]));
        let mut quota = vec![total / n; n];
        for &shard in by_address.iter().take(total % n) {
            quota[shard] += 1;
        }
        let ranks: Vec<Vec<usize>> = (0..partitions).map(|p| self.ranked(collection, p)).collect();
        let rank = |p: usize, s: usize| ranks[p].iter().position(|&x| x == s).unwrap_or(usize::MAX);
        // Keep the settled copies (at most `copies`, best ranked first).
        let mut rows: Vec<Vec<usize>> = (0..partitions as usize)
            .map(|p| {
                let mut row: Vec<usize> = Vec::new();
                for &s in settled.get(p).into_iter().flatten() {
                    if s < n && !row.contains(&s) {
                        row.push(s);
                    }
                }
                row.sort_by_key(|&s| rank(p, s));
                row.truncate(copies);
                row
            })
            .collect();
        let mut load = vec![0usize; n];
        rows.iter().flatten().for_each(|&s| load[s] += 1);
        // Shards over quota (in address order) give up their worst-ranked
        // partitions, preferring partitions that have not lost a copy yet
        // (the shards with room may be too few to take two copies of one)
        // and that a shard with room does not hold already.
        let mut lost = vec![0usize; rows.len()];
        for &s in &by_address {
            if load[s] <= quota[s] {
                continue;
            }
            let mut held: Vec<usize> = (0..rows.len()).filter(|&p| rows[p].contains(&s)).collect();
            // A partition some shard with room does not hold yet can go
            // there; prefer those.
            let placeable = |p: usize| (0..n).any(|u| load[u] < quota[u] && !rows[p].contains(&u));
            held.sort_by_key(|&p| (lost[p], !placeable(p), std::cmp::Reverse(rank(p, s)), p));
            for p in held.into_iter().take(load[s] - quota[s]) {
                rows[p].retain(|&x| x != s);
                load[s] -= 1;
                lost[p] += 1;
            }
        }
        // Moves already under way, where they still fit.
        for (p, row) in rows.iter_mut().enumerate() {
            for &s in pending.get(p).into_iter().flatten() {
                if row.len() < copies && s < n && !row.contains(&s) && load[s] < quota[s] {
                    row.push(s);
                    load[s] += 1;
                }
            }
        }
        // The rest, partition by partition: a shard with more room than
        // the later short partitions could still give it (each takes it
        // at most once) must be taken now; then the best-ranked shards
        // with room; if the distinct-shards rule leaves none, the least
        // loaded shard (balance off by one).
        let short: Vec<usize> = (0..rows.len()).filter(|&p| rows[p].len() < copies).collect();
        for (i, &p) in short.iter().enumerate() {
            let mut forced: Vec<usize> = (0..n)
                .filter(|&s| {
                    let later = short[i + 1..].iter().filter(|&&q| !rows[q].contains(&s)).count();
                    !rows[p].contains(&s) && quota[s].saturating_sub(load[s]) > later
                })
                .collect();
            forced.sort_by_key(|&s| (std::cmp::Reverse(quota[s] - load[s]), rank(p, s)));
            let row = &mut rows[p];
            for s in forced.into_iter().chain(ranks[p].iter().copied()) {
                if row.len() == copies {
                    break;
                }
                if !row.contains(&s) && load[s] < quota[s] {
                    row.push(s);
                    load[s] += 1;
                }
            }
            while row.len() < copies {
                let Some(s) = ranks[p].iter().copied().filter(|s| !row.contains(s)).min_by_key(|&s| load[s]) else {
                    break;
                };
                row.push(s);
                load[s] += 1;
            }
        }
        for (p, row) in rows.iter_mut().enumerate() {
            row.sort_by_key(|&s| rank(p, s));
        }
        rows
    }
}

/// A collection's placement: row `p` lists partition `p`'s shards, most
/// preferred first.
pub type Placement = Vec<Vec<usize>>;

/// Placement tables kept (collection names are client-chosen: bounded).
const MAX_CACHED_PLACEMENTS: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_distinct_stable_and_balanced() {
        let addrs = addresses(3);
        let ring = Ring::new(&addrs, 16);
        let mut reversed = addrs.clone();
        reversed.reverse();
        let other = Ring::new(&reversed, 16);
        for (partitions, copies) in [(32u32, 1usize), (32, 2), (64, 3), (8, 2)] {
            let mut load = vec![0usize; 3];
            for p in 0..partitions {
                let row = ring.copies("docs", partitions, p, copies);
                assert_eq!(row.len(), copies);
                let mut distinct = row.clone();
                distinct.sort_unstable();
                distinct.dedup();
                assert_eq!(distinct.len(), copies, "{row:?}");
                // The same shards (by address) whatever the configured order.
                assert_eq!(by_names(&ring, &row), by_names(&other, &other.copies("docs", partitions, p, copies)));
                for c in row {
                    load[c] += 1;
                }
            }
            let (min, max) = (load.iter().min().copied().unwrap_or(0), load.iter().max().copied().unwrap_or(0));
            assert!(max - min <= 1, "{partitions}×{copies} over 3 shards: {load:?}");
        }
        for shards in 2..=7usize {
            for base in [40_000u32, 51_234, 33_000] {
                let addrs: Vec<String> =
                    (0..shards).map(|i| format!("http://127.0.0.1:{}", base + 97 * i as u32)).collect();
                let ring = Ring::new(&addrs, 4);
                for (partitions, copies) in [(16u32, 1usize), (32, 2), (64, 2), (64, 3)] {
                    let copies = copies.min(shards);
                    let mut load = vec![0usize; shards];
                    for row in ring.placement("c", partitions, copies).iter() {
                        let mut d = row.clone();
                        d.sort_unstable();
                        d.dedup();
                        assert_eq!(d.len(), copies);
                        for &c in row {
                            load[c] += 1;
                        }
                    }
                    let spread = load.iter().max().copied().unwrap_or(0) - load.iter().min().copied().unwrap_or(0);
                    assert!(spread <= 1, "{shards} shards, {partitions}×{copies}: {load:?}");
                }
            }
        }
        assert_eq!(ring.copies("docs", 32, 0, 5).len(), 3, "never more copies than shards");
        assert!(ring.copies("docs", 32, 99, 2).is_empty(), "no such partition");
    }

    fn by_names(r: &Ring, c: &[usize]) -> Vec<String> {
        c.iter().map(|&i| r.addresses[i].to_string()).collect()
    }

    fn addresses(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("http://ruvector-shard-{i}.ruvector-shard-headless:8080")).collect()
    }

    /// Largest |count − mean| / mean over the shards, for ids 0..n.
    fn max_deviation(ring: &Ring, collection: &str, n: u64) -> (f64, Vec<u64>) {
        let mut counts = vec![0u64; ring.shards()];
        for id in 0..n {
            counts[ring.owner(collection, id)] += 1;
        }
        let mean = n as f64 / ring.shards() as f64;
        let dev = counts.iter().map(|&c| (c as f64 - mean).abs() / mean).fold(0.0, f64::max);
        (dev, counts)
    }

    #[test]
    fn balance_over_three_shards() {
        let vnodes = crate::RouterConfig::DEFAULT_VNODES;
        let loopback: Vec<String> = (0..3).map(|i| format!("http://127.0.0.1:{}", 40_000 + 7 * i)).collect();
        let compose: Vec<String> = (0..3).map(|i| format!("http://shard{i}:8080")).collect();
        for addrs in [addresses(3), loopback, compose] {
            let ring = Ring::new(&addrs, vnodes);
            for collection in ["docs", "images", "a", "embeddings-2024"] {
                let (dev, counts) = max_deviation(&ring, collection, 100_000);
                println!("{addrs:?} {collection:?}: counts {counts:?}, max deviation {:.2} %", dev * 100.0);
                assert!(dev <= 0.10, "{addrs:?} {collection:?}: {counts:?} deviates {:.1} %", dev * 100.0);
            }
        }
        let ring = Ring::new(&addresses(3), vnodes);
        // Sparse, large ids balance as well as dense small ones.
        let mut counts = [0u64; 3];
        for i in 0..100_000u64 {
            counts[ring.owner("docs", i.wrapping_mul(0x9E37_79B9_7F4A_7C15))] += 1;
        }
        assert!(counts.iter().all(|&c| (30_000..=36_667).contains(&c)), "{counts:?}");
    }

    #[test]
    #[ignore = "measurement: cargo test -p ruvector-router ring::tests::vnode_sweep -- --ignored --nocapture"]
    fn vnode_sweep() {
        for vnodes in [128, 256, 512, 1024, 2048, 4096] {
            for shards in [3, 4, 5] {
                let ring = Ring::new(&addresses(shards), vnodes);
                let worst = ["docs", "images", "a", "b", "c", "embeddings-2024"]
                    .iter()
                    .map(|c| max_deviation(&ring, c, 100_000).0)
                    .fold(0.0, f64::max);
                println!("vnodes {vnodes:5} shards {shards}: worst deviation {:.2} %", worst * 100.0);
            }
        }
    }

    #[test]
    fn independently_built_rings_agree_whatever_the_list_order() {
        let a = Ring::new(&addresses(3), 512);
        let mut reversed = addresses(3);
        reversed.reverse();
        let b = Ring::new(&reversed, 512);
        for id in 0..10_000 {
            let owner_a = a.owner("docs", id);
            let owner_b = b.owner("docs", id);
            assert_eq!(addresses(3)[owner_a], reversed[owner_b], "id {id}");
        }
    }

    #[test]
    fn placement_is_pinned() {
        // Golden values: these must never change, or a cluster upgraded to
        // a new build would look for existing vectors on the wrong shard.
        let ring = Ring::new(&addresses(3), 512);
        let owners: Vec<usize> = (0..16).map(|id| ring.owner("docs", id)).collect();
        assert_eq!(owners, GOLDEN_DOCS_0_TO_15);
        assert_eq!(ring.owner("images", u64::MAX), GOLDEN_IMAGES_MAX);
    }

    const GOLDEN_DOCS_0_TO_15: [usize; 16] = [2, 0, 2, 0, 2, 1, 1, 1, 2, 0, 1, 2, 0, 0, 0, 2];
    const GOLDEN_IMAGES_MAX: usize = 2;

    #[test]
    fn adding_a_shard_moves_about_a_quarter() {
        let three = Ring::new(&addresses(3), 512);
        let four = Ring::new(&addresses(4), 512);
        let moved = (0..100_000u64).filter(|&id| three.owner("docs", id) != four.owner("docs", id)).count();
        // Ideal: 1/4 of the ids move, all of them to the new shard.
        assert!((20_000..=30_000).contains(&moved), "{moved} ids moved");
        assert!(
            (0..100_000u64).all(|id| three.owner("docs", id) == four.owner("docs", id) || four.owner("docs", id) == 3)
        );
    }

    #[test]
    fn one_shard_owns_everything() {
        let ring = Ring::new(&addresses(1), 4);
        assert!((0..1000).all(|id| ring.owner("x", id) == 0));
        assert_eq!(Ring::new(&[], 4).owner("x", 1), 0);
    }

    /// Copies that must leave their shard to meet `target` from `settled`.
    fn moved(settled: &Placement, target: &Placement) -> usize {
        settled.iter().zip(target).map(|(now, want)| now.iter().filter(|s| !want.contains(s)).count()).sum()
    }

    fn check_balanced(ring: &Ring, target: &Placement, copies: usize) {
        let mut load = vec![0usize; ring.shards()];
        for row in target {
            let mut d = row.clone();
            d.sort_unstable();
            d.dedup();
            assert_eq!(d.len(), copies, "{row:?}");
            row.iter().for_each(|&s| load[s] += 1);
        }
        let (min, max) = (load.iter().min().copied().unwrap_or(0), load.iter().max().copied().unwrap_or(0));
        assert!(max - min <= 1, "{load:?}");
    }

    #[test]
    fn rebalance_keeps_a_balanced_placement_as_it_is() {
        for shards in 1..=6usize {
            let ring = Ring::new(&addresses(shards), 4);
            for (partitions, copies) in [(32u32, 1usize), (32, 2), (64, 3), (8, 2)] {
                let copies = copies.min(shards);
                let placed = ring.placement("c", partitions, copies);
                let target = ring.rebalance("c", partitions, copies, &placed, &Vec::new());
                assert_eq!(moved(&placed, &target), 0, "{shards} shards, {partitions}×{copies}");
            }
        }
    }

    /// Growing by one shard moves exactly the copies over quota; draining
    /// one moves exactly its copies; a router that takes over mid-move
    /// moves no more than the one it replaces would have.
    #[test]
    fn rebalance_moves_the_minimum_and_a_successor_resumes_the_moves() {
        for shards in 2..=6usize {
            for (partitions, copies) in [(32u32, 1usize), (32, 2), (64, 2), (16, 3)] {
                if copies > shards {
                    continue;
                }
                let all = addresses(shards + 1);
                let (small, big) = (Ring::new(&all[..shards], 4), Ring::new(&all, 4));
                // Grow: the small ring's indexes are the big ring's first ones.
                let before = small.placement("c", partitions, copies);
                let target = big.rebalance("c", partitions, copies, &before, &Vec::new());
                check_balanced(&big, &target, copies);
                let total = partitions as usize * copies;
                let mut load = vec![0usize; shards];
                before.iter().flatten().for_each(|&s| load[s] += 1);
                let quota = |s: usize| {
                    let mut order: Vec<usize> = (0..=shards).collect();
                    order.sort_by(|&a, &b| all[a].cmp(&all[b]));
                    total / (shards + 1) + usize::from(order.iter().position(|&x| x == s) < Some(total % (shards + 1)))
                };
                let minimum: usize = (0..shards).map(|s| load[s].saturating_sub(quota(s))).sum();
                assert_eq!(moved(&before, &target), minimum, "grow {shards}→{}: {partitions}×{copies}", shards + 1);
                // Reached, the target is kept as it is.
                let again = big.rebalance("c", partitions, copies, &target, &Vec::new());
                assert_eq!(moved(&target, &again), 0, "the target is a fixed point");
                // A successor starting mid-move (half the new copies still
                // filling, their old copies still settled) continues the
                // same moves.
                let half: Vec<usize> =
                    (0..partitions as usize).filter(|&p| before[p] != target[p]).step_by(2).collect();
                let mut settled: Placement = before.to_vec();
                let mut pending: Placement = vec![Vec::new(); partitions as usize];
                for (p, row) in target.iter().enumerate() {
                    if half.contains(&p) {
                        settled[p].clone_from(row);
                    } else {
                        pending[p] = row.iter().copied().filter(|s| !before[p].contains(s)).collect();
                    }
                }
                let resumed = big.rebalance("c", partitions, copies, &settled, &pending);
                assert_eq!(moved(&settled, &resumed), moved(&settled, &target), "resumed with other moves");
                check_balanced(&big, &resumed, copies);
                let again = big.rebalance("c", partitions, copies, &resumed, &Vec::new());
                assert_eq!(moved(&resumed, &again), 0, "{resumed:?} → {again:?}");
                // Drain the new shard again: exactly its copies move.
                let drained: Placement =
                    target.iter().map(|row| row.iter().copied().filter(|&s| s < shards).collect()).collect();
                let back = small.rebalance("c", partitions, copies, &drained, &Vec::new());
                check_balanced(&small, &back, copies);
                assert_eq!(moved(&drained, &back), 0, "drain keeps every other copy");
                let on_new = target.iter().flatten().filter(|&&s| s == shards).count();
                let added: usize = back.iter().zip(&drained).map(|(b, d)| b.len() - d.len()).sum();
                assert_eq!(added, on_new);
            }
        }
    }
}
