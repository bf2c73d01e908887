//! The WAL frame: how one record is laid out in a segment file, and how a
//! segment's bytes are split back into frames.
//!
//! All integers little-endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | `len`: bytes after this 8-byte prefix (`1 + 8 + record length`) |
//! | 4 | 4 | CRC-32 (IEEE, `crc32fast`) of the `len` bytes that follow |
//! | 8 | 1 | frame version, currently 1 |
//! | 9 | 8 | LSN |
//! | 17 | `len - 9` | record: kind byte and body (see [`super::record`]) |
//!
//! Frames follow each other with no padding. The LSN sits inside the
//! checksummed region, so a frame cannot be misattributed.
//!
//! The checksum is assembled from two parts: the record part is hashed
//! before the WAL lock is taken; only the 9 bytes of version and LSN are
//! hashed under it, and `crc32fast`'s `combine` joins them in O(log n).

use crc32fast::Hasher;

/// Bytes before the record: len, crc, version, lsn.
pub(crate) const HEADER: usize = 17;
/// Current frame version.
pub(crate) const VERSION: u8 = 1;
/// Smallest valid `len`: version, LSN and a kind byte.
const MIN_LEN: usize = 1 + 8 + 1;
/// Largest accepted encoded record (kind + body): 1 GiB.
pub(crate) const MAX_RECORD: usize = 1 << 30;

/// A frame being built: header space reserved, record encoded and hashed.
#[derive(Debug)]
pub(crate) struct PendingFrame {
    pub(crate) buf: Vec<u8>,
    record_crc: Hasher,
}

impl PendingFrame {
    /// Wraps a buffer holding `HEADER` placeholder bytes followed by the
    /// encoded record.
    pub(crate) fn new(buf: Vec<u8>) -> Self {
        debug_assert!(buf.len() > HEADER);
        let mut record_crc = Hasher::new();
        record_crc.update(&buf[HEADER..]);
        PendingFrame { buf, record_crc }
    }

    /// Fills in the header for `lsn`; the buffer is then the whole frame.
    pub(crate) fn seal(&mut self, lsn: u64) -> &[u8] {
        let len = (self.buf.len() - 8) as u32; // ≤ MAX_RECORD + 9, checked by the caller
        self.buf[8] = VERSION;
        self.buf[9..17].copy_from_slice(&lsn.to_le_bytes());
        let mut crc = Hasher::new();
        crc.update(&self.buf[8..HEADER]);
        crc.combine(&self.record_crc);
        let crc = crc.finalize();
        self.buf[0..4].copy_from_slice(&len.to_le_bytes());
        self.buf[4..8].copy_from_slice(&crc.to_le_bytes());
        &self.buf
    }
}

/// What [`parse`] found at an offset.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed<'a> {
    /// A frame with a valid checksum and the current version.
    Frame {
        /// Its LSN.
        lsn: u64,
        /// Kind byte and body.
        record: &'a [u8],
        /// Offset of the next frame.
        next: usize,
    },
    /// The offset is exactly the end of the buffer.
    End,
    /// A checksummed frame with a version this build does not know.
    UnknownVersion(u8),
    /// Not a valid frame (short, bad length, bad checksum).
    Bad(&'static str),
}

fn u32_at(buf: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&buf[off..off + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(buf: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&buf[off..off + 8]);
    u64::from_le_bytes(a)
}

/// Parses the frame starting at `off`.
pub(crate) fn parse(buf: &[u8], off: usize) -> Parsed<'_> {
    let rest = buf.len() - off;
    if rest == 0 {
        return Parsed::End;
    }
    if rest < 8 {
        return Parsed::Bad("incomplete frame header");
    }
    let len = u32_at(buf, off) as usize;
    if len < MIN_LEN {
        return Parsed::Bad("frame length too small");
    }
    if len > MAX_RECORD + 9 {
        return Parsed::Bad("frame length above the limit");
    }
    if len > rest - 8 {
        return Parsed::Bad("frame runs past the end of the file");
    }
    let body = &buf[off + 8..off + 8 + len];
    if crc32fast::hash(body) != u32_at(buf, off + 4) {
        return Parsed::Bad("frame checksum mismatch");
    }
    if body[0] != VERSION {
        return Parsed::UnknownVersion(body[0]);
    }
    Parsed::Frame { lsn: u64_at(body, 1), record: &body[9..], next: off + 8 + len }
}

/// Whether a valid frame with an LSN above `last_lsn` starts anywhere after
/// `bad` (exclusive). Used to tell a torn tail (nothing valid follows) from
/// damage in the middle of the log, even when the damaged frame's length
/// field is what broke. Cheap filters (length fits, version, plausible LSN)
/// run before any checksum.
pub(crate) fn valid_frame_after(buf: &[u8], bad: usize, last_lsn: u64) -> Option<usize> {
    let max_lsn = last_lsn.saturating_add(1 + (buf.len() / (8 + MIN_LEN)) as u64);
    let end = buf.len().checked_sub(8 + MIN_LEN)?;
    (bad + 1..=end).find(|&p| {
        let len = u32_at(buf, p) as usize;
        if len < MIN_LEN || len > buf.len() - p - 8 || buf[p + 8] != VERSION {
            return false;
        }
        let lsn = u64_at(buf, p + 9);
        lsn > last_lsn && lsn <= max_lsn && crc32fast::hash(&buf[p + 8..p + 8 + len]) == u32_at(buf, p + 4)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(lsn: u64, record: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; HEADER];
        buf.extend_from_slice(record);
        let mut f = PendingFrame::new(buf);
        f.seal(lsn).to_vec()
    }

    #[test]
    fn layout_is_as_documented() {
        let f = frame(42, &[3, 0xAA]);
        assert_eq!(u32_at(&f, 0), 11);
        assert_eq!(u32_at(&f, 4), crc32fast::hash(&f[8..]));
        assert_eq!(f[8], 1);
        assert_eq!(u64_at(&f, 9), 42);
        assert_eq!(&f[17..], &[3, 0xAA]);
    }

    #[test]
    fn parses_a_sequence_and_rejects_damage() {
        let mut log = frame(1, &[1, 2, 3]);
        log.extend(frame(2, &[4]));
        let Parsed::Frame { lsn: 1, record, next } = parse(&log, 0) else { panic!("first frame") };
        assert_eq!(record, &[1, 2, 3]);
        assert!(matches!(parse(&log, next), Parsed::Frame { lsn: 2, .. }));
        for cut in 1..log.len() - next {
            assert!(matches!(parse(&log[..next + cut], next), Parsed::Bad(_)), "cut {cut}");
        }
        let mut flipped = log.clone();
        flipped[18] ^= 4;
        assert_eq!(parse(&flipped, 0), Parsed::Bad("frame checksum mismatch"));
        assert_eq!(valid_frame_after(&flipped, 0, 0), Some(next));
        assert_eq!(valid_frame_after(&flipped, next, 1), None);
    }
}
