//! Streaming vector sources for `ruvector import`: TEXMEX `.fvecs`, NumPy
//! `.npy` and JSON lines, read one record at a time so a file of any size
//! needs memory for one batch only.
//!
//! Formats (all little-endian unless the `.npy` header says otherwise):
//!
//! - `.fvecs`: records of an `i32` dimension `d` followed by `d` `f32`s;
//!   every record has the same `d`. Record `i` (from 0) gets id
//!   `i + id_offset`.
//! - `.npy` (format versions 1, 2 and 3): the 6-byte magic `\x93NUMPY`,
//!   major and minor version bytes, the header length (`u16` for v1, `u32`
//!   for v2/v3), then a Python dict literal
//!   `{'descr': '<f4', 'fortran_order': False, 'shape': (rows, dim), }`
//!   padded with spaces, then `rows × dim` values in C order. Accepted
//!   dtypes: `<f4`, `>f4`, `<f8`, `>f8` (f64 is rounded to f32, as the server
//!   does with JSON numbers). Row `i` gets id `i + id_offset`.
//! - JSON lines: one `{"id": u64, "vector": [numbers], "payload": {..}?}`
//!   per line; blank lines are skipped, unknown fields ignored.
//!
//! Invariants of every [`Record`]: `vector.len() == dimension()` and every
//! component is a finite `f32`, so the upsert body never carries `null`.
//! Errors name the file and the place (`line 7, column 12`, `row 3 (byte
//! 1548)`); nothing read from the file is unwrapped.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Largest dimension a file may declare: far above any server limit, low
/// enough that a corrupt header cannot make us allocate gigabytes.
const MAX_DIMENSION: usize = 1 << 20;

/// Longest `.npy` header accepted (numpy writes a few hundred bytes).
const MAX_NPY_HEADER: usize = 1 << 20;

/// Input file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// TEXMEX `.fvecs`.
    Fvecs,
    /// NumPy `.npy`, a 2-D float32 (or float64) array.
    Npy,
    /// JSON lines: `{"id":..,"vector":[..],"payload":{..}}` per line.
    Jsonl,
}

impl Format {
    /// The format implied by the file extension (`.fvecs`, `.npy`,
    /// `.jsonl`/`.ndjson`), if any.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "fvecs" => Some(Format::Fvecs),
            "npy" => Some(Format::Npy),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            _ => None,
        }
    }
}

/// Why a source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file could not be opened or read.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The bytes are not a well-formed file of the format.
    #[error("{file}: {at}: {reason}")]
    Malformed {
        /// The file.
        file: String,
        /// Where: `line 3, column 9`, `row 2 (byte 1032)`, `header`.
        at: String,
        /// What is wrong.
        reason: String,
    },
}

/// One vector to upsert. Serializes to an upsert item `{"id","vector","payload"?}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    /// The vector id.
    pub id: u64,
    /// Exactly `dimension` finite components.
    pub vector: Vec<f32>,
    /// The payload object, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Map<String, Value>>,
    /// Where the record came from: the 1-based line of a JSON lines file,
    /// the 0-based row otherwise.
    #[serde(skip)]
    pub position: u64,
}

/// A file of vectors, read record by record.
#[derive(Debug)]
pub struct Source<R> {
    file: String,
    dimension: usize,
    total: Option<u64>,
    id_offset: u64,
    reader: BufReader<R>,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// `row`: the next row; `offset`: its byte offset; `header_read`: the
    /// first row's dimension was consumed by `open`.
    Fvecs { row: u64, offset: u64, header_read: bool },
    /// `row` of `rows`; `offset` of the next row.
    Npy { row: u64, rows: u64, offset: u64, element: Element },
    /// `line`: the last line read; `peeked`: the first record, read by `open`
    /// to learn the dimension.
    Jsonl { line: u64, first_line: u64, buffer: Vec<u8>, peeked: Option<Record> },
}

/// How one `.npy` element is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Element {
    F32Le,
    F32Be,
    F64Le,
    F64Be,
}

impl Element {
    fn size(self) -> usize {
        match self {
            Element::F32Le | Element::F32Be => 4,
            Element::F64Le | Element::F64Be => 8,
        }
    }

    fn decode(self, bytes: &[u8]) -> f64 {
        let mut b4 = [0u8; 4];
        let mut b8 = [0u8; 8];
        match self {
            Element::F32Le | Element::F32Be => b4.copy_from_slice(&bytes[..4]),
            Element::F64Le | Element::F64Be => b8.copy_from_slice(&bytes[..8]),
        }
        match self {
            Element::F32Le => f64::from(f32::from_le_bytes(b4)),
            Element::F32Be => f64::from(f32::from_be_bytes(b4)),
            Element::F64Le => f64::from_le_bytes(b8),
            Element::F64Be => f64::from_be_bytes(b8),
        }
    }
}

impl Source<File> {
    /// Opens `path` and reads enough to know the dimension.
    pub fn open(path: &Path, format: Format, id_offset: u64) -> Result<Self, SourceError> {
        let name = path.display().to_string();
        let io = |source| SourceError::Io { file: name.clone(), source };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut source = Source::from_reader(file, &name, format, id_offset, Some(len))?;
        if format == Format::Jsonl {
            source.total = Some(count_lines(path).map_err(io)?);
        }
        Ok(source)
    }
}

/// Number of lines (a last line without `\n` counts).
fn count_lines(path: &Path) -> io::Result<u64> {
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut lines, mut last) = (0u64, b'\n');
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(lines + u64::from(last != b'\n'));
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        last = buf[n - 1];
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A JSON lines record as written in the file.
#[derive(Deserialize)]
struct JsonLine {
    id: u64,
    vector: Vec<f64>,
    #[serde(default)]
    payload: Option<Map<String, Value>>,
}

impl<R: Read> Source<R> {
    /// Wraps `reader` (`len`: its size in bytes, when known, for the
    /// progress total) and reads the header or first record.
    pub fn from_reader(
        reader: R,
        file: &str,
        format: Format,
        id_offset: u64,
        len: Option<u64>,
    ) -> Result<Self, SourceError> {
        let kind = match format {
            Format::Fvecs => Kind::Fvecs { row: 0, offset: 0, header_read: true },
            Format::Npy => Kind::Npy { row: 0, rows: 0, offset: 0, element: Element::F32Le },
            Format::Jsonl => Kind::Jsonl { line: 0, first_line: 0, buffer: Vec::new(), peeked: None },
        };
        let mut source = Source {
            file: file.to_owned(),
            dimension: 0,
            total: None,
            id_offset,
            reader: BufReader::with_capacity(1 << 20, reader),
            kind,
        };
        match format {
            Format::Fvecs => source.open_fvecs(len)?,
            Format::Npy => source.open_npy()?,
            Format::Jsonl => source.open_jsonl()?,
        }
        Ok(source)
    }

    /// Components per vector.
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// How many records the file holds, when known up front (for JSON
    /// lines: the number of lines, blank ones included).
    pub fn total(&self) -> Option<u64> {
        self.total
    }

    /// The file name used in messages.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The next record, `None` at the end of the file.
    pub fn next_record(&mut self) -> Result<Option<Record>, SourceError> {
        match self.kind {
            Kind::Fvecs { .. } => self.next_fvecs(),
            Kind::Npy { .. } => self.next_npy(),
            Kind::Jsonl { .. } => self.next_jsonl(),
        }
    }

    fn io(&self, source: io::Error) -> SourceError {
        SourceError::Io { file: self.file.clone(), source }
    }

    fn malformed(&self, at: impl Into<String>, reason: impl Into<String>) -> SourceError {
        SourceError::Malformed { file: self.file.clone(), at: at.into(), reason: reason.into() }
    }

    fn id(&self, row: u64, at: &str) -> Result<u64, SourceError> {
        self.id_offset
            .checked_add(row)
            .ok_or_else(|| self.malformed(at, format!("id {row} + --id-offset {} overflows u64", self.id_offset)))
    }

    // --- fvecs ---

    fn open_fvecs(&mut self, len: Option<u64>) -> Result<(), SourceError> {
        let mut header = [0u8; 4];
        match read_full(&mut self.reader, &mut header).map_err(|e| self.io(e))? {
            0 => return Err(self.malformed("byte 0", "the file is empty: no vectors to import")),
            4 => {}
            _ => return Err(self.malformed("row 0 (byte 0)", "truncated dimension")),
        }
        let d = i32::from_le_bytes(header);
        if d <= 0 || d as usize > MAX_DIMENSION {
            return Err(self.malformed("row 0 (byte 0)", format!("dimension {d} is out of range 1..={MAX_DIMENSION}")));
        }
        self.dimension = d as usize;
        self.total = len.map(|l| l / (4 + 4 * self.dimension as u64));
        Ok(())
    }

    fn next_fvecs(&mut self) -> Result<Option<Record>, SourceError> {
        let Kind::Fvecs { row, offset, header_read } = self.kind else { return Ok(None) };
        let at = format!("row {row} (byte {offset})");
        if !header_read {
            let mut header = [0u8; 4];
            match read_full(&mut self.reader, &mut header).map_err(|e| self.io(e))? {
                0 => return Ok(None),
                4 => {}
                _ => return Err(self.malformed(at, "truncated dimension")),
            }
            let d = i32::from_le_bytes(header);
            if usize::try_from(d).ok() != Some(self.dimension) {
                return Err(self.malformed(at, format!("dimension {d}, earlier rows have {}", self.dimension)));
            }
        }
        let mut body = vec![0u8; 4 * self.dimension];
        if read_full(&mut self.reader, &mut body).map_err(|e| self.io(e))? != body.len() {
            return Err(self.malformed(at, format!("truncated: expected {} f32 values", self.dimension)));
        }
        let vector = finite_f32(body.chunks_exact(4).map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))))
            .map_err(|reason| self.malformed(&*at, reason))?;
        let id = self.id(row, &at)?;
        self.kind = Kind::Fvecs { row: row + 1, offset: offset + 4 + body.len() as u64, header_read: false };
        Ok(Some(Record { id, vector, payload: None, position: row }))
    }

    // --- npy ---

    fn open_npy(&mut self) -> Result<(), SourceError> {
        let mut magic = [0u8; 8];
        if read_full(&mut self.reader, &mut magic).map_err(|e| self.io(e))? != 8 || &magic[..6] != b"\x93NUMPY" {
            return Err(self.malformed("byte 0", "not a .npy file (no \\x93NUMPY magic)"));
        }
        let major = magic[6];
        let (header_len, prefix) = match major {
            1 => {
                let mut b = [0u8; 2];
                if read_full(&mut self.reader, &mut b).map_err(|e| self.io(e))? != 2 {
                    return Err(self.malformed("byte 8", "truncated header length"));
                }
                (usize::from(u16::from_le_bytes(b)), 10)
            }
            2 | 3 => {
                let mut b = [0u8; 4];
                if read_full(&mut self.reader, &mut b).map_err(|e| self.io(e))? != 4 {
                    return Err(self.malformed("byte 8", "truncated header length"));
                }
                (u32::from_le_bytes(b) as usize, 12)
            }
            v => return Err(self.malformed("byte 6", format!("unsupported .npy format version {v}"))),
        };
        if header_len > MAX_NPY_HEADER {
            return Err(self.malformed("header", format!("header length {header_len} is implausible")));
        }
        let mut header = vec![0u8; header_len];
        if read_full(&mut self.reader, &mut header).map_err(|e| self.io(e))? != header_len {
            return Err(self.malformed("header", "truncated header"));
        }
        let header = String::from_utf8(header).map_err(|_| self.malformed("header", "header is not UTF-8"))?;
        let (element, rows, dim) = parse_npy_header(&header).map_err(|reason| self.malformed("header", reason))?;
        if dim == 0 || dim > MAX_DIMENSION {
            return Err(self.malformed("header", format!("dimension {dim} is out of range 1..={MAX_DIMENSION}")));
        }
        if rows == 0 {
            return Err(self.malformed("header", "the array has no rows: no vectors to import"));
        }
        self.dimension = dim;
        self.total = Some(rows);
        self.kind = Kind::Npy { row: 0, rows, offset: (prefix + header_len) as u64, element };
        Ok(())
    }

    fn next_npy(&mut self) -> Result<Option<Record>, SourceError> {
        let Kind::Npy { row, rows, offset, element } = self.kind else { return Ok(None) };
        let at = format!("row {row} (byte {offset})");
        if row == rows {
            let mut extra = [0u8; 1];
            if read_full(&mut self.reader, &mut extra).map_err(|e| self.io(e))? != 0 {
                return Err(self.malformed(at, format!("unexpected bytes after the last of {rows} rows")));
            }
            return Ok(None);
        }
        let mut body = vec![0u8; element.size() * self.dimension];
        if read_full(&mut self.reader, &mut body).map_err(|e| self.io(e))? != body.len() {
            return Err(self.malformed(at, format!("truncated: the header promises {rows} rows")));
        }
        let vector = finite_f32(body.chunks_exact(element.size()).map(|c| element.decode(c)))
            .map_err(|reason| self.malformed(&*at, reason))?;
        let id = self.id(row, &at)?;
        self.kind = Kind::Npy { row: row + 1, rows, offset: offset + body.len() as u64, element };
        Ok(Some(Record { id, vector, payload: None, position: row }))
    }

    // --- JSON lines ---

    fn open_jsonl(&mut self) -> Result<(), SourceError> {
        let Some(first) = self.next_jsonl()? else {
            return Err(self.malformed("line 1", "the file has no records: no vectors to import"));
        };
        if first.vector.is_empty() || first.vector.len() > MAX_DIMENSION {
            let at = format!("line {}", first.position);
            return Err(self.malformed(at, format!("vector has {} components", first.vector.len())));
        }
        self.dimension = first.vector.len();
        if let Kind::Jsonl { peeked, first_line, .. } = &mut self.kind {
            *first_line = first.position;
            *peeked = Some(first);
        }
        Ok(())
    }

    fn next_jsonl(&mut self) -> Result<Option<Record>, SourceError> {
        let Kind::Jsonl { line, first_line, buffer, peeked } = &mut self.kind else { return Ok(None) };
        if let Some(record) = peeked.take() {
            return Ok(Some(record));
        }
        let first_line = *first_line;
        loop {
            buffer.clear();
            let n = self
                .reader
                .read_until(b'\n', buffer)
                .map_err(|source| SourceError::Io { file: self.file.clone(), source })?;
            if n == 0 {
                return Ok(None);
            }
            *line += 1;
            if buffer.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let at = |column: Option<usize>| match column {
                Some(c) => format!("line {line}, column {c}"),
                None => format!("line {line}"),
            };
            let parsed: JsonLine = serde_json::from_slice(buffer).map_err(|e| SourceError::Malformed {
                file: self.file.clone(),
                at: at((e.column() > 0).then_some(e.column())),
                reason: json_reason(&e),
            })?;
            let malformed = |reason: String| SourceError::Malformed { file: self.file.clone(), at: at(None), reason };
            if self.dimension != 0 && parsed.vector.len() != self.dimension {
                return Err(malformed(format!(
                    "vector has {} components, expected {} (as on line {first_line})",
                    parsed.vector.len(),
                    self.dimension
                )));
            }
            let vector = finite_f32(parsed.vector.into_iter()).map_err(|r| malformed(format!("vector{r}")))?;
            return Ok(Some(Record { id: parsed.id, vector, payload: parsed.payload, position: *line }));
        }
    }
}

/// serde_json's message without its ` at line 1 column N` suffix (each line
/// is its own document, so the position is reported separately).
fn json_reason(e: &serde_json::Error) -> String {
    let message = e.to_string();
    match message.rsplit_once(" at line ") {
        Some((reason, _)) => reason.to_owned(),
        None => message,
    }
}

/// Converts to f32, rejecting NaN, infinities and values outside the f32
/// range (the server would reject them too, less precisely).
fn finite_f32(values: impl Iterator<Item = f64>) -> Result<Vec<f32>, String> {
    values
        .enumerate()
        .map(|(i, x)| {
            let y = x as f32;
            if y.is_finite() { Ok(y) } else { Err(format!("[{i}]: {x:?} is not a finite f32")) }
        })
        .collect()
}

/// Parses an `.npy` header dict: the element type and the 2-D shape
/// `(rows, dim)`.
fn parse_npy_header(header: &str) -> Result<(Element, u64, usize), String> {
    let descr = dict_value(header, "descr").ok_or("header has no 'descr'")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split_once('\''))
        .or_else(|| descr.strip_prefix('"').and_then(|d| d.split_once('"')))
        .map(|(d, _)| d)
        .ok_or_else(|| {
            format!("unsupported dtype {}: expected float32 or float64", descr.trim_end_matches([',', '}']))
        })?;
    let element = match descr {
        "<f4" => Element::F32Le,
        ">f4" => Element::F32Be,
        "<f8" => Element::F64Le,
        ">f8" => Element::F64Be,
        "=f4" if cfg!(target_endian = "little") => Element::F32Le,
        "=f8" if cfg!(target_endian = "little") => Element::F64Le,
        other => return Err(format!("unsupported dtype '{other}': expected float32 ('<f4') or float64 ('<f8')")),
    };
    let fortran = dict_value(header, "fortran_order").ok_or("header has no 'fortran_order'")?;
    if fortran.starts_with("True") {
        return Err("Fortran-order arrays are not supported; save with np.ascontiguousarray(a)".to_owned());
    }
    if !fortran.starts_with("False") {
        return Err("'fortran_order' is neither True nor False".to_owned());
    }
    let shape = dict_value(header, "shape").ok_or("header has no 'shape'")?;
    let inner =
        shape.strip_prefix('(').and_then(|s| s.split_once(')')).map(|(s, _)| s).ok_or("'shape' is not a tuple")?;
    let dims = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<u64>().map_err(|_| format!("'shape' has a non-integer entry {s:?}")))
        .collect::<Result<Vec<u64>, String>>()?;
    match dims[..] {
        [rows, dim] => Ok((element, rows, usize::try_from(dim).map_err(|_| format!("dimension {dim} is too large"))?)),
        _ => Err(format!("the array has shape ({inner}); expected 2-D (rows, dimension)")),
    }
}

/// The text after `'key':` (whitespace skipped) in a Python dict literal.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    [format!("'{key}'"), format!("\"{key}\"")].iter().find_map(|quoted| {
        let rest = &header[header.find(quoted.as_str())? + quoted.len()..];
        Some(rest.trim_start().strip_prefix(':')?.trim_start())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fvecs_bytes(rows: &[&[f32]]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in rows {
            out.extend((r.len() as i32).to_le_bytes());
            out.extend(r.iter().flat_map(|x| x.to_le_bytes()));
        }
        out
    }

    fn npy_bytes(descr: &str, shape: &str, data: &[u8], version: u8) -> Vec<u8> {
        let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        let prefix = if version == 1 { 10 } else { 12 };
        while (prefix + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY".to_vec();
        out.extend([version, 0]);
        if version == 1 {
            out.extend((header.len() as u16).to_le_bytes());
        } else {
            out.extend((header.len() as u32).to_le_bytes());
        }
        out.extend(header.bytes());
        out.extend(data);
        out
    }

    fn read_all<R: Read>(mut source: Source<R>) -> Result<Vec<Record>, SourceError> {
        let mut out = Vec::new();
        while let Some(r) = source.next_record()? {
            out.push(r);
        }
        Ok(out)
    }

    fn open(bytes: Vec<u8>, format: Format, offset: u64) -> Result<Source<io::Cursor<Vec<u8>>>, SourceError> {
        let len = bytes.len() as u64;
        Source::from_reader(io::Cursor::new(bytes), "f", format, offset, Some(len))
    }

    #[test]
    fn fvecs_rows_get_offset_ids() {
        let source = open(fvecs_bytes(&[&[1.0, 2.0], &[3.0, 4.5], &[-5.0, 6.0]]), Format::Fvecs, 10).expect("open");
        assert_eq!((source.dimension(), source.total()), (2, Some(3)));
        let records = read_all(source).expect("read");
        let got: Vec<(u64, Vec<f32>)> = records.into_iter().map(|r| (r.id, r.vector)).collect();
        assert_eq!(got, vec![(10, vec![1.0, 2.0]), (11, vec![3.0, 4.5]), (12, vec![-5.0, 6.0])]);
    }

    #[test]
    fn fvecs_errors_name_the_row_and_byte() {
        let mixed = open(fvecs_bytes(&[&[1.0, 2.0], &[3.0]]), Format::Fvecs, 0).expect("open");
        let err = read_all(mixed).expect_err("mixed dimensions").to_string();
        assert!(err.contains("row 1 (byte 12)") && err.contains("dimension 1"), "{err}");

        let mut truncated = fvecs_bytes(&[&[1.0, 2.0], &[3.0, 4.0]]);
        truncated.truncate(18);
        let err = read_all(open(truncated, Format::Fvecs, 0).expect("open")).expect_err("truncated").to_string();
        assert!(err.contains("row 1 (byte 12)") && err.contains("truncated"), "{err}");

        let nan = open(fvecs_bytes(&[&[1.0, f32::NAN]]), Format::Fvecs, 0).expect("open");
        let err = read_all(nan).expect_err("NaN").to_string();
        assert!(err.contains("row 0 (byte 0)") && err.contains("[1]: NaN"), "{err}");

        let err = open(Vec::new(), Format::Fvecs, 0).expect_err("empty").to_string();
        assert!(err.contains("empty"), "{err}");
        let err = open((-3i32).to_le_bytes().to_vec(), Format::Fvecs, 0).expect_err("negative").to_string();
        assert!(err.contains("dimension -3"), "{err}");
        let overflow = open(fvecs_bytes(&[&[1.0], &[2.0]]), Format::Fvecs, u64::MAX).expect("open");
        assert!(read_all(overflow).expect_err("overflow").to_string().contains("overflows"));
    }

    #[test]
    fn npy_v1_and_v2_f32_and_f64() {
        let values = [1.0f32, -2.5, 3.25, 0.1, 5.0, 6.0];
        let le: Vec<u8> = values.iter().flat_map(|x| x.to_le_bytes()).collect();
        for version in [1, 2, 3] {
            let source = open(npy_bytes("<f4", "(3, 2)", &le, version), Format::Npy, 7).expect("open");
            assert_eq!((source.dimension(), source.total()), (2, Some(3)));
            let records = read_all(source).expect("read");
            assert_eq!(records.iter().map(|r| r.id).collect::<Vec<_>>(), vec![7, 8, 9]);
            assert_eq!(records[1].vector, vec![3.25, 0.1]);
        }
        let be: Vec<u8> = values.iter().flat_map(|x| f64::from(*x).to_be_bytes()).collect();
        let records = read_all(open(npy_bytes(">f8", "(2, 3)", &be, 1), Format::Npy, 0).expect("open")).expect("read");
        assert_eq!(records[1].vector, vec![0.1, 5.0, 6.0]);
    }

    #[test]
    fn npy_header_and_body_errors() {
        let data = [0u8; 16];
        let err = |bytes: Vec<u8>| match open(bytes, Format::Npy, 0) {
            Err(e) => e.to_string(),
            Ok(source) => read_all(source).expect_err("should fail").to_string(),
        };
        assert!(err(b"PK\x03\x04 not npy".to_vec()).contains("magic"));
        assert!(err(npy_bytes("<i8", "(2, 1)", &data, 1)).contains("unsupported dtype '<i8'"));
        assert!(err(npy_bytes("<f4", "(4,)", &data, 1)).contains("expected 2-D"));
        assert!(err(npy_bytes("<f4", "(2, 2, 1)", &data, 1)).contains("expected 2-D"));
        assert!(err(npy_bytes("<f4", "(0, 4)", &[], 1)).contains("no rows"));
        let truncated = err(npy_bytes("<f4", "(3, 2)", &data, 1));
        assert!(truncated.contains("row 2 (byte 144)") && truncated.contains("truncated"), "{truncated}");
        assert!(err(npy_bytes("<f4", "(1, 2)", &data[..12], 1)).contains("unexpected bytes"));
        let mut fortran = npy_bytes("<f4", "(2, 2)", &data, 1);
        let at = fortran.windows(5).position(|w| w == b"False").expect("False in header");
        fortran[at..at + 5].copy_from_slice(b"True ");
        assert!(err(fortran).contains("Fortran"));
        let inf: Vec<u8> = [1.0f64, 1e300].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert!(err(npy_bytes("<f8", "(1, 2)", &inf, 1)).contains("[1]: 1e300 is not a finite f32"));
    }

    #[test]
    fn jsonl_streams_records_and_skips_blank_lines() {
        let text = "{\"id\":5,\"vector\":[0.1,2],\"payload\":{\"t\":\"a\"}}\n\n  \n{\"vector\":[3,4],\"id\":9,\"x\":1}";
        let source = open(text.as_bytes().to_vec(), Format::Jsonl, 0).expect("open");
        assert_eq!(source.dimension(), 2);
        let records = read_all(source).expect("read");
        assert_eq!(records.len(), 2);
        assert_eq!((records[0].id, records[0].vector.clone(), records[0].position), (5, vec![0.1, 2.0], 1));
        assert_eq!(records[0].payload.as_ref().and_then(|p| p.get("t")), Some(&Value::from("a")));
        assert_eq!((records[1].id, records[1].payload.is_none(), records[1].position), (9, true, 4));
        let body = serde_json::to_string(&records).expect("serialize");
        assert_eq!(body, r#"[{"id":5,"vector":[0.1,2.0],"payload":{"t":"a"}},{"id":9,"vector":[3.0,4.0]}]"#);
    }

    #[test]
    fn jsonl_errors_name_the_line() {
        let err = |text: &str| match open(text.as_bytes().to_vec(), Format::Jsonl, 0) {
            Err(e) => e.to_string(),
            Ok(source) => read_all(source).expect_err("should fail").to_string(),
        };
        let ok = "{\"id\":1,\"vector\":[1,2]}\n";
        let e = err(&format!("{ok}{ok}{{\"id\":3,\"vector\":[1,2}}\n"));
        assert!(e.starts_with("f: line 3, column 22: expected `,` or `]`"), "{e}");
        let e = err(&format!("{ok}\n{{\"id\":3,\"vector\":[1,2,3]}}\n"));
        assert!(e.contains("line 3") && e.contains("3 components, expected 2 (as on line 1)"), "{e}");
        assert!(err(&format!("{ok}{{\"id\":-1,\"vector\":[1,2]}}")).contains("line 2"));
        assert!(err(&format!("{ok}{{\"vector\":[1,2]}}")).contains("missing field `id`"));
        assert!(err(&format!("{ok}{{\"id\":2,\"vector\":[1,1e39]}}")).contains("line 2: vector[1]: 1e39"));
        assert!(err(&format!("{ok}{{\"id\":2,\"vector\":[1,2],\"payload\":[1]}}")).contains("line 2, column"));
        assert!(err("\n\n").contains("no records"));
        assert!(err("{\"id\":1,\"vector\":[]}").contains("0 components"));
    }

    #[test]
    fn format_from_extension() {
        assert_eq!(Format::from_path(Path::new("a/base.fvecs")), Some(Format::Fvecs));
        assert_eq!(Format::from_path(Path::new("x.NPY")), Some(Format::Npy));
        assert_eq!(Format::from_path(Path::new("x.ndjson")), Some(Format::Jsonl));
        assert_eq!(Format::from_path(Path::new("x.json")), None);
        assert_eq!(Format::from_path(Path::new("x")), None);
    }

    #[test]
    fn count_lines_counts_a_last_line_without_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.jsonl");
        std::fs::write(&path, "a\nb\nc").expect("write");
        assert_eq!(count_lines(&path).expect("count"), 3);
        std::fs::write(&path, "a\nb\n").expect("write");
        assert_eq!(count_lines(&path).expect("count"), 2);
    }
}
