//! `gregor consume TOPIC`: reads records from an offset, a time, the beginning or the end
//! (the default, as Kafka's console consumer), or, with `--group`, from the group's
//! committed positions as a member of a KIP-848 consumer group (partitions assigned by the
//! coordinator, positions committed as it goes). Follows the topic until interrupted,
//! `--max-messages`, `--timeout-ms` without a record, or `--exit-at-end`.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use clap::Args;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::ResponseError;

use super::output::Format;
use super::progress::Progress;
use super::time::parse_time;
use crate::admin::cluster::TopicLayout;
use crate::admin::group_member::ConsumerMember;
use crate::admin::group_offsets::{Committer, Offsets};
use crate::admin::messages::Message;
use crate::admin::offsets::OffsetSpec;
use crate::admin::{Admin, AdminError};

/// Bytes asked for per partition per read.
const FETCH_BYTES: i32 = 1 << 20;
/// How long a read waits at the end of the log.
const FETCH_WAIT_MS: i32 = 500;
/// How often a group member without partitions asks for some.
const WAITING_HEARTBEAT: Duration = Duration::from_millis(200);

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// The topic.
    pub topic: String,
    /// Read only this partition.
    #[arg(short, long)]
    pub partition: Option<i32>,
    /// Start at this offset (in every partition read).
    #[arg(long, conflicts_with_all = ["from_beginning", "from_time"])]
    pub offset: Option<i64>,
    /// Start at the beginning (with --group: where the group has no committed offset).
    #[arg(long = "from-beginning")]
    pub from_beginning: bool,
    /// Start at the first record at or after this time (ms since the epoch or ISO-8601).
    #[arg(long = "from-time", value_name = "TIME")]
    pub from_time: Option<String>,
    /// Read as a member of this consumer group, from its committed positions, committing.
    #[arg(short, long, conflicts_with_all = ["partition", "offset", "from_time"])]
    pub group: Option<String>,
    /// Stop after this many records.
    #[arg(short = 'n', long = "max-messages")]
    pub max_messages: Option<u64>,
    /// Stop once every partition is read up to where it ended when reading began.
    #[arg(short = 'e', long = "exit-at-end")]
    pub exit_at_end: bool,
    /// Stop when no record arrives for this long (ms).
    #[arg(long = "timeout-ms")]
    pub timeout_ms: Option<u64>,
    /// Print each record's key before its value (table format).
    #[arg(long = "print-key")]
    pub print_key: bool,
    /// Print each record's partition and offset first (table format).
    #[arg(long = "print-offset")]
    pub print_offset: bool,
    /// Print each record's timestamp (table format).
    #[arg(long = "print-timestamp")]
    pub print_timestamp: bool,
    /// Print each record's headers (table format).
    #[arg(long = "print-headers")]
    pub print_headers: bool,
    /// What separates the printed fields (table format).
    #[arg(long, default_value = "\t")]
    pub separator: String,
}

fn text(bytes: Option<&Bytes>) -> String {
    bytes.map_or_else(
        || "null".to_string(),
        |b| String::from_utf8_lossy(b).into_owned(),
    )
}

/// A key or value in JSON: the text if it is UTF-8, else base64 with `<name>_encoding`.
fn json_bytes(
    out: &mut serde_json::Map<String, serde_json::Value>,
    name: &str,
    bytes: Option<&Bytes>,
) {
    let Some(b) = bytes else {
        out.insert(name.into(), serde_json::Value::Null);
        return;
    };
    if let Ok(s) = std::str::from_utf8(b) {
        out.insert(name.into(), s.into());
    } else {
        out.insert(
            name.into(),
            base64::engine::general_purpose::STANDARD.encode(b).into(),
        );
        out.insert(format!("{name}_encoding"), "base64".into());
    }
}

/// A record as `gregor consume` prints it.
pub fn render(topic: &str, m: &Message, args: &ConsumeArgs, format: Format) -> String {
    if format == Format::Json {
        let mut o = serde_json::Map::new();
        o.insert("topic".into(), topic.into());
        o.insert("partition".into(), m.partition.into());
        o.insert("offset".into(), m.offset.into());
        o.insert("timestamp".into(), m.timestamp.into());
        o.insert("timestamp_type".into(), m.timestamp_type.into());
        json_bytes(&mut o, "key", m.key.as_ref());
        json_bytes(&mut o, "value", m.value.as_ref());
        let headers: serde_json::Map<String, serde_json::Value> = m
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_ref().map_or(serde_json::Value::Null, |v| {
                        String::from_utf8_lossy(v).into()
                    }),
                )
            })
            .collect();
        o.insert("headers".into(), headers.into());
        return serde_json::Value::Object(o).to_string();
    }
    let mut fields = Vec::new();
    if args.print_offset {
        fields.push(format!("{}:{}", m.partition, m.offset));
    }
    if args.print_timestamp {
        fields.push(format!("{}:{}", m.timestamp_type, m.timestamp));
    }
    if args.print_headers {
        let h: Vec<String> = m
            .headers
            .iter()
            .map(|(k, v)| format!("{k}:{}", text(v.as_ref())))
            .collect();
        fields.push(if h.is_empty() {
            "NO_HEADERS".into()
        } else {
            h.join(",")
        });
    }
    if args.print_key {
        fields.push(text(m.key.as_ref()));
    }
    fields.push(text(m.value.as_ref()));
    fields.join(&args.separator)
}

/// Where reading is: the next offset of each partition read, and where each ends with
/// --exit-at-end.
struct Positions {
    next: BTreeMap<i32, i64>,
    end: BTreeMap<i32, i64>,
}

impl Positions {
    fn remaining(&self) -> u64 {
        self.next
            .iter()
            .map(|(p, n)| self.end.get(p).map_or(0, |e| (e - n).max(0) as u64))
            .sum()
    }
}

pub async fn run(admin: &Admin, args: ConsumeArgs, format: Format) -> Result<(), AdminError> {
    let layout = admin.topic_layout(&args.topic).await?;
    let start = if args.from_beginning {
        OffsetSpec::Earliest
    } else if let Some(t) = &args.from_time {
        OffsetSpec::Timestamp(parse_time(t).map_err(AdminError::Invalid)?)
    } else {
        OffsetSpec::Latest
    };
    if let Some(group) = &args.group {
        return consume_in_group(admin, &layout, group, &args, format).await;
    }
    {
        {
            let partitions: Vec<i32> = match args.partition {
                Some(p) => vec![p],
                None => layout.partitions.iter().map(|p| p.0).collect(),
            };
            let next = match args.offset {
                Some(offset) => partitions.iter().map(|p| (*p, offset)).collect(),
                None => {
                    admin
                        .list_offsets(&layout, Some(&partitions), start)
                        .await?
                }
            };
            let mut positions = Positions {
                next,
                end: BTreeMap::new(),
            };
            if args.exit_at_end {
                positions.end = admin
                    .list_offsets(&layout, Some(&partitions), OffsetSpec::Latest)
                    .await?;
            }
            let mut reader = Reader::new(&args, format, &positions);
            loop {
                let stop = reader.round(admin, &layout, &mut positions).await?;
                if stop {
                    break;
                }
            }
            reader.progress.finish();
            Ok(())
        }
    }
}

/// Reads rounds of records and prints them; knows when to stop.
struct Reader<'a> {
    args: &'a ConsumeArgs,
    format: Format,
    printed: u64,
    last_record: Instant,
    progress: Progress,
    interrupted: std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>>>>,
}

impl<'a> Reader<'a> {
    fn new(args: &'a ConsumeArgs, format: Format, positions: &Positions) -> Reader<'a> {
        let total = args.exit_at_end.then(|| positions.remaining());
        let total = match (total, args.max_messages) {
            (Some(t), Some(n)) => Some(t.min(n)),
            (t, _) => t,
        };
        Reader {
            args,
            format,
            printed: 0,
            last_record: Instant::now(),
            progress: Progress::new("records", total),
            interrupted: Box::pin(tokio::signal::ctrl_c()),
        }
    }

    /// One read of every partition in `positions`; true when reading should stop.
    async fn round(
        &mut self,
        admin: &Admin,
        layout: &TopicLayout,
        positions: &mut Positions,
    ) -> Result<bool, AdminError> {
        let wanted: Vec<(i32, i64)> = positions
            .next
            .iter()
            .filter(|(p, n)| !self.args.exit_at_end || positions.end.get(p).is_some_and(|e| *n < e))
            .map(|(p, n)| (*p, *n))
            .collect();
        if wanted.is_empty() {
            if self.args.exit_at_end {
                return Ok(true);
            }
            // Nothing assigned (a group member waiting for partitions).
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(FETCH_WAIT_MS as u64)) => {}
                _ = &mut self.interrupted => return Ok(true),
            }
            return Ok(self.timed_out());
        }
        let fetched = tokio::select! {
            fetched = admin.fetch_many(layout, &wanted, FETCH_BYTES, FETCH_WAIT_MS) => fetched?,
            _ = &mut self.interrupted => return Ok(true),
        };
        let mut out = std::io::stdout().lock();
        for (partition, result) in fetched {
            let fetched = match result {
                Ok(f) => f,
                Err(AdminError::Kafka { error, .. })
                    if error == ResponseError::OffsetOutOfRange.code() =>
                {
                    // Start over where the log is, as auto.offset.reset=earliest would.
                    let spec = if self.args.from_beginning {
                        OffsetSpec::Earliest
                    } else {
                        OffsetSpec::Latest
                    };
                    let reset = admin.list_offsets(layout, Some(&[partition]), spec).await?;
                    positions.next.extend(reset);
                    continue;
                }
                Err(e) => return Err(e),
            };
            for m in &fetched.messages {
                if self.args.max_messages.is_some_and(|n| self.printed >= n) {
                    break;
                }
                if let Err(e) = writeln!(out, "{}", render(&layout.name, m, self.args, self.format))
                {
                    // A closed pipe (`| head`) ends reading quietly.
                    return if e.kind() == std::io::ErrorKind::BrokenPipe {
                        Ok(true)
                    } else {
                        Err(AdminError::Invalid(format!("writing: {e}")))
                    };
                }
                self.printed += 1;
                positions.next.insert(partition, m.offset + 1);
            }
            if !fetched.messages.is_empty() {
                self.last_record = Instant::now();
                self.progress.add(fetched.messages.len() as u64);
            }
            if self.args.max_messages.is_none_or(|n| self.printed < n) {
                positions.next.insert(
                    partition,
                    fetched
                        .next_offset
                        .max(positions.next.get(&partition).copied().unwrap_or(0)),
                );
            }
        }
        let _ = out.flush();
        Ok(self.args.max_messages.is_some_and(|n| self.printed >= n) || self.timed_out())
    }

    fn timed_out(&self) -> bool {
        self.args
            .timeout_ms
            .is_some_and(|ms| self.last_record.elapsed() >= Duration::from_millis(ms))
    }
}

/// Reads as a member of `group`: KIP-848 when the broker serves it, else (older brokers)
/// every partition from the group's committed offsets, committing as an admin would.
async fn consume_in_group(
    admin: &Admin,
    layout: &TopicLayout,
    group: &str,
    args: &ConsumeArgs,
    format: Format,
) -> Result<(), AdminError> {
    let reset = if args.from_beginning {
        OffsetSpec::Earliest
    } else {
        OffsetSpec::Latest
    };
    let mut member: Option<ConsumerMember> = if admin.serves(ApiKey::ConsumerGroupHeartbeat) {
        Some(
            admin
                .join_consumer_group(group, std::slice::from_ref(&layout.name))
                .await?,
        )
    } else {
        None
    };
    let mut positions = Positions {
        next: BTreeMap::new(),
        end: BTreeMap::new(),
    };
    let mut reader = Reader::new(args, format, &positions);
    let mut last_heartbeat = Instant::now();
    let mut committed: BTreeMap<i32, i64> = BTreeMap::new();
    let mut assigned: Vec<i32> = Vec::new();
    let result = loop {
        if let Some(m) = member.as_mut() {
            // While nothing is assigned, ask again sooner than the interval.
            let due = if assigned.is_empty() {
                WAITING_HEARTBEAT.min(m.interval)
            } else {
                m.interval
            };
            if last_heartbeat.elapsed() >= due {
                if let Err(e) = admin.heartbeat(m).await {
                    break Err(e);
                }
                last_heartbeat = Instant::now();
            }
        }
        let now_assigned: Vec<i32> = match &member {
            Some(m) => m.assignment.get(&layout.name).cloned().unwrap_or_default(),
            None => layout.partitions.iter().map(|p| p.0).collect(),
        };
        if now_assigned != assigned {
            if let Err(e) = take_positions(
                admin,
                layout,
                group,
                &now_assigned,
                reset,
                args.exit_at_end,
                &mut positions,
                &mut committed,
            )
            .await
            {
                break Err(e);
            }
            assigned = now_assigned;
            if args.exit_at_end {
                reader.progress = Progress::new("records", Some(positions.remaining()));
            }
        }
        if assigned.is_empty() {
            tokio::select! {
                () = tokio::time::sleep(WAITING_HEARTBEAT) => {}
                _ = &mut reader.interrupted => break Ok(()),
            }
            if reader.timed_out() {
                break Ok(());
            }
            continue;
        }
        let stop = match reader.round(admin, layout, &mut positions).await {
            Ok(stop) => stop,
            Err(e) => break Err(e),
        };
        if let Err(e) = commit(
            admin,
            layout,
            group,
            member.as_ref(),
            &positions,
            &mut committed,
        )
        .await
        {
            break Err(e);
        }
        if stop {
            break Ok(());
        }
    };
    reader.progress.finish();
    if let Some(m) = &member {
        // Leave even after an error, so the partitions move on at once.
        let left = admin.leave_consumer_group(m).await;
        result?;
        left
    } else {
        result
    }
}

/// Positions for newly assigned partitions: the group's committed offset, else `reset`;
/// partitions no longer assigned are dropped.
#[allow(clippy::too_many_arguments)]
async fn take_positions(
    admin: &Admin,
    layout: &TopicLayout,
    group: &str,
    assigned: &[i32],
    reset: OffsetSpec,
    exit_at_end: bool,
    positions: &mut Positions,
    committed: &mut BTreeMap<i32, i64>,
) -> Result<(), AdminError> {
    positions.next.retain(|p, _| assigned.contains(p));
    committed.retain(|p, _| assigned.contains(p));
    let new: Vec<i32> = assigned
        .iter()
        .copied()
        .filter(|p| !positions.next.contains_key(p))
        .collect();
    if new.is_empty() {
        return Ok(());
    }
    let offsets = admin.committed_offsets(group).await?;
    let mut without = Vec::new();
    for p in &new {
        match offsets.get(&(layout.name.clone(), *p)) {
            Some(o) => {
                positions.next.insert(*p, *o);
                committed.insert(*p, *o);
            }
            None => without.push(*p),
        }
    }
    if !without.is_empty() {
        positions
            .next
            .extend(admin.list_offsets(layout, Some(&without), reset).await?);
    }
    if exit_at_end {
        positions.end.extend(
            admin
                .list_offsets(layout, Some(&new), OffsetSpec::Latest)
                .await?,
        );
    }
    Ok(())
}

/// Commits the positions that moved since the last commit.
async fn commit(
    admin: &Admin,
    layout: &TopicLayout,
    group: &str,
    member: Option<&ConsumerMember>,
    positions: &Positions,
    committed: &mut BTreeMap<i32, i64>,
) -> Result<(), AdminError> {
    let moved: Offsets = positions
        .next
        .iter()
        .filter(|(p, n)| committed.get(p) != Some(n))
        .map(|(p, n)| ((layout.name.clone(), *p), *n))
        .collect();
    if moved.is_empty() {
        return Ok(());
    }
    let committer = member.map_or_else(Committer::admin, |m| Committer {
        member_id: m.member_id.clone(),
        epoch: m.epoch,
    });
    match admin.commit_offsets(group, &committer, &moved).await {
        Ok(()) => {}
        // Fenced or mid-reassignment: the next heartbeat sorts it out; the records will be
        // read again by whoever owns the partition.
        Err(AdminError::Kafka { error, .. })
            if error == ResponseError::StaleMemberEpoch.code()
                || error == ResponseError::FencedMemberEpoch.code()
                || error == ResponseError::UnknownMemberId.code() =>
        {
            return Ok(());
        }
        Err(e) => return Err(e),
    }
    for ((_, p), n) in moved {
        committed.insert(p, n);
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
        args: ConsumeArgs,
    }

    fn message() -> Message {
        Message {
            partition: 2,
            offset: 7,
            timestamp: 1000,
            timestamp_type: "CreateTime",
            key: Some(Bytes::from("k")),
            value: Some(Bytes::from_static(&[0xff, 0x00])),
            headers: vec![("h".into(), Some(Bytes::from("v")))],
        }
    }

    #[test]
    fn text_prints_the_fields_asked_for() {
        let args = Cli::parse_from(["x", "t", "--print-key", "--print-offset"]).args;
        assert_eq!(
            render("t", &message(), &args, Format::Table),
            "2:7\tk\t\u{fffd}\u{0}"
        );
    }

    #[test]
    fn json_carries_non_utf8_values_in_base64() {
        let args = Cli::parse_from(["x", "t"]).args;
        let line = render("t", &message(), &args, Format::Json);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["key"], "k");
        assert_eq!(v["value"], "/wA=");
        assert_eq!(v["value_encoding"], "base64");
        assert_eq!(v["headers"]["h"], "v");
        assert_eq!(v["offset"], 7);
    }
}
