-- Execution logs partitioned by month (`started_at`, UTC), so that retention
-- drops whole months instead of deleting row by row. Partitions are named
-- `task_executions_yYYYYmMM`; a default partition takes rows of months not
-- created yet (a worker creates them ahead, moving any such rows in).
--
-- The existing rows are copied into the partitioned table.

ALTER TABLE task_executions RENAME TO task_executions_unpartitioned;
ALTER TABLE task_executions_unpartitioned
    RENAME CONSTRAINT pk_task_executions TO pk_task_executions_unpartitioned;
ALTER TABLE task_executions_unpartitioned
    RENAME CONSTRAINT ck_task_executions_status TO ck_task_executions_status_unpartitioned;
DROP INDEX ix_task_executions_worker;
DROP INDEX ix_task_executions_started;

CREATE TABLE task_executions (
    id               UUID        NOT NULL,
    worker_name      TEXT        NOT NULL,
    status           TEXT        NOT NULL,
    started_at       TIMESTAMPTZ NOT NULL,
    finished_at      TIMESTAMPTZ,
    duration_ms      BIGINT,
    items_processed  BIGINT      NOT NULL,
    items_failed     BIGINT      NOT NULL,
    results          JSONB       NOT NULL,
    error            TEXT,
    -- The partition key must be part of the primary key; ids are UUID v7,
    -- unique on their own.
    CONSTRAINT pk_task_executions PRIMARY KEY (id, started_at),
    CONSTRAINT ck_task_executions_status CHECK (status IN ('running', 'completed', 'failed'))
) PARTITION BY RANGE (started_at);
CREATE INDEX ix_task_executions_worker ON task_executions (worker_name, started_at DESC);
CREATE INDEX ix_task_executions_started ON task_executions (started_at DESC, id DESC);
CREATE TABLE task_executions_default PARTITION OF task_executions DEFAULT;

-- Creates the monthly partitions from the month of `from_at` to the month
-- of `to_at` (UTC) that do not exist yet, moving rows of those months out of
-- the default partition; returns how many it created. Runs with the rights
-- of the schema's owner, so that a worker role may call it.
CREATE FUNCTION nexiom_task_executions_partitions(from_at timestamptz, to_at timestamptz)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    v_month timestamp := date_trunc('month', from_at AT TIME ZONE 'UTC');
    v_last timestamp := date_trunc('month', to_at AT TIME ZONE 'UTC');
    v_lower timestamptz;
    v_upper timestamptz;
    v_name text;
    created integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.task_executions_partitions'));
    WHILE v_month <= v_last LOOP
        v_name := format('task_executions_y%sm%s', to_char(v_month, 'YYYY'), to_char(v_month, 'MM'));
        v_lower := v_month AT TIME ZONE 'UTC';
        v_upper := (v_month + interval '1 month') AT TIME ZONE 'UTC';
        IF to_regclass(quote_ident(v_name)) IS NULL THEN
            IF EXISTS (SELECT 1 FROM task_executions_default
                       WHERE started_at >= v_lower AND started_at < v_upper) THEN
                ALTER TABLE task_executions DETACH PARTITION task_executions_default;
                EXECUTE format('CREATE TABLE %I PARTITION OF task_executions FOR VALUES FROM (%L) TO (%L)',
                               v_name, v_lower, v_upper);
                INSERT INTO task_executions
                    SELECT * FROM task_executions_default
                    WHERE started_at >= v_lower AND started_at < v_upper;
                DELETE FROM task_executions_default
                    WHERE started_at >= v_lower AND started_at < v_upper;
                ALTER TABLE task_executions ATTACH PARTITION task_executions_default DEFAULT;
            ELSE
                EXECUTE format('CREATE TABLE %I PARTITION OF task_executions FOR VALUES FROM (%L) TO (%L)',
                               v_name, v_lower, v_upper);
            END IF;
            created := created + 1;
        END IF;
        v_month := v_month + interval '1 month';
    END LOOP;
    RETURN created;
END $$;

-- Drops the monthly partitions whose whole month ends at or before `cutoff`
-- and returns how many rows they held (the default partition is never
-- dropped). Rows older than `cutoff` in other partitions are the caller's to
-- delete.
CREATE FUNCTION nexiom_task_executions_drop_before(cutoff timestamptz, OUT dropped integer, OUT rows_dropped bigint)
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    part record;
    v_month timestamp;
    n bigint;
BEGIN
    dropped := 0;
    rows_dropped := 0;
    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.task_executions_partitions'));
    FOR part IN
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname = 'task_executions'
          AND p.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
          AND c.relname ~ '^task_executions_y[0-9]{4}m[0-9]{2}$'
        ORDER BY c.relname
    LOOP
        v_month := make_timestamp(substr(part.relname, 18, 4)::int, substr(part.relname, 23, 2)::int, 1, 0, 0, 0);
        IF (v_month + interval '1 month') AT TIME ZONE 'UTC' <= cutoff THEN
            EXECUTE format('SELECT count(*) FROM %I', part.relname) INTO n;
            EXECUTE format('DROP TABLE %I', part.relname);
            dropped := dropped + 1;
            rows_dropped := rows_dropped + n;
        END IF;
    END LOOP;
END $$;

-- Pin both functions to this schema (they run with the owner's rights).
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION nexiom_task_executions_partitions(timestamptz, timestamptz) SET search_path = %I, pg_catalog', current_schema());
    EXECUTE format('ALTER FUNCTION nexiom_task_executions_drop_before(timestamptz) SET search_path = %I, pg_catalog', current_schema());
    EXECUTE 'REVOKE ALL ON FUNCTION nexiom_task_executions_partitions(timestamptz, timestamptz) FROM PUBLIC';
    EXECUTE 'REVOKE ALL ON FUNCTION nexiom_task_executions_drop_before(timestamptz) FROM PUBLIC';
    EXECUTE 'GRANT EXECUTE ON FUNCTION nexiom_task_executions_partitions(timestamptz, timestamptz) TO nexiom_worker';
    EXECUTE 'GRANT EXECUTE ON FUNCTION nexiom_task_executions_drop_before(timestamptz) TO nexiom_worker';
END $$;

-- Months of the existing rows (at most the last two years: older rows go to
-- the default partition) and the next three, then the rows themselves.
SELECT nexiom_task_executions_partitions(
    greatest(coalesce((SELECT min(started_at) FROM task_executions_unpartitioned), now()),
             now() - interval '24 months'),
    greatest(coalesce((SELECT max(started_at) FROM task_executions_unpartitioned), now()), now())
        + interval '3 months');
INSERT INTO task_executions SELECT * FROM task_executions_unpartitioned;
DROP TABLE task_executions_unpartitioned;

SELECT nexiom_secure_tables();
