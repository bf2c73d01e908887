//! Structured logs with `tracing`: human-readable or JSON lines on stderr,
//! filtered by `RUST_LOG` (default `info`). Text logs carry ANSI colours
//! only when stderr is a terminal, so container and file logs stay plain.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The log line format (`--log-format`, or `RUVECTOR_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; coloured only on a terminal.
    Text,
    /// One JSON object per line, never coloured.
    Json,
}

/// Installs the global subscriber.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}
