//! What `ruvector soak` measured, as one JSON object (`--json`) or a
//! table: per operation counts, errors by status and latency; the RSS
//! series of the watched pids; the final check of acknowledged writes.

use std::collections::BTreeMap;

use serde::Serialize;

use super::rss::RssReport;
use crate::stream_bench::{ms, percentiles};

/// The operations of the mixed workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Search,
    Upsert,
    Delete,
}

impl Op {
    pub const ALL: [Op; 3] = [Op::Search, Op::Upsert, Op::Delete];

    pub fn name(self) -> &'static str {
        match self {
            Op::Search => "search",
            Op::Upsert => "upsert",
            Op::Delete => "delete",
        }
    }
}

/// What one client saw of one operation.
#[derive(Debug, Default)]
pub struct OpStats {
    /// Client-side latency of every request, failed ones included (ms).
    pub latencies_ms: Vec<f64>,
    pub ok: u64,
    /// Failed requests by cause: the HTTP status (`"503"`) or `transport`.
    pub errors: BTreeMap<String, u64>,
    pub error_sample: Option<String>,
}

impl OpStats {
    pub fn merge(&mut self, other: OpStats) {
        self.latencies_ms.extend(other.latencies_ms);
        self.ok += other.ok;
        for (cause, n) in other.errors {
            *self.errors.entry(cause).or_default() += n;
        }
        self.error_sample = self.error_sample.take().or(other.error_sample);
    }

    pub fn fail(&mut self, cause: String, sample: String) {
        *self.errors.entry(cause).or_default() += 1;
        self.error_sample.get_or_insert(sample);
    }

    pub fn report(mut self, op: Op, seconds: f64) -> OpReport {
        let count = self.latencies_ms.len() as u64;
        let (p50, p99, max) = percentiles(&mut self.latencies_ms);
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        OpReport {
            op,
            count,
            ok: self.ok,
            errors: self.errors.values().sum(),
            errors_by_cause: self.errors,
            per_s: round(count as f64 / seconds),
            p50_ms: p50.map(round),
            p99_ms: p99.map(round),
            max_ms: max.map(round),
            error_sample: self.error_sample,
        }
    }
}

/// One operation's line of the report.
#[derive(Debug, Serialize)]
pub struct OpReport {
    pub op: Op,
    /// Requests sent (acknowledged or not).
    pub count: u64,
    pub ok: u64,
    pub errors: u64,
    pub errors_by_cause: BTreeMap<String, u64>,
    pub per_s: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub error_sample: Option<String>,
}

/// The final check of acknowledged writes against the collection's ids.
#[derive(Debug, Default, Serialize)]
pub struct Check {
    /// Ids whose last acknowledged write was an upsert: must be listed.
    pub expected_present: u64,
    /// Ids whose last acknowledged write was a delete: must not be listed.
    pub expected_absent: u64,
    /// Ids whose last write failed (it may or may not have landed): not
    /// checked.
    pub uncertain: u64,
    /// Expected present, not listed: lost acknowledged writes.
    pub missing: u64,
    /// Deleted with an acknowledgement, listed again.
    pub resurrected: u64,
    /// Listed ids outside the workload's id range.
    pub foreign: u64,
    /// Deletes answered 404 for an id whose last acknowledged write was an
    /// upsert (the write was lost before the delete came).
    pub delete_missed: u64,
    /// Ids listed at the end.
    pub listed: u64,
    /// The collection's `size` at the end.
    pub size: Option<u64>,
    /// A few offending ids, for a report.
    pub examples: Vec<u64>,
}

impl Check {
    pub fn passed(&self) -> bool {
        self.missing == 0 && self.resurrected == 0 && self.foreign == 0 && self.delete_missed == 0
    }
}

/// Everything `ruvector soak` reports.
#[derive(Debug, Serialize)]
pub struct Report {
    pub url: String,
    pub collection: String,
    pub dimension: usize,
    pub ids: u64,
    pub clients: usize,
    pub batch: usize,
    pub mix: [u32; 3],
    /// Seconds of the mixed phase (after the preload).
    pub seconds: f64,
    pub preload_seconds: f64,
    pub ops: Vec<OpReport>,
    /// Requests of every operation per second.
    pub total_per_s: f64,
    pub total_errors: u64,
    pub rss: Vec<RssReport>,
    pub check: Check,
}

impl Report {
    pub fn print(&self, json: bool) -> anyhow::Result<()> {
        if json {
            println!("{}", serde_json::to_string(self)?);
            return Ok(());
        }
        println!(
            "{} collection {} ({} ids, dimension {}), {} clients, {:.1} s, mix search/upsert/delete {}/{}/{} %, upserts of {}",
            self.url,
            self.collection,
            self.ids,
            self.dimension,
            self.clients,
            self.seconds,
            self.mix[0],
            self.mix[1],
            self.mix[2],
            self.batch
        );
        println!(
            "{:<8} {:>9} {:>9} {:>7} {:>9} {:>9} {:>9} {:>9}  errors by cause",
            "op", "requests", "ok", "errors", "per_s", "p50_ms", "p99_ms", "max_ms"
        );
        for r in &self.ops {
            println!(
                "{:<8} {:>9} {:>9} {:>7} {:>9.1} {:>9} {:>9} {:>9}  {}",
                r.op.name(),
                r.count,
                r.ok,
                r.errors,
                r.per_s,
                ms(r.p50_ms),
                ms(r.p99_ms),
                ms(r.max_ms),
                causes(&r.errors_by_cause)
            );
        }
        println!("total {:.1} requests/s, {} errors", self.total_per_s, self.total_errors);
        for r in &self.rss {
            println!(
                "rss pid {:>7}: {} samples, start {} MiB, end {} MiB, max {} MiB, slope {} MiB/min (after the first sample {}){}",
                r.pid,
                r.samples.len(),
                ms(r.start_mib),
                ms(r.end_mib),
                ms(r.max_mib),
                r.slope_mib_per_min.map_or("-".to_owned(), |s| format!("{s:.3}")),
                r.steady_slope_mib_per_min.map_or("-".to_owned(), |s| format!("{s:.3}")),
                if r.gone { " (gone during the run)" } else { "" }
            );
        }
        let c = &self.check;
        println!(
            "check {}: {} ids present as acknowledged ({} missing), {} deleted ({} back), {} uncertain, {} foreign, {} deletes of present ids answered 404; {} listed, size {}",
            if c.passed() { "passed" } else { "FAILED" },
            c.expected_present,
            c.missing,
            c.expected_absent,
            c.resurrected,
            c.uncertain,
            c.foreign,
            c.delete_missed,
            c.listed,
            c.size.map_or("-".to_owned(), |s| s.to_string())
        );
        Ok(())
    }
}

fn causes(errors: &BTreeMap<String, u64>) -> String {
    if errors.is_empty() {
        return "-".to_owned();
    }
    errors.iter().map(|(cause, n)| format!("{cause}: {n}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_stats_merge_and_report_counts_errors_by_cause() {
        let mut a = OpStats { latencies_ms: vec![1.0, 2.0], ok: 1, ..OpStats::default() };
        a.fail("503".to_owned(), "HTTP 503".to_owned());
        let mut b = OpStats { latencies_ms: vec![3.0, 4.0], ok: 1, ..OpStats::default() };
        b.fail("503".to_owned(), "again".to_owned());
        b.fail("transport".to_owned(), "refused".to_owned());
        a.merge(b);
        let r = a.report(Op::Upsert, 2.0);
        assert_eq!((r.count, r.ok, r.errors, r.per_s), (4, 2, 3, 2.0));
        assert_eq!(r.errors_by_cause, BTreeMap::from([("503".to_owned(), 2), ("transport".to_owned(), 1)]));
        assert_eq!((r.p50_ms, r.p99_ms, r.max_ms), (Some(2.0), Some(4.0), Some(4.0)));
        assert_eq!(r.error_sample.as_deref(), Some("HTTP 503"));
    }

    #[test]
    fn a_check_fails_on_any_lost_or_resurrected_write() {
        assert!(Check { expected_present: 10, uncertain: 3, ..Check::default() }.passed());
        assert!(!Check { missing: 1, ..Check::default() }.passed());
        assert!(!Check { resurrected: 1, ..Check::default() }.passed());
        assert!(!Check { foreign: 1, ..Check::default() }.passed());
        assert!(!Check { delete_missed: 1, ..Check::default() }.passed());
    }
}
