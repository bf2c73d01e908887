//! The full-precision vector buffer: one contiguous, page-aligned mapping
//! of `capacity × dim` floats, indexed by node slot.
//!
//! Concurrency contract (the reason this type has `unsafe` methods): a slot is
//! written only by the one thread that reserved it, before the slot is
//! published to other threads (by a release store of a link, the entry point
//! or the id map). Readers reach a slot only through such a publication, so
//! they never observe a write in progress. A slot is reused only after the
//! index proved, under its exclusive lock, that nothing references it.

use std::ptr::NonNull;

use memmap2::{Advice, MmapMut};

/// Fixed-capacity storage for `dim`-dimensional `f32` vectors in an
/// anonymous memory mapping: page-aligned, zero-filled lazily by the OS (so
/// untouched capacity costs no resident memory), and backed by transparent
/// huge pages where the kernel allows, which removes most TLB misses from
/// the random vector reads of a graph search.
#[derive(Debug)]
pub(crate) struct VectorStore {
    /// Owns the memory `ptr` points into (`None` for zero capacity).
    _map: Option<MmapMut>,
    ptr: NonNull<f32>,
    dim: usize,
    capacity: usize,
}

// SAFETY: the buffer is plain floats owned by this value; cross-thread access
// follows the publication contract in the module docs.
unsafe impl Send for VectorStore {}
// SAFETY: as above.
unsafe impl Sync for VectorStore {}

impl VectorStore {
    /// Maps zeroed room for `capacity` vectors.
    pub(crate) fn new(dim: usize, capacity: usize) -> std::io::Result<Self> {
        let bytes = dim
            .checked_mul(capacity)
            .and_then(|n| n.checked_mul(size_of::<f32>()))
            .ok_or_else(|| std::io::Error::other("vector buffer size overflows usize"))?;
        if bytes == 0 {
            return Ok(VectorStore { _map: None, ptr: NonNull::dangling(), dim, capacity });
        }
        let mut map = MmapMut::map_anon(bytes)?;
        // Best effort: without THP support the mapping still works.
        let _ = map.advise(Advice::HugePage);
        let ptr = NonNull::new(map.as_mut_ptr().cast::<f32>())
            .ok_or_else(|| std::io::Error::other("mmap returned a null pointer"))?;
        Ok(VectorStore { _map: Some(map), ptr, dim, capacity })
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Returns a copy with room for `capacity` vectors holding the first
    /// `used` vectors of this one.
    pub(crate) fn grown(&self, capacity: usize, used: usize) -> std::io::Result<Self> {
        debug_assert!(capacity >= used && used <= self.capacity);
        let new = Self::new(self.dim, capacity)?;
        // SAFETY: both buffers hold at least `used × dim` floats and do not
        // overlap; the caller holds the index's exclusive lock, so no slot is
        // being written.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr.as_ptr(), new.ptr.as_ptr(), used * self.dim);
        }
        Ok(new)
    }

    /// The vector in `slot`.
    ///
    /// # Safety
    /// `slot < capacity`, and the slot was published to this thread (see the
    /// module docs), so no write to it is in progress.
    #[inline]
    pub(crate) unsafe fn get(&self, slot: u32) -> &[f32] {
        debug_assert!((slot as usize) < self.capacity);
        // SAFETY: in bounds by the caller's contract; initialised because the
        // allocation is zeroed.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(slot as usize * self.dim), self.dim) }
    }

    /// Writes `vector × scale` into `slot`.
    ///
    /// # Safety
    /// `slot < capacity`, `vector.len() == dim`, and the calling thread owns
    /// the slot: it is reserved and not yet published, so no other thread
    /// reads or writes it.
    #[inline]
    pub(crate) unsafe fn write(&self, slot: u32, vector: &[f32], scale: f32) {
        debug_assert!((slot as usize) < self.capacity && vector.len() == self.dim);
        // SAFETY: by the caller's contract the destination is in bounds and
        // exclusively ours.
        let dest = unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(slot as usize * self.dim), self.dim) };
        for (d, &x) in dest.iter_mut().zip(vector) {
            *d = x * scale;
        }
    }

    /// The first `used` vectors as one slice.
    ///
    /// # Safety
    /// `used <= capacity`, and no slot below `used` is being written (the
    /// index holds its write gate exclusively).
    pub(crate) unsafe fn prefix(&self, used: usize) -> &[f32] {
        debug_assert!(used <= self.capacity);
        // SAFETY: in bounds and not concurrently written, by the contract.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), used * self.dim) }
    }

    /// The first `used` vectors, mutably (exclusive access).
    pub(crate) fn prefix_mut(&mut self, used: usize) -> &mut [f32] {
        assert!(used <= self.capacity);
        // SAFETY: in bounds; `&mut self` rules out any other access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), used * self.dim) }
    }

    /// Hints the CPU to load bytes `from..to` (clamped to the vector) of
    /// the vector in `slot`.
    #[inline]
    pub(crate) fn prefetch(&self, slot: u32, from: usize, to: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let bytes = self.dim * size_of::<f32>();
            let base = self.ptr.as_ptr().wrapping_add(slot as usize * self.dim).cast::<i8>();
            let mut offset = from;
            while offset < bytes.min(to) {
                // SAFETY: prefetch is a hint and never faults.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add(offset)) };
                offset += 64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_and_grow_keep_contents() {
        let store = VectorStore::new(3, 2).expect("map");
        // SAFETY: single-threaded test, slots in bounds.
        unsafe {
            store.write(0, &[1.0, 2.0, 3.0], 1.0);
            store.write(1, &[2.0, 2.5, 3.0], 2.0);
        }
        let grown = store.grown(10, 2).expect("map");
        assert_eq!(grown.capacity(), 10);
        // SAFETY: as above.
        unsafe {
            assert_eq!(grown.get(1), &[4.0, 5.0, 6.0]);
            assert_eq!(grown.get(9), &[0.0, 0.0, 0.0]);
            assert_eq!(grown.ptr.as_ptr() as usize % 64, 0);
        }
    }
}
