//! Checkpoint files: a consistent snapshot of the engine's state as of one
//! LSN, made of named opaque sections (e.g. `config`, `payloads`, `index`).
//!
//! # File layout (`<dir>/checkpoint-<lsn as 20 digits>.ckpt`, little-endian)
//!
//! Header, 32 bytes at offset 0:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `RUVCKPT\0` |
//! | 8 | 4 | format version, currently 1 |
//! | 12 | 4 | reserved, 0 |
//! | 16 | 8 | LSN: the state includes every WAL record with LSN ≤ this |
//! | 24 | 4 | reserved, 0 |
//! | 28 | 4 | CRC-32 of bytes 0..28 |
//!
//! Then the section bodies, each starting at an offset that is a multiple of
//! 8 (zero padding in between), so a loaded section can be viewed as `u64`,
//! `f32` or `u32` arrays without copying. Then the table of contents (at an
//! 8-aligned offset), one 32-byte entry per section in file order:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | tag: 1–8 ASCII graphic bytes, zero padded |
//! | 8 | 8 | offset of the section body |
//! | 16 | 8 | length of the section body |
//! | 24 | 4 | CRC-32 of the section body |
//! | 28 | 4 | reserved, 0 |
//!
//! Footer, the last 32 bytes:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | offset of the table of contents |
//! | 8 | 4 | section count |
//! | 12 | 4 | reserved, 0 |
//! | 16 | 8 | LSN (equal to the header's) |
//! | 24 | 4 | CRC-32 of the table of contents followed by footer bytes 0..24 |
//! | 28 | 4 | end magic `CKND` |
//!
//! The section count and the per-section lengths and checksums live at the
//! end (not in the header) so sections can be streamed, e.g. straight from
//! `Hnsw::write_to`, into an append-only file without seeking back or
//! building the section in memory.
//!
//! # Protocol
//! [`CheckpointWriter`] writes `checkpoint-<lsn>.ckpt.tmp`, fsyncs it,
//! renames it to its final name, fsyncs the directory, then removes older
//! checkpoints (and fsyncs the directory again). A crash at any point leaves
//! the old checkpoint, or the new complete one, as the newest `*.ckpt`;
//! a leftover `*.tmp` is ignored and removed.
//!
//! # Deltas
//! A checkpoint is *full* (`checkpoint-<lsn>.ckpt`) or a *delta*
//! (`delta-<lsn>.ckpt`, same layout): a delta holds only what changed
//! since the checkpoint before it, so the state as of a delta's LSN is the
//! newest full checkpoint followed by every delta after it, in LSN order
//! ([`Checkpoint::read_chain`]). Committing a delta removes nothing;
//! committing a full checkpoint removes every older full checkpoint and
//! every delta it covers (LSN ≤ its own). A crash between the rename and
//! the removals leaves covered deltas behind, which the next reader
//! removes.
//!
//! [`Checkpoint::read_latest`] maps the newest `*.ckpt` into memory (or, on
//! a non-mapping [`Fs`], reads it into an 8-aligned buffer) and verifies the header, footer, table of contents
//! and every section checksum, and that all padding is zero, so every
//! single-bit flip anywhere in the file is detected. A damaged newest checkpoint is an error
//! naming the file and offset; it never falls back to an older one, because
//! the WAL records between the older and the newer checkpoint may already
//! have been truncated.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crc32fast::Hasher;

use crate::error::{Result, StorageError};
use crate::io::{FileBytes, FileHandle, Fs};

const MAGIC: [u8; 8] = *b"RUVCKPT\0";
const END_MAGIC: [u8; 4] = *b"CKND";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 32;
const FOOTER_LEN: usize = 32;
const TOC_ENTRY_LEN: usize = 32;
const ALIGN: u64 = 8;
const BUF_CAP: usize = 1 << 20;

/// Whether a checkpoint holds the whole state or the changes since the
/// checkpoint before it (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointKind {
    /// The whole state: `checkpoint-<lsn>.ckpt`.
    Full,
    /// The changes since the previous checkpoint: `delta-<lsn>.ckpt`.
    Delta,
}

impl CheckpointKind {
    fn prefix(self) -> &'static str {
        match self {
            CheckpointKind::Full => "checkpoint-",
            CheckpointKind::Delta => "delta-",
        }
    }
}

/// The file name of the full checkpoint at `lsn`.
pub fn checkpoint_file_name(lsn: u64) -> String {
    file_name(CheckpointKind::Full, lsn)
}

fn file_name(kind: CheckpointKind, lsn: u64) -> String {
    format!("{}{lsn:020}.ckpt", kind.prefix())
}

fn parse_name(kind: CheckpointKind, name: &str) -> Option<u64> {
    let digits = name.strip_prefix(kind.prefix())?.strip_suffix(".ckpt")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn parse_checkpoint_name(name: &str) -> Option<u64> {
    parse_name(CheckpointKind::Full, name)
}

fn is_leftover_tmp(name: &str) -> bool {
    (name.starts_with("checkpoint-") || name.starts_with("delta-")) && name.ends_with(".tmp")
}

fn encode_tag(tag: &str) -> Result<[u8; 8]> {
    let bytes = tag.as_bytes();
    if bytes.is_empty() || bytes.len() > 8 || !bytes.iter().all(u8::is_ascii_graphic) {
        return Err(StorageError::InvalidSectionTag { tag: tag.to_owned() });
    }
    let mut out = [0u8; 8];
    out[..bytes.len()].copy_from_slice(bytes);
    Ok(out)
}

/// The tag as text, if it is a well-formed tag.
fn decode_tag(raw: &[u8; 8]) -> Option<&str> {
    let len = raw.iter().position(|&b| b == 0).unwrap_or(8);
    let (text, pad) = raw.split_at(len);
    let ok = len > 0 && text.iter().all(u8::is_ascii_graphic) && pad.iter().all(|&b| b == 0);
    if ok { std::str::from_utf8(text).ok() } else { None }
}

#[derive(Debug, Clone, Copy)]
struct TocEntry {
    tag: [u8; 8],
    offset: u64,
    len: u64,
    crc: u32,
}

/// Lists the complete full checkpoints (`checkpoint-*.ckpt`) in `dir`,
/// oldest first.
pub fn list_checkpoints(fs: &dyn Fs, dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    list_kind(fs, dir, CheckpointKind::Full)
}

/// Lists the complete checkpoints of one kind in `dir`, oldest first.
pub fn list_kind(fs: &dyn Fs, dir: &Path, kind: CheckpointKind) -> Result<Vec<(u64, PathBuf)>> {
    let names = match fs.list_dir(dir) {
        Ok(names) => names,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StorageError::io(dir, e)),
    };
    let mut found: Vec<(u64, PathBuf)> =
        names.iter().filter_map(|n| parse_name(kind, n).map(|lsn| (lsn, dir.join(n)))).collect();
    found.sort();
    Ok(found)
}

/// Removes leftover `checkpoint-*.tmp` files from an interrupted write.
fn remove_leftovers(fs: &dyn Fs, dir: &Path) -> Result<()> {
    let names = match fs.list_dir(dir) {
        Ok(names) => names,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StorageError::io(dir, e)),
    };
    let mut removed = false;
    for name in names.iter().filter(|n| is_leftover_tmp(n)) {
        let path = dir.join(name);
        fs.remove_file(&path).map_err(|e| StorageError::io(&path, e))?;
        removed = true;
    }
    if removed {
        fs.sync_dir(dir).map_err(|e| StorageError::io(dir, e))?;
    }
    Ok(())
}

/// Streams a new checkpoint into a temporary file; [`CheckpointWriter::commit`]
/// makes it the newest checkpoint atomically. Dropped without `commit`, it
/// removes its temporary file.
#[derive(Debug)]
pub struct CheckpointWriter {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    kind: CheckpointKind,
    lsn: u64,
    tmp_path: PathBuf,
    file: Arc<dyn FileHandle>,
    buf: Vec<u8>,
    /// Bytes written so far, buffered ones included.
    pos: u64,
    sections: Vec<TocEntry>,
    /// First write failure, reported again by `commit`.
    failed: Option<io::ErrorKind>,
    committed: bool,
}

impl CheckpointWriter {
    /// Starts a full checkpoint of the state as of `lsn` in `dir` (created
    /// if missing), removing leftovers of an interrupted earlier attempt.
    pub fn create(fs: Arc<dyn Fs>, dir: impl Into<PathBuf>, lsn: u64) -> Result<CheckpointWriter> {
        Self::create_kind(fs, dir, CheckpointKind::Full, lsn)
    }

    /// Starts a checkpoint of `kind` as of `lsn` (see [`CheckpointKind`]).
    pub fn create_kind(
        fs: Arc<dyn Fs>,
        dir: impl Into<PathBuf>,
        kind: CheckpointKind,
        lsn: u64,
    ) -> Result<CheckpointWriter> {
        let dir = dir.into();
        fs.create_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
        remove_leftovers(fs.as_ref(), &dir)?;
        let tmp_path = dir.join(format!("{}.tmp", file_name(kind, lsn)));
        let file = fs.create(&tmp_path).map_err(|e| StorageError::io(&tmp_path, e))?;
        let mut w = CheckpointWriter {
            fs,
            dir,
            kind,
            lsn,
            tmp_path,
            file,
            buf: Vec::with_capacity(BUF_CAP),
            pos: 0,
            sections: Vec::new(),
            failed: None,
            committed: false,
        };
        let mut header = [0u8; HEADER_LEN];
        header[0..8].copy_from_slice(&MAGIC);
        header[8..12].copy_from_slice(&VERSION.to_le_bytes());
        header[16..24].copy_from_slice(&lsn.to_le_bytes());
        let crc = crc32fast::hash(&header[..28]);
        header[28..32].copy_from_slice(&crc.to_le_bytes());
        w.put(&header).map_err(|e| StorageError::io(&w.tmp_path, e))?;
        Ok(w)
    }

    /// The LSN this checkpoint covers.
    pub fn lsn(&self) -> u64 {
        self.lsn
    }

    /// Starts the section `tag` (1–8 ASCII graphic characters, unique in the
    /// file). Write its bytes through the returned [`io::Write`]; the section
    /// ends when the writer is dropped.
    pub fn section(&mut self, tag: &str) -> Result<SectionWriter<'_>> {
        let raw = encode_tag(tag)?;
        if self.sections.iter().any(|s| s.tag == raw) {
            return Err(StorageError::DuplicateSection { tag: tag.to_owned() });
        }
        self.pad_to_alignment().map_err(|e| StorageError::io(&self.tmp_path, e))?;
        let offset = self.pos;
        Ok(SectionWriter { w: self, tag: raw, offset, len: 0, crc: Hasher::new() })
    }

    /// Writes a whole section from memory.
    pub fn add_section(&mut self, tag: &str, bytes: &[u8]) -> Result<()> {
        let mut s = self.section(tag)?;
        s.write_all(bytes).map_err(|e| StorageError::io(&s.w.tmp_path, e))?;
        Ok(())
    }

    /// Finishes the file, makes it durable, atomically publishes it under
    /// its final name, and (for a full checkpoint) removes the checkpoints
    /// and deltas it supersedes. Returns the final path and the bytes written. Once this returns `Ok`, WAL segments before `lsn + 1` may
    /// be truncated.
    pub fn commit(mut self) -> Result<(PathBuf, u64)> {
        let tmp = self.tmp_path.clone();
        let io_err = |e: io::Error| StorageError::io(&tmp, e);
        if let Some(kind) = self.failed {
            return Err(io_err(io::Error::new(kind, "an earlier write to the checkpoint failed")));
        }
        self.pad_to_alignment().map_err(io_err)?;
        let toc_offset = self.pos;
        let mut tail = Vec::with_capacity(self.sections.len() * TOC_ENTRY_LEN + FOOTER_LEN);
        for s in &self.sections {
            tail.extend_from_slice(&s.tag);
            tail.extend_from_slice(&s.offset.to_le_bytes());
            tail.extend_from_slice(&s.len.to_le_bytes());
            tail.extend_from_slice(&s.crc.to_le_bytes());
            tail.extend_from_slice(&[0u8; 4]);
        }
        tail.extend_from_slice(&toc_offset.to_le_bytes());
        tail.extend_from_slice(&(self.sections.len() as u32).to_le_bytes());
        tail.extend_from_slice(&[0u8; 4]);
        tail.extend_from_slice(&self.lsn.to_le_bytes());
        let crc = crc32fast::hash(&tail);
        tail.extend_from_slice(&crc.to_le_bytes());
        tail.extend_from_slice(&END_MAGIC);
        self.put(&tail).map_err(io_err)?;
        self.flush_buf().map_err(io_err)?;
        self.file.sync().map_err(io_err)?;

        let final_path = self.dir.join(file_name(self.kind, self.lsn));
        self.fs.rename(&self.tmp_path, &final_path).map_err(io_err)?;
        self.committed = true;
        self.fs.sync_dir(&self.dir).map_err(|e| StorageError::io(&self.dir, e))?;
        if self.kind == CheckpointKind::Full {
            remove_superseded(self.fs.as_ref(), &self.dir, self.lsn)?;
        }
        Ok((final_path, self.pos))
    }

    fn pad_to_alignment(&mut self) -> io::Result<()> {
        let pad = (ALIGN - self.pos % ALIGN) % ALIGN;
        self.put(&[0u8; ALIGN as usize][..pad as usize])
    }

    /// Buffered append; large writes bypass the buffer.
    fn put(&mut self, data: &[u8]) -> io::Result<()> {
        if let Some(kind) = self.failed {
            return Err(io::Error::new(kind, "an earlier write to the checkpoint failed"));
        }
        if self.buf.len() + data.len() > BUF_CAP {
            self.flush_buf()?;
        }
        if data.len() >= BUF_CAP {
            self.file.append(data).inspect_err(|e| self.failed = Some(e.kind()))?;
        } else {
            self.buf.extend_from_slice(data);
        }
        self.pos += data.len() as u64;
        Ok(())
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.file.append(&self.buf).inspect_err(|e| self.failed = Some(e.kind()))?;
            self.buf.clear();
        }
        Ok(())
    }
}

/// Removes the full checkpoints older than `lsn` and the deltas at or
/// before it: the full checkpoint at `lsn` covers them all.
fn remove_superseded(fs: &dyn Fs, dir: &Path, lsn: u64) -> Result<()> {
    let mut removed = false;
    let full = list_kind(fs, dir, CheckpointKind::Full)?.into_iter().filter(|&(l, _)| l < lsn);
    let deltas = list_kind(fs, dir, CheckpointKind::Delta)?.into_iter().filter(|&(l, _)| l <= lsn);
    for (_, path) in full.chain(deltas) {
        fs.remove_file(&path).map_err(|e| StorageError::io(&path, e))?;
        removed = true;
    }
    if removed {
        fs.sync_dir(dir).map_err(|e| StorageError::io(dir, e))?;
    }
    Ok(())
}

impl Drop for CheckpointWriter {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort; a leftover is also removed by the next writer or reader.
            let _ = self.fs.remove_file(&self.tmp_path);
        }
    }
}

/// One section being written; CRCs the bytes as they pass. Dropping it ends
/// the section.
#[derive(Debug)]
pub struct SectionWriter<'a> {
    w: &'a mut CheckpointWriter,
    tag: [u8; 8],
    offset: u64,
    len: u64,
    crc: Hasher,
}

impl Write for SectionWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.w.put(buf)?;
        self.crc.update(buf);
        self.len += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for SectionWriter<'_> {
    fn drop(&mut self) {
        let crc = std::mem::take(&mut self.crc).finalize();
        self.w.sections.push(TocEntry { tag: self.tag, offset: self.offset, len: self.len, crc });
    }
}

/// A verified checkpoint loaded in memory.
#[derive(Debug)]
pub struct Checkpoint {
    path: PathBuf,
    lsn: u64,
    /// The file's bytes (memory-mapped on [`crate::RealFs`]); they start
    /// 8-aligned, so every section is 8-aligned.
    bytes: FileBytes,
    sections: Vec<(String, usize, usize)>,
}

impl Checkpoint {
    /// Loads the newest checkpoint in `dir`, or `None` if there is none.
    /// Leftover temporary files are removed. A damaged newest checkpoint is
    /// an error (see the module docs for why there is no fallback).
    pub fn read_latest(fs: &dyn Fs, dir: &Path) -> Result<Option<Checkpoint>> {
        remove_leftovers(fs, dir)?;
        match list_checkpoints(fs, dir)?.pop() {
            Some((_, path)) => Ok(Some(Checkpoint::read(fs, &path)?)),
            None => Ok(None),
        }
    }

    /// Loads the newest full checkpoint in `dir` and every delta after it,
    /// oldest first (module docs), or `None` if there is no full
    /// checkpoint. Deltas it covers are leftovers of an interrupted commit
    /// and are removed. Any damaged file is an error naming it.
    pub fn read_chain(fs: &dyn Fs, dir: &Path) -> Result<Option<(Checkpoint, Vec<Checkpoint>)>> {
        let Some(base) = Self::read_latest(fs, dir)? else {
            return Ok(None);
        };
        remove_superseded(fs, dir, base.lsn())?;
        let mut deltas = Vec::new();
        for (_, path) in list_kind(fs, dir, CheckpointKind::Delta)? {
            deltas.push(Checkpoint::read(fs, &path)?);
        }
        Ok(Some((base, deltas)))
    }

    /// Loads and verifies one checkpoint file.
    pub fn read(fs: &dyn Fs, path: &Path) -> Result<Checkpoint> {
        let bytes = fs.read_all(path).map_err(|e| StorageError::io(path, e))?;
        let (lsn, sections) = verify(path, &bytes)?;
        let name = path.file_name().and_then(|n| n.to_str());
        if let Some(name_lsn) =
            name.and_then(|n| parse_checkpoint_name(n).or_else(|| parse_name(CheckpointKind::Delta, n)))
            && name_lsn != lsn
        {
            return Err(StorageError::corrupt(path, 16, format!("header LSN {lsn} does not match the file name")));
        }
        Ok(Checkpoint { path: path.to_path_buf(), lsn, bytes, sections })
    }

    /// The LSN the state covers: replay the WAL from `lsn() + 1`.
    pub fn lsn(&self) -> u64 {
        self.lsn
    }

    /// The size of the file in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the file is empty (never true of a verified checkpoint).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The file this was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The bytes of section `tag` (8-byte aligned), if present.
    pub fn section(&self, tag: &str) -> Option<&[u8]> {
        self.sections.iter().find(|(t, _, _)| t == tag).map(|&(_, off, len)| &self.bytes[off..off + len])
    }

    /// Every section as `(tag, bytes)`, in file order.
    pub fn sections(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.sections.iter().map(|(t, off, len)| (t.as_str(), &self.bytes[*off..*off + *len]))
    }
}

fn read_u32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

fn read_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

/// Checks everything; returns the LSN and `(tag, offset, len)` per section.
#[allow(clippy::type_complexity)]
fn verify(path: &Path, b: &[u8]) -> Result<(u64, Vec<(String, usize, usize)>)> {
    let corrupt = |offset: usize, reason: String| StorageError::corrupt(path, offset as u64, reason);
    if b.len() < HEADER_LEN + FOOTER_LEN {
        return Err(corrupt(0, format!("file of {} bytes is shorter than header and footer", b.len())));
    }
    if b[0..8] != MAGIC {
        return Err(corrupt(0, "not a checkpoint file (bad magic)".into()));
    }
    if read_u32(b, 28) != crc32fast::hash(&b[..28]) {
        return Err(corrupt(0, "header checksum mismatch".into()));
    }
    let version = read_u32(b, 8);
    if version != VERSION {
        return Err(StorageError::UnsupportedVersion {
            file: path.to_path_buf(),
            offset: 8,
            found: version,
            supported: VERSION,
        });
    }
    let lsn = read_u64(b, 16);

    let footer = b.len() - FOOTER_LEN;
    if b[footer + 28..] != END_MAGIC {
        return Err(corrupt(footer, "footer missing (file incomplete?)".into()));
    }
    let toc_offset = read_u64(b, footer);
    let count = read_u32(b, footer + 8) as usize;
    let toc_len = count.saturating_mul(TOC_ENTRY_LEN);
    let toc_ok = usize::try_from(toc_offset)
        .ok()
        .is_some_and(|t| t >= HEADER_LEN && t % ALIGN as usize == 0 && footer.checked_sub(t) == Some(toc_len));
    if !toc_ok {
        return Err(corrupt(
            footer,
            format!("table of contents ({count} entries at {toc_offset}) does not fit the file"),
        ));
    }
    let toc_start = toc_offset as usize;
    if read_u32(b, footer + 24) != crc32fast::hash(&b[toc_start..footer + 24]) {
        return Err(corrupt(footer, "table of contents checksum mismatch".into()));
    }
    if read_u64(b, footer + 16) != lsn {
        return Err(corrupt(footer, "footer LSN differs from header LSN".into()));
    }

    let mut sections = Vec::with_capacity(count);
    let mut min_start = HEADER_LEN;
    for i in 0..count {
        let e = toc_start + i * TOC_ENTRY_LEN;
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&b[e..e + 8]);
        let tag = decode_tag(&raw).ok_or_else(|| corrupt(e, "malformed section tag".into()))?;
        if sections.iter().any(|(t, _, _)| t == tag) {
            return Err(corrupt(e, format!("section {tag:?} appears twice")));
        }
        let (off, len) = (read_u64(b, e + 8), read_u64(b, e + 16));
        let range = usize::try_from(off).ok().zip(usize::try_from(len).ok()).filter(|&(o, l)| {
            o >= min_start && o % ALIGN as usize == 0 && o.checked_add(l).is_some_and(|end| end <= toc_start)
        });
        let Some((off, len)) = range else {
            return Err(corrupt(e, format!("section {tag:?} at {off}+{len} is out of bounds or overlaps")));
        };
        if let Some(p) = b[min_start..off].iter().position(|&x| x != 0) {
            return Err(corrupt(min_start + p, "non-zero padding byte".into()));
        }
        if crc32fast::hash(&b[off..off + len]) != read_u32(b, e + 24) {
            return Err(corrupt(off, format!("section {tag:?} checksum mismatch")));
        }
        min_start = off + len;
        sections.push((tag.to_owned(), off, len));
    }
    if let Some(p) = b[min_start..toc_start].iter().position(|&x| x != 0) {
        return Err(corrupt(min_start + p, "non-zero padding byte".into()));
    }
    Ok((lsn, sections))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags() {
        assert_eq!(checkpoint_file_name(7), "checkpoint-00000000000000000007.ckpt");
        assert_eq!(parse_checkpoint_name(&checkpoint_file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_checkpoint_name("checkpoint-7.ckpt"), None);
        assert!(is_leftover_tmp("checkpoint-00000000000000000007.ckpt.tmp"));
        assert!(encode_tag("index").is_ok());
        assert!(encode_tag("").is_err());
        assert!(encode_tag("waytoolong").is_err());
        assert!(encode_tag("sp ace").is_err());
        assert_eq!(decode_tag(&encode_tag("payloads").expect("valid")), Some("payloads"));
        assert_eq!(decode_tag(b"ab\0c\0\0\0\0"), None);
    }
}
