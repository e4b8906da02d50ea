//! The log cleaner (Kafka's `LogCleaner`): compaction of logs whose `cleanup.policy`
//! includes `compact`. [`Cleaner`] cleans one log; the threads that pick the dirtiest log
//! and the checkpoint of how far each log is clean are the log manager's
//! (`log_manager/cleaning.rs`); the parts that need a log's lock are `log/compaction.rs`.
//!
//! - `offset_map.rs`: key hash → latest offset, bounded by `log.cleaner.dedupe.buffer.size`;
//! - `cleaner.rs`: one cleaning: the map, then the rewrite of segments in groups;
//! - `batch_rewrite.rs`: one batch with only its kept records, offsets unchanged;
//! - `throttler.rs`: `log.cleaner.io.max.bytes.per.second`.

mod batch_rewrite;
#[allow(clippy::module_inception)]
mod cleaner;
mod offset_map;
mod throttler;

pub use cleaner::{Cleaner, CleanerStats, DEFAULT_IO_CHUNK};
pub use offset_map::OffsetMap;
pub use throttler::Throttler;

#[cfg(test)]
mod tests;
