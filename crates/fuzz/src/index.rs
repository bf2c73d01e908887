//! The `index_snapshot` target: an index snapshot through
//! `Hnsw::read_base_bytes` (and the streaming `Hnsw::read_base`, which must
//! agree), then a delta through `Hnsw::apply_delta`, then
//! `Hnsw::finish_loading`. Checksums can be fixed up so the fuzzer reaches
//! the structural checks behind them.

use ruvector_index::{Hnsw, IndexError};

use crate::{Bytes, Outcome};

/// Sets the trailing CRC-32 of a snapshot or delta to that of the bytes
/// before it (both formats end with one).
pub fn fix_trailer(bytes: &mut [u8]) {
    if let Some((body, trailer)) = bytes.split_last_chunk_mut::<4>() {
        *trailer = crc32fast::hash(body).to_le_bytes();
    }
}

/// The input [`check`] reads as `base` then `delta`, with fix-up `flags`.
pub fn encode(flags: u8, base: &[u8], delta: &[u8]) -> Vec<u8> {
    let mut out = vec![flags];
    out.extend_from_slice(&(base.len() as u32).to_le_bytes());
    out.extend_from_slice(base);
    out.extend_from_slice(delta);
    out
}

fn is_damage(e: &IndexError) -> bool {
    matches!(e, IndexError::Corrupt(_) | IndexError::UnsupportedVersion(_))
}

/// `index_snapshot`: `flags | u32 base length | base | delta`. Flag bit 0
/// fixes the base's checksum up, bit 1 the delta's; an empty delta is not
/// applied.
pub(crate) fn check(data: &[u8]) -> Outcome {
    let mut b = Bytes::new(data);
    let flags = b.u8();
    let base_len = b.u32() as usize;
    let mut base = b.take(base_len).to_vec();
    let mut delta = b.rest().to_vec();
    if flags & 1 != 0 {
        fix_trailer(&mut base);
    }
    if flags & 2 != 0 {
        fix_trailer(&mut delta);
    }

    let streamed = Hnsw::read_base(&base[..], None);
    let index = match Hnsw::read_base_bytes(&base, None) {
        Ok(index) => index,
        Err(e) => {
            assert!(is_damage(&e), "a damaged snapshot must be reported as damage, got: {e}");
            assert!(streamed.is_err(), "the streaming reader accepted what the in-memory one refused: {e}");
            return Outcome::Refused;
        }
    };
    if let Err(e) = &streamed {
        panic!("the streaming reader refused what the in-memory one accepted: {e}");
    }
    if !delta.is_empty()
        && let Err(e) = index.apply_delta(&delta)
    {
        assert!(is_damage(&e), "a damaged delta must be reported as damage, got: {e}");
        return Outcome::Refused;
    }
    if let Err(e) = index.finish_loading() {
        assert!(is_damage(&e), "a damaged snapshot must be reported as damage, got: {e}");
        return Outcome::Refused;
    }
    check_loaded(&index);
    Outcome::Accepted
}

/// A loaded index searches, lists and returns its vectors, and its
/// snapshot loads back to an index with the same snapshot.
fn check_loaded(index: &Hnsw) {
    let ids = index.ids();
    assert_eq!(ids.len(), index.len());
    for &id in ids.iter().take(64) {
        let v = index.get(id).expect("a listed id has a vector");
        assert_eq!(v.len(), index.dim());
    }
    let query: Vec<f32> = (0..index.dim()).map(|i| 1.0 + i as f32).collect();
    match index.search(&query, 10) {
        Ok(hits) => assert!(hits.len() <= index.len().min(10)),
        Err(e) => panic!("search of a loaded index: {e}"),
    }
    let mut first = Vec::new();
    index.write_to(&mut first).expect("write to memory");
    let back = Hnsw::read_from(&first[..]).expect("a written snapshot loads");
    let mut second = Vec::new();
    back.write_to(&mut second).expect("write to memory");
    assert!(first == second, "snapshot → load → snapshot changed the bytes");
    assert_eq!(back.ids(), ids);
}
