//! Vector quantization that the graph search runs on.
//!
//! * [`Quantization`] — the public choice: none, SQ8 ([`sq8`]) or PQ
//!   ([`pq`], with codebooks from [`kmeans`]);
//! * [`Quantizer`] — a trained quantizer: encodes prepared vectors (already
//!   normalised under cosine) to fixed-length byte codes and builds the
//!   per-query table ([`QuantQuery`]) that ranks codes without decoding them;
//! * [`CodeStore`] — the codes, one fixed-length row per index slot, laid out
//!   like the vector buffer and bound by the same publication contract (see
//!   [`crate::store`]): a slot's code is written by the thread that reserved
//!   the slot, before the slot is published.
//!
//! The HNSW index owns one `Quantizer` and one `CodeStore` once trained; the
//! graph sees them only through the [`crate::Scorer`] seam.

pub(crate) mod kmeans;
pub(crate) mod pq;
pub(crate) mod sq8;

use std::ptr::NonNull;

use memmap2::MmapMut;

use self::pq::{Pq, PqQuery};
use self::sq8::{Sq8, Sq8Query};
use crate::{IndexError, Metric};

/// How an index compresses its vectors for search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Quantization {
    /// Search on full-precision vectors only.
    #[default]
    None,
    /// Scalar quantization: one byte per component (4× smaller).
    Sq8,
    /// Product quantization: `subspaces` bytes per vector.
    Pq {
        /// `M`: number of subspaces; must divide the dimension.
        subspaces: usize,
        /// `k*`: centroids per subspace; must be 256 (one-byte codes).
        centroids: usize,
    },
}

impl Quantization {
    /// Checks the parameters against the index dimension.
    pub(crate) fn validate(self, dim: usize) -> Result<(), IndexError> {
        match self {
            Quantization::None | Quantization::Sq8 => Ok(()),
            Quantization::Pq { subspaces, centroids } => Pq::validate(dim, subspaces, centroids),
        }
    }
}

/// A trained quantizer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Quantizer {
    Sq8(Sq8),
    Pq(Pq),
}

/// The per-query state that ranks codes.
#[derive(Debug)]
pub(crate) enum QuantQuery {
    Sq8(Sq8Query),
    Pq(PqQuery),
}

impl Quantizer {
    /// Trains the quantizer `kind` on `samples` (`n × dim` prepared vectors,
    /// `n ≥ 1`). `None` for [`Quantization::None`].
    pub(crate) fn train(
        kind: Quantization,
        metric: Metric,
        dim: usize,
        samples: &[f32],
        seed: u64,
    ) -> Result<Option<Quantizer>, IndexError> {
        Ok(match kind {
            Quantization::None => None,
            Quantization::Sq8 => Some(Quantizer::Sq8(Sq8::train(metric, dim, samples))),
            Quantization::Pq { subspaces, centroids } => {
                Pq::validate(dim, subspaces, centroids)?;
                Some(Quantizer::Pq(Pq::train(metric, dim, subspaces, samples, seed)?))
            }
        })
    }

    /// Bytes per code.
    pub(crate) fn code_len(&self) -> usize {
        match self {
            Quantizer::Sq8(q) => q.code_len(),
            Quantizer::Pq(q) => q.code_len(),
        }
    }

    /// Writes the code of the prepared vector `v` into `out`.
    pub(crate) fn encode(&self, v: &[f32], out: &mut [u8]) {
        match self {
            Quantizer::Sq8(q) => q.encode(v, out),
            Quantizer::Pq(q) => q.encode(v, out),
        }
    }

    /// The table that ranks codes against the prepared query `q`.
    pub(crate) fn query(&self, q: &[f32]) -> QuantQuery {
        match self {
            Quantizer::Sq8(s) => QuantQuery::Sq8(s.query(q)),
            Quantizer::Pq(p) => QuantQuery::Pq(p.query(q)),
        }
    }
}

impl QuantQuery {
    /// The approximate ranking distance to the vector coded as `code`.
    #[inline]
    pub(crate) fn distance(&self, code: &[u8]) -> f32 {
        match self {
            QuantQuery::Sq8(q) => q.distance(code),
            QuantQuery::Pq(q) => q.distance(code),
        }
    }
}

/// Fixed-capacity storage for `code_len`-byte codes in an anonymous mapping
/// (lazily zero-filled, so unused capacity costs no resident memory).
#[derive(Debug)]
pub(crate) struct CodeStore {
    /// Owns the memory `ptr` points into (`None` for zero bytes).
    _map: Option<MmapMut>,
    ptr: NonNull<u8>,
    code_len: usize,
    capacity: usize,
}

// SAFETY: plain bytes owned by this value; cross-thread access follows the
// publication contract of the module docs.
unsafe impl Send for CodeStore {}
// SAFETY: as above.
unsafe impl Sync for CodeStore {}

impl CodeStore {
    /// Maps zeroed room for `capacity` codes.
    pub(crate) fn new(code_len: usize, capacity: usize) -> std::io::Result<Self> {
        let bytes =
            code_len.checked_mul(capacity).ok_or_else(|| std::io::Error::other("code buffer size overflows usize"))?;
        if bytes == 0 {
            return Ok(CodeStore { _map: None, ptr: NonNull::dangling(), code_len, capacity });
        }
        let mut map = MmapMut::map_anon(bytes)?;
        let ptr =
            NonNull::new(map.as_mut_ptr()).ok_or_else(|| std::io::Error::other("mmap returned a null pointer"))?;
        Ok(CodeStore { _map: Some(map), ptr, code_len, capacity })
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn code_len(&self) -> usize {
        self.code_len
    }

    /// A copy with room for `capacity` codes holding the first `used`.
    pub(crate) fn grown(&self, capacity: usize, used: usize) -> std::io::Result<Self> {
        debug_assert!(capacity >= used && used <= self.capacity);
        let new = Self::new(self.code_len, capacity)?;
        // SAFETY: both buffers hold at least `used × code_len` bytes and do
        // not overlap; the caller holds the index's exclusive lock.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr(), new.ptr.as_ptr(), used * self.code_len) };
        Ok(new)
    }

    /// The code in `slot`.
    ///
    /// # Safety
    /// `slot < capacity` and the slot is published (no write in progress).
    #[inline]
    pub(crate) unsafe fn get(&self, slot: u32) -> &[u8] {
        debug_assert!((slot as usize) < self.capacity);
        // SAFETY: in bounds by the contract; the mapping is zero-initialised.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(slot as usize * self.code_len), self.code_len) }
    }

    /// The code of `slot`, for writing.
    ///
    /// # Safety
    /// `slot < capacity`, and the calling thread owns the slot (reserved and
    /// unpublished, or the index is held exclusively).
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slot_mut(&self, slot: u32) -> &mut [u8] {
        debug_assert!((slot as usize) < self.capacity);
        // SAFETY: in bounds and exclusively ours by the contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(slot as usize * self.code_len), self.code_len) }
    }

    /// The first `used` codes as one slice.
    ///
    /// # Safety
    /// `used <= capacity` and none of them is being written.
    pub(crate) unsafe fn prefix(&self, used: usize) -> &[u8] {
        debug_assert!(used <= self.capacity);
        // SAFETY: by the contract.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), used * self.code_len) }
    }

    /// The first `used` codes, mutably (exclusive access).
    pub(crate) fn prefix_mut(&mut self, used: usize) -> &mut [u8] {
        assert!(used <= self.capacity);
        // SAFETY: in bounds; `&mut self` rules out any other access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), used * self.code_len) }
    }

    /// Hints the CPU to load the code of `slot`.
    #[inline]
    pub(crate) fn prefetch(&self, slot: u32) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let base = self.ptr.as_ptr().wrapping_add(slot as usize * self.code_len).cast::<i8>();
            let mut offset = 0;
            while offset < self.code_len {
                // SAFETY: prefetch is a hint and never faults.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add(offset)) };
                offset += 64;
            }
        }
    }
}

/// `f(0), …, f(n − 1)` computed on up to the available cores, in order.
pub(crate) fn parallel_map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).min(n.max(1));
    if threads <= 1 {
        return (0..n).map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut parts: Vec<(usize, T)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= n {
                            return out;
                        }
                        out.push((i, f(i)));
                    }
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    });
    parts.sort_unstable_by_key(|p| p.0);
    parts.into_iter().map(|p| p.1).collect()
}
