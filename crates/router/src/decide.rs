//! Pure decisions over per-shard outcomes: how the answers of a broadcast
//! (create, delete collection) or of a collection-info fan-out combine into
//! the one answer a single node would give. No IO here, so every rule is
//! unit-tested.
//!
//! Create (`POST /collections`, broadcast; each shard answers one
//! [`CreateOutcome`]):
//!
//! 1. any shard holds the name with a *different* configuration → 409
//!    `collection_exists`;
//! 2. else any other 4xx from a shard → forwarded (the router validated
//!    first, so this means a limit differs between router and shard);
//! 3. else any shard unavailable → 503 naming the shards, saying that a
//!    retry is safe (create is idempotent);
//! 4. else every shard already had it, identically → 409, as a single node
//!    answers a repeated create;
//! 5. else (some created now, the rest had it identically — e.g. a retry
//!    after a partial failure) → 201 `created`.
//!
//! "Identically" compares dimension, metric, m, ef_construction, ef_search
//! and quantization ([`same_config`]).
//!
//! Delete (`DELETE /collections/{name}`, broadcast): a shard's 404 counts
//! as done. Any other 4xx → forwarded; any shard unavailable → 503 (retry
//! is safe); every shard 404 → 404; else 200 `deleted`.
//!
//! Info (`GET /collections/{name}`): a shard down → 503; missing on every
//! shard → 404; missing on *some* shards → 503 naming them (a create or
//! delete did not reach every shard; repeating it repairs the cluster); else
//! the first shard's configuration with `size` summed and `max_level` the
//! maximum. The list (`GET /collections`) is the union by name with the
//! same sums; a collection missing on some shards is still listed there
//! (with the sum over the shards that have it) so that one broken
//! collection does not hide the others.

use std::collections::BTreeMap;

use ruvector_api::{ApiError, CollectionInfo, StatusResponse, ValidCreate};

/// What one shard answered to a create.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CreateOutcome {
    /// 201: created now.
    Created,
    /// 409, and the shard's configuration equals the requested one iff `same`.
    Exists {
        /// Whether the existing configuration is the requested one.
        same: bool,
    },
    /// Another 4xx.
    Rejected(ApiError),
    /// Unreachable / 5xx: the message names the shard.
    Unavailable(String),
}

/// What one shard answered to a collection delete.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DeleteOutcome {
    /// 200.
    Deleted,
    /// 404.
    NotFound,
    /// Another 4xx.
    Rejected(ApiError),
    /// Unreachable / 5xx.
    Unavailable(String),
}

/// What one shard answered to a collection info request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum InfoOutcome {
    /// 200.
    Found(CollectionInfo),
    /// 404: the shard does not have the collection.
    NotFound,
    /// Another 4xx.
    Rejected(ApiError),
    /// Unreachable / 5xx.
    Unavailable(String),
}

/// Whether an existing collection has the configuration a create asks for.
/// Payload indexes are not compared: they may be declared after creation.
pub(crate) fn same_config(existing: &CollectionInfo, wanted: &ValidCreate) -> bool {
    existing.dimension == wanted.dimension
        && existing.metric == wanted.metric
        && existing.m == wanted.m
        && existing.ef_construction == wanted.ef_construction
        && existing.ef_search == wanted.ef_search
        && existing.quantization == wanted.quantization
        && existing.partitions == wanted.partitions
}

/// 503 naming every failed shard, with advice on retrying.
pub(crate) fn unavailable(messages: &[String], advice: &str) -> ApiError {
    let mut message = messages.join("; ");
    if !advice.is_empty() {
        message.push_str("; ");
        message.push_str(advice);
    }
    ApiError::Unavailable(message)
}

/// The answer to a broadcast create (rules in the module docs).
pub(crate) fn decide_create(name: &str, outcomes: &[CreateOutcome]) -> Result<StatusResponse, ApiError> {
    if outcomes.iter().any(|o| matches!(o, CreateOutcome::Exists { same: false })) {
        return Err(ApiError::CollectionExists(format!(
            "collection {name:?} already exists with a different configuration"
        )));
    }
    if let Some(CreateOutcome::Rejected(e)) = outcomes.iter().find(|o| matches!(o, CreateOutcome::Rejected(_))) {
        return Err(e.clone());
    }
    let down: Vec<String> = outcomes
        .iter()
        .filter_map(|o| match o {
            CreateOutcome::Unavailable(m) => Some(m.clone()),
            _ => None,
        })
        .collect();
    if !down.is_empty() {
        return Err(unavailable(
            &down,
            &format!(
                "collection {name:?} may exist on some shards only; retrying the create is safe (it is idempotent)"
            ),
        ));
    }
    if outcomes.iter().all(|o| matches!(o, CreateOutcome::Exists { same: true })) {
        return Err(ApiError::collection_exists(name));
    }
    Ok(StatusResponse::created())
}

/// The answer to a broadcast collection delete (rules in the module docs).
pub(crate) fn decide_delete(name: &str, outcomes: &[DeleteOutcome]) -> Result<StatusResponse, ApiError> {
    if let Some(DeleteOutcome::Rejected(e)) = outcomes.iter().find(|o| matches!(o, DeleteOutcome::Rejected(_))) {
        return Err(e.clone());
    }
    let down: Vec<String> = outcomes
        .iter()
        .filter_map(|o| match o {
            DeleteOutcome::Unavailable(m) => Some(m.clone()),
            _ => None,
        })
        .collect();
    if !down.is_empty() {
        return Err(unavailable(
            &down,
            &format!("collection {name:?} may remain on some shards; retrying the delete is safe (it is idempotent)"),
        ));
    }
    if outcomes.iter().all(|o| *o == DeleteOutcome::NotFound) {
        return Err(ApiError::not_found_collection(name));
    }
    Ok(StatusResponse::deleted())
}

/// Combines the shards' infos of one collection (rules in the module
/// docs). `addresses[i]` names shard `i` (outcomes are in shard order).
pub(crate) fn merge_info(
    name: &str,
    outcomes: Vec<InfoOutcome>,
    addresses: &[&str],
) -> Result<CollectionInfo, ApiError> {
    let mut found: Vec<CollectionInfo> = Vec::new();
    let mut missing = Vec::new();
    let mut down = Vec::new();
    for (i, o) in outcomes.into_iter().enumerate() {
        match o {
            InfoOutcome::Found(info) => found.push(info),
            InfoOutcome::NotFound => missing.push(addresses.get(i).copied().unwrap_or("?")),
            InfoOutcome::Rejected(e) => return Err(e),
            InfoOutcome::Unavailable(m) => down.push(m),
        }
    }
    if !down.is_empty() {
        return Err(unavailable(&down, ""));
    }
    if found.is_empty() {
        return Err(ApiError::not_found_collection(name));
    }
    if !missing.is_empty() {
        return Err(ApiError::Unavailable(format!(
            "collection {name:?} is missing on shard(s) {}: a create or delete did not reach every shard; \
             repeat it (both are idempotent)",
            missing.join(", ")
        )));
    }
    sum_infos(found).ok_or_else(|| ApiError::not_found_collection(name))
}

/// The union of the shards' collection lists, sorted by name.
pub(crate) fn merge_lists(lists: Vec<Vec<CollectionInfo>>) -> Vec<CollectionInfo> {
    let mut by_name: BTreeMap<String, Vec<CollectionInfo>> = BTreeMap::new();
    for info in lists.into_iter().flatten() {
        by_name.entry(info.name.clone()).or_default().push(info);
    }
    by_name.into_values().filter_map(sum_infos).collect()
}

/// The first info with `size` summed and `max_level` maximised; `None`
/// for no infos.
fn sum_infos(infos: Vec<CollectionInfo>) -> Option<CollectionInfo> {
    let mut iter = infos.into_iter();
    let mut total = iter.next()?;
    for info in iter {
        total.size = total.size.saturating_add(info.size);
        total.max_level = total.max_level.max(info.max_level);
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use ruvector_api::{Metric, Quantization};

    use super::*;
    use CreateOutcome as C;
    use DeleteOutcome as D;

    fn wanted() -> ValidCreate {
        ValidCreate {
            name: "docs".into(),
            dimension: 3,
            metric: Metric::Cosine,
            m: 16,
            ef_construction: 200,
            ef_search: 50,
            quantization: Quantization::None,
            partitions: Some(32),
            payload_indexes: Default::default(),
        }
    }

    fn info(size: u64, max_level: usize) -> CollectionInfo {
        CollectionInfo { size, max_level, ..CollectionInfo::empty(&wanted()) }
    }

    #[test]
    fn same_config_compares_every_setting() {
        let w = wanted();
        assert!(same_config(&info(100, 3), &w));
        let differs = [
            ValidCreate { dimension: 4, ..w.clone() },
            ValidCreate { metric: Metric::Euclidean, ..w.clone() },
            ValidCreate { m: 8, ..w.clone() },
            ValidCreate { ef_construction: 100, ..w.clone() },
            ValidCreate { ef_search: 10, ..w.clone() },
            ValidCreate { quantization: Quantization::Sq8 { oversampling: None }, ..w.clone() },
            ValidCreate { partitions: Some(16), ..w.clone() },
            ValidCreate { partitions: None, ..w.clone() },
        ];
        for d in differs {
            assert!(!same_config(&info(0, 0), &d), "{d:?}");
        }
    }

    #[test]
    fn create_decisions() {
        let down = || C::Unavailable("shard http://b unavailable: connection refused".into());
        assert_eq!(decide_create("docs", &[C::Created, C::Created]), Ok(StatusResponse::created()));
        // A retry after a partial failure.
        assert_eq!(decide_create("docs", &[C::Exists { same: true }, C::Created]), Ok(StatusResponse::created()));
        // A repeated create, as on a single node.
        assert_eq!(
            decide_create("docs", &[C::Exists { same: true }, C::Exists { same: true }]).map_err(|e| e.code()),
            Err("collection_exists")
        );
        let e = decide_create("docs", &[C::Created, C::Exists { same: false }, down()]).expect_err("conflict");
        assert_eq!(e.code(), "collection_exists");
        assert!(e.to_string().contains("different configuration"), "{e}");
        let e = decide_create("docs", &[C::Created, down()]).expect_err("partial");
        assert_eq!(e.code(), "unavailable");
        assert!(e.to_string().contains("http://b"), "{e}");
        assert!(e.to_string().contains("retrying the create is safe"), "{e}");
        let rejected = ApiError::InvalidParameter("m must be between 1 and 64, got 100".into());
        assert_eq!(decide_create("docs", &[C::Created, C::Rejected(rejected.clone()), down()]), Err(rejected));
    }

    #[test]
    fn delete_decisions() {
        assert_eq!(decide_delete("docs", &[D::Deleted, D::NotFound]), Ok(StatusResponse::deleted()));
        assert_eq!(decide_delete("docs", &[D::NotFound, D::NotFound]).map_err(|e| e.code()), Err("not_found"));
        let e = decide_delete("docs", &[D::Deleted, D::Unavailable("shard http://c unavailable: x".into())])
            .expect_err("partial");
        assert_eq!(e.code(), "unavailable");
        assert!(e.to_string().contains("http://c") && e.to_string().contains("safe"), "{e}");
        assert_eq!(decide_delete("docs", &[D::Deleted, D::Rejected(ApiError::Forbidden)]), Err(ApiError::Forbidden));
    }

    #[test]
    fn info_merge() {
        let addrs = ["http://a", "http://b", "http://c"];
        let found = |s, l| InfoOutcome::Found(info(s, l));
        let merged = merge_info("docs", vec![found(10, 1), found(20, 3), found(5, 2)], &addrs).expect("merged");
        assert_eq!((merged.size, merged.max_level), (35, 3));
        let nf = || InfoOutcome::NotFound;
        assert_eq!(merge_info("docs", vec![nf(), nf(), nf()], &addrs).map_err(|e| e.code()), Err("not_found"));
        let e = merge_info("docs", vec![found(1, 0), nf(), found(1, 0)], &addrs).expect_err("partial");
        assert_eq!(e.code(), "unavailable");
        assert!(e.to_string().contains("missing on shard(s) http://b"), "{e}");
        let e =
            merge_info("docs", vec![found(1, 0), InfoOutcome::Unavailable("shard http://b down".into()), nf()], &addrs)
                .expect_err("down");
        assert_eq!(e.to_string(), "shard http://b down");
    }

    #[test]
    fn list_merge_is_a_sorted_union() {
        let named = |n: &str, s| CollectionInfo { name: n.into(), ..info(s, 1) };
        let merged = merge_lists(vec![vec![named("b", 1), named("a", 2)], vec![named("a", 3)], vec![]]);
        assert_eq!(merged.iter().map(|c| (c.name.as_str(), c.size)).collect::<Vec<_>>(), [("a", 5), ("b", 1)]);
    }
}
