-- Gregor cluster mode, schema version 2: DeleteRecords, retention, the collection of
-- objects no batch points to any more (docs/cluster.md, cluster/retention.rs), and the
-- metadata files shared by every broker.

-- A partition's log start offset moved, in the commit that moved it, for replicas to
-- replay: each deletes its local data below the new start.
CREATE TABLE log_start_events (
    commit_id        bigint  NOT NULL,
    topic_id         uuid    NOT NULL,
    partition        integer NOT NULL,
    log_start_offset bigint  NOT NULL,
    PRIMARY KEY (commit_id, topic_id, partition)
);

-- The commit that deleted an object's last batch (retention, DeleteRecords, topic
-- deletion). Once every live broker has applied it, no replica reads the object again and
-- the collector deletes it, from the store first, then here.
ALTER TABLE objects ADD COLUMN unreferenced_commit bigint;
CREATE INDEX objects_unreferenced ON objects (unreferenced_commit)
    WHERE unreferenced_commit IS NOT NULL;

-- The broker's metadata files (`__gregor_metadata/`: ACLs, SCRAM credentials, group
-- configs) are the cluster's: each change is the file's whole new text, in the commit that
-- made it, for every replica to write and reload (cluster/metadata_files.rs).
CREATE TABLE metadata_file_events (
    commit_id bigint PRIMARY KEY,
    name      text   NOT NULL,
    body      text   NOT NULL
);
CREATE INDEX metadata_file_events_by_name ON metadata_file_events (name, commit_id);
