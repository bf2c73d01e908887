//! [`serve`]: the life of a node, from binding to the final checkpoint.
//!
//! 1. Bind the listener (or take the caller's: [`serve_on`]), read the
//!    cluster assignment (`cluster.json`), print `ruvector listening on
//!    http://<addr>` on stdout (one flushed line; black-box tests parse it,
//!    and with port 0 it is the only way to learn the port), start serving:
//!    `/health` answers at once, `/ready` and collection routes answer 503
//!    `recovering`. Connections are served by
//!    `ruvector_api::http_serve::serve_http1` (HTTP/1.1 with the header and
//!    idle timer of `limits.header_read_timeout_ms`).
//! 2. Open the engine (recovery) on the blocking pool. On success the node
//!    becomes ready; on failure the error is logged, the listener closed and
//!    `serve` returns `Err` — a node never serves a partial state.
//! 3. When `shutdown` completes: `/ready` turns 503, the listener stops
//!    accepting, in-flight requests finish (up to
//!    `shutdown_timeout_secs`), then the engine checkpoints
//!    (`Engine::shutdown`) and `serve` returns `Ok`.

use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ruvector_api::http_serve::serve_http1;
use ruvector_engine::Engine;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use crate::error::ServerError;
use crate::{AppState, ServerConfig, app};

/// Runs a node until `shutdown` completes (the CLI passes SIGTERM/SIGINT),
/// on `config.addr` (port 0: one the system picks, printed).
pub async fn serve(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let addr = config.bind_addr();
    let listener = TcpListener::bind(&addr).await.map_err(|source| ServerError::Bind { addr: addr.clone(), source })?;
    serve_on(listener, config, shutdown).await
}

/// [`serve`] on a listener the caller bound (tests bind port 0 and keep
/// the listener, so no other process can take the port in between);
/// `config.addr` is not used.
pub async fn serve_on(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let state = AppState::new(&config)?;
    // The cluster assignment (placement epoch, held partitions) is read
    // before the first request is accepted: the epoch fence of collection
    // routes must never see an empty stand-in while the engine recovers.
    state.load_membership(&config.data_dir)?;
    let local = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ruvector listening on http://{local}")?;
        out.flush()?;
    }
    tracing::info!(%local, data_dir = %config.data_dir.display(), "listening; recovering");

    // `stop` tells the HTTP server to drain; `shutdown_requested` fires when
    // the caller's shutdown future completes.
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let (requested_tx, mut requested_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        shutdown.await;
        let _ = requested_tx.send(());
    });
    let limits = config.limits;
    let app = app(state.clone());
    let mut server = tokio::spawn(async move {
        let stop = async move {
            while !*stop_rx.borrow_and_update() {
                if stop_rx.changed().await.is_err() {
                    break;
                }
            }
        };
        serve_http1(listener, app, &limits, stop).await
    });

    let engine_config = config.engine_config();
    let started = Instant::now();
    let mut recovery = tokio::task::spawn_blocking(move || Engine::open(engine_config));
    let recovered = tokio::select! {
        recovered = &mut recovery => recovered,
        served = &mut server => {
            // The accept loop ended on its own (only on a fatal error).
            return match served {
                Ok(result) => result.map_err(ServerError::Io),
                Err(join) => Err(ServerError::Task(format!("server task: {join}"))),
            };
        }
        _ = &mut requested_rx => {
            // Asked to stop while recovering: stop serving, let recovery
            // finish (it cannot be interrupted), then checkpoint as usual.
            tracing::info!("shutdown requested during recovery");
            state.begin_shutdown();
            let _ = stop_tx.send(true);
            let recovered = recovery.await;
            let _ = server.await;
            return match recovered {
                Ok(Ok(engine)) => checkpoint(Arc::new(engine)).await,
                Ok(Err(error)) => Err(ServerError::Recovery(error)),
                Err(join) => Err(ServerError::Task(format!("recovery task: {join}"))),
            };
        }
    };
    let engine = match recovered {
        Ok(Ok(engine)) => Arc::new(engine),
        Ok(Err(error)) => {
            tracing::error!(%error, "recovery failed; not serving a partial state");
            let _ = stop_tx.send(true);
            let _ = server.await;
            return Err(ServerError::Recovery(error));
        }
        Err(join) => {
            let _ = stop_tx.send(true);
            let _ = server.await;
            return Err(ServerError::Task(format!("recovery task: {join}")));
        }
    };
    tracing::info!(seconds = started.elapsed().as_secs_f64(), "recovered; ready");
    engine.start_maintenance(Duration::from_millis(20)).map_err(ServerError::Io)?;
    if config.storage.checkpoint_interval_secs > 0 {
        let interval = Duration::from_secs(config.storage.checkpoint_interval_secs);
        engine.start_background_checkpoints(interval).map_err(ServerError::Io)?;
    }
    engine.set_observer(state.metrics().engine_observer());
    state.set_engine(Arc::clone(&engine));
    // A move that ended while the node was down: drop what it released.
    let pending = state.membership().pending_releases();
    if !pending.is_empty() {
        let (dropper, engine) = (state.clone(), Arc::clone(&engine));
        tokio::task::spawn_blocking(move || {
            if let Err(error) = crate::handlers::drop_released(&dropper, &engine, pending) {
                tracing::warn!(%error, "dropping released partitions failed; the next assignment retries");
            }
        });
    }

    tokio::select! {
        _ = &mut requested_rx => {}
        served = &mut server => {
            // The accept loop ended on its own (it only does on a fatal error).
            checkpoint(engine).await?;
            return match served {
                Ok(result) => result.map_err(ServerError::Io),
                Err(join) => Err(ServerError::Task(format!("server task: {join}"))),
            };
        }
    }

    tracing::info!("shutting down: draining in-flight requests");
    state.begin_shutdown();
    let _ = stop_tx.send(true);
    let grace = Duration::from_secs(config.shutdown_timeout_secs);
    match tokio::time::timeout(grace, &mut server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(error))) => tracing::warn!(%error, "server error while draining"),
        Ok(Err(join)) => tracing::warn!(%join, "server task failed while draining"),
        Err(_) => {
            tracing::warn!(seconds = grace.as_secs(), "in-flight requests did not finish in time; closing them");
            server.abort();
        }
    }
    checkpoint(engine).await
}

/// The final checkpoint (the engine reports its duration to the metrics).
async fn checkpoint(engine: Arc<Engine>) -> Result<(), ServerError> {
    let started = Instant::now();
    let result = tokio::task::spawn_blocking(move || engine.shutdown())
        .await
        .map_err(|join| ServerError::Task(format!("shutdown checkpoint task: {join}")))?;
    match result {
        Ok(()) => {
            tracing::info!(seconds = started.elapsed().as_secs_f64(), "checkpoint written; stopped");
            Ok(())
        }
        Err(error) => {
            tracing::error!(%error, "shutdown checkpoint failed; the log still holds every acknowledged write");
            Err(ServerError::Shutdown(error))
        }
    }
}
