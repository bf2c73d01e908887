//! The partition snapshot: how one shard ships the whole content of a
//! partition to another when a copy is added (a move, a wiped volume, a
//! copy far behind), instead of the router fetching and re-sending every
//! vector as JSON.
//!
//! `GET /collections/{name}/partitions/{p}/snapshot` answers one, streamed;
//! `POST` of the same path applies one, streamed, as versioned writes (each
//! record changes the copy only when newer than what it holds, so a
//! snapshot can be applied beside live writes, twice, or cut off midway
//! and sent again). A router pipes the bytes from the holder to the new
//! copy without decoding them.
//!
//! Layout, little-endian, one stream: a header, frames of records, each
//! checksummed and verified before any of its records is used (a damaged
//! stream never applies a made-up version), and a trailer with the count:
//!
//! ```text
//! header   "RVPS" | u8 format (1) | u32 dimension | u32 partition | u32 CRC-32 of the 13 bytes before
//! frame    u32 length (> 0) | u32 CRC-32 of the records | records
//! record   u8 1 (point)     | u64 id | u64 version | dimension × f32
//!                           | u32 payload length (u32::MAX: none) | payload (JSON)
//!          u8 2 (tombstone) | u64 id | u64 version
//! trailer  u32 0 | u32 CRC-32 of the count | u64 records in the snapshot
//! ```
//!
//! Only versioned writes travel (what the replicas' stamps describe): a
//! shard in a cluster holds nothing else.

use std::collections::VecDeque;
use std::fmt;

/// Media type of a partition snapshot body.
pub const SNAPSHOT_MEDIA_TYPE: &str = "application/x-ruvector-partition";

const MAGIC: &[u8; 4] = b"RVPS";
const FORMAT: u8 = 1;
const HEADER_LEN: usize = 4 + 1 + 4 + 4 + 4;
const TAG_POINT: u8 = 1;
const TAG_TOMBSTONE: u8 = 2;
const NO_PAYLOAD: u32 = u32::MAX;
/// A frame is closed once it holds this many bytes.
const FRAME_BYTES: usize = 1 << 20;

/// One record of a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub enum SnapshotRecord {
    /// A live point: its newest versioned write.
    Point {
        /// Vector id.
        id: u64,
        /// The write's version.
        version: u64,
        /// The stored vector.
        vector: Vec<f32>,
        /// The stored payload (JSON bytes).
        payload: Option<Vec<u8>>,
    },
    /// A versioned delete not yet purged.
    Tombstone {
        /// Vector id.
        id: u64,
        /// The delete's version.
        version: u64,
    },
}

/// Writes a snapshot as byte buffers the caller streams: the header from
/// [`SnapshotWriter::new`], whole frames from [`SnapshotWriter::take_frame`]
/// as they fill, the rest from [`SnapshotWriter::finish`].
#[derive(Debug)]
pub struct SnapshotWriter {
    frame: Vec<u8>,
    records: u64,
    dimension: usize,
}

impl SnapshotWriter {
    /// A writer for vectors of `dimension`, and the header of `partition`.
    pub fn new(dimension: usize, partition: u32) -> (SnapshotWriter, Vec<u8>) {
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.push(FORMAT);
        header.extend_from_slice(&(dimension as u32).to_le_bytes());
        header.extend_from_slice(&partition.to_le_bytes());
        let crc = crc32fast::hash(&header);
        header.extend_from_slice(&crc.to_le_bytes());
        (SnapshotWriter { frame: Vec::new(), records: 0, dimension }, header)
    }

    /// Adds a live point. `vector` must have the writer's dimension.
    pub fn point(&mut self, id: u64, version: u64, vector: &[f32], payload: Option<&[u8]>) {
        debug_assert_eq!(vector.len(), self.dimension);
        let out = &mut self.frame;
        out.push(TAG_POINT);
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&version.to_le_bytes());
        for x in vector {
            out.extend_from_slice(&x.to_le_bytes());
        }
        match payload {
            Some(p) => {
                out.extend_from_slice(&(p.len() as u32).to_le_bytes());
                out.extend_from_slice(p);
            }
            None => out.extend_from_slice(&NO_PAYLOAD.to_le_bytes()),
        }
        self.records += 1;
    }

    /// Adds a tombstone.
    pub fn tombstone(&mut self, id: u64, version: u64) {
        self.frame.push(TAG_TOMBSTONE);
        self.frame.extend_from_slice(&id.to_le_bytes());
        self.frame.extend_from_slice(&version.to_le_bytes());
        self.records += 1;
    }

    /// The current frame, framed, once it holds enough bytes to send.
    pub fn take_frame(&mut self) -> Option<Vec<u8>> {
        (self.frame.len() >= FRAME_BYTES).then(|| self.close_frame())
    }

    fn close_frame(&mut self) -> Vec<u8> {
        let records = std::mem::take(&mut self.frame);
        let mut out = Vec::with_capacity(8 + records.len());
        out.extend_from_slice(&(records.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&records).to_le_bytes());
        out.extend_from_slice(&records);
        out
    }

    /// The last frame (if any) and the trailer.
    pub fn finish(mut self) -> Vec<u8> {
        let mut out = if self.frame.is_empty() { Vec::new() } else { self.close_frame() };
        let count = self.records.to_le_bytes();
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&count).to_le_bytes());
        out.extend_from_slice(&count);
        out
    }
}

/// Why a snapshot could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotError {
    /// Byte offset in the stream where the problem was found.
    pub offset: u64,
    /// What was wrong.
    pub reason: String,
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "partition snapshot: {} at byte {}", self.reason, self.offset)
    }
}

impl std::error::Error for SnapshotError {}

/// Reads a snapshot from chunks as they arrive: [`SnapshotReader::feed`]
/// bytes, then take [`SnapshotReader::next_record`] until it answers
/// `None`; [`SnapshotReader::finish`] at the end of the stream.
#[derive(Debug)]
pub struct SnapshotReader {
    buffer: Vec<u8>,
    /// Bytes of `buffer` already consumed.
    at: usize,
    /// Stream offset of `buffer[0]`.
    base: u64,
    header: Option<(usize, u32)>,
    /// Records of the last verified frame not yet handed out.
    ready: VecDeque<SnapshotRecord>,
    records: u64,
    done: bool,
    max_dimension: usize,
    max_frame: usize,
}

impl SnapshotReader {
    /// A reader refusing a dimension above `max_dimension` and frames
    /// (hence payloads) above `max_frame` bytes, before allocating them.
    pub fn new(max_dimension: usize, max_frame: usize) -> SnapshotReader {
        SnapshotReader {
            buffer: Vec::new(),
            at: 0,
            base: 0,
            header: None,
            ready: VecDeque::new(),
            records: 0,
            done: false,
            max_dimension,
            max_frame,
        }
    }

    /// Appends received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.at > 0 && self.at >= self.buffer.len() / 2 {
            self.buffer.drain(..self.at);
            self.base += self.at as u64;
            self.at = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// The header's (dimension, partition), once read.
    pub fn header(&self) -> Option<(usize, u32)> {
        self.header
    }

    /// Records handed out so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    fn error(&self, reason: impl Into<String>) -> SnapshotError {
        SnapshotError { offset: self.base + self.at as u64, reason: reason.into() }
    }

    fn available(&self) -> &[u8] {
        &self.buffer[self.at..]
    }

    /// The next record of a verified frame; `Ok(None)` when more bytes are
    /// needed or the trailer was read ([`SnapshotReader::is_complete`]).
    pub fn next_record(&mut self) -> Result<Option<SnapshotRecord>, SnapshotError> {
        loop {
            if let Some(record) = self.ready.pop_front() {
                self.records += 1;
                return Ok(Some(record));
            }
            if self.done {
                return if self.available().is_empty() { Ok(None) } else { Err(self.error("bytes after the trailer")) };
            }
            if !self.step()? {
                return Ok(None);
            }
        }
    }

    /// Reads the header, one frame or the trailer; `false` when more bytes
    /// are needed.
    fn step(&mut self) -> Result<bool, SnapshotError> {
        let a = self.available();
        let Some((dimension, _)) = self.header else {
            if a.len() < HEADER_LEN {
                return Ok(false);
            }
            if &a[..4] != MAGIC {
                return Err(self.error("not a partition snapshot (bad magic)"));
            }
            if u32_at(a, 13) != crc32fast::hash(&a[..13]) {
                return Err(self.error("header checksum mismatch"));
            }
            if a[4] != FORMAT {
                return Err(self.error(format!("unknown snapshot format {}", a[4])));
            }
            let dimension = u32_at(a, 5) as usize;
            if dimension == 0 || dimension > self.max_dimension {
                return Err(self.error(format!("dimension {dimension} outside 1..={}", self.max_dimension)));
            }
            self.header = Some((dimension, u32_at(a, 9)));
            self.at += HEADER_LEN;
            return Ok(true);
        };
        if a.len() < 8 {
            return Ok(false);
        }
        let (len, crc) = (u32_at(a, 0) as usize, u32_at(a, 4));
        if len == 0 {
            if a.len() < 16 {
                return Ok(false);
            }
            if crc != crc32fast::hash(&a[8..16]) {
                return Err(self.error("trailer checksum mismatch"));
            }
            let declared = u64_at(a, 8);
            if declared != self.records {
                return Err(self.error(format!("the trailer counts {declared} records, {} were read", self.records)));
            }
            self.at += 16;
            self.done = true;
            return Ok(true);
        }
        if len > self.max_frame {
            return Err(self.error(format!("a frame of {len} bytes, over the limit of {}", self.max_frame)));
        }
        if a.len() < 8 + len {
            return Ok(false);
        }
        let frame = &a[8..8 + len];
        if crc32fast::hash(frame) != crc {
            return Err(self.error("frame checksum mismatch"));
        }
        let records = decode_frame(frame, dimension)
            .map_err(|(at, reason)| SnapshotError { offset: self.base + (self.at + 8 + at) as u64, reason })?;
        self.ready.extend(records);
        self.at += 8 + len;
        Ok(true)
    }

    /// Whether the trailer was read and verified.
    pub fn is_complete(&self) -> bool {
        self.done
    }

    /// Call at the end of the stream: the number of records, or an error
    /// if the stream ended before the trailer (cut off).
    pub fn finish(&self) -> Result<u64, SnapshotError> {
        if self.done && self.ready.is_empty() {
            Ok(self.records)
        } else {
            Err(self.error("the stream ended before the trailer (cut off)"))
        }
    }
}

/// The records of one verified frame; an error names the offset in it.
fn decode_frame(frame: &[u8], dimension: usize) -> Result<Vec<SnapshotRecord>, (usize, String)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < frame.len() {
        let rest = &frame[at..];
        let short = |what: &str| (at, format!("a {what} record runs past its frame"));
        let (record, used) = match rest[0] {
            TAG_POINT => {
                let fixed = 1 + 8 + 8 + 4 * dimension;
                if rest.len() < fixed + 4 {
                    return Err(short("point"));
                }
                let declared = u32_at(rest, fixed);
                let payload_len = if declared == NO_PAYLOAD { 0 } else { declared as usize };
                if rest.len() < fixed + 4 + payload_len {
                    return Err(short("point"));
                }
                let vector =
                    rest[17..fixed].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
                let payload = (declared != NO_PAYLOAD).then(|| rest[fixed + 4..fixed + 4 + payload_len].to_vec());
                (
                    SnapshotRecord::Point { id: u64_at(rest, 1), version: u64_at(rest, 9), vector, payload },
                    fixed + 4 + payload_len,
                )
            }
            TAG_TOMBSTONE => {
                if rest.len() < 17 {
                    return Err(short("tombstone"));
                }
                (SnapshotRecord::Tombstone { id: u64_at(rest, 1), version: u64_at(rest, 9) }, 17)
            }
            other => return Err((at, format!("unknown record tag {other}"))),
        };
        let (SnapshotRecord::Point { id, version, .. } | SnapshotRecord::Tombstone { id, version }) = &record;
        if *version == 0 {
            return Err((at, format!("vector {id} without a version")));
        }
        out.push(record);
        at += used;
    }
    Ok(out)
}

fn u32_at(a: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([a[at], a[at + 1], a[at + 2], a[at + 3]])
}

fn u64_at(a: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&a[at..at + 8]);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Vec<SnapshotRecord> {
        vec![
            SnapshotRecord::Point {
                id: 7,
                version: 11,
                vector: vec![0.5, -1.0, 2.0],
                payload: Some(b"{\"a\":1}".to_vec()),
            },
            SnapshotRecord::Tombstone { id: 9, version: 12 },
            SnapshotRecord::Point { id: u64::MAX, version: 1, vector: vec![0.0, 0.0, f32::MIN], payload: None },
        ]
    }

    /// `records` written with a frame closed after every record when
    /// `small_frames`.
    fn write(records: &[SnapshotRecord], small_frames: bool) -> Vec<u8> {
        let (mut w, mut out) = SnapshotWriter::new(3, 5);
        for r in records {
            match r {
                SnapshotRecord::Point { id, version, vector, payload } => {
                    w.point(*id, *version, vector, payload.as_deref())
                }
                SnapshotRecord::Tombstone { id, version } => w.tombstone(*id, *version),
            }
            if small_frames {
                out.extend(w.close_frame());
            } else {
                out.extend(w.take_frame().into_iter().flatten());
            }
        }
        out.extend(w.finish());
        out
    }

    fn read_in_chunks(bytes: &[u8], chunk: usize) -> Result<Vec<SnapshotRecord>, SnapshotError> {
        let mut r = SnapshotReader::new(16, 1024);
        let mut got = Vec::new();
        for piece in bytes.chunks(chunk) {
            r.feed(piece);
            while let Some(record) = r.next_record()? {
                got.push(record);
            }
        }
        assert_eq!(r.finish()?, got.len() as u64);
        assert_eq!(r.header(), Some((3, 5)));
        Ok(got)
    }

    #[test]
    fn round_trips_whatever_the_chunking_and_framing() {
        for small_frames in [false, true] {
            let bytes = write(&records(), small_frames);
            for chunk in [1, 2, 3, 7, 13, 64, bytes.len()] {
                assert_eq!(read_in_chunks(&bytes, chunk).expect("reads"), records(), "chunks of {chunk}");
            }
        }
        assert_eq!(read_in_chunks(&write(&[], false), 3).expect("empty snapshot"), []);
    }

    #[test]
    fn every_flipped_bit_is_caught_before_a_record_of_its_frame_is_used() {
        let bytes = write(&records(), true);
        let clean = read_in_chunks(&bytes, 5).expect("clean");
        for i in 0..bytes.len() {
            for bit in [0x01, 0x10, 0x80] {
                let mut bad = bytes.clone();
                bad[i] ^= bit;
                let mut r = SnapshotReader::new(16, 1024);
                r.feed(&bad);
                let mut got = Vec::new();
                let outcome = loop {
                    match r.next_record() {
                        Ok(Some(record)) => got.push(record),
                        Ok(None) => break r.finish().map(|_| ()),
                        Err(e) => break Err(e),
                    }
                };
                assert!(outcome.is_err(), "flipped bit {bit:#x} of byte {i} went unnoticed");
                // What was handed out before the error is a prefix of the truth.
                assert_eq!(got[..], clean[..got.len()], "byte {i}: a damaged record was used");
            }
        }
    }

    #[test]
    fn a_cut_off_stream_or_junk_is_an_error_naming_the_offset() {
        let bytes = write(&records(), false);
        let cut = read_in_chunks(&bytes[..bytes.len() - 3], 4).expect_err("cut off");
        assert!(cut.reason.contains("cut off"), "{cut}");
        let mut extra = bytes.clone();
        extra.push(1);
        assert!(read_in_chunks(&extra, 4).is_err());
        let e = read_in_chunks(b"JUNKJUNKJUNKJUNKJUNK", 4).expect_err("junk");
        assert_eq!((e.offset, e.reason.contains("magic")), (0, true), "{e}");
    }

    #[test]
    fn limits_are_enforced_before_allocating() {
        let big =
            [SnapshotRecord::Point { id: 1, version: 1, vector: vec![1.0, 2.0, 3.0], payload: Some(vec![b'x'; 2000]) }];
        let e = read_in_chunks(&write(&big, false), 4096).expect_err("frame too large");
        assert!(e.reason.contains("over the limit"), "{e}");
        let mut r = SnapshotReader::new(2, 1024);
        r.feed(&write(&records(), false));
        assert!(r.next_record().expect_err("dimension").reason.contains("dimension"));
    }
}
