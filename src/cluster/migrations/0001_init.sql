-- Gregor cluster mode, schema version 1 (docs/cluster.md).
--
-- Every change other brokers must replay (a topic created or deleted, batches committed)
-- takes the next number of cluster.last_commit in the transaction that makes it. Taking it
-- locks that one row, so commits are serialised and their numbers are visible in order: a
-- broker that has replayed up to commit N has seen every change numbered N or less.

CREATE TABLE cluster (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    cluster_id  text    NOT NULL,
    last_commit bigint  NOT NULL DEFAULT 0
);

-- The brokers' membership epoch: one more each time a broker joins, leaves or is found
-- dead, in the transaction that changes the live set. Metadata reports it as every
-- partition's leader epoch, so clients can tell newer leaders from older ones.
CREATE TABLE membership (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    epoch     integer NOT NULL DEFAULT 0
);
INSERT INTO membership DEFAULT VALUES;

CREATE TABLE brokers (
    node_id      integer     PRIMARY KEY,
    -- Each listener as clients reach it: [{"listener": ..., "host": ..., "port": ...}].
    endpoints    jsonb       NOT NULL,
    rack         text,
    -- A new id per process start: two processes claiming one node id are told apart.
    incarnation  uuid        NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    -- False once a heartbeat found it silent for broker.session.timeout.ms.
    alive        boolean     NOT NULL DEFAULT true,
    -- The last commit its replica applied: a topic change is answered once every live
    -- broker has it (or after a bound), so that any broker a client asks next knows it.
    applied_commit bigint    NOT NULL DEFAULT 0
);

CREATE TABLE topics (
    topic_id   uuid    PRIMARY KEY,
    name       text    NOT NULL UNIQUE,
    partitions integer NOT NULL,
    -- The topic's config overrides, as a JSON object of strings.
    configs    jsonb   NOT NULL,
    commit_id  bigint  NOT NULL
);

-- Topic creations and deletions in commit order, for brokers to replay.
CREATE TABLE topic_events (
    commit_id  bigint  PRIMARY KEY,
    topic_id   uuid    NOT NULL,
    name       text    NOT NULL,
    partitions integer NOT NULL,
    configs    jsonb   NOT NULL,
    deleted    boolean NOT NULL
);

CREATE TABLE partitions (
    topic_id         uuid    NOT NULL REFERENCES topics ON DELETE CASCADE,
    partition        integer NOT NULL,
    -- The offset the next committed batch gets: the log end offset and high watermark.
    next_offset      bigint  NOT NULL DEFAULT 0,
    log_start_offset bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (topic_id, partition)
);

-- One uploaded object: the batches of one produce buffer, all partitions together.
CREATE TABLE objects (
    object_key text    PRIMARY KEY,
    size       bigint  NOT NULL,
    node_id    integer NOT NULL,
    commit_id  bigint  NOT NULL
);

-- Where each committed batch is: its offsets and its bytes in an object.
CREATE TABLE batches (
    topic_id      uuid     NOT NULL,
    partition     integer  NOT NULL,
    base_offset   bigint   NOT NULL,
    last_offset   bigint   NOT NULL,
    commit_id     bigint   NOT NULL,
    object_key    text     NOT NULL REFERENCES objects,
    byte_offset   bigint   NOT NULL,
    byte_length   integer  NOT NULL,
    max_timestamp bigint   NOT NULL,
    producer_id   bigint   NOT NULL,
    PRIMARY KEY (topic_id, partition, base_offset)
);
CREATE INDEX batches_by_commit ON batches (commit_id);
CREATE INDEX batches_by_object ON batches (object_key);

-- Idempotent producers' state per partition (Kafka's ProducerStateEntry): the epoch and
-- the last five batches' sequence and offset ranges, flattened four numbers a batch.
CREATE TABLE producer_states (
    topic_id       uuid     NOT NULL,
    partition      integer  NOT NULL,
    producer_id    bigint   NOT NULL,
    producer_epoch smallint NOT NULL,
    last_timestamp bigint   NOT NULL,
    batches        bigint[] NOT NULL,
    PRIMARY KEY (topic_id, partition, producer_id)
);

-- Producer ids are handed out in blocks of 1000; a block is one number of this sequence.
CREATE SEQUENCE producer_id_blocks START WITH 0 MINVALUE 0;
