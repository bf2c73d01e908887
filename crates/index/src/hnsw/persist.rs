//! Serialisation of a whole index (vectors, graph, ids, parameters) so a
//! restart loads it instead of rebuilding it.
//!
//! Format version 3, all integers and floats little-endian (version 2 is
//! the same without state 4, version 1 also without the quantization
//! section; both are still read):
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `RUVHNSW\0` |
//! | 4 | format version (3) |
//! | 4 | dim |
//! | 1 | metric (0 cosine, 1 euclidean, 2 dot, 3 manhattan), then 3 zero bytes |
//! | 4 · 3 | m, ef_construction, ef_search |
//! | 8 | seed |
//! | 4 | used slots `U` |
//! | 8 | entry point: `level << 32 | slot`, or `u64::MAX` when empty |
//! | 8 | insert counter (continues the level sequence) |
//! | 8 · U | external id per slot |
//! | U | state per slot (0 free, 2 live, 3 deleted awaiting repair, 4 live but not linked yet: see `staging`) |
//! | U | level per slot |
//! | 4 · U · dim | vectors, slot by slot |
//! | 4 · U · (1 + 2m) | layer-0 lists: count then `2m` ids |
//! | … | for each slot with level > 0, in slot order: `level × (1 + m)` words |
//! | 1 | quantization (0 none, 1 SQ8, 2 PQ), then 3 zero bytes |
//! | 4 · 2 | PQ subspaces `M`, PQ centroids (both 0 unless PQ) |
//! | 4 | oversampling |
//! | 8 | training size |
//! | 1 | auto-train (0/1) |
//! | 1 | trained (0/1), then 2 zero bytes |
//! | | *only when trained:* |
//! | 4 | code length `L` (`dim` for SQ8, `M` for PQ) |
//! | 8 · dim | SQ8: `lo_d` then `Δ_d` per dimension, as 2 · dim floats |
//! | 4 · 256 · dim | PQ: codebook `m`, centroid `j`, component `i` at `(m·256 + j)·dim/M + i` |
//! | U · L | codes, slot by slot |
//! | 4 | CRC-32 (IEEE) of every byte before it |
//!
//! Every section is a flat array, so loading is a sequence of bulk reads
//! into the final arrays, not a parse. Loading checks the checksum and
//! every structural invariant (ids in range, degree bounds, unique live ids)
//! and rejects the bytes with [`IndexError::Corrupt`] rather than load a
//! partial index.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::atomic::Ordering;

use std::path::PathBuf;
use std::sync::Arc;

use super::graph::MAX_LEVEL;
use super::quantized::Quantized;
use super::{DELETED, FREE, Hnsw, HnswOptions, HnswParams, Inner, LIVE, NO_ENTRY};
use crate::quant::pq::{CENTROIDS, Pq};
use crate::quant::sq8::Sq8;
use crate::quant::{CodeStore, Quantization, Quantizer};
use crate::{IndexError, Metric};

const MAGIC: [u8; 8] = *b"RUVHNSW\0";
const VERSION: u32 = 3;

/// State code in a snapshot of a live slot that is staged but not linked.
pub(super) const LIVE_UNLINKED: u8 = 4;

fn metric_code(metric: Metric) -> u8 {
    match metric {
        Metric::Cosine => 0,
        Metric::Euclidean => 1,
        Metric::DotProduct => 2,
        Metric::Manhattan => 3,
    }
}

pub(super) fn corrupt(msg: impl Into<String>) -> IndexError {
    IndexError::Corrupt(msg.into())
}

/// A writer that checksums everything written through it.
pub(super) struct CrcWriter<W> {
    pub(super) inner: W,
    pub(super) crc: crc32fast::Hasher,
}

impl<W: Write> CrcWriter<W> {
    pub(super) fn new(inner: W) -> Self {
        CrcWriter { inner, crc: crc32fast::Hasher::new() }
    }

    /// Writes the CRC-32 of everything written so far, and flushes.
    pub(super) fn finish(mut self) -> Result<(), IndexError> {
        let crc = self.crc.clone().finalize();
        self.inner.write_all(&crc.to_le_bytes())?;
        self.inner.flush()?;
        Ok(())
    }

    pub(super) fn put(&mut self, bytes: &[u8]) -> Result<(), IndexError> {
        self.crc.update(bytes);
        self.inner.write_all(bytes)?;
        Ok(())
    }

    pub(super) fn put_u32s(&mut self, words: impl Iterator<Item = u32>) -> Result<(), IndexError> {
        let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
        for w in words {
            buf.extend_from_slice(&w.to_le_bytes());
            if buf.len() >= 64 * 1024 {
                self.put(&buf)?;
                buf.clear();
            }
        }
        self.put(&buf)
    }
}

/// A reader that checksums everything read through it, and knows, when
/// the caller does, how many bytes the input holds (so a header can be
/// checked against it before anything is sized from it).
pub(super) struct CrcReader<R> {
    pub(super) inner: R,
    pub(super) crc: crc32fast::Hasher,
    /// Bytes in the whole input, when known.
    limit: Option<u64>,
    /// Bytes read so far.
    consumed: u64,
}

impl<R: Read> CrcReader<R> {
    pub(super) fn new(inner: R) -> Self {
        CrcReader { inner, crc: crc32fast::Hasher::new(), limit: None, consumed: 0 }
    }

    /// A reader over an input of `len` bytes.
    pub(super) fn with_len(inner: R, len: u64) -> Self {
        CrcReader { limit: Some(len), ..CrcReader::new(inner) }
    }

    /// Fails (as corrupt) when the input is known to hold fewer than
    /// `bytes` more bytes (plus the trailing checksum): what a header
    /// announces is checked before any allocation is sized from it.
    pub(super) fn ensure_available(&self, bytes: u64, what: &str) -> Result<(), IndexError> {
        match self.limit {
            Some(limit) if self.consumed.saturating_add(bytes).saturating_add(4) > limit => Err(corrupt(format!(
                "the header announces {bytes} bytes of {what}, but only {} remain",
                limit.saturating_sub(self.consumed)
            ))),
            _ => Ok(()),
        }
    }

    /// Reads `n` plain-old-data values, growing the buffer as the data
    /// arrives: a lying count fails at the end of the input having
    /// allocated about as much as the input holds, never what it claims.
    pub(super) fn pod_vec<T: bytemuck::Pod + Default>(&mut self, n: usize) -> Result<Vec<T>, IndexError> {
        const CHUNK: usize = 1 << 16;
        let mut out: Vec<T> = Vec::with_capacity(n.min(CHUNK));
        while out.len() < n {
            let start = out.len();
            let step = (n - start).min(CHUNK.max(start));
            out.resize(start + step, T::default());
            self.pod(&mut out[start..])?;
        }
        Ok(out)
    }

    /// Reads the 8-byte magic and the format version; rejects another
    /// magic (naming `what` the bytes should be) or a version outside
    /// `versions`.
    pub(super) fn header(
        &mut self,
        magic: &[u8; 8],
        what: &str,
        versions: std::ops::RangeInclusive<u32>,
    ) -> Result<u32, IndexError> {
        let mut found = [0u8; 8];
        self.take(&mut found)?;
        if &found != magic {
            return Err(corrupt(format!("not a {what} (bad magic)")));
        }
        let version = self.u32()?;
        if !versions.contains(&version) {
            return Err(IndexError::UnsupportedVersion(version));
        }
        Ok(version)
    }

    /// Reads the trailing CRC-32 and checks it against everything read.
    pub(super) fn verify_checksum(&mut self) -> Result<(), IndexError> {
        let expected = self.crc.clone().finalize();
        let mut trailer = [0u8; 4];
        self.inner.read_exact(&mut trailer).map_err(|_| corrupt("missing checksum"))?;
        if u32::from_le_bytes(trailer) != expected {
            return Err(corrupt("checksum mismatch"));
        }
        Ok(())
    }

    pub(super) fn take(&mut self, out: &mut [u8]) -> Result<(), IndexError> {
        self.inner.read_exact(out).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => corrupt("truncated index data"),
            _ => IndexError::Io(e),
        })?;
        self.crc.update(out);
        self.consumed += out.len() as u64;
        Ok(())
    }

    pub(super) fn u8(&mut self) -> Result<u8, IndexError> {
        let mut b = [0u8; 1];
        self.take(&mut b)?;
        Ok(b[0])
    }

    pub(super) fn u32(&mut self) -> Result<u32, IndexError> {
        let mut b = [0u8; 4];
        self.take(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    pub(super) fn u64(&mut self) -> Result<u64, IndexError> {
        let mut b = [0u8; 8];
        self.take(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Reads `out.len()` little-endian plain-old-data values in bulk.
    pub(super) fn pod<T: bytemuck::Pod>(&mut self, out: &mut [T]) -> Result<(), IndexError> {
        self.take(bytemuck::cast_slice_mut(out))?;
        if cfg!(target_endian = "big") {
            for v in out.iter_mut() {
                bytemuck::bytes_of_mut(v).reverse();
            }
        }
        Ok(())
    }
}

pub(super) fn bytes_le<T: bytemuck::Pod>(values: &[T]) -> std::borrow::Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        bytemuck::cast_slice(values).into()
    } else {
        let mut out = Vec::with_capacity(std::mem::size_of_val(values));
        for v in values {
            out.extend(bytemuck::bytes_of(v).iter().rev());
        }
        out.into()
    }
}

impl Hnsw {
    /// Writes the whole index to `w` in the format above. Searches continue
    /// meanwhile; mutations wait until the snapshot is written.
    pub fn write_to<W: Write>(&self, w: W) -> Result<(), IndexError> {
        let _gate = self.write_gate.write();
        let inner = self.inner.read();
        let used = inner.used();
        // Everything is in this snapshot: the next delta starts from here.
        self.clear_changes(&inner);
        let mut out = CrcWriter::new(w);
        out.put(&MAGIC)?;
        out.put(&VERSION.to_le_bytes())?;
        out.put(&(self.dim as u32).to_le_bytes())?;
        out.put(&[metric_code(self.metric), 0, 0, 0])?;
        for v in [self.params.m, self.params.ef_construction, self.params.ef_search] {
            out.put(&(v as u32).to_le_bytes())?;
        }
        out.put(&self.params.seed.to_le_bytes())?;
        out.put(&(used as u32).to_le_bytes())?;
        out.put(&self.entry.load(Ordering::Acquire).to_le_bytes())?;
        out.put(&self.inserts.load(Ordering::Relaxed).to_le_bytes())?;

        let labels: Vec<u64> = inner.labels[..used].iter().map(|l| l.load(Ordering::Acquire)).collect();
        out.put(&bytes_le(&labels))?;
        let unlinked = self.pending_links.read();
        let states: Vec<u8> = (0..used)
            .map(|s| match inner.states[s].load(Ordering::Acquire) {
                LIVE if unlinked.contains_key(&(s as u32)) => LIVE_UNLINKED,
                state => state,
            })
            .collect();
        drop(unlinked);
        out.put(&states)?;
        let levels: Vec<u8> = (0..used as u32).map(|s| inner.graph.level(s) as u8).collect();
        out.put(&levels)?;
        // SAFETY: the write gate is held exclusively, so no slot is being
        // written, and `used <= capacity`.
        let vectors = unsafe { inner.vectors.prefix(used) };
        out.put(&bytes_le(vectors))?;
        out.put_u32s(inner.graph.layer0_words(used))?;
        for slot in 0..used as u32 {
            out.put_u32s(inner.graph.upper_words(slot))?;
        }
        let (kind, subspaces, centroids) = match self.quantization() {
            Quantization::None => (0u8, 0u32, 0u32),
            Quantization::Sq8 => (1, 0, 0),
            Quantization::Pq { subspaces, centroids } => (2, subspaces as u32, centroids as u32),
        };
        out.put(&[kind, 0, 0, 0])?;
        out.put(&subspaces.to_le_bytes())?;
        out.put(&centroids.to_le_bytes())?;
        out.put(&(self.oversampling() as u32).to_le_bytes())?;
        out.put(&(self.options.training_size as u64).to_le_bytes())?;
        out.put(&[u8::from(self.options.auto_train), u8::from(inner.quant.is_some()), 0, 0])?;
        if let Some(quant) = &inner.quant {
            write_quantizer(&mut out, quant)?;
            // SAFETY: the write gate is held exclusively, so no code is
            // being written, and `used <= capacity`.
            out.put(unsafe { quant.codes.prefix(used) })?;
        }
        out.finish()
    }

    /// Reads an index written by [`Hnsw::write_to`], verifying its checksum
    /// and structure.
    pub fn read_from<R: Read>(r: R) -> Result<Hnsw, IndexError> {
        Self::read_from_with_vector_file(r, None)
    }

    /// [`Hnsw::read_from`], keeping the full-precision vectors in a shared
    /// mapping of `vector_file` (see [`HnswOptions::vector_file`]).
    pub fn read_from_with_vector_file<R: Read>(r: R, vector_file: Option<PathBuf>) -> Result<Hnsw, IndexError> {
        let index = Self::read_base(r, vector_file)?;
        index.finish_loading()?;
        Ok(index)
    }

    /// Reads a snapshot written by [`Hnsw::write_to`] as the base of a
    /// chain of deltas ([`Hnsw::apply_delta`]); the index is usable only
    /// after [`Hnsw::finish_loading`].
    pub fn read_base<R: Read>(r: R, vector_file: Option<PathBuf>) -> Result<Hnsw, IndexError> {
        Self::read_base_from(CrcReader::new(r), vector_file)
    }

    /// [`Hnsw::read_base`] from bytes in memory: every count in the header
    /// is checked against their length before anything is allocated from
    /// it, so a damaged snapshot is an error, never an oversized
    /// allocation.
    pub fn read_base_bytes(bytes: &[u8], vector_file: Option<PathBuf>) -> Result<Hnsw, IndexError> {
        Self::read_base_from(CrcReader::with_len(bytes, bytes.len() as u64), vector_file)
    }

    fn read_base_from<R: Read>(mut input: CrcReader<R>, vector_file: Option<PathBuf>) -> Result<Hnsw, IndexError> {
        let version = input.header(&MAGIC, "ruvector index", 1..=VERSION)?;
        let dim = input.u32()? as usize;
        let metric = match input.u8()? {
            0 => Metric::Cosine,
            1 => Metric::Euclidean,
            2 => Metric::DotProduct,
            3 => Metric::Manhattan,
            other => return Err(corrupt(format!("unknown metric code {other}"))),
        };
        let mut pad = [0u8; 3];
        input.take(&mut pad)?;
        let m = input.u32()? as usize;
        let ef_construction = input.u32()? as usize;
        let ef_search = input.u32()? as usize;
        let seed = input.u64()?;
        let params = HnswParams { m, ef_construction, ef_search, seed };
        let used = input.u32()? as usize;
        let entry = input.u64()?;
        let inserts = input.u64()?;
        // Nothing is sized from the header before it is checked: values in
        // range, and (when the input's length is known) data enough for
        // every slot's label, state, level, vector and layer-0 list.
        params.validate().map_err(|e| corrupt(format!("header: {e}")))?;
        if dim == 0 || dim > Hnsw::MAX_DIM {
            return Err(corrupt(format!("header: dimension {dim} outside 1..={}", Hnsw::MAX_DIM)));
        }
        let per_slot = 8 + 1 + 1 + 4 * dim as u64 + 4 * (1 + 2 * m as u64);
        input.ensure_available(per_slot.saturating_mul(used as u64), "slots")?;

        let labels: Vec<u64> = input.pod_vec(used)?;
        let states: Vec<u8> = input.pod_vec(used)?;
        let levels: Vec<u8> = input.pod_vec(used)?;

        let mut inner = Inner::new(dim, m, used, vector_file.as_deref())?;
        input.pod(inner.vectors.prefix_mut(used))?;
        let stride0 = 1 + 2 * m;
        let mut layer0 = vec![0u32; used * stride0];
        input.pod(&mut layer0)?;
        let mut uppers: Vec<Vec<u32>> = Vec::new();
        for &level in &levels {
            let level = level as usize;
            if level > MAX_LEVEL {
                return Err(corrupt(format!("level {level} above the maximum {MAX_LEVEL}")));
            }
            let mut words = vec![0u32; level * (1 + m)];
            input.pod(&mut words)?;
            uppers.push(words);
        }
        let mut options = HnswOptions { vector_file, ..HnswOptions::default() };
        let mut quant = None;
        if version >= 2 {
            let mut head = [0u8; 4];
            input.take(&mut head)?;
            let subspaces = input.u32()? as usize;
            let centroids = input.u32()? as usize;
            options.quantization = match head[0] {
                0 => Quantization::None,
                1 => Quantization::Sq8,
                2 => Quantization::Pq { subspaces, centroids },
                other => return Err(corrupt(format!("unknown quantization code {other}"))),
            };
            options.oversampling = input.u32()? as usize;
            options.training_size = usize::try_from(input.u64()?).map_err(|_| corrupt("training size overflows"))?;
            input.take(&mut head)?;
            options.auto_train = head[0] != 0;
            options.validate(dim).map_err(|e| corrupt(format!("quantization: {e}")))?;
            if head[1] != 0 {
                quant = Some(read_quantized(&mut input, &options, metric, dim, used)?);
            }
        }
        let index =
            Hnsw::with_options(dim, metric, params, HnswOptions { capacity: 0, vector_file: None, ..options.clone() })
                .map_err(|e| corrupt(format!("header: {e}")))?;
        input.verify_checksum()?;

        for slot in 0..used {
            let list0 = &layer0[slot * stride0..(slot + 1) * stride0];
            inner.graph.restore_node(slot as u32, levels[slot] as usize, list0, &uppers[slot]);
            inner.labels[slot].store(labels[slot], Ordering::Relaxed);
            inner.states[slot].store(states[slot], Ordering::Relaxed);
        }
        inner.used.store(used as u32, Ordering::Release);
        inner.quant = quant;
        *index.inner.write() = inner;
        index.entry.store(entry, Ordering::Release);
        index.inserts.store(inserts, Ordering::Relaxed);
        Ok(index)
    }

    /// After loading raw slot arrays (a snapshot, then deltas): checks
    /// every structural invariant a search could trip over (states, levels,
    /// degree bounds, links in range, unique live ids, the entry point) and
    /// rebuilds the id map, free list, pending deletes and pending links
    /// from the slot states. Rejects the data with [`IndexError::Corrupt`]
    /// rather than load a partial index. The index is not shared yet.
    pub(super) fn rebuild_bookkeeping(&self) -> Result<(), IndexError> {
        let inner = self.inner.read();
        let used = inner.used();
        let mut ids = BTreeMap::new();
        let mut free = Vec::new();
        let mut pending = Vec::new();
        let mut unlinked = super::staging::PendingLinks::new();
        let mut live = 0usize;
        for slot in 0..used as u32 {
            let state = inner.states[slot as usize].load(Ordering::Relaxed);
            match state {
                LIVE | LIVE_UNLINKED => {
                    let label = inner.labels[slot as usize].load(Ordering::Relaxed);
                    if ids.insert(label, slot).is_some() {
                        return Err(corrupt(format!("id {label} stored twice")));
                    }
                    if state == LIVE_UNLINKED {
                        inner.states[slot as usize].store(LIVE, Ordering::Relaxed);
                        unlinked.insert(slot, std::sync::atomic::AtomicBool::new(false));
                    }
                    live += 1;
                }
                DELETED => pending.push(slot),
                // A free slot's lists are checked too: a search reaching it
                // through a stale link reads them (found by the
                // `index_snapshot` fuzz target: a free slot's link past the
                // end of the arrays panicked a search).
                FREE => free.push(slot),
                other => return Err(corrupt(format!("slot {slot} has state {other}"))),
            }
            let level = inner.graph.level(slot);
            if level > MAX_LEVEL {
                return Err(corrupt(format!("slot {slot}: level {level} above the maximum {MAX_LEVEL}")));
            }
            for l in 0..=level {
                let (count, links) = inner.graph.raw_list(slot, l);
                let max = inner.graph.max_degree(l);
                if count > max || count > links.len() {
                    return Err(corrupt(format!("slot {slot} layer {l}: {count} links exceed the bound {max}")));
                }
                if let Some(bad) = links[..count].iter().find(|&&n| n as usize >= used) {
                    return Err(corrupt(format!("slot {slot} layer {l}: link to slot {bad} of {used}")));
                }
            }
        }
        let entry = self.entry.load(Ordering::Acquire);
        if entry != NO_ENTRY {
            let (node, level) = ((entry as u32) as usize, (entry >> 32) as usize);
            if node >= used || inner.graph.level(node as u32) != level || inner.state(node as u32) == FREE {
                return Err(corrupt("entry point does not match its node"));
            }
        } else if live > unlinked.len() {
            return Err(corrupt("linked vectors but no entry point"));
        }
        drop(inner);
        *self.ids.lock() = ids;
        *self.free.lock() = free;
        *self.pending_deletes.lock() = pending;
        *self.pending_links.write() = unlinked;
        self.live.store(live, Ordering::Release);
        Ok(())
    }
}

/// Reads the trained quantizer and the codes of a version-2 snapshot.
fn read_quantized<R: Read>(
    input: &mut CrcReader<R>,
    options: &HnswOptions,
    metric: Metric,
    dim: usize,
    used: usize,
) -> Result<Quantized, IndexError> {
    let quantizer = read_quantizer(input, options.quantization, metric, dim)?;
    let mut codes = CodeStore::new(quantizer.code_len(), used)?;
    input.take(codes.prefix_mut(used))?;
    Ok(Quantized { quantizer: Arc::new(quantizer), codes })
}

/// Writes the code length and the trained parameters of `quant`.
pub(super) fn write_quantizer<W: Write>(out: &mut CrcWriter<W>, quant: &Quantized) -> Result<(), IndexError> {
    out.put(&(quant.codes.code_len() as u32).to_le_bytes())?;
    match &*quant.quantizer {
        Quantizer::Sq8(sq) => {
            out.put(&bytes_le(sq.lo()))?;
            out.put(&bytes_le(sq.delta()))?;
        }
        Quantizer::Pq(pq) => out.put(&bytes_le(pq.codebooks()))?,
    }
    Ok(())
}

/// Reads what [`write_quantizer`] wrote, for an index configured with
/// `quantization`.
pub(super) fn read_quantizer<R: Read>(
    input: &mut CrcReader<R>,
    quantization: Quantization,
    metric: Metric,
    dim: usize,
) -> Result<Quantizer, IndexError> {
    let code_len = input.u32()? as usize;
    let quantizer = match quantization {
        Quantization::None => return Err(corrupt("trained quantizer without a quantization")),
        Quantization::Sq8 => {
            let mut lo = vec![0f32; dim];
            input.pod(&mut lo)?;
            let mut delta = vec![0f32; dim];
            input.pod(&mut delta)?;
            if lo.iter().chain(&delta).any(|x| !x.is_finite()) {
                return Err(corrupt("SQ8 parameters are not finite"));
            }
            Quantizer::Sq8(Sq8::from_parts(metric, lo, delta))
        }
        Quantization::Pq { subspaces, .. } => {
            let mut books = vec![0f32; dim * CENTROIDS];
            input.pod(&mut books)?;
            Quantizer::Pq(Pq::from_parts(metric, dim, subspaces, books).map_err(|e| corrupt(format!("PQ: {e}")))?)
        }
    };
    if quantizer.code_len() != code_len {
        return Err(corrupt(format!("code length {code_len}, the quantizer needs {}", quantizer.code_len())));
    }
    Ok(quantizer)
}
