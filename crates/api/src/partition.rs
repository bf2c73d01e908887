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

use siphasher::sip::SipHasher24;

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
