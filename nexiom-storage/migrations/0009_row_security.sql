-- Row-level security per tenant.
--
-- Every table that holds tenant data gets `FORCE ROW LEVEL SECURITY` and two
-- permissive policies:
--
-- * `tenant_rows` (every role): a row is visible and writable only when its
--   tenant is the one the transaction set with
--   `SELECT set_config('nexiom.tenant_id', '<uuid>', true)`; with no tenant set,
--   nothing is visible. `PgStore` sets it at the start of every tenant-scoped
--   operation's transaction.
-- * `worker_rows` (role `nexiom_worker` and its members): every row, for the
--   cross-tenant queue scans (claims, stale-lease release, unrouted events,
--   polling lists, lookups of a webhook's channel by account).
--
-- Two roles, created here when missing (which needs CREATEROLE once; create
-- them beforehand otherwise): `nexiom_app`, the application role, which sees
-- only the tenant it set, and `nexiom_worker`. Neither can log in: grant them
-- to the login roles the processes use (`GRANT nexiom_app TO api_user`).
-- Superusers and roles with BYPASSRLS are not subject to policies at all.
--
-- The tables without a tenant (`app_settings`, `worker_flags`,
-- `task_executions`: process-wide settings and worker logs) have no policy;
-- both roles may read and write them.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'nexiom_app') THEN
        BEGIN
            CREATE ROLE nexiom_app NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created concurrently by a migration in another schema
        END;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'nexiom_worker') THEN
        BEGIN
            CREATE ROLE nexiom_worker NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    -- The role that owns the tables runs the migrations and, unless it is a
    -- superuser, would see no rows at all under FORCE ROW LEVEL SECURITY: it
    -- becomes a worker. Skipped when it may not grant the role.
    -- USAGE, not MEMBER: on PostgreSQL 16 the creator of a role is a member
    -- without its privileges (no INHERIT), which the policy would not count.
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT pg_has_role(current_user, 'nexiom_worker', 'USAGE') THEN
        BEGIN
            IF current_setting('server_version_num')::int >= 160000 THEN
                EXECUTE format('GRANT nexiom_worker TO %I WITH INHERIT TRUE', current_user);
            ELSE
                EXECUTE format('GRANT nexiom_worker TO %I', current_user);
            END IF;
        EXCEPTION
        WHEN unique_violation THEN
            NULL; -- granted concurrently by a migration in another database
        WHEN insufficient_privilege THEN
            RAISE NOTICE 'cannot grant nexiom_worker to %: grant it so this role sees every tenant', current_user;
        END;
    END IF;
END
$$;

-- The tenant the current transaction set, or NULL when none is set.
CREATE FUNCTION nexiom_current_tenant() RETURNS UUID
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('nexiom.tenant_id', true), '')::uuid $$;

-- Puts every table of this schema under the rules above: policies on the
-- tables with a tenant, grants on all of them. Idempotent; every later
-- migration that creates a table calls it.
CREATE FUNCTION nexiom_secure_tables() RETURNS void
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

SELECT nexiom_secure_tables();
