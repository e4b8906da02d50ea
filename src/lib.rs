//! Gregor as a library: every module of the broker, which the `gregor` binary (`main.rs`)
//! runs, and the entry points of the fuzz targets (`fuzz/`, built with `--cfg fuzzing`).
//! The library has no API promise: it exists so that the binary and the fuzzers share it.

pub mod admin;
pub mod alloc;
pub mod api;
pub mod broker;
pub mod broker_state;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod coordinator;
#[cfg(test)]
mod crash_consistency;
pub mod follower;
#[cfg(any(test, fuzzing))]
pub mod fuzz_targets;
pub mod http;
pub mod log;
pub mod log_manager;
pub mod metrics;
pub mod network;
pub mod producer_ids;
pub mod security;
pub mod server;
pub mod share;
pub mod shutdown;
pub mod storage;
#[cfg(test)]
#[path = "../tests/broker/batches.rs"]
mod test_batches;
pub mod transaction;

/// The unit tests run on the broker's allocator, as the binary does (`main.rs`).
#[cfg(test)]
#[global_allocator]
static TEST_ALLOCATOR: alloc::GregorAlloc = alloc::GregorAlloc;

/// An error and its causes on one line: "cannot open the data directories: ...: ...".
/// Gregor's leaf errors (an I/O error on a path) say their cause in their own message too,
/// since that message also goes to logs and to clients; a cause already spelled out is
/// not repeated.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}
