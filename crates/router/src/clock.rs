//! Write versions: every upsert and delete that passes through a router is
//! stamped with a version from a hybrid logical clock, and a shard applies
//! a write only if it is newer than what it holds for the id (see the
//! engine's `collection` docs). Copies that receive the same writes in
//! different orders — retries, two routers, a copy catching up — therefore
//! converge on the newest.
//!
//! Layout of a version (u64): bits 63–20 wall-clock milliseconds since the
//! Unix epoch (44 bits: until the year 2527), bits 19–8 a counter, bits 7–0
//! the router's tag (random per process). Within one router versions
//! strictly increase even when the wall clock stalls or steps back (the
//! counter carries into the milliseconds); across routers they follow wall
//! time, so the last write wins up to the routers' clock skew, and equal
//! stamps from two routers differ in the tag.
//!
//! Why a hybrid logical clock: routers are stateless and many, so a
//! central sequence would be a single point of failure and a round trip
//! per write; a pure Lamport counter would not order writes from routers
//! that never talk to each other the way users expect (by time); and wall
//! time alone is not monotonic.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const TAG_BITS: u32 = 8;
const COUNTER_BITS: u32 = 12;
const MILLIS_SHIFT: u32 = TAG_BITS + COUNTER_BITS;

/// The router's version clock.
#[derive(Debug)]
pub(crate) struct Clock {
    /// The newest version handed out, tag bits cleared.
    last: AtomicU64,
    tag: u64,
}

impl Clock {
    /// A clock with a random tag.
    pub(crate) fn new() -> Clock {
        let random = std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 0u8);
        Clock::with_tag(random & ((1 << TAG_BITS) - 1))
    }

    fn with_tag(tag: u64) -> Clock {
        Clock { last: AtomicU64::new(0), tag }
    }

    /// A version greater than every one this clock gave before, close to
    /// the wall clock.
    pub(crate) fn next(&self) -> u64 {
        self.next_at(wall_millis())
    }

    fn next_at(&self, millis: u64) -> u64 {
        let now = millis << MILLIS_SHIFT;
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let candidate = now.max(last + (1 << TAG_BITS));
            match self.last.compare_exchange_weak(last, candidate, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return candidate | self.tag,
                Err(actual) => last = actual,
            }
        }
    }

    /// The milliseconds part of a version (for horizons and display).
    #[cfg(test)]
    pub(crate) fn millis_of(version: u64) -> u64 {
        version >> MILLIS_SHIFT
    }

    /// The smallest version stamped `ago` before now by a router whose
    /// clock agrees with this one: what tombstone horizons compare with.
    pub(crate) fn version_before(ago: std::time::Duration) -> u64 {
        wall_millis().saturating_sub(ago.as_millis() as u64) << MILLIS_SHIFT
    }
}

fn wall_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_even_when_the_clock_stalls_or_steps_back() {
        let clock = Clock::with_tag(7);
        let a = clock.next_at(1_000);
        let b = clock.next_at(1_000);
        let c = clock.next_at(900);
        let d = clock.next_at(2_000);
        assert!(a < b && b < c && c < d, "{a} {b} {c} {d}");
        assert_eq!([a, b, c, d].map(|v| v & 0xFF), [7; 4], "the tag is kept");
        assert_eq!(Clock::millis_of(a), 1_000);
        assert_eq!(Clock::millis_of(d), 2_000);
    }

    #[test]
    fn concurrent_callers_get_distinct_versions() {
        let clock = std::sync::Arc::new(Clock::new());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let clock = std::sync::Arc::clone(&clock);
                std::thread::spawn(move || (0..10_000).map(|_| clock.next()).collect::<Vec<_>>())
            })
            .collect();
        let mut all: Vec<u64> = handles.into_iter().flat_map(|h| h.join().expect("thread")).collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
        assert!(Clock::millis_of(all[0]) > 1_700_000_000_000, "close to wall time");
    }
}
