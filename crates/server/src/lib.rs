//! `ruvector-server`: the HTTP node — axum (hyper) handlers over the
//! [`ruvector_engine::Engine`], plus `/health`, `/ready`, `/metrics`,
//! `/openapi.json`, optional API keys, request limits and graceful shutdown.
//!
//! The wire types, validation and error codes are `ruvector_api`'s; this
//! crate only extracts, validates, converts, calls the engine off the async
//! runtime and maps the result. Modules, one job each:
//!
//! | module | owns |
//! |---|---|
//! | `config` | [`ServerConfig`], [`StorageConfig`], the engine configuration derived from them |
//! | `serve` | [`serve`]: bind, print the address, recover, serve, drain, checkpoint |
//! | `router` | [`app`]: the route table and the middleware stack |
//! | `handlers` | one function per route |
//! | `extract` | body / path / query extractors with JSON rejections |
//! | `convert` | wire ↔ engine types |
//! | `search` | search, including payload filters (the engine plans them); counting and deleting by filter |
//! | `auth` | API keys (read-write, read-only), constant-time comparison |
//! | `metrics` | the Prometheus registry and HTTP middleware |
//! | `error` | [`ServerError`], [`HttpError`], the one engine → API error mapping |
//! | `state` | [`AppState`] |
//!
//! ```no_run
//! # async fn run() -> Result<(), ruvector_server::ServerError> {
//! let config = ruvector_server::ServerConfig { addr: "127.0.0.1:0".into(), ..Default::default() };
//! ruvector_server::serve(config, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! Routes and their shapes are listed in `ruvector_api`'s crate docs; every
//! error is `{"error":"<message>","code":"<code>"}`: unknown routes 404,
//! wrong methods 405 (with `Allow`), bodies over `limits.max_body_bytes`
//! 413, collection routes 503 `recovering` until the engine is open.

mod auth;
mod config;
mod convert;
mod error;
mod extract;
mod handlers;
mod membership;
mod metrics;
mod router;
mod search;
mod serve;
mod state;

pub use auth::API_KEY_HEADER;
pub use config::{ServerConfig, StorageConfig};
pub use error::{HttpError, ServerError, api_error};
pub use router::app;
pub use ruvector_engine::Fsync;
pub use serve::{serve, serve_on};
pub use state::AppState;
