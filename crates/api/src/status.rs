//! The `{"status": "..."}` body of successful writes and of `/health`.
//!
//! The strings are the seed's, byte for byte: `ok`, `created`, `deleted`,
//! `inserted N vectors` (even for N = 1 — clients match on it).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `{"status": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub struct StatusResponse {
    /// `ok`, `created`, `deleted` or `inserted N vectors`.
    pub status: String,
}

impl StatusResponse {
    /// `{"status":"ok"}` (health, readiness).
    pub fn ok() -> Self {
        StatusResponse { status: "ok".to_owned() }
    }

    /// `{"status":"created"}` (collection created, 201).
    pub fn created() -> Self {
        StatusResponse { status: "created".to_owned() }
    }

    /// `{"status":"deleted"}` (collection or vector deleted, 200).
    pub fn deleted() -> Self {
        StatusResponse { status: "deleted".to_owned() }
    }

    /// `{"status":"tombstoned"}`: a versioned delete of an absent id (200).
    pub fn tombstoned() -> Self {
        StatusResponse { status: "tombstoned".to_owned() }
    }

    /// `{"status":"stale"}`: a versioned delete older than the id's newest
    /// write; nothing changed (200).
    pub fn stale() -> Self {
        StatusResponse { status: "stale".to_owned() }
    }

    /// `{"status":"unchanged"}`: a declaration that was already in force
    /// (200).
    pub fn unchanged() -> Self {
        StatusResponse { status: "unchanged".to_owned() }
    }

    /// `{"status":"inserted N vectors"}` (upsert, 201).
    pub fn inserted(n: usize) -> Self {
        StatusResponse { status: format!("inserted {n} vectors") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_shapes() {
        let s = |r: StatusResponse| serde_json::to_string(&r).expect("ser");
        assert_eq!(s(StatusResponse::ok()), r#"{"status":"ok"}"#);
        assert_eq!(s(StatusResponse::created()), r#"{"status":"created"}"#);
        assert_eq!(s(StatusResponse::deleted()), r#"{"status":"deleted"}"#);
        assert_eq!(s(StatusResponse::inserted(3)), r#"{"status":"inserted 3 vectors"}"#);
        assert_eq!(s(StatusResponse::inserted(1)), r#"{"status":"inserted 1 vectors"}"#);
    }
}
