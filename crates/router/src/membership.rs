//! Telling shards what they hold, and catching copies up.
//!
//! Shards know nothing of each other; this router does, from its shard
//! list. A sync ([`Service::sync`]), run every `health_interval_ms` and at
//! once when a request meets a filling copy or a write missed one:
//!
//! 1. reads every shard's assignment (`GET /cluster/assignment`), which
//!    lists the partitioned collections it has and, per held partition,
//!    its peers, state and generation;
//! 2. creates on a shard any partitioned collection other shards have and
//!    it lacks (a wiped or replaced volume): its partitions then start
//!    filling and are copied in whole by step 5;
//! 3. pushes each shard its part of the placement where it differs
//!    (`PUT /cluster/assignment`, with the placement's fingerprint);
//! 4. marks filling the partitions this router saw miss writes (a copy
//!    down, skipped or failing while the write was acknowledged by others);
//! 5. catches up every filling partition: when a ready peer's digest equals
//!    the copy's, nothing is missing; otherwise the copies' stamps are
//!    merged ([`Service::repair_partition`]: each copy gets the newest write
//!    of every id, a tombstone included); then the partition is made ready,
//!    naming the generation the catch-up started from, so a miss reported
//!    meanwhile (by any router) keeps it filling for the next sync.
//!
//! A filling copy with no peer reachable turns ready as it is when it was
//! whole once (a restarted copy: the only copy up serves, rather than none;
//! writes only the missing copy took come back when it does, through the
//! next sync or anti-entropy pass). A copy a move is filling never does:
//! it waits for a peer.
//! Several routers may sync at once: every step is idempotent.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hasher;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::Method;
use futures::future::join_all;
use ruvector_api::{
    AssignedPartition, AssignmentRequest, CollectionAssignment, CollectionInfo, Digests, PLANNER_LEASE_MS,
    PartitionGeneration, PartitionState, PartitionStateRequest, PartitionStateResponse, ShardAssignment, ValidCreate,
};
use serde::{Deserialize, Serialize};
use siphasher::sip::SipHasher24;

use crate::layout::current_rows;
use crate::repair::RepairReport;
use crate::ring::Placement;
use crate::service::{MoveProgress, Service};
use crate::shard::ShardError;

/// The least time a router with another shard list counts as running
/// after its last probe. A router starved of CPU (a loaded machine, a
/// throttled pod) can miss a few sync periods; were it taken for gone,
/// partitions would move to a shard it does not know and it would answer
/// 503 for them. Waiting longer only delays the first move after the last
/// old router stops.
pub(crate) const OTHER_ROUTER_WINDOW_MIN_MS: u64 = 10_000;

/// What one sync did (logged when it changed something).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// Shards whose assignment was pushed.
    pub assigned: usize,
    /// Collections created on shards that lacked them.
    pub created: usize,
    /// Partition copies moved to filling for missed writes.
    pub marked_filling: usize,
    /// Partition copies made ready after catching up.
    pub made_ready: usize,
    /// Partitions that got new copies (a move started).
    #[serde(default)]
    pub moves_started: usize,
    /// Partitions that lost their old copies (a move finished).
    #[serde(default)]
    pub moves_finished: usize,
    /// Writes sent while catching up.
    pub upserts: u64,
    /// Tombstones sent while catching up.
    pub deletes: u64,
    /// Failures (retried by the next sync).
    pub errors: Vec<String>,
}

impl Service {
    /// The placement fingerprint shards are told: the sorted shard list
    /// and the replication factor.
    pub(crate) fn placement_id(&self) -> String {
        let mut addresses: Vec<&str> = self.all_shards().map(|i| self.client.address(i)).collect();
        addresses.sort_unstable();
        let mut h = SipHasher24::new_with_keys(0, 0);
        for a in &addresses {
            h.write(a.as_bytes());
            h.write(&[0xFF]);
        }
        h.write(&(self.replicas() as u64).to_le_bytes());
        format!("r{}-{:016x}", self.replicas(), h.finish())
    }

    /// What shard `shard` holds of a collection whose copies are `rows`:
    /// each partition it is in, with the other copies as peers.
    fn held_in(&self, rows: &Placement, shard: usize) -> Vec<AssignedPartition> {
        rows.iter()
            .enumerate()
            .filter(|(_, copies)| copies.contains(&shard))
            .map(|(p, copies)| AssignedPartition {
                partition: p as u32,
                peers: copies.iter().filter(|&&s| s != shard).map(|&s| self.client.address(s).to_owned()).collect(),
            })
            .collect()
    }

    /// Pushes every shard its part of a collection this router just
    /// created everywhere: no copy can have missed a write, so the
    /// partitions start ready. Failures are left to the next sync.
    pub(crate) async fn assign_fresh(&self, name: &str, partitions: u32) {
        let placement = &self.placement_id();
        let rows = self.desired(name, partitions);
        let epoch = self.layouts.epoch();
        join_all(self.all_shards().map(|shard| {
            let rows = &rows;
            async move {
                let request = AssignmentRequest {
                    placement: placement.to_owned(),
                    epoch,
                    planner: 0,
                    collections: vec![CollectionAssignment {
                        name: name.to_owned(),
                        partitions,
                        held: self.held_in(rows, shard),
                        fresh: true,
                    }],
                };
                self.put_assignment(shard, &request).await
            }
        }))
        .await;
    }

    /// The placement fingerprints other than this router's that shards saw
    /// probing within the last three sync periods (at least
    /// [`OTHER_ROUTER_WINDOW_MIN_MS`]): routers with another shard list
    /// still running. Sorted, deduplicated.
    pub(crate) fn other_routers(&self, held: &[Option<ShardAssignment>]) -> Vec<String> {
        let window = self.config.health_interval_ms.saturating_mul(3).max(OTHER_ROUTER_WINDOW_MIN_MS);
        let own = self.placement_id();
        let mut others: Vec<String> = held
            .iter()
            .flatten()
            .flat_map(|a| &a.routers)
            .filter(|r| r.placement != own && r.age_ms <= window)
            .map(|r| r.placement.clone())
            .collect();
        others.sort_unstable();
        others.dedup();
        others
    }

    fn set_claimed(&self, at: Option<Instant>) {
        if let Ok(mut claimed) = self.claimed.lock() {
            *claimed = at;
        }
    }

    /// While this router drives moves and its claim is older than a third
    /// of the lease: claims again on every shard (an assignment naming no
    /// collection changes nothing else). A catch-up that copies for longer
    /// than the lease would otherwise let an older router take over
    /// mid-move.
    async fn renew_claim(&self) {
        let due = self
            .claimed
            .lock()
            .ok()
            .and_then(|c| *c)
            .is_some_and(|at| at.elapsed() > Duration::from_millis(PLANNER_LEASE_MS / 3));
        if !due {
            return;
        }
        self.set_claimed(Some(Instant::now()));
        let request = AssignmentRequest {
            placement: self.placement_id(),
            epoch: self.layouts.epoch(),
            planner: self.started,
            collections: Vec::new(),
        };
        join_all(self.all_shards().map(|shard| {
            let request = &request;
            async move {
                if let Err(e) = self.put_assignment(shard, request).await {
                    tracing::debug!(shard = self.client.address(shard), error = %e.into_api(), "renewing the claim");
                }
            }
        }))
        .await;
    }

    async fn put_assignment(&self, shard: usize, request: &AssignmentRequest) -> Result<ShardAssignment, ShardError> {
        let body = serde_json::to_vec(request)
            .map_err(|e| ShardError::Rejected(ruvector_api::ApiError::internal(e.to_string())))?;
        self.client
            .call_json(&self.metrics, shard, "assign", Method::PUT, "/cluster/assignment", Some(body), &self.internal)
            .await
    }

    /// Records that `shard` missed writes to `partitions` of `name`; the
    /// next sync (woken now) marks them filling and catches them up.
    pub(crate) fn missed(&self, shard: usize, name: &str, partitions: impl IntoIterator<Item = u32>, writes: u64) {
        self.metrics.missed_writes(writes);
        if let Ok(mut suspects) = self.suspects.lock() {
            suspects.entry((shard, name.to_owned())).or_default().extend(partitions);
            self.metrics.set_missed_backlog(suspects.values().map(BTreeSet::len).sum());
        }
        self.wake.notify_one();
    }

    /// Every shard's assignment (`None` for a shard that did not answer).
    async fn read_assignments(&self, report: &mut SyncReport) -> Vec<Option<ShardAssignment>> {
        join_all(self.all_shards().map(|shard| {
            self.client.call_json::<ShardAssignment>(
                &self.metrics,
                shard,
                "sync",
                Method::GET,
                "/cluster/assignment",
                None,
                &self.internal,
            )
        }))
        .await
        .into_iter()
        .map(|r| r.map_err(|e| report.errors.push(e.into_api().to_string())).ok())
        .collect()
    }

    /// The partitioned collections the reports name.
    fn collections_of(held: &[Option<ShardAssignment>]) -> BTreeMap<String, u32> {
        let mut collections = BTreeMap::new();
        for a in held.iter().flatten() {
            for c in &a.collections {
                collections.entry(c.name.clone()).or_insert(c.partitions);
            }
        }
        collections
    }

    /// The current copies of every partition of every collection, from
    /// the reports; unknown addresses go to `report.errors`.
    fn current_layout(
        &self,
        held: &[Option<ShardAssignment>],
        collections: &BTreeMap<String, u32>,
        report: &mut SyncReport,
    ) -> HashMap<String, (u32, Arc<Placement>)> {
        let index_of = |a: &str| self.all_shards().find(|&i| self.client.address(i) == a);
        let mut tables = HashMap::new();
        for (name, &partitions) in collections {
            let desired = self.desired(name, partitions);
            let (mut rows, unknown) = current_rows(name, partitions, held, index_of, &desired);
            // A partition no report shows: where this router last saw it
            // (its only holders are down: requests fail as unavailable
            // rather than go to a shard that never held it), else where
            // it should be (never assigned, or every copy lost).
            let previous = self.layouts.table(name, partitions);
            for (p, (row, want)) in rows.iter_mut().zip(desired.iter()).enumerate() {
                if row.is_empty() {
                    match previous.as_ref().and_then(|t| t.get(p)).filter(|r| !r.is_empty()) {
                        Some(last) => row.clone_from(last),
                        None => row.clone_from(want),
                    }
                }
            }
            for address in unknown {
                report.errors.push(format!(
                    "shard {address} holds partitions of {name:?} but is not in this router's shard list"
                ));
            }
            tables.insert(name.clone(), (partitions, Arc::new(rows)));
        }
        tables
    }

    /// Rebuilds this router's view of the placement from the shards (after
    /// a shard answered `stale_placement`: another router moved data).
    pub(crate) async fn refresh(&self) {
        let mut report = SyncReport::default();
        let held = self.read_assignments(&mut report).await;
        let collections = Self::collections_of(&held);
        let tables = self.current_layout(&held, &collections, &mut report);
        let epoch = held.iter().flatten().map(|a| a.epoch).max().unwrap_or(0);
        self.layouts.replace(epoch, tables);
        self.client.set_epoch(self.layouts.epoch());
    }

    /// One sync; see the module docs.
    pub(crate) async fn sync(&self) -> SyncReport {
        let mut report = SyncReport::default();
        let mut held = self.read_assignments(&mut report).await;
        let collections = Self::collections_of(&held);
        if collections.is_empty() {
            return report;
        }
        for shard in self.all_shards() {
            let Some(current) = &held[shard] else { continue };
            for name in collections.keys() {
                if !current.collections.iter().any(|c| &c.name == name) {
                    match self.create_missing(name, shard, &held).await {
                        Ok(()) => report.created += 1,
                        Err(e) => report.errors.push(e.into_api().to_string()),
                    }
                }
            }
        }
        let errors_before = report.errors.len();
        let mut tables = self.current_layout(&held, &collections, &mut report);
        let behind = report.errors.len() > errors_before;
        // The router started last drives moves; others only route (and
        // catch copies up, which changes no placement).
        let driver = held.iter().flatten().all(|a| a.planner <= self.started || a.planner_age_ms > PLANNER_LEASE_MS);
        if !driver && !behind {
            self.set_claimed(None);
            let epoch = held.iter().flatten().map(|a| a.epoch).max().unwrap_or(0);
            self.layouts.replace(epoch, tables);
            self.client.set_epoch(self.layouts.epoch());
            self.mark_missed(&mut held, &mut report).await;
            for name in collections.keys() {
                self.catch_up(name, &held, &mut report).await;
            }
            return report;
        }
        if behind {
            // Shards name copies on shards this router does not know: its
            // shard list is behind the cluster's (an older router during a
            // rolling upgrade). Route what it can; change nothing.
            let epoch = held.iter().flatten().map(|a| a.epoch).max().unwrap_or(0);
            self.layouts.replace(epoch, tables);
            self.client.set_epoch(self.layouts.epoch());
            tracing::warn!(errors = ?report.errors, "this router's shard list is behind the cluster's; not moving anything");
            return report;
        }
        let seen_epoch = held.iter().flatten().map(|a| a.epoch).max().unwrap_or(0).max(self.layouts.epoch());
        let everyone_current = held.iter().all(|a| a.as_ref().is_some_and(|a| a.epoch == seen_epoch));
        let mut moved = false;
        // A router with another shard list still runs (a rolling upgrade
        // midway): it could not reach a copy moved to a shard it does not
        // know, so nothing moves until it stops.
        let others = self.other_routers(&held);
        if !others.is_empty() {
            tracing::info!(routers = ?others, "routers with another shard list are running: moves wait for them to stop");
        }
        for (name, (partitions, rows)) in tables.iter_mut().filter(|_| others.is_empty()) {
            let next = self.plan(name, *partitions, rows, &held, everyone_current, &mut report).await;
            if next != **rows {
                *rows = Arc::new(next);
                moved = true;
            }
        }
        let in_flight: usize = tables
            .iter()
            .map(|(name, (partitions, rows))| {
                let desired = self.target(name, *partitions, rows, |s, p| state_in(&held, name, s, p));
                rows.iter()
                    .zip(desired.iter())
                    .filter(|(now, want)| now.len() != want.len() || !want.iter().all(|s| now.contains(s)))
                    .count()
            })
            .sum();
        self.metrics.set_moves_in_flight(in_flight);
        let epoch = if moved { seen_epoch + 1 } else { seen_epoch.max(1) };
        // Route by the new copies before telling the shards: an added copy
        // is filling (not read until ready), a removed one was merged into
        // the ready copies that remain.
        self.layouts.replace(epoch, tables.clone());
        self.client.set_epoch(self.layouts.epoch());
        let placement = self.placement_id();
        for shard in self.all_shards() {
            let Some(current) = &held[shard] else { continue };
            let mut wanted = Vec::new();
            for (name, (partitions, rows)) in &tables {
                let expected = self.held_in(rows, shard);
                let have = current.collections.iter().find(|c| &c.name == name).and_then(|c| c.held.as_ref());
                let same = have.is_some_and(|h| {
                    h.len() == expected.len()
                        && h.iter().zip(&expected).all(|(a, b)| a.partition == b.partition && a.peers == b.peers)
                });
                if !same || current.epoch != epoch || current.placement.as_deref() != Some(placement.as_str()) {
                    wanted.push(CollectionAssignment {
                        name: name.clone(),
                        partitions: *partitions,
                        held: expected,
                        fresh: false,
                    });
                }
            }
            let claim_due = current.planner != self.started || current.planner_age_ms > PLANNER_LEASE_MS / 2;
            if wanted.is_empty() && !claim_due {
                continue;
            }
            let request =
                AssignmentRequest { placement: placement.clone(), epoch, planner: self.started, collections: wanted };
            match self.put_assignment(shard, &request).await {
                Ok(now) => {
                    held[shard] = Some(now);
                    report.assigned += 1;
                }
                Err(e) => report.errors.push(e.into_api().to_string()),
            }
        }
        self.layouts.replace(epoch, tables);
        self.client.set_epoch(self.layouts.epoch());
        self.set_claimed(Some(Instant::now()));
        self.mark_missed(&mut held, &mut report).await;
        for name in collections.keys() {
            self.catch_up(name, &held, &mut report).await;
        }
        for shard in self.all_shards() {
            let filling = held[shard].as_ref().map_or(0, |a| {
                a.collections
                    .iter()
                    .flat_map(|c| c.held.iter().flatten())
                    .filter(|p| p.state == PartitionState::Filling)
                    .count()
            });
            self.metrics.set_filling(self.client.address(shard), filling);
        }
        if report.assigned
            + report.created
            + report.marked_filling
            + report.made_ready
            + report.moves_started
            + report.moves_finished
            > 0
        {
            tracing::info!(?report, "cluster sync");
        }
        report
    }

    /// The next copies of each partition of `name`, one safe step from
    /// `rows` toward the desired placement:
    ///
    /// - a partition no shard holds yet gets its desired copies;
    /// - a partition missing desired copies gets them added, filling (the
    ///   catch-up fills them; every copy takes writes meanwhile);
    /// - a partition whose desired copies are all ready and that still has
    ///   others loses those, after a last merge of every copy (writes that
    ///   reached only an old copy), once every shard has the current
    ///   epoch (no router writes by an older placement any more).
    async fn plan(
        &self,
        name: &str,
        partitions: u32,
        rows: &Placement,
        held: &[Option<ShardAssignment>],
        everyone_current: bool,
        report: &mut SyncReport,
    ) -> Placement {
        let state = |shard: usize, p: usize| state_in(held, name, shard, p);
        let desired = self.target(name, partitions, rows, state);
        let mut next = rows.clone();
        for (p, want) in desired.iter().enumerate() {
            let Some(row) = next.get_mut(p) else { continue };
            if row.is_empty() {
                row.clone_from(want);
                continue;
            }
            let missing: Vec<usize> = want.iter().copied().filter(|s| !row.contains(s)).collect();
            if !missing.is_empty() {
                row.extend(missing);
                report.moves_started += 1;
                if let Ok(mut moves) = self.moves.lock() {
                    moves.entry((name.to_owned(), p as u32)).or_insert_with(|| MoveProgress {
                        started: Instant::now(),
                        vectors: 0,
                        bytes: 0,
                    });
                }
                continue;
            }
            if row.len() == want.len() || !everyone_current {
                continue;
            }
            if !want.iter().all(|&s| state(s, p) == Some(PartitionState::Ready)) {
                continue;
            }
            let reachable: Vec<usize> =
                row.iter().copied().filter(|&s| held.get(s).is_some_and(Option::is_some)).collect();
            if reachable.len() < row.len() {
                // An old copy is unreachable: it may hold writes the new
                // ones lack; wait for it.
                continue;
            }
            let mut merged = RepairReport::default();
            let result = self.repair_partition(name, p as u32, &reachable, &mut merged).await;
            report.upserts += merged.upserts;
            report.deletes += merged.deletes;
            if let Err(e) = result {
                report.errors.push(e.into_api().to_string());
                continue;
            }
            row.clone_from(want);
            report.moves_finished += 1;
            if let Some(m) = self.moves.lock().ok().and_then(|mut m| m.remove(&(name.to_owned(), p as u32))) {
                self.metrics.moved(m.started.elapsed());
            }
        }
        next
    }

    /// Creates collection `name` on `shard` with the configuration another
    /// shard reports.
    async fn create_missing(
        &self,
        name: &str,
        shard: usize,
        held: &[Option<ShardAssignment>],
    ) -> Result<(), ShardError> {
        let path = format!("/collections/{name}");
        let mut last = None;
        for source in self.all_shards().filter(|&s| s != shard && held[s].is_some()) {
            match self
                .client
                .call_json::<CollectionInfo>(&self.metrics, source, "sync", Method::GET, &path, None, &self.internal)
                .await
            {
                Ok(info) => {
                    let create = ValidCreate {
                        name: info.name,
                        dimension: info.dimension,
                        metric: info.metric,
                        m: info.m,
                        ef_construction: info.ef_construction,
                        ef_search: info.ef_search,
                        quantization: info.quantization,
                        partitions: info.partitions,
                        payload_indexes: info.payload_indexes,
                    };
                    let body = serde_json::to_vec(&create)
                        .map_err(|e| ShardError::Rejected(ruvector_api::ApiError::internal(e.to_string())))?;
                    return match self
                        .client
                        .call(
                            &self.metrics,
                            shard,
                            "sync",
                            Method::POST,
                            "/collections",
                            Some(body),
                            &self.internal,
                            None,
                        )
                        .await
                    {
                        Ok(_) => {
                            tracing::warn!(
                                collection = name,
                                shard = self.client.address(shard),
                                "created a missing collection; its partitions will be copied"
                            );
                            Ok(())
                        }
                        Err(ShardError::Rejected(e)) if e.code() == "collection_exists" => Ok(()),
                        Err(e) => Err(e),
                    };
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ShardError::Unavailable { shard, message: format!("no shard describes {name:?}") }))
    }

    /// Step 4: partitions that missed writes become filling.
    async fn mark_missed(&self, held: &mut [Option<ShardAssignment>], report: &mut SyncReport) {
        let pending: Vec<((usize, String), BTreeSet<u32>)> = match self.suspects.lock() {
            Ok(mut s) => std::mem::take(&mut *s).into_iter().collect(),
            Err(_) => return,
        };
        let mut retry = Vec::new();
        for ((shard, name), mut partitions) in pending {
            if held.get(shard).is_none_or(Option::is_none) {
                retry.push(((shard, name), partitions));
                continue;
            }
            // A copy is marked filling only while another copy of its
            // partition is up to catch it up from: with none (the only copy,
            // or its peers down) marking it would only stop its reads. Such
            // partitions wait here until a peer is back.
            let held_parts = held
                .get(shard)
                .and_then(Option::as_ref)
                .and_then(|a| a.collections.iter().find(|c| c.name == name))
                .and_then(|c| c.held.clone())
                .unwrap_or_default();
            let peer_up = |p: u32| {
                held_parts.iter().find(|h| h.partition == p).is_some_and(|h| {
                    h.peers
                        .iter()
                        .any(|a| self.all_shards().any(|i| self.client.address(i) == a && self.client.is_up(i)))
                })
            };
            let (now, later): (BTreeSet<u32>, BTreeSet<u32>) = partitions.iter().partition(|&&p| peer_up(p));
            let waiting: BTreeSet<u32> = later
                .into_iter()
                .filter(|p| held_parts.iter().any(|h| h.partition == *p && !h.peers.is_empty()))
                .collect();
            if !waiting.is_empty() {
                retry.push(((shard, name.clone()), waiting));
            }
            partitions = now;
            if partitions.is_empty() {
                continue;
            }
            let request = PartitionStateRequest {
                collection: name.clone(),
                state: PartitionState::Filling,
                partitions: partitions
                    .iter()
                    .map(|&partition| PartitionGeneration { partition, generation: 0 })
                    .collect(),
            };
            match self.set_state(shard, &request).await {
                Ok(changed) => {
                    report.marked_filling += changed.len();
                    // Mirror the shard's change in the view the catch-up uses.
                    if let Some(a) = held[shard].as_mut()
                        && let Some(c) = a.collections.iter_mut().find(|c| c.name == name)
                    {
                        for p in c.held.iter_mut().flatten().filter(|p| changed.contains(&p.partition)) {
                            p.state = PartitionState::Filling;
                            p.generation += 1;
                        }
                    }
                }
                Err(ShardError::Rejected(e)) => report.errors.push(e.to_string()),
                Err(e) => {
                    report.errors.push(e.into_api().to_string());
                    retry.push(((shard, name), partitions));
                }
            }
        }
        if let Ok(mut s) = self.suspects.lock() {
            for (key, partitions) in retry {
                s.entry(key).or_default().extend(partitions);
            }
            self.metrics.set_missed_backlog(s.values().map(BTreeSet::len).sum());
        }
    }

    async fn set_state(&self, shard: usize, request: &PartitionStateRequest) -> Result<Vec<u32>, ShardError> {
        let body = serde_json::to_vec(request)
            .map_err(|e| ShardError::Rejected(ruvector_api::ApiError::internal(e.to_string())))?;
        self.client
            .call_json::<PartitionStateResponse>(
                &self.metrics,
                shard,
                "sync",
                Method::POST,
                "/cluster/partitions",
                Some(body),
                &self.internal,
            )
            .await
            .map(|r| r.changed)
    }

    /// Step 5 for one collection: every shard's filling partitions.
    async fn catch_up(&self, name: &str, held: &[Option<ShardAssignment>], report: &mut SyncReport) {
        let holding = |shard: usize| {
            held.get(shard).and_then(Option::as_ref).and_then(|a| a.collections.iter().find(|c| c.name == name))
        };
        // Copies that were whole once (restarted, or missed writes) first:
        // they hold nearly everything and serve again soon; then the copies
        // moves are filling.
        let filling: Vec<(usize, Vec<(u32, u64)>)> = [true, false]
            .into_iter()
            .flat_map(|whole| {
                self.all_shards().filter_map(move |shard| {
                    let parts: Vec<(u32, u64)> = holding(shard)?
                        .held
                        .iter()
                        .flatten()
                        .filter(|p| p.state == PartitionState::Filling && p.whole == whole)
                        .map(|p| (p.partition, p.generation))
                        .collect();
                    (!parts.is_empty()).then_some((shard, parts))
                })
            })
            .collect();
        if filling.is_empty() {
            return;
        }
        let Some(partitions) = self.all_shards().find_map(|s| holding(s).map(|c| c.partitions)) else { return };
        let path = format!("/collections/{name}/digests");
        let digests: Vec<Option<Digests>> = join_all(self.all_shards().map(|shard| {
            let path = &path;
            async move {
                holding(shard)?;
                self.client
                    .call_json::<Digests>(&self.metrics, shard, "sync", Method::GET, path, None, &self.internal)
                    .await
                    .ok()
            }
        }))
        .await;
        let digest = |shard: usize, p: u32| digests[shard].as_ref().and_then(|d| d.partitions.get(p as usize)).copied();
        let held_part =
            |shard: usize, p: u32| holding(shard).and_then(|c| c.held.iter().flatten().find(|h| h.partition == p));
        let state = |shard: usize, p: u32| held_part(shard, p).map(|h| h.state);
        for (shard, parts) in filling {
            if digests[shard].is_none() {
                continue;
            }
            let started = Instant::now();
            let mut ready = Vec::new();
            for (p, generation) in parts {
                let copies = self.table(name, partitions).get(p as usize).cloned().unwrap_or_default();
                let peers: Vec<usize> =
                    copies.iter().copied().filter(|&s| s != shard && digests[s].is_some()).collect();
                let in_sync = peers
                    .iter()
                    .any(|&s| state(s, p) == Some(PartitionState::Ready) && digest(s, p) == digest(shard, p));
                if !in_sync && !peers.is_empty() {
                    let mut involved = vec![shard];
                    involved.extend(&peers);
                    let mut merged = RepairReport::default();
                    let result = self.repair_partition(name, p, &involved, &mut merged).await;
                    self.renew_claim().await;
                    report.upserts += merged.upserts;
                    report.deletes += merged.deletes;
                    self.metrics.repaired(merged.upserts, merged.deletes);
                    self.metrics.copied(merged.upserts);
                    if let Ok(mut moves) = self.moves.lock()
                        && let Some(m) = moves.get_mut(&(name.to_owned(), p))
                    {
                        m.vectors += merged.upserts + merged.deletes;
                        m.bytes += merged.snapshot_bytes;
                    }
                    if let Err(e) = result {
                        report.errors.push(e.into_api().to_string());
                        continue;
                    }
                } else if peers.is_empty() && copies.len() > 1 && !held_part(shard, p).is_some_and(|h| h.whole) {
                    // A copy a move is filling, its source out of reach:
                    // serving it as it is would hide what it lacks. It
                    // waits (reads go to the old copy when it returns).
                    tracing::info!(
                        collection = name,
                        partition = p,
                        shard = self.client.address(shard),
                        "a new copy cannot fill: no other copy is reachable; waiting"
                    );
                    continue;
                } else if peers.is_empty() && copies.len() > 1 {
                    tracing::warn!(
                        collection = name,
                        partition = p,
                        shard = self.client.address(shard),
                        "no other copy is reachable: the partition turns ready as it is"
                    );
                }
                ready.push(PartitionGeneration { partition: p, generation });
            }
            if ready.is_empty() {
                continue;
            }
            let request =
                PartitionStateRequest { collection: name.to_owned(), state: PartitionState::Ready, partitions: ready };
            match self.set_state(shard, &request).await {
                Ok(changed) => {
                    report.made_ready += changed.len();
                    self.metrics.catchup(started.elapsed());
                }
                Err(e) => report.errors.push(e.into_api().to_string()),
            }
        }
    }
}

/// The state of partition `p` of `name` on `shard` as its report says.
fn state_in(held: &[Option<ShardAssignment>], name: &str, shard: usize, p: usize) -> Option<PartitionState> {
    held.get(shard)
        .and_then(Option::as_ref)
        .and_then(|a| a.collections.iter().find(|c| c.name == name))
        .and_then(|c| c.held.as_ref())
        .and_then(|h| h.iter().find(|h| h.partition as usize == p))
        .map(|h| h.state)
}
