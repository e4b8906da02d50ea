-- Gregor cluster mode, schema version 4: every commit is announced on the channel
-- `gregor_commits` (NOTIFY, delivered when the commit's transaction commits), so that
-- replicas apply it at once instead of at their next poll (cluster/notifications.rs).
-- The payload is the commit number.
CREATE FUNCTION gregor_notify_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('gregor_commits', NEW.last_commit::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER cluster_commit_notify
    AFTER UPDATE OF last_commit ON cluster
    FOR EACH ROW EXECUTE FUNCTION gregor_notify_commit();
