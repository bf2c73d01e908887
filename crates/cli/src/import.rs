//! `ruvector import`: bulk-loads vectors from a file into a running node or
//! router over the REST API.
//!
//! Pipeline: the main thread streams records from the file
//! ([`source::Source`]), groups them into batches of `--batch`, encodes each
//! as an upsert body and hands it over a channel bounded to
//! `--concurrency`; as many worker threads send the batches
//! ([`client::Client::upsert`], retried with backoff). Memory therefore
//! holds at most about `2 × concurrency` batches, whatever the file size.
//!
//! Invariants and contracts:
//! - The first failure (malformed input, a rejected batch, retries
//!   exhausted) stops the import: no new batch is sent, batches already in
//!   flight finish, and the error says how many vectors were imported.
//!   Re-running the same command is safe: upserts are idempotent.
//! - With `--concurrency` above 1, batches may land out of order, so an id
//!   repeated in different batches of a JSON lines file may end up with
//!   either value; an id repeated inside one batch is an error naming both
//!   lines (the server would reject the batch anyway).
//! - Progress goes to stderr (hidden when stderr is not a terminal); stdout
//!   gets one summary line: `imported N vectors in S s (R vectors/s)`.

mod client;
mod source;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use self::client::Client;
use self::source::{Format, Record, Source};

/// Flags of `ruvector import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// Base URL of a node or router, e.g. `http://127.0.0.1:8080`.
    #[arg(long)]
    pub url: String,
    /// Target collection.
    #[arg(long)]
    pub collection: String,
    /// Input file: `.fvecs`, `.npy` or `.jsonl`/`.ndjson`.
    pub file: PathBuf,
    /// Input format; by default taken from the file extension.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Vectors per upsert request.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// Create the collection if it does not exist (an existing one must
    /// have the same dimension).
    #[arg(long)]
    pub create: bool,
    /// Expected dimension, or `auto` to take it from the file.
    #[arg(long, default_value = "auto", value_parser = parse_dimension)]
    pub dimension: Dimension,
    /// Metric of a collection created by `--create` [default: cosine].
    #[arg(long, requires = "create")]
    pub metric: Option<String>,
    /// Added to the row index to form ids (`.fvecs` and `.npy` only).
    #[arg(long, default_value_t = 0)]
    pub id_offset: u64,
    /// API key, sent as the `api-key` header.
    #[arg(long, env = "RUVECTOR_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Retries of a request after a connection error, a timeout or a 5xx.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
    /// Batches in flight at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub concurrency: u32,
    /// Timeout of one request, in seconds.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
}

/// `--dimension`: `auto` or an exact value the file must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    /// Take the dimension from the file.
    Auto,
    /// The file's vectors must have exactly this dimension.
    Exact(usize),
}

/// `auto` or a positive integer.
fn parse_dimension(value: &str) -> Result<Dimension, String> {
    if value.eq_ignore_ascii_case("auto") {
        return Ok(Dimension::Auto);
    }
    match value.parse::<usize>() {
        Ok(d) if d > 0 => Ok(Dimension::Exact(d)),
        _ => Err(format!("expected `auto` or a positive integer, got {value:?}")),
    }
}

/// Runs the import; prints the summary line on success.
pub fn run(args: &ImportArgs) -> anyhow::Result<()> {
    let format = match args.format.or_else(|| Format::from_path(&args.file)) {
        Some(format) => format,
        None => {
            bail!("cannot tell the format of {} from its extension; pass --format fvecs|npy|jsonl", args.file.display())
        }
    };
    if format == Format::Jsonl && args.id_offset != 0 {
        bail!("--id-offset applies to .fvecs and .npy files; JSON lines carry their own ids");
    }
    let mut source = Source::open(&args.file, format, args.id_offset)?;
    let dimension = source.dimension();
    if let Dimension::Exact(expected) = args.dimension
        && expected != dimension
    {
        bail!("{} holds vectors of dimension {dimension}, but --dimension is {expected}", source.file());
    }
    let client = Client::new(&args.url, args.api_key.clone(), args.retries, Duration::from_secs(args.timeout))?;
    let metric = args.metric.as_deref().unwrap_or("cosine");
    client.prepare(&args.collection, dimension, args.create.then_some(metric))?;

    let progress = progress_bar(source.total());
    let started = Instant::now();
    let settings = Settings {
        collection: &args.collection,
        batch: args.batch as usize,
        concurrency: args.concurrency as usize,
        check_duplicates: format == Format::Jsonl,
    };
    let outcome = pipeline(&mut source, &client, &settings, &progress);
    progress.finish_and_clear();
    let imported = outcome?;
    let seconds = started.elapsed().as_secs_f64();
    println!("imported {imported} vectors in {seconds:.2} s ({:.0} vectors/s)", imported as f64 / seconds.max(1e-6));
    Ok(())
}

fn progress_bar(total: Option<u64>) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    let template = match total {
        Some(_) => "{elapsed_precise} [{bar:40}] {human_pos}/{human_len} vectors, {per_sec:0}, ETA {eta}",
        None => "{elapsed_precise} {spinner} {human_pos} vectors, {per_sec:0}",
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// What the pipeline needs besides the source and the client.
#[derive(Debug)]
struct Settings<'a> {
    collection: &'a str,
    batch: usize,
    concurrency: usize,
    /// Reject an id seen twice in one batch (only JSON lines can repeat ids).
    check_duplicates: bool,
}

/// An encoded upsert body and its ids, in order.
#[derive(Debug)]
struct Batch {
    body: Vec<u8>,
    ids: Vec<u64>,
}

#[derive(Serialize)]
struct UpsertBody<'a> {
    vectors: &'a [Record],
}

impl Batch {
    fn encode(records: &[Record]) -> anyhow::Result<Batch> {
        let body = serde_json::to_vec(&UpsertBody { vectors: records }).context("cannot encode a batch")?;
        Ok(Batch { body, ids: records.iter().map(|r| r.id).collect() })
    }
}

/// Streams, batches and sends; returns the number of vectors the server
/// acknowledged.
fn pipeline<R: std::io::Read>(
    source: &mut Source<R>,
    client: &Client,
    settings: &Settings<'_>,
    progress: &ProgressBar,
) -> anyhow::Result<u64> {
    let (sender, receiver) = mpsc::sync_channel::<Batch>(settings.concurrency);
    let receiver = Mutex::new(receiver);
    let stop = AtomicBool::new(false);
    let imported = AtomicU64::new(0);
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);

    let read_outcome = std::thread::scope(|scope| {
        for _ in 0..settings.concurrency {
            scope.spawn(|| {
                loop {
                    // The lock is held only while waiting for the next batch.
                    let next = match receiver.lock() {
                        Ok(receiver) => receiver.recv(),
                        Err(_) => return,
                    };
                    let Ok(batch) = next else { return };
                    if stop.load(Ordering::Relaxed) {
                        continue; // drain: an earlier batch failed
                    }
                    match client.upsert(settings.collection, &batch.body, &batch.ids) {
                        Ok(()) => {
                            imported.fetch_add(batch.ids.len() as u64, Ordering::Relaxed);
                            progress.inc(batch.ids.len() as u64);
                        }
                        Err(error) => {
                            stop.store(true, Ordering::Relaxed);
                            if let Ok(mut failure) = failure.lock() {
                                failure.get_or_insert(error);
                            }
                        }
                    }
                }
            });
        }
        let outcome = produce(source, settings, &sender, &stop);
        drop(sender);
        outcome
    });

    let imported = imported.into_inner();
    let failure = failure.into_inner().ok().flatten();
    match (failure, read_outcome) {
        (Some(error), _) | (None, Err(error)) => {
            Err(error.context(format!("import stopped; {imported} vectors were imported before the error")))
        }
        (None, Ok(())) => Ok(imported),
    }
}

/// Reads the source into batches and queues them until the end of the file
/// or until a worker raises `stop`.
fn produce<R: std::io::Read>(
    source: &mut Source<R>,
    settings: &Settings<'_>,
    sender: &mpsc::SyncSender<Batch>,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let mut records: Vec<Record> = Vec::with_capacity(settings.batch);
    let mut lines: HashMap<u64, u64> = HashMap::new();
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let next = source.next_record()?;
        if let Some(record) = &next
            && settings.check_duplicates
            && let Some(earlier) = lines.insert(record.id, record.position)
        {
            bail!(
                "{}: line {}: id {} already appears on line {earlier}, in the same batch",
                source.file(),
                record.position,
                record.id
            );
        }
        let done = next.is_none();
        records.extend(next);
        if records.len() == settings.batch || (done && !records.is_empty()) {
            let batch = Batch::encode(&records)?;
            records.clear();
            lines.clear();
            if sender.send(batch).is_err() {
                return Ok(()); // every worker is gone; they recorded why
            }
        }
        if done {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimension_is_auto_or_positive() {
        assert_eq!(parse_dimension("auto"), Ok(Dimension::Auto));
        assert_eq!(parse_dimension("AUTO"), Ok(Dimension::Auto));
        assert_eq!(parse_dimension("128"), Ok(Dimension::Exact(128)));
        assert!(parse_dimension("0").is_err());
        assert!(parse_dimension("x").is_err());
    }

    #[test]
    fn batches_split_the_stream_and_encode_upsert_bodies() {
        let text: String = (0..5).map(|i| format!("{{\"id\":{i},\"vector\":[{i},1]}}\n")).collect();
        let mut source =
            Source::from_reader(std::io::Cursor::new(text.into_bytes()), "t", Format::Jsonl, 0, None).expect("open");
        let settings = Settings { collection: "c", batch: 2, concurrency: 1, check_duplicates: true };
        let (sender, receiver) = mpsc::sync_channel(10);
        produce(&mut source, &settings, &sender, &AtomicBool::new(false)).expect("produce");
        drop(sender);
        let batches: Vec<Batch> = receiver.iter().collect();
        assert_eq!(batches.iter().map(|b| b.ids.clone()).collect::<Vec<_>>(), vec![vec![0, 1], vec![2, 3], vec![4]]);
        let body = String::from_utf8(batches[2].body.clone()).expect("utf-8");
        assert_eq!(body, r#"{"vectors":[{"id":4,"vector":[4.0,1.0]}]}"#);
    }

    #[test]
    fn an_id_repeated_within_a_batch_names_both_lines() {
        let text = "{\"id\":1,\"vector\":[1]}\n{\"id\":2,\"vector\":[1]}\n{\"id\":1,\"vector\":[2]}\n";
        let mut source =
            Source::from_reader(std::io::Cursor::new(text.as_bytes()), "t", Format::Jsonl, 0, None).expect("open");
        let settings = Settings { collection: "c", batch: 10, concurrency: 1, check_duplicates: true };
        let (sender, _receiver) = mpsc::sync_channel(10);
        let err = produce(&mut source, &settings, &sender, &AtomicBool::new(false)).expect_err("duplicate");
        assert_eq!(err.to_string(), "t: line 3: id 1 already appears on line 1, in the same batch");
    }
}
