//! [`DeadLetterStore`] on Postgres: `dead_letters`.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{ChannelId, DeadLetter, DeadLetterId, Inserted, NewDeadLetter, TenantId};
use uuid::Uuid;

use super::error::{Ref, db, require_refs};
use super::rows::parse;
use super::{PgStore, limit};
use crate::dead_letters::{DeadLetterStore, other_tenants};
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

/// The distinct channels `letters` name, as references to check.
fn channel_refs(letters: &[&NewDeadLetter]) -> Vec<Ref> {
    let channels: BTreeSet<ChannelId> = letters.iter().filter_map(|l| l.channel_id).collect();
    channels.into_iter().map(Ref::Channel).collect()
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
            Some(row) => other_tenants(row.into_entity()?, new.tenant_id).map(Inserted::existing),
            None => Err(StorageError::backend(format!(
                "postgres: dead letter {}/{} conflicted but cannot be read",
                new.platform, new.key
            ))),
        }
    }

    async fn insert_dead_letters(&self, letters: &[NewDeadLetter]) -> Result<u64> {
        for letter in letters {
            letter.validate()?;
        }
        // A key given twice: the first one (as one statement would keep it),
        // whatever tenant the later ones name.
        let mut seen = HashSet::new();
        let mut groups: BTreeMap<Option<TenantId>, Vec<&NewDeadLetter>> = BTreeMap::new();
        for letter in letters {
            if seen.insert((letter.platform.as_str(), letter.key.as_str())) {
                groups.entry(letter.tenant_id).or_default().push(letter);
            }
        }
        // Every tenant's references checked before anything is written. With
        // one tenant (the usual body) the check made with its insert is
        // enough: it runs first, before the letters without a tenant.
        let tenants = groups.keys().filter(|t| t.is_some()).count();
        for (tenant, letters) in groups.iter().filter(|_| tenants > 1) {
            let Some(tenant) = *tenant else { continue };
            let mut tx = self.scoped(tenant).await?;
            require_refs(&mut *tx, tenant, &channel_refs(letters)).await?;
            tx.commit().await.map_err(db)?;
        }
        // One statement per tenant (under its row security), the letters in
        // key order (two bodies holding the same keys never wait on each
        // other in opposite orders); those without a tenant last.
        let mut created = 0;
        for (tenant, mut letters) in groups.into_iter().rev() {
            letters
                .sort_by(|a, b| (a.platform.as_str(), &a.key).cmp(&(b.platform.as_str(), &b.key)));
            let insert = sqlx::query(
                "INSERT INTO dead_letters (id, platform, tenant_id, channel_id, key, excerpt, \
                     reason, received_at) \
                 SELECT u.id, u.platform, $1, u.channel_id, u.key, u.excerpt, u.reason, \
                     u.received_at \
                 FROM UNNEST($2::uuid[], $3::text[], $4::uuid[], $5::text[], $6::text[], \
                     $7::text[], $8::timestamptz[]) WITH ORDINALITY \
                     AS u(id, platform, channel_id, key, excerpt, reason, received_at, n) \
                 ORDER BY u.n \
                 ON CONFLICT (platform, key) DO NOTHING",
            )
            .bind(tenant.map(|t| t.as_uuid()))
            .bind(
                letters
                    .iter()
                    .map(|_| DeadLetterId::generate().as_uuid())
                    .collect::<Vec<_>>(),
            )
            .bind(
                letters
                    .iter()
                    .map(|l| l.platform.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                letters
                    .iter()
                    .map(|l| l.channel_id.map(|c| c.as_uuid()))
                    .collect::<Vec<_>>(),
            )
            .bind(letters.iter().map(|l| l.key.as_str()).collect::<Vec<_>>())
            .bind(
                letters
                    .iter()
                    .map(|l| l.excerpt.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                letters
                    .iter()
                    .map(|l| l.reason.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(letters.iter().map(|l| l.received_at).collect::<Vec<_>>());
            let done = match tenant {
                Some(tenant) => {
                    // Checked again with the insert: a channel deleted since
                    // the first check is refused here, not by its key.
                    let mut tx = self.scoped(tenant).await?;
                    require_refs(&mut *tx, tenant, &channel_refs(&letters)).await?;
                    let done = insert.execute(&mut *tx).await.map_err(db)?;
                    tx.commit().await.map_err(db)?;
                    done
                }
                None => insert.execute(&self.scan_pool).await.map_err(db)?,
            };
            created += done.rows_affected();
        }
        Ok(created)
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
