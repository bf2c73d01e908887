//! Resident memory of other processes: `VmRSS` read from
//! `/proc/<pid>/status`, kept as a time series per pid, and the
//! least-squares slope of each series in MiB per minute.
//!
//! A pid that is gone (exited, killed) simply stops adding samples; its
//! series keeps what was read before.

use serde::Serialize;

/// One reading: seconds since the measured phase started, and the RSS.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    pub t_s: f64,
    pub mib: f64,
}

/// The readings of one pid.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub pid: u32,
    pub samples: Vec<Sample>,
    /// Whether a reading failed (the process was gone).
    pub gone: bool,
}

/// The reported summary of one [`Series`].
#[derive(Debug, Clone, Serialize)]
pub struct RssReport {
    pub pid: u32,
    pub start_mib: Option<f64>,
    pub end_mib: Option<f64>,
    pub max_mib: Option<f64>,
    /// Least-squares slope over every sample; `None` below two samples.
    pub slope_mib_per_min: Option<f64>,
    /// The same without the first sample (taken as the load starts, before
    /// caches, pools and the allocator's arenas have grown to their working
    /// size): what a leak shows as.
    pub steady_slope_mib_per_min: Option<f64>,
    pub gone: bool,
    pub samples: Vec<Sample>,
}

impl Series {
    pub fn new(pid: u32) -> Series {
        Series { pid, samples: Vec::new(), gone: false }
    }

    /// Reads the pid's RSS now and appends it (or marks the pid gone).
    pub fn sample(&mut self, t_s: f64) {
        match read_rss_kib(self.pid) {
            Some(kib) => self.samples.push(Sample { t_s, mib: kib as f64 / 1024.0 }),
            None => self.gone = true,
        }
    }

    /// The latest reading, if any.
    pub fn last_mib(&self) -> Option<f64> {
        self.samples.last().map(|s| s.mib)
    }

    pub fn report(&self) -> RssReport {
        let round = |x: f64| (x * 100.0).round() / 100.0;
        let points: Vec<(f64, f64)> = self.samples.iter().map(|s| (s.t_s / 60.0, s.mib)).collect();
        RssReport {
            pid: self.pid,
            start_mib: self.samples.first().map(|s| round(s.mib)),
            end_mib: self.samples.last().map(|s| round(s.mib)),
            max_mib: self.samples.iter().map(|s| s.mib).max_by(f64::total_cmp).map(round),
            slope_mib_per_min: slope(&points).map(|s| (s * 1000.0).round() / 1000.0),
            steady_slope_mib_per_min: slope(points.get(1..).unwrap_or_default()).map(|s| (s * 1000.0).round() / 1000.0),
            gone: self.gone,
            samples: self.samples.iter().map(|s| Sample { t_s: round(s.t_s), mib: round(s.mib) }).collect(),
        }
    }
}

/// `VmRSS` of `pid` in KiB; `None` when the process or the line is absent.
fn read_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

/// The `VmRSS:   1234 kB` line of a `/proc/<pid>/status` text, in KiB.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut fields = line["VmRSS:".len()..].split_whitespace();
    let value = fields.next()?.parse().ok()?;
    (fields.next() == Some("kB")).then_some(value)
}

/// Least-squares slope of y over x; `None` below two points or when every
/// x is the same.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slope_of_a_line_is_its_gradient_and_noise_averages_out() {
        assert_eq!(slope(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]), Some(2.0));
        let flat = slope(&[(0.0, 10.0), (1.0, 12.0), (2.0, 8.0), (3.0, 10.0)]).expect("slope");
        assert!(flat.abs() < 0.5, "{flat}");
        assert_eq!(slope(&[(0.0, 1.0)]), None);
        assert_eq!(slope(&[(1.0, 1.0), (1.0, 2.0)]), None);
    }

    #[test]
    fn the_steady_slope_leaves_the_warm_up_sample_out() {
        let mut series = Series::new(1);
        series.samples =
            [(0.0, 10.0), (60.0, 40.0), (120.0, 40.0), (180.0, 40.0)].map(|(t_s, mib)| Sample { t_s, mib }).to_vec();
        let report = series.report();
        assert!(report.slope_mib_per_min.is_some_and(|s| s > 5.0), "{report:?}");
        assert_eq!(report.steady_slope_mib_per_min, Some(0.0));
        assert_eq!((report.start_mib, report.end_mib, report.max_mib), (Some(10.0), Some(40.0), Some(40.0)));
    }

    #[test]
    fn vm_rss_is_read_from_a_status_text() {
        let status = "Name:\truvector\nVmPeak:\t  9000 kB\nVmRSS:\t    2048 kB\nThreads:\t5\n";
        assert_eq!(parse_vm_rss(status), Some(2048));
        assert_eq!(parse_vm_rss("Name:\tkthreadd\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\tlots kB\n"), None);
    }

    #[test]
    fn this_process_has_a_resident_size_and_a_dead_pid_is_gone() {
        let mut me = Series::new(std::process::id());
        me.sample(0.0);
        assert!(me.last_mib().is_some_and(|m| m > 0.0) && !me.gone);
        // Pids are below 2^22 on Linux.
        let mut nobody = Series::new(u32::MAX);
        nobody.sample(0.0);
        assert!(nobody.gone && nobody.samples.is_empty());
    }
}
