//! WAL record types and their binary encoding (the frame's record body).
//!
//! All integers little-endian. `str` = `u32 byte length | UTF-8 bytes`;
//! `bytes` = `u32 length | bytes`.
//!
//! | kind | record | body after the kind byte |
//! |---|---|---|
//! | 1 | `CreateCollection` | `str name \| bytes config` |
//! | 2 | `DropCollection` | `str name` |
//! | 3 | `Upsert`, every version 0 | `str collection \| u32 n \|` n × point |
//! | 4 | `Delete`, unversioned | `str collection \| u32 n \| u64 × n ids` |
//! | 5 | `Upsert` with versions | `str collection \| u32 n \|` n × (`u64 version \|` point) |
//! | 6 | `Delete` with versions | `str collection \| u32 n \|` n × (`u64 id \| u64 version`) |
//! | 7 | `PurgeTombstones` | `str collection \| u32 n \| u64 × n ids` |
//! | 8 | `PayloadIndexes` | `str collection \| bytes declared` |
//!
//! A point is `u64 id | u32 dim | u32 payload_len (u32::MAX = no payload) |
//! f32 × dim | payload bytes`. Kinds 3 and 4 are what logs written before
//! versions existed hold; an unversioned change is still written that way. The vector is copied with one `memcpy` on
//! little-endian targets; decoding copies it once into a fresh `Vec<f32>`.
//! Decoding checks every length against the bytes left before allocating
//! and requires the body to be consumed exactly.

/// One vector of an [`WalRecord::Upsert`].
#[derive(Debug, Clone, PartialEq)]
pub struct WalPoint {
    /// External id.
    pub id: u64,
    /// The vector's components.
    pub vector: Vec<f32>,
    /// Opaque payload (the engine stores JSON).
    pub payload: Option<Vec<u8>>,
    /// The write's version (0: unversioned, applied unconditionally).
    pub version: u64,
}

/// One logical change, the unit the WAL stores and replays.
#[derive(Debug, Clone, PartialEq)]
pub enum WalRecord {
    /// A collection was created with an opaque configuration.
    CreateCollection {
        /// Collection name.
        name: String,
        /// Opaque configuration bytes (the engine stores JSON).
        config: Vec<u8>,
    },
    /// A collection and all its points were dropped.
    DropCollection {
        /// Collection name.
        name: String,
    },
    /// Points were inserted or replaced.
    Upsert {
        /// Collection name.
        collection: String,
        /// The points, in request order.
        points: Vec<WalPoint>,
    },
    /// Points were deleted.
    Delete {
        /// Collection name.
        collection: String,
        /// Deleted ids.
        ids: Vec<u64>,
        /// The version of each id's delete (its tombstone), parallel to
        /// `ids`; empty for an unversioned delete.
        versions: Vec<u64>,
    },
    /// Tombstones were forgotten (every replica held them, or they passed
    /// the horizon): the ids' stamps are dropped if still tombstones.
    PurgeTombstones {
        /// Collection name.
        collection: String,
        /// The ids whose tombstones were purged.
        ids: Vec<u64>,
    },
    /// A collection's payload indexes were declared anew: `declared` is
    /// the whole set after the change (opaque to the log; the engine
    /// stores JSON).
    PayloadIndexes {
        /// Collection name.
        collection: String,
        /// Every declared index of the collection.
        declared: Vec<u8>,
    },
}

const KIND_CREATE: u8 = 1;
const KIND_DROP: u8 = 2;
const KIND_UPSERT: u8 = 3;
const KIND_DELETE: u8 = 4;
const KIND_UPSERT_VERSIONED: u8 = 5;
const KIND_DELETE_VERSIONED: u8 = 6;
const KIND_PURGE_TOMBSTONES: u8 = 7;
const KIND_PAYLOAD_INDEXES: u8 = 8;
const NO_PAYLOAD: u32 = u32::MAX;

/// Why a record body failed to decode (the caller adds file and offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecodeError(pub(crate) &'static str);

/// Why a record cannot be encoded (a length does not fit its `u32` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLong;

fn len_u32(len: usize) -> Result<u32, TooLong> {
    // u32::MAX is reserved as the "no payload" marker.
    u32::try_from(len).ok().filter(|&l| l != u32::MAX).ok_or(TooLong)
}

impl WalRecord {
    /// Exact size of the encoded record (kind byte and body), the frame
    /// header excluded.
    pub fn encoded_len(&self) -> usize {
        1 + match self {
            WalRecord::CreateCollection { name, config } => 4 + name.len() + 4 + config.len(),
            WalRecord::DropCollection { name } => 4 + name.len(),
            WalRecord::Upsert { collection, points } => {
                let version_bytes = if versioned(points) { 8 } else { 0 };
                4 + collection.len()
                    + 4
                    + points
                        .iter()
                        .map(|p| version_bytes + 16 + 4 * p.vector.len() + p.payload.as_ref().map_or(0, Vec::len))
                        .sum::<usize>()
            }
            WalRecord::Delete { collection, ids, versions } => {
                4 + collection.len() + 4 + if versions.is_empty() { 8 } else { 16 } * ids.len()
            }
            WalRecord::PurgeTombstones { collection, ids } => 4 + collection.len() + 4 + 8 * ids.len(),
            WalRecord::PayloadIndexes { collection, declared } => 4 + collection.len() + 4 + declared.len(),
        }
    }

    /// Appends `kind | body` to `out`.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), TooLong> {
        out.reserve(self.encoded_len());
        match self {
            WalRecord::CreateCollection { name, config } => {
                out.push(KIND_CREATE);
                put_bytes(out, name.as_bytes())?;
                put_bytes(out, config)?;
            }
            WalRecord::DropCollection { name } => {
                out.push(KIND_DROP);
                put_bytes(out, name.as_bytes())?;
            }
            WalRecord::PayloadIndexes { collection, declared } => {
                out.push(KIND_PAYLOAD_INDEXES);
                put_bytes(out, collection.as_bytes())?;
                put_bytes(out, declared)?;
            }
            WalRecord::Upsert { collection, points } => {
                let with_versions = versioned(points);
                out.push(if with_versions { KIND_UPSERT_VERSIONED } else { KIND_UPSERT });
                put_bytes(out, collection.as_bytes())?;
                out.extend_from_slice(&len_u32(points.len())?.to_le_bytes());
                for p in points {
                    if with_versions {
                        out.extend_from_slice(&p.version.to_le_bytes());
                    }
                    out.extend_from_slice(&p.id.to_le_bytes());
                    out.extend_from_slice(&len_u32(p.vector.len())?.to_le_bytes());
                    let payload_len = match &p.payload {
                        Some(b) => len_u32(b.len())?,
                        None => NO_PAYLOAD,
                    };
                    out.extend_from_slice(&payload_len.to_le_bytes());
                    put_f32s(out, &p.vector);
                    if let Some(b) = &p.payload {
                        out.extend_from_slice(b);
                    }
                }
            }
            WalRecord::Delete { collection, ids, versions } if versions.is_empty() => {
                out.push(KIND_DELETE);
                put_bytes(out, collection.as_bytes())?;
                out.extend_from_slice(&len_u32(ids.len())?.to_le_bytes());
                put_u64s(out, ids);
            }
            WalRecord::Delete { collection, ids, versions } => {
                if versions.len() != ids.len() {
                    return Err(TooLong);
                }
                out.push(KIND_DELETE_VERSIONED);
                put_bytes(out, collection.as_bytes())?;
                out.extend_from_slice(&len_u32(ids.len())?.to_le_bytes());
                for (id, version) in ids.iter().zip(versions) {
                    out.extend_from_slice(&id.to_le_bytes());
                    out.extend_from_slice(&version.to_le_bytes());
                }
            }
            WalRecord::PurgeTombstones { collection, ids } => {
                out.push(KIND_PURGE_TOMBSTONES);
                put_bytes(out, collection.as_bytes())?;
                out.extend_from_slice(&len_u32(ids.len())?.to_le_bytes());
                put_u64s(out, ids);
            }
        }
        Ok(())
    }

    /// Decodes `kind | body`, which must be consumed exactly.
    pub(crate) fn decode(bytes: &[u8]) -> Result<WalRecord, DecodeError> {
        let mut r = Reader { bytes, pos: 0 };
        let record = match r.u8()? {
            KIND_CREATE => WalRecord::CreateCollection { name: r.string()?, config: r.bytes()?.to_vec() },
            KIND_DROP => WalRecord::DropCollection { name: r.string()? },
            KIND_PAYLOAD_INDEXES => {
                WalRecord::PayloadIndexes { collection: r.string()?, declared: r.bytes()?.to_vec() }
            }
            kind @ (KIND_UPSERT | KIND_UPSERT_VERSIONED) => {
                let with_versions = kind == KIND_UPSERT_VERSIONED;
                let collection = r.string()?;
                let n = r.u32()? as usize;
                // Every point takes at least 16 bytes: bound the allocation.
                if n > r.remaining() / 16 {
                    return Err(DecodeError("point count exceeds record length"));
                }
                let mut points = Vec::with_capacity(n);
                for _ in 0..n {
                    let version = if with_versions { r.u64()? } else { 0 };
                    let id = r.u64()?;
                    let dim = r.u32()? as usize;
                    let payload_len = r.u32()?;
                    let vector = get_f32s(r.take(dim.checked_mul(4).ok_or(DecodeError("dimension overflow"))?)?);
                    let payload =
                        if payload_len == NO_PAYLOAD { None } else { Some(r.take(payload_len as usize)?.to_vec()) };
                    points.push(WalPoint { id, vector, payload, version });
                }
                WalRecord::Upsert { collection, points }
            }
            kind @ (KIND_DELETE | KIND_PURGE_TOMBSTONES) => {
                let collection = r.string()?;
                let n = r.u32()? as usize;
                let raw = r.take(n.checked_mul(8).ok_or(DecodeError("id count overflow"))?)?;
                let ids = raw.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect();
                if kind == KIND_DELETE {
                    WalRecord::Delete { collection, ids, versions: Vec::new() }
                } else {
                    WalRecord::PurgeTombstones { collection, ids }
                }
            }
            KIND_DELETE_VERSIONED => {
                let collection = r.string()?;
                let n = r.u32()? as usize;
                let raw = r.take(n.checked_mul(16).ok_or(DecodeError("id count overflow"))?)?;
                let word = |c: &[u8]| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
                let (ids, versions) = raw.chunks_exact(16).map(|c| (word(&c[..8]), word(&c[8..]))).unzip();
                WalRecord::Delete { collection, ids, versions }
            }
            _ => return Err(DecodeError("unknown record kind")),
        };
        if r.remaining() != 0 {
            return Err(DecodeError("trailing bytes after record"));
        }
        Ok(record)
    }
}

/// Whether an upsert needs the versioned encoding (some version is not 0).
fn versioned(points: &[WalPoint]) -> bool {
    points.iter().any(|p| p.version != 0)
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) -> Result<(), TooLong> {
    out.extend_from_slice(&len_u32(b.len())?.to_le_bytes());
    out.extend_from_slice(b);
    Ok(())
}

#[cfg(target_endian = "little")]
fn put_f32s(out: &mut Vec<u8>, v: &[f32]) {
    out.extend_from_slice(bytemuck::cast_slice(v));
}

#[cfg(target_endian = "big")]
fn put_f32s(out: &mut Vec<u8>, v: &[f32]) {
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

#[cfg(target_endian = "little")]
fn put_u64s(out: &mut Vec<u8>, v: &[u64]) {
    out.extend_from_slice(bytemuck::cast_slice(v));
}

#[cfg(target_endian = "big")]
fn put_u64s(out: &mut Vec<u8>, v: &[u64]) {
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

#[cfg(target_endian = "little")]
fn get_f32s(raw: &[u8]) -> Vec<f32> {
    // One allocation and one memcpy; the source may be unaligned.
    bytemuck::allocation::pod_collect_to_vec(raw)
}

#[cfg(target_endian = "big")]
fn get_f32s(raw: &[u8]) -> Vec<f32> {
    raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError("field runs past the end of the record"));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError("string is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_point() -> impl Strategy<Value = WalPoint> {
        (
            any::<u64>(),
            prop::collection::vec(any::<f32>(), 0..20),
            prop::option::of(prop::collection::vec(any::<u8>(), 0..20)),
            prop_oneof![Just(0u64), any::<u64>()],
        )
            .prop_map(|(id, vector, payload, version)| WalPoint { id, vector, payload, version })
    }

    pub(crate) fn arb_record() -> impl Strategy<Value = WalRecord> {
        prop_oneof![
            (".{0,12}", prop::collection::vec(any::<u8>(), 0..40))
                .prop_map(|(name, config)| WalRecord::CreateCollection { name, config }),
            ".{0,12}".prop_map(|name| WalRecord::DropCollection { name }),
            (".{0,12}", prop::collection::vec(arb_point(), 0..6))
                .prop_map(|(collection, points)| WalRecord::Upsert { collection, points }),
            (".{0,12}", prop::collection::vec(any::<u64>(), 0..20)).prop_map(|(collection, ids)| WalRecord::Delete {
                collection,
                ids,
                versions: Vec::new()
            }),
            (".{0,12}", prop::collection::vec((any::<u64>(), any::<u64>()), 0..20)).prop_map(|(collection, pairs)| {
                let (ids, versions) = pairs.into_iter().unzip();
                WalRecord::Delete { collection, ids, versions }
            }),
            (".{0,12}", prop::collection::vec(any::<u64>(), 0..20))
                .prop_map(|(collection, ids)| WalRecord::PurgeTombstones { collection, ids }),
            (".{0,12}", prop::collection::vec(any::<u8>(), 0..40))
                .prop_map(|(collection, declared)| WalRecord::PayloadIndexes { collection, declared }),
        ]
    }

    /// Compares floats bit for bit (NaN payloads included).
    fn same(a: &WalRecord, b: &WalRecord) -> bool {
        match (a, b) {
            (WalRecord::Upsert { collection: c1, points: p1 }, WalRecord::Upsert { collection: c2, points: p2 }) => {
                c1 == c2
                    && p1.len() == p2.len()
                    && p1.iter().zip(p2).all(|(x, y)| {
                        x.id == y.id
                            && x.version == y.version
                            && x.payload == y.payload
                            && x.vector.iter().map(|f| f.to_bits()).eq(y.vector.iter().map(|f| f.to_bits()))
                    })
            }
            _ => a == b,
        }
    }

    proptest! {
        #[test]
        fn round_trip(record in arb_record()) {
            let mut buf = Vec::new();
            record.encode_into(&mut buf).expect("encodable");
            prop_assert_eq!(buf.len(), record.encoded_len());
            let back = WalRecord::decode(&buf).expect("decodes");
            prop_assert!(same(&record, &back), "{record:?} != {back:?}");
        }

        #[test]
        fn every_strict_prefix_is_rejected(record in arb_record()) {
            let mut buf = Vec::new();
            record.encode_into(&mut buf).expect("encodable");
            for cut in 0..buf.len() {
                prop_assert!(WalRecord::decode(&buf[..cut]).is_err(), "prefix of {cut} bytes decoded");
            }
            buf.push(0);
            prop_assert!(WalRecord::decode(&buf).is_err(), "trailing byte accepted");
        }
    }

    #[test]
    fn fixed_encoding_is_stable() {
        // A checked-in encoding: changing the format must change this test.
        let record = WalRecord::Upsert {
            collection: "c".into(),
            points: vec![WalPoint { id: 7, vector: vec![1.0, -2.0], payload: Some(b"{}".to_vec()), version: 0 }],
        };
        let mut buf = Vec::new();
        record.encode_into(&mut buf).expect("encodable");
        let expected: Vec<u8> = [
            &[3u8][..],
            &1u32.to_le_bytes(),
            b"c",
            &1u32.to_le_bytes(),
            &7u64.to_le_bytes(),
            &2u32.to_le_bytes(),
            &2u32.to_le_bytes(),
            &1.0f32.to_le_bytes(),
            &(-2.0f32).to_le_bytes(),
            b"{}",
        ]
        .concat();
        assert_eq!(buf, expected);
    }

    #[test]
    fn versioned_encodings_are_stable() {
        let upsert = WalRecord::Upsert {
            collection: "c".into(),
            points: vec![WalPoint { id: 7, vector: vec![1.0], payload: None, version: 9 }],
        };
        let mut buf = Vec::new();
        upsert.encode_into(&mut buf).expect("encodable");
        let expected: Vec<u8> = [
            &[5u8][..],
            &1u32.to_le_bytes(),
            b"c",
            &1u32.to_le_bytes(),
            &9u64.to_le_bytes(),
            &7u64.to_le_bytes(),
            &1u32.to_le_bytes(),
            &u32::MAX.to_le_bytes(),
            &1.0f32.to_le_bytes(),
        ]
        .concat();
        assert_eq!(buf, expected);
        let delete = WalRecord::Delete { collection: "c".into(), ids: vec![7], versions: vec![10] };
        let mut buf = Vec::new();
        delete.encode_into(&mut buf).expect("encodable");
        let expected: Vec<u8> =
            [&[6u8][..], &1u32.to_le_bytes(), b"c", &1u32.to_le_bytes(), &7u64.to_le_bytes(), &10u64.to_le_bytes()]
                .concat();
        assert_eq!(buf, expected);
        // Ids and versions must pair up.
        let bad = WalRecord::Delete { collection: "c".into(), ids: vec![7, 8], versions: vec![10] };
        assert!(bad.encode_into(&mut Vec::new()).is_err());
    }

    #[test]
    fn unknown_kind_is_rejected() {
        assert_eq!(WalRecord::decode(&[9]), Err(DecodeError("unknown record kind")));
    }
}
