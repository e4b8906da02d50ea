//! The broker keys this version understands: name, Kafka's default and type, and the
//! documentation DescribeConfigs reports.

use super::listeners;

/// Whether `value` is what `key` is without being set (a null default matches an empty value).
pub(super) fn is_default(key: &str, value: &str) -> bool {
    BROKER_CONFIGS
        .iter()
        .find(|d| d.name == key)
        .is_some_and(|d| d.default.unwrap_or("") == value.trim())
}

/// A broker setting: name, default as Kafka prints it (`None`: no default, reported as
/// null), Kafka `ConfigDef.Type` code (see `topic::config_type`), documentation.
pub struct BrokerConfigDef {
    pub name: &'static str,
    pub default: Option<&'static str>,
    pub config_type: i8,
    pub doc: &'static str,
}

const fn broker(
    name: &'static str,
    default: &'static str,
    config_type: i8,
    doc: &'static str,
) -> BrokerConfigDef {
    BrokerConfigDef {
        name,
        default: Some(default),
        config_type,
        doc,
    }
}

/// A broker setting that has no default value in Kafka (null until set).
const fn broker_unset(name: &'static str, config_type: i8, doc: &'static str) -> BrokerConfigDef {
    BrokerConfigDef {
        name,
        default: None,
        config_type,
        doc,
    }
}

/// Every broker key this version understands, with the defaults `from_raw` applies.
#[rustfmt::skip]
pub const BROKER_CONFIGS: &[BrokerConfigDef] = &[
    broker("node.id", "1", 3, "The node id of this broker."),
    broker("listeners", "PLAINTEXT://127.0.0.1:9092", 7, "The listeners: NAME://HOST:PORT, comma-separated; each name's security protocol comes from listener.security.protocol.map."),
    broker("http.listen", "127.0.0.1:9644", 2, "Gregor only: HOST:PORT of the HTTP listener (/metrics, /health, the web console and its JSON API under /api/); empty turns it off."),
    broker("gregor.storage", "local", 2, "Gregor only: where partition data lives: local (this broker's log.dirs) or cluster (an object store and PostgreSQL shared by every broker; docs/cluster.md)."),
    broker("gregor.object.store.url", "", 2, "Gregor only, cluster mode: s3://bucket/prefix (or file:///dir) where produced batches are uploaded."),
    broker("gregor.object.store.endpoint", "", 2, "Gregor only, cluster mode: the URL of an S3-compatible server; empty = AWS."),
    broker("gregor.object.store.region", "", 2, "Gregor only, cluster mode: the bucket's region; empty = AWS_REGION, else us-east-1."),
    broker("gregor.object.store.access.key.id", "", 2, "Gregor only, cluster mode: the access key; empty = AWS_ACCESS_KEY_ID."),
    broker("gregor.object.store.secret.access.key", "", 9, "Gregor only, cluster mode: the secret key; empty = AWS_SECRET_ACCESS_KEY."),
    broker("gregor.metadata.url", "", 9, "Gregor only, cluster mode: the PostgreSQL connection string of the batch coordinator and metadata."),
    broker("gregor.produce.buffer.ms", "250", 5, "Gregor only, cluster mode: the longest produced data waits to share an object with other produces."),
    broker("gregor.produce.buffer.bytes", "4194304", 3, "Gregor only, cluster mode: an object is uploaded once this many bytes are buffered."),
    broker("gregor.metadata.poll.ms", "100", 5, "Gregor only, cluster mode: how often a broker looks in PostgreSQL for what other brokers committed."),
    broker("gregor.object.consolidation.bytes", "8388608", 3, "Gregor only, cluster mode: objects under half this size are merged into objects of up to this size, each partition's batches together (0: never)."),
    broker("gregor.object.orphan.age.ms", "3600000", 5, "Gregor only, cluster mode: an object under the store prefix that no commit names (an upload whose commit failed) is deleted once it is this old."),
    broker("broker.session.timeout.ms", "9000", 3, "Cluster mode: a broker that has not heartbeated for this long leaves Metadata."),
    broker("broker.heartbeat.interval.ms", "2000", 3, "Cluster mode: how often a broker heartbeats in PostgreSQL."),
    broker("broker.rack", "", 2, "Rack of the broker, reported in Metadata."),
    broker("console.enable", "true", 1, "Gregor only: serve the web console at / and its JSON API under /api/ on the HTTP listener."),
    broker("advertised.listeners", "", 7, "The addresses clients are told to use, per listener name; a listener not named here advertises itself."),
    broker("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL", 7, "Listener name to security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)."),
    broker_unset("ssl.keystore.type", 2, "PEM (the only type supported)."),
    broker_unset("ssl.keystore.location", 2, "A PEM file with the listener's private key (unencrypted PKCS#8, PKCS#1 or SEC1) and certificate chain; re-read when it changes."),
    broker_unset("ssl.keystore.key", 9, "The private key as PEM text (with ssl.keystore.certificate.chain)."),
    broker_unset("ssl.keystore.certificate.chain", 9, "The certificate chain as PEM text (with ssl.keystore.key)."),
    broker_unset("ssl.key.password", 9, "Not supported: give the key unencrypted."),
    broker_unset("ssl.keystore.password", 9, "Not supported: PEM keystores have no password."),
    broker_unset("ssl.truststore.type", 2, "PEM (the only type supported)."),
    broker_unset("ssl.truststore.location", 2, "A PEM file of CA certificates that client certificates must chain to; re-read when it changes."),
    broker_unset("ssl.truststore.certificates", 9, "CA certificates as PEM text."),
    broker_unset("ssl.truststore.password", 9, "Not supported: PEM truststores have no password."),
    broker("ssl.client.auth", "none", 2, "Client certificates: none, requested or required (mutual TLS)."),
    broker("ssl.enabled.protocols", "TLSv1.2,TLSv1.3", 7, "TLS versions offered."),
    broker("ssl.protocol", "TLSv1.3", 2, "Accepted for compatibility; ssl.enabled.protocols decides."),
    broker_unset("ssl.cipher.suites", 7, "Cipher suites offered (IANA names, e.g. TLS_AES_128_GCM_SHA256); unset: rustls's defaults."),
    broker("ssl.principal.mapping.rules", "DEFAULT", 2, "A client certificate's subject to its principal name: DEFAULT (the subject) and RULE:pattern/replacement/[L|U] rules, comma-separated; the first that applies wins, and a subject none applies to is refused."),
    broker("ssl.endpoint.identification.algorithm", "https", 2, "Accepted for compatibility (a broker does not verify client host names)."),
    broker("sasl.enabled.mechanisms", "GSSAPI", 7, "SASL mechanisms of SASL listeners: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (GSSAPI and OAUTHBEARER are not supported)."),
    broker("connections.max.reauth.ms", "0", 5, "SASL sessions expire after this long and must re-authenticate (KIP-368); 0: never."),
    broker("connection.failed.authentication.delay.ms", "100", 3, "Delay before a failed authentication is answered and the connection closed."),
    broker("authorizer.class.name", "", 2, "org.apache.kafka.metadata.authorizer.StandardAuthorizer: authorize every request against the ACLs (CreateAcls); empty: allow everything."),
    broker_unset("super.users", 2, "Principals that skip ACLs, separated by `;` (User:admin;User:CN=ops)."),
    broker("allow.everyone.if.no.acl.found", "false", 1, "Allow a request on a resource no ACL names."),
    broker("log.dirs", "./data", 2, "Comma-separated data directories."),
    broker("num.partitions", "1", 3, "Partitions of a topic created without a count."),
    broker("default.replication.factor", "1", 3, "Replication factor of new topics (only 1)."),
    broker("auto.create.topics.enable", "true", 1, "Create unknown topics requested through Metadata."),
    broker("replica.selector.class", "", 3, "Kafka's RackAwareReplicaSelector: in cluster mode a Fetch from a client (client.rack) in another rack than the broker's is pointed at a live broker in its rack (KIP-392). Empty: clients read from the leader."),
    broker("legacy.protocol.enable", "true", 1, "Gregor only: serve the protocol versions Kafka 4 removed (Produce v0-v2, Fetch v0-v3 and the others of KIP-896) to old clients, converting message formats v0 and v1; false: Kafka 4's versions only."),
    broker("message.max.bytes", "1048588", 3, "Largest record batch a producer may send."),
    broker("socket.request.max.bytes", "104857600", 3, "Largest request the broker reads."),
    broker("max.connections", "2147483647", 3, "Most client connections at once."),
    broker("max.connections.per.ip", "2147483647", 3, "Most connections from one client address."),
    broker("max.connections.per.ip.overrides", "", 2, "Per-address exceptions: host:count,host:count."),
    broker("connections.max.idle.ms", "600000", 5, "A connection that completes no request for this long is closed."),
    broker("socket.sendfile.enable", "false", 1, "Gregor only: send Fetch records from the segment file to plain TCP sockets with sendfile (on loopback it measured slower, so off by default)."),
    broker("queued.max.request.bytes", "-1", 5, "Request bytes read but not yet answered, over all connections, before reading pauses (-1: no cap)."),
    broker("max.request.partition.size.limit", "2000", 3, "Most partitions in one DescribeTopicPartitions answer."),
    broker("log.segment.bytes", "1073741824", 3, "Size at which a segment is rolled."),
    broker_unset("log.roll.ms", 5, "Age (ms) at which a non-empty segment is rolled; when unset, log.roll.hours applies."),
    broker("log.roll.hours", "168", 3, "Age (hours) at which a non-empty segment is rolled."),
    broker("log.index.interval.bytes", "4096", 3, "Bytes between two offset index entries."),
    broker("log.flush.interval.messages", "1", 5, "Messages written before an fsync; 1 fsyncs before every acknowledgement."),
    broker_unset("log.flush.interval.ms", 5, "Longest time unflushed data waits for an fsync; unset: no time-based flush."),
    broker("log.flush.offset.checkpoint.interval.ms", "60000", 3, "How often recovery points are checkpointed."),
    broker("log.message.timestamp.type", "CreateTime", 2, "CreateTime or LogAppendTime."),
    broker_unset("log.retention.ms", 5, "Segments whose newest record is older than this (ms) are deleted (-1: never); when unset, log.retention.minutes and then log.retention.hours apply."),
    broker_unset("log.retention.minutes", 3, "Retention in minutes, used when log.retention.ms is unset."),
    broker("log.retention.hours", "168", 3, "Retention in hours, used when log.retention.ms and log.retention.minutes are unset."),
    broker("log.retention.bytes", "-1", 5, "Partitions larger than this lose their oldest segments (-1: no limit)."),
    broker("log.retention.check.interval.ms", "300000", 5, "How often retention is applied."),
    broker("log.cleanup.policy", "delete", 7, "Default cleanup.policy of topics: delete and/or compact."),
    broker("log.cleaner.enable", "true", 1, "Run the log cleaner, which compacts topics whose cleanup.policy includes compact."),
    broker("log.cleaner.threads", "1", 3, "Logs cleaned at once."),
    broker("log.cleaner.dedupe.buffer.size", "134217728", 5, "Memory of the cleaners' offset maps (key hash to offset), over all threads."),
    broker("log.cleaner.io.max.bytes.per.second", "1.7976931348623157E308", 6, "Cleaner I/O (read plus written) allowed per second, over all threads."),
    broker("log.cleaner.backoff.ms", "15000", 5, "Pause of a cleaner thread when no log needs cleaning."),
    broker("log.cleaner.io.buffer.size", "524288", 3, "Memory of the cleaners' read and write buffers, over all threads."),
    broker("log.cleaner.io.buffer.load.factor", "0.9", 6, "How full a cleaner's offset map may get."),
    broker("log.cleaner.delete.retention.ms", "86400000", 5, "Default delete.retention.ms of topics."),
    broker("log.cleaner.min.cleanable.ratio", "0.5", 6, "Default min.cleanable.dirty.ratio of topics."),
    broker("log.cleaner.min.compaction.lag.ms", "0", 5, "Default min.compaction.lag.ms of topics."),
    broker("log.cleaner.max.compaction.lag.ms", "9223372036854775807", 5, "Default max.compaction.lag.ms of topics."),
    broker("log.cache.hot.bytes", "2147483648", 5, "Gregor only: page cache kept for fsynced log data, over all partitions; the oldest beyond it is dropped (-1: never, as Kafka)."),
    broker("group.initial.rebalance.delay.ms", "3000", 3, "Delay of the first rebalance of an empty group."),
    broker("group.min.session.timeout.ms", "6000", 3, "Smallest session timeout a member may ask for."),
    broker("group.max.session.timeout.ms", "1800000", 3, "Largest session timeout a member may ask for."),
    broker("group.max.size", "2147483647", 3, "Most members in a group."),
    broker("group.consumer.session.timeout.ms", "45000", 3, "Session timeout of consumer-protocol (KIP-848) group members."),
    broker("group.consumer.min.session.timeout.ms", "45000", 3, "Smallest group.consumer.session.timeout.ms allowed."),
    broker("group.consumer.max.session.timeout.ms", "60000", 3, "Largest group.consumer.session.timeout.ms allowed."),
    broker("group.consumer.heartbeat.interval.ms", "5000", 3, "How often consumer-protocol group members heartbeat."),
    broker("group.consumer.min.heartbeat.interval.ms", "5000", 3, "Smallest group.consumer.heartbeat.interval.ms allowed."),
    broker("group.consumer.max.heartbeat.interval.ms", "15000", 3, "Largest group.consumer.heartbeat.interval.ms allowed."),
    broker("group.consumer.max.size", "2147483647", 3, "Most members in a consumer-protocol group."),
    broker("group.consumer.assignors", "uniform,range", 7, "Server-side assignors of consumer-protocol groups; the first is the default."),
    broker("group.consumer.migration.policy", "bidirectional", 2, "Whether groups with members move between the classic and the consumer protocol: bidirectional, upgrade (classic to consumer), downgrade (consumer to classic) or disabled."),
    broker("group.share.enable", "true", 1, "Serve share groups (KIP-932); Kafka's switch behind its share.version feature, on by default as in Kafka 4.2 (off in cluster mode, docs/cluster.md)."),
    broker("group.share.session.timeout.ms", "45000", 3, "Session timeout of share group members."),
    broker("group.share.min.session.timeout.ms", "45000", 3, "Smallest group.share.session.timeout.ms allowed."),
    broker("group.share.max.session.timeout.ms", "60000", 3, "Largest group.share.session.timeout.ms allowed."),
    broker("group.share.heartbeat.interval.ms", "5000", 3, "How often share group members heartbeat."),
    broker("group.share.min.heartbeat.interval.ms", "5000", 3, "Smallest group.share.heartbeat.interval.ms allowed."),
    broker("group.share.max.heartbeat.interval.ms", "15000", 3, "Largest group.share.heartbeat.interval.ms allowed."),
    broker("group.share.max.size", "200", 3, "Most members in a share group."),
    broker("group.share.assignors", "simple", 7, "The share group assignor (only simple)."),
    broker("group.share.record.lock.duration.ms", "30000", 3, "How long a share consumer holds the records it acquired before they become available again."),
    broker("group.share.min.record.lock.duration.ms", "15000", 3, "Smallest share.record.lock.duration.ms a group may set."),
    broker("group.share.max.record.lock.duration.ms", "60000", 3, "Largest share.record.lock.duration.ms a group may set."),
    broker("group.share.delivery.count.limit", "5", 3, "Deliveries of a record to a share group before it is archived."),
    broker("group.share.partition.max.record.locks", "2000", 3, "Most offsets in flight (acquired or waiting behind one) per share-partition."),
    broker("group.share.max.share.sessions", "2000", 3, "Most share sessions on the broker."),
    broker("share.coordinator.state.topic.num.partitions", "50", 3, "Partitions of __share_group_state."),
    broker("share.coordinator.state.topic.segment.bytes", "104857600", 3, "Segment size of __share_group_state."),
    broker("share.coordinator.snapshot.update.records.per.snapshot", "500", 3, "Updates of a share-partition's state written before a whole snapshot."),
    broker("share.coordinator.state.topic.prune.interval.ms", "300000", 5, "How often __share_group_state is pruned below the oldest snapshot still needed."),
    broker("offsets.retention.minutes", "10080", 3, "Committed offsets of groups without members expire after this."),
    broker("offsets.retention.check.interval.ms", "600000", 5, "How often expired offsets and groups left with neither members nor offsets are removed."),
    broker("offsets.topic.num.partitions", "50", 3, "Partitions of __consumer_offsets."),
    broker("offsets.topic.segment.bytes", "104857600", 3, "Segment size of __consumer_offsets (compacted: only sealed segments are cleaned)."),
    broker("offset.metadata.max.bytes", "4096", 3, "Longest metadata of an offset commit."),
    broker("transaction.max.timeout.ms", "900000", 3, "Longest transaction timeout a producer may ask for."),
    broker("transaction.state.log.num.partitions", "50", 3, "Partitions of __transaction_state."),
    broker("transaction.state.log.segment.bytes", "104857600", 3, "Segment size of __transaction_state (compacted: only sealed segments are cleaned)."),
    broker("producer.id.expiration.ms", "86400000", 3, "Idle time after which an idempotent producer's state is forgotten."),
];

/// Whether `key` is a broker setting this version understands.
pub fn is_known_key(key: &str) -> bool {
    BROKER_CONFIGS.iter().any(|d| d.name == key) || listeners::is_listener_scoped_key(key)
}
