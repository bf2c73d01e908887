//! Test harness: an [`app`](ruvector_server::app) over an engine in a
//! temporary directory, driven with `tower::ServiceExt::oneshot`.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use ruvector_engine::Engine;
use ruvector_server::{AppState, ServerConfig, app};
use serde_json::Value;
use tempfile::TempDir;
use tower::ServiceExt;

/// A node under test.
pub struct Node {
    pub app: Router,
    pub engine: Arc<Engine>,
    pub config: ServerConfig,
    pub dir: TempDir,
}

/// A response, with the body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    /// Asserts an error reply: the status, the `{"error","code"}` shape and
    /// the code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        let obj = self.json.as_object().unwrap_or_else(|| panic!("error body is not a JSON object: {}", self.text));
        assert_eq!(obj.len(), 2, "{}", self.text);
        assert!(obj.get("error").and_then(Value::as_str).is_some_and(|e| !e.is_empty()), "{}", self.text);
        assert_eq!(obj.get("code").and_then(Value::as_str), Some(code), "{}", self.text);
        assert!(
            self.headers.get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"application/json")),
            "{:?}",
            self.headers
        );
    }
}

impl Node {
    /// A ready node with default configuration.
    pub fn new() -> Node {
        Node::with(ServerConfig::default())
    }

    /// A ready node with `config` (its `data_dir` is replaced by a tempdir).
    pub fn with(mut config: ServerConfig) -> Node {
        let dir = tempfile::tempdir().expect("tempdir");
        config.data_dir = dir.path().to_owned();
        Node::open(config, dir)
    }

    /// Opens (or reopens) an engine over `dir`.
    pub fn open(config: ServerConfig, dir: TempDir) -> Node {
        let engine = Arc::new(Engine::open(config.engine_config()).expect("engine opens"));
        let state = AppState::with_engine(&config, Arc::clone(&engine)).expect("state");
        Node { app: app(state), engine, config, dir }
    }

    /// Drops the app and the engine (without a checkpoint) and reopens the
    /// directory, as after a crash.
    pub fn restart(self) -> Node {
        let Node { app, engine, config, dir } = self;
        drop(app);
        drop(engine);
        Node::open(config, dir)
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<&str>, headers: &[(&str, &str)]) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_owned()));
        send(&self.app, req.body(body).expect("request")).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: &str) -> Reply {
        self.call(Method::POST, path, Some(body), &[]).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, None, &[]).await
    }

    /// Creates collection `name` (dimension 3, `metric`) and asserts 201.
    pub async fn create(&self, name: &str, metric: &str) {
        let r = self.post("/collections", &format!(r#"{{"name":"{name}","dimension":3,"metric":"{metric}"}}"#)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
}

/// Sends one request through a clone of `app`.
pub async fn send(app: &Router, req: Request<Body>) -> Reply {
    let response = app.clone().oneshot(req).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply { status, headers, text, json }
}
