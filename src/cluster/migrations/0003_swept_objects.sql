-- Gregor cluster mode, schema version 3: objects in the store that no commit names (an
-- upload whose commit failed) are swept (docs/cluster.md, cluster/retention.rs).

-- A swept object keeps its row, with the time it was swept, as a tombstone: a commit
-- that names it later (one that was still in flight when it was swept) then fails on the
-- primary key instead of pointing at deleted bytes.
ALTER TABLE objects ADD COLUMN swept_at timestamptz;
