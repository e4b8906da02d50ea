//! All file I/O of the segment store goes through the small [`Storage`] trait: segments,
//! indexes, snapshots, checkpoints and metadata files. Production uses [`FileSystem`]
//! (positional reads and vectored writes on real files); tests use
//! `simulated::SimulatedStorage`, an in-memory file system that remembers what was fsynced
//! and can fail a write, fail or forget an fsync, run out of space, or stop the world at the
//! N-th operation and then "lose power" (keep only what was made durable).
//!
//! The durability contract the code is written against is POSIX's, taken strictly:
//! - a file's bytes are durable after `sync_data` on it;
//! - a file's *name* (creation, rename, removal) is durable after `sync_dir` on its parent
//!   directory, and a new directory's name after `sync_dir` on its parent.
//!
//! Synchronisation: implementations are shared as `Arc<dyn Storage>` and must be callable
//! from any thread; `FileSystem` has no state, the simulation keeps its state behind a mutex.

mod file_system;
#[cfg(any(test, fuzzing))]
pub mod simulated;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use file_system::{disk_space, FileSystem};

/// An open file: positional reads and writes, so many readers can share one handle.
pub trait StorageFile: Send + Sync + fmt::Debug {
    /// The file's length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Fills `buf` from `pos`; an error if the file ends first.
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()>;
    /// `len` bytes from `pos` in a new buffer; an error if the file ends first. (The real
    /// file system reads into the buffer without zeroing it first.)
    fn read_vec_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; len];
        self.read_exact_at(&mut buf, pos)?;
        Ok(buf)
    }
    /// Writes all of `bufs`, one after another, starting at `pos`. On an error some prefix
    /// may have been written; the caller cuts it off.
    fn write_all_at(&self, bufs: &[&[u8]], pos: u64) -> io::Result<()>;
    /// Truncates or extends the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes the file's bytes durable (fdatasync).
    fn sync_data(&self) -> io::Result<()>;
    /// Sends up to `len` bytes from `pos` to a socket without copying them through user
    /// space (`sendfile`); the number sent, which is short (or an error, `WouldBlock` on a
    /// full non-blocking socket) like a socket write. `None` if this file cannot (it is not
    /// a kernel file): the caller reads and writes instead.
    fn send_to(
        &self,
        _socket: std::os::fd::BorrowedFd<'_>,
        _pos: u64,
        _len: usize,
    ) -> Option<io::Result<usize>> {
        None
    }
    /// Tells the OS the bytes in `start..start + len` will be read soon, so that it reads
    /// what is not cached in one go, whatever order the reads then come in. Advice only.
    fn prefetch(&self, _start: u64, _len: u64) {}
    /// Tells the OS the bytes in `start..start + len` (already synced) will not be read
    /// soon, so their page cache can be reused. Advice only: nothing changes on disk.
    fn evict(&self, _start: u64, _len: u64) {}
}

/// A shared open file.
pub type FileRef = Arc<dyn StorageFile>;

/// How to open a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create it, or empty it if it exists.
    Truncate,
    /// Create it if missing, keep its contents otherwise.
    CreateOrOpen,
    /// It must exist.
    Existing,
}

/// The file system operations the broker uses.
pub trait Storage: Send + Sync + fmt::Debug {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<FileRef>;
    /// A whole file's contents.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    fn exists(&self, path: &Path) -> bool;
    fn is_dir(&self, path: &Path) -> bool;
    /// The entries of a directory (full paths), sorted by name.
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Makes the names in `dir` durable (fsync of the directory).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

impl dyn Storage + '_ {
    /// A whole file as UTF-8 text.
    pub fn read_to_string(&self, path: &Path) -> io::Result<String> {
        String::from_utf8(self.read(path)?)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Replaces `path` with `bytes` atomically and durably: a temp file is written and
    /// fsynced, renamed over `path`, and the directory fsynced. The temp file's name is
    /// `path`'s with `.tmp`, as Kafka's: callers serialise their writes of one `path`.
    pub fn write_atomically(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let tmp = path.with_extension("tmp");
        let file = self.open(&tmp, OpenMode::Truncate)?;
        file.write_all_at(&[bytes], 0)?;
        file.sync_data()?;
        drop(file);
        self.rename(&tmp, path)?;
        self.sync_dir(dir)
    }

    /// Creates `dir` (and missing parents) and makes its name durable.
    pub fn create_dir_durably(&self, dir: &Path) -> io::Result<()> {
        let existed = self.is_dir(dir);
        self.create_dir_all(dir)?;
        match dir.parent() {
            Some(parent) if !existed && !parent.as_os_str().is_empty() => self.sync_dir(parent),
            _ => Ok(()),
        }
    }
}

/// The real file system, shared.
pub fn file_system() -> Arc<dyn Storage> {
    Arc::new(FileSystem)
}
