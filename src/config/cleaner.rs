//! The log cleaner's broker settings (Kafka's `CleanerConfig`): whether it runs, how many
//! threads, the memory of their offset maps and how full they may get, their I/O buffers,
//! an I/O rate limit and the pause between passes. The per-topic compaction settings are in `topic.rs` (`CompactionConfig`).

use std::time::Duration;

use super::raw::RawConfig;
use super::topic::CompactionConfig;
use super::ConfigError;

#[derive(Debug, Clone, PartialEq)]
pub struct CleanerConfig {
    /// `log.cleaner.enable`: without it compacted topics are stored but never cleaned.
    pub enable: bool,
    /// `log.cleaner.threads`: logs cleaned at once.
    pub threads: usize,
    /// `log.cleaner.dedupe.buffer.size`: offset-map memory over all threads.
    pub dedupe_buffer_size: usize,
    /// `log.cleaner.io.max.bytes.per.second`: read plus written bytes, over all threads.
    pub io_max_bytes_per_second: f64,
    /// `log.cleaner.backoff.ms`: the pause when no log needs cleaning.
    pub backoff: Duration,
    /// `log.cleaner.io.buffer.size`: read and write buffers over all threads.
    pub io_buffer_size: usize,
    /// `log.cleaner.io.buffer.load.factor`: how full an offset map may get (Kafka's name
    /// for the dedupe buffer's load factor).
    pub io_buffer_load_factor: f64,
}

impl CleanerConfig {
    /// Bytes per read and per write of one thread: its half of its share of
    /// `log.cleaner.io.buffer.size` (a read and a write buffer), at least 64 KiB.
    pub fn io_chunk(&self) -> usize {
        (self.io_buffer_size / self.threads.max(1) / 2).max(64 << 10)
    }

    /// The offset map memory of one thread, as Kafka divides the dedupe buffer.
    pub fn map_memory_per_thread(&self) -> usize {
        self.dedupe_buffer_size / self.threads.max(1)
    }

    pub(super) fn from_raw(raw: &RawConfig) -> Result<CleanerConfig, ConfigError> {
        let threads = raw.int("log.cleaner.threads", 1, 0, 1024)? as usize;
        let dedupe_buffer_size =
            raw.int("log.cleaner.dedupe.buffer.size", 134_217_728, 0, i64::MAX)? as usize;
        let enable = raw.bool("log.cleaner.enable", true)?;
        // Kafka's rule: each thread's map must hold at least some keys.
        if enable && threads > 0 && dedupe_buffer_size / threads < 1024 * 1024 {
            return Err(ConfigError::new(
                "log.cleaner.dedupe.buffer.size",
                "must give each cleaner thread at least 1 MiB",
            ));
        }
        Ok(CleanerConfig {
            enable: enable && threads > 0,
            threads,
            dedupe_buffer_size,
            io_max_bytes_per_second: ratio_or_rate(
                raw,
                "log.cleaner.io.max.bytes.per.second",
                f64::MAX,
                1.0,
                f64::MAX,
            )?,
            backoff: Duration::from_millis(
                raw.int("log.cleaner.backoff.ms", 15_000, 0, i64::MAX)? as u64
            ),
            io_buffer_size: raw.int("log.cleaner.io.buffer.size", 524_288, 0, i32::MAX as i64)?
                as usize,
            io_buffer_load_factor: ratio_or_rate(
                raw,
                "log.cleaner.io.buffer.load.factor",
                0.9,
                0.01,
                1.0,
            )?,
        })
    }
}

/// The broker-wide defaults of the topic compaction settings (`log.cleaner.*` synonyms).
pub(super) fn compaction_defaults(raw: &RawConfig) -> Result<CompactionConfig, ConfigError> {
    Ok(CompactionConfig {
        delete_retention_ms: raw.int("log.cleaner.delete.retention.ms", 86_400_000, 0, i64::MAX)?,
        min_cleanable_dirty_ratio: ratio_or_rate(
            raw,
            "log.cleaner.min.cleanable.ratio",
            0.5,
            0.0,
            1.0,
        )?,
        min_compaction_lag_ms: raw.int("log.cleaner.min.compaction.lag.ms", 0, 0, i64::MAX)?,
        max_compaction_lag_ms: raw.int(
            "log.cleaner.max.compaction.lag.ms",
            i64::MAX,
            1,
            i64::MAX,
        )?,
    })
}

/// A decimal setting in `[min, max]` (Kafka's DOUBLE configs).
fn ratio_or_rate(
    raw: &RawConfig,
    key: &str,
    default: f64,
    min: f64,
    max: f64,
) -> Result<f64, ConfigError> {
    let text = raw.string(key, "");
    if text.trim().is_empty() {
        return Ok(default);
    }
    match text.trim().parse::<f64>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(ConfigError::new(
            key,
            format!("`{text}` is not a number in [{min}, {max}]"),
        )),
    }
}
