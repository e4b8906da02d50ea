//! Loading a partition's log at start-up (Kafka's `LogLoader`): find the segments, recover
//! those that may hold data written after the last recovery point (CRC check, index rebuild,
//! torn tail truncated), drop segments that follow a truncation, and fsync what recovery
//! kept so it is durable before anyone reads it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::file_names::{self, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX};
use super::producer_state::{self, AbortedTxn, ProducerStateManager};
use super::records::control_marker;
use super::segment::{read_bytes_at, read_header_at, LogSegment};
use super::segments::LogSegments;
use super::transaction_index::read_txn_indexes;
use super::{io_err, now_ms, Log, LogError, TopicPartition};
use crate::config::LogConfig;
use crate::storage::Storage;

/// What loading did, for the start-up log line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LoadReport {
    pub segments: usize,
    pub recovered_segments: usize,
    pub truncated_bytes: u64,
    pub deleted_segments: usize,
}

/// Everything a `Log` is built from.
pub(super) struct LoadedLog {
    pub storage: Arc<dyn Storage>,
    pub tp: TopicPartition,
    pub dir: PathBuf,
    pub config: LogConfig,
    /// Never empty.
    pub segments: LogSegments,
    pub log_start_offset: i64,
    pub producers: ProducerStateManager,
    pub aborted: Vec<AbortedTxn>,
}

/// Where recovery starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryStart {
    /// The broker stopped cleanly: trust every segment (indexes are still sanity-checked).
    CleanShutdown,
    /// After a crash: rescan segments that may hold offsets at or past this point.
    From(i64),
}

/// Producer state: the newest valid snapshot at or below the log end, then every batch
/// header after it (Kafka's snapshot + replay). Also returns the transactions aborted in
/// the replayed part. A snapshot that fails its checks is skipped (an older one, or the
/// replay, covers it); a file that can't be read is an error naming it, never a replay
/// that stops early with partial state.
pub(super) fn rebuild_producer_state(
    storage: &dyn Storage,
    dir: &Path,
    segments: &LogSegments,
) -> Result<(ProducerStateManager, Vec<AbortedTxn>), LogError> {
    let log_end = segments
        .active()
        .map_or(0, super::segment::LogSegment::next_offset);
    let mut state = ProducerStateManager::default();
    let mut aborted = Vec::new();
    let mut from = segments.first_base().unwrap_or(0);
    let snapshots = producer_state::list_snapshots(storage, dir).map_err(io_err(dir))?;
    for (offset, path) in snapshots.iter().rev() {
        if *offset > log_end {
            // The log was truncated below this snapshot: it describes data that is gone,
            // and must not be taken for the truth once the log grows past it again.
            storage.remove_file(path).map_err(io_err(path))?;
            continue;
        }
        let bytes = storage.read(path).map_err(io_err(path))?;
        if let Some((o, s)) = ProducerStateManager::decode(&bytes) {
            state = s;
            from = o;
            break;
        }
    }
    for segment in segments.iter() {
        if segment.next_offset() <= from {
            continue;
        }
        let file = segment.file();
        let path = file_names::log_file(dir, segment.base_offset());
        let mut pos = if from > segment.base_offset() {
            segment.offset_index().lookup(from).1 as u64
        } else {
            0
        };
        while let Some(h) =
            read_header_at(file.as_ref(), pos, segment.size()).map_err(io_err(&path))?
        {
            if h.base_offset >= from {
                if h.is_control() {
                    let bytes =
                        read_bytes_at(file.as_ref(), pos, h.size()).map_err(io_err(&path))?;
                    if let Some(commit) = control_marker(&bytes) {
                        if let Some(a) = state.end_txn(&h, commit) {
                            aborted.push(a);
                        }
                    }
                } else {
                    state.update(&h);
                }
            }
            pos += h.size() as u64;
        }
    }
    state.forget_undo(log_end);
    Ok((state, aborted))
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Leftovers of a cleaning interrupted by a crash (see `compaction.rs`). `.cleaned` files
/// were never promised to anyone: removed. A `.log.swap` is a complete, fsynced cleaned
/// segment: every segment it covers (its base up to the offset after its last batch, which
/// is the end of the segments it replaces) goes, whatever name it has by now, and the swap
/// files take their final names. A swap is stale, and removed instead, if a segment it
/// would cover ends past it (only possible if undoing a failed swap failed too, and later
/// cleanings moved on). Index or transaction-index swaps without their log swap are
/// removed. Renames are durable only with their directory, so after a crash a swapped-in
/// `.log` may sit beside the old segment's indexes: every segment with such leftovers has
/// its `.index` and `.timeindex` rebuilt from its log.
fn finish_cleaner_swaps(storage: &dyn Storage, dir: &Path) -> Result<(), LogError> {
    let entries = storage.list(dir).map_err(io_err(dir))?;
    let mut swaps = Vec::new();
    let mut touched = std::collections::BTreeSet::new();
    for path in &entries {
        let name = name_of(path);
        let leftover = [
            file_names::CLEANED_SUFFIX,
            file_names::SWAP_SUFFIX,
            file_names::DELETED_SUFFIX,
        ]
        .iter()
        .any(|suffix| name.ends_with(suffix));
        if leftover {
            if let Some(base) = segment_base_of(&name) {
                touched.insert(base);
            }
        }
        if name.ends_with(file_names::CLEANED_SUFFIX) {
            storage.remove_file(path).map_err(io_err(path))?;
        } else if let Some(base) = file_names::parse_swap_log_file_name(&name) {
            swaps.push((base, path.clone()));
        }
    }
    for (base, swap) in &swaps {
        let end = segment_end(storage, swap, *base)?;
        let mut covered = Vec::new();
        let mut stale = false;
        for path in storage.list(dir).map_err(io_err(dir))? {
            let name = name_of(&path);
            let Some(b) = segment_base_of(&name) else {
                continue;
            };
            if name.ends_with(file_names::SWAP_SUFFIX) || !(*base..end.max(base + 1)).contains(&b) {
                continue;
            }
            let kind = name
                .strip_suffix(file_names::DELETED_SUFFIX)
                .unwrap_or(&name);
            if kind.ends_with(LOG_SUFFIX) && segment_end(storage, &path, b)? > end {
                stale = true;
            }
            covered.push(path);
        }
        if stale {
            tracing::warn!(dir = %dir.display(), base_offset = base, "removing a stale cleaned segment: the segments it would replace have changed since");
            for final_name in file_names::segment_files(dir, *base) {
                let swap = file_names::with_suffix(&final_name, file_names::SWAP_SUFFIX);
                if storage.exists(&swap) {
                    storage.remove_file(&swap).map_err(io_err(&swap))?;
                }
            }
            continue;
        }
        for path in covered {
            storage.remove_file(&path).map_err(io_err(&path))?;
        }
        for final_name in file_names::segment_files(dir, *base).iter().rev() {
            let swap = file_names::with_suffix(final_name, file_names::SWAP_SUFFIX);
            if storage.exists(&swap) {
                storage.rename(&swap, final_name).map_err(io_err(&swap))?;
            }
        }
        tracing::info!(dir = %dir.display(), base_offset = base, "finished swapping in a cleaned segment");
    }
    for path in storage.list(dir).map_err(io_err(dir))? {
        if name_of(&path).ends_with(file_names::SWAP_SUFFIX) {
            storage.remove_file(&path).map_err(io_err(&path))?;
        }
    }
    for base in &touched {
        if storage.exists(&file_names::log_file(dir, *base)) {
            for index in [
                file_names::index_file(dir, *base),
                file_names::time_index_file(dir, *base),
            ] {
                if storage.exists(&index) {
                    storage.remove_file(&index).map_err(io_err(&index))?;
                }
            }
        }
    }
    if !touched.is_empty() {
        storage.sync_dir(dir).map_err(io_err(dir))?;
    }
    Ok(())
}

/// The base offset in a segment file's name (20 digits, then a suffix).
fn segment_base_of(name: &str) -> Option<i64> {
    let (stem, rest) = name.split_at_checked(20)?;
    if !rest.starts_with('.') || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let kind = rest
        .strip_suffix(file_names::DELETED_SUFFIX)
        .unwrap_or(rest);
    let kind = kind.strip_suffix(file_names::SWAP_SUFFIX).unwrap_or(kind);
    let kind = kind
        .strip_suffix(file_names::CLEANED_SUFFIX)
        .unwrap_or(kind);
    [
        LOG_SUFFIX,
        INDEX_SUFFIX,
        TIME_INDEX_SUFFIX,
        TXN_INDEX_SUFFIX,
    ]
    .contains(&kind)
    .then(|| stem.parse().ok())
    .flatten()
}

/// The offset after the last batch of the log file at `path` (`base` if it has none),
/// by walking its batch headers.
fn segment_end(storage: &dyn Storage, path: &Path, base: i64) -> Result<i64, LogError> {
    let file = storage
        .open(path, crate::storage::OpenMode::Existing)
        .map_err(io_err(path))?;
    let size = file.len().map_err(io_err(path))?;
    let (mut pos, mut end) = (0u64, base);
    while let Some(h) = read_header_at(file.as_ref(), pos, size).map_err(io_err(path))? {
        end = h.next_offset();
        pos += h.size() as u64;
    }
    Ok(end)
}

/// Opens (or creates) the log in `dir`.
pub fn load_log(
    storage: &Arc<dyn Storage>,
    tp: TopicPartition,
    dir: PathBuf,
    config: LogConfig,
    recovery: RecoveryStart,
    checkpointed_log_start: i64,
) -> Result<(Log, LoadReport), LogError> {
    storage.create_dir_all(&dir).map_err(io_err(&dir))?;
    finish_cleaner_swaps(storage.as_ref(), &dir)?;
    let entries = storage.list(&dir).map_err(io_err(&dir))?;
    let mut bases: Vec<i64> = entries
        .iter()
        .filter_map(|p| file_names::parse_log_file_name(&name_of(p)))
        .collect();
    bases.sort_unstable();
    for path in &entries {
        let name = name_of(path);
        // Files of a segment deletion interrupted by a crash.
        if name.ends_with(file_names::DELETED_SUFFIX) {
            storage.remove_file(path).map_err(io_err(path))?;
            continue;
        }
        // Index files without their log are leftovers of an interrupted roll or delete.
        let stem = name
            .strip_suffix(INDEX_SUFFIX)
            .or_else(|| name.strip_suffix(TIME_INDEX_SUFFIX))
            .or_else(|| name.strip_suffix(TXN_INDEX_SUFFIX));
        if let Some(stem) = stem {
            if !storage.exists(&dir.join(format!("{stem}{LOG_SUFFIX}"))) {
                storage.remove_file(path).map_err(io_err(path))?;
            }
        }
    }

    let mut report = LoadReport::default();
    let mut segments = LogSegments::default();
    let now = now_ms();
    let mut truncated_at: Option<usize> = None;
    for (i, &base) in bases.iter().enumerate() {
        // A cleaned segment whose swap was renamed into place before all the segments it
        // replaces were: those left over start inside it, and go.
        if segments.active().is_some_and(|s| s.next_offset() > base) {
            for path in file_names::segment_files(&dir, base) {
                if storage.exists(&path) {
                    storage.remove_file(&path).map_err(io_err(&path))?;
                }
            }
            report.deleted_segments += 1;
            storage.sync_dir(&dir).map_err(io_err(&dir))?;
            continue;
        }
        let next_base = bases.get(i + 1).copied().unwrap_or(i64::MAX);
        let recover_from = match recovery {
            RecoveryStart::CleanShutdown => None,
            RecoveryStart::From(point) => (next_base > point).then_some(point),
        };
        let (segment, result) = LogSegment::open(
            storage,
            &dir,
            base,
            recover_from,
            config.index_interval_bytes,
            now,
        )
        .map_err(io_err(&file_names::log_file(&dir, base)))?;
        if let Some(result) = result {
            report.recovered_segments += 1;
            report.truncated_bytes += result.truncated_bytes;
            if result.truncated_bytes > 0 {
                tracing::warn!(
                    partition = %tp,
                    segment = base,
                    bytes = result.truncated_bytes,
                    "truncated invalid bytes at the end of a segment"
                );
            }
            // What recovery kept past the recovery point (or cut) must be durable before
            // it is served and the new recovery point is checkpointed. Below the recovery
            // point nothing changed, and rewritten index entries there are re-checked at
            // the next recovery.
            let point = recover_from.unwrap_or(i64::MAX);
            if result.truncated_bytes > 0 || segment.next_offset() > point {
                for handle in segment.sync_handles() {
                    handle.sync_data().map_err(io_err(segment.path()))?;
                }
            }
        }
        let cut = result.is_some_and(|r| r.truncated_bytes > 0);
        segments.add(segment);
        if cut {
            truncated_at = Some(i);
            break;
        }
    }
    // Segments after a truncation follow a hole: remove them, as Kafka does.
    if let Some(i) = truncated_at {
        for &base in &bases[i + 1..] {
            for path in file_names::segment_files(&dir, base) {
                if storage.exists(&path) {
                    storage.remove_file(&path).map_err(io_err(&path))?;
                }
            }
            report.deleted_segments += 1;
        }
        storage.sync_dir(&dir).map_err(io_err(&dir))?;
    }
    if segments.is_empty() {
        let segment = LogSegment::create(storage, &dir, 0).map_err(io_err(&dir))?;
        storage.sync_dir(&dir).map_err(io_err(&dir))?;
        segments.add(segment);
    }
    report.segments = segments.len();
    // DeleteRecords may have moved the start past the first segment's base.
    let log_start_offset = segments
        .first_base()
        .unwrap_or(0)
        .max(checkpointed_log_start);
    let (producers, replayed_aborts) = rebuild_producer_state(storage.as_ref(), &dir, &segments)?;
    let mut aborted = read_txn_indexes(storage.as_ref(), &dir, &segments)?;
    for a in replayed_aborts {
        if !aborted.contains(&a) {
            aborted.push(a);
        }
    }
    aborted.retain(|a| a.last_offset >= log_start_offset);
    aborted.sort_by_key(|a| a.last_offset);
    Ok((
        Log::from_loaded(LoadedLog {
            storage: storage.clone(),
            tp,
            dir,
            config,
            segments,
            log_start_offset,
            producers,
            aborted,
        }),
        report,
    ))
}
