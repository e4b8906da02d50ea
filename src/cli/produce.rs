//! `gregor produce TOPIC`: lines from standard input become records (VALUE, or KEY:VALUE
//! with --parse-key), sent in batches per partition; lines typed by hand go out within
//! 50 ms. Keys are placed by Kafka's default partitioner, keyless records take turns.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::key_value;
use super::output::{print_json, Format};
use super::progress::Progress;
use crate::admin::messages::{choose_partition, NewRecord};
use crate::admin::{Admin, AdminError};

/// A batch goes out at this many records or bytes, or when input pauses this long.
const BATCH_RECORDS: usize = 1000;
const BATCH_BYTES: usize = 512 * 1024;
const LINGER: Duration = Duration::from_millis(50);

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// The topic (created if the broker auto-creates topics).
    pub topic: String,
    /// Write every record to this partition.
    #[arg(short, long)]
    pub partition: Option<i32>,
    /// Read each line as KEY<separator>VALUE.
    #[arg(short = 'k', long = "parse-key")]
    pub parse_key: bool,
    /// What separates key from value with --parse-key.
    #[arg(long = "key-separator", default_value = ":")]
    pub key_separator: String,
    /// A header added to every record, KEY=VALUE; repeatable.
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE", value_parser = key_value)]
    pub headers: Vec<(String, String)>,
    /// all (-1) or 1: how many replicas must have a record before it counts as written.
    #[arg(long, default_value = "all")]
    pub acks: String,
}

/// The record a line makes.
fn record_of(line: &str, args: &ProduceArgs) -> NewRecord {
    let (key, value) = if args.parse_key {
        match line.split_once(args.key_separator.as_str()) {
            Some((k, v)) => (Some(Bytes::from(k.to_string())), v),
            None => (None, line),
        }
    } else {
        (None, line)
    };
    NewRecord {
        key,
        value: Some(Bytes::from(value.to_string())),
        headers: args
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Some(Bytes::from(v.clone()))))
            .collect(),
        timestamp: None,
    }
}

pub async fn run(admin: &Admin, args: ProduceArgs, format: Format) -> Result<(), AdminError> {
    let acks = match args.acks.as_str() {
        "all" | "-1" => -1,
        "1" => 1,
        other => {
            return Err(AdminError::Invalid(format!(
                "--acks must be all or 1, not {other}"
            )))
        }
    };
    let layout = admin.topic_layout_creating(&args.topic, true).await?;
    let partitions = layout.partitions.len() as i32;
    if let Some(p) = args.partition {
        if !(0..partitions).contains(&p) {
            return Err(AdminError::NotFound(format!(
                "topic {} has no partition {p}",
                args.topic
            )));
        }
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut pending: BTreeMap<i32, Vec<NewRecord>> = BTreeMap::new();
    let (mut pending_records, mut pending_bytes) = (0usize, 0usize);
    let mut round_robin = 0u32;
    let mut written: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    let mut total = 0u64;
    let mut progress = Progress::new("records", None);
    loop {
        let next = if pending_records == 0 {
            Ok(lines.next_line().await)
        } else {
            tokio::time::timeout(LINGER, lines.next_line()).await
        };
        let pause = next.is_err();
        let done = match next {
            Ok(Ok(Some(line))) => {
                let record = record_of(&line, &args);
                let partition = args.partition.unwrap_or_else(|| {
                    choose_partition(record.key.as_deref(), partitions, &mut round_robin)
                });
                pending_bytes += line.len();
                pending_records += 1;
                pending.entry(partition).or_default().push(record);
                false
            }
            Ok(Ok(None)) => true,
            Ok(Err(e)) => return Err(AdminError::Invalid(format!("reading standard input: {e}"))),
            // Input paused: send what there is.
            Err(_) => false,
        };
        if done || pause || pending_records >= BATCH_RECORDS || pending_bytes >= BATCH_BYTES {
            for (partition, records) in std::mem::take(&mut pending) {
                let base = admin.produce(&layout, partition, &records, acks).await?;
                let last = base + records.len() as i64 - 1;
                let range = written.entry(partition).or_insert((base, last));
                range.1 = last;
                total += records.len() as u64;
                progress.add(records.len() as u64);
            }
            pending_records = 0;
            pending_bytes = 0;
        }
        if done {
            break;
        }
    }
    progress.finish();
    if format == Format::Json {
        let partitions: BTreeMap<String, serde_json::Value> = written
            .iter()
            .map(|(p, (first, last))| {
                (
                    p.to_string(),
                    serde_json::json!({ "first_offset": first, "last_offset": last }),
                )
            })
            .collect();
        print_json(
            &serde_json::json!({ "topic": args.topic, "records": total, "partitions": partitions }),
        );
    } else {
        eprintln!("Produced {total} record(s) to {}.", args.topic);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ProduceArgs,
    }

    #[test]
    fn keys_are_split_only_with_parse_key() {
        let plain = Cli::parse_from(["x", "t"]).args;
        let r = record_of("a:b", &plain);
        assert_eq!((r.key, r.value.as_deref()), (None, Some(&b"a:b"[..])));
        let keyed = Cli::parse_from(["x", "t", "--parse-key", "-H", "source=cli"]).args;
        let r = record_of("a:b:c", &keyed);
        assert_eq!(r.key.as_deref(), Some(&b"a"[..]));
        assert_eq!(r.value.as_deref(), Some(&b"b:c"[..]));
        assert_eq!(
            r.headers,
            vec![("source".to_string(), Some(Bytes::from("cli")))]
        );
    }
}
