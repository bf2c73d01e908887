//! The shard's side of the cluster: which partitions of which collections
//! this node holds, their peers, and whether each is filling or ready
//! (see `ruvector_api::membership` for the protocol).
//!
//! A node used on its own never receives an assignment and is unaffected:
//! every check here passes when a collection has none. Once a router has
//! assigned a collection:
//!
//! - a write or read of an id in a partition not held → 421
//!   `partition_not_held` (the asker's placement differs from this node's);
//! - a read by id of a filling partition → 421 `partition_not_ready`
//!   (writes are taken: that is how a filling copy keeps up);
//! - searches and id listings leave filling partitions out and name them
//!   in the `x-ruvector-unready-partitions` header.
//!
//! The assignment is kept in `<data>/cluster.json` (written to a temporary
//! file, synced, renamed; its last line a CRC-32 of the JSON, checked at
//! load), without states: on start every held partition
//! that has peers is filling — the node cannot know what it missed while
//! down — and one without peers (a single copy) is ready.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use ruvector_api::{
    ApiError, AssignedPartition, AssignmentRequest, CollectionHolding, EPOCH_HEADER, HeldPartition, PLANNER_LEASE_MS,
    PartitionState, PartitionStateRequest, RouterSeen, ShardAssignment, partition_of,
};
use serde::{Deserialize, Serialize};

/// Middleware of the collection routes: a request a router routed by an
/// older placement epoch (`x-ruvector-epoch`) than this node has seen gets
/// 421 `stale_placement` before anything else happens; a malformed epoch
/// is a 400.
pub(crate) async fn fence(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let epoch = match req.headers().get(EPOCH_HEADER).map(|v| v.to_str().ok().and_then(|s| s.parse::<u64>().ok())) {
        None => None,
        Some(Some(epoch)) => Some(epoch),
        Some(None) => {
            let e = ApiError::BadRequest(format!("{EPOCH_HEADER} must be a placement epoch (a number)"));
            return crate::error::HttpError(e).into_response();
        }
    };
    match state.membership().check_epoch(epoch) {
        Ok(()) => next.run(req).await,
        Err(e) => crate::error::HttpError(e).into_response(),
    }
}

/// The file under the data directory.
pub(crate) const FILE_NAME: &str = "cluster.json";

/// The last line of `cluster.json`: the CRC-32 of the JSON before it, so
/// a flipped bit (a digit of an epoch, a partition number) is refused
/// rather than loaded as another valid assignment.
const CHECKSUM_PREFIX: &str = "crc32 ";

/// The JSON of a `cluster.json` file, its checksum line verified. A file
/// without one (written before checksums) is taken as it is.
fn checked_body(bytes: &[u8]) -> Result<&[u8], String> {
    let text = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let Some(start) = text.iter().rposition(|&b| b == b'\n').map(|i| i + 1) else { return Ok(bytes) };
    let Some(hex) = text[start..].strip_prefix(CHECKSUM_PREFIX.as_bytes()) else { return Ok(bytes) };
    let body = &text[..start - 1];
    let stored = std::str::from_utf8(hex).ok().and_then(|h| u32::from_str_radix(h, 16).ok());
    match stored {
        Some(stored) if stored == crc32fast::hash(body) => Ok(body),
        _ => Err(format!("checksum mismatch: the file is damaged (its {CHECKSUM_PREFIX}line at byte offset {start})")),
    }
}

/// One held partition.
#[derive(Debug, Clone)]
struct Part {
    peers: Vec<String>,
    state: PartitionState,
    generation: u64,
    purged_before: u64,
    /// Ready at least once (see `HeldPartition::whole`); kept in the file.
    whole: bool,
}

/// The held partitions of one collection, and the answers to "may id X be
/// read / written here" derived from them.
#[derive(Debug, Clone)]
pub(crate) struct Gate {
    partitions: u32,
    parts: BTreeMap<u32, Part>,
    /// Partitions moved away whose data is still being dropped here: never
    /// read (not held), and their ids are left out of searches.
    released: BTreeSet<u32>,
}

impl Gate {
    fn state(&self, id: u64, name: &str) -> Option<PartitionState> {
        self.parts.get(&partition_of(name, id, self.partitions)).map(|p| p.state)
    }

    /// Whether writes to `id` belong here: its partition is held, filling
    /// or ready (a released one's data is on its way out).
    pub(crate) fn writable(&self, name: &str, id: u64) -> bool {
        self.state(id, name).is_some()
    }

    /// Whether a search or listing may return `id`.
    pub(crate) fn readable(&self, name: &str, id: u64) -> bool {
        self.state(id, name) == Some(PartitionState::Ready)
    }

    /// Whether any held partition is ready (else no id may be read here).
    pub(crate) fn any_readable(&self) -> bool {
        self.parts.values().any(|p| p.state == PartitionState::Ready)
    }

    /// The held partitions that are filling (for the unready header).
    pub(crate) fn filling(&self) -> Vec<u32> {
        self.parts.iter().filter(|(_, p)| p.state == PartitionState::Filling).map(|(&n, _)| n).collect()
    }

    /// Every partition reads leave out although their data is here: the
    /// filling ones and the released ones (a router that has not seen the
    /// move yet must not count on them). Ascending.
    pub(crate) fn left_out(&self) -> Vec<u32> {
        let mut out = self.filling();
        out.extend(&self.released);
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Whether reads must be filtered: some held partition is filling, or
    /// the data of a released one is still here.
    pub(crate) fn filters(&self) -> bool {
        !self.released.is_empty() || self.parts.values().any(|p| p.state == PartitionState::Filling)
    }
}

/// Partitions of a collection to drop from this node (moved elsewhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Released {
    pub(crate) collection: String,
    pub(crate) partitions: u32,
    pub(crate) released: Vec<u32>,
}

/// What `cluster.json` holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Persisted {
    placement: Option<String>,
    #[serde(default)]
    epoch: u64,
    collections: BTreeMap<String, PersistedCollection>,
}

#[derive(Debug, Serialize, Deserialize)]
struct PersistedCollection {
    partitions: u32,
    held: Vec<AssignedPartition>,
    /// Partition → the version below which its tombstones were purged.
    #[serde(default)]
    purged: BTreeMap<u32, u64>,
    /// Partitions moved away whose data is not dropped yet.
    #[serde(default)]
    released: BTreeSet<u32>,
    /// Held partitions a move is filling that were never ready here: after
    /// a restart they still wait for another copy.
    #[serde(default)]
    unfilled: BTreeSet<u32>,
}

#[derive(Debug, Default)]
struct State {
    placement: Option<String>,
    epoch: u64,
    /// The router driving moves (its start time) and when it last claimed
    /// it; not kept across restarts (any router may claim a fresh shard).
    planner: u64,
    planner_at: Option<std::time::Instant>,
    gates: BTreeMap<String, Arc<Gate>>,
    /// Router placement fingerprints and when each last probed (in memory
    /// only; see [`ROUTER_MEMORY`]).
    routers: BTreeMap<String, std::time::Instant>,
}

/// How long a router's probe is remembered, and how many fingerprints.
const ROUTER_MEMORY: std::time::Duration = std::time::Duration::from_secs(60);
const MAX_ROUTERS_SEEN: usize = 32;

/// The node's assignment. Cheap reads (an `Arc` per collection).
#[derive(Debug, Default)]
pub(crate) struct Membership {
    path: Option<PathBuf>,
    state: RwLock<State>,
}

fn io_error(what: &str, path: &std::path::Path, e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("{what} {}: {e}", path.display()))
}

impl Membership {
    /// Loads `<data_dir>/cluster.json` if it exists: held partitions with
    /// peers start filling.
    pub(crate) fn load(data_dir: &std::path::Path) -> Result<Membership, String> {
        let path = data_dir.join(FILE_NAME);
        let persisted: Persisted = match std::fs::read(&path) {
            Ok(bytes) => {
                let body = checked_body(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
                serde_json::from_slice(body).map_err(|e| format!("{}: {e}", path.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Persisted::default(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let gates = persisted
            .collections
            .into_iter()
            .map(|(name, c)| {
                let parts = c
                    .held
                    .into_iter()
                    .map(|a| {
                        let state = if a.peers.is_empty() { PartitionState::Ready } else { PartitionState::Filling };
                        let purged_before = c.purged.get(&a.partition).copied().unwrap_or(0);
                        let whole = !c.unfilled.contains(&a.partition);
                        (a.partition, Part { peers: a.peers, state, generation: 1, purged_before, whole })
                    })
                    .collect();
                (name, Arc::new(Gate { partitions: c.partitions, parts, released: c.released }))
            })
            .collect();
        let state = State { placement: persisted.placement, epoch: persisted.epoch, gates, ..State::default() };
        Ok(Membership { path: Some(path), state: RwLock::new(state) })
    }

    /// Held partitions that are filling, over every collection.
    pub(crate) fn filling(&self) -> usize {
        self.state.read().map_or(0, |s| s.gates.values().map(|g| g.filling().len()).sum())
    }

    /// The gate of collection `name`, if a router assigned it.
    pub(crate) fn gate(&self, name: &str) -> Option<Arc<Gate>> {
        self.state.read().ok()?.gates.get(name).cloned()
    }

    /// 421 `partition_not_held` when an id of `ids` is in a partition this
    /// node does not hold.
    pub(crate) fn check_write(&self, name: &str, ids: impl IntoIterator<Item = u64>) -> Result<(), ApiError> {
        let Some(gate) = self.gate(name) else { return Ok(()) };
        for id in ids {
            if gate.state(id, name).is_none() {
                return Err(not_held(name, id, &gate));
            }
        }
        Ok(())
    }

    /// 421 `partition_not_held` when a router assigned collection `name`
    /// and `partition` is not among what it holds (filling or ready).
    pub(crate) fn check_partition(&self, name: &str, partition: u32) -> Result<(), ApiError> {
        let Some(gate) = self.gate(name) else { return Ok(()) };
        if gate.parts.contains_key(&partition) {
            Ok(())
        } else {
            Err(ApiError::PartitionNotHeld(format!(
                "partition {partition} of collection {name:?} is not held by this shard; the placement differs"
            )))
        }
    }

    /// 421 when `id` may not be read here (not held, or filling).
    pub(crate) fn check_read(&self, name: &str, id: u64) -> Result<(), ApiError> {
        let Some(gate) = self.gate(name) else { return Ok(()) };
        match gate.state(id, name) {
            None => Err(not_held(name, id, &gate)),
            Some(PartitionState::Filling) => Err(ApiError::PartitionNotReady(format!(
                "partition {} of collection {name:?} (vector {id}) is catching up on this shard; read another copy",
                partition_of(name, id, gate.partitions)
            ))),
            Some(PartitionState::Ready) => Ok(()),
        }
    }

    /// Records a router's probe under its placement fingerprint (header
    /// [`ruvector_api::PLACEMENT_HEADER`]); forgets probes older than
    /// [`ROUTER_MEMORY`] and keeps at most [`MAX_ROUTERS_SEEN`].
    pub(crate) fn router_seen(&self, placement: &str) {
        if placement.is_empty() || placement.len() > ruvector_api::MAX_PLACEMENT_LEN {
            return;
        }
        let Ok(mut state) = self.state.write() else { return };
        let now = std::time::Instant::now();
        state.routers.retain(|_, at| now.duration_since(*at) < ROUTER_MEMORY);
        if state.routers.len() >= MAX_ROUTERS_SEEN && !state.routers.contains_key(placement) {
            return;
        }
        state.routers.insert(placement.to_owned(), now);
    }

    /// `GET /cluster/assignment`, over the node's partitioned collections
    /// (`name`, `partitions`).
    pub(crate) fn report(&self, collections: Vec<(String, u32)>) -> ShardAssignment {
        let Ok(state) = self.state.read() else {
            return ShardAssignment {
                placement: None,
                epoch: 0,
                planner: 0,
                planner_age_ms: 0,
                collections: Vec::new(),
                routers: Vec::new(),
            };
        };
        let collections = collections
            .into_iter()
            .map(|(name, partitions)| {
                let held = state.gates.get(&name).map(|g| {
                    g.parts
                        .iter()
                        .map(|(&partition, p)| HeldPartition {
                            partition,
                            peers: p.peers.clone(),
                            state: p.state,
                            generation: p.generation,
                            purged_before: p.purged_before,
                            whole: p.whole,
                        })
                        .collect()
                });
                CollectionHolding { name, partitions, held }
            })
            .collect();
        let planner_age_ms = state.planner_at.map_or(u64::MAX, |at| at.elapsed().as_millis() as u64);
        ShardAssignment {
            placement: state.placement.clone(),
            epoch: state.epoch,
            planner: state.planner,
            planner_age_ms,
            collections,
            routers: state
                .routers
                .iter()
                .map(|(placement, at)| RouterSeen {
                    placement: placement.clone(),
                    age_ms: at.elapsed().as_millis() as u64,
                })
                .collect(),
        }
    }

    /// 421 `stale_placement` when a router routes by an older epoch than
    /// this node has seen (`None`: not a router's request, or an old one).
    pub(crate) fn check_epoch(&self, epoch: Option<u64>) -> Result<(), ApiError> {
        let Some(asked) = epoch else { return Ok(()) };
        let current = self.state.read().map_or(0, |s| s.epoch);
        if asked < current {
            return Err(ApiError::StalePlacement(format!(
                "the request was routed by placement epoch {asked}, this shard has seen epoch {current}: \
                 refresh the placement and retry"
            )));
        }
        Ok(())
    }

    /// Released partitions whose data is still to be dropped.
    pub(crate) fn pending_releases(&self) -> Vec<Released> {
        let Ok(state) = self.state.read() else { return Vec::new() };
        state
            .gates
            .iter()
            .filter(|(_, g)| !g.released.is_empty())
            .map(|(name, g)| Released {
                collection: name.clone(),
                partitions: g.partitions,
                released: g.released.iter().copied().collect(),
            })
            .collect()
    }

    /// Records that the data of `released` partitions of `name` is gone.
    pub(crate) fn release_done(&self, name: &str, released: &[u32]) -> Result<(), ApiError> {
        let mut state = self.state.write().map_err(|_| ApiError::internal("membership lock poisoned"))?;
        let Some(gate) = state.gates.get(name) else { return Ok(()) };
        let mut gate = (**gate).clone();
        gate.released.retain(|p| !released.contains(p));
        self.commit(&mut state, name, Some(gate))
    }

    /// `PUT /cluster/assignment`. `existing(name)` gives the partition count
    /// of a collection this node has (`None`: it has no such collection).
    /// Partitions newly held start filling unless the collection is fresh;
    /// partitions still held keep their state; the file is rewritten.
    pub(crate) fn assign(
        &self,
        request: AssignmentRequest,
        existing: impl Fn(&str) -> Option<Option<u32>>,
    ) -> Result<Vec<Released>, ApiError> {
        request.validate()?;
        for c in &request.collections {
            match existing(&c.name) {
                None => return Err(ApiError::not_found_collection(&c.name)),
                Some(p) if p != Some(c.partitions) => {
                    return Err(ApiError::InvalidParameter(format!(
                        "collection {:?} has {} partitions here, not {}",
                        c.name,
                        p.map_or_else(|| "no".to_owned(), |p| p.to_string()),
                        c.partitions
                    )));
                }
                Some(_) => {}
            }
        }
        let mut state = self.state.write().map_err(|_| ApiError::internal("membership lock poisoned"))?;
        // A router that just created collections everywhere places them
        // (planner 0, all fresh, unknown here): nothing held changes, so
        // neither an older epoch nor another router's claim refuses it.
        let fresh_only = request.planner == 0
            && !request.collections.is_empty()
            && request.collections.iter().all(|c| c.fresh && !state.gates.contains_key(&c.name));
        if request.epoch < state.epoch && !fresh_only {
            return Err(ApiError::StalePlacement(format!(
                "assignment of placement epoch {} is older than this shard's {}",
                request.epoch, state.epoch
            )));
        }
        let claim_fresh = state.planner_at.is_some_and(|at| at.elapsed().as_millis() < u128::from(PLANNER_LEASE_MS));
        if request.planner < state.planner && claim_fresh && !fresh_only {
            return Err(ApiError::StalePlacement(format!(
                "a router started later ({}) drives the placement; this one ({}) does not",
                state.planner, request.planner
            )));
        }
        if request.planner > 0 {
            state.planner = request.planner;
            state.planner_at = Some(std::time::Instant::now());
        }
        let mut next = state.gates.clone();
        let mut newly_released = Vec::new();
        for c in request.collections {
            let old = next.get(&c.name).cloned();
            let parts = c
                .held
                .into_iter()
                .map(|a| {
                    let kept = old.as_ref().and_then(|g| g.parts.get(&a.partition));
                    let part = match kept {
                        Some(p) => Part { peers: a.peers, ..p.clone() },
                        None if c.fresh || a.peers.is_empty() => Part {
                            peers: a.peers,
                            state: PartitionState::Ready,
                            generation: 1,
                            purged_before: 0,
                            whole: true,
                        },
                        None => Part {
                            peers: a.peers,
                            state: PartitionState::Filling,
                            generation: 1,
                            purged_before: 0,
                            whole: false,
                        },
                    };
                    (a.partition, part)
                })
                .collect::<BTreeMap<u32, Part>>();
            // Partitions held before and not now moved away: their data goes.
            let mut released: BTreeSet<u32> = old.as_ref().map(|g| g.released.clone()).unwrap_or_default();
            let dropped: Vec<u32> = old
                .as_ref()
                .map(|g| g.parts.keys().filter(|p| !parts.contains_key(p)).copied().collect())
                .unwrap_or_default();
            released.extend(&dropped);
            released.retain(|p| !parts.contains_key(p));
            if !released.is_empty() {
                newly_released.push(Released {
                    collection: c.name.clone(),
                    partitions: c.partitions,
                    released: released.iter().copied().collect(),
                });
            }
            next.insert(c.name, Arc::new(Gate { partitions: c.partitions, parts, released }));
        }
        let epoch = request.epoch.max(state.epoch);
        let placement = match (&state.placement, fresh_only) {
            (Some(kept), true) => kept.clone(),
            _ => request.placement,
        };
        self.persist(&placement, epoch, &next)?;
        state.placement = Some(placement);
        state.epoch = epoch;
        state.gates = next;
        Ok(newly_released)
    }

    /// `POST /cluster/partitions`: the partitions whose state changed or
    /// already was the requested one.
    pub(crate) fn set_state(&self, request: &PartitionStateRequest) -> Result<Vec<u32>, ApiError> {
        let mut state = self.state.write().map_err(|_| ApiError::internal("membership lock poisoned"))?;
        let Some(gate) = state.gates.get(&request.collection) else {
            return Err(ApiError::PartitionNotHeld(format!(
                "collection {:?} has no partitions assigned to this shard",
                request.collection
            )));
        };
        let mut gate = (**gate).clone();
        let mut changed = Vec::new();
        let mut became_whole = false;
        for p in &request.partitions {
            let Some(part) = gate.parts.get_mut(&p.partition) else { continue };
            match request.state {
                PartitionState::Filling => {
                    part.state = PartitionState::Filling;
                    part.generation += 1;
                }
                PartitionState::Ready if part.generation == p.generation => {
                    part.state = PartitionState::Ready;
                    became_whole |= !part.whole;
                    part.whole = true;
                }
                PartitionState::Ready => continue,
            }
            changed.push(p.partition);
        }
        if became_whole {
            // Written before it counts: a restart must not forget that the
            // copy was filled.
            let name = request.collection.clone();
            self.commit(&mut state, &name, Some(gate))?;
        } else {
            state.gates.insert(request.collection.clone(), Arc::new(gate));
        }
        Ok(changed)
    }

    /// The version below which tombstones of `partition` were purged here.
    pub(crate) fn purged_before(&self, name: &str, partition: u32) -> u64 {
        self.gate(name).and_then(|g| g.parts.get(&partition).map(|p| p.purged_before)).unwrap_or(0)
    }

    /// Records a purge of `partitions` below `before` (kept in the file, so
    /// the mark outlives restarts; the tombstones' removal itself reaches
    /// disk with the next checkpoint).
    pub(crate) fn note_purged(&self, name: &str, partitions: &[u32], before: u64) -> Result<(), ApiError> {
        let mut state = self.state.write().map_err(|_| ApiError::internal("membership lock poisoned"))?;
        let Some(gate) = state.gates.get(name) else { return Ok(()) };
        let mut gate = (**gate).clone();
        let mut moved = false;
        for p in partitions {
            if let Some(part) = gate.parts.get_mut(p)
                && part.purged_before < before
            {
                part.purged_before = before;
                moved = true;
            }
        }
        if !moved {
            return Ok(());
        }
        self.commit(&mut state, name, Some(gate))
    }

    /// Forgets a dropped collection.
    pub(crate) fn forget(&self, name: &str) -> Result<(), ApiError> {
        let mut state = self.state.write().map_err(|_| ApiError::internal("membership lock poisoned"))?;
        if !state.gates.contains_key(name) {
            return Ok(());
        }
        self.commit(&mut state, name, None)
    }

    /// Replaces (or, with `None`, removes) the gate of `name`: written to
    /// the file first, then made current.
    fn commit(&self, state: &mut State, name: &str, gate: Option<Gate>) -> Result<(), ApiError> {
        let mut next = state.gates.clone();
        match gate {
            Some(gate) => next.insert(name.to_owned(), Arc::new(gate)),
            None => next.remove(name),
        };
        let placement = state.placement.clone().unwrap_or_default();
        self.persist(&placement, state.epoch, &next)?;
        state.gates = next;
        Ok(())
    }

    fn persist(&self, placement: &str, epoch: u64, gates: &BTreeMap<String, Arc<Gate>>) -> Result<(), ApiError> {
        let Some(path) = &self.path else { return Ok(()) };
        let persisted = Persisted {
            placement: (!placement.is_empty()).then(|| placement.to_owned()),
            epoch,
            collections: gates
                .iter()
                .map(|(name, g)| {
                    let held = g
                        .parts
                        .iter()
                        .map(|(&partition, p)| AssignedPartition { partition, peers: p.peers.clone() })
                        .collect();
                    let purged = g
                        .parts
                        .iter()
                        .filter(|(_, p)| p.purged_before > 0)
                        .map(|(&n, p)| (n, p.purged_before))
                        .collect();
                    let unfilled = g.parts.iter().filter(|(_, p)| !p.whole).map(|(&n, _)| n).collect();
                    let c = PersistedCollection {
                        partitions: g.partitions,
                        held,
                        purged,
                        released: g.released.clone(),
                        unfilled,
                    };
                    (name.clone(), c)
                })
                .collect(),
        };
        let mut bytes = serde_json::to_vec_pretty(&persisted).map_err(|e| ApiError::internal(e.to_string()))?;
        bytes.extend_from_slice(format!("\n{CHECKSUM_PREFIX}{:08x}\n", crc32fast::hash(&bytes)).as_bytes());
        let tmp = path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| io_error("writing", path, e))
    }
}

fn not_held(name: &str, id: u64, gate: &Gate) -> ApiError {
    ApiError::PartitionNotHeld(format!(
        "partition {} of collection {name:?} (vector {id}) is not held by this shard; the placement differs",
        partition_of(name, id, gate.partitions)
    ))
}

#[cfg(test)]
mod tests {
    use ruvector_api::{CollectionAssignment, PartitionGeneration};

    use super::*;

    fn assign(m: &Membership, held: &[u32], peers: &[&str], fresh: bool) -> Result<(), ApiError> {
        assign_at(m, held, peers, fresh, 0).map(|_| ())
    }

    fn assign_at(
        m: &Membership,
        held: &[u32],
        peers: &[&str],
        fresh: bool,
        epoch: u64,
    ) -> Result<Vec<Released>, ApiError> {
        let held = held
            .iter()
            .map(|&partition| AssignedPartition { partition, peers: peers.iter().map(|s| (*s).to_owned()).collect() })
            .collect();
        let request = AssignmentRequest {
            placement: "p".into(),
            epoch,
            planner: 0,
            collections: vec![CollectionAssignment { name: "docs".into(), partitions: 4, held, fresh }],
        };
        m.assign(request, |name| (name == "docs").then_some(Some(4)))
    }

    #[test]
    fn epochs_fence_and_moved_partitions_are_released() {
        let dir = tempfile::tempdir().expect("dir");
        let m = Membership::load(dir.path()).expect("load");
        assert!(assign_at(&m, &[0, 2], &[], true, 3).expect("assign").is_empty());
        assert!(m.check_epoch(Some(3)).is_ok() && m.check_epoch(None).is_ok() && m.check_epoch(Some(9)).is_ok());
        assert_eq!(m.check_epoch(Some(2)).expect_err("stale").code(), "stale_placement");
        assert_eq!(assign_at(&m, &[0], &[], true, 2).expect_err("older").code(), "stale_placement");
        // Partition 0 moves away at epoch 4: released, not readable, kept
        // across a restart until its data is dropped.
        let released = assign_at(&m, &[2], &[], false, 4).expect("move");
        assert_eq!(released, vec![Released { collection: "docs".into(), partitions: 4, released: vec![0] }]);
        assert_eq!(m.check_read("docs", id_in(0)).expect_err("gone").code(), "partition_not_held");
        assert!(m.gate("docs").expect("gate").filters(), "its ids are filtered out of reads");
        let reloaded = Membership::load(dir.path()).expect("reload");
        assert_eq!(reloaded.pending_releases(), released);
        assert_eq!(reloaded.report(vec![("docs".into(), 4)]).epoch, 4);
        reloaded.release_done("docs", &[0]).expect("done");
        assert!(reloaded.pending_releases().is_empty());
        assert!(!reloaded.gate("docs").expect("gate").filters());
    }

    #[test]
    fn a_damaged_cluster_file_is_refused_and_an_old_one_without_checksum_loads() {
        let dir = tempfile::tempdir().expect("dir");
        let m = Membership::load(dir.path()).expect("load");
        assign_at(&m, &[0, 2], &["http://peer:1"], true, 7).expect("assign");
        let path = dir.path().join(FILE_NAME);
        let good = std::fs::read(&path).expect("read");
        assert_eq!(Membership::load(dir.path()).expect("reload").report(vec![("docs".into(), 4)]).epoch, 7);
        // Every byte, one bit flipped at a time: never loaded as written.
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x04;
            std::fs::write(&path, &bad).expect("write");
            let err = Membership::load(dir.path()).expect_err("a flipped bit is refused");
            assert!(err.contains(FILE_NAME), "{err}");
        }
        // As written before checksums: the JSON alone.
        let body = checked_body(&good).expect("checksum");
        std::fs::write(&path, body).expect("write");
        assert_eq!(Membership::load(dir.path()).expect("legacy").report(vec![("docs".into(), 4)]).epoch, 7);
    }

    fn id_in(partition: u32) -> u64 {
        (0..).find(|&id| partition_of("docs", id, 4) == partition).expect("an id")
    }

    #[test]
    fn router_probes_are_reported_by_fingerprint() {
        let m = Membership::default();
        m.router_seen("three-shards");
        m.router_seen("four-shards");
        m.router_seen("three-shards");
        m.router_seen("");
        m.router_seen(&"x".repeat(ruvector_api::MAX_PLACEMENT_LEN + 1));
        let seen: Vec<String> = m.report(Vec::new()).routers.into_iter().map(|r| r.placement).collect();
        assert_eq!(seen, ["four-shards", "three-shards"]);
        for i in 0..2 * MAX_ROUTERS_SEEN {
            m.router_seen(&format!("r{i}"));
        }
        assert_eq!(m.report(Vec::new()).routers.len(), MAX_ROUTERS_SEEN, "bounded");
    }

    #[test]
    fn unassigned_collections_pass_every_check() {
        let m = Membership::default();
        assert!(m.check_read("docs", 1).is_ok());
        assert!(m.check_write("docs", [1, 2, 3]).is_ok());
        assert!(m.gate("docs").is_none());
    }

    #[test]
    fn states_generations_and_restart() {
        let dir = tempfile::tempdir().expect("dir");
        let m = Membership::load(dir.path()).expect("load");
        assign(&m, &[0, 2], &["http://b:1"], false).expect("assign");
        assert_eq!(m.check_read("docs", id_in(0)).expect_err("filling").code(), "partition_not_ready");
        assert_eq!(m.check_read("docs", id_in(1)).expect_err("not held").code(), "partition_not_held");
        assert_eq!(m.check_write("docs", [id_in(1)]).expect_err("not held").code(), "partition_not_held");
        assert!(m.check_write("docs", [id_in(0), id_in(2)]).is_ok());
        let ready = |generation| PartitionStateRequest {
            collection: "docs".into(),
            state: PartitionState::Ready,
            partitions: vec![PartitionGeneration { partition: 0, generation }],
        };
        assert_eq!(m.set_state(&ready(1)).expect("ready"), vec![0]);
        assert!(m.check_read("docs", id_in(0)).is_ok());
        // A move to filling in between refuses a catch-up's stale ready.
        let filling = PartitionStateRequest { state: PartitionState::Filling, ..ready(0) };
        assert_eq!(m.set_state(&filling).expect("filling"), vec![0]);
        assert_eq!(m.set_state(&ready(1)).expect("stale"), Vec::<u32>::new());
        assert_eq!(m.set_state(&ready(2)).expect("ready"), vec![0]);
        // Re-assigning keeps states; a restart makes copies with peers filling.
        assign(&m, &[0, 2], &["http://c:1"], false).expect("again");
        assert!(m.check_read("docs", id_in(0)).is_ok());
        let reloaded = Membership::load(dir.path()).expect("reload");
        assert_eq!(reloaded.check_read("docs", id_in(0)).expect_err("filling").code(), "partition_not_ready");
        assert_eq!(reloaded.gate("docs").expect("gate").filling(), vec![0, 2]);
        // Partition 0 was whole once (made ready), partition 2 never was:
        // the report says so after the restart too, so no router serves
        // partition 2 as it is.
        let whole: Vec<(u32, bool)> = reloaded.report(vec![("docs".into(), 4)]).collections[0]
            .held
            .iter()
            .flatten()
            .map(|h| (h.partition, h.whole))
            .collect();
        assert_eq!(whole, vec![(0, true), (2, false)]);
        reloaded.forget("docs").expect("forget");
        assert!(Membership::load(dir.path()).expect("reload").gate("docs").is_none());
    }

    #[test]
    fn a_fresh_collection_is_placed_whatever_the_claim_and_epoch() {
        let m = Membership::default();
        let claim = AssignmentRequest { placement: "p".into(), epoch: 5, planner: 77, collections: vec![] };
        m.assign(claim, |_| None).expect("a router claims at epoch 5");
        let fresh = |name: &str, fresh: bool| AssignmentRequest {
            placement: "p".into(),
            epoch: 4,
            planner: 0,
            collections: vec![CollectionAssignment {
                name: name.into(),
                partitions: 4,
                held: vec![AssignedPartition { partition: 1, peers: vec!["http://b:1".into()] }],
                fresh,
            }],
        };
        m.assign(fresh("docs", true), |_| Some(Some(4))).expect("fresh is placed");
        assert!(m.check_read("docs", id_in(1)).is_ok(), "ready at once");
        assert_eq!(m.report(Vec::new()).epoch, 5, "the epoch never goes back");
        let again = m.assign(fresh("docs", true), |_| Some(Some(4))).expect_err("known now: an old epoch");
        assert_eq!(again.code(), "stale_placement");
        let moved = m.assign(fresh("other", false), |_| Some(Some(4))).expect_err("not fresh");
        assert_eq!(moved.code(), "stale_placement");
    }

    #[test]
    fn fresh_and_single_copy_partitions_start_ready() {
        let m = Membership::default();
        assign(&m, &[1], &["http://b:1"], true).expect("fresh");
        assert!(m.check_read("docs", id_in(1)).is_ok());
        let m = Membership::default();
        assign(&m, &[1], &[], false).expect("single copy");
        assert!(m.check_read("docs", id_in(1)).is_ok());
        let e = m
            .assign(
                AssignmentRequest {
                    placement: "p".into(),
                    epoch: 0,
                    planner: 0,
                    collections: vec![CollectionAssignment {
                        name: "other".into(),
                        partitions: 4,
                        held: vec![],
                        fresh: false,
                    }],
                },
                |_| None,
            )
            .expect_err("unknown collection");
        assert_eq!(e.code(), "not_found");
    }
}
