//! [`Storage`] on the real file system. Writes are vectored (`pwritev`), so an append can
//! write a patched batch header and the client's bytes without first copying them together.

// unsafe is denied crate-wide (Cargo.toml [lints]); allowed here because pwritev,
// posix_fadvise, sendfile and statvfs have no safe std equivalent.
#![allow(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{FileRef, OpenMode, Storage, StorageFile};

/// The operating system's file system. Stateless.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileSystem;

#[derive(Debug)]
struct RealFile(File);

/// At most this many buffers per `pwritev` call (Linux's IOV_MAX is 1024).
const MAX_IOVECS: usize = 512;

impl StorageFile for RealFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, pos)
    }

    fn read_vec_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf: Vec<u8> = Vec::with_capacity(len);
        while buf.len() < len {
            let at = buf.len();
            let offset = libc::off_t::try_from(pos + at as u64).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidInput, "file offset too large")
            })?;
            // SAFETY: the kernel writes at most `len - at` bytes into the vector's spare
            // capacity, which is at least that large; the descriptor is owned by self.0.
            let n = unsafe {
                libc::pread(
                    self.0.as_raw_fd(),
                    buf.as_mut_ptr().add(at).cast::<libc::c_void>(),
                    len - at,
                    offset,
                )
            };
            match n {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n if n < 0 => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
                // SAFETY: pread initialised the `n` bytes after the first `at`.
                n => unsafe { buf.set_len(at + n as usize) },
            }
        }
        Ok(buf)
    }

    fn write_all_at(&self, bufs: &[&[u8]], pos: u64) -> io::Result<()> {
        let mut pos = pos;
        // (index of the first unwritten buffer, bytes of it already written)
        let (mut first, mut skip) = (0usize, 0usize);
        loop {
            while first < bufs.len() && bufs[first].len() == skip {
                first += 1;
                skip = 0;
            }
            if first == bufs.len() {
                return Ok(());
            }
            let mut iov = Vec::with_capacity((bufs.len() - first).min(MAX_IOVECS));
            for (i, b) in bufs[first..].iter().take(MAX_IOVECS).enumerate() {
                let b = if i == 0 { &b[skip..] } else { b };
                iov.push(libc::iovec {
                    iov_base: b.as_ptr() as *mut libc::c_void,
                    iov_len: b.len(),
                });
            }
            let offset = libc::off_t::try_from(pos).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidInput, "file offset too large")
            })?;
            // SAFETY: every iovec points into a live borrowed slice of its stated length,
            // and the file descriptor is owned by `self.0` for the whole call.
            let written = unsafe {
                libc::pwritev(
                    self.0.as_raw_fd(),
                    iov.as_ptr(),
                    iov.len() as libc::c_int,
                    offset,
                )
            };
            if written < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if written == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "pwritev wrote nothing",
                ));
            }
            let mut left = written as usize;
            pos += left as u64;
            // Advance past what was written (a short write resumes mid-buffer).
            while first < bufs.len() && left > 0 {
                let rest = bufs[first].len() - skip;
                if left >= rest {
                    left -= rest;
                    first += 1;
                    skip = 0;
                } else {
                    skip += left;
                    left = 0;
                }
            }
        }
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn send_to(&self, socket: BorrowedFd<'_>, pos: u64, len: usize) -> Option<io::Result<usize>> {
        let Ok(mut offset) = libc::off_t::try_from(pos) else {
            return Some(Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "file offset too large",
            )));
        };
        // SAFETY: both descriptors stay open for the call (`self.0` owns the file, `socket`
        // is borrowed), and `offset` is a live local the kernel advances.
        let sent =
            unsafe { libc::sendfile(socket.as_raw_fd(), self.0.as_raw_fd(), &raw mut offset, len) };
        Some(if sent < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(sent as usize)
        })
    }

    fn prefetch(&self, start: u64, len: u64) {
        self.advise(start, len, libc::POSIX_FADV_WILLNEED);
    }

    fn evict(&self, start: u64, len: u64) {
        self.advise(start, len, libc::POSIX_FADV_DONTNEED);
    }
}

impl RealFile {
    /// Page-cache advice for a range (`posix_fadvise`); advice only, so its result is not
    /// an error anyone could act on.
    fn advise(&self, start: u64, len: u64, advice: libc::c_int) {
        // SAFETY: posix_fadvise only reads its arguments; the descriptor is owned by self.0.
        unsafe {
            libc::posix_fadvise(
                self.0.as_raw_fd(),
                start as libc::off_t,
                len as libc::off_t,
                advice,
            );
        }
    }
}

impl Storage for FileSystem {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<FileRef> {
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        match mode {
            OpenMode::Truncate => options.create(true).truncate(true),
            OpenMode::CreateOrOpen => options.create(true).truncate(false),
            OpenMode::Existing => &mut options,
        };
        Ok(Arc::new(RealFile(options.open(path)?)))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir)? {
            out.push(entry?.path());
        }
        out.sort();
        Ok(out)
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::remove_dir_all(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// (total, available to unprivileged users) bytes of the file system holding `path`
/// (`statvfs`), or `None` if it cannot be asked.
pub fn disk_space(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated path and `stat` points to writable memory of the
    // right size; statvfs fills it completely when it returns 0.
    let stat = unsafe {
        if libc::statvfs(c.as_ptr(), stat.as_mut_ptr()) != 0 {
            return None;
        }
        stat.assume_init()
    };
    let block = stat.f_frsize as u64;
    Some((
        (stat.f_blocks as u64).saturating_mul(block),
        (stat.f_bavail as u64).saturating_mul(block),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectored_writes_land_in_order_at_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = FileSystem.open(&path, OpenMode::Truncate).unwrap();
        file.write_all_at(&[b"hello", b"", b" ", b"world"], 3)
            .unwrap();
        let many: Vec<[u8; 1]> = (0..2000u32).map(|i| [b'a' + (i % 26) as u8]).collect();
        let refs: Vec<&[u8]> = many.iter().map(|b| &b[..]).collect();
        file.write_all_at(&refs, 14).unwrap();
        let bytes = FileSystem.read(&path).unwrap();
        assert_eq!(&bytes[..14], b"\0\0\0hello world");
        assert_eq!(bytes.len(), 14 + 2000);
        assert!(bytes[14..]
            .iter()
            .enumerate()
            .all(|(i, b)| *b == b'a' + (i % 26) as u8));
        let mut buf = [0u8; 5];
        file.read_exact_at(&mut buf, 9).unwrap();
        assert_eq!(&buf, b"world");
        assert!(file.read_exact_at(&mut buf, 2012).is_err());
    }
}
