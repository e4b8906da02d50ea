//! The YAML files kept under `__gregor_metadata/` (SCRAM credentials, ACLs, group configs): read
//! whole at start-up, rewritten whole and atomically (`Storage::write_atomically`) before a
//! change takes effect. `docs/storage-format.md` describes each.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::storage::Storage;

/// Why such a file could not be read or written; names the file.
#[derive(Debug)]
pub struct MetadataFileError {
    pub path: PathBuf,
    pub message: String,
}

impl MetadataFileError {
    pub fn new(path: &Path, message: impl Into<String>) -> MetadataFileError {
        MetadataFileError {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for MetadataFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for MetadataFileError {}

/// The entries of `path`, or none if it does not exist.
pub fn read<T: DeserializeOwned>(
    storage: &dyn Storage,
    path: &Path,
) -> Result<Vec<T>, MetadataFileError> {
    if !storage.exists(path) {
        return Ok(Vec::new());
    }
    let text = storage
        .read_to_string(path)
        .map_err(|e| MetadataFileError::new(path, e.to_string()))?;
    serde_yaml::from_str(&text).map_err(|e| MetadataFileError::new(path, e.to_string()))
}

/// Replaces `path` with `entries`, durably.
pub fn write<T: Serialize>(
    storage: &dyn Storage,
    path: &Path,
    entries: &[T],
) -> Result<(), MetadataFileError> {
    let text =
        serde_yaml::to_string(entries).map_err(|e| MetadataFileError::new(path, e.to_string()))?;
    storage
        .write_atomically(path, text.as_bytes())
        .map_err(|e| MetadataFileError::new(path, e.to_string()))
}
