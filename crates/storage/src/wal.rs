//! The node's write-ahead log: one ordered stream of [`WalRecord`]s with
//! increasing LSNs (starting at 1), stored in segment files
//! `<dir>/<first LSN as 20 digits>.log` (frame format in [`frame`], record
//! encoding in [`record`], recovery rules in [`recovery`]).
//!
//! # Durability
//! [`Wal::append`] writes the frame with one `write` under the writer lock,
//! then, with [`FsyncPolicy::Always`], waits until an fsync covering it has
//! returned. **Group commit**: the first waiter becomes the leader, fsyncs
//! the active segment without holding the writer lock (so others keep
//! appending), and publishes `synced_lsn` = the last LSN written before its
//! fsync started; waiters whose LSN is covered return, the rest elect the
//! next leader. One fsync thus acknowledges every append that was written
//! while the previous one ran.
//!
//! A flusher thread starts an fsync as soon as records are written, so a
//! writer that does other work between [`Wal::write`] and
//! [`Wal::wait_durable`] (the engine links the vector into the graph)
//! usually finds its record durable or its fsync under way.
//!
//! With [`FsyncPolicy::IntervalMs`], `append` returns after the `write`; a
//! background thread fsyncs every `n` ms. A power cut may lose the appends of
//! the last `n` ms plus one fsync's duration (a process crash loses nothing:
//! the bytes are in the page cache). [`Wal::sync`] forces an fsync, and
//! dropping the `Wal` syncs.
//!
//! A failed write or fsync makes the WAL refuse further appends
//! ([`StorageError::WalFailed`]): after a failed fsync the kernel may have
//! dropped the dirty pages, so retrying could report success for lost data.
//! Reopening recovers from what is really on disk. The exception is a full
//! disk on a write (ENOSPC, EDQUOT; nothing was fsynced yet): the segment is
//! cut back to its last whole frame and the append fails with
//! [`StorageError::NoSpace`], after which appends work again as soon as
//! there is room (if the cut itself fails, the WAL fails as above). So is
//! a read-only volume (EROFS) refusing a write that left nothing in the
//! segment, or the creation of the next segment:
//! [`StorageError::ReadOnly`], appends work again once it is writable.
//!
//! # Segments
//! A new segment starts when the active one would exceed
//! [`WalOptions::segment_size`] (a single bigger record still gets a segment
//! of its own). Rotation fsyncs the old segment, creates the new one and
//! fsyncs the directory before writing to it, so only the last segment can
//! ever hold a torn tail. [`Wal::truncate_before`] removes whole segments
//! that a checkpoint made obsolete.
//!
//! # Lock order
//! `writer` before `sync`; the group-commit leader holds neither while it
//! fsyncs.

pub mod frame;
pub mod record;
pub mod recovery;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, MutexGuard};

pub use record::{WalPoint, WalRecord};
pub use recovery::ReplayError;

use crate::error::{Result, StorageError};
use crate::io::{FileHandle, Fs};
use frame::PendingFrame;
use recovery::{Segment, segment_name};

/// When an append counts as durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// `append` returns only after an fsync covering the record (shared with
    /// concurrent appenders). Nothing acknowledged is lost on power failure.
    #[default]
    Always,
    /// `append` returns after `write`; a background thread fsyncs every `n`
    /// milliseconds. A power cut loses at most the last `n` ms of appends
    /// (plus one fsync's duration).
    IntervalMs(u64),
}

/// WAL tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalOptions {
    /// Durability policy for [`Wal::append`].
    pub fsync: FsyncPolicy,
    /// Size in bytes at which a new segment file is started. Default 64 MiB.
    pub segment_size: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions { fsync: FsyncPolicy::Always, segment_size: 64 << 20 }
    }
}

/// What [`Wal::open`] found on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryStats {
    /// Records passed to the replay callback.
    pub replayed: u64,
    /// Segment files present after recovery.
    pub segments: usize,
    /// LSN the next append will get.
    pub next_lsn: u64,
}

/// The write-ahead log. `Send + Sync`: share it with an `Arc` and append from
/// any number of threads.
#[derive(Debug)]
pub struct Wal {
    shared: Arc<Shared>,
    flusher: Option<Flusher>,
}

#[derive(Debug)]
struct Shared {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    options: WalOptions,
    writer: Mutex<Writer>,
    sync: Mutex<SyncState>,
    synced: Condvar,
    /// First write/fsync failure; once set, appends are refused.
    failed: OnceLock<String>,
    sync_observer: OnceLock<SyncObserver>,
    /// Wakes the flusher thread.
    flush_signal: (Mutex<FlushSignal>, Condvar),
}

/// A callback told how long each log fsync took.
struct SyncObserver(Box<dyn Fn(Duration) + Send + Sync>);

impl std::fmt::Debug for SyncObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncObserver")
    }
}

#[derive(Debug)]
struct Writer {
    /// Active segment (the last of `segments`).
    file: Arc<dyn FileHandle>,
    /// Bytes in the active segment.
    len: u64,
    /// LSN of the next append; every LSN below it is written.
    next_lsn: u64,
    /// All segments, oldest first; the last is active.
    segments: Vec<Segment>,
}

#[derive(Debug)]
struct SyncState {
    /// Every LSN ≤ this is durable.
    synced_lsn: u64,
    /// A group-commit leader is fsyncing.
    leader: bool,
}

#[derive(Debug)]
struct Flusher {
    handle: Option<JoinHandle<()>>,
}

impl Wal {
    /// Opens (or creates) the WAL in `dir`, replaying every record with
    /// LSN ≥ `replay_from` into `apply` in LSN order before returning.
    ///
    /// Pass `replay_from = checkpoint_lsn + 1` (or 0 without a checkpoint).
    /// A torn final record is discarded; any other damage is an error naming
    /// the file and offset (see [`recovery`]). An error from `apply` stops
    /// recovery with [`StorageError::Replay`].
    pub fn open(
        fs: Arc<dyn Fs>,
        dir: impl Into<PathBuf>,
        options: WalOptions,
        replay_from: u64,
        mut apply: impl FnMut(u64, WalRecord) -> Result<(), ReplayError>,
    ) -> Result<(Wal, RecoveryStats)> {
        let dir = dir.into();
        fs.create_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
        let found = recovery::recover(fs.as_ref(), &dir, replay_from, &mut apply)?;
        let mut segments = found.segments;
        let next_lsn = found.next_lsn.unwrap_or(1).max(replay_from).max(1);
        let (file, len) = match segments.last() {
            // Continue the last segment when its LSNs run on without a hole.
            Some(last) if found.next_lsn == Some(next_lsn) => {
                let file = fs.open_append(&last.path).map_err(|e| StorageError::io(&last.path, e))?;
                (file, found.last_len)
            }
            _ => {
                let seg = Segment { first_lsn: next_lsn, path: dir.join(segment_name(next_lsn)) };
                let file = fs.create(&seg.path).map_err(|e| StorageError::io(&seg.path, e))?;
                fs.sync_dir(&dir).map_err(|e| StorageError::io(&dir, e))?;
                segments.push(seg);
                (file, 0)
            }
        };
        let stats = RecoveryStats { replayed: found.replayed, segments: segments.len(), next_lsn };
        let shared = Arc::new(Shared {
            fs,
            dir,
            options,
            writer: Mutex::new(Writer { file, len, next_lsn, segments }),
            sync: Mutex::new(SyncState { synced_lsn: next_lsn - 1, leader: false }),
            synced: Condvar::new(),
            failed: OnceLock::new(),
            sync_observer: OnceLock::new(),
            flush_signal: (Mutex::new(FlushSignal::default()), Condvar::new()),
        });
        let interval = match options.fsync {
            FsyncPolicy::Always => None,
            FsyncPolicy::IntervalMs(ms) => Some(Duration::from_millis(ms.max(1))),
        };
        let flusher =
            Some(Flusher::start(Arc::clone(&shared), interval).map_err(|e| StorageError::io(&shared.dir, e))?);
        Ok((Wal { shared, flusher }, stats))
    }

    /// Appends `record` and returns its LSN once it is durable according to
    /// the [`FsyncPolicy`]. Safe to call from many threads at once.
    pub fn append(&self, record: &WalRecord) -> Result<u64> {
        let lsn = self.write(record)?;
        self.wait_durable(lsn)?;
        Ok(lsn)
    }

    /// The first half of [`Wal::append`]: writes `record` (one `write`
    /// under the writer lock) and returns its LSN without waiting for an
    /// fsync. Callers that need an order between records (log order = apply
    /// order) call this under their own lock and [`Wal::wait_durable`]
    /// outside it, so concurrent writers share one fsync.
    pub fn write(&self, record: &WalRecord) -> Result<u64> {
        let size = record.encoded_len();
        if size > frame::MAX_RECORD {
            return Err(StorageError::RecordTooLarge { size, max: frame::MAX_RECORD });
        }
        // Encode and checksum the record before taking the lock.
        let mut buf = Vec::with_capacity(frame::HEADER + size);
        buf.resize(frame::HEADER, 0);
        record.encode_into(&mut buf).map_err(|_| StorageError::RecordTooLarge { size, max: u32::MAX as usize - 1 })?;
        let mut pending = PendingFrame::new(buf);
        self.shared.write(&mut pending)
    }

    /// Returns once the record at `lsn` counts as durable under the
    /// [`FsyncPolicy`]: covered by an fsync (leading one if no other
    /// waiter is) with `Always`, at once with `IntervalMs`.
    pub fn wait_durable(&self, lsn: u64) -> Result<()> {
        if self.shared.options.fsync == FsyncPolicy::Always {
            self.shared.wait_durable(lsn)?;
        }
        Ok(())
    }

    /// Calls `observe` with the duration of every later fsync of the log
    /// (for a latency histogram). Only the first observer set is kept.
    pub fn observe_syncs(&self, observe: impl Fn(Duration) + Send + Sync + 'static) {
        let _ = self.shared.sync_observer.set(SyncObserver(Box::new(observe)));
    }

    /// Makes every record appended so far durable; returns the durable LSN.
    pub fn sync(&self) -> Result<u64> {
        let last = self.last_lsn();
        self.shared.wait_durable(last)?;
        Ok(last)
    }

    /// LSN of the last record written (0 if none ever was).
    pub fn last_lsn(&self) -> u64 {
        self.shared.writer.lock().next_lsn - 1
    }

    /// Every LSN up to this one is durable.
    pub fn durable_lsn(&self) -> u64 {
        self.shared.sync.lock().synced_lsn
    }

    /// The WAL directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Number of segment files, the active one included.
    pub fn segment_count(&self) -> usize {
        self.shared.writer.lock().segments.len()
    }

    /// Deletes every segment whose records all have LSN < `lsn`; the active
    /// segment is never deleted. Returns how many segments were removed.
    ///
    /// Call it with `checkpoint_lsn + 1` only after that checkpoint is
    /// durable, and reopen with the same `replay_from`.
    pub fn truncate_before(&self, lsn: u64) -> Result<usize> {
        let doomed: Vec<Segment> = {
            let mut w = self.shared.writer.lock();
            let n = w.segments.windows(2).take_while(|pair| pair[1].first_lsn <= lsn).count();
            w.segments.drain(..n).collect()
        };
        let fs = &self.shared.fs;
        for seg in &doomed {
            fs.remove_file(&seg.path).map_err(|e| StorageError::io(&seg.path, e))?;
        }
        if !doomed.is_empty() {
            fs.sync_dir(&self.shared.dir).map_err(|e| StorageError::io(&self.shared.dir, e))?;
        }
        Ok(doomed.len())
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Some(mut flusher) = self.flusher.take() {
            flusher.stop(&self.shared);
            // Best effort: a clean shutdown loses nothing under IntervalMs.
            let last = self.last_lsn();
            let _ = self.shared.wait_durable(last);
        }
    }
}

/// Whether an I/O error says the disk (or the user's quota) is full.
fn is_no_space(e: &std::io::Error) -> bool {
    // ENOSPC 28, EDQUOT 122 on Linux.
    e.kind() == std::io::ErrorKind::StorageFull || matches!(e.raw_os_error(), Some(28 | 122))
}

/// Whether an I/O error says the volume is read-only (EROFS, 30 on Linux).
fn is_read_only(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::ReadOnlyFilesystem || e.raw_os_error() == Some(30)
}

impl Shared {
    fn check_failed(&self) -> Result<()> {
        match self.failed.get() {
            Some(reason) => Err(StorageError::WalFailed { reason: reason.clone() }),
            None => Ok(()),
        }
    }

    /// Records the first failure, wakes every waiter, and returns the error.
    fn fail(&self, path: &Path, e: std::io::Error) -> StorageError {
        let _ = self.failed.set(format!("{}: {e}", path.display()));
        let _guard = self.sync.lock();
        self.synced.notify_all();
        StorageError::io(path, e)
    }

    /// Writes a frame at the end of the log and returns its LSN.
    fn write(&self, pending: &mut PendingFrame) -> Result<u64> {
        let mut w = self.writer.lock();
        self.check_failed()?;
        let frame_len = pending.buf.len() as u64;
        if w.len > 0 && w.len + frame_len > self.options.segment_size {
            self.rotate(&mut w)?;
        }
        let lsn = w.next_lsn;
        let bytes = pending.seal(lsn);
        if let Err(e) = w.file.append(bytes) {
            let path = w.segments.last().map(|s| s.path.clone()).unwrap_or_default();
            if is_no_space(&e) && self.fs.truncate(&path, w.len).is_ok() {
                // A short write of this frame is gone; the log ends at its
                // last whole frame as before.
                return Err(StorageError::NoSpace { path, source: e });
            }
            if is_read_only(&e) && self.fs.file_len(&path).is_ok_and(|len| len == w.len) {
                // Refused before anything was written (a read-only volume
                // cannot be cut back, so only a write that left nothing
                // is let go).
                return Err(StorageError::ReadOnly { path, source: e });
            }
            return Err(self.fail(&path, e));
        }
        w.len += frame_len;
        w.next_lsn += 1;
        drop(w);
        if self.options.fsync == FsyncPolicy::Always {
            let (lock, cv) = &self.flush_signal;
            lock.lock().written = true;
            cv.notify_one();
        }
        Ok(lsn)
    }

    /// Closes the active segment (fsynced) and starts a new, durably named one.
    fn rotate(&self, w: &mut MutexGuard<'_, Writer>) -> Result<()> {
        let old = w.segments.last().map(|s| s.path.clone()).unwrap_or_default();
        w.file.sync().map_err(|e| self.fail(&old, e))?;
        let synced = w.next_lsn - 1;
        {
            let mut st = self.sync.lock();
            st.synced_lsn = st.synced_lsn.max(synced);
            self.synced.notify_all();
        }
        let seg = Segment { first_lsn: w.next_lsn, path: self.dir.join(segment_name(w.next_lsn)) };
        let file = match self.fs.create(&seg.path) {
            Ok(file) => file,
            // No new segment: the old one is whole and synced; retry later.
            Err(e) if is_no_space(&e) => return Err(StorageError::NoSpace { path: seg.path, source: e }),
            Err(e) if is_read_only(&e) => return Err(StorageError::ReadOnly { path: seg.path, source: e }),
            Err(e) => return Err(self.fail(&seg.path, e)),
        };
        self.fs.sync_dir(&self.dir).map_err(|e| self.fail(&self.dir, e))?;
        w.file = file;
        w.len = 0;
        w.segments.push(seg);
        Ok(())
    }

    /// Returns once every LSN ≤ `lsn` is durable, leading an fsync if no one
    /// else is.
    fn wait_durable(&self, lsn: u64) -> Result<()> {
        let mut st = self.sync.lock();
        loop {
            if st.synced_lsn >= lsn {
                return Ok(());
            }
            self.check_failed()?;
            if st.leader {
                self.synced.wait(&mut st);
                continue;
            }
            st.leader = true;
            let result = MutexGuard::unlocked(&mut st, || self.sync_written());
            st.leader = false;
            self.synced.notify_all();
            st.synced_lsn = st.synced_lsn.max(result?);
        }
    }

    /// fsyncs the active segment; returns the last LSN written before it.
    fn sync_written(&self) -> Result<u64> {
        let (file, upto, path) = {
            let w = self.writer.lock();
            (Arc::clone(&w.file), w.next_lsn - 1, w.segments.last().map(|s| s.path.clone()))
        };
        let started = std::time::Instant::now();
        file.sync().map_err(|e| self.fail(&path.unwrap_or_default(), e))?;
        if let Some(observer) = self.sync_observer.get() {
            (observer.0)(started.elapsed());
        }
        Ok(upto)
    }
}

/// What the flusher thread waits on: records written and not yet synced
/// (under [`FsyncPolicy::Always`]), or the request to stop.
#[derive(Debug, Default)]
struct FlushSignal {
    written: bool,
    stopped: bool,
}

impl Flusher {
    /// Starts the flusher thread: with `interval`, an fsync every interval
    /// ([`FsyncPolicy::IntervalMs`]); without, an fsync as soon as records
    /// are written ([`FsyncPolicy::Always`]: the sync starts while the
    /// writers do other work, and they find it done or under way when they
    /// wait).
    fn start(shared: Arc<Shared>, interval: Option<Duration>) -> std::io::Result<Flusher> {
        let handle = std::thread::Builder::new().name("wal-flusher".into()).spawn(move || {
            loop {
                {
                    let (lock, cv) = &shared.flush_signal;
                    let mut signal = lock.lock();
                    match interval {
                        Some(interval) if !signal.stopped => {
                            cv.wait_for(&mut signal, interval);
                        }
                        _ => {
                            while !signal.written && !signal.stopped {
                                cv.wait(&mut signal);
                            }
                        }
                    }
                    if signal.stopped {
                        return;
                    }
                    signal.written = false;
                }
                let last = shared.writer.lock().next_lsn - 1;
                if shared.failed.get().is_some() {
                    return;
                }
                // A failure poisons the WAL; the next append reports it.
                let _ = shared.wait_durable(last);
            }
        })?;
        Ok(Flusher { handle: Some(handle) })
    }

    fn stop(&mut self, shared: &Shared) {
        let (lock, cv) = &shared.flush_signal;
        lock.lock().stopped = true;
        cv.notify_all();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
