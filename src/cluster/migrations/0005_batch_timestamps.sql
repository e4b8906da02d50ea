-- Gregor cluster mode, schema version 5: each remembered batch of an idempotent producer
-- also keeps its max timestamp as stored (on a LogAppendTime topic, its append time), one
-- entry per batch in `batches`' order, so that a retried batch is answered with the
-- original's timestamp as Kafka answers a duplicate. Rows written before have none, which
-- reads as unknown (-1).
ALTER TABLE producer_states ADD COLUMN batch_timestamps int8[] NOT NULL DEFAULT '{}';
