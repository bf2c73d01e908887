//! API keys, decided the same way by every node and every router.
//!
//! - With neither key configured every route is open.
//! - With either configured, every collection route needs a key, sent as
//!   `api-key: <key>` or `Authorization: Bearer <key>`. No key or an
//!   unknown key → 401 `unauthorized`. The read-only key may read (`GET`,
//!   `HEAD`, and the search `POST`s, which change nothing); anything else
//!   with it → 403 `forbidden`. With only a read-only key configured,
//!   nobody can write.
//!
//! Keys are compared in constant time: the presented key and each
//! configured key are reduced to SHA-256 digests (equal length whatever the
//! key lengths) and compared with `subtle`; both configured keys are always
//! compared, so timing reveals neither which key matched nor how much of it.

use http::{HeaderMap, Method, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ApiError;

/// Header carrying the key (Qdrant's name), besides `Authorization: Bearer`.
pub const API_KEY_HEADER: &str = "api-key";

type KeyDigest = [u8; 32];

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads only: `GET`, `HEAD`, searches, counts.
    Read,
    /// Changes something.
    Write,
}

impl Access {
    /// The access a request needs, from its method and matched route
    /// template: `GET`/`HEAD`/`OPTIONS` and the search `POST`s only read.
    pub fn of(method: &Method, route: &str) -> Access {
        let read = method == Method::GET
            || method == Method::HEAD
            || method == Method::OPTIONS
            || (method == Method::POST
                && (route.ends_with("/search") || route.ends_with("/search/batch") || route.ends_with("/count")));
        if read { Access::Read } else { Access::Write }
    }
}

/// A configured key was empty or blank (it would be trivially guessable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} must not be empty")]
pub struct BlankKey(pub &'static str);

/// The configured keys, held as digests.
#[derive(Clone, Default)]
pub struct ApiKeys {
    read_write: Option<KeyDigest>,
    read_only: Option<KeyDigest>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("read_write", &self.read_write.is_some())
            .field("read_only", &self.read_only.is_some())
            .finish()
    }
}

fn digest(key: &[u8]) -> KeyDigest {
    Sha256::digest(key).into()
}

impl ApiKeys {
    /// The key set from the `api_key` and `read_only_api_key` settings.
    pub fn new(read_write: Option<&str>, read_only: Option<&str>) -> Result<ApiKeys, BlankKey> {
        let check = |name: &'static str, key: Option<&str>| match key {
            Some(k) if k.trim().is_empty() => Err(BlankKey(name)),
            Some(k) => Ok(Some(digest(k.as_bytes()))),
            None => Ok(None),
        };
        Ok(ApiKeys { read_write: check("api_key", read_write)?, read_only: check("read_only_api_key", read_only)? })
    }

    /// Whether any key is configured.
    pub fn enabled(&self) -> bool {
        self.read_write.is_some() || self.read_only.is_some()
    }

    /// Whether writes are impossible (only a read-only key is configured).
    pub fn read_only_only(&self) -> bool {
        self.read_only.is_some() && self.read_write.is_none()
    }

    /// Decides a request from its headers and the access it needs.
    pub fn check(&self, headers: &HeaderMap, access: Access) -> Result<(), ApiError> {
        if !self.enabled() {
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

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).expect("header"));
        h
    }

    #[test]
    fn keys_and_roles() {
        let keys = ApiKeys::new(Some("rw-secret"), Some("ro-secret")).expect("keys");
        let none = HeaderMap::new();
        assert_eq!(keys.check(&none, Access::Read), Err(ApiError::Unauthorized));
        assert_eq!(keys.check(&headers("api-key", "rw-secret"), Access::Write), Ok(()));
        assert_eq!(keys.check(&headers("authorization", "Bearer rw-secret"), Access::Write), Ok(()));
        assert_eq!(keys.check(&headers("authorization", "bearer  ro-secret "), Access::Read), Ok(()));
        assert_eq!(keys.check(&headers("api-key", "ro-secret"), Access::Write), Err(ApiError::Forbidden));
        assert_eq!(keys.check(&headers("api-key", "rw-secre"), Access::Read), Err(ApiError::Unauthorized));
        assert_eq!(keys.check(&headers("authorization", "Basic rw-secret"), Access::Read), Err(ApiError::Unauthorized));
        assert_eq!(ApiKeys::new(None, None).expect("none").check(&none, Access::Write), Ok(()));
        let ro = ApiKeys::new(None, Some("ro")).expect("ro");
        assert!(ro.read_only_only());
        assert_eq!(ro.check(&headers("api-key", "ro"), Access::Write), Err(ApiError::Forbidden));
        assert_eq!(ApiKeys::new(Some(" "), None).expect_err("blank"), BlankKey("api_key"));
    }

    #[test]
    fn searches_are_reads() {
        assert_eq!(Access::of(&Method::POST, "/collections/{name}/search"), Access::Read);
        assert_eq!(Access::of(&Method::POST, "/collections/{name}/search/batch"), Access::Read);
        assert_eq!(Access::of(&Method::POST, "/collections/{name}/count"), Access::Read);
        assert_eq!(Access::of(&Method::POST, "/collections/{name}/delete"), Access::Write);
        assert_eq!(Access::of(&Method::POST, "/collections/{name}/payload_indexes"), Access::Write);
        assert_eq!(Access::of(&Method::GET, "/collections"), Access::Read);
        assert_eq!(Access::of(&Method::POST, "/collections/{name}/vectors"), Access::Write);
        assert_eq!(Access::of(&Method::DELETE, "/collections/{name}"), Access::Write);
    }
}
