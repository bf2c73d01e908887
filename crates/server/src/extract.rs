//! Request extractors whose rejections are our JSON errors instead of
//! axum's plain-text ones.
//!
//! - [`Body`]: the raw body bytes; over `Limits::max_body_bytes` → 413
//!   `payload_too_large`; not all there within
//!   `Limits::body_read_timeout_ms` → 408 `request_timeout`; a body that
//!   cannot be read → 400 `bad_request`.
//!   Handlers parse it with `ruvector_api::parse_json` (which ignores the
//!   `Content-Type`, as the seed did).
//! - [`ApiPath`]: path parameters; undecodable → 400 `bad_request`.
//! - [`ApiQuery`]: the query string; undecodable → 400 `bad_request`.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use ruvector_api::ApiError;
use ruvector_api::http_serve::read_body;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::HttpError;

/// The request body, at most `Limits::max_body_bytes` long, read within
/// `Limits::body_read_timeout_ms` (`ruvector_api::http_serve::read_body`).
#[derive(Debug)]
pub(crate) struct Body(pub(crate) Bytes);

impl FromRequest<AppState> for Body {
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        read_body(req, state.limits()).await.map(Body).map_err(HttpError)
    }
}

/// Path parameters.
#[derive(Debug)]
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(t)) => Ok(ApiPath(t)),
            Err(r) if r.status().is_server_error() => Err(HttpError(ApiError::internal(r.body_text()))),
            Err(r) => Err(HttpError(ApiError::BadRequest(format!("invalid path: {}", r.body_text())))),
        }
    }
}

/// Query parameters.
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(t)| ApiQuery(t))
            .map_err(|r| HttpError(ApiError::BadRequest(format!("invalid query string: {}", r.body_text()))))
    }
}
