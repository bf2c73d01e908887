//! The HTTP side of `ruvector import`: a blocking client that prepares the
//! collection and sends upsert batches, retrying what can safely be retried.
//!
//! Retry policy: a transport error (connection refused or reset, timeout)
//! and the statuses 408, 429 and 5xx are retried up to `retries` times with
//! exponential backoff (250 ms doubling, capped at 10 s, with jitter).
//! That is safe because every request sent here is idempotent: an upsert
//! overwrites the same ids with the same values, and a create that already
//! succeeded answers 409, which [`Client::prepare`] accepts when the
//! dimension matches. Any other 4xx stops the import with the server's
//! message.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};

/// First backoff delay; doubles per attempt.
const BACKOFF_BASE: Duration = Duration::from_millis(250);
/// Longest backoff delay.
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// A client for one server or router.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::blocking::Client,
    base: String,
    api_key: Option<String>,
    retries: u32,
}

/// A final HTTP answer: status and body text.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    /// `"<message> (HTTP <status> <code>)"` from a `{"error","code"}` body,
    /// or the raw body.
    fn describe(&self) -> String {
        let parsed: Option<Value> = serde_json::from_str(&self.body).ok();
        let field = |name: &str| parsed.as_ref().and_then(|v| v.get(name)).and_then(Value::as_str).map(str::to_owned);
        match (field("error"), field("code")) {
            (Some(error), Some(code)) => format!("{error} (HTTP {} {code})", self.status),
            (Some(error), None) => format!("{error} (HTTP {})", self.status),
            _ => format!("HTTP {}: {}", self.status, self.body.trim()),
        }
    }

    fn error(&self) -> Option<String> {
        let parsed: Value = serde_json::from_str(&self.body).ok()?;
        parsed.get("error")?.as_str().map(str::to_owned)
    }
}

fn retryable(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

/// The delay before retry number `attempt` (from 0): exponential, capped,
/// with jitter in `[½, 1]` of the nominal delay.
pub fn backoff(attempt: u32) -> Duration {
    let nominal = BACKOFF_BASE.saturating_mul(1u32 << attempt.min(16)).min(BACKOFF_MAX);
    // RandomState is seeded randomly per instance: enough entropy for jitter.
    let random = std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), attempt);
    let unit = (random >> 11) as f64 / (1u64 << 53) as f64;
    nominal.mul_f64(0.5 + 0.5 * unit)
}

impl Client {
    /// A client for `url` (`http://host:port`, a trailing `/` is ignored; no
    /// TLS: put a TLS-terminating proxy in front of a remote server).
    pub fn new(url: &str, api_key: Option<String>, retries: u32, timeout: Duration) -> anyhow::Result<Self> {
        let base = url.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") {
            bail!("--url must be a plain http:// URL (got {url:?}); this build has no TLS");
        }
        let http = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Client { http, base, api_key, retries })
    }

    /// Sends a request, retrying transport errors and retryable statuses;
    /// returns the first non-retryable answer.
    fn send(&self, method: reqwest::Method, path: &str, body: Option<&[u8]>) -> anyhow::Result<Answer> {
        let url = format!("{}{path}", self.base);
        let mut attempt = 0;
        loop {
            let mut request = self.http.request(method.clone(), &url);
            if let Some(key) = &self.api_key {
                request = request.header("api-key", key);
            }
            if let Some(body) = body {
                request = request.header("content-type", "application/json").body(body.to_vec());
            }
            let failure = match request.send().and_then(|r| Ok((r.status().as_u16(), r.text()?))) {
                Ok((status, body)) if !retryable(status) => return Ok(Answer { status, body }),
                Ok((status, body)) => Answer { status, body }.describe(),
                Err(e) => format!("{:#}", anyhow::Error::from(e)),
            };
            if attempt >= self.retries {
                bail!("{method} {url} failed after {} attempt(s): {failure}", attempt + 1);
            }
            std::thread::sleep(backoff(attempt));
            attempt += 1;
        }
    }

    /// Checks that `collection` exists with `dimension`; with `create`
    /// (the metric), creates it first (an existing one of the same
    /// dimension is fine).
    pub fn prepare(&self, collection: &str, dimension: usize, create: Option<&str>) -> anyhow::Result<()> {
        if let Some(metric) = create {
            let body = json!({"name": collection, "dimension": dimension, "metric": metric}).to_string();
            let answer = self.send(reqwest::Method::POST, "/collections", Some(body.as_bytes()))?;
            match answer.status {
                200..=299 => return Ok(()),
                409 => {} // exists: check its dimension below
                _ => bail!("cannot create collection {collection:?}: {}", answer.describe()),
            }
        }
        let answer = self.send(reqwest::Method::GET, &format!("/collections/{collection}"), None)?;
        match answer.status {
            200 => {}
            404 if create.is_none() => {
                bail!("collection {collection:?} does not exist ({}); pass --create to create it", answer.describe())
            }
            _ => bail!("cannot read collection {collection:?}: {}", answer.describe()),
        }
        let info: Value = serde_json::from_str(&answer.body)
            .with_context(|| format!("collection {collection:?}: the server's answer is not JSON"))?;
        let existing = info.get("dimension").and_then(Value::as_u64);
        if existing != Some(dimension as u64) {
            let existing = existing.map_or_else(|| "an unknown dimension".to_owned(), |d| format!("dimension {d}"));
            bail!("collection {collection:?} has {existing}, but the file's vectors have dimension {dimension}");
        }
        Ok(())
    }

    /// Upserts one batch (`body`, the ids in order). A rejected batch is
    /// reported with its first id and, when the server names an item
    /// (`vectors[3]...`), that item's id.
    pub fn upsert(&self, collection: &str, body: &[u8], ids: &[u64]) -> anyhow::Result<()> {
        let first = ids.first().copied().unwrap_or_default();
        let path = format!("/collections/{collection}/vectors");
        let answer = self
            .send(reqwest::Method::POST, &path, Some(body))
            .with_context(|| format!("batch starting at id {first}"))?;
        if (200..300).contains(&answer.status) {
            return Ok(());
        }
        let item = answer.error().and_then(|e| item_index(&e)).and_then(|i| ids.get(i).copied());
        let item = item.map(|id| format!(" (the offending vector has id {id})")).unwrap_or_default();
        let hint = match answer.status {
            413 => "; lower --batch",
            404 => "; pass --create to create the collection",
            _ => "",
        };
        Err(anyhow!("the server rejected the batch starting at id {first}{item}: {}{hint}", answer.describe()))
    }
}

/// The `N` of a message that starts with `vectors[N]`.
fn item_index(message: &str) -> Option<usize> {
    let rest = message.strip_prefix("vectors[")?;
    rest[..rest.find(']')?].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for attempt in 0..8 {
            let nominal = BACKOFF_BASE.saturating_mul(1 << attempt).min(BACKOFF_MAX);
            let d = backoff(attempt);
            assert!(d >= nominal / 2 && d <= nominal, "attempt {attempt}: {d:?}");
        }
        assert!(backoff(40) <= BACKOFF_MAX);
    }

    #[test]
    fn describes_error_bodies_and_finds_the_item() {
        let answer =
            Answer { status: 400, body: r#"{"error":"vectors[2].vector: bad","code":"invalid_vector"}"#.into() };
        assert_eq!(answer.describe(), "vectors[2].vector: bad (HTTP 400 invalid_vector)");
        assert_eq!(answer.error().as_deref().and_then(item_index), Some(2));
        assert_eq!(Answer { status: 502, body: "bad gateway\n".into() }.describe(), "HTTP 502: bad gateway");
        assert_eq!(item_index("vectors: missing"), None);
        assert!(retryable(503) && retryable(429) && retryable(408) && !retryable(400) && !retryable(409));
    }

    #[test]
    fn url_must_be_http() {
        let err = Client::new("127.0.0.1:8080", None, 0, Duration::from_secs(1)).expect_err("no scheme");
        assert!(err.to_string().contains("http://"), "{err}");
    }
}
