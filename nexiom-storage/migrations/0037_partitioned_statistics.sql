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
-- `nexiom_analyze_partitioned()` analyzes each partitioned table of the
-- fixed list (`nexiom_partition_key`), which also refreshes its partitions'
-- own statistics (PostgreSQL 15 has no `ANALYZE ONLY`); `ANALYZE` reads a
-- bounded sample of each, so the cost does not grow with the table. It takes
-- a lock that lets reads and writes go on, and waits at most 10 s for it (a
-- partition being created or dropped holds a stronger one: the next run
-- tries again). It returns how many tables it analyzed. It runs with the
-- schema owner's rights, so that a worker role may call it
-- (`OpsStore::refresh_statistics`).
CREATE FUNCTION nexiom_analyze_partitioned() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    t record;
    analyzed integer := 0;
BEGIN
    PERFORM set_config('lock_timeout', '10s', true);
    FOR t IN
        SELECT c.relname
        FROM pg_class c
        WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
          AND c.relkind = 'p'
          AND nexiom_partition_key(c.relname) IS NOT NULL
        ORDER BY c.relname
    LOOP
        EXECUTE format('ANALYZE %I', t.relname);
        analyzed := analyzed + 1;
    END LOOP;
    RETURN analyzed;
END $$;

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION nexiom_analyze_partitioned() SET search_path = %I, pg_catalog, pg_temp', current_schema());
    EXECUTE 'REVOKE ALL ON FUNCTION nexiom_analyze_partitioned() FROM PUBLIC';
    EXECUTE 'GRANT EXECUTE ON FUNCTION nexiom_analyze_partitioned() TO nexiom_worker';
END $$;
