//! The full-precision vector buffer: one contiguous, page-aligned mapping
//! of `capacity × dim` floats, indexed by node slot.
//!
//! The mapping is anonymous by default. With a backing file it is a shared
//! mapping of that file, so the kernel may write its pages back and evict
//! them: with a quantized index, searches touch only the few vectors they
//! rescore, and [`VectorStore::release`] drops the rest from resident
//! memory. Growing a file-backed store extends the file and maps it again;
//! the data never moves. The file is scratch space owned by the index (it
//! is truncated on creation and is not a persistence format).
//!
//! Concurrency contract (the reason this type has `unsafe` methods): a slot is
//! written only by the one thread that reserved it, before the slot is
//! published to other threads (by a release store of a link, the entry point
//! or the id map). Readers reach a slot only through such a publication, so
//! they never observe a write in progress. A slot is reused only after the
//! index proved, under its exclusive lock, that nothing references it.

use std::fs::File;
use std::path::Path;
use std::ptr::NonNull;

use memmap2::{Advice, MmapMut, MmapOptions, UncheckedAdvice};

/// Fixed-capacity storage for `dim`-dimensional `f32` vectors in an
/// anonymous memory mapping: page-aligned, zero-filled lazily by the OS (so
/// untouched capacity costs no resident memory), and backed by transparent
/// huge pages where the kernel allows, which removes most TLB misses from
/// the random vector reads of a graph search.
#[derive(Debug)]
pub(crate) struct VectorStore {
    /// Owns the memory `ptr` points into (`None` for zero capacity).
    map: Option<MmapMut>,
    /// The backing file of a file-backed store.
    file: Option<File>,
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
        let bytes = Self::bytes(dim, capacity)?;
        if bytes == 0 {
            return Ok(VectorStore { map: None, file: None, ptr: NonNull::dangling(), dim, capacity });
        }
        let mut map = MmapMut::map_anon(bytes)?;
        // Best effort: without THP support the mapping still works.
        let _ = map.advise(Advice::HugePage);
        let ptr = NonNull::new(map.as_mut_ptr().cast::<f32>())
            .ok_or_else(|| std::io::Error::other("mmap returned a null pointer"))?;
        Ok(VectorStore { map: Some(map), file: None, ptr, dim, capacity })
    }

    /// Maps zeroed room for `capacity` vectors in the file at `path`, which
    /// is created or truncated.
    pub(crate) fn with_file(path: &Path, dim: usize, capacity: usize) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
        Self::map_file(file, dim, capacity)
    }

    fn map_file(file: File, dim: usize, capacity: usize) -> std::io::Result<Self> {
        let bytes = Self::bytes(dim, capacity)?;
        file.set_len(bytes as u64)?;
        if bytes == 0 {
            return Ok(VectorStore { map: None, file: Some(file), ptr: NonNull::dangling(), dim, capacity });
        }
        // SAFETY: the file is private scratch space of this store (created
        // and truncated by it); nothing else is expected to resize it.
        let mut map = unsafe { MmapOptions::new().len(bytes).map_mut(&file)? };
        // Rescoring reads scattered vectors: no readahead. Best effort.
        let _ = map.advise(Advice::Random);
        let ptr = NonNull::new(map.as_mut_ptr().cast::<f32>())
            .ok_or_else(|| std::io::Error::other("mmap returned a null pointer"))?;
        Ok(VectorStore { map: Some(map), file: Some(file), ptr, dim, capacity })
    }

    fn bytes(dim: usize, capacity: usize) -> std::io::Result<usize> {
        dim.checked_mul(capacity)
            .and_then(|n| n.checked_mul(size_of::<f32>()))
            .ok_or_else(|| std::io::Error::other("vector buffer size overflows usize"))
    }

    /// Whether the vectors live in a file mapping.
    #[cfg(test)]
    pub(crate) fn is_file_backed(&self) -> bool {
        self.file.is_some()
    }

    /// Bytes of the mapping.
    pub(crate) fn mapped_bytes(&self) -> usize {
        self.map.as_ref().map_or(0, |m| m.len())
    }

    /// Drops the pages of a file-backed store from this process's resident
    /// memory (`madvise(MADV_DONTNEED)`); they are read back from the page
    /// cache or the file on the next access. A no-op for anonymous stores,
    /// whose contents would be lost.
    pub(crate) fn release(&self) -> std::io::Result<()> {
        match (&self.map, &self.file) {
            (Some(map), Some(_)) => {
                map.flush()?;
                // SAFETY: for a shared file mapping DONTNEED only unmaps
                // pages; their contents stay in the file and page cache.
                unsafe { map.unchecked_advise(UncheckedAdvice::DontNeed) }
            }
            _ => Ok(()),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Returns a copy with room for `capacity` vectors holding the first
    /// `used` vectors of this one.
    pub(crate) fn grown(&self, capacity: usize, used: usize) -> std::io::Result<Self> {
        debug_assert!(capacity >= used && used <= self.capacity);
        if let Some(file) = &self.file {
            // The data stays in the file; map it again, larger.
            return Self::map_file(file.try_clone()?, self.dim, capacity);
        }
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

    #[test]
    fn file_backed_store_grows_in_place_and_survives_release() {
        let dir = std::env::temp_dir().join(format!("ruvector-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("vectors.f32");
        let store = VectorStore::with_file(&path, 2, 1).expect("map");
        assert!(store.is_file_backed());
        // SAFETY: single-threaded test, slots in bounds.
        unsafe { store.write(0, &[1.0, 2.0], 1.0) };
        let grown = store.grown(1000, 1).expect("map");
        drop(store);
        // SAFETY: as above.
        unsafe { grown.write(999, &[3.0, 4.0], 1.0) };
        grown.release().expect("madvise");
        // SAFETY: as above.
        unsafe {
            assert_eq!(grown.get(0), &[1.0, 2.0]);
            assert_eq!(grown.get(999), &[3.0, 4.0]);
        }
        drop(grown);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
