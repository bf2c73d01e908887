//! A short-lived cache of each collection's dimension and metric, which the
//! router needs to validate upserts and searches itself (once, before the
//! fan-out) instead of letting every shard reject the same bad request.
//!
//! Entries live `collection_cache_ms` (default 5 s; 0 disables the cache).
//! A create or delete through this router drops the entry at once, and so
//! does a shard answering 404 for the collection. What can still be stale:
//! a collection dropped and recreated with another dimension or metric
//! *through another router* is validated against the old shape for at most
//! the TTL. That is harmless: every shard validates again, so a wrong
//! acceptance becomes the shard's 400 (forwarded) and a wrong rejection
//! goes away on the client's retry after the TTL.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ruvector_api::Metric;

/// What validation needs to know about a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Vector dimension.
    pub(crate) dimension: usize,
    /// Distance metric (cosine rejects zero vectors).
    pub(crate) metric: Metric,
    /// Partitions, for a collection placed by partition (see `ring`).
    pub(crate) partitions: Option<u32>,
}

/// Upper bound on cached entries; the whole map is cleared when reached
/// (collection names are client-chosen, so the map must not grow forever).
const MAX_ENTRIES: usize = 4096;

/// The cache; see the module docs.
#[derive(Debug)]
pub(crate) struct ShapeCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Shape, Instant)>>,
}

impl ShapeCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        ShapeCache { ttl, entries: Mutex::new(HashMap::new()) }
    }

    /// The cached shape of `name`, if fresh.
    pub(crate) fn get(&self, name: &str) -> Option<Shape> {
        let entries = self.entries.lock().ok()?;
        let (shape, at) = entries.get(name)?;
        (at.elapsed() < self.ttl).then_some(*shape)
    }

    /// Remembers `shape` for `name`.
    pub(crate) fn put(&self, name: &str, shape: Shape) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(name.to_owned(), (shape, Instant::now()));
        }
    }

    /// Forgets `name`.
    pub(crate) fn invalidate(&self, name: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_can_be_dropped() {
        let shape = Shape { dimension: 3, metric: Metric::Cosine, partitions: Some(8) };
        let cache = ShapeCache::new(Duration::from_secs(60));
        assert_eq!(cache.get("a"), None);
        cache.put("a", shape);
        assert_eq!(cache.get("a"), Some(shape));
        cache.invalidate("a");
        assert_eq!(cache.get("a"), None);
        let off = ShapeCache::new(Duration::ZERO);
        off.put("a", shape);
        assert_eq!(off.get("a"), None);
    }
}
