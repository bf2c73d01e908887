//! Where every partition's copies are *now*, as the shards report it —
//! as opposed to where they should be ([`crate::Ring::placement`] over the
//! configured shards that are not draining).
//!
//! The two differ while partitions move (a shard was added, or is being
//! drained): a moving partition then has its old copies and its new ones,
//! all of which take writes, while only ready copies are read. The truth
//! lives on the shards (each knows the partitions it holds and their
//! peers, and the placement epoch); a router keeps a copy here, rebuilt by
//! every sync and whenever a shard answers `stale_placement`, so a
//! restarted router routes correctly from its first sync on. Before a
//! router has seen any report of a collection, it routes by the desired
//! placement (a fresh cluster: they agree).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use ruvector_api::{CollectionHolding, ShardAssignment};

use crate::ring::Placement;

/// The routers' view of the current placement.
#[derive(Debug, Default)]
pub(crate) struct Layouts {
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    epoch: u64,
    tables: HashMap<String, (u32, Arc<Placement>)>,
}

impl Layouts {
    /// The placement epoch routed by (0 before the first sync).
    pub(crate) fn epoch(&self) -> u64 {
        self.state.read().map_or(0, |s| s.epoch)
    }

    /// The current copies of every partition of `name`, if known.
    pub(crate) fn table(&self, name: &str, partitions: u32) -> Option<Arc<Placement>> {
        let state = self.state.read().ok()?;
        state.tables.get(name).filter(|(p, _)| *p == partitions).map(|(_, t)| Arc::clone(t))
    }

    /// Replaces the view (a sync or a refresh built it from every shard)
    /// unless it is older than the one held: a refresh that read the shards
    /// before a concurrent sync moved partitions must not bring the old
    /// placement back under the new epoch.
    pub(crate) fn replace(&self, epoch: u64, tables: HashMap<String, (u32, Arc<Placement>)>) {
        if let Ok(mut state) = self.state.write()
            && epoch >= state.epoch
        {
            state.epoch = epoch;
            state.tables = tables;
        }
    }

    /// Forgets a dropped collection.
    pub(crate) fn forget(&self, name: &str) {
        if let Ok(mut state) = self.state.write() {
            state.tables.remove(name);
        }
    }
}

/// The copies of each partition of `name` that the reports show: every
/// shard that says it holds the partition, and every peer such a shard
/// names (a copy on a shard that did not answer is still a copy: writes
/// must reach it or be recorded as missed). `index_of` maps an address to
/// a configured shard; addresses it does not know are returned apart.
/// `preferred` orders each row: the desired copies first, in their order.
pub(crate) fn current_rows(
    name: &str,
    partitions: u32,
    reports: &[Option<ShardAssignment>],
    index_of: impl Fn(&str) -> Option<usize>,
    preferred: &Placement,
) -> (Placement, BTreeSet<String>) {
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); partitions as usize];
    let mut unknown = BTreeSet::new();
    let mut add = |row: &mut Vec<usize>, address: &str| match index_of(address) {
        Some(i) if !row.contains(&i) => row.push(i),
        Some(_) => {}
        None => {
            unknown.insert(address.to_owned());
        }
    };
    let holdings: Vec<(usize, u64, &CollectionHolding)> = reports
        .iter()
        .enumerate()
        .filter_map(|(shard, report)| {
            let report = report.as_ref()?;
            let holding = report.collections.iter().find(|c| c.name == name && c.partitions == partitions)?;
            Some((shard, report.epoch, holding))
        })
        .collect();
    // The reports of the newest epoch describe one placement; an older one
    // (a shard that restarted on a stale file, or missed the last push, or
    // was read before the last step) may name copies dropped since. A
    // partition only older reports hold takes them.
    let newest = holdings.iter().map(|(_, epoch, _)| *epoch).max().unwrap_or(0);
    for current_only in [true, false] {
        let mut filled = vec![false; rows.len()];
        for &(shard, epoch, holding) in &holdings {
            if current_only && epoch != newest {
                continue;
            }
            for held in holding.held.iter().flatten() {
                let p = held.partition as usize;
                let Some(row) = rows.get_mut(p) else { continue };
                if !current_only && !row.is_empty() && !filled[p] {
                    continue;
                }
                filled[p] = true;
                if !row.contains(&shard) {
                    row.push(shard);
                }
                for peer in &held.peers {
                    add(row, peer);
                }
            }
        }
    }
    for (p, row) in rows.iter_mut().enumerate() {
        let order = |s: &usize| preferred.get(p).and_then(|d| d.iter().position(|x| x == s)).unwrap_or(usize::MAX);
        row.sort_by_key(|s| (order(s), *s));
    }
    (rows, unknown)
}

#[cfg(test)]
mod tests {
    use ruvector_api::{CollectionHolding, HeldPartition, PartitionState};

    use super::*;

    fn report(held: &[(u32, &[&str])]) -> Option<ShardAssignment> {
        report_at(1, held)
    }

    fn report_at(epoch: u64, held: &[(u32, &[&str])]) -> Option<ShardAssignment> {
        Some(ShardAssignment {
            placement: None,
            epoch,
            planner: 0,
            planner_age_ms: 0,
            collections: vec![CollectionHolding {
                name: "docs".into(),
                partitions: 2,
                held: Some(
                    held.iter()
                        .map(|(partition, peers)| HeldPartition {
                            partition: *partition,
                            peers: peers.iter().map(|s| (*s).to_owned()).collect(),
                            state: PartitionState::Ready,
                            generation: 1,
                            purged_before: 0,
                            whole: true,
                        })
                        .collect(),
                ),
            }],
            routers: Vec::new(),
        })
    }

    #[test]
    fn an_older_view_never_replaces_a_newer_one() {
        let layouts = Layouts::default();
        let table = |row: usize| HashMap::from([("docs".to_owned(), (1, Arc::new(vec![vec![row]])))]);
        layouts.replace(2, table(7));
        layouts.replace(1, table(3));
        assert_eq!((layouts.epoch(), layouts.table("docs", 1).map(|t| t[0][0])), (2, Some(7)));
        layouts.replace(2, table(5));
        assert_eq!(layouts.table("docs", 1).map(|t| t[0][0]), Some(5));
    }

    #[test]
    fn rows_join_holders_and_their_peers_in_preferred_order() {
        let addresses = ["a", "b", "c"];
        let index_of = |s: &str| addresses.iter().position(|a| *a == s);
        // b is down (no report) but a names it as a peer of partition 0;
        // partition 1 is moving: c holds it and names a and an unknown d.
        let reports = vec![report(&[(0, &["b"])]), None, report(&[(1, &["a", "d"])])];
        let preferred = vec![vec![1, 0], vec![0, 2]];
        let (rows, unknown) = current_rows("docs", 2, &reports, index_of, &preferred);
        assert_eq!(rows, vec![vec![1, 0], vec![0, 2]]);
        assert_eq!(unknown.into_iter().collect::<Vec<_>>(), vec!["d".to_owned()]);
        let (none, _) = current_rows("other", 2, &reports, index_of, &preferred);
        assert_eq!(none, vec![Vec::<usize>::new(), Vec::new()]);
    }

    #[test]
    fn reports_of_an_older_epoch_count_only_where_no_newer_one_holds_the_partition() {
        let addresses = ["a", "b", "c"];
        let index_of = |s: &str| addresses.iter().position(|a| *a == s);
        // Epoch 3 moved partition 0 from c to b; c restarted on its epoch-2
        // file still names itself a holder with peer a. Partition 1 is held
        // only by c (its holder at epoch 2 as now).
        let reports =
            vec![report_at(3, &[(0, &["b"])]), report_at(3, &[(0, &["a"])]), report_at(2, &[(0, &["a"]), (1, &[])])];
        let preferred = vec![vec![0, 1], vec![2]];
        let (rows, unknown) = current_rows("docs", 2, &reports, index_of, &preferred);
        assert_eq!(rows, vec![vec![0, 1], vec![2]]);
        assert!(unknown.is_empty());
    }
}
