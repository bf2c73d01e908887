//! Optional API keys, checked at the router exactly as a node checks them,
//! then forwarded to the shards unchanged (shards are configured with the
//! same keys, so they accept them).
//!
//! - With neither key configured every route is open (and whatever key
//!   header the client sent is still forwarded).
//! - With either configured, every collection route needs a key, sent as
//!   `api-key: <key>` or `Authorization: Bearer <key>`. No key or an
//!   unknown key → 401 `unauthorized`. The read-only key may read (`GET`,
//!   `HEAD`, and the search `POST`s, which change nothing); anything else
//!   with it → 403 `forbidden`. With only a read-only key configured,
//!   nobody can write.
//! - `/health`, `/ready`, `/metrics`, `/cluster` and `/openapi.json` are
//!   open, so probes and scrapes need no secret.
//!
//! Keys are compared in constant time: the presented key and both
//! configured keys are reduced to SHA-256 digests (equal length whatever the
//! key lengths) and compared with `subtle`; both are always compared.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ruvector_api::ApiError;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::RouterState;
use crate::error::HttpError;
use crate::shard::API_KEY_HEADER;

type KeyDigest = [u8; 32];

/// The configured keys, as digests.
#[derive(Clone, Default)]
pub(crate) struct Auth {
    read_write: Option<KeyDigest>,
    read_only: Option<KeyDigest>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("read_write", &self.read_write.is_some())
            .field("read_only", &self.read_only.is_some())
            .finish()
    }
}

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

fn digest(key: &[u8]) -> KeyDigest {
    Sha256::digest(key).into()
}

impl Auth {
    /// The key set (keys were checked non-blank by the config).
    pub(crate) fn new(read_write: Option<&str>, read_only: Option<&str>) -> Auth {
        if read_only.is_some() && read_write.is_none() {
            tracing::warn!("only read_only_api_key is configured: every write will be refused");
        }
        Auth {
            read_write: read_write.map(|k| digest(k.as_bytes())),
            read_only: read_only.map(|k| digest(k.as_bytes())),
        }
    }

    /// Decides a request from its headers.
    pub(crate) fn check(&self, headers: &HeaderMap, access: Access) -> Result<(), ApiError> {
        if self.read_write.is_none() && self.read_only.is_none() {
            return Ok(());
        }
        let Some(presented) = presented_key(headers) else { return Err(ApiError::Unauthorized) };
        let presented = digest(presented);
        let matches = |k: &Option<KeyDigest>| k.as_ref().map_or(subtle::Choice::from(0), |k| k.ct_eq(&presented));
        let is_rw = bool::from(matches(&self.read_write));
        let is_ro = bool::from(matches(&self.read_only));
        match (is_rw, is_ro, access) {
            (true, _, _) | (false, true, Access::Read) => Ok(()),
            (false, true, Access::Write) => Err(ApiError::Forbidden),
            (false, false, _) => Err(ApiError::Unauthorized),
        }
    }
}

/// The key from `api-key`, else from `Authorization: Bearer`.
fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(v) = headers.get(API_KEY_HEADER) {
        return Some(v.as_bytes());
    }
    let auth = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = auth.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then(|| rest.trim_ascii())
}

/// Whether a request only reads: `GET`/`HEAD`, or a search `POST`.
pub(crate) fn access_of(method: &Method, route: &str) -> Access {
    if method == Method::GET || method == Method::HEAD || method == Method::OPTIONS {
        return Access::Read;
    }
    if method == Method::POST && (route.ends_with("/search") || route.ends_with("/search/batch")) {
        return Access::Read;
    }
    Access::Write
}

/// Middleware on the collection routes (a `route_layer`, so the matched
/// route template is known).
pub(crate) async fn require_key(State(state): State<RouterState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("", |p| p.as_str());
    let access = access_of(req.method(), route);
    match state.auth().check(req.headers(), access) {
        Ok(()) => next.run(req).await,
        Err(e) => HttpError(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).expect("header"));
        h
    }

    #[test]
    fn keys_and_roles() {
        let auth = Auth::new(Some("rw-secret"), Some("ro-secret"));
        let none = HeaderMap::new();
        assert_eq!(auth.check(&none, Access::Read), Err(ApiError::Unauthorized));
        assert_eq!(auth.check(&headers("api-key", "rw-secret"), Access::Write), Ok(()));
        assert_eq!(auth.check(&headers("authorization", "Bearer rw-secret"), Access::Write), Ok(()));
        assert_eq!(auth.check(&headers("authorization", "bearer  ro-secret "), Access::Read), Ok(()));
        assert_eq!(auth.check(&headers("api-key", "ro-secret"), Access::Write), Err(ApiError::Forbidden));
        assert_eq!(auth.check(&headers("api-key", "rw-secre"), Access::Read), Err(ApiError::Unauthorized));
        assert_eq!(auth.check(&headers("authorization", "Basic rw-secret"), Access::Read), Err(ApiError::Unauthorized));
        assert_eq!(Auth::new(None, None).check(&none, Access::Write), Ok(()));
        assert_eq!(
            Auth::new(None, Some("ro")).check(&headers("api-key", "ro"), Access::Write),
            Err(ApiError::Forbidden)
        );
    }

    #[test]
    fn searches_are_reads() {
        assert_eq!(access_of(&Method::POST, "/collections/{name}/search"), Access::Read);
        assert_eq!(access_of(&Method::POST, "/collections/{name}/search/batch"), Access::Read);
        assert_eq!(access_of(&Method::GET, "/collections"), Access::Read);
        assert_eq!(access_of(&Method::POST, "/collections/{name}/vectors"), Access::Write);
        assert_eq!(access_of(&Method::DELETE, "/collections/{name}"), Access::Write);
    }
}
