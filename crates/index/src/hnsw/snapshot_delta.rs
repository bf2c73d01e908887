//! Incremental snapshots: the slots that changed since the previous
//! snapshot, so a checkpoint of a large index costs what changed, not the
//! whole index.
//!
//! Two change sets drive it ([`super::changes`]): `graph.changed` (a slot's
//! state, id, level or lists changed) and `changed_vectors` (a slot's
//! vector and code were written). [`Hnsw::write_delta`] takes both and
//! writes, for each changed slot, its whole record; [`Hnsw::apply_delta`]
//! overwrites those slots of an index loaded from the previous snapshot.
//! After the last delta, [`Hnsw::finish_loading`] checks the result and
//! rebuilds the id map. A full snapshot ([`Hnsw::write_to`]) clears both
//! sets.
//!
//! Consistency: the caller keeps vectors from being staged or deleted while
//! a delta is taken (the engine holds the collection's write-order lock),
//! so states, ids and vectors are those of one log position. Linking and
//! repair may go on: a list read mid-change is still a valid list of slots
//! that exist at that position, and the change is marked again, so the
//! next delta writes the final list.
//!
//! Format version 1, little-endian:
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `RUVDELTA` |
//! | 4 · 4 | version, dim, m, used slots `U` |
//! | 8 · 2 | entry point (as in the full snapshot), insert counter |
//! | 1 | trained (0/1), then 3 zero bytes |
//! | | *only when trained:* the quantizer as in the full snapshot (code length `L`, parameters) |
//! | 4 | changed slots `S` |
//! | S × | slot `u32`, state `u8`, level `u8`, 2 zero bytes, id `u64`, then for each layer 0..=level: link count `c`, `c` slot words |
//! | 4 | written vectors `V` |
//! | V × | slot `u32`, `dim` floats, `L` code bytes |
//! | 4 | CRC-32 (IEEE) of every byte before it |

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::persist::{CrcReader, CrcWriter, LIVE_UNLINKED, bytes_le, corrupt, read_quantizer, write_quantizer};
use super::quantized::Quantized;
use super::{Hnsw, LIVE};
use crate::IndexError;
use crate::quant::CodeStore;

const MAGIC: [u8; 8] = *b"RUVDELTA";
const VERSION: u32 = 1;

/// What a delta held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IndexDelta {
    /// Slots whose state, id, level or lists were written.
    pub slots: usize,
    /// Slots whose vector was written.
    pub vectors: usize,
}

impl Hnsw {
    /// Bytes the next delta would take, roughly (from the change counts).
    pub fn delta_estimate(&self) -> usize {
        let inner = self.inner.read();
        let code = inner.quant.as_ref().map_or(0, |q| q.codes.code_len());
        // A changed slot: 16 bytes, then its lists (layer 0 holds M to 2M
        // links once the graph has filled in).
        let slot_bytes = 16 + 4 * (2 + 3 * self.params.m / 2);
        inner.graph.changed.count() * slot_bytes + inner.changed_vectors.count() * (4 + self.dim * 4 + code)
    }

    /// Forgets the recorded changes, e.g. after a full snapshot.
    pub(super) fn clear_changes(&self, inner: &super::Inner) {
        let used = inner.used();
        inner.graph.changed.take(used);
        inner.changed_vectors.take(used);
    }

    /// Writes every change since the previous snapshot or delta (module
    /// docs) and clears the change sets. If writing fails the changes are
    /// lost to later deltas: the caller must take a full snapshot next.
    pub fn write_delta<W: Write>(&self, w: W) -> Result<IndexDelta, IndexError> {
        let _gate = self.write_gate.read();
        let inner = self.inner.read();
        let used = inner.used();
        let slots = inner.graph.changed.take(used);
        let vectors = inner.changed_vectors.take(used);
        let mut out = CrcWriter::new(w);
        out.put(&MAGIC)?;
        for v in [VERSION, self.dim as u32, self.params.m as u32, used as u32] {
            out.put(&v.to_le_bytes())?;
        }
        out.put(&self.entry.load(Ordering::Acquire).to_le_bytes())?;
        out.put(&self.inserts.load(Ordering::Relaxed).to_le_bytes())?;
        out.put(&[u8::from(inner.quant.is_some()), 0, 0, 0])?;
        if let Some(quant) = &inner.quant {
            write_quantizer(&mut out, quant)?;
        }
        let unlinked = self.pending_links.read();
        out.put(&(slots.len() as u32).to_le_bytes())?;
        let mut record = Vec::with_capacity(16);
        let mut ids = Vec::new();
        for &slot in &slots {
            let state = match inner.state(slot) {
                LIVE if unlinked.contains_key(&slot) => LIVE_UNLINKED,
                state => state,
            };
            record.clear();
            record.extend_from_slice(&slot.to_le_bytes());
            record.extend_from_slice(&[state, inner.graph.level(slot) as u8, 0, 0]);
            record.extend_from_slice(&inner.labels[slot as usize].load(Ordering::Acquire).to_le_bytes());
            out.put(&record)?;
            // Level and lists are read together: a slot's level only
            // changes when it is freed or reused, which cannot happen now.
            // Each list is its count then that many ids.
            for level in 0..=inner.graph.level(slot) {
                inner.graph.neighbours_into(slot, level, &mut ids);
                out.put_u32s(std::iter::once(ids.len() as u32).chain(ids.iter().copied()))?;
            }
        }
        drop(unlinked);
        out.put(&(vectors.len() as u32).to_le_bytes())?;
        for &slot in &vectors {
            out.put(&slot.to_le_bytes())?;
            out.put(&bytes_le(inner.vector(slot)))?;
            if let Some(quant) = &inner.quant {
                // SAFETY: the slot is published and not being written: no
                // vector is staged while a delta is taken (module docs).
                out.put(unsafe { quant.codes.get(slot) })?;
            }
        }
        out.finish()?;
        Ok(IndexDelta { slots: slots.len(), vectors: vectors.len() })
    }

    /// Applies a delta written by [`Hnsw::write_delta`] to an index being
    /// loaded (not shared yet): the snapshot it follows, and the deltas
    /// before it, must have been applied. Call [`Hnsw::finish_loading`]
    /// after the last one.
    ///
    /// The checksum of the whole delta is verified before anything is read
    /// from it, so no allocation is ever sized from a damaged header (the
    /// slot count grows the index), and a damaged delta leaves the index
    /// untouched; the counts are then also checked against the length.
    pub fn apply_delta(&self, bytes: &[u8]) -> Result<IndexDelta, IndexError> {
        let Some((body, trailer)) = bytes.split_last_chunk::<4>() else {
            return Err(corrupt(format!("delta of {} bytes is shorter than its checksum", bytes.len())));
        };
        if crc32fast::hash(body) != u32::from_le_bytes(*trailer) {
            return Err(corrupt("delta checksum mismatch"));
        }
        let mut input = CrcReader::with_len(bytes, bytes.len() as u64);
        input.header(&MAGIC, "ruvector index delta", VERSION..=VERSION)?;
        let (dim, m) = (input.u32()? as usize, input.u32()? as usize);
        if dim != self.dim || m != self.params.m {
            return Err(corrupt(format!(
                "delta for dim {dim}, m {m} applied to dim {}, m {}",
                self.dim, self.params.m
            )));
        }
        let used = input.u32()? as usize;
        let entry = input.u64()?;
        let inserts = input.u64()?;
        let mut head = [0u8; 4];
        input.take(&mut head)?;
        let mut inner = self.inner.write();
        if used < inner.used() {
            return Err(corrupt(format!("delta shrinks the index from {} to {used} slots", inner.used())));
        }
        // Every slot above the loaded ones was staged since the previous
        // snapshot, and staging writes its vector: the delta holds a vector
        // record for each (the writer keeps staging out while it runs).
        let new_slots = (used - inner.used()) as u64;
        input.ensure_available(new_slots * (4 + 4 * self.dim as u64), "vectors of new slots")?;
        if inner.capacity() < used {
            *inner = inner.grown(used)?;
        }
        if head[0] != 0 {
            let quantizer = read_quantizer(&mut input, self.quantization(), self.metric, self.dim)?;
            let codes = match inner.quant.take() {
                Some(q) if q.codes.code_len() == quantizer.code_len() => q.codes,
                _ => CodeStore::new(quantizer.code_len(), inner.capacity())?,
            };
            inner.quant = Some(Quantized { quantizer: Arc::new(quantizer), codes });
        }
        inner.used.store(used as u32, Ordering::Release);
        let stride0 = 1 + 2 * m;
        let slots = input.u32()? as usize;
        // Each slot record is at least slot, meta, id and one list count.
        input.ensure_available(20 * slots as u64, "slot records")?;
        let mut layer0 = vec![0u32; stride0];
        let mut upper = Vec::new();
        for _ in 0..slots {
            let slot = input.u32()? as usize;
            let mut meta = [0u8; 4];
            input.take(&mut meta)?;
            let label = input.u64()?;
            if slot >= used {
                return Err(corrupt(format!("delta writes slot {slot} of {used}")));
            }
            let level = meta[1] as usize;
            if level > super::graph::MAX_LEVEL {
                return Err(corrupt(format!("slot {slot}: level {level} above the maximum")));
            }
            upper.clear();
            upper.resize(level * (1 + m), 0);
            for l in 0..=level {
                let words: &mut [u32] =
                    if l == 0 { &mut layer0[..] } else { &mut upper[(l - 1) * (1 + m)..l * (1 + m)] };
                words.fill(0);
                let count = input.u32()? as usize;
                if count >= words.len() {
                    return Err(corrupt(format!("slot {slot} layer {l}: {count} links exceed the bound")));
                }
                words[0] = count as u32;
                input.pod(&mut words[1..=count])?;
            }
            inner.graph.restore_node(slot as u32, level, &layer0, &upper);
            inner.labels[slot].store(label, Ordering::Relaxed);
            inner.states[slot].store(meta[0], Ordering::Relaxed);
        }
        let vectors = input.u32()? as usize;
        let code_len = inner.quant.as_ref().map_or(0, |q| q.codes.code_len());
        input.ensure_available((4 + 4 * self.dim as u64 + code_len as u64) * vectors as u64, "vectors")?;
        let mut vector = vec![0f32; self.dim];
        let mut code = vec![0u8; code_len];
        for _ in 0..vectors {
            let slot = input.u32()?;
            if slot as usize >= used {
                return Err(corrupt(format!("delta writes the vector of slot {slot} of {used}")));
            }
            input.pod(&mut vector)?;
            input.take(&mut code)?;
            if vector.iter().any(|x| !x.is_finite()) {
                return Err(corrupt(format!("slot {slot}: vector not finite")));
            }
            // SAFETY: the index is being loaded and not shared, and the
            // exclusive lock is held.
            unsafe { inner.vectors.write(slot, &vector, 1.0) };
            if let Some(quant) = &inner.quant {
                // SAFETY: as above.
                unsafe { quant.codes.slot_mut(slot) }.copy_from_slice(&code);
            }
        }
        input.verify_checksum()?;
        let mut rest = [0u8; 1];
        if input.inner.read(&mut rest)? != 0 {
            return Err(corrupt("bytes after the checksum"));
        }
        self.entry.store(entry, Ordering::Release);
        self.inserts.store(inserts, Ordering::Relaxed);
        Ok(IndexDelta { slots, vectors })
    }

    /// Checks and completes an index loaded from a snapshot and deltas
    /// (see [`Hnsw::apply_delta`]); the change sets start empty.
    pub fn finish_loading(&self) -> Result<(), IndexError> {
        self.rebuild_bookkeeping()?;
        let inner = self.inner.read();
        self.clear_changes(&inner);
        Ok(())
    }
}
