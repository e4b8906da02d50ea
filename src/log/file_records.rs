//! `Records`: the whole stored batches a read returns, either read into memory or left in
//! their segment file as `FileRecords` (Kafka's `FileRecords.slice`), which the connection
//! sends from the file to the socket (`sendfile`) or, where it can't, reads once.

use std::path::PathBuf;

use bytes::Bytes;

use super::segment::read_bytes_at;
use super::{io_err, LogError};
use crate::storage::FileRef;

/// `len` bytes at `position` of a segment file. Segments only grow at the end, and a file
/// that is replaced or deleted stays readable through its open handle, so the range keeps
/// its bytes after the log's lock is released. Only a cut-back after a failed fsync
/// shortens a file, and in durable mode never below the high watermark (non-durable logs
/// are not read as ranges, `Log::read_records`); a range that still ends early makes its
/// sender give up (a connection closes: the response promised those bytes).
#[derive(Debug, Clone)]
pub struct FileRecords {
    pub file: Option<FileRef>,
    pub path: PathBuf,
    pub position: u64,
    pub len: usize,
    /// Bytes of the range before this file position are far behind the log's end: once
    /// sent, their page cache is released, so that a reader catching up does not push the
    /// data of readers at the end out of memory.
    pub cold_before: u64,
}

impl FileRecords {
    /// No records.
    pub fn empty() -> FileRecords {
        FileRecords {
            file: None,
            path: PathBuf::new(),
            position: 0,
            len: 0,
            cold_before: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The bytes, read from the file.
    pub fn read_bytes(&self) -> Result<Bytes, LogError> {
        match &self.file {
            Some(file) if self.len > 0 => {
                let bytes = read_bytes_at(file.as_ref(), self.position, self.len)
                    .map_err(io_err(&self.path))?;
                self.sent();
                Ok(bytes)
            }
            _ => Ok(Bytes::new()),
        }
    }

    /// Releases the page cache of the cold part of the range (called once it was sent).
    pub fn sent(&self) {
        let end = (self.position + self.len as u64).min(self.cold_before);
        if let (Some(file), true) = (&self.file, end > self.position) {
            file.evict(self.position, end - self.position);
        }
    }
}

/// The records of a read.
#[derive(Debug, Clone)]
pub enum Records {
    /// Read into memory (the read already released their page cache if cold).
    Bytes(Bytes),
    /// Still in their file.
    File(FileRecords),
}

impl Records {
    pub fn len(&self) -> usize {
        match self {
            Records::Bytes(b) => b.len(),
            Records::File(f) => f.len(),
        }
    }

    /// The bytes, read from the file if they are still there.
    pub fn into_bytes(self) -> Result<Bytes, LogError> {
        match self {
            Records::Bytes(b) => Ok(b),
            Records::File(f) => f.read_bytes(),
        }
    }
}
