//! [`DeadLetterStore`] on Postgres: `dead_letters`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{DeadLetter, DeadLetterId, Inserted, NewDeadLetter, TenantId};
use uuid::Uuid;

use super::error::{Ref, db, require_refs};
use super::rows::parse;
use super::{PgStore, limit};
use crate::dead_letters::DeadLetterStore;
use crate::error::{Result, StorageError};

/// `dead_letters`.
#[derive(Debug, sqlx::FromRow)]
struct DeadLetterRow {
    id: Uuid,
    platform: String,
    tenant_id: Option<Uuid>,
    channel_id: Option<Uuid>,
    key: String,
    excerpt: String,
    reason: String,
    received_at: DateTime<Utc>,
}

impl DeadLetterRow {
    fn into_entity(self) -> Result<DeadLetter> {
        Ok(DeadLetter {
            id: self.id.into(),
            platform: parse("platform", &self.platform)?,
            tenant_id: self.tenant_id.map(Into::into),
            channel_id: self.channel_id.map(Into::into),
            key: self.key,
            excerpt: self.excerpt,
            reason: self.reason,
            received_at: self.received_at,
        })
    }
}

#[async_trait]
impl DeadLetterStore for PgStore {
    async fn insert_dead_letter(&self, new: NewDeadLetter) -> Result<Inserted<DeadLetter>> {
        new.validate()?;
        let insert = sqlx::query_as::<_, DeadLetterRow>(
            "INSERT INTO dead_letters (id, platform, tenant_id, channel_id, key, excerpt, \
                 reason, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (platform, key) DO NOTHING \
             RETURNING *",
        )
        .bind(DeadLetterId::generate().as_uuid())
        .bind(new.platform.as_str())
        .bind(new.tenant_id.map(|t| t.as_uuid()))
        .bind(new.channel_id.map(|c| c.as_uuid()))
        .bind(&new.key)
        .bind(&new.excerpt)
        .bind(&new.reason)
        .bind(new.received_at);
        let inserted = match new.tenant_id {
            Some(tenant) => {
                let refs: Vec<Ref> = new.channel_id.map(Ref::Channel).into_iter().collect();
                let mut tx = self.scoped(tenant).await?;
                require_refs(&mut *tx, tenant, &refs).await?;
                let inserted = insert.fetch_optional(&mut *tx).await.map_err(db)?;
                tx.commit().await.map_err(db)?;
                inserted
            }
            // A letter without a tenant (its account is not connected): worker
            // work, on the scan pool.
            None => insert.fetch_optional(&self.scan_pool).await.map_err(db)?,
        };
        if let Some(row) = inserted {
            return Ok(Inserted::created(row.into_entity()?));
        }
        // A cross-tenant lookup: `(platform, key)` is global, and the letter
        // holding it may have no tenant (stored before the account was connected).
        let existing: Option<DeadLetterRow> =
            sqlx::query_as("SELECT * FROM dead_letters WHERE platform = $1 AND key = $2")
                .bind(new.platform.as_str())
                .bind(&new.key)
                .fetch_optional(&self.scan_pool)
                .await
                .map_err(db)?;
        match existing {
            Some(row) => Ok(Inserted::existing(row.into_entity()?)),
            None => Err(StorageError::backend(format!(
                "postgres: dead letter {}/{} conflicted but cannot be read",
                new.platform, new.key
            ))),
        }
    }

    async fn list_dead_letters(
        &self,
        tenant: Option<TenantId>,
        max: u32,
    ) -> Result<Vec<DeadLetter>> {
        let query = sqlx::query_as::<_, DeadLetterRow>(
            "SELECT * FROM dead_letters \
             WHERE ($1::uuid IS NULL OR tenant_id = $1) \
             ORDER BY received_at DESC, id DESC \
             LIMIT $2",
        )
        .bind(tenant.map(|t| t.as_uuid()))
        .bind(limit(max));
        let rows = match tenant {
            Some(tenant) => {
                let mut tx = self.scoped(tenant).await?;
                let rows = query.fetch_all(&mut *tx).await.map_err(db)?;
                tx.commit().await.map_err(db)?;
                rows
            }
            // Every tenant's letters and those without a tenant: a cross-tenant scan.
            None => query.fetch_all(&self.scan_pool).await.map_err(db)?,
        };
        rows.into_iter().map(DeadLetterRow::into_entity).collect()
    }
}
