//! [`SimFs`]: an in-memory filesystem that models what survives a power cut.
//!
//! Per file it tracks the written bytes and the durable prefix (advanced by
//! `sync`); per directory it tracks the live entries and the durable entries
//! (copied from the live ones by `sync_dir`). [`SimFs::crash`] throws away
//! everything not durable, optionally keeping a random prefix of each file's
//! unsynced bytes to model torn writes.
//!
//! Every durability barrier (file sync, directory sync, truncate) is a
//! numbered *sync point*. [`SimFs::fail_after_syncs`] cuts the power at a
//! chosen sync point: that barrier and every later mutation fail with an
//! error and make nothing durable, so a test can crash a workload at every
//! sync point in turn.
//!
//! Simplifications: directories are created durably and never removed; paths
//! are compared literally (no `..` or symlinks); a file's unsynced bytes are
//! lost or kept as a prefix, never reordered.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::{FileHandle, Fs};

/// In-memory filesystem with crash simulation. Cloning shares the disk.
#[derive(Debug, Clone, Default)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    files: HashMap<u64, SimFile>,
    next_inode: u64,
    dirs: BTreeMap<PathBuf, SimDir>,
    /// Bumped by every crash; handles from an older epoch are dead.
    epoch: u64,
    sync_points: u64,
    file_syncs: u64,
    fail_after: Option<u64>,
    power_lost: bool,
    sync_delay: Duration,
    /// With a limit: the disk holds at most this many bytes of file data;
    /// an append that does not fit writes what fits and fails with ENOSPC.
    space: Option<u64>,
}

#[derive(Debug, Default)]
struct SimFile {
    data: Vec<u8>,
    durable_len: usize,
}

#[derive(Debug, Default)]
struct SimDir {
    live: BTreeMap<String, u64>,
    durable: BTreeMap<String, u64>,
}

/// ENOSPC ("No space left on device") on Linux and the BSDs.
fn libc_enospc() -> i32 {
    28
}

fn power_lost() -> io::Error {
    io::Error::other("simulated power loss")
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{}: no such file", path.display()))
}

fn split(path: &Path) -> io::Result<(&Path, String)> {
    match (path.parent(), path.file_name().and_then(|n| n.to_str())) {
        (Some(parent), Some(name)) => Ok((parent, name.to_owned())),
        _ => Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{}: not a file path", path.display()))),
    }
}

impl State {
    fn check_power(&self) -> io::Result<()> {
        if self.power_lost { Err(power_lost()) } else { Ok(()) }
    }

    /// Counts one durability barrier; fails from the configured one on.
    fn sync_point(&mut self) -> io::Result<()> {
        self.check_power()?;
        self.sync_points += 1;
        if self.fail_after.is_some_and(|n| self.sync_points > n) {
            self.power_lost = true;
            return Err(power_lost());
        }
        Ok(())
    }

    fn dir_mut(&mut self, dir: &Path) -> io::Result<&mut SimDir> {
        self.dirs.get_mut(dir).ok_or_else(|| not_found(dir))
    }

    fn inode(&self, path: &Path) -> io::Result<u64> {
        let (dir, name) = split(path)?;
        self.dirs.get(dir).and_then(|d| d.live.get(&name)).copied().ok_or_else(|| not_found(path))
    }

    fn file(&self, path: &Path) -> io::Result<&SimFile> {
        let inode = self.inode(path)?;
        self.files.get(&inode).ok_or_else(|| not_found(path))
    }
}

impl SimFs {
    /// Limits the disk to `bytes` of file data (`None`: unlimited); appends
    /// past it write what fits and fail with ENOSPC, as a full disk does.
    pub fn set_space(&self, bytes: Option<u64>) {
        self.state.lock().space = bytes;
    }

    /// Bytes of file data on the disk now.
    pub fn used_bytes(&self) -> u64 {
        self.state.lock().files.values().map(|f| f.data.len() as u64).sum()
    }

    /// An empty disk.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cuts the power at sync point `n + 1`: the first `n` barriers succeed,
    /// the next one and every later mutation fail. `None` disarms.
    pub fn fail_after_syncs(&self, n: Option<u64>) {
        self.state.lock().fail_after = n;
    }

    /// Durability barriers (file syncs, directory syncs, truncates) attempted
    /// so far, including the one that failed.
    pub fn sync_points(&self) -> u64 {
        self.state.lock().sync_points
    }

    /// File syncs that succeeded so far (the fsyncs a WAL paid for).
    pub fn file_syncs(&self) -> u64 {
        self.state.lock().file_syncs
    }

    /// Whether a configured power cut has happened.
    pub fn power_lost(&self) -> bool {
        self.state.lock().power_lost
    }

    /// Makes every file sync take `delay` (without blocking other
    /// operations), like a real disk; used to observe group commit.
    pub fn set_sync_delay(&self, delay: Duration) {
        self.state.lock().sync_delay = delay;
    }

    /// Simulates a power cut and reboot: non-durable directory entries and
    /// file bytes are lost. With `torn_seed`, each file keeps a pseudo-random
    /// prefix of its unsynced bytes (a torn write). Open handles die; the
    /// power comes back on and the sync-point counter restarts at zero.
    pub fn crash(&self, torn_seed: Option<u64>) {
        let mut st = self.state.lock();
        let mut rng = torn_seed.map(|s| s.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        st.epoch += 1;
        st.power_lost = false;
        st.fail_after = None;
        st.sync_points = 0;
        st.file_syncs = 0;
        let mut reachable = std::collections::HashSet::new();
        for dir in st.dirs.values_mut() {
            dir.live = dir.durable.clone();
            reachable.extend(dir.live.values().copied());
        }
        st.files.retain(|inode, _| reachable.contains(inode));
        let mut inodes: Vec<u64> = st.files.keys().copied().collect();
        inodes.sort_unstable();
        for inode in inodes {
            if let Some(file) = st.files.get_mut(&inode) {
                let unsynced = file.data.len() - file.durable_len;
                let keep = match rng.as_mut() {
                    Some(x) if unsynced > 0 => {
                        // xorshift64
                        *x ^= *x << 13;
                        *x ^= *x >> 7;
                        *x ^= *x << 17;
                        (*x % (unsynced as u64 + 1)) as usize
                    }
                    _ => 0,
                };
                file.data.truncate(file.durable_len + keep);
                file.durable_len = file.data.len();
            }
        }
    }

    /// Flips bit `bit` (0..8) of the byte at `offset` in a file, durably.
    pub fn flip_bit(&self, path: &Path, offset: usize, bit: u8) -> io::Result<()> {
        let mut st = self.state.lock();
        let inode = st.inode(path)?;
        let file = st.files.get_mut(&inode).ok_or_else(|| not_found(path))?;
        let byte = file.data.get_mut(offset).ok_or_else(|| io::Error::other("offset past end of file"))?;
        *byte ^= 1 << (bit % 8);
        Ok(())
    }

    /// Writes `bytes` at `offset` of an existing file (extending it), durably;
    /// for tests that forge damaged files.
    pub fn overwrite(&self, path: &Path, offset: usize, bytes: &[u8]) -> io::Result<()> {
        let mut st = self.state.lock();
        let inode = st.inode(path)?;
        let file = st.files.get_mut(&inode).ok_or_else(|| not_found(path))?;
        if file.data.len() < offset + bytes.len() {
            file.data.resize(offset + bytes.len(), 0);
        }
        file.data[offset..offset + bytes.len()].copy_from_slice(bytes);
        file.durable_len = file.data.len();
        Ok(())
    }
}

#[derive(Debug)]
struct SimHandle {
    state: Arc<Mutex<State>>,
    inode: u64,
    epoch: u64,
}

impl SimHandle {
    fn live<'a>(&self, st: &'a mut State) -> io::Result<&'a mut SimFile> {
        if st.epoch != self.epoch {
            return Err(io::Error::other("file handle from before a simulated crash"));
        }
        st.files.get_mut(&self.inode).ok_or_else(|| io::Error::other("file removed"))
    }
}

impl FileHandle for SimHandle {
    fn append(&self, buf: &[u8]) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check_power()?;
        if let Some(space) = st.space {
            let used: u64 = st.files.values().map(|f| f.data.len() as u64).sum();
            let room = space.saturating_sub(used) as usize;
            if buf.len() > room {
                // Like a real short write: what fits lands, then ENOSPC.
                self.live(&mut st)?.data.extend_from_slice(&buf[..room]);
                return Err(io::Error::from_raw_os_error(libc_enospc()));
            }
        }
        self.live(&mut st)?.data.extend_from_slice(buf);
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        // Only the length at the start of the sync becomes durable: bytes
        // appended while the (simulated) disk is busy need the next sync.
        let (len_at_start, delay) = {
            let mut st = self.state.lock();
            let len = self.live(&mut st)?.data.len();
            (len, st.sync_delay)
        };
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let mut st = self.state.lock();
        st.sync_point()?;
        let file = self.live(&mut st)?;
        file.durable_len = file.durable_len.max(len_at_start.min(file.data.len()));
        st.file_syncs += 1;
        Ok(())
    }
}

impl Fs for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check_power()?;
        for ancestor in dir.ancestors() {
            if ancestor.as_os_str().is_empty() {
                break;
            }
            st.dirs.entry(ancestor.to_path_buf()).or_default();
        }
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let st = self.state.lock();
        let d = st.dirs.get(dir).ok_or_else(|| not_found(dir))?;
        Ok(d.live.keys().cloned().collect())
    }

    fn list_subdirs(&self, dir: &Path) -> io::Result<Vec<String>> {
        let st = self.state.lock();
        if !st.dirs.contains_key(dir) {
            return Err(not_found(dir));
        }
        Ok(st
            .dirs
            .keys()
            .filter(|d| d.parent() == Some(dir))
            .filter_map(|d| d.file_name().and_then(|n| n.to_str()).map(str::to_owned))
            .collect())
    }

    /// Directory creation and removal are durable at once in the simulation
    /// (like `mkdir`/`rmdir` followed by an fsync of the parent).
    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check_power()?;
        let d = st.dirs.get(dir).ok_or_else(|| not_found(dir))?;
        if !d.live.is_empty() || st.dirs.keys().any(|k| k.parent() == Some(dir)) {
            return Err(io::Error::other(format!("{}: directory not empty", dir.display())));
        }
        st.dirs.remove(dir);
        Ok(())
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn FileHandle>> {
        let (dir, name) = split(path)?;
        let mut st = self.state.lock();
        st.check_power()?;
        st.dir_mut(dir)?;
        let inode = st.next_inode;
        st.next_inode += 1;
        st.files.insert(inode, SimFile::default());
        st.dir_mut(dir)?.live.insert(name, inode);
        Ok(Arc::new(SimHandle { state: Arc::clone(&self.state), inode, epoch: st.epoch }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Arc<dyn FileHandle>> {
        let st = self.state.lock();
        st.check_power()?;
        let inode = st.inode(path)?;
        Ok(Arc::new(SimHandle { state: Arc::clone(&self.state), inode, epoch: st.epoch }))
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        Ok(self.state.lock().file(path)?.data.len() as u64)
    }

    fn read_exact_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let st = self.state.lock();
        let data = &st.file(path)?.data;
        let start = usize::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        let src = data.get(start..start + buf.len()).ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut st = self.state.lock();
        st.sync_point()?;
        let inode = st.inode(path)?;
        let file = st.files.get_mut(&inode).ok_or_else(|| not_found(path))?;
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        file.data.resize(len, 0);
        file.durable_len = len;
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (from_dir, from_name) = split(from)?;
        let (to_dir, to_name) = split(to)?;
        let mut st = self.state.lock();
        st.check_power()?;
        st.dir_mut(to_dir)?;
        let inode = st.dir_mut(from_dir)?.live.remove(&from_name).ok_or_else(|| not_found(from))?;
        st.dir_mut(to_dir)?.live.insert(to_name, inode);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let (dir, name) = split(path)?;
        let mut st = self.state.lock();
        st.check_power()?;
        st.dir_mut(dir)?.live.remove(&name).ok_or_else(|| not_found(path))?;
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.sync_point()?;
        let d = st.dir_mut(dir)?;
        d.durable = d.live.clone();
        Ok(())
    }
}
