//! Integration tests: real `gregor` processes on 127.0.0.1 with temp data directories,
//! driven by real clients (the rdkafka crate, Debian's kcat) and by raw sockets.

mod acls;
mod admin;
mod bad_input;
mod batches;
mod cli;
mod clients;
mod cluster;
mod compaction;
mod container;
mod durability;
mod groups;
mod idempotence;
mod kcat;
mod legacy;
mod limits;
mod observability;
mod raw;
mod security;
mod share_groups;
mod support;
mod transactions;
