//! [`ApiKeyStore`] on Postgres: `api_keys`. Every operation runs in a
//! transaction scoped to its tenant, verification included (the tenant is in
//! the token), so all of them work under the `nexiom_app` role.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{ApiKey, ApiKeyId, IssuedApiKey, NewApiKey, TenantId};
use uuid::Uuid;

use super::PgStore;
use super::error::{WriteFailure, db, write_error};
use crate::api_keys::{ApiKeyStore, hash_matches, mint, needs_touch, parse};
use crate::error::{Result, StorageError};

/// `api_keys` without its hash: what every operation but verification reads.
#[derive(Debug, sqlx::FromRow)]
struct ApiKeyRow {
    id: Uuid,
    tenant_id: Uuid,
    name: String,
    prefix: String,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
}

impl ApiKeyRow {
    fn into_entity(self) -> ApiKey {
        ApiKey {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            name: self.name,
            prefix: self.prefix,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
            last_used_at: self.last_used_at,
        }
    }
}

/// A key that may match a presented token, with its hash.
#[derive(sqlx::FromRow)]
struct CandidateRow {
    #[sqlx(flatten)]
    key: ApiKeyRow,
    hash: Vec<u8>,
}

#[async_trait]
impl ApiKeyStore for PgStore {
    async fn create_api_key(&self, new: NewApiKey) -> Result<IssuedApiKey> {
        new.validate()?;
        let minted = mint(new.tenant_id)?;
        let mut tx = self.scoped(new.tenant_id).await?;
        let result: std::result::Result<ApiKeyRow, _> = sqlx::query_as(
            "INSERT INTO api_keys (id, tenant_id, name, prefix, hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             RETURNING id, tenant_id, name, prefix, created_at, revoked_at, last_used_at",
        )
        .bind(ApiKeyId::generate().as_uuid())
        .bind(new.tenant_id.as_uuid())
        .bind(&new.name)
        .bind(&minted.prefix)
        .bind(minted.hash.as_slice())
        .bind(new.created_at)
        .fetch_one(&mut *tx)
        .await;
        match result {
            Ok(row) => {
                tx.commit().await.map_err(db)?;
                Ok(IssuedApiKey {
                    key: row.into_entity(),
                    secret: minted.token,
                })
            }
            Err(err) => {
                drop(tx);
                Err(write_error(
                    self,
                    err,
                    WriteFailure {
                        tenant: Some(new.tenant_id),
                        refs: &[],
                        conflict: None,
                    },
                )
                .await)
            }
        }
    }

    async fn list_api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKey>> {
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<ApiKeyRow> = sqlx::query_as(
            "SELECT id, tenant_id, name, prefix, created_at, revoked_at, last_used_at \
             FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id",
        )
        .bind(tenant.as_uuid())
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(rows.into_iter().map(ApiKeyRow::into_entity).collect())
    }

    async fn revoke_api_key(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
        at: DateTime<Utc>,
    ) -> Result<ApiKey> {
        let mut tx = self.scoped(tenant).await?;
        let row: Option<ApiKeyRow> = sqlx::query_as(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) \
             WHERE tenant_id = $1 AND id = $2 \
             RETURNING id, tenant_id, name, prefix, created_at, revoked_at, last_used_at",
        )
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .bind(at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.map(ApiKeyRow::into_entity)
            .ok_or_else(|| StorageError::not_found("api_key", id))
    }

    async fn verify_api_key(&self, token: &str, at: DateTime<Utc>) -> Result<Option<ApiKey>> {
        let Some(presented) = parse(token) else {
            return Ok(None);
        };
        let mut tx = self.scoped(presented.tenant).await?;
        let candidates: Vec<CandidateRow> = sqlx::query_as(
            "SELECT id, tenant_id, name, prefix, created_at, revoked_at, last_used_at, hash \
             FROM api_keys WHERE tenant_id = $1 AND prefix = $2",
        )
        .bind(presented.tenant.as_uuid())
        .bind(&presented.prefix)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let found = candidates
            .into_iter()
            .find(|c| hash_matches(&c.hash, &presented.hash))
            .map(|c| c.key.into_entity())
            .filter(|key| !key.is_revoked());
        let Some(key) = found else {
            tx.commit().await.map_err(db)?;
            return Ok(None);
        };
        if !needs_touch(key.last_used_at, at) {
            tx.commit().await.map_err(db)?;
            return Ok(Some(key));
        }
        // Recorded only when still older than `at` (another verification may
        // have just recorded a later use).
        let touched: Option<ApiKeyRow> = sqlx::query_as(
            "UPDATE api_keys SET last_used_at = $3 \
             WHERE tenant_id = $1 AND id = $2 \
               AND (last_used_at IS NULL OR last_used_at < $3) \
             RETURNING id, tenant_id, name, prefix, created_at, revoked_at, last_used_at",
        )
        .bind(presented.tenant.as_uuid())
        .bind(key.id.as_uuid())
        .bind(at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(Some(touched.map_or(key, ApiKeyRow::into_entity)))
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use chrono::TimeZone;
    use nexiom_core::NewTenant;
    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

    use super::*;
    use crate::TenantStore;

    /// The rows of `api_keys` are under the tenant policies of migration
    /// 0009: a transaction as `nexiom_app` sees and writes only the tenant it
    /// set, whatever its statements ask for.
    #[tokio::test]
    #[cfg_attr(
        nexiom_no_postgres,
        ignore = "no PostgreSQL reachable (see README: Tests)"
    )]
    async fn api_key_rows_are_under_row_level_security() {
        let Some(url) = crate::conformance::postgres_test_url().await else {
            return;
        };
        let options = PgConnectOptions::from_str(&url).expect("DATABASE_URL");
        let admin = sqlx::PgPool::connect_with(options.clone())
            .await
            .expect("connect");
        let schema = format!("t_{}", Uuid::now_v7().simple());
        sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
            .execute(&admin)
            .await
            .expect("schema");
        let in_schema = options.options([("search_path", schema.as_str())]);
        let store = PgStore::connect_with(in_schema.clone(), 2)
            .await
            .expect("store");
        store.migrate().await.expect("migrate");
        let at = Utc
            .with_ymd_and_hms(2026, 11, 22, 9, 0, 0)
            .single()
            .unwrap_or_default();
        let a = store
            .create_tenant(NewTenant::new("Acme", at))
            .await
            .expect("tenant");
        let b = store
            .create_tenant(NewTenant::new("Beta", at))
            .await
            .expect("tenant");
        let issued = store
            .create_api_key(NewApiKey::new(a.id, "ci", at))
            .await
            .expect("key");

        let forced: bool = sqlx::query_scalar(
            "SELECT relrowsecurity AND relforcerowsecurity FROM pg_class \
             WHERE oid = 'api_keys'::regclass",
        )
        .fetch_one(store.pool())
        .await
        .expect("pg_class");
        assert!(forced);

        let app = PgPoolOptions::new()
            .max_connections(1)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::Executor::execute(conn, "SET ROLE nexiom_app").await?;
                    Ok(())
                })
            })
            .connect_with(in_schema)
            .await
            .expect("connect as nexiom_app");
        let as_app = PgStore::from_pool(app.clone());

        let mut tx = as_app.scoped(b.id).await.expect("scoped");
        let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys")
            .fetch_one(&mut *tx)
            .await
            .expect("count");
        assert_eq!(seen, 0, "another tenant's keys are invisible");
        let revoked = sqlx::query("UPDATE api_keys SET revoked_at = created_at")
            .execute(&mut *tx)
            .await
            .expect("update");
        assert_eq!(revoked.rows_affected(), 0);
        let foreign = sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, name, prefix, hash, created_at) \
             VALUES ($1, $2, 'x', 'nxk_xxxxxxxx', $3, $4)",
        )
        .bind(Uuid::now_v7())
        .bind(a.id.as_uuid())
        .bind([0u8; 32].as_slice())
        .bind(at)
        .execute(&mut *tx)
        .await;
        assert!(foreign.is_err(), "a row of another tenant is refused");
        drop(tx);

        let mut tx = as_app.scoped(a.id).await.expect("scoped");
        let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys")
            .fetch_one(&mut *tx)
            .await
            .expect("count");
        assert_eq!(seen, 1);
        tx.commit().await.expect("commit");
        let verified = as_app
            .verify_api_key(issued.secret.expose(), at)
            .await
            .expect("verify");
        assert_eq!(verified.map(|k| k.id), Some(issued.key.id));

        app.close().await;
        store.pool().close().await;
        sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .execute(&admin)
            .await
            .expect("drop schema");
    }
}
