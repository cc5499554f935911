-- Maintenance that holds fewer and shorter locks, and partitions that no
-- application role (nor PUBLIC) reads directly.

-- 1. Every partition is reached through its partitioned table only (its
-- grants and row security). The monthly partitions made by
-- `nexiom_month_partitions` had their privileges revoked, but the default
-- partitions (`webhook_events_default`, `messages_default`,
-- `task_executions_default`) and the months made by migration 0022 did not:
-- under `ALTER DEFAULT PRIVILEGES … GRANT … TO nexiom_app`, a direct read of
-- a default partition returned every tenant's rows.
DO $$
DECLARE
    p record;
BEGIN
    FOR p IN
        SELECT c.relname
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema()
          AND c.relispartition
          AND c.relkind IN ('r', 'p')
    LOOP
        EXECUTE format('REVOKE ALL ON %I FROM PUBLIC, nexiom_app, nexiom_worker', p.relname);
    END LOOP;
END $$;

-- 2. Securing the tables again (every migration that creates a table calls
-- this) no longer alters the tables whose row security is on already:
-- `ALTER TABLE … ROW LEVEL SECURITY` takes an ACCESS EXCLUSIVE lock, held
-- until the migration commits, so re-securing some 45 tables queued all
-- traffic behind any long transaction on any of them.
CREATE OR REPLACE FUNCTION nexiom_secure_tables() RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
    t RECORD;
    tenant_column TEXT;
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO nexiom_app, nexiom_worker', current_schema());
    EXECUTE format('GRANT EXECUTE ON FUNCTION %I.nexiom_current_tenant() TO nexiom_app, nexiom_worker',
                   current_schema());
    FOR t IN
        SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema()
          AND c.relkind IN ('r', 'p')
          AND c.relname <> '_sqlx_migrations'
          AND NOT c.relispartition
    LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO nexiom_app, nexiom_worker',
                       t.relname);
        tenant_column := CASE
            WHEN t.relname = 'tenants' THEN 'id'
            WHEN EXISTS (
                SELECT 1 FROM information_schema.columns
                WHERE table_schema = current_schema()
                  AND table_name = t.relname
                  AND column_name = 'tenant_id'
            ) THEN 'tenant_id'
        END;
        CONTINUE WHEN tenant_column IS NULL;
        IF NOT t.relrowsecurity THEN
            EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t.relname);
        END IF;
        IF NOT t.relforcerowsecurity THEN
            EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t.relname);
        END IF;
        IF NOT EXISTS (
            SELECT 1 FROM pg_policies
            WHERE schemaname = current_schema() AND tablename = t.relname
              AND policyname = 'tenant_rows'
        ) THEN
            EXECUTE format(
                'CREATE POLICY tenant_rows ON %I USING (%I = nexiom_current_tenant()) '
                'WITH CHECK (%I = nexiom_current_tenant())',
                t.relname, tenant_column, tenant_column);
        END IF;
        IF NOT EXISTS (
            SELECT 1 FROM pg_policies
            WHERE schemaname = current_schema() AND tablename = t.relname
              AND policyname = 'worker_rows'
        ) THEN
            EXECUTE format(
                'CREATE POLICY worker_rows ON %I TO nexiom_worker USING (true) WITH CHECK (true)',
                t.relname);
        END IF;
    END LOOP;
END
$$;

-- 3. Dropping old months counts every candidate's rows before any lock.
-- Before, only the first month was counted unlocked: once the table was
-- locked (and the first partition dropped, which holds the parent until the
-- caller's statement ends), each later month was scanned whole under the
-- lock, so the first purge of a long history stopped the receiver, routing
-- and the inbox for the sum of those scans. Now the first pass (no lock)
-- counts and looks for unrouted events; the second, under the lock, only
-- looks again for an unrouted event (an index probe) and drops. A row
-- inserted into an old month between the passes is dropped with it and not
-- counted (`rows_dropped` is informative).
CREATE OR REPLACE FUNCTION nexiom_drop_months_before(tbl text, cutoff timestamptz,
                                                     OUT dropped integer, OUT rows_dropped bigint)
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    part record;
    v_month timestamp;
    v_at integer := length(tbl) + 3;
    v_kept boolean;
    v_names text[] := '{}';
    v_rows bigint[] := '{}';
    n bigint;
    i integer;
BEGIN
    IF nexiom_partition_key(tbl) IS NULL THEN
        RAISE EXCEPTION 'not a partitioned table: %', tbl;
    END IF;
    dropped := 0;
    rows_dropped := 0;
    PERFORM set_config('lock_timeout', '10s', true);
    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.' || tbl || '_partitions'));
    FOR part IN
        SELECT c.relname FROM pg_inherits inh
        JOIN pg_class c ON c.oid = inh.inhrelid
        JOIN pg_class p ON p.oid = inh.inhparent
        WHERE p.relname = tbl
          AND p.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
          AND c.relname ~ ('^' || tbl || '_y[0-9]{4}m[0-9]{2}$')
        ORDER BY c.relname
    LOOP
        v_month := make_timestamp(substr(part.relname, v_at, 4)::int,
                                  substr(part.relname, v_at + 5, 2)::int, 1, 0, 0, 0);
        CONTINUE WHEN (v_month + interval '1 month') AT TIME ZONE 'UTC' > cutoff;
        IF tbl = 'webhook_events' THEN
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE routed_at IS NULL)', part.relname)
                INTO v_kept;
            CONTINUE WHEN v_kept;
        END IF;
        EXECUTE format('SELECT count(*) FROM %I', part.relname) INTO n;
        v_names := v_names || part.relname::text;
        v_rows := v_rows || n;
    END LOOP;
    IF cardinality(v_names) = 0 THEN
        RETURN;
    END IF;
    EXECUTE format('LOCK TABLE %I IN SHARE ROW EXCLUSIVE MODE', tbl);
    FOR i IN 1 .. cardinality(v_names) LOOP
        IF tbl = 'webhook_events' THEN
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE routed_at IS NULL)', v_names[i])
                INTO v_kept;
            CONTINUE WHEN v_kept;
        END IF;
        EXECUTE format('DROP TABLE %I', v_names[i]);
        dropped := dropped + 1;
        rows_dropped := rows_dropped + v_rows[i];
    END LOOP;
END $$;

-- Replacing a function resets its settings: pinned to this schema again.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION nexiom_drop_months_before(text, timestamptz) SET search_path = %I, pg_catalog, pg_temp', current_schema());
END $$;
