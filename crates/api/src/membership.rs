//! What a shard knows of the cluster, on the wire: which partitions of
//! which collections it holds, their peers, and whether each is ready to
//! be read.
//!
//! Shards start knowing nothing of each other. Routers compute the
//! placement from their shard list and push each shard its part
//! (`PUT /cluster/assignment`, [`AssignmentRequest`]); the shard keeps it
//! in its data directory, so after a restart it knows what it holds
//! before any router calls. `GET /cluster/assignment` ([`ShardAssignment`])
//! reports it with every partition's state, and
//! `POST /cluster/partitions` ([`PartitionStateRequest`]) moves partitions
//! between `filling` and `ready`.
//!
//! A partition is **filling** from a restart (it may have missed writes
//! while down), from a router's report that a write to it failed, or from
//! a new assignment to a collection that already has data; it accepts
//! writes but is not read. It turns **ready** when a router has caught it
//! up from its peers. Every move to filling bumps the partition's
//! `generation`; a move to ready names the generation its catch-up
//! started from and is refused if another move to filling came between.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::partition::valid_partitions;
use crate::{ApiError, validate_collection_name};

/// Response header of a shard's search, batch search and id listing:
/// the comma-separated partitions it holds but left out because they are
/// filling. Absent when it left none out.
pub const UNREADY_HEADER: &str = "x-ruvector-unready-partitions";

/// Request header a router sets on every data request to a shard: the
/// placement epoch it routes by. A shard that has seen a newer epoch
/// answers 421 `stale_placement`; the router refreshes and retries.
pub const EPOCH_HEADER: &str = "x-ruvector-epoch";

/// Request header a router sets on its sync probe (`GET
/// /cluster/assignment`): its placement fingerprint (shard list and
/// replication factor). Shards report the fingerprints they saw lately, so
/// the driving router holds moves back while a router with another shard
/// list still runs (a rolling upgrade): it could not reach a moved copy.
pub const PLACEMENT_HEADER: &str = "x-ruvector-placement";

/// Request header a router's catch-up sets to read a vector from a copy
/// that is itself filling (it may hold writes its peers lack).
pub const CATCH_UP_HEADER: &str = "x-ruvector-catch-up";

/// How long a router's claim to drive moves holds without being renewed
/// (routers renew it with every sync, every second by default).
pub const PLANNER_LEASE_MS: u64 = 5000;

/// Longest shard address accepted in an assignment.
pub const MAX_PEER_LEN: usize = 512;

/// Most peers per partition (copies − 1).
pub const MAX_PEERS: usize = 16;

/// Longest placement identifier.
pub const MAX_PLACEMENT_LEN: usize = 128;

/// Whether a partition copy may be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PartitionState {
    /// Accepts writes; reads go to another copy until it has caught up.
    Filling,
    /// Caught up: serves reads.
    Ready,
}

/// One partition a router assigns a shard, and the other shards holding it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignedPartition {
    /// The partition number.
    pub partition: u32,
    /// The base URLs of the other copies, most preferred first.
    #[serde(default)]
    pub peers: Vec<String>,
}

/// The partitions of one collection a shard holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionAssignment {
    /// The collection.
    pub name: String,
    /// Its partition count.
    pub partitions: u32,
    /// The partitions this shard holds, ascending.
    pub held: Vec<AssignedPartition>,
    /// The collection was created by this request's router just now, so no
    /// copy can have missed a write: newly held partitions start ready
    /// instead of filling.
    #[serde(default)]
    pub fresh: bool,
}

/// `PUT /cluster/assignment`: a shard's part of the placement, for the
/// listed collections (others are left as they are).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignmentRequest {
    /// Identifies the placement (the routers' shard list and replication
    /// factor); reported back by `GET /cluster/assignment`.
    #[schema(min_length = 1, max_length = 128)]
    pub placement: String,
    /// The placement epoch: raised by every change of where partitions
    /// live. A request with an older epoch than the shard's is refused
    /// (421 `stale_placement`); 0 is only accepted by a shard at 0.
    #[serde(default)]
    pub epoch: u64,
    /// The pushing router's start time (ms since the Unix epoch): the
    /// router that started last drives moves, so two routers with
    /// different shard lists (a rolling upgrade) do not undo each other.
    /// A shard refuses (421 `stale_placement`) an assignment from an
    /// earlier-started router while the later one's claim is fresh
    /// ([`PLANNER_LEASE_MS`]). 0: no claim.
    #[serde(default)]
    pub planner: u64,
    /// The collections to assign.
    pub collections: Vec<CollectionAssignment>,
}

impl AssignmentRequest {
    /// Checks names, partition numbers and peer addresses.
    pub fn validate(&self) -> Result<(), ApiError> {
        let bad = |m: String| Err(ApiError::InvalidParameter(m));
        if self.placement.is_empty() || self.placement.len() > MAX_PLACEMENT_LEN {
            return bad(format!("placement must be 1 to {MAX_PLACEMENT_LEN} characters"));
        }
        for (i, c) in self.collections.iter().enumerate() {
            validate_collection_name(&c.name)?;
            if !valid_partitions(c.partitions) {
                return bad(format!("collections[{i}].partitions must be a power of two up to 4096"));
            }
            let mut last = None;
            for (j, p) in c.held.iter().enumerate() {
                if p.partition >= c.partitions || last.is_some_and(|l| l >= p.partition) {
                    return bad(format!(
                        "collections[{i}].held[{j}].partition must be below {} and ascending",
                        c.partitions
                    ));
                }
                last = Some(p.partition);
                if p.peers.len() > MAX_PEERS || p.peers.iter().any(|a| a.is_empty() || a.len() > MAX_PEER_LEN) {
                    return bad(format!(
                        "collections[{i}].held[{j}].peers: at most {MAX_PEERS} addresses of 1 to {MAX_PEER_LEN} characters"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// One held partition as `GET /cluster/assignment` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HeldPartition {
    /// The partition number.
    pub partition: u32,
    /// The other copies.
    pub peers: Vec<String>,
    /// Whether it is read.
    pub state: PartitionState,
    /// Bumped by every move to filling.
    pub generation: u64,
    /// Tombstones older than this version were purged here (0: none).
    #[serde(default)]
    pub purged_before: u64,
    /// Whether this copy was ever whole: created with its collection, or
    /// made ready once. A copy a move is still filling is not, and never
    /// serves as it is, even when no other copy is reachable.
    #[serde(default = "whole_by_default")]
    pub whole: bool,
}

fn whole_by_default() -> bool {
    true
}

/// One partitioned collection of a shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CollectionHolding {
    /// The collection.
    pub name: String,
    /// Its partition count.
    pub partitions: u32,
    /// The partitions assigned to this shard; `null` when no router has
    /// assigned any yet (the shard serves whatever it has).
    pub held: Option<Vec<HeldPartition>>,
}

/// `GET /cluster/assignment`: every partitioned collection the shard has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShardAssignment {
    /// The placement last pushed; `null` before any router did.
    pub placement: Option<String>,
    /// The newest placement epoch this shard has seen (0: none).
    #[serde(default)]
    pub epoch: u64,
    /// The start time of the router that drives moves (0: none yet).
    #[serde(default)]
    pub planner: u64,
    /// Milliseconds since that router last claimed it.
    #[serde(default)]
    pub planner_age_ms: u64,
    /// By name.
    pub collections: Vec<CollectionHolding>,
    /// The placement fingerprints of the routers that probed this shard
    /// lately, with how long ago (newest probe per fingerprint).
    #[serde(default)]
    pub routers: Vec<RouterSeen>,
}

/// A router fingerprint in [`ShardAssignment::routers`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RouterSeen {
    /// Its placement fingerprint.
    pub placement: String,
    /// Milliseconds since its last probe.
    pub age_ms: u64,
}

/// One partition in a [`PartitionStateRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartitionGeneration {
    /// The partition number.
    pub partition: u32,
    /// For `ready`: the generation the catch-up started from (the move is
    /// refused for this partition if it changed). Ignored for `filling`.
    #[serde(default)]
    pub generation: u64,
}

/// `POST /cluster/partitions`: move held partitions to a state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartitionStateRequest {
    /// The collection.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,255}$")]
    pub collection: String,
    /// The target state.
    pub state: PartitionState,
    /// The partitions.
    pub partitions: Vec<PartitionGeneration>,
}

/// `POST /cluster/partitions` response: the partitions whose state is now
/// the requested one (a `ready` refused for a changed generation, or a
/// partition not held, is left out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PartitionStateResponse {
    /// Partition numbers.
    pub changed: Vec<u32>,
}

/// Parses an [`UNREADY_HEADER`] value; `None` when malformed.
pub fn parse_unready(value: &str) -> Option<Vec<u32>> {
    if value.trim().is_empty() {
        return Some(Vec::new());
    }
    value.split(',').map(|p| p.trim().parse().ok()).collect()
}

/// Formats partitions for [`UNREADY_HEADER`].
pub fn format_unready(partitions: &[u32]) -> String {
    partitions.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(held: Vec<AssignedPartition>) -> AssignmentRequest {
        AssignmentRequest {
            placement: "p1".into(),
            epoch: 1,
            planner: 0,
            collections: vec![CollectionAssignment { name: "docs".into(), partitions: 8, held, fresh: false }],
        }
    }

    #[test]
    fn assignments_are_checked() {
        let p = |partition| AssignedPartition { partition, peers: vec!["http://a:1".into()] };
        assert!(request(vec![p(0), p(7)]).validate().is_ok());
        for bad in [vec![p(8)], vec![p(3), p(3)], vec![p(4), p(2)]] {
            let e = request(bad).validate().expect_err("bad partition");
            assert!(e.to_string().contains("held["), "{e}");
        }
        let mut r = request(vec![p(1)]);
        r.collections[0].partitions = 6;
        assert!(r.validate().is_err());
        let mut r = request(vec![p(1)]);
        r.collections[0].held[0].peers.push(String::new());
        assert!(r.validate().is_err());
        let mut r = request(vec![]);
        r.placement.clear();
        assert!(r.validate().is_err());
        let mut r = request(vec![]);
        r.collections[0].name = "../x".into();
        assert_eq!(r.validate().expect_err("name").code(), "invalid_name");
    }

    #[test]
    fn unready_header_round_trips() {
        assert_eq!(parse_unready(&format_unready(&[1, 5, 31])), Some(vec![1, 5, 31]));
        assert_eq!(parse_unready(""), Some(vec![]));
        assert_eq!(parse_unready("1,x"), None);
    }
}
