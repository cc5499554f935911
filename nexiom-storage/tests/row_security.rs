//! Row-level security on PostgreSQL, checked on the catalog and on the rows.
//!
//! - `every_table_is_tenant_scoped_or_declared_global`: every table of the
//!   schema either has `FORCE ROW LEVEL SECURITY` and the `tenant_rows` policy,
//!   or is one of the few process-wide tables listed in [`GLOBAL`] (and has no
//!   `tenant_id` column). A new table without a policy fails it.
//! - `the_application_role_sees_and_writes_only_its_tenant`: conformance
//!   scenarios fill a schema with several tenants' rows; then, for every tenant
//!   table of the catalog, raw SQL as role `nexiom_app` sees no row of another
//!   tenant, sees exactly its own tenant's rows, sees nothing with no tenant
//!   set, and cannot insert a row of another tenant. Every tenant table must be
//!   filled by at least one scenario, so the check is never vacuous.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::Arc;

use nexiom_storage::Store;
use nexiom_storage::conformance::{self as c, TestStore, postgres_test_store, postgres_test_url};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, Row};
use uuid::Uuid;

/// Tables that hold no tenant's data: process-wide settings, worker logs
/// and the claimed slots of wall-clock worker schedules.
const GLOBAL: [&str; 4] = [
    "app_settings",
    "worker_flags",
    "task_executions",
    "worker_slots",
];

async fn admin(schema: &str) -> PgConnection {
    let url = postgres_test_url().await.expect("a database");
    let options = PgConnectOptions::from_str(&url)
        .expect("a valid URL")
        .options([("search_path", schema)]);
    PgConnection::connect_with(&options).await.expect("connect")
}

/// The tenant tables of `schema` with their tenant column.
async fn tenant_tables(conn: &mut PgConnection) -> Vec<(String, String)> {
    sqlx::query(
        "SELECT c.relname::text, \
                CASE WHEN c.relname = 'tenants' THEN 'id' ELSE 'tenant_id' END \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') \
           AND NOT c.relispartition \
           AND c.relname <> '_sqlx_migrations' AND NOT (c.relname = ANY($1)) \
         ORDER BY 1",
    )
    .bind(GLOBAL.map(str::to_owned).to_vec())
    .fetch_all(&mut *conn)
    .await
    .expect("catalog")
    .into_iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

#[tokio::test]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn every_table_is_tenant_scoped_or_declared_global() {
    let Some(test) = postgres_test_store().await else {
        return;
    };
    let schema = test.schema().expect("a Postgres store").to_owned();
    let mut conn = admin(&schema).await;
    let tables = tenant_tables(&mut conn).await;
    assert!(tables.len() >= 25, "only {} tenant tables?", tables.len());
    for (table, column) in &tables {
        let row = sqlx::query(
            "SELECT c.relrowsecurity, c.relforcerowsecurity, \
                    EXISTS (SELECT 1 FROM pg_policies p WHERE p.schemaname = current_schema() \
                            AND p.tablename = c.relname AND p.policyname = 'tenant_rows' \
                            AND p.qual LIKE '%nexiom_current_tenant()%' \
                            AND p.with_check LIKE '%nexiom_current_tenant()%'), \
                    EXISTS (SELECT 1 FROM information_schema.columns \
                            WHERE table_schema = current_schema() AND table_name = c.relname \
                            AND column_name = $2) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relname = $1",
        )
        .bind(table)
        .bind(column)
        .fetch_one(&mut conn)
        .await
        .expect("catalog row");
        let (enabled, forced, policy, has_column): (bool, bool, bool, bool) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        assert!(
            has_column,
            "table {table} has no {column} column: give it one (and call nexiom_secure_tables()) \
             or, if it holds no tenant data, add it to GLOBAL with a reason"
        );
        assert!(
            enabled && forced,
            "table {table}: row-level security not forced"
        );
        assert!(
            policy,
            "table {table}: no tenant_rows policy on nexiom_current_tenant()"
        );
    }
    for table in GLOBAL {
        let has_tenant: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 \
               AND column_name = 'tenant_id')",
        )
        .bind(table)
        .fetch_one(&mut conn)
        .await
        .expect("catalog");
        assert!(
            !has_tenant,
            "{table} is declared global but has a tenant_id"
        );
    }
    drop(conn);
    test.cleanup().await;
}

type Scenario =
    fn(Arc<dyn Store>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

macro_rules! scenarios {
    ($($name:ident),+ $(,)?) => {
        [$((stringify!($name), (|s| Box::pin(c::$name(s))) as Scenario)),+]
    };
}

/// Checks every non-empty tenant table of `schema` as role `nexiom_app`;
/// returns the tables that had rows.
async fn check_schema(schema: &str) -> BTreeSet<String> {
    let mut conn = admin(schema).await;
    let mut checked = BTreeSet::new();
    for (table, column) in tenant_tables(&mut conn).await {
        let owners: Vec<Uuid> = sqlx::query_scalar(&format!(
            "SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL"
        ))
        .fetch_all(&mut conn)
        .await
        .expect("owners");
        let Some(&b) = owners.first() else { continue };
        let b_rows: i64 =
            sqlx::query_scalar(&format!("SELECT count(*) FROM {table} WHERE {column} = $1"))
                .bind(b)
                .fetch_one(&mut conn)
                .await
                .expect("count");
        // One row of tenant B, kept aside to try to insert it as tenant A.
        let columns: Vec<String> = sqlx::query_scalar(
            "SELECT quote_ident(attname) FROM pg_attribute \
             WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped \
               AND attgenerated = '' ORDER BY attnum",
        )
        .bind(table.as_str())
        .fetch_all(&mut conn)
        .await
        .expect("columns");
        let columns = columns.join(", ");
        sqlx::query(&format!(
            "CREATE TEMP TABLE probe AS SELECT {columns} FROM {table} WHERE {column} = $1 LIMIT 1"
        ))
        .bind(b)
        .execute(&mut conn)
        .await
        .expect("probe");
        sqlx::query("GRANT SELECT ON probe TO nexiom_app")
            .execute(&mut conn)
            .await
            .expect("grant");

        let mut tx = conn.begin().await.expect("begin");
        sqlx::query("SET LOCAL ROLE nexiom_app")
            .execute(&mut *tx)
            .await
            .expect("role");
        let none: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut *tx)
            .await
            .expect("count");
        assert_eq!(none, 0, "{table}: rows visible with no tenant set");
        let a = Uuid::now_v7();
        sqlx::query("SELECT set_config('nexiom.tenant_id', $1, true)")
            .bind(a.to_string())
            .execute(&mut *tx)
            .await
            .expect("tenant");
        let seen: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut *tx)
            .await
            .expect("count");
        assert_eq!(seen, 0, "{table}: tenant {a} sees other tenants' rows");
        let err = sqlx::query(&format!(
            "INSERT INTO {table} ({columns}) SELECT {columns} FROM probe"
        ))
        .execute(&mut *tx)
        .await
        .expect_err("inserting another tenant's row must fail");
        let code = err
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("42501"), "{table}: {err}");
        tx.rollback().await.expect("rollback");

        let mut tx = conn.begin().await.expect("begin");
        sqlx::query("SET LOCAL ROLE nexiom_app")
            .execute(&mut *tx)
            .await
            .expect("role");
        sqlx::query("SELECT set_config('nexiom.tenant_id', $1, true)")
            .bind(b.to_string())
            .execute(&mut *tx)
            .await
            .expect("tenant");
        let own: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut *tx)
            .await
            .expect("count");
        assert_eq!(
            own, b_rows,
            "{table}: tenant {b} does not see exactly its rows"
        );
        tx.rollback().await.expect("rollback");
        sqlx::query("DROP TABLE probe")
            .execute(&mut conn)
            .await
            .expect("drop probe");
        checked.insert(table);
    }
    checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
async fn the_application_role_sees_and_writes_only_its_tenant() {
    let scenarios = scenarios![
        tenant_isolation,
        routing_turns_events_into_messages_statuses_and_comments,
        a_status_routed_before_its_message_id_is_applied_when_recorded,
        triage_queues_sent_records_and_comment_replies,
        post_runs,
        comments_and_checkpoints,
        rules_examples_decisions_and_ai_control,
        kpi_rows_upsert_on_window_start,
        missions_content_jobs_and_reports,
        dead_letters_are_stored_once_and_listed,
        dead_letters_are_stored_in_batches,
        embeddings_are_upserted_and_checked,
        topic_runs_keep_identity_sizes_and_members,
        claims_keep_a_channel_to_one_worker_and_honour_holds,
        api_key_revocation_is_idempotent_and_tenant_scoped,
        tenant_settings_round_trip_and_stay_apart,
        broadcast_contacts_audiences_and_post_audiences,
        broadcast_deliveries_are_made_and_sent_once,
        post_discovery_is_claimed_and_records_its_runs,
        escalations_write_their_notification,
        notification_deliveries_retry_and_die,
        agent_replies_are_claimed_once_and_recorded,
        inbox_items_follow_messages_and_people,
        canned_replies_are_kept_per_tenant,
        first_response_targets_are_kept_per_tenant,
    ];
    let mut covered = BTreeSet::new();
    let mut all_tables = Vec::new();
    for (name, scenario) in scenarios {
        let Some(test): Option<TestStore> = postgres_test_store().await else {
            return;
        };
        let schema = test.schema().expect("a Postgres store").to_owned();
        scenario(test.store()).await;
        let checked = check_schema(&schema).await;
        assert!(!checked.is_empty(), "scenario {name} wrote no tenant row");
        covered.extend(checked);
        if all_tables.is_empty() {
            let mut conn = admin(&schema).await;
            all_tables = tenant_tables(&mut conn).await;
        }
        test.cleanup().await;
    }
    let missing: Vec<&str> = all_tables
        .iter()
        .map(|(t, _)| t.as_str())
        .filter(|t| !covered.contains(*t))
        .collect();
    assert!(
        missing.is_empty(),
        "no scenario writes these tenant tables, so their policies went unchecked: {missing:?}"
    );
}
