//! The console's JSON API under `/api/` (docs/http-api.md): cluster, topics, messages,
//! groups and live counters. Each call runs the admin client in process
//! (`admin::in_process`), so it goes through the same Kafka request handlers, checks and
//! error codes a client gets; errors come back as `{"error": ..., "kafka_error": ...}` with
//! an HTTP status that fits.
//!
//! Requests that change something must be JSON (`Content-Type: application/json`) and, if
//! the browser says where it comes from (`Origin`), come from the console's own origin: a
//! page on another site cannot post to the console.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::request::Request;
use super::response::Response;
use crate::admin::group_offsets::ResetTo;
use crate::admin::in_process::InProcess;
use crate::admin::messages::{choose_partition, Message, NewRecord};
use crate::admin::offsets::OffsetSpec;
use crate::admin::topics::NewTopic;
use crate::admin::{Admin, AdminError};
use crate::broker::Broker;
use crate::metrics::{global, Metrics};

/// Most messages one browse returns, and most records it reads looking for a key.
const MAX_LIMIT: usize = 500;
const MAX_SCANNED: usize = 10_000;

type Console = Admin;

/// A refusal for a changing request that is not JSON or comes from another origin.
pub fn refuse_cross_site(request: &Request) -> Option<Response> {
    if matches!(request.method.as_str(), "GET" | "HEAD") {
        return None;
    }
    if matches!(request.method.as_str(), "POST" | "PATCH" | "PUT")
        && !request
            .header("content-type")
            .is_some_and(|t| t.to_ascii_lowercase().starts_with("application/json"))
    {
        return Some(Response::error(
            415,
            "send JSON (Content-Type: application/json)",
        ));
    }
    if let Some(origin) = request.header("origin") {
        let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
        if Some(origin_host) != request.header("host") {
            return Some(Response::error(403, "cross-origin requests are refused"));
        }
    }
    None
}

/// The HTTP status for an admin error.
fn status_of(e: &AdminError) -> u16 {
    match e {
        AdminError::NotFound(_) => 404,
        AdminError::Invalid(_) => 400,
        AdminError::Unsupported(_) => 501,
        AdminError::Connection(_) | AdminError::Protocol(_) => 500,
        AdminError::Kafka { error, .. } => match *error {
            // UNKNOWN_TOPIC_OR_PARTITION, GROUP_ID_NOT_FOUND, UNKNOWN_TOPIC_ID
            3 | 69 | 100 => 404,
            // TOPIC_ALREADY_EXISTS, NON_EMPTY_GROUP, GROUP_SUBSCRIBED_TO_TOPIC
            36 | 68 | 86 => 409,
            // the *_AUTHORIZATION_FAILED codes
            29..=31 | 53 | 58 => 403,
            // COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR
            14..=16 => 503,
            _ => 400,
        },
    }
}

fn failure(e: &AdminError) -> Response {
    let mut body = json!({ "error": e.to_string() });
    if let Some(name) = e.kafka_name() {
        body["kafka_error"] = name.into();
    }
    Response::json(status_of(e), &body)
}

fn answer<T: serde::Serialize>(result: Result<T, AdminError>) -> Response {
    match result {
        Ok(value) => Response::json(200, &value),
        Err(e) => failure(&e),
    }
}

fn body<T: for<'de> Deserialize<'de>>(request: &Request) -> Result<T, AdminError> {
    serde_json::from_slice(&request.body)
        .map_err(|e| AdminError::Invalid(format!("bad JSON body: {e}")))
}

fn param<T: std::str::FromStr>(request: &Request, name: &str) -> Result<Option<T>, AdminError> {
    request
        .param(name)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<T>()
                .map_err(|_| AdminError::Invalid(format!("bad {name}: {v}")))
        })
        .transpose()
}

pub async fn handle(request: &Request, broker: Arc<Broker>, peer: SocketAddr) -> Response {
    let host = format!(
        "/{}",
        crate::network::connection::java_host_address(peer.ip())
    );
    let admin = Admin::new(InProcess::new(broker.clone(), host), "gregor-console");
    let segments = request.segments();
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = if request.method == "HEAD" {
        "GET"
    } else {
        request.method.as_str()
    };
    match (method, &parts[1..]) {
        ("GET", ["cluster"]) => cluster(&admin).await,
        ("GET", ["stats"]) => Response::json(200, &stats(&broker)),
        ("GET", ["topics"]) => {
            answer(topics(&admin, request.param("internal") == Some("true")).await)
        }
        ("POST", ["topics"]) => match create_topic(&admin, request).await {
            Ok(value) => Response::json(201, &value),
            Err(e) => failure(&e),
        },
        ("GET", ["topics", topic]) => answer(admin.describe_topic(topic).await),
        ("DELETE", ["topics", topic]) => answer(
            admin
                .delete_topic(topic)
                .await
                .map(|()| json!({ "deleted": topic })),
        ),
        ("PATCH", ["topics", topic, "configs"]) => {
            answer(alter_configs(&admin, topic, request).await)
        }
        ("GET", ["topics", topic, "messages"]) => answer(browse(&admin, topic, request).await),
        ("POST", ["topics", topic, "messages"]) => answer(produce(&admin, topic, request).await),
        ("GET", ["groups"]) => answer(groups(&admin).await),
        ("GET", ["groups", group]) => answer(admin.describe_group(group).await),
        ("DELETE", ["groups", group]) => answer(
            admin
                .delete_group(group)
                .await
                .map(|()| json!({ "deleted": group })),
        ),
        ("POST", ["groups", group, "offsets"]) => {
            answer(reset_offsets(&admin, group, request).await)
        }
        (_, ["cluster" | "stats" | "topics" | "groups", ..]) => {
            Response::method_not_allowed("GET, POST, PATCH, DELETE")
        }
        _ => Response::not_found(),
    }
}

async fn cluster(admin: &Console) -> Response {
    match admin.cluster_info().await {
        Ok(info) => {
            let mut value = serde_json::to_value(&info).unwrap_or_default();
            value["version"] = env!("CARGO_PKG_VERSION").into();
            value["uptime_seconds"] = global().uptime().as_secs().into();
            Response::json(200, &value)
        }
        Err(e) => failure(&e),
    }
}

/// The counters behind the console's charts: totals and per topic, with the time read.
fn stats(broker: &Broker) -> Value {
    let m = global();
    let mut totals = [0u64; 3];
    let mut topics = Vec::new();
    for topic in broker.logs.topics() {
        let counts = [
            Metrics::topic_count(&m.messages_in, &topic.name),
            Metrics::topic_count(&m.bytes_in, &topic.name),
            Metrics::topic_count(&m.bytes_out, &topic.name),
        ];
        for (t, c) in totals.iter_mut().zip(counts) {
            *t += c;
        }
        topics.push(json!({
            "topic": topic.name,
            "messages_in": counts[0],
            "bytes_in": counts[1],
            "bytes_out": counts[2],
        }));
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    json!({
        "time_ms": now_ms,
        "messages_in": totals[0],
        "bytes_in": totals[1],
        "bytes_out": totals[2],
        "topics": topics,
    })
}

async fn topics(admin: &Console, internal: bool) -> Result<Vec<Value>, AdminError> {
    let mut out = Vec::new();
    for t in admin.list_topics(internal).await? {
        let partitions = admin.describe_partitions(&t.name).await?;
        out.push(json!({
            "name": t.name,
            "id": t.id,
            "internal": t.internal,
            "partitions": t.partitions,
            "replication_factor": t.replication_factor,
            "messages": partitions.messages(),
            "size_bytes": partitions.size_bytes(),
        }));
    }
    Ok(out)
}

#[derive(Deserialize)]
struct CreateTopic {
    name: String,
    #[serde(default)]
    partitions: Option<i32>,
    #[serde(default)]
    replication_factor: Option<i16>,
    #[serde(default)]
    configs: std::collections::BTreeMap<String, String>,
}

async fn create_topic(admin: &Console, request: &Request) -> Result<Value, AdminError> {
    let c: CreateTopic = body(request)?;
    let id = admin
        .create_topic(&NewTopic {
            name: c.name.clone(),
            partitions: c.partitions.unwrap_or(-1),
            replication_factor: c.replication_factor.unwrap_or(-1),
            configs: c.configs.into_iter().collect(),
        })
        .await?;
    Ok(json!({ "name": c.name, "id": id }))
}

#[derive(Deserialize)]
struct AlterConfigs {
    #[serde(default)]
    set: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    delete: Vec<String>,
}

async fn alter_configs(
    admin: &Console,
    topic: &str,
    request: &Request,
) -> Result<Value, AdminError> {
    let a: AlterConfigs = body(request)?;
    let set: Vec<(String, String)> = a.set.into_iter().collect();
    admin.alter_topic_configs(topic, &set, &a.delete).await?;
    Ok(json!({ "topic": topic, "configs": admin.topic_configs(topic).await? }))
}

fn base64(bytes: Option<&Bytes>) -> Value {
    bytes.map_or(Value::Null, |b| {
        base64::engine::general_purpose::STANDARD.encode(b).into()
    })
}

/// A message for the browser: key, value and header values in base64 (the page renders
/// them as UTF-8, JSON or hex).
fn message_view(m: &Message) -> Value {
    json!({
        "partition": m.partition,
        "offset": m.offset,
        "timestamp": m.timestamp,
        "timestamp_type": m.timestamp_type,
        "key": base64(m.key.as_ref()),
        "value": base64(m.value.as_ref()),
        "headers": m.headers.iter().map(|(k, v)| json!({ "key": k, "value": base64(v.as_ref()) })).collect::<Vec<_>>(),
    })
}

/// Up to `limit` messages of one partition from `from` (beginning, end, offset,
/// timestamp), optionally only those whose key contains `key`.
async fn browse(admin: &Console, topic: &str, request: &Request) -> Result<Value, AdminError> {
    let layout = admin.topic_layout(topic).await?;
    let partition: i32 = param(request, "partition")?.unwrap_or(0);
    let limit = param::<usize>(request, "limit")?
        .unwrap_or(50)
        .clamp(1, MAX_LIMIT);
    let key = request
        .param("key")
        .filter(|k| !k.is_empty())
        .map(str::as_bytes);
    let p = [partition];
    let start = admin
        .list_offsets(&layout, Some(&p), OffsetSpec::Earliest)
        .await?;
    let end = admin
        .list_offsets(&layout, Some(&p), OffsetSpec::Latest)
        .await?;
    let (log_start, high_watermark) = (
        start.get(&partition).copied().unwrap_or(0),
        end.get(&partition).copied().unwrap_or(0),
    );
    let mut offset = match request.param("from").unwrap_or("end") {
        "beginning" => log_start,
        "end" => (high_watermark - limit as i64).max(log_start),
        "offset" => param::<i64>(request, "offset")?
            .ok_or_else(|| AdminError::Invalid("from=offset needs offset=N".into()))?
            .clamp(log_start, high_watermark),
        "timestamp" => {
            let ms = param::<i64>(request, "timestamp")?
                .ok_or_else(|| AdminError::Invalid("from=timestamp needs timestamp=MS".into()))?;
            admin
                .list_offsets(&layout, Some(&p), OffsetSpec::Timestamp(ms))
                .await?
                .get(&partition)
                .copied()
                .unwrap_or(high_watermark)
        }
        other => {
            return Err(AdminError::Invalid(format!(
                "from must be beginning, end, offset or timestamp, not {other}"
            )))
        }
    };
    let mut messages = Vec::new();
    let mut scanned = 0usize;
    while offset < high_watermark && messages.len() < limit && scanned < MAX_SCANNED {
        let fetched = admin.fetch(&layout, partition, offset, 1 << 20, 0).await?;
        if fetched.next_offset <= offset {
            break;
        }
        for m in &fetched.messages {
            if m.offset >= high_watermark || messages.len() >= limit {
                break;
            }
            scanned += 1;
            let matches = key.is_none_or(|k| {
                m.key
                    .as_ref()
                    .is_some_and(|mk| mk.windows(k.len()).any(|w| w == k))
            });
            if matches {
                messages.push(message_view(m));
            }
            offset = m.offset + 1;
        }
        if messages.len() < limit {
            offset = offset.max(fetched.next_offset);
        }
    }
    Ok(json!({
        "topic": topic,
        "partition": partition,
        "log_start_offset": log_start,
        "high_watermark": high_watermark,
        "next_offset": offset,
        "scanned": scanned,
        "messages": messages,
    }))
}

#[derive(Deserialize)]
struct Produce {
    #[serde(default)]
    partition: Option<i32>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
}

async fn produce(admin: &Console, topic: &str, request: &Request) -> Result<Value, AdminError> {
    let p: Produce = body(request)?;
    let layout = admin.topic_layout(topic).await?;
    let key = p.key.filter(|k| !k.is_empty()).map(Bytes::from);
    let mut round_robin = rand_start();
    let partition = p.partition.unwrap_or_else(|| {
        choose_partition(
            key.as_deref(),
            layout.partitions.len() as i32,
            &mut round_robin,
        )
    });
    let record = NewRecord {
        key,
        value: p.value.map(Bytes::from),
        headers: p
            .headers
            .into_iter()
            .map(|(k, v)| (k, Some(Bytes::from(v))))
            .collect(),
        timestamp: None,
    };
    let offset = admin.produce(&layout, partition, &[record], -1).await?;
    Ok(json!({ "topic": topic, "partition": partition, "offset": offset }))
}

/// Where keyless messages from the console start taking turns: spread by the clock.
fn rand_start() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_micros())
}

async fn groups(admin: &Console) -> Result<Vec<Value>, AdminError> {
    let mut out = Vec::new();
    for g in admin.list_groups().await? {
        let (members, lag) = match admin.describe_group(&g.group_id).await {
            Ok(d) => (Some(d.members.len()), Some(d.lag())),
            Err(_) => (None, None),
        };
        out.push(json!({
            "group_id": g.group_id,
            "group_type": g.group_type,
            "state": g.state,
            "protocol_type": g.protocol_type,
            "members": members,
            "lag": lag,
        }));
    }
    Ok(out)
}

#[derive(Deserialize)]
struct ResetOffsets {
    topic: String,
    to: String,
    #[serde(default)]
    value: Option<i64>,
    #[serde(default)]
    partitions: Option<Vec<i32>>,
    #[serde(default = "yes")]
    execute: bool,
}

fn yes() -> bool {
    true
}

async fn reset_offsets(
    admin: &Console,
    group: &str,
    request: &Request,
) -> Result<Value, AdminError> {
    let r: ResetOffsets = body(request)?;
    let value = || {
        r.value
            .ok_or_else(|| AdminError::Invalid(format!("to={} needs a value", r.to)))
    };
    let to = match r.to.as_str() {
        "earliest" => ResetTo::Earliest,
        "latest" => ResetTo::Latest,
        "offset" => ResetTo::Offset(value()?),
        "timestamp" => ResetTo::Timestamp(value()?),
        "shift" => ResetTo::ShiftBy(value()?),
        other => {
            return Err(AdminError::Invalid(format!(
                "to must be earliest, latest, offset, timestamp or shift, not {other}"
            )))
        }
    };
    let plan = admin
        .reset_offsets(group, &r.topic, r.partitions.as_deref(), to, r.execute)
        .await?;
    Ok(json!({ "group": group, "executed": r.execute, "offsets": plan }))
}
