//! [`serve`] end to end over loopback TCP: ready after recovery, graceful
//! shutdown with a final checkpoint, and the failures that must stop a node
//! (an unusable data directory, an address in use).

use std::path::Path;
use std::time::{Duration, Instant};

use ruvector_engine::{Engine, EngineConfig};
use ruvector_server::{ServerConfig, ServerError, serve, serve_on};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 request; returns the status and the body.
async fn http(addr: &str, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// Polls `GET path` until it answers `status`, with a deadline.
async fn wait_for(addr: &str, path: &str, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok((s, _)) = http(addr, "GET", path, "").await
            && s == status
        {
            return;
        }
        assert!(Instant::now() < deadline, "{path} did not answer {status} in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_then_shuts_down_with_a_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Bound here and handed over, never released: no other process can
    // take the port between the test learning it and the node using it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let addr = listener.local_addr().expect("addr").to_string();
    let config = ServerConfig { data_dir: dir.path().to_owned(), ..ServerConfig::default() };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let node = tokio::spawn(serve_on(listener, config, async move {
        let _ = stopped.await;
    }));

    wait_for(&addr, "/ready", 200).await;
    let (s, body) = http(&addr, "GET", "/health", "").await.expect("health");
    assert_eq!((s, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (s, body) =
        http(&addr, "POST", "/collections", r#"{"name":"docs","dimension":2,"metric":"l2"}"#).await.expect("create");
    assert_eq!(s, 201, "{body}");
    let (s, body) = http(&addr, "POST", "/collections/docs/vectors", r#"{"vectors":[{"id":7,"vector":[1,2]}]}"#)
        .await
        .expect("upsert");
    assert_eq!((s, body.as_str()), (201, r#"{"status":"inserted 1 vectors"}"#));
    let (s, body) = http(&addr, "GET", "/nope", "").await.expect("404");
    assert_eq!(s, 404, "{body}");

    stop.send(()).expect("node still running");
    let result = tokio::time::timeout(Duration::from_secs(30), node).await.expect("stops in time").expect("task");
    assert!(result.is_ok(), "{result:?}");
    assert!(TcpStream::connect(&addr).await.is_err(), "the listener is closed");

    // Everything acknowledged is there, and the log was checkpointed away.
    let engine = Engine::open(EngineConfig::new(dir.path())).expect("reopen");
    assert_eq!(engine.get("docs", 7).expect("get").map(|p| p.vector), Some(vec![1.0, 2.0]));
}

#[tokio::test]
async fn recovery_failure_stops_the_node() {
    // The log directory is a file: the engine cannot recover.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("wal"), b"x").expect("write");
    let config =
        ServerConfig { addr: "127.0.0.1:0".into(), data_dir: dir.path().to_owned(), ..ServerConfig::default() };
    let result = tokio::time::timeout(Duration::from_secs(30), serve(config, std::future::pending()))
        .await
        .expect("returns instead of serving");
    assert!(matches!(result, Err(ServerError::Recovery(_))), "{result:?}");
}

#[tokio::test]
async fn an_unreadable_cluster_assignment_stops_the_node_before_it_listens() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("cluster.json"), b"{not json").expect("write");
    let config =
        ServerConfig { addr: "127.0.0.1:0".into(), data_dir: dir.path().to_owned(), ..ServerConfig::default() };
    let result = tokio::time::timeout(Duration::from_secs(30), serve(config, std::future::pending()))
        .await
        .expect("returns instead of serving");
    let Err(ServerError::Config(message)) = &result else { panic!("{result:?}") };
    assert!(message.contains("cluster.json"), "{message}");
}

#[tokio::test]
async fn an_address_in_use_is_an_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let config =
        ServerConfig { addr, data_dir: Path::new("/nonexistent/never-created").to_owned(), ..ServerConfig::default() };
    let result = serve(config, std::future::pending()).await;
    assert!(matches!(result, Err(ServerError::Bind { .. })), "{result:?}");
}

#[tokio::test]
async fn an_empty_api_key_is_a_configuration_error() {
    let config = ServerConfig { addr: "127.0.0.1:0".into(), api_key: Some(String::new()), ..ServerConfig::default() };
    let result = serve(config, std::future::pending()).await;
    assert!(matches!(result, Err(ServerError::Config(_))), "{result:?}");
}
