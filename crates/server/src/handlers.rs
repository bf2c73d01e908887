//! The route handlers. Each one extracts, parses and validates with
//! `ruvector_api`, converts (`convert.rs`), calls the engine on the blocking
//! pool, and maps the result — nothing else.
//!
//! Order of checks for a collection route: the name's syntax (400
//! `invalid_name`), then the collection's existence (404, before the body
//! is looked at, since validating a body needs the collection's dimension
//! and metric), then the body or id (400), then the engine call.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ruvector_api::{
    ApiError, AssignmentRequest, BatchSearchRequest, CATCH_UP_HEADER, CollectionInfo, CountRequest, CountResponse,
    CreateCollectionRequest, DeleteByFilterRequest, DeleteByFilterResponse, DeleteQuery, Digests, DigestsQuery,
    IdsPage, IdsQuery, ImportReport, PartitionDigest, PartitionStateRequest, PartitionStateResponse,
    PayloadIndexRequest, PurgeRequest, PurgeResponse, SNAPSHOT_MEDIA_TYPE, SearchHit, SearchRequest, ShardAssignment,
    SnapshotReader, SnapshotRecord, SnapshotWriter, Stamps, StampsQuery, StatusResponse, UNREADY_HEADER, UpsertRequest,
    VectorRecord, VersionStamp, format_unready, node_openapi, parse_json, parse_partition, parse_vector_id,
    partition_of, stamp_hash, validate_collection_name, validate_payload_key,
};
use ruvector_engine::{CollectionConfig, DeleteOutcome, Engine, EngineError, Exported, Point};

use crate::AppState;
use crate::convert;
use crate::error::{HttpError, api_error};
use crate::extract::{ApiPath, ApiQuery, Body};
use crate::membership::Gate;
use crate::search;

type Result<T> = std::result::Result<T, HttpError>;

/// Runs a short CPU-bound engine call (a search: a fraction of a
/// millisecond) with `block_in_place`: the worker thread runs it after
/// handing its other tasks to the rest of the runtime, which saves the
/// thread hand-off of the blocking pool on the hot path (+20–40 % QPS with
/// wrk at ef 64, see BENCHMARKS.md). On a
/// current-thread runtime (tests) it falls back to [`blocking`].
async fn compute<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> std::result::Result<T, EngineError> + Send + 'static,
{
    if tokio::runtime::Handle::current().runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return blocking(f).await;
    }
    // A panic unwinds to the router's catch-panic layer (a 500), and
    // block_in_place restores the worker on the way.
    tokio::task::block_in_place(f).map_err(|e| HttpError(api_error(e)))
}

/// Runs engine work on the blocking pool. A panic there becomes a 500.
async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> std::result::Result<T, EngineError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(|e| HttpError(api_error(e))),
        Err(e) => Err(HttpError(ApiError::internal(format!("blocking task failed: {e}")))),
    }
}

/// The ready engine and the configuration of collection `name`.
fn collection(state: &AppState, name: &str) -> Result<(std::sync::Arc<Engine>, CollectionConfig)> {
    validate_collection_name(name)?;
    let engine = state.ready_engine()?;
    let config = engine.collection_config(name).map_err(api_error)?;
    Ok((engine, config))
}

/// `GET|HEAD /health`.
pub(crate) async fn health() -> Json<StatusResponse> {
    Json(StatusResponse::ok())
}

/// `GET /ready`.
pub(crate) async fn ready(State(state): State<AppState>) -> Result<Json<StatusResponse>> {
    state.readiness()?;
    Ok(Json(StatusResponse::ok()))
}

/// `GET /started`: 200 once recovery has finished, whatever the partitions'
/// catch-up or a shutdown say (startup probes: recovery may take minutes,
/// catching up needs a router).
pub(crate) async fn started(State(state): State<AppState>) -> Result<Json<StatusResponse>> {
    state.ready_engine()?;
    Ok(Json(StatusResponse::ok()))
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response> {
    let text = tokio::task::spawn_blocking(move || state.metrics().render(state.engine().map(|e| &**e)))
        .await
        .map_err(|e| ApiError::internal(format!("metrics task failed: {e}")))?
        .map_err(|e| ApiError::internal(format!("rendering metrics: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response())
}

/// `GET /openapi.json`: the client API and the node-only replication
/// routes (`ruvector_api::node_openapi`).
pub(crate) async fn openapi() -> Response {
    Json(node_openapi()).into_response()
}

/// `GET /collections`.
pub(crate) async fn list_collections(State(state): State<AppState>) -> Result<Json<Vec<CollectionInfo>>> {
    let engine = state.ready_engine()?;
    let all = blocking(move || Ok(engine.collections())).await?;
    Ok(Json(all.into_iter().map(convert::collection_info).collect()))
}

/// `POST /collections`.
pub(crate) async fn create_collection(
    State(state): State<AppState>,
    Body(body): Body,
) -> Result<(StatusCode, Json<StatusResponse>)> {
    let engine = state.ready_engine()?;
    let valid = parse_json::<CreateCollectionRequest>(&body)?.validate(state.limits())?;
    let config = convert::collection_config(&valid)?;
    let declared = convert::declared_indexes(&valid);
    let started = Instant::now();
    blocking(move || engine.create_collection_with(&valid.name, config, &declared)).await?;
    state.metrics().observe_write("create_collection", started.elapsed());
    Ok((StatusCode::CREATED, Json(StatusResponse::created())))
}

/// `GET /collections/{name}`.
pub(crate) async fn get_collection(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<CollectionInfo>> {
    validate_collection_name(&name)?;
    let engine = state.ready_engine()?;
    let info = blocking(move || engine.collection(&name)).await?;
    Ok(Json(convert::collection_info(info)))
}

/// `DELETE /collections/{name}`.
pub(crate) async fn delete_collection(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<StatusResponse>> {
    validate_collection_name(&name)?;
    let engine = state.ready_engine()?;
    let started = Instant::now();
    let dropped = name.clone();
    blocking(move || engine.drop_collection(&dropped)).await?;
    let forgetting = state.clone();
    tokio::task::spawn_blocking(move || forgetting.membership().forget(&name))
        .await
        .map_err(|e| ApiError::internal(format!("assignment task failed: {e}")))??;
    state.metrics().observe_write("drop_collection", started.elapsed());
    Ok(Json(StatusResponse::deleted()))
}

/// `POST /collections/{name}/vectors`.
pub(crate) async fn upsert_vectors(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    Body(body): Body,
) -> Result<(StatusCode, Json<StatusResponse>)> {
    let (engine, config) = collection(&state, &name)?;
    let metric = convert::metric_from_engine(config.metric);
    let valid = parse_json::<UpsertRequest>(&body)?.validate(config.dimension, metric, state.limits())?;
    state.membership().check_write(&name, valid.vectors.iter().map(|v| v.id))?;
    let points = valid.vectors.into_iter().map(convert::point).collect::<std::result::Result<Vec<_>, _>>()?;
    let started = Instant::now();
    // Like a search: the write runs on this worker (`block_in_place`), one
    // thread hand-off less; its graph linking goes to the engine's link pool.
    let n = compute(move || engine.upsert(&name, points)).await?;
    state.metrics().observe_write("upsert", started.elapsed());
    Ok((StatusCode::CREATED, Json(StatusResponse::inserted(n))))
}

/// `GET /collections/{name}/vectors/{id}`.
pub(crate) async fn get_vector(
    State(state): State<AppState>,
    ApiPath((name, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<VectorRecord>> {
    validate_collection_name(&name)?;
    let id = parse_vector_id(&id)?;
    let engine = state.ready_engine()?;
    let catch_up = headers.contains_key(CATCH_UP_HEADER);
    if catch_up {
        // A catch-up copying from this copy, filling or not.
        state.membership().check_write(&name, [id])?;
    } else {
        state.membership().check_read(&name, id)?;
    }
    let (point, name) = blocking(move || {
        let point = if catch_up {
            // The vector and its version read together (`Engine::export`).
            engine.export(&name, &[id])?.into_iter().find_map(|e| match e {
                Exported::Point(p) => Some(p),
                Exported::Tombstone { .. } => None,
            })
        } else {
            engine.get(&name, id)?
        };
        Ok((point, name))
    })
    .await?;
    let point = point.ok_or_else(|| ApiError::not_found_vector(&name, id))?;
    Ok(Json(convert::record(point)?))
}

/// `DELETE /collections/{name}/vectors/{id}`.
pub(crate) async fn delete_vector(
    State(state): State<AppState>,
    ApiPath((name, id)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<DeleteQuery>,
) -> Result<Json<StatusResponse>> {
    validate_collection_name(&name)?;
    let id = parse_vector_id(&id)?;
    let version = query.validate()?.unwrap_or(0);
    let engine = state.ready_engine()?;
    state.membership().check_write(&name, [id])?;
    let started = Instant::now();
    let (outcome, name) = blocking(move || engine.delete_versioned(&name, id, version).map(|o| (o, name))).await?;
    state.metrics().observe_write("delete", started.elapsed());
    match outcome {
        DeleteOutcome::Deleted => Ok(Json(StatusResponse::deleted())),
        DeleteOutcome::Tombstoned => Ok(Json(StatusResponse::tombstoned())),
        DeleteOutcome::Stale => Ok(Json(StatusResponse::stale())),
        DeleteOutcome::Absent => Err(ApiError::not_found_vector(&name, id).into()),
    }
}

/// `POST /collections/{name}/payload_indexes`: 201 when the index was
/// built (over the stored payloads, before answering), 200 `unchanged`
/// when it existed.
pub(crate) async fn create_payload_index(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    Body(body): Body,
) -> Result<(StatusCode, Json<StatusResponse>)> {
    let (engine, _) = collection(&state, &name)?;
    let valid = parse_json::<PayloadIndexRequest>(&body)?.validate()?;
    let started = Instant::now();
    let kind = convert::index_kind(valid.kind);
    let changed = blocking(move || engine.declare_payload_index(&name, &valid.key, kind)).await?;
    state.metrics().observe_write("payload_index", started.elapsed());
    Ok(if changed {
        (StatusCode::CREATED, Json(StatusResponse::created()))
    } else {
        (StatusCode::OK, Json(StatusResponse::unchanged()))
    })
}

/// `DELETE /collections/{name}/payload_indexes/{key}`.
pub(crate) async fn delete_payload_index(
    State(state): State<AppState>,
    ApiPath((name, key)): ApiPath<(String, String)>,
) -> Result<Json<StatusResponse>> {
    let (engine, _) = collection(&state, &name)?;
    validate_payload_key("key", &key)?;
    let (dropped, key) = blocking(move || engine.drop_payload_index(&name, &key).map(|d| (d, key))).await?;
    if !dropped {
        return Err(ApiError::NotFound(format!("no payload index on key {key:?}")).into());
    }
    Ok(Json(StatusResponse::deleted()))
}

/// Per partition, how many of `ids` fall in it (a shard of a cluster
/// reports counts so; a node alone has no partitions).
fn per_partition(name: &str, partitions: Option<u32>, ids: &[u64]) -> std::collections::BTreeMap<u32, u64> {
    let mut out = std::collections::BTreeMap::new();
    if let Some(partitions) = partitions {
        for &id in ids {
            *out.entry(partition_of(name, id, partitions)).or_insert(0) += 1;
        }
    }
    out
}

/// `POST /collections/{name}/count`.
pub(crate) async fn count(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    Body(body): Body,
) -> Result<Response> {
    let (engine, config) = collection(&state, &name)?;
    let request = parse_json::<CountRequest>(&body)?.validate()?;
    let (gate, unready) = filling_gate(&state, &name);
    let counted = compute(move || {
        let filter = request.filter.unwrap_or_default();
        let readable = |id: u64| gate.as_deref().is_none_or(|g| g.readable(&name, id));
        let gate: ruvector_engine::Gate<'_> = if gate.is_some() { Some(&readable) } else { None };
        let filter = search::ApiFilter(&filter);
        if config.partitions.is_some() {
            let ids = engine.ids_matching(&name, &filter, gate)?;
            let partitions = per_partition(&name, config.partitions, &ids);
            Ok(CountResponse { count: ids.len() as u64, partitions })
        } else {
            let count = engine.count_matching(&name, &filter, gate)?;
            Ok(CountResponse { count, partitions: Default::default() })
        }
    })
    .await?;
    Ok(with_unready(Json(counted), &unready))
}

/// `POST /collections/{name}/delete?version=`: deletes the vectors that
/// pass the filter, durably; with a version (from a router), each delete
/// leaves a tombstone of that version.
pub(crate) async fn delete_by_filter(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<DeleteQuery>,
    Body(body): Body,
) -> Result<Json<DeleteByFilterResponse>> {
    let (engine, config) = collection(&state, &name)?;
    let filter = parse_json::<DeleteByFilterRequest>(&body)?.validate()?;
    let version = query.validate()?.unwrap_or(0);
    // In a cluster the delete is a write like any other: it reaches every
    // held partition, filling ones included (during a move the source may
    // release its copy before the target is ready), never a released one
    // (its data is on its way out).
    let gate = state.membership().gate(&name);
    let started = Instant::now();
    let deleted = blocking(move || {
        let writable = |id: u64| gate.as_deref().is_none_or(|g| g.writable(&name, id));
        let gate: ruvector_engine::Gate<'_> = if gate.is_some() { Some(&writable) } else { None };
        let ids = engine.delete_matching(&name, &search::ApiFilter(&filter), gate, version)?;
        let partitions = per_partition(&name, config.partitions, &ids);
        Ok(DeleteByFilterResponse { deleted: ids.len() as u64, partitions })
    })
    .await?;
    state.metrics().observe_write("delete_by_filter", started.elapsed());
    Ok(Json(deleted))
}

/// `POST /collections/{name}/search`.
pub(crate) async fn search(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    Body(body): Body,
) -> Result<Response> {
    let (engine, config) = collection(&state, &name)?;
    let valid = parse_json::<SearchRequest>(&body)?.validate(config.dimension, state.limits())?;
    let (gate, unready) = filling_gate(&state, &name);
    let searched = compute(move || search::search(&engine, &name, &valid, gate.as_deref())).await?;
    state.metrics().observe_filter_plans(searched.plan.map(|p| p.name()));
    Ok(with_unready(Json(searched.hits), &unready))
}

/// `POST /collections/{name}/search/batch`.
pub(crate) async fn search_batch(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    Body(body): Body,
) -> Result<Response> {
    let (engine, config) = collection(&state, &name)?;
    let valid = parse_json::<BatchSearchRequest>(&body)?.validate(config.dimension, state.limits())?;
    let (gate, unready) = filling_gate(&state, &name);
    let searched: Vec<search::Searched> =
        compute(move || valid.searches.iter().map(|s| search::search(&engine, &name, s, gate.as_deref())).collect())
            .await?;
    state.metrics().observe_filter_plans(searched.iter().filter_map(|s| s.plan.map(|p| p.name())));
    let hits: Vec<Vec<SearchHit>> = searched.into_iter().map(|s| s.hits).collect();
    Ok(with_unready(Json(hits), &unready))
}

/// The gate of `name` when some of its held partitions are filling (reads
/// leave them out), and those partitions; `(None, [])` otherwise, so reads
/// of a node used alone or fully caught up take the plain path.
fn filling_gate(state: &AppState, name: &str) -> (Option<Arc<Gate>>, Vec<u32>) {
    match state.membership().gate(name) {
        Some(gate) if gate.filters() => {
            let left_out = gate.left_out();
            (Some(gate), left_out)
        }
        _ => (None, Vec::new()),
    }
}

/// `response` with the unready-partitions header when some were left out.
fn with_unready(response: impl IntoResponse, unready: &[u32]) -> Response {
    let mut response = response.into_response();
    if !unready.is_empty()
        && let Ok(value) = HeaderValue::from_str(&format_unready(unready))
    {
        response.headers_mut().insert(UNREADY_HEADER, value);
    }
    response
}

/// `GET /collections/{name}/ids?after=&limit=`.
pub(crate) async fn list_ids(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<IdsQuery>,
) -> Result<Response> {
    validate_collection_name(&name)?;
    let q = query.validate(state.limits())?;
    let engine = state.ready_engine()?;
    let (gate, unready) = filling_gate(&state, &name);
    // One id more than asked tells whether another page follows.
    let want = q.limit.saturating_add(1);
    let ids = blocking(move || {
        let Some(gate) = gate else { return engine.ids(&name, q.after, want) };
        // Filling partitions are left out: read on until `want` ids pass.
        let mut out = Vec::with_capacity(want);
        let mut after = q.after;
        loop {
            let page = engine.ids(&name, after, want)?;
            let exhausted = page.len() < want;
            after = page.last().copied().or(after);
            out.extend(page.into_iter().filter(|&id| gate.readable(&name, id)));
            if out.len() >= want || exhausted {
                out.truncate(want);
                return Ok(out);
            }
        }
    })
    .await?;
    Ok(with_unready(Json(IdsPage::from_ascending(ids, q.limit)), &unready))
}

/// The partition count of a collection made with partitions; 400 for one
/// made without (a node used on its own).
fn partitions_of(name: &str, config: &CollectionConfig) -> Result<u32> {
    config
        .partitions
        .ok_or_else(|| ApiError::InvalidParameter(format!("collection {name:?} was created without partitions")).into())
}

/// `GET /collections/{name}/digests?before=V`: per partition, the count
/// and hash of the version stamps this copy holds (older than `V` when
/// given): what replicas compare.
pub(crate) async fn digests(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<DigestsQuery>,
) -> Result<Json<Digests>> {
    let (engine, config) = collection(&state, &name)?;
    let partitions = partitions_of(&name, &config)?;
    let before = query.validate()?;
    let digests = blocking(move || {
        let mut out = vec![PartitionDigest::default(); partitions as usize];
        for (id, version, deleted) in engine.stamps(&name)? {
            if version >= before {
                continue;
            }
            let d = &mut out[partition_of(&name, id, partitions) as usize];
            d.count += 1;
            d.live += u64::from(!deleted);
            d.hash = d.hash.wrapping_add(stamp_hash(id, version, deleted));
        }
        Ok(out)
    })
    .await?;
    Ok(Json(Digests { partitions: digests }))
}

/// `POST /collections/{name}/tombstones/purge`: forget this copy's
/// tombstones older than `before` in the given partitions, and remember
/// the bound (reported by `stamps` as `purged_before`).
pub(crate) async fn purge_tombstones(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    Body(body): Body,
) -> Result<Json<PurgeResponse>> {
    let (engine, config) = collection(&state, &name)?;
    let partitions = partitions_of(&name, &config)?;
    let request = parse_json::<PurgeRequest>(&body)?;
    request.validate(partitions)?;
    let chosen: std::collections::HashSet<u32> = request.partitions.iter().copied().collect();
    let (purging, before) = (name.clone(), request.before);
    let purged = blocking(move || {
        engine.purge_tombstones(&purging, before, |id| chosen.contains(&partition_of(&purging, id, partitions)))
    })
    .await?;
    let recorder = state.clone();
    tokio::task::spawn_blocking(move || recorder.membership().note_purged(&name, &request.partitions, before))
        .await
        .map_err(|e| ApiError::internal(format!("assignment task failed: {e}")))??;
    Ok(Json(PurgeResponse { purged: purged as u64 }))
}

/// `GET /collections/{name}/stamps?partition=P`: every version stamp of one
/// partition on this copy, ascending by id.
pub(crate) async fn stamps(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<StampsQuery>,
) -> Result<Json<Stamps>> {
    let (engine, config) = collection(&state, &name)?;
    let partitions = partitions_of(&name, &config)?;
    let partition = query.validate(partitions)?;
    let query_name = name.clone();
    let mut stamps = blocking(move || {
        Ok(engine
            .stamps(&name)?
            .into_iter()
            .filter(|&(id, ..)| partition_of(&name, id, partitions) == partition)
            .map(|(id, version, deleted)| VersionStamp { id, version, deleted })
            .collect::<Vec<_>>())
    })
    .await?;
    stamps.sort_unstable_by_key(|s| s.id);
    Ok(Json(Stamps { stamps, purged_before: state.membership().purged_before(&query_name, partition) }))
}

/// Ids per [`Engine::export`] call while writing a snapshot: the write
/// lock is held for one call.
const EXPORT_CHUNK: usize = 256;

/// Points or tombstones per engine write while applying a snapshot.
const IMPORT_BATCH: usize = 512;

/// `GET /collections/{name}/partitions/{partition}/snapshot`: this copy's
/// newest versioned write of every id in the partition (live points and
/// tombstones), streamed in the partition snapshot format
/// (`ruvector_api::SnapshotWriter`), read a chunk of ids at a time.
pub(crate) async fn export_partition(
    State(state): State<AppState>,
    ApiPath((name, partition)): ApiPath<(String, String)>,
) -> Result<Response> {
    let (engine, config) = collection(&state, &name)?;
    let partitions = partitions_of(&name, &config)?;
    let partition = parse_partition(&partition, partitions)?;
    state.membership().check_partition(&name, partition)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::result::Result<Vec<u8>, std::io::Error>>(4);
    let dimension = config.dimension;
    tokio::task::spawn_blocking(move || {
        let fail = |e: EngineError| {
            // Ends the response early: the receiver sees a cut-off snapshot.
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        };
        let mut ids: Vec<u64> = match engine.stamps(&name) {
            Ok(stamps) => stamps
                .into_iter()
                .map(|(id, ..)| id)
                .filter(|&id| partition_of(&name, id, partitions) == partition)
                .collect(),
            Err(e) => return fail(e),
        };
        ids.sort_unstable();
        let (mut writer, header) = SnapshotWriter::new(dimension, partition);
        if tx.blocking_send(Ok(header)).is_err() {
            return;
        }
        for chunk in ids.chunks(EXPORT_CHUNK) {
            match engine.export(&name, chunk) {
                Ok(items) => {
                    for item in items {
                        match item {
                            Exported::Point(p) => writer.point(p.id, p.version, &p.vector, p.payload.as_deref()),
                            Exported::Tombstone { id, version } => writer.tombstone(id, version),
                        }
                    }
                }
                Err(e) => return fail(e),
            }
            if let Some(frame) = writer.take_frame()
                && tx.blocking_send(Ok(frame)).is_err()
            {
                return;
            }
        }
        let _ = tx.blocking_send(Ok(writer.finish()));
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) });
    Ok(([(header::CONTENT_TYPE, SNAPSHOT_MEDIA_TYPE)], axum::body::Body::from_stream(stream)).into_response())
}

/// `POST /collections/{name}/partitions/{partition}/snapshot`: applies a
/// partition snapshot as it arrives, as versioned writes (each changes
/// this copy only when newer than what it holds), a batch at a time, each
/// batch from a frame whose checksum was verified. A damaged or cut-off
/// stream is a 400 naming the offset; what was applied before stays (it
/// is as valid as any replicated write), and sending the snapshot again
/// completes it.
pub(crate) async fn import_partition(
    State(state): State<AppState>,
    ApiPath((name, partition)): ApiPath<(String, String)>,
    request: axum::extract::Request,
) -> Result<Json<ImportReport>> {
    use futures::StreamExt;
    let (engine, config) = collection(&state, &name)?;
    let partitions = partitions_of(&name, &config)?;
    let partition = parse_partition(&partition, partitions)?;
    state.membership().check_partition(&name, partition)?;
    let limits = state.limits();
    let mut reader = SnapshotReader::new(limits.max_dimension, limits.max_body_bytes);
    let mut report = ImportReport::default();
    let mut points: Vec<Point> = Vec::new();
    let mut tombstones: Vec<(u64, u64)> = Vec::new();
    let mut body = request.into_body().into_data_stream();
    let bad = |e: ruvector_api::SnapshotError| HttpError(ApiError::BadRequest(e.to_string()));
    loop {
        let chunk = body.next().await;
        let last = chunk.is_none();
        if let Some(chunk) = chunk {
            let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("reading the snapshot body: {e}")))?;
            report.bytes += chunk.len() as u64;
            reader.feed(&chunk);
        }
        while let Some(record) = reader.next_record().map_err(bad)? {
            if reader.header() != Some((config.dimension, partition)) {
                return Err(ApiError::BadRequest(format!(
                    "the snapshot is of partition {:?} with dimension {:?}; this is partition {partition} of \
                     {name:?} with dimension {}",
                    reader.header().map(|h| h.1),
                    reader.header().map(|h| h.0),
                    config.dimension
                ))
                .into());
            }
            let id = match &record {
                SnapshotRecord::Point { id, .. } | SnapshotRecord::Tombstone { id, .. } => *id,
            };
            if partition_of(&name, id, partitions) != partition {
                return Err(ApiError::BadRequest(format!("vector {id} is not in partition {partition}")).into());
            }
            match record {
                SnapshotRecord::Point { id, version, vector, payload } => {
                    points.push(Point { id, vector, payload, version })
                }
                SnapshotRecord::Tombstone { id, version } => tombstones.push((id, version)),
            }
            if points.len() >= IMPORT_BATCH || tombstones.len() >= IMPORT_BATCH {
                apply_snapshot_batch(&engine, &name, &mut points, &mut tombstones, &mut report).await?;
            }
        }
        if last {
            break;
        }
    }
    reader.finish().map_err(bad)?;
    apply_snapshot_batch(&engine, &name, &mut points, &mut tombstones, &mut report).await?;
    report.records = reader.records();
    Ok(Json(report))
}

/// Writes the collected points, then the tombstones, of a snapshot.
async fn apply_snapshot_batch(
    engine: &Arc<Engine>,
    name: &str,
    points: &mut Vec<Point>,
    tombstones: &mut Vec<(u64, u64)>,
    report: &mut ImportReport,
) -> Result<()> {
    let (engine, name) = (Arc::clone(engine), name.to_owned());
    let (points, tombstones) = (std::mem::take(points), std::mem::take(tombstones));
    let (upserted, deleted) = blocking(move || {
        let upserted = if points.is_empty() { 0 } else { engine.upsert_bulk(&name, points)? };
        let deleted = if tombstones.is_empty() { 0 } else { engine.delete_versions(&name, &tombstones)? };
        Ok((upserted, deleted))
    })
    .await?;
    report.upserted += upserted as u64;
    report.deleted += deleted as u64;
    Ok(())
}

/// The partitioned collections of `engine`: (name, partition count).
fn partitioned(engine: &Engine) -> Vec<(String, u32)> {
    engine.collections().into_iter().filter_map(|c| c.config.partitions.map(|p| (c.name, p))).collect()
}

/// `GET /cluster/assignment`.
pub(crate) async fn get_assignment(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Json<ShardAssignment>> {
    let engine = state.ready_engine()?;
    if let Some(placement) = headers.get(ruvector_api::PLACEMENT_HEADER).and_then(|v| v.to_str().ok()) {
        state.membership().router_seen(placement);
    }
    let collections = blocking(move || Ok(partitioned(&engine))).await?;
    Ok(Json(state.membership().report(collections)))
}

/// `PUT /cluster/assignment`: the partitions routers assign this shard.
pub(crate) async fn put_assignment(State(state): State<AppState>, Body(body): Body) -> Result<Json<ShardAssignment>> {
    let engine = state.ready_engine()?;
    let request = parse_json::<AssignmentRequest>(&body)?;
    let lister = Arc::clone(&engine);
    let collections = blocking(move || Ok(partitioned(&lister))).await?;
    let (writer, known) = (state.clone(), collections.clone());
    // Rewrites and syncs cluster.json off the async workers.
    let released = tokio::task::spawn_blocking(move || {
        writer.membership().assign(request, |name| known.iter().find(|(n, _)| n == name).map(|(_, p)| Some(*p)))
    })
    .await
    .map_err(|e| ApiError::internal(format!("assignment task failed: {e}")))??;
    if !released.is_empty() {
        drop_released_later(state.clone(), engine);
    }
    Ok(Json(state.membership().report(collections)))
}

/// After the release grace: drops the data of every partition still
/// released then (one held again meanwhile keeps its data).
fn drop_released_later(state: AppState, engine: Arc<Engine>) {
    tokio::spawn(async move {
        tokio::time::sleep(state.release_grace()).await;
        let result = tokio::task::spawn_blocking(move || {
            let pending = state.membership().pending_releases();
            drop_released(&state, &engine, pending)
        })
        .await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "dropping released partitions failed; the next assignment retries")
            }
            Err(error) => tracing::warn!(%error, "the task dropping released partitions failed"),
        }
    });
}

/// Drops the points and stamps of partitions this node no longer holds,
/// then forgets them as released. Blocking.
pub(crate) fn drop_released(
    state: &AppState,
    engine: &Engine,
    released: Vec<crate::membership::Released>,
) -> std::result::Result<(), ApiError> {
    for r in released {
        let chosen: std::collections::HashSet<u32> = r.released.iter().copied().collect();
        let dropped = engine
            .drop_where(&r.collection, |id| chosen.contains(&partition_of(&r.collection, id, r.partitions)))
            .map_err(api_error)?;
        state.membership().release_done(&r.collection, &r.released)?;
        tracing::info!(collection = %r.collection, partitions = ?r.released, dropped, "dropped partitions moved to other shards");
    }
    Ok(())
}

/// `POST /cluster/partitions`: move held partitions to filling or ready.
pub(crate) async fn set_partition_state(
    State(state): State<AppState>,
    Body(body): Body,
) -> Result<Json<PartitionStateResponse>> {
    state.ready_engine()?;
    let request = parse_json::<PartitionStateRequest>(&body)?;
    validate_collection_name(&request.collection)?;
    let changed = state.membership().set_state(&request)?;
    if !changed.is_empty() {
        tracing::info!(collection = %request.collection, state = ?request.state, partitions = ?changed, "partition state");
    }
    Ok(Json(PartitionStateResponse { changed }))
}

/// Fallback: 404 JSON for every unknown route.
pub(crate) async fn not_found(method: Method, OriginalUri(uri): OriginalUri) -> HttpError {
    HttpError(ApiError::not_found_route(method.as_str(), uri.path()))
}
