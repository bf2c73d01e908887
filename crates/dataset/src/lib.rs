//! Benchmark datasets: TEXMEX `.fvecs` / `.ivecs` readers, exact ground
//! truth by brute force, and recall@k.
//!
//! TEXMEX files are little-endian: each record is an `i32` count `d`
//! followed by `d` values (`f32` for `.fvecs`, `i32` for `.ivecs`). Every
//! record must have the same `d`.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Why a dataset file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The bytes are not a well-formed TEXMEX file.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the byte offset.
        reason: String,
    },
}

/// A row-major matrix of `rows × dim` values.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix<T> {
    /// Values per row.
    pub dim: usize,
    /// `rows × dim` values, row after row.
    pub data: Vec<T>,
}

impl<T> Matrix<T> {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[T] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Iterates over the rows.
    pub fn iter(&self) -> impl Iterator<Item = &[T]> {
        self.data.chunks_exact(self.dim.max(1))
    }
}

fn read_records<T>(path: &Path, limit: Option<usize>, decode: fn([u8; 4]) -> T) -> Result<Matrix<T>, DatasetError> {
    let io = |source| DatasetError::Io { path: path.to_owned(), source };
    let mut file = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path).map_err(io)?);
    let mut dim: Option<usize> = None;
    let mut data = Vec::new();
    let mut offset = 0u64;
    let mut rows = 0usize;
    let mut header = [0u8; 4];
    while limit.is_none_or(|l| rows < l) {
        match file.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(io(e)),
        }
        let d = i32::from_le_bytes(header);
        let format = |reason: String| DatasetError::Format { path: path.to_owned(), reason };
        if d <= 0 {
            return Err(format(format!("record at byte {offset} has dimension {d}")));
        }
        let d = d as usize;
        match dim {
            None => {
                dim = Some(d);
                if let Some(l) = limit {
                    data.reserve(l.saturating_mul(d));
                }
            }
            Some(expected) if expected != d => {
                return Err(format(format!("record at byte {offset} has dimension {d}, earlier ones {expected}")));
            }
            Some(_) => {}
        }
        let mut body = vec![0u8; d * 4];
        file.read_exact(&mut body).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => format(format!("record at byte {offset} is truncated")),
            _ => io(e),
        })?;
        data.extend(body.chunks_exact(4).map(|c| decode([c[0], c[1], c[2], c[3]])));
        offset += 4 + 4 * d as u64;
        rows += 1;
    }
    Ok(Matrix { dim: dim.unwrap_or(0), data })
}

/// Reads up to `limit` vectors (all when `None`) from an `.fvecs` file.
pub fn read_fvecs(path: &Path, limit: Option<usize>) -> Result<Matrix<f32>, DatasetError> {
    read_records(path, limit, f32::from_le_bytes)
}

/// Reads up to `limit` rows (all when `None`) from an `.ivecs` file.
pub fn read_ivecs(path: &Path, limit: Option<usize>) -> Result<Matrix<i32>, DatasetError> {
    read_records(path, limit, i32::from_le_bytes)
}

/// Recall@k of one result list: the share of the first `k` true neighbours
/// found among the first `k` returned ids.
pub fn recall_at_k(found: &[u64], truth: &[u64], k: usize) -> f64 {
    let truth = &truth[..k.min(truth.len())];
    if truth.is_empty() {
        return 1.0;
    }
    let hits = found.iter().take(k).filter(|id| truth.contains(id)).count();
    hits as f64 / truth.len() as f64
}

/// Exact `k` nearest rows of `base` for each query under `distance`
/// (smaller is nearer; ties by lower row), by brute force.
pub fn brute_force(
    base: &Matrix<f32>,
    queries: &Matrix<f32>,
    k: usize,
    distance: impl Fn(&[f32], &[f32]) -> f32 + Sync,
) -> Vec<Vec<u64>> {
    queries
        .iter()
        .map(|q| {
            let mut scored: Vec<(f32, u64)> =
                base.iter().enumerate().map(|(i, v)| (distance(q, v), i as u64)).collect();
            let k = k.min(scored.len());
            if k == 0 {
                return Vec::new();
            }
            scored.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            scored.truncate(k);
            scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            scored.into_iter().map(|(_, i)| i).collect()
        })
        .collect()
}

/// The shared 100k MiniLM dataset directory: `$RUVECTOR_DATASET`, or
/// `../shared/data/pypi-minilm-100k` above the workspace, if it exists.
pub fn shared_minilm_dir() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("RUVECTOR_DATASET").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/pypi-minilm-100k")),
    ];
    candidates.into_iter().flatten().find(|p| p.join("base.fvecs").is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_records(path: &Path, rows: &[Vec<f32>]) {
        let mut f = std::fs::File::create(path).expect("create");
        for r in rows {
            f.write_all(&(r.len() as i32).to_le_bytes()).expect("write");
            for x in r {
                f.write_all(&x.to_le_bytes()).expect("write");
            }
        }
    }

    #[test]
    fn fvecs_round_trip_and_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.fvecs");
        write_records(&path, &[vec![1.0, 2.0], vec![3.0, 4.0], vec![5.0, 6.0]]);
        let all = read_fvecs(&path, None).expect("read");
        assert_eq!((all.rows(), all.dim), (3, 2));
        assert_eq!(all.row(2), &[5.0, 6.0]);
        assert_eq!(read_fvecs(&path, Some(2)).expect("read").rows(), 2);
    }

    #[test]
    fn malformed_files_are_rejected_with_the_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.fvecs");
        write_records(&path, &[vec![1.0, 2.0], vec![3.0]]);
        let err = read_fvecs(&path, None).expect_err("mixed dimensions");
        assert!(err.to_string().contains("byte 12"), "{err}");
        let mut bytes = std::fs::read(&path).expect("read");
        bytes.truncate(6);
        std::fs::write(&path, bytes).expect("write");
        assert!(read_fvecs(&path, None).expect_err("truncated").to_string().contains("truncated"));
    }

    #[test]
    fn recall_and_brute_force() {
        assert_eq!(recall_at_k(&[1, 2, 3], &[3, 2, 9], 3), 2.0 / 3.0);
        let base = Matrix { dim: 1, data: vec![0.0, 10.0, 3.0, -1.0] };
        let queries = Matrix { dim: 1, data: vec![2.0] };
        let nn = brute_force(&base, &queries, 2, |a, b| (a[0] - b[0]).abs());
        assert_eq!(nn, vec![vec![2, 0]]);
    }
}
