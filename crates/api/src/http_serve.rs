//! [`serve_http1`]: the HTTP/1.1 accept loop the node and the router share,
//! with the timers that keep slow and idle clients from holding a
//! connection open forever (feature `serve`).
//!
//! axum's own `serve` gives hyper no timer, so hyper applies no header
//! timeout at all: a client dribbling its request head one byte at a time,
//! or connecting and sending nothing, kept its connection (and its task,
//! buffers and file descriptor) for as long as it liked. Here each
//! connection is served by hyper's HTTP/1 builder with a Tokio timer and
//! `Limits::header_read_timeout_ms`, which hyper counts from the moment it
//! waits for a request head — on a new connection and after every response
//! on a kept-alive one — so the same timer cuts slow heads, silent new
//! connections and idle keep-alive connections. Bodies are read by
//! [`read_body`], under `Limits::body_read_timeout_ms` (a deadline for the
//! whole body, so a body dribbled byte by byte is cut too: 408).
//!
//! Only HTTP/1.1 is served: HTTP/2 (h2c) has no header timer in hyper, and
//! no client of ours speaks it.
//!
//! Invariants: every connection is its own task (a slow one holds no
//! worker); on shutdown the listener is closed first, then every connection
//! finishes its in-flight request and closes (`GracefulShutdown`).

use std::future::Future;
use std::io;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::{ApiError, Limits};

/// Serves `app` on `listener` (HTTP/1.1, keep-alive) until `shutdown`
/// completes, then stops accepting and waits for open connections to
/// finish their in-flight requests. A timeout of 0 disables that timer.
pub async fn serve_http1(
    listener: TcpListener,
    app: axum::Router,
    limits: &Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new());
    let header_timeout = limits.header_read_timeout();
    builder.header_read_timeout((!header_timeout.is_zero()).then_some(header_timeout));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) if is_per_connection(&error) => continue,
            Err(error) => {
                // Out of file descriptors (or memory): nothing to wait on
                // but time. Keep serving the connections already open.
                tracing::warn!(%error, "accept failed; retrying in 100 ms");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                // Timeouts, resets and malformed requests: the client's
                // doing, worth a debug line only.
                tracing::debug!(%peer, %error, "connection closed");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Errors of one connection that `accept` reports (the peer reset before
/// it was accepted): skip it, accept the next.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// Reads a whole request body under both body limits: more than
/// `max_body_bytes` (as `DefaultBodyLimit` enforces it) → 413
/// `payload_too_large`; not all there within `body_read_timeout_ms` → 408
/// `request_timeout` (hyper then closes the connection: the rest of the
/// body is never read); a body that breaks off → 400 `bad_request`.
pub async fn read_body(request: axum::extract::Request, limits: &Limits) -> Result<axum::body::Bytes, ApiError> {
    use axum::extract::FromRequest;
    let read = axum::body::Bytes::from_request(request, &());
    let timeout = limits.body_read_timeout();
    let result = if timeout.is_zero() {
        read.await
    } else {
        tokio::time::timeout(timeout, read).await.map_err(|_| {
            ApiError::RequestTimeout(format!(
                "the request body did not arrive within {} ms (limits.body_read_timeout_ms)",
                limits.body_read_timeout_ms
            ))
        })?
    };
    result.map_err(|rejection| {
        if rejection.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge { limit: limits.max_body_bytes }
        } else {
            ApiError::BadRequest(format!("cannot read the request body: {}", rejection.body_text()))
        }
    })
}
