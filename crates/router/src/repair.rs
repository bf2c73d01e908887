//! Anti-entropy: bring the copies of every partition back in line.
//!
//! Copies can diverge: a write refused for lack of acknowledgements may
//! have landed on some copies, a write acknowledged by `write_quorum` of
//! `replication_factor` copies missed the others, and a copy restored
//! from an old volume missed everything since. A pass ([`Service::repair`])
//! compares, per partitioned collection, each shard's per-partition
//! digests (count and order-independent hash of its version stamps); for
//! every partition whose live copies disagree it fetches their stamps and
//! sends each copy what it lacks: the newest version of every id, taken
//! from the copy that has it — a versioned upsert of the vector and payload,
//! or a versioned delete for a tombstone. Shards apply only newer writes,
//! so a pass is idempotent, safe beside live traffic and safe to run from
//! several routers at once; it changes nothing on copies that agree.
//!
//! Passes run in the router's background loop every `repair_interval_ms`
//! and on demand (`POST /cluster/repair`, which returns the report).
//! A copy that is down is skipped and repaired by a later pass.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::Method;
use futures::future::join_all;
use ruvector_api::{
    CollectionInfo, Digests, PartitionDigest, PurgeRequest, PurgeResponse, Stamps, StatusResponse, ValidUpsert,
    VectorRecord, VersionStamp,
};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::service::Service;
use crate::shard::ShardError;

/// Vectors per repair upsert.
const REPAIR_BATCH: usize = 256;

/// A copy lacking at least this many writes of a partition is sent a
/// partition snapshot first (one streamed request) rather than each write
/// on its own.
const SNAPSHOT_MIN: usize = 64;

/// How long one partition snapshot may take to ship and apply.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(600);

/// What one anti-entropy pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RepairReport {
    /// Partitioned collections examined.
    pub collections: usize,
    /// Partitions whose live copies were compared.
    pub partitions_checked: usize,
    /// Partitions whose copies disagreed.
    pub partitions_diverged: usize,
    /// Versioned upserts sent to copies that lacked them.
    pub upserts: u64,
    /// Versioned deletes sent to copies that lacked the tombstone, and
    /// deletes of vectors a copy kept past its peers' tombstone purge.
    pub deletes: u64,
    /// Tombstones purged (every copy held them, or past the horizon).
    #[serde(default)]
    pub tombstones_purged: u64,
    /// Bytes of partition snapshots shipped to copies far behind (their
    /// points and tombstones are counted in `upserts` and `deletes`).
    #[serde(default)]
    pub snapshot_bytes: u64,
    /// Shards or requests that failed (those copies wait for a later pass).
    pub errors: Vec<String>,
}

impl Service {
    /// One anti-entropy pass over every partitioned collection.
    pub(crate) async fn repair(&self) -> RepairReport {
        let mut report = RepairReport::default();
        if self.replicas() < 2 {
            return report;
        }
        let lists = join_all(self.all_shards().map(|shard| {
            self.client.call_json::<Vec<CollectionInfo>>(
                &self.metrics,
                shard,
                "repair",
                Method::GET,
                "/collections",
                None,
                &self.internal,
            )
        }))
        .await;
        let mut collections: Vec<(String, u32)> = Vec::new();
        for list in lists {
            match list {
                Ok(list) => {
                    for info in list {
                        if let Some(p) = info.partitions
                            && !collections.iter().any(|(n, _)| *n == info.name)
                        {
                            collections.push((info.name, p));
                        }
                    }
                }
                Err(e) => report.errors.push(e.into_api().to_string()),
            }
        }
        for (name, partitions) in collections {
            report.collections += 1;
            self.repair_collection(&name, partitions, &mut report).await;
            self.purge_collection(&name, partitions, &mut report).await;
        }
        self.metrics.repaired(report.upserts, report.deletes);
        if report.partitions_diverged > 0 {
            tracing::info!(?report, "anti-entropy pass repaired diverged copies");
        }
        report
    }

    /// Every shard's answer to the digests request `path` (`None` where it
    /// failed, the failure pushed to `errors`).
    async fn digests_of(&self, path: &str, errors: &mut Vec<String>) -> Vec<Option<Digests>> {
        join_all(self.all_shards().map(|shard| {
            self.client.call_json::<Digests>(&self.metrics, shard, "repair", Method::GET, path, None, &self.internal)
        }))
        .await
        .into_iter()
        .map(|r| r.map_err(|e| errors.push(e.into_api().to_string())).ok())
        .collect()
    }

    async fn repair_collection(&self, name: &str, partitions: u32, report: &mut RepairReport) {
        let digests = self.digests_of(&format!("/collections/{name}/digests"), &mut report.errors).await;
        for partition in 0..partitions {
            let live: Vec<usize> = self
                .table(name, partitions)
                .get(partition as usize)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|&s| digests.get(s).is_some_and(Option::is_some))
                .collect();
            if live.len() < 2 {
                continue;
            }
            report.partitions_checked += 1;
            let digest_of = |s: usize| {
                digests.get(s).and_then(Option::as_ref).and_then(|d| d.partitions.get(partition as usize)).copied()
            };
            let first = digest_of(live[0]);
            if live.iter().all(|&s| digest_of(s) == first) {
                continue;
            }
            report.partitions_diverged += 1;
            if let Err(e) = self.repair_partition(name, partition, &live, report).await {
                report.errors.push(e.into_api().to_string());
            }
        }
    }

    /// Purges the tombstones of `name` that are safe to forget:
    ///
    /// - older than `tombstone_grace_ms` in partitions whose every copy
    ///   answered with the same digest of the stamps older than that bound
    ///   (every copy holds the same tombstones, and no write that old can
    ///   still be in flight);
    /// - older than `tombstone_horizon_ms` in partitions with a copy that did
    ///   not answer, on the copies that did (the absent copy rejoins by
    ///   dropping what they lack, see [`Service::repair_partition`]).
    async fn purge_collection(&self, name: &str, partitions: u32, report: &mut RepairReport) {
        let grace = Clock::version_before(Duration::from_millis(self.config.tombstone_grace_ms));
        // A shard that does not answer is a copy "down": no error to report.
        let digests = self.digests_of(&format!("/collections/{name}/digests?before={grace}"), &mut Vec::new()).await;
        let horizon = (self.config.tombstone_horizon_ms > 0)
            .then(|| Clock::version_before(Duration::from_millis(self.config.tombstone_horizon_ms)));
        // Per shard: (bound, partitions) to purge.
        let mut agreed: Vec<Vec<u32>> = vec![Vec::new(); self.client.len()];
        let mut past_horizon: Vec<Vec<u32>> = vec![Vec::new(); self.client.len()];
        for p in 0..partitions {
            let copies = self.table(name, partitions).get(p as usize).cloned().unwrap_or_default();
            let seen: Vec<Option<PartitionDigest>> = copies
                .iter()
                .map(|&s| digests[s].as_ref().and_then(|d| d.partitions.get(p as usize)).copied())
                .collect();
            if seen.iter().all(Option::is_some) {
                let first = seen[0];
                if seen.iter().all(|d| *d == first) && first.is_some_and(|d| d.count > d.live) {
                    copies.iter().for_each(|&s| agreed[s].push(p));
                }
            } else if horizon.is_some() {
                copies.iter().filter(|&&s| digests[s].is_some()).for_each(|&s| past_horizon[s].push(p));
            }
        }
        let mut sends = Vec::new();
        for shard in self.all_shards() {
            if !agreed[shard].is_empty() {
                sends.push((shard, grace, std::mem::take(&mut agreed[shard])));
            }
            if let Some(horizon) = horizon
                && !past_horizon[shard].is_empty()
            {
                sends.push((shard, horizon, std::mem::take(&mut past_horizon[shard])));
            }
        }
        let results = join_all(
            sends
                .into_iter()
                .map(|(shard, before, partitions)| async move { self.purge(name, shard, before, partitions).await }),
        )
        .await;
        for result in results {
            match result {
                Ok(n) => report.tombstones_purged += n,
                Err(e) => report.errors.push(e.into_api().to_string()),
            }
        }
    }

    async fn purge(&self, name: &str, shard: usize, before: u64, partitions: Vec<u32>) -> Result<u64, ShardError> {
        let body = serde_json::to_vec(&PurgeRequest { before, partitions })
            .map_err(|e| ShardError::Rejected(ruvector_api::ApiError::internal(e.to_string())))?;
        let path = format!("/collections/{name}/tombstones/purge");
        let r: PurgeResponse = self
            .client
            .call_json(&self.metrics, shard, "repair", Method::POST, &path, Some(body), &self.internal)
            .await?;
        Ok(r.purged)
    }

    /// Sends every copy in `copies` the newest write of each id any of them
    /// holds. First, copies whose tombstones were purged below an older
    /// bound than another copy's (it was down past the horizon) are brought
    /// to that bound: their vectors older than it that the copy with the
    /// newest bound lacks were deleted meanwhile, so they are dropped, not
    /// spread.
    pub(crate) async fn repair_partition(
        &self,
        name: &str,
        partition: u32,
        copies: &[usize],
        report: &mut RepairReport,
    ) -> Result<(), ShardError> {
        let path = format!("/collections/{name}/stamps?partition={partition}");
        let mut held: Vec<HashMap<u64, VersionStamp>> = Vec::with_capacity(copies.len());
        let mut purged: Vec<u64> = Vec::with_capacity(copies.len());
        for &shard in copies {
            let stamps: Stamps =
                self.client.call_json(&self.metrics, shard, "repair", Method::GET, &path, None, &self.internal).await?;
            held.push(stamps.stamps.into_iter().map(|s| (s.id, s)).collect());
            purged.push(stamps.purged_before);
        }
        let (authority, bound) = purged.iter().copied().enumerate().max_by_key(|&(_, b)| b).unwrap_or((0, 0));
        for (i, &shard) in copies.iter().enumerate() {
            if purged[i] >= bound {
                continue;
            }
            let dropped: Vec<VersionStamp> = held[i]
                .values()
                .filter(|s| s.version < bound && !held[authority].contains_key(&s.id))
                .copied()
                .collect();
            for stamp in &dropped {
                if !stamp.deleted {
                    // Unversioned: removes the vector and forgets its stamp.
                    let path = format!("/collections/{name}/vectors/{}", stamp.id);
                    match self
                        .client
                        .call(&self.metrics, shard, "repair", Method::DELETE, &path, None, &self.internal, None)
                        .await
                    {
                        Ok(_) => report.deletes += 1,
                        Err(ShardError::Rejected(e)) if e.code() == "not_found" => {}
                        Err(e) => return Err(e),
                    }
                }
                held[i].remove(&stamp.id);
            }
            report.tombstones_purged += self.purge(name, shard, bound, vec![partition]).await?;
            if !dropped.is_empty() {
                tracing::warn!(
                    collection = name,
                    partition,
                    shard = self.client.address(shard),
                    dropped = dropped.len(),
                    "a copy back from beyond the tombstone horizon dropped what its peers deleted meanwhile"
                );
            }
        }
        // The source may be filling itself (it can hold writes the others lack).
        let catch_up = self.internal.for_catch_up();
        // The newest stamp of every id, and a copy that holds it.
        let mut newest: HashMap<u64, (VersionStamp, usize)> = HashMap::new();
        for (i, stamps) in held.iter().enumerate() {
            for s in stamps.values() {
                let entry = newest.entry(s.id).or_insert((*s, i));
                if s.version > entry.0.version {
                    *entry = (*s, i);
                }
            }
        }
        for (i, &target) in copies.iter().enumerate() {
            let behind_of = |mine: &HashMap<u64, VersionStamp>| -> Vec<(VersionStamp, usize)> {
                newest
                    .values()
                    .filter(|(s, _)| match mine.get(&s.id) {
                        Some(mine) => mine.version < s.version,
                        // A tombstone older than the purge bound was purged
                        // here, not missed.
                        None => !(s.deleted && s.version < bound),
                    })
                    .copied()
                    .collect()
            };
            let mut behind = behind_of(&held[i]);
            if behind.len() >= SNAPSHOT_MIN {
                // Far behind (a new copy, a wiped or long-absent one): the
                // copy that holds the most of what it lacks ships it the
                // whole partition, then only what that one lacked is sent
                // write by write.
                let mut from = vec![0usize; copies.len()];
                behind.iter().for_each(|&(_, source)| from[source] += 1);
                let source = (0..copies.len()).max_by_key(|&c| from[c]).unwrap_or(0);
                let shipped = self
                    .client
                    .pipe_snapshot(
                        &self.metrics,
                        copies[source],
                        target,
                        name,
                        partition,
                        &self.internal.for_catch_up(),
                        SNAPSHOT_TIMEOUT,
                    )
                    .await?;
                report.upserts += shipped.upserted;
                report.deletes += shipped.deleted;
                report.snapshot_bytes += shipped.bytes;
                self.metrics.copied_bytes(shipped.bytes);
                let stamps: Stamps = self
                    .client
                    .call_json(&self.metrics, target, "repair", Method::GET, &path, None, &self.internal)
                    .await?;
                held[i] = stamps.stamps.into_iter().map(|s| (s.id, s)).collect();
                behind = behind_of(&held[i]);
            }
            let mut upserts: Vec<VectorRecord> = Vec::new();
            for (stamp, source) in behind {
                if stamp.deleted {
                    let path = format!("/collections/{name}/vectors/{}?version={}", stamp.id, stamp.version);
                    self.client
                        .call_json::<StatusResponse>(
                            &self.metrics,
                            target,
                            "repair",
                            Method::DELETE,
                            &path,
                            None,
                            &self.internal,
                        )
                        .await?;
                    report.deletes += 1;
                    continue;
                }
                let path = format!("/collections/{name}/vectors/{}", stamp.id);
                match self
                    .client
                    .call_json::<VectorRecord>(
                        &self.metrics,
                        copies[source],
                        "repair",
                        Method::GET,
                        &path,
                        None,
                        &catch_up,
                    )
                    .await
                {
                    // The source moved on meanwhile: a later pass sees it.
                    Err(ShardError::Rejected(e)) if e.code() == "not_found" => continue,
                    Err(e) => return Err(e),
                    Ok(record) => upserts.push(record),
                }
                if upserts.len() >= REPAIR_BATCH {
                    report.upserts += self.send_repair(name, target, std::mem::take(&mut upserts)).await?;
                }
            }
            if !upserts.is_empty() {
                report.upserts += self.send_repair(name, target, upserts).await?;
            }
        }
        Ok(())
    }

    async fn send_repair(&self, name: &str, shard: usize, vectors: Vec<VectorRecord>) -> Result<u64, ShardError> {
        let n = vectors.len() as u64;
        let body = serde_json::to_vec(&ValidUpsert { vectors })
            .map_err(|e| ShardError::Rejected(ruvector_api::ApiError::internal(e.to_string())))?;
        let path = format!("/collections/{name}/vectors");
        self.client.call(&self.metrics, shard, "repair", Method::POST, &path, Some(body), &self.internal, None).await?;
        Ok(n)
    }
}
