//! Gregor: a broker speaking the Apache Kafka protocol on a native segment store.

mod config;
mod log;

fn main() {}
