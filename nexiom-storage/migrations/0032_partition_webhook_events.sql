-- Webhook events partitioned by month of `occurred_at` (the platform's time
-- of the event, UTC), so that retention drops whole months instead of
-- deleting row by row; and the monthly partitions of every partitioned table
-- managed by two functions instead of one pair per table.
--
-- The partition key is the platform's time, not the time of receipt: a
-- redelivery carries the same time, so it lands in the same partition, and
-- the event key `(platform, event_id, occurred_at)` stays unique (a unique
-- key on a partitioned table must hold the partition key). Partitions are
-- named `webhook_events_yYYYYmMM`; a default partition takes rows of months
-- not created yet (events of long ago, or of a month ahead before its
-- partition exists).
--
-- Nothing references `webhook_events` (migrations 0029 and 0030 dropped its
-- foreign keys), so the table is rebuilt and the existing rows copied in.

-- Partitions are reached through their partitioned table, whose grants and
-- row security apply; a partition itself gets neither (no role but the
-- owner reads one directly, and the owner's partition functions below must
-- see every row of it).
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
        SELECT c.relname
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
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t.relname);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t.relname);
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

-- The partitioned tables and their partition keys; the functions below only
-- act on these.
CREATE FUNCTION nexiom_partition_key(tbl text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE tbl
        WHEN 'task_executions' THEN 'started_at'
        WHEN 'webhook_events' THEN 'occurred_at'
    END
$$;

-- Creates the monthly partitions of `tbl` from the month of `from_at` to the
-- month of `to_at` (UTC) that do not exist yet, moving rows of those months
-- out of the default partition; returns how many it created. Runs with the
-- rights of the schema's owner, so that a worker role may call it.
CREATE FUNCTION nexiom_month_partitions(tbl text, from_at timestamptz, to_at timestamptz)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    v_key text := nexiom_partition_key(tbl);
    v_default text := tbl || '_default';
    v_month timestamp := date_trunc('month', from_at AT TIME ZONE 'UTC');
    v_last timestamp := date_trunc('month', to_at AT TIME ZONE 'UTC');
    v_lower timestamptz;
    v_upper timestamptz;
    v_name text;
    v_moving boolean;
    created integer := 0;
BEGIN
    IF v_key IS NULL THEN
        RAISE EXCEPTION 'not a partitioned table: %', tbl;
    END IF;
    -- Creating a partition locks the table: never queue every writer
    -- behind a long transaction (the next run tries again).
    PERFORM set_config('lock_timeout', '10s', true);
    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.' || tbl || '_partitions'));
    WHILE v_month <= v_last LOOP
        v_name := format('%s_y%sm%s', tbl, to_char(v_month, 'YYYY'), to_char(v_month, 'MM'));
        v_lower := v_month AT TIME ZONE 'UTC';
        v_upper := (v_month + interval '1 month') AT TIME ZONE 'UTC';
        IF to_regclass(quote_ident(v_name)) IS NULL THEN
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE %I >= $1 AND %I < $2)',
                           v_default, v_key, v_key)
                INTO v_moving USING v_lower, v_upper;
            IF v_moving THEN
                EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', tbl, v_default);
            END IF;
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                           v_name, tbl, v_lower, v_upper);
            -- Reached through the partitioned table only (its grants and
            -- row security), whatever default privileges a deployment set.
            EXECUTE format('REVOKE ALL ON %I FROM PUBLIC, nexiom_app, nexiom_worker', v_name);
            IF v_moving THEN
                EXECUTE format('INSERT INTO %I SELECT * FROM %I WHERE %I >= $1 AND %I < $2',
                               tbl, v_default, v_key, v_key) USING v_lower, v_upper;
                EXECUTE format('DELETE FROM %I WHERE %I >= $1 AND %I < $2',
                               v_default, v_key, v_key) USING v_lower, v_upper;
                EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I DEFAULT', tbl, v_default);
            END IF;
            created := created + 1;
        END IF;
        v_month := v_month + interval '1 month';
    END LOOP;
    RETURN created;
END $$;

-- Drops the monthly partitions of `tbl` whose whole month ends at or before
-- `cutoff` and returns how many, and how many rows they held. The default
-- partition is never dropped. A partition of `webhook_events` still holding
-- an unrouted event is kept (retention never removes an unrouted event; the
-- caller's batched delete removes its routed ones). Rows older than
-- `cutoff` in other partitions are the caller's to delete.
--
-- The rows are counted and the unrouted events looked for before any lock;
-- then, when there is a month to drop, the table is locked against writers
-- (an insert in flight into that month commits first, and none starts) and
-- the unrouted events are looked for again, so that an event inserted
-- meanwhile keeps its month. The lock waits at most 10 seconds (the next
-- run tries again) and is held until the caller's statement ends.
CREATE FUNCTION nexiom_drop_months_before(tbl text, cutoff timestamptz,
                                          OUT dropped integer, OUT rows_dropped bigint)
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    part record;
    v_month timestamp;
    v_at integer := length(tbl) + 3;
    v_kept boolean;
    v_locked boolean := false;
    n bigint;
BEGIN
    IF nexiom_partition_key(tbl) IS NULL THEN
        RAISE EXCEPTION 'not a partitioned table: %', tbl;
    END IF;
    dropped := 0;
    rows_dropped := 0;
    PERFORM set_config('lock_timeout', '10s', true);
    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.' || tbl || '_partitions'));
    FOR part IN
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
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
        IF NOT v_locked THEN
            EXECUTE format('LOCK TABLE %I IN SHARE ROW EXCLUSIVE MODE', tbl);
            v_locked := true;
        END IF;
        IF tbl = 'webhook_events' THEN
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE routed_at IS NULL)', part.relname)
                INTO v_kept;
            CONTINUE WHEN v_kept;
        END IF;
        EXECUTE format('DROP TABLE %I', part.relname);
        dropped := dropped + 1;
        rows_dropped := rows_dropped + n;
    END LOOP;
END $$;

-- Pin both functions to this schema (they run with the owner's rights); the
-- per-table pair of migration 0022 gives way to them.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION nexiom_month_partitions(text, timestamptz, timestamptz) SET search_path = %I, pg_catalog, pg_temp', current_schema());
    EXECUTE format('ALTER FUNCTION nexiom_drop_months_before(text, timestamptz) SET search_path = %I, pg_catalog, pg_temp', current_schema());
    EXECUTE 'REVOKE ALL ON FUNCTION nexiom_month_partitions(text, timestamptz, timestamptz) FROM PUBLIC';
    EXECUTE 'REVOKE ALL ON FUNCTION nexiom_drop_months_before(text, timestamptz) FROM PUBLIC';
    EXECUTE 'GRANT EXECUTE ON FUNCTION nexiom_month_partitions(text, timestamptz, timestamptz) TO nexiom_worker';
    EXECUTE 'GRANT EXECUTE ON FUNCTION nexiom_drop_months_before(text, timestamptz) TO nexiom_worker';
END $$;
DROP FUNCTION nexiom_task_executions_partitions(timestamptz, timestamptz);
DROP FUNCTION nexiom_task_executions_drop_before(timestamptz);

ALTER TABLE webhook_events RENAME TO webhook_events_unpartitioned;
ALTER TABLE webhook_events_unpartitioned
    RENAME CONSTRAINT pk_webhook_events TO pk_webhook_events_unpartitioned;
ALTER TABLE webhook_events_unpartitioned
    RENAME CONSTRAINT uq_webhook_events_key TO uq_webhook_events_key_unpartitioned;
ALTER TABLE webhook_events_unpartitioned
    RENAME CONSTRAINT ck_webhook_events_kind TO ck_webhook_events_kind_unpartitioned;
ALTER TABLE webhook_events_unpartitioned
    RENAME CONSTRAINT ck_webhook_events_delivery_status
    TO ck_webhook_events_delivery_status_unpartitioned;
DROP INDEX ix_webhook_events_unrouted;

CREATE TABLE webhook_events (
    id               UUID        NOT NULL,
    tenant_id        UUID        NOT NULL,
    channel_id       UUID        NOT NULL,
    platform         TEXT        NOT NULL,
    event_id         TEXT        NOT NULL,
    kind             TEXT        NOT NULL,
    sender_id        TEXT,
    sender_name      TEXT,
    text             TEXT,
    has_media        BOOLEAN     NOT NULL,
    delivery_status  TEXT,
    target_id        TEXT,
    parent_id        TEXT,
    occurred_at      TIMESTAMPTZ NOT NULL,
    payload          JSONB       NOT NULL,
    received_at      TIMESTAMPTZ NOT NULL,
    routed_at        TIMESTAMPTZ,
    conversation_id  UUID,
    -- The partition key is part of both keys; ids are UUID v7, unique on
    -- their own.
    CONSTRAINT pk_webhook_events PRIMARY KEY (id, occurred_at),
    CONSTRAINT uq_webhook_events_key UNIQUE (platform, event_id, occurred_at),
    CONSTRAINT ck_webhook_events_kind
        CHECK (kind IN ('message', 'status', 'comment', 'comment_reply', 'preference', 'other')),
    CONSTRAINT ck_webhook_events_delivery_status
        CHECK (delivery_status IN ('pending', 'sent', 'delivered', 'read', 'failed'))
) PARTITION BY RANGE (occurred_at);
CREATE INDEX ix_webhook_events_unrouted ON webhook_events (received_at, id)
    WHERE routed_at IS NULL;
CREATE TABLE webhook_events_default PARTITION OF webhook_events DEFAULT;

-- Months of the existing rows (at most the last two years: older rows go to
-- the default partition, as do rows more than a year ahead) and the next
-- three, then the rows themselves.
SELECT nexiom_month_partitions('webhook_events',
    greatest(coalesce((SELECT min(occurred_at) FROM webhook_events_unpartitioned), now()),
             now() - interval '24 months'),
    least(greatest(coalesce((SELECT max(occurred_at) FROM webhook_events_unpartitioned), now()),
                   now()),
          now() + interval '1 year')
        + interval '3 months');
INSERT INTO webhook_events SELECT * FROM webhook_events_unpartitioned;
DROP TABLE webhook_events_unpartitioned;

SELECT nexiom_secure_tables();
