//! The routes that act on every shard at once by a payload condition:
//! declaring and dropping payload indexes, counting and deleting by filter.
//!
//! - Payload indexes are declared on every shard; all must answer (a shard
//!   down: 503, and retrying is safe — declaring twice changes nothing).
//! - A count is read like a search (the same tolerance of failed shards
//!   whose partitions others cover); a shard of a partitioned collection
//!   counts per partition, and the router adds one copy's count per
//!   partition (the largest, as copies catching up may still lack some).
//! - A delete by filter is stamped with one version and sent to every
//!   shard; each deletes its matching points leaving tombstones of that
//!   version, so a later write of an id still wins and a retry is safe.
//!   With copies, a shard that did not answer is recorded as having missed
//!   writes to every partition it holds (its catch-up copies the
//!   tombstones) as long as the others answered for every partition;
//!   otherwise 503.

use std::collections::BTreeMap;

use axum::http::Method;
use futures::future::join_all;
use ruvector_api::{
    ApiError, CountRequest, CountResponse, DeleteByFilterRequest, DeleteByFilterResponse, PayloadIndexRequest,
    StatusResponse, validate_collection_name, validate_payload_key,
};

use super::{Service, internal};
use crate::shard::{Credentials, ShardError};

/// Per partition, the largest count any answering copy reported.
fn per_partition_max<'a>(answers: impl Iterator<Item = &'a BTreeMap<u32, u64>>) -> u64 {
    let mut best: BTreeMap<u32, u64> = BTreeMap::new();
    for partitions in answers {
        for (&p, &n) in partitions {
            let slot = best.entry(p).or_insert(0);
            *slot = (*slot).max(n);
        }
    }
    best.values().sum()
}

impl Service {
    /// Sends one request to every shard; results in shard order.
    async fn to_every_shard(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        credentials: &Credentials,
    ) -> Vec<(usize, Result<axum::body::Bytes, ShardError>)> {
        self.metrics.fanout(op, self.client.len());
        join_all(self.all_shards().map(|shard| {
            let (method, body) = (method.clone(), body.clone());
            async move {
                let r = self.client.call(&self.metrics, shard, op, method, path, body, credentials, None).await;
                (shard, r)
            }
        }))
        .await
    }

    /// The first refusal among `results` (forwarded as is), else a 503
    /// naming every shard that did not answer, else the answers.
    fn all_answered(
        &self,
        name: &str,
        results: Vec<(usize, Result<axum::body::Bytes, ShardError>)>,
        advice: &str,
    ) -> Result<Vec<(usize, axum::body::Bytes)>, ApiError> {
        let mut ok = Vec::with_capacity(results.len());
        let mut down = Vec::new();
        for (shard, result) in results {
            match result {
                Ok(bytes) => ok.push((shard, bytes)),
                Err(ShardError::Unavailable { message, .. }) => down.push(message),
                Err(e) => return Err(self.forward(name, e)),
            }
        }
        if !down.is_empty() {
            return Err(crate::decide::unavailable(&down, advice));
        }
        Ok(ok)
    }

    /// `POST /collections/{name}/payload_indexes`: `true` when some shard
    /// built the index (201), `false` when every shard had it (200).
    pub(crate) async fn declare_payload_index(
        &self,
        name: &str,
        request: PayloadIndexRequest,
        credentials: &Credentials,
    ) -> Result<bool, ApiError> {
        validate_collection_name(name)?;
        let valid = request.validate()?;
        let body = serde_json::to_vec(&valid).map_err(internal)?;
        let path = format!("/collections/{name}/payload_indexes");
        let results = self.to_every_shard("payload_index", Method::POST, &path, Some(body), credentials).await;
        let answers = self.all_answered(name, results, "retrying is safe")?;
        let mut created = false;
        for (shard, bytes) in answers {
            let status: StatusResponse = serde_json::from_slice(&bytes)
                .map_err(|e| self.client.invalid_response(&self.metrics, shard, &e.to_string()).into_api())?;
            created |= status == StatusResponse::created();
        }
        Ok(created)
    }

    /// `DELETE /collections/{name}/payload_indexes/{key}`: 404 when no
    /// shard had it.
    pub(crate) async fn drop_payload_index(
        &self,
        name: &str,
        key: &str,
        credentials: &Credentials,
    ) -> Result<StatusResponse, ApiError> {
        validate_collection_name(name)?;
        validate_payload_key("key", key)?;
        let path = format!("/collections/{name}/payload_indexes/{key}");
        let results = self.to_every_shard("payload_index", Method::DELETE, &path, None, credentials).await;
        let mut dropped = false;
        let mut missing = None;
        let mut remaining = Vec::with_capacity(results.len());
        for (shard, result) in results {
            match result {
                Ok(_) => dropped = true,
                Err(ShardError::Rejected(e)) if e.code() == "not_found" => missing = Some(e),
                other => remaining.push((shard, other)),
            }
        }
        self.all_answered(name, remaining, "retrying is safe")?;
        match (dropped, missing) {
            (false, Some(e)) => Err(e),
            _ => Ok(StatusResponse::deleted()),
        }
    }

    /// `POST /collections/{name}/count`.
    pub(crate) async fn count(
        &self,
        name: &str,
        request: CountRequest,
        credentials: &Credentials,
    ) -> Result<CountResponse, ApiError> {
        validate_collection_name(name)?;
        let request = request.validate()?;
        let shape = self.shape(name, credentials).await?;
        let body = serde_json::to_vec(&request).map_err(internal)?;
        let path = format!("/collections/{name}/count");
        let gathered = self
            .gather::<CountResponse>(
                "count",
                Method::POST,
                &path,
                Some(body),
                credentials,
                self.tolerance(name, &shape, false),
            )
            .await
            .map_err(|e| self.forward(name, e))?;
        let count = match shape.partitions {
            Some(_) => per_partition_max(gathered.ok.iter().map(|(_, c)| &c.partitions)),
            None => gathered.ok.iter().map(|(_, c)| c.count).sum(),
        };
        Ok(CountResponse { count, partitions: BTreeMap::new() })
    }

    /// `POST /collections/{name}/delete`.
    pub(crate) async fn delete_by_filter(
        &self,
        name: &str,
        request: DeleteByFilterRequest,
        credentials: &Credentials,
    ) -> Result<DeleteByFilterResponse, ApiError> {
        validate_collection_name(name)?;
        let filter = request.validate()?;
        let shape = self.shape(name, credentials).await?;
        let body = serde_json::to_vec(&DeleteByFilterRequest { filter: Some(filter) }).map_err(internal)?;
        let path = format!("/collections/{name}/delete?version={}", self.clock.next());
        let results = self.to_every_shard("delete_by_filter", Method::POST, &path, Some(body), credentials).await;
        let mut answers: Vec<(usize, DeleteByFilterResponse)> = Vec::with_capacity(results.len());
        let mut failed = Vec::new();
        let mut down = Vec::new();
        for (shard, result) in results {
            match result {
                Ok(bytes) => {
                    let answer = serde_json::from_slice(&bytes)
                        .map_err(|e| self.client.invalid_response(&self.metrics, shard, &e.to_string()).into_api())?;
                    answers.push((shard, answer));
                }
                Err(ShardError::Unavailable { message, .. }) => {
                    failed.push(shard);
                    down.push(message);
                }
                Err(e) => return Err(self.forward(name, e)),
            }
        }
        let advice = "retrying is safe (the delete is versioned)";
        if !failed.is_empty() {
            let Some(partitions) = shape.partitions else {
                return Err(crate::decide::unavailable(&down, advice));
            };
            let answered: Vec<(usize, &[u32])> = answers.iter().map(|(s, _)| (*s, &[][..])).collect();
            if self.replicas() < 2 || !self.covers(name, partitions, &answered) {
                return Err(crate::decide::unavailable(&down, advice));
            }
            let table = self.table(name, partitions);
            for &shard in &failed {
                let held =
                    table.iter().enumerate().filter(|(_, copies)| copies.contains(&shard)).map(|(p, _)| p as u32);
                self.missed(shard, name, held.collect::<Vec<_>>(), 1);
            }
        }
        let deleted = match shape.partitions {
            Some(_) => per_partition_max(answers.iter().map(|(_, a)| &a.partitions)),
            None => answers.iter().map(|(_, a)| a.deleted).sum(),
        };
        Ok(DeleteByFilterResponse { deleted, partitions: BTreeMap::new() })
    }
}
