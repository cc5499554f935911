-- Statistics of the partitioned tables as a whole.
--
-- Autovacuum analyzes partitions, never a partitioned table itself, so the
-- planner has no statistics of `messages`, `webhook_events` or
-- `task_executions` as a whole (the "inherited" statistics). It uses them
-- when a statement reads several partitions at once: a join to the table
-- (routing's lookup of a redelivered message, the batch reads of replies)
-- is estimated from them, and without them every equality is guessed at
-- one row in 200. PostgreSQL's documentation leaves it to the application to
-- run `ANALYZE` on such a table periodically.
--
-- `nexiom_analyze_partitioned(table)` analyzes one table of the fixed list
-- (`nexiom_partition_key`), which also refreshes its partitions' own
-- statistics (PostgreSQL 15 has no `ANALYZE ONLY`); `ANALYZE` reads a bounded
-- sample, so the cost does not grow with the table. It runs in the caller's
-- transaction and holds a lock on the table's partitions that lets reads and
-- writes go on but makes a partition's creation or drop wait until that
-- transaction ends, so the caller analyzes one table per transaction
-- (`OpsStore::refresh_statistics`). It waits at most 10 s for its lock (a
-- partition being created or dropped holds a stronger one): the call then
-- fails and the next run tries again. It answers whether the table exists.
-- It runs with the schema owner's rights, so that a worker role may call it.
CREATE FUNCTION nexiom_analyze_partitioned(tbl text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET lock_timeout = '10s'
AS $$
BEGIN
    IF nexiom_partition_key(tbl) IS NULL THEN
        RAISE EXCEPTION 'not a partitioned table: %', tbl;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_class c
        WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
          AND c.relname = tbl AND c.relkind = 'p'
    ) THEN
        RETURN false;
    END IF;
    EXECUTE format('ANALYZE %I', tbl);
    RETURN true;
END $$;

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION nexiom_analyze_partitioned(text) SET search_path = %I, pg_catalog, pg_temp', current_schema());
    EXECUTE 'REVOKE ALL ON FUNCTION nexiom_analyze_partitioned(text) FROM PUBLIC';
    EXECUTE 'GRANT EXECUTE ON FUNCTION nexiom_analyze_partitioned(text) TO nexiom_worker';
END $$;
