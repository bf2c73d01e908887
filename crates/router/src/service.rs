//! The router's operations, transport-agnostic: each takes parsed request
//! types and the client's [`Credentials`], validates with `ruvector_api`
//! (the same rules as a node), talks to the shards, and returns wire types
//! or an [`ApiError`]. HTTP handlers only extract, call and map.
//!
//! | operation | shards contacted | combination |
//! |---|---|---|
//! | create / delete collection | all, in parallel | [`crate::decide`] (idempotent; 503 names failed shards) |
//! | list / info | all | union / sum (see [`crate::decide`]); a partitioned collection's size is the sum over copies ÷ R |
//! | upsert | every copy of the batch's ids, in parallel | each id needs `write_acks` copies, else 503 (retry is safe) |
//! | get vector | the id's copies, in preference order | the first that answers |
//! | delete vector | every copy | as upsert; 404 when no copy held the id |
//! | search / batch search / ids | all, concurrently | `SearchHit::merge_top_k` / `IdsPage::merge` (both drop duplicate ids) |
//!
//! Placement: a collection created through a router has partitions
//! (default: the next power of two ≥ 8 × shards), each on
//! `replication_factor` shards ([`crate::Ring::copies`]); older collections
//! keep one owner per id. Every write is stamped with a version from the
//! router's [`Clock`], so retries and copies converge.
//!
//! Fan-outs that read ([`Service::gather`]) ask every shard believed up
//! (all of them when the up ones do not hold every partition): with one copy
//! of everything, the first shard that is unavailable ends the request with
//! its 503; with copies, the request waits for all and succeeds when the
//! shards that answered hold a copy of every partition (a failover within
//! the request, counted in `ruvector_router_failovers_total`). Otherwise,
//! a search that allows partial results gets the live shards' results,
//! marked partial. A shard's 4xx ends the request at once and is forwarded.
//! Writes wait for every shard they were sent to, so the 503 can name all
//! that failed.

mod by_filter;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::Method;
use futures::StreamExt;
use futures::future::join_all;
use futures::stream::FuturesUnordered;
use ruvector_api::{
    ApiError, BatchSearchRequest, CollectionInfo, CreateCollectionRequest, Digests, IdsPage, IdsQuery, MAX_PARTITIONS,
    PartitionState, SearchHit, SearchRequest, ShardAssignment, StatusResponse, UpsertRequest, ValidUpsert,
    VectorRecord, partition_of, validate_collection_name,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use crate::cache::{Shape, ShapeCache};
use crate::clock::Clock;
use crate::decide::{self, CreateOutcome, DeleteOutcome, InfoOutcome};
use crate::layout::Layouts;
use crate::metrics::Metrics;
use crate::ring::Placement;
use crate::shard::{Credentials, ShardClient, ShardError};
use crate::{Ring, RouterConfig};

/// How a read fan-out's 503 starts when every shard answered but some
/// partition had no ready copy among them.
const CATCHING_UP: &str = "copies are catching up";

/// Longest wait for a shard's `/ready` in readiness checks and probes.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Search results and whether some shard's results are missing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Searched<T> {
    pub(crate) hits: T,
    pub(crate) partial: bool,
}

/// `GET /cluster` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ClusterStatus {
    /// Copies of every partition.
    pub replication_factor: usize,
    /// Copies a write needs before it is acknowledged.
    pub write_quorum: usize,
    /// The placement fingerprint pushed to shards (shard list and
    /// replication factor).
    pub placement: String,
    /// The newest placement epoch the shards report (raised by every move
    /// step).
    pub epoch: u64,
    /// Partitions (over every collection) whose copies are not yet where
    /// the placement wants them: moves in flight.
    pub moving: usize,
    /// One entry per configured shard, in configuration order.
    pub shards: Vec<ShardStatus>,
    /// Every partitioned collection any shard reported, by name.
    pub collections: Vec<CollectionPlacement>,
    /// Every partition move in flight.
    #[serde(default)]
    pub moves: Vec<MoveStatus>,
    /// Placement fingerprints of routers with another shard list that
    /// shards saw in the last few seconds (a rolling upgrade midway): no
    /// partition moves while any runs.
    #[serde(default)]
    pub other_routers: Vec<String>,
}

/// One partition move in [`ClusterStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct MoveStatus {
    /// The collection.
    pub collection: String,
    /// The partition.
    pub partition: u32,
    /// The shards holding a copy now (the new ones included).
    pub now: Vec<String>,
    /// The shards that will hold its copies once the move is done.
    pub target: Vec<String>,
    /// `copying` (new copies filling) or `finishing` (new copies ready;
    /// the old ones are merged one last time and dropped once every shard
    /// has the current epoch).
    pub state: String,
    /// Writes (points and tombstones) sent into the new copies so far;
    /// `null` unless this router drives the move.
    pub vectors: Option<u64>,
    /// Bytes of partition snapshots shipped into them so far; `null`
    /// unless this router drives the move.
    pub bytes: Option<u64>,
    /// Milliseconds since the move began; `null` unless this router
    /// drives it.
    pub millis: Option<u64>,
}

/// What the driving router knows of a move it runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MoveProgress {
    pub(crate) started: std::time::Instant,
    pub(crate) vectors: u64,
    pub(crate) bytes: u64,
}

/// Where one collection's partitions live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct CollectionPlacement {
    /// The collection.
    pub name: String,
    /// Its partition count.
    pub partitions: u32,
    /// Row `p`: the shard addresses holding partition `p`, most preferred
    /// first.
    pub copies: Vec<Vec<String>>,
    /// Row `p`: the state of each copy in `copies` as its shard reports it
    /// (`filling` or `ready`); `null` when the shard did not answer or has
    /// not been assigned the partition yet.
    pub states: Vec<Vec<Option<PartitionState>>>,
    /// Partitions whose copies differ from the placement's (moving).
    pub moving: Vec<u32>,
}

/// One shard in [`ClusterStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ShardStatus {
    /// The shard's base URL.
    pub address: String,
    /// Whether the shard answered just now.
    pub up: bool,
    /// The last failure seen talking to this shard (kept after recovery).
    pub last_error: Option<String>,
    /// Sum of the sizes of the shard's collections; `null` when unknown.
    pub vectors: Option<u64>,
    /// Partition copies it holds now (over every partitioned collection).
    pub partitions: usize,
    /// Being emptied (`[router] drain`).
    pub draining: bool,
    /// Draining and holding nothing any more: it may be removed.
    pub removable: bool,
}

/// Successes of a read fan-out, and the shards that failed and whose
/// partitions no other answer covered (only with partial results allowed).
struct Gathered<T> {
    ok: Vec<(usize, T)>,
    failed: Vec<String>,
}

/// What a read fan-out may tolerate.
#[derive(Clone, Copy)]
struct Tolerance<'a> {
    /// Answer with the live shards' results when coverage fails.
    allow_partial: bool,
    /// The collection whose partitions the answers must cover, if copies
    /// make failures survivable.
    covering: Option<(&'a str, u32)>,
}

impl Tolerance<'_> {
    const STRICT: Tolerance<'static> = Tolerance { allow_partial: false, covering: None };
}

/// The router's state and operations.
#[derive(Debug)]
pub(crate) struct Service {
    pub(crate) config: RouterConfig,
    pub(crate) ring: Ring,
    /// With shards draining: the ring over the others, and their indexes
    /// in the configured list.
    active: Option<(Ring, Vec<usize>)>,
    pub(crate) client: ShardClient,
    pub(crate) metrics: Metrics,
    cache: ShapeCache,
    pub(crate) internal: Credentials,
    clock: Clock,
    /// Partition copies this router saw miss writes, by (shard,
    /// collection), until a sync marks them filling.
    pub(crate) suspects: Mutex<BTreeMap<(usize, String), BTreeSet<u32>>>,
    /// Wakes the sync loop early.
    pub(crate) wake: Notify,
    /// Where partitions are now (see [`crate::layout`]).
    pub(crate) layouts: Layouts,
    /// When this router started (ms since the Unix epoch): the router
    /// started last drives moves.
    pub(crate) started: u64,
    /// When each partition move this router drove began (for the move
    /// duration metric).
    pub(crate) moves: Mutex<HashMap<(String, u32), MoveProgress>>,
    /// Per collection, the placement moves are driven toward
    /// ([`Service::target`]).
    targets: Mutex<HashMap<String, Arc<Placement>>>,
    /// While this router drives moves: when it last claimed that on every
    /// shard (a long catch-up renews the claim before its lease lapses).
    pub(crate) claimed: Mutex<Option<Instant>>,
}

/// A copy's 4xx that says "not here" rather than "bad request": the
/// collection is missing on that shard (a wiped volume, refilled by the
/// next sync) or the shard places the partition elsewhere. Another copy
/// may take the write.
fn copy_refusal(e: &ApiError) -> bool {
    matches!(e.code(), "not_found" | "partition_not_held")
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e.to_string())
}

impl Service {
    pub(crate) fn new(
        config: RouterConfig,
        ring: Ring,
        active: Option<(Ring, Vec<usize>)>,
        client: ShardClient,
        metrics: Metrics,
    ) -> Self {
        let cache = ShapeCache::new(Duration::from_millis(config.collection_cache_ms));
        let internal = Credentials::internal(&config);
        let service = Service {
            config,
            ring,
            active,
            client,
            metrics,
            cache,
            internal,
            clock: Clock::new(),
            suspects: Mutex::new(BTreeMap::new()),
            wake: Notify::new(),
            layouts: Layouts::default(),
            moves: Mutex::new(HashMap::new()),
            targets: Mutex::new(HashMap::new()),
            claimed: Mutex::new(None),
            started: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_millis() as u64),
        };
        service.client.set_placement(service.placement_id());
        service
    }

    /// Copies per partition: the configured factor, at most one per shard.
    pub(crate) fn replicas(&self) -> usize {
        self.config.replication_factor.clamp(1, self.client.len().max(1))
    }

    /// Where the partitions of `name` should be: the placement over the
    /// configured shards.
    pub(crate) fn desired(&self, name: &str, partitions: u32) -> Arc<Placement> {
        match &self.active {
            None => self.ring.placement(name, partitions, self.replicas()),
            Some((ring, kept)) => {
                let table = ring.placement(name, partitions, self.replicas());
                Arc::new(table.iter().map(|row| row.iter().filter_map(|&i| kept.get(i).copied()).collect()).collect())
            }
        }
    }

    /// Where the copies of `name` should go, moving as few as possible
    /// ([`Ring::rebalance`] over the configured shards minus `drain`),
    /// given the layout `rows` and each copy's state (`state(shard,
    /// partition)`; a copy of unknown state counts as settled). Computed
    /// when first asked and kept while moves toward it run, so the moves
    /// planned at the start are the ones finished; computed afresh once
    /// the layout is quiet (every partition with its copies, all ready)
    /// and differs from it.
    pub(crate) fn target(
        &self,
        name: &str,
        partitions: u32,
        rows: &Placement,
        state: impl Fn(usize, usize) -> Option<PartitionState>,
    ) -> Arc<Placement> {
        let quiet = rows.iter().enumerate().all(|(p, row)| {
            row.len() == self.replicas() && row.iter().all(|&s| state(s, p) == Some(PartitionState::Ready))
        });
        let kept = self.targets.lock().ok().and_then(|t| t.get(name).cloned());
        if let Some(target) = kept
            && target.len() == partitions as usize
        {
            let reached = rows
                .iter()
                .zip(target.iter())
                .all(|(now, want)| now.len() == want.len() && want.iter().all(|s| now.contains(s)));
            if !quiet || reached {
                return target;
            }
        }
        let (mut settled, mut pending): (Placement, Placement) =
            (vec![Vec::new(); rows.len()], vec![Vec::new(); rows.len()]);
        for (p, row) in rows.iter().enumerate() {
            for &s in row {
                if state(s, p) == Some(PartitionState::Filling) {
                    pending[p].push(s);
                } else {
                    settled[p].push(s);
                }
            }
        }
        let target = Arc::new(match &self.active {
            None => self.ring.rebalance(name, partitions, self.replicas(), &settled, &pending),
            Some((ring, kept)) => {
                let local = |rows: &Placement| -> Placement {
                    rows.iter().map(|r| r.iter().filter_map(|s| kept.iter().position(|k| k == s)).collect()).collect()
                };
                ring.rebalance(name, partitions, self.replicas(), &local(&settled), &local(&pending))
                    .iter()
                    .map(|r| r.iter().filter_map(|&i| kept.get(i).copied()).collect())
                    .collect()
            }
        });
        if let Ok(mut targets) = self.targets.lock() {
            if targets.len() >= 4096 {
                targets.clear();
            }
            targets.insert(name.to_owned(), Arc::clone(&target));
        }
        target
    }

    /// Whether shard `shard` is being drained.
    pub(crate) fn draining(&self, shard: usize) -> bool {
        self.active.as_ref().is_some_and(|(_, kept)| !kept.contains(&shard))
    }

    /// Where the partitions of `name` are now: the shards' reports (every
    /// copy, filling ones included), else the desired placement.
    pub(crate) fn table(&self, name: &str, partitions: u32) -> Arc<Placement> {
        self.layouts.table(name, partitions).unwrap_or_else(|| self.desired(name, partitions))
    }

    /// The shards holding `id` of collection `name`, most preferred first.
    fn copies_of(&self, name: &str, shape: &Shape, id: u64) -> Vec<usize> {
        match shape.partitions {
            Some(p) => self.table(name, p).get(partition_of(name, id, p) as usize).cloned().unwrap_or_default(),
            None => vec![self.ring.owner(name, id)],
        }
    }

    /// Acknowledgements a write to `copies` copies needs.
    fn acks_needed(&self, copies: usize) -> usize {
        self.config.write_acks().clamp(1, copies.max(1))
    }

    /// What a read of `name` may survive: failed shards whose partitions
    /// other answers cover, when the collection has copies.
    fn tolerance<'a>(&self, name: &'a str, shape: &Shape, allow_partial: bool) -> Tolerance<'a> {
        Tolerance { allow_partial, covering: shape.partitions.map(|p| (name, p)) }
    }

    /// Whether the shards that `answered` (each with the partitions it left
    /// out as filling) served a ready copy of every partition.
    fn covers(&self, name: &str, partitions: u32, answered: &[(usize, &[u32])]) -> bool {
        let table = self.table(name, partitions);
        table.iter().enumerate().all(|(p, copies)| {
            copies.iter().any(|s| answered.iter().any(|(a, unready)| a == s && !unready.contains(&(p as u32))))
        })
    }

    /// The shards a read of a partitioned collection asks: every shard the
    /// router believes up, when those hold every partition (a shard known
    /// to be down is not waited for); else all of them.
    fn read_targets(&self, tolerance: &Tolerance<'_>) -> Vec<usize> {
        let all: Vec<usize> = self.all_shards().collect();
        let Some((name, partitions)) = tolerance.covering else { return all };
        let up: Vec<(usize, &[u32])> = all.iter().filter(|&&s| self.client.is_up(s)).map(|&s| (s, &[][..])).collect();
        if up.len() < all.len() && self.covers(name, partitions, &up) {
            up.into_iter().map(|(s, _)| s).collect()
        } else {
            all
        }
    }

    /// A summed info of a partitioned collection counted every copy: count
    /// each vector once.
    fn count_once(&self, info: &mut CollectionInfo) {
        if info.partitions.is_some() {
            info.size /= self.replicas() as u64;
        }
    }

    /// The default partition count for a new collection: a power of two
    /// with about eight partitions per shard.
    fn default_partitions(&self) -> u32 {
        let wanted = (self.client.len().max(1) * 8).next_power_of_two();
        u32::try_from(wanted).unwrap_or(MAX_PARTITIONS).min(MAX_PARTITIONS)
    }

    pub(crate) fn all_shards(&self) -> std::ops::Range<usize> {
        0..self.client.len()
    }

    /// Sends the same request to every shard (but those known down, when
    /// the others hold every partition); see the module docs for the
    /// fail-fast rules. Results come in completion order, tagged by shard.
    async fn gather<T: DeserializeOwned>(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        credentials: &Credentials,
        tolerance: Tolerance<'_>,
    ) -> Result<Gathered<T>, ShardError> {
        // Every shard answered, but some partition's only answering copies
        // were filling (a copy being caught up right now, e.g. the single
        // copy of a partition that just moved): the sync is woken and the
        // fan-out asked again, a few times, before answering 503.
        let mut attempt = 0;
        loop {
            match self.gather_once(op, method.clone(), path, body.clone(), credentials, tolerance).await {
                Err(ShardError::Unavailable { message, .. }) if message.starts_with(CATCHING_UP) && attempt < 5 => {
                    attempt += 1;
                    self.wake.notify_one();
                    tokio::time::sleep(Duration::from_millis(50 << attempt.min(3))).await;
                    tracing::debug!(%message, attempt, "retrying a read that met copies catching up");
                }
                other => return other,
            }
        }
    }

    async fn gather_once<T: DeserializeOwned>(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        credentials: &Credentials,
        tolerance: Tolerance<'_>,
    ) -> Result<Gathered<T>, ShardError> {
        let targets = self.read_targets(&tolerance);
        self.metrics.fanout(op, targets.len());
        let mut pending: FuturesUnordered<_> = targets
            .iter()
            .map(|&shard| {
                let (method, body) = (method.clone(), body.clone());
                async move {
                    let r = self
                        .client
                        .call_json_reply::<T>(&self.metrics, shard, op, method, path, body, credentials)
                        .await;
                    (shard, r)
                }
            })
            .collect();
        let survivable = tolerance.allow_partial || tolerance.covering.is_some();
        let mut out = Gathered { ok: Vec::with_capacity(targets.len()), failed: Vec::new() };
        let mut unready: Vec<(usize, Vec<u32>)> = Vec::new();
        let mut first_failed = None;
        let mut refused = None;
        while let Some((shard, result)) = pending.next().await {
            match result {
                Ok((t, left_out)) => {
                    out.ok.push((shard, t));
                    unready.push((shard, left_out));
                }
                Err(ShardError::Unavailable { message, .. }) if survivable => {
                    first_failed.get_or_insert(shard);
                    out.failed.push(message);
                }
                // A shard without the collection (a wiped volume): the
                // others may cover it while the next sync refills it.
                Err(ShardError::Rejected(e)) if tolerance.covering.is_some() && copy_refusal(&e) => {
                    self.wake.notify_one();
                    first_failed.get_or_insert(shard);
                    out.failed.push(format!("shard {}: {e}", self.client.address(shard)));
                    refused.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        if out.ok.is_empty()
            && let Some(e) = refused
        {
            return Err(ShardError::Rejected(e));
        }
        let any_unready = unready.iter().any(|(_, u)| !u.is_empty());
        if any_unready {
            self.wake.notify_one();
        }
        if out.failed.is_empty() && !any_unready && targets.len() == self.client.len() {
            return Ok(out);
        }
        if let Some((name, partitions)) = tolerance.covering {
            let answered: Vec<(usize, &[u32])> = unready.iter().map(|(s, u)| (*s, u.as_slice())).collect();
            if self.covers(name, partitions, &answered) {
                if !out.failed.is_empty() || any_unready || targets.len() < self.client.len() {
                    self.metrics.failover(op);
                }
                out.failed.clear();
                return Ok(out);
            }
            if out.failed.is_empty() {
                out.failed.push(format!("{CATCHING_UP}: some partitions of {name:?} have no ready copy that answered"));
            }
        } else if out.failed.is_empty() {
            return Ok(out);
        }
        if !tolerance.allow_partial || out.ok.is_empty() {
            return Err(ShardError::Unavailable { shard: first_failed.unwrap_or(0), message: out.failed.join("; ") });
        }
        Ok(out)
    }

    /// A shard refused a request as routed by an older placement: refresh
    /// the view from the shards (the caller retries once).
    pub(crate) async fn note_stale(&self) {
        self.metrics.failover("stale_placement");
        self.refresh().await;
    }

    /// A shard error to the client's error, dropping the cached shape of
    /// `name` when a shard no longer knows the collection.
    fn forward(&self, name: &str, e: ShardError) -> ApiError {
        let e = e.into_api();
        if e.code() == "not_found" {
            self.cache.invalidate(name);
        }
        e
    }

    /// The dimension and metric of `name`: cached, else from the first
    /// shard that answers (all are asked concurrently).
    async fn shape(&self, name: &str, credentials: &Credentials) -> Result<Shape, ApiError> {
        let shape = self.shape_of(name, credentials).await?;
        if let Some(partitions) = shape.partitions
            && self.layouts.table(name, partitions).is_none()
        {
            // Not seen in any shard report yet (a router just started, or
            // the collection is new): learn where its partitions are now
            // rather than assume the desired placement.
            self.refresh().await;
        }
        Ok(shape)
    }

    async fn shape_of(&self, name: &str, credentials: &Credentials) -> Result<Shape, ApiError> {
        if let Some(shape) = self.cache.get(name) {
            return Ok(shape);
        }
        let path = format!("/collections/{name}");
        let mut pending: FuturesUnordered<_> = self
            .all_shards()
            .map(|shard| {
                self.client.call_json::<CollectionInfo>(
                    &self.metrics,
                    shard,
                    "info",
                    Method::GET,
                    &path,
                    None,
                    credentials,
                )
            })
            .collect();
        let mut down = Vec::new();
        let mut not_found = None;
        while let Some(result) = pending.next().await {
            match result {
                Ok(info) => {
                    let shape = Shape { dimension: info.dimension, metric: info.metric, partitions: info.partitions };
                    self.cache.put(name, shape);
                    return Ok(shape);
                }
                Err(ShardError::Unavailable { message, .. }) => down.push(message),
                Err(ShardError::Rejected(e)) if e.code() == "not_found" => not_found = Some(e),
                Err(ShardError::Rejected(e)) => return Err(e),
            }
        }
        match not_found {
            Some(e) if down.is_empty() => Err(e),
            _ => Err(decide::unavailable(&down, "")),
        }
    }

    /// `POST /collections`.
    pub(crate) async fn create_collection(
        &self,
        request: CreateCollectionRequest,
        credentials: &Credentials,
    ) -> Result<StatusResponse, ApiError> {
        let mut wanted = request.validate(&self.config.limits)?;
        wanted.partitions = Some(wanted.partitions.unwrap_or_else(|| self.default_partitions()));
        let name = wanted.name.clone();
        self.cache.invalidate(&name);
        let body = serde_json::to_vec(&wanted).map_err(internal)?;
        let info_path = format!("/collections/{name}");
        self.metrics.fanout("create_collection", self.client.len());
        let outcomes = join_all(self.all_shards().map(|shard| {
            let (body, info_path, wanted) = (body.clone(), &info_path, &wanted);
            async move {
                let created = self
                    .client
                    .call(
                        &self.metrics,
                        shard,
                        "create_collection",
                        Method::POST,
                        "/collections",
                        Some(body),
                        credentials,
                        None,
                    )
                    .await;
                match created {
                    Ok(_) => CreateOutcome::Created,
                    Err(ShardError::Rejected(e)) if e.code() == "collection_exists" => {
                        let existing = self
                            .client
                            .call_json::<CollectionInfo>(
                                &self.metrics,
                                shard,
                                "info",
                                Method::GET,
                                info_path,
                                None,
                                credentials,
                            )
                            .await;
                        match existing {
                            Ok(info) => CreateOutcome::Exists { same: decide::same_config(&info, wanted) },
                            Err(ShardError::Unavailable { message, .. }) => CreateOutcome::Unavailable(message),
                            Err(ShardError::Rejected(e)) => CreateOutcome::Rejected(e),
                        }
                    }
                    Err(ShardError::Rejected(e)) => CreateOutcome::Rejected(e),
                    Err(ShardError::Unavailable { message, .. }) => CreateOutcome::Unavailable(message),
                }
            }
        }))
        .await;
        let status = decide::decide_create(&name, &outcomes)?;
        if let Some(partitions) = wanted.partitions
            && outcomes.iter().all(|o| matches!(o, CreateOutcome::Created))
        {
            self.assign_fresh(&name, partitions).await;
        }
        Ok(status)
    }

    /// `DELETE /collections/{name}`.
    pub(crate) async fn delete_collection(
        &self,
        name: &str,
        credentials: &Credentials,
    ) -> Result<StatusResponse, ApiError> {
        validate_collection_name(name)?;
        self.cache.invalidate(name);
        let path = format!("/collections/{name}");
        self.metrics.fanout("delete_collection", self.client.len());
        let outcomes = join_all(self.all_shards().map(|shard| {
            let path = &path;
            async move {
                match self
                    .client
                    .call(&self.metrics, shard, "delete_collection", Method::DELETE, path, None, credentials, None)
                    .await
                {
                    Ok(_) => DeleteOutcome::Deleted,
                    Err(ShardError::Rejected(e)) if e.code() == "not_found" => DeleteOutcome::NotFound,
                    Err(ShardError::Rejected(e)) => DeleteOutcome::Rejected(e),
                    Err(ShardError::Unavailable { message, .. }) => DeleteOutcome::Unavailable(message),
                }
            }
        }))
        .await;
        self.cache.invalidate(name);
        self.layouts.forget(name);
        decide::decide_delete(name, &outcomes)
    }

    /// `GET /collections`.
    pub(crate) async fn list_collections(&self, credentials: &Credentials) -> Result<Vec<CollectionInfo>, ApiError> {
        let lists = self
            .gather::<Vec<CollectionInfo>>(
                "list_collections",
                Method::GET,
                "/collections",
                None,
                credentials,
                Tolerance::STRICT,
            )
            .await
            .map_err(ShardError::into_api)?;
        let mut infos = decide::merge_lists(lists.ok.into_iter().map(|(_, l)| l).collect());
        for info in &mut infos {
            self.count_once(info);
        }
        Ok(infos)
    }

    /// `GET /collections/{name}`.
    pub(crate) async fn collection_info(
        &self,
        name: &str,
        credentials: &Credentials,
    ) -> Result<CollectionInfo, ApiError> {
        validate_collection_name(name)?;
        let path = format!("/collections/{name}");
        self.metrics.fanout("info", self.client.len());
        let outcomes = join_all(self.all_shards().map(|shard| {
            let path = &path;
            async move {
                match self
                    .client
                    .call_json::<CollectionInfo>(&self.metrics, shard, "info", Method::GET, path, None, credentials)
                    .await
                {
                    Ok(info) => InfoOutcome::Found(info),
                    Err(ShardError::Rejected(e)) if e.code() == "not_found" => InfoOutcome::NotFound,
                    Err(ShardError::Rejected(e)) => InfoOutcome::Rejected(e),
                    Err(ShardError::Unavailable { message, .. }) => InfoOutcome::Unavailable(message),
                }
            }
        }))
        .await;
        if let Some(info) = self.info_without_some_shards(name, &outcomes, credentials).await {
            return Ok(info);
        }
        let addresses: Vec<&str> = self.all_shards().map(|i| self.client.address(i)).collect();
        let mut info = decide::merge_info(name, outcomes, &addresses)?;
        self.count_once(&mut info);
        self.cache.put(name, Shape { dimension: info.dimension, metric: info.metric, partitions: info.partitions });
        Ok(info)
    }

    /// The info of a collection with copies while some shards are down:
    /// when the shards that answered hold every partition, the size is the
    /// sum over partitions of one live copy's count of live vectors (from
    /// the digests). `None` when that does not apply.
    async fn info_without_some_shards(
        &self,
        name: &str,
        outcomes: &[InfoOutcome],
        credentials: &Credentials,
    ) -> Option<CollectionInfo> {
        if self.replicas() < 2 || !outcomes.iter().any(|o| matches!(o, InfoOutcome::Unavailable(_))) {
            return None;
        }
        let found: Vec<(usize, &CollectionInfo)> = outcomes
            .iter()
            .enumerate()
            .filter_map(|(i, o)| match o {
                InfoOutcome::Found(info) => Some((i, info)),
                _ => None,
            })
            .collect();
        let (_, first) = *found.first()?;
        let partitions = first.partitions?;
        let answered: Vec<usize> = found.iter().map(|(i, _)| *i).collect();
        let served: Vec<(usize, &[u32])> = answered.iter().map(|&i| (i, &[][..])).collect();
        if !self.covers(name, partitions, &served) {
            return None;
        }
        let path = format!("/collections/{name}/digests");
        let mut digests: Vec<Option<Digests>> = vec![None; self.client.len()];
        for &shard in &answered {
            let d = self.client.call_json(&self.metrics, shard, "info", Method::GET, &path, None, credentials).await;
            digests[shard] = d.ok();
        }
        let table = self.table(name, partitions);
        let mut size = 0u64;
        for (p, copies) in table.iter().enumerate() {
            let live = copies.iter().find_map(|&s| digests[s].as_ref().and_then(|d| d.partitions.get(p)))?;
            size += live.live;
        }
        self.metrics.failover("info");
        Some(CollectionInfo {
            size,
            max_level: found.iter().map(|(_, i)| i.max_level).max().unwrap_or(0),
            ..first.clone()
        })
    }

    /// `POST /collections/{name}/vectors`: validated once here, stamped
    /// with one version, split by copy, sent in parallel; acknowledged when
    /// every id reached `write_acks` of its copies.
    pub(crate) async fn upsert(
        &self,
        name: &str,
        request: UpsertRequest,
        credentials: &Credentials,
    ) -> Result<StatusResponse, ApiError> {
        validate_collection_name(name)?;
        let shape = self.shape(name, credentials).await?;
        let mut valid = request.validate(shape.dimension, shape.metric, &self.config.limits)?;
        let total = valid.vectors.len();
        let version = self.clock.next();
        let mut parts: Vec<Vec<VectorRecord>> = vec![Vec::new(); self.client.len()];
        // Each distinct copy set once: what every id of it needs.
        let mut copy_sets: Vec<Vec<usize>> = Vec::new();
        for mut record in valid.vectors.drain(..) {
            record.version = Some(version);
            let copies = self.copies_of(name, &shape, record.id);
            for &shard in &copies {
                if let Some(part) = parts.get_mut(shard) {
                    part.push(record.clone());
                }
            }
            if !copy_sets.contains(&copies) {
                copy_sets.push(copies);
            }
        }
        // A shard known to be down is not waited for when every write it
        // would take still reaches its quorum without it; it is caught up
        // later, like a copy whose write failed.
        let skip: Vec<bool> = self
            .all_shards()
            .map(|shard| {
                !self.client.is_up(shard)
                    && copy_sets.iter().filter(|c| c.contains(&shard)).all(|c| {
                        c.iter().filter(|&&s| s != shard && self.client.is_up(s)).count() >= self.acks_needed(c.len())
                    })
            })
            .collect();
        let touched: Vec<(usize, BTreeSet<u32>, u64)> = parts
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.is_empty())
            .map(|(shard, p)| {
                let partitions = match shape.partitions {
                    Some(n) => p.iter().map(|r| partition_of(name, r.id, n)).collect(),
                    None => BTreeSet::new(),
                };
                (shard, partitions, p.len() as u64)
            })
            .collect();
        let path = format!("/collections/{name}/vectors");
        let mut sends = Vec::new();
        for (shard, vectors) in parts.into_iter().enumerate().filter(|(s, p)| !p.is_empty() && !skip[*s]) {
            let body = serde_json::to_vec(&ValidUpsert { vectors }).map_err(internal)?;
            let path = &path;
            sends.push(async move {
                let r = self
                    .client
                    .call(&self.metrics, shard, "upsert", Method::POST, path, Some(body), credentials, None)
                    .await;
                (shard, r)
            });
        }
        self.metrics.fanout("upsert", sends.len());
        let results = join_all(sends).await;
        let mut acked = Vec::new();
        let mut down = Vec::new();
        let mut missing = None;
        for (shard, result) in results {
            match result {
                Ok(_) => acked.push(shard),
                Err(ShardError::Unavailable { message, .. }) => down.push(message),
                // A copy without the collection (a wiped volume the next sync
                // refills) or placed differently: a miss, unless no copy took it.
                Err(ShardError::Rejected(e)) if copy_refusal(&e) => {
                    down.push(format!("shard {}: {e}", self.client.address(shard)));
                    missing.get_or_insert(e);
                }
                Err(e @ ShardError::Rejected(_)) => return Err(self.forward(name, e)),
            }
        }
        let short = copy_sets
            .iter()
            .any(|copies| copies.iter().filter(|s| acked.contains(s)).count() < self.acks_needed(copies.len()));
        if short
            && acked.is_empty()
            && let Some(e) = missing.clone()
        {
            return Err(self.forward(name, ShardError::Rejected(e)));
        }
        if short && missing.as_ref().is_some_and(|e| e.code() == "partition_not_held") {
            // A copy says the placement moved on: this router's view is
            // behind (a move step it has not seen). Refresh and retry.
            return Err(ApiError::StalePlacement(format!(
                "a copy of collection {name:?} is placed elsewhere now: {}",
                down.join("; ")
            )));
        }
        if short {
            return Err(decide::unavailable(
                &down,
                "the batch may have been applied on some copies; retrying the whole batch is safe \
                 (every write is versioned)",
            ));
        }
        for (shard, partitions, writes) in touched {
            if !acked.contains(&shard) && shape.partitions.is_some() {
                self.missed(shard, name, partitions, writes);
            }
        }
        Ok(StatusResponse::inserted(total))
    }

    /// `GET /collections/{name}/vectors/{id}`: from the first of the id's
    /// copies that answers.
    pub(crate) async fn get_vector(
        &self,
        name: &str,
        id: u64,
        credentials: &Credentials,
    ) -> Result<VectorRecord, ApiError> {
        validate_collection_name(name)?;
        let shape = self.shape(name, credentials).await?;
        let path = format!("/collections/{name}/vectors/{id}");
        let mut down = Vec::new();
        let mut not_found = None;
        for (attempt, shard) in self.copies_of(name, &shape, id).into_iter().enumerate() {
            self.metrics.fanout("get_vector", 1);
            match self.client.call_json(&self.metrics, shard, "get_vector", Method::GET, &path, None, credentials).await
            {
                Ok(record) => {
                    if attempt > 0 {
                        self.metrics.failover("get_vector");
                    }
                    return Ok(record);
                }
                Err(ShardError::Unavailable { message, .. }) => down.push(message),
                // A copy catching up, or placed differently: the next copy.
                Err(ShardError::Rejected(e)) if e.code().starts_with("partition_not_") => {
                    self.wake.notify_one();
                    down.push(e.to_string());
                }
                // A copy that missed the write answers 404; another may have it.
                Err(ShardError::Rejected(e)) if e.code() == "not_found" => {
                    not_found.get_or_insert(e);
                }
                Err(e) => return Err(self.forward(name, e)),
            }
        }
        match not_found {
            Some(e) => Err(self.forward(name, ShardError::Rejected(e))),
            None => Err(decide::unavailable(&down, "")),
        }
    }

    /// `DELETE /collections/{name}/vectors/{id}`: a versioned delete at
    /// every copy; acknowledged like an upsert; 404 when no copy that
    /// answered held the id.
    pub(crate) async fn delete_vector(
        &self,
        name: &str,
        id: u64,
        credentials: &Credentials,
    ) -> Result<StatusResponse, ApiError> {
        validate_collection_name(name)?;
        let shape = self.shape(name, credentials).await?;
        let copies = self.copies_of(name, &shape, id);
        let needed = self.acks_needed(copies.len());
        let up = copies.iter().filter(|&&s| self.client.is_up(s)).count();
        // As for upserts: a copy known down is skipped when the others suffice.
        let targets: Vec<usize> = copies.iter().copied().filter(|&s| up < needed || self.client.is_up(s)).collect();
        let path = format!("/collections/{name}/vectors/{id}?version={}", self.clock.next());
        self.metrics.fanout("delete_vector", targets.len());
        let results = join_all(targets.iter().map(|&shard| {
            let path = &path;
            async move {
                let r = self
                    .client
                    .call_json::<StatusResponse>(
                        &self.metrics,
                        shard,
                        "delete_vector",
                        Method::DELETE,
                        path,
                        None,
                        credentials,
                    )
                    .await;
                (shard, r)
            }
        }))
        .await;
        let (mut acked, mut existed) = (Vec::new(), false);
        let mut down = Vec::new();
        for (shard, result) in results {
            match result {
                Ok(status) => {
                    acked.push(shard);
                    existed |= status.status == StatusResponse::deleted().status;
                }
                Err(ShardError::Unavailable { message, .. }) => down.push(message),
                Err(ShardError::Rejected(e)) if copy_refusal(&e) && copies.len() > 1 => {
                    down.push(format!("shard {}: {e}", self.client.address(shard)));
                }
                Err(e) => return Err(self.forward(name, e)),
            }
        }
        if acked.len() < needed {
            return Err(decide::unavailable(&down, "retrying the delete is safe (it is versioned)"));
        }
        if let Some(partitions) = shape.partitions {
            for &shard in copies.iter().filter(|s| !acked.contains(s)) {
                self.missed(shard, name, [partition_of(name, id, partitions)], 1);
            }
        }
        if !existed {
            return Err(ApiError::not_found_vector(name, id));
        }
        Ok(StatusResponse::deleted())
    }

    /// `POST /collections/{name}/search`: every shard, merged top-k.
    pub(crate) async fn search(
        &self,
        name: &str,
        request: SearchRequest,
        credentials: &Credentials,
    ) -> Result<Searched<Vec<SearchHit>>, ApiError> {
        validate_collection_name(name)?;
        let shape = self.shape(name, credentials).await?;
        let mut search = request.validate(shape.dimension, &self.config.limits)?;
        let allow_partial = std::mem::take(&mut search.allow_partial);
        let body = serde_json::to_vec(&search).map_err(internal)?;
        let path = format!("/collections/{name}/search");
        let tolerance = self.tolerance(name, &shape, allow_partial);
        let gathered = self
            .gather::<Vec<SearchHit>>("search", Method::POST, &path, Some(body), credentials, tolerance)
            .await
            .map_err(|e| self.forward(name, e))?;
        let partial = self.note_partial(&gathered.failed);
        let hits = SearchHit::merge_top_k(gathered.ok.into_iter().map(|(_, h)| h), search.k);
        Ok(Searched { hits, partial })
    }

    /// `POST /collections/{name}/search/batch`: the whole batch to every
    /// shard, merged per search. Partial results are allowed only if every
    /// search in the batch allows them.
    pub(crate) async fn search_batch(
        &self,
        name: &str,
        request: BatchSearchRequest,
        credentials: &Credentials,
    ) -> Result<Searched<Vec<Vec<SearchHit>>>, ApiError> {
        validate_collection_name(name)?;
        let shape = self.shape(name, credentials).await?;
        let mut batch = request.validate(shape.dimension, &self.config.limits)?;
        let allow_partial = batch.searches.iter().all(|s| s.allow_partial);
        for s in &mut batch.searches {
            s.allow_partial = false;
        }
        let body = serde_json::to_vec(&batch).map_err(internal)?;
        let path = format!("/collections/{name}/search/batch");
        let tolerance = self.tolerance(name, &shape, allow_partial);
        let gathered = self
            .gather::<Vec<Vec<SearchHit>>>("search_batch", Method::POST, &path, Some(body), credentials, tolerance)
            .await
            .map_err(|e| self.forward(name, e))?;
        let n = batch.searches.len();
        let mut per_search: Vec<Vec<Vec<SearchHit>>> = vec![Vec::with_capacity(gathered.ok.len()); n];
        for (shard, lists) in gathered.ok {
            if lists.len() != n {
                let why = format!("batch search answered {} result lists for {n} searches", lists.len());
                return Err(self.client.invalid_response(&self.metrics, shard, &why).into_api());
            }
            for (slot, hits) in per_search.iter_mut().zip(lists) {
                slot.push(hits);
            }
        }
        let partial = self.note_partial(&gathered.failed);
        let hits =
            per_search.into_iter().zip(&batch.searches).map(|(lists, s)| SearchHit::merge_top_k(lists, s.k)).collect();
        Ok(Searched { hits, partial })
    }

    fn note_partial(&self, failed: &[String]) -> bool {
        if failed.is_empty() {
            return false;
        }
        tracing::warn!(failed = %failed.join("; "), "answering with partial results");
        self.metrics.partial_result();
        true
    }

    /// `GET /collections/{name}/ids`: every shard's page, merged.
    pub(crate) async fn ids(
        &self,
        name: &str,
        query: IdsQuery,
        credentials: &Credentials,
    ) -> Result<IdsPage, ApiError> {
        validate_collection_name(name)?;
        let q = query.validate(&self.config.limits)?;
        let shape = self.shape(name, credentials).await?;
        let path = match q.after {
            Some(after) => format!("/collections/{name}/ids?after={after}&limit={}", q.limit),
            None => format!("/collections/{name}/ids?limit={}", q.limit),
        };
        let pages = self
            .gather::<IdsPage>("ids", Method::GET, &path, None, credentials, self.tolerance(name, &shape, false))
            .await
            .map_err(|e| self.forward(name, e))?;
        Ok(IdsPage::merge(pages.ok.into_iter().map(|(_, p)| p), q.limit))
    }

    /// `GET /ready`: Ok as soon as one shard has recovered its data (it
    /// answers `/cluster/assignment`; a shard's own `/ready` also waits for
    /// its partitions to catch up, which needs this router); else 503 with
    /// every shard's failure.
    pub(crate) async fn ready(&self) -> Result<StatusResponse, ApiError> {
        let timeout = READY_TIMEOUT.min(self.config.request_timeout());
        let mut pending: FuturesUnordered<_> = self
            .all_shards()
            .map(|shard| {
                self.client.call(
                    &self.metrics,
                    shard,
                    "ready",
                    Method::GET,
                    "/cluster/assignment",
                    None,
                    &self.internal,
                    Some(timeout),
                )
            })
            .collect();
        let mut failures = Vec::new();
        while let Some(result) = pending.next().await {
            match result {
                Ok(_) => return Ok(StatusResponse::ok()),
                Err(ShardError::Unavailable { message, .. }) => failures.push(message),
                Err(ShardError::Rejected(e)) => failures.push(e.to_string()),
            }
        }
        Err(ApiError::Unavailable(format!("no shard is ready: {}", failures.join("; "))))
    }

    /// `GET /cluster`: every shard's liveness and vector count, and every
    /// partitioned collection's placement, checked now.
    pub(crate) async fn cluster(&self) -> ClusterStatus {
        let answers = join_all(self.all_shards().map(|shard| async move {
            let list = self
                .client
                .call_json::<Vec<CollectionInfo>>(
                    &self.metrics,
                    shard,
                    "cluster",
                    Method::GET,
                    "/collections",
                    None,
                    &self.internal,
                )
                .await;
            let vectors = list.as_ref().ok().map(|l| l.iter().map(|c| c.size).fold(0u64, u64::saturating_add));
            let assignment = self
                .client
                .call_json::<ShardAssignment>(
                    &self.metrics,
                    shard,
                    "cluster",
                    Method::GET,
                    "/cluster/assignment",
                    None,
                    &self.internal,
                )
                .await
                .ok();
            let health = self.client.health(shard);
            let status = ShardStatus {
                address: self.client.address(shard).to_owned(),
                up: health.up,
                last_error: health.last_error,
                vectors,
                partitions: 0,
                draining: self.draining(shard),
                removable: false,
            };
            (status, list.ok(), assignment)
        }))
        .await;
        let state_of = |shard: usize, name: &str, p: usize| {
            answers.get(shard).and_then(|(_, _, a)| a.as_ref()).and_then(|a| {
                a.collections
                    .iter()
                    .find(|c| c.name == name)
                    .and_then(|c| c.held.as_ref())
                    .and_then(|h| h.iter().find(|h| h.partition as usize == p))
                    .map(|h| h.state)
            })
        };
        let mut collections: Vec<CollectionPlacement> = Vec::new();
        let mut moves: Vec<MoveStatus> = Vec::new();
        let mut shards: Vec<ShardStatus> = answers.iter().map(|(status, _, _)| status.clone()).collect();
        for (_, list, _) in &answers {
            for info in list.iter().flatten() {
                let Some(partitions) = info.partitions else { continue };
                if collections.iter().any(|c| c.name == info.name) {
                    continue;
                }
                let table = self.table(&info.name, partitions);
                let copies =
                    table.iter().map(|row| row.iter().map(|&s| self.client.address(s).to_owned()).collect()).collect();
                let states = table
                    .iter()
                    .enumerate()
                    .map(|(p, row)| row.iter().map(|&s| state_of(s, &info.name, p)).collect())
                    .collect();
                let desired = self.target(&info.name, partitions, &table, |s, p| state_of(s, &info.name, p));
                let moving: Vec<u32> = table
                    .iter()
                    .zip(desired.iter())
                    .enumerate()
                    .filter(|(_, (now, want))| {
                        let mut now = (*now).clone();
                        let mut want = (*want).clone();
                        now.sort_unstable();
                        want.sort_unstable();
                        now != want
                    })
                    .map(|(p, _)| p as u32)
                    .collect();
                let progress = self.moves.lock().map(|m| m.clone()).unwrap_or_default();
                let names = |row: &[usize]| row.iter().map(|&s| self.client.address(s).to_owned()).collect();
                for &p in &moving {
                    let (now, want) = (&table[p as usize], &desired[p as usize]);
                    let arrived = want.iter().all(|&s| {
                        now.contains(&s) && state_of(s, &info.name, p as usize) == Some(PartitionState::Ready)
                    });
                    let known = progress.get(&(info.name.clone(), p));
                    moves.push(MoveStatus {
                        collection: info.name.clone(),
                        partition: p,
                        now: names(now),
                        target: names(want),
                        state: if arrived { "finishing" } else { "copying" }.to_owned(),
                        vectors: known.map(|m| m.vectors),
                        bytes: known.map(|m| m.bytes),
                        millis: known.map(|m| m.started.elapsed().as_millis() as u64),
                    });
                }
                for row in table.iter() {
                    for &s in row {
                        if let Some(status) = shards.get_mut(s) {
                            status.partitions += 1;
                        }
                    }
                }
                collections.push(CollectionPlacement { name: info.name.clone(), partitions, copies, states, moving });
            }
        }
        collections.sort_by(|a, b| a.name.cmp(&b.name));
        for status in &mut shards {
            status.removable = status.draining && status.partitions == 0;
        }
        let epoch = answers.iter().filter_map(|(_, _, a)| a.as_ref().map(|a| a.epoch)).max().unwrap_or(0);
        let assignments: Vec<Option<ShardAssignment>> = answers.into_iter().map(|(_, _, a)| a).collect();
        ClusterStatus {
            other_routers: self.other_routers(&assignments),
            replication_factor: self.replicas(),
            write_quorum: self.acks_needed(self.replicas()),
            placement: self.placement_id(),
            epoch,
            moving: collections.iter().map(|c| c.moving.len()).sum(),
            shards,
            collections,
            moves,
        }
    }
}
