//! Partitions: a collection created through a router is cut into a fixed
//! number of partitions (a power of two, stored in the collection's
//! configuration); `(collection, id)` hashes to one of them with
//! [`partition_of`], and routers place partitions, not ids, on shards.
//!
//! The hash must give the same answer in every process, build and version,
//! forever: it is SipHash-2-4 with the fixed keys (0, 0) (the `siphasher`
//! crate, not std's `DefaultHasher`, whose algorithm may change), fed the
//! collection's UTF-8 bytes, a 0xFF separator (never in UTF-8) and the id
//! as 8 little-endian bytes; the partition is the hash's low bits.
//! `tests::partitions_are_pinned` fails if that ever changes.

use std::hash::Hasher;

use serde::{Deserialize, Serialize};
use siphasher::sip::SipHasher24;
use utoipa::{IntoParams, ToSchema};

/// Most partitions a collection may have.
pub const MAX_PARTITIONS: u32 = 4096;

/// The partition of `id` in `collection` when it has `partitions`
/// partitions (a power of two; 0 or 1 mean one partition, number 0).
pub fn partition_of(collection: &str, id: u64, partitions: u32) -> u32 {
    if partitions <= 1 {
        return 0;
    }
    let mut hasher = SipHasher24::new_with_keys(0, 0);
    hasher.write(collection.as_bytes());
    hasher.write(&[0xFF]);
    hasher.write(&id.to_le_bytes());
    (hasher.finish() & u64::from(partitions - 1)) as u32
}

/// One write's contribution to a partition digest: a hash of `(id,
/// version, deleted)`. A digest sums these (wrapping), so it does not
/// depend on order and two copies holding the same stamps agree.
pub fn stamp_hash(id: u64, version: u64, deleted: bool) -> u64 {
    let mut hasher = SipHasher24::new_with_keys(0, 0);
    hasher.write(&id.to_le_bytes());
    hasher.write(&version.to_le_bytes());
    hasher.write(&[u8::from(deleted)]);
    hasher.finish()
}

/// The digest of one partition of one copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct PartitionDigest {
    /// Stamps (live versioned points and tombstones) in the partition.
    pub count: u64,
    /// Wrapping sum of [`stamp_hash`] over them.
    pub hash: u64,
    /// Live vectors among them (stamps that are not tombstones).
    #[serde(default)]
    pub live: u64,
}

/// `GET /collections/{name}/digests`: one digest per partition, in
/// partition order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Digests {
    /// Index = partition number.
    pub partitions: Vec<PartitionDigest>,
}

/// One id's newest versioned write on a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VersionStamp {
    /// The vector id.
    pub id: u64,
    /// The version of its newest write.
    pub version: u64,
    /// Whether that write was a delete (a tombstone).
    pub deleted: bool,
}

/// `GET /collections/{name}/stamps?partition=P`: every stamp of one
/// partition, ascending by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Stamps {
    /// The stamps.
    pub stamps: Vec<VersionStamp>,
    /// Tombstones older than this version were purged from this copy of
    /// the partition: an id it lacks whose newest write elsewhere is older
    /// was deleted here, not missed (0: nothing purged).
    #[serde(default)]
    pub purged_before: u64,
}

/// Query of `GET /collections/{name}/digests`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DigestsQuery {
    /// Only stamps older than this version count (what tombstone purges
    /// compare: writes in flight are newer).
    #[param(value_type = Option<u64>)]
    #[serde(default)]
    pub before: Option<String>,
}

impl DigestsQuery {
    /// The bound; `u64::MAX` when absent.
    pub fn validate(self) -> Result<u64, crate::ApiError> {
        match self.before {
            None => Ok(u64::MAX),
            Some(raw) => raw.parse::<u64>().ok().filter(|_| raw.bytes().all(|b| b.is_ascii_digit())).ok_or_else(|| {
                crate::ApiError::InvalidParameter(format!("before must be a version number, got {raw:?}"))
            }),
        }
    }
}

/// `POST /collections/{name}/tombstones/purge`: forget the tombstones
/// older than `before` in these partitions of this copy (routers send it
/// once every copy holds them, or past the tombstone horizon).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    /// Version bound (exclusive).
    pub before: u64,
    /// Partition numbers.
    pub partitions: Vec<u32>,
}

impl PurgeRequest {
    /// Checks the partitions against the collection's count.
    pub fn validate(&self, partitions: u32) -> Result<(), crate::ApiError> {
        match self.partitions.iter().find(|&&p| p >= partitions.max(1)) {
            Some(p) => Err(crate::ApiError::InvalidParameter(format!(
                "partitions: {p} is not below the collection's {partitions}"
            ))),
            None if self.partitions.len() > MAX_PARTITIONS as usize => {
                Err(crate::ApiError::InvalidParameter(format!("at most {MAX_PARTITIONS} partitions")))
            }
            None => Ok(()),
        }
    }
}

/// `POST /collections/{name}/tombstones/purge` response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PurgeResponse {
    /// Tombstones forgotten.
    pub purged: u64,
}

/// Query of `GET /collections/{name}/stamps`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StampsQuery {
    /// The partition number.
    #[param(value_type = u32)]
    #[serde(default)]
    pub partition: Option<String>,
}

impl StampsQuery {
    /// The partition, checked against the collection's `partitions`.
    pub fn validate(self, partitions: u32) -> Result<u32, crate::ApiError> {
        parse_partition(&self.partition.unwrap_or_default(), partitions)
    }
}

/// A partition number as a path or query gives it, checked against the
/// collection's `partitions`.
pub fn parse_partition(raw: &str, partitions: u32) -> Result<u32, crate::ApiError> {
    match raw.parse::<u32>() {
        Ok(p) if p < partitions.max(1) && raw.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        _ => Err(crate::ApiError::InvalidParameter(format!(
            "partition must be a number below {}, got {raw:?}",
            partitions.max(1)
        ))),
    }
}

/// `POST /collections/{name}/partitions/{p}/snapshot`: what applying a
/// partition snapshot changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct ImportReport {
    /// Records in the snapshot.
    pub records: u64,
    /// Points written (newer than what the copy held).
    pub upserted: u64,
    /// Tombstones written (newer than what the copy held).
    pub deleted: u64,
    /// Bytes received.
    pub bytes: u64,
}

/// Whether `n` is a valid partition count.
pub fn valid_partitions(n: u32) -> bool {
    n.is_power_of_two() && n <= MAX_PARTITIONS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_pinned() {
        let got: Vec<u32> = (0..8).map(|id| partition_of("docs", id, 32)).collect();
        assert_eq!(got, PINNED, "the partition hash changed: existing clusters would lose their data");
        assert_eq!(partition_of("docs", 7, 1), 0);
        assert_eq!(partition_of("docs", 7, 0), 0);
    }

    const PINNED: [u32; 8] = [8, 1, 23, 13, 15, 27, 5, 24];

    #[test]
    fn ids_spread_evenly_over_partitions() {
        let mut counts = vec![0u32; 16];
        for id in 0..16_000 {
            counts[partition_of("c", id, 16) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (850..=1150).contains(&c)), "{counts:?}");
    }

    #[test]
    fn valid_counts_are_powers_of_two_up_to_the_limit() {
        assert!(valid_partitions(1) && valid_partitions(64) && valid_partitions(MAX_PARTITIONS));
        assert!(!valid_partitions(0) && !valid_partitions(12) && !valid_partitions(MAX_PARTITIONS * 2));
    }
}
