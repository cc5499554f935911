//! [`InboxStore`] on Postgres: `inbox_items` (kept current by the triggers
//! of migration 0027), `inbox_notes` and `canned_replies`. Every operation
//! runs in a transaction scoped to its tenant; each list view reads through
//! its own index ([`PgStore::explain_inbox`] shows the plan).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{
    CannedReply, CannedReplyId, InboxItem, InboxNote, InboxNoteId, InboxPage, InboxQuery,
    InboxStatus, InboxSubject, TenantId, validate,
};
use sqlx::postgres::PgArguments;
use uuid::Uuid;

use super::error::{WriteFailure, db, write_error};
use super::inbox_list::{list_args, list_sql};
use super::{PgStore, Scoped, bound};
use crate::error::{Result, StorageError};
use crate::inbox::{InboxStore, check_note, relabel, target_seconds, waited_since};

#[derive(sqlx::FromRow)]
struct InboxRow {
    subject_id: Uuid,
    tenant_id: Uuid,
    subject_kind: String,
    channel_id: Uuid,
    assignee: Option<String>,
    status: String,
    snoozed_until: Option<DateTime<Utc>>,
    labels: Vec<String>,
    triage: Option<String>,
    waiting_since: Option<DateTime<Utc>>,
    last_activity_at: DateTime<Utc>,
    since: DateTime<Utc>,
}

impl InboxRow {
    fn into_entity(self) -> Result<InboxItem> {
        Ok(InboxItem {
            subject: InboxSubject::from_parts(&self.subject_kind, self.subject_id)?,
            tenant_id: self.tenant_id.into(),
            channel_id: self.channel_id.into(),
            assignee: self.assignee,
            status: InboxStatus::from_parts(&self.status, self.snoozed_until)?,
            labels: self.labels,
            triage: self.triage.map(|t| t.parse()).transpose()?,
            waiting_since: self.waiting_since,
            last_activity_at: self.last_activity_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct NoteRow {
    id: Uuid,
    tenant_id: Uuid,
    subject_kind: String,
    subject_id: Uuid,
    author: String,
    text: String,
    created_at: DateTime<Utc>,
}

impl NoteRow {
    fn into_entity(self) -> Result<InboxNote> {
        Ok(InboxNote {
            id: InboxNoteId::from_uuid(self.id),
            tenant_id: self.tenant_id.into(),
            subject: InboxSubject::from_parts(&self.subject_kind, self.subject_id)?,
            author: self.author,
            text: self.text,
            created_at: self.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct CannedRow {
    id: Uuid,
    tenant_id: Uuid,
    name: String,
    text: String,
    created_at: DateTime<Utc>,
}

impl CannedRow {
    fn into_entity(self) -> CannedReply {
        CannedReply {
            id: CannedReplyId::from_uuid(self.id),
            tenant_id: self.tenant_id.into(),
            name: self.name,
            text: self.text,
            created_at: self.created_at,
        }
    }
}

impl PgStore {
    /// The plan Postgres chooses for a list (`EXPLAIN` of the statement
    /// [`InboxStore::list_inbox`] runs), to check that it reads an index.
    pub async fn explain_inbox(&self, query: &InboxQuery) -> Result<String> {
        query.validate()?;
        let mut tx = self.scoped(query.tenant_id).await?;
        let lines: Vec<String> =
            sqlx::query_scalar_with(&format!("EXPLAIN {}", list_sql(query)), list_args(query)?)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(lines.join("\n"))
    }

    /// The tenant's item, read in `tx` (`FOR UPDATE` when `lock`).
    async fn item_in(
        tx: &mut Scoped,
        tenant: TenantId,
        subject: InboxSubject,
        lock: bool,
    ) -> Result<InboxRow> {
        let row: Option<InboxRow> = sqlx::query_as(&format!(
            "SELECT * FROM inbox_items \
             WHERE tenant_id = $1 AND subject_id = $2 AND subject_kind = $3 {}",
            if lock { "FOR UPDATE" } else { "" }
        ))
        .bind(tenant.as_uuid())
        .bind(subject.id())
        .bind(subject.kind())
        .fetch_optional(&mut **tx)
        .await
        .map_err(db)?;
        row.ok_or_else(|| StorageError::not_found(subject.kind(), subject.id()))
    }

    /// Applies `update` (an `UPDATE inbox_items SET …` statement, with a
    /// `WITH` before it if need be, over $4…) to the tenant's item.
    async fn update_item(
        &self,
        tenant: TenantId,
        subject: InboxSubject,
        update: &str,
        bind: impl FnOnce(
            sqlx::query::QueryAs<'_, sqlx::Postgres, InboxRow, PgArguments>,
        ) -> sqlx::query::QueryAs<'_, sqlx::Postgres, InboxRow, PgArguments>,
    ) -> Result<InboxItem> {
        let mut tx = self.scoped(tenant).await?;
        let sql = format!(
            "{update} WHERE tenant_id = $1 AND subject_id = $2 AND subject_kind = $3 RETURNING *"
        );
        let query = sqlx::query_as(&sql)
            .bind(tenant.as_uuid())
            .bind(subject.id())
            .bind(subject.kind());
        let row: Option<InboxRow> = bind(query).fetch_optional(&mut *tx).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.ok_or_else(|| StorageError::not_found(subject.kind(), subject.id()))?
            .into_entity()
    }
}

#[async_trait]
impl InboxStore for PgStore {
    async fn get_inbox_item(&self, tenant: TenantId, subject: InboxSubject) -> Result<InboxItem> {
        let mut tx = self.scoped(tenant).await?;
        let row = Self::item_in(&mut tx, tenant, subject, false).await?;
        tx.commit().await.map_err(db)?;
        row.into_entity()
    }

    async fn assign_inbox_item(
        &self,
        tenant: TenantId,
        subject: InboxSubject,
        assignee: Option<&str>,
    ) -> Result<InboxItem> {
        validate::opt_key("assignee", assignee)?;
        let assignee = assignee.map(str::to_owned);
        self.update_item(
            tenant,
            subject,
            "UPDATE inbox_items SET assignee = $4",
            |q| q.bind(assignee),
        )
        .await
    }

    async fn set_inbox_status(
        &self,
        tenant: TenantId,
        subject: InboxSubject,
        status: InboxStatus,
        at: DateTime<Utc>,
    ) -> Result<InboxItem> {
        let until = match status {
            InboxStatus::Snoozed { until } => Some(until),
            _ => None,
        };
        // Resolved or snoozed at a time before its last inbound message (not
        // seen when the agent acted), a conversation's item is open: what the
        // refresh makes of it once a message comes after the change, and
        // what the in-memory store reads. The item's labels then carry the
        // status the item took (read from the updated row, so a message
        // committed while this statement waited for the row is counted in
        // both).
        let mut tx = self.scoped(tenant).await?;
        let row: Option<InboxRow> = sqlx::query_as(
            "WITH item AS ( \
                 UPDATE inbox_items SET \
                     status = CASE WHEN $4 IN ('resolved', 'snoozed') \
                         AND subject_kind = 'conversation' AND last_inbound_at > $6 \
                         THEN 'open' ELSE $4 END, \
                     snoozed_until = CASE WHEN $4 IN ('resolved', 'snoozed') \
                         AND subject_kind = 'conversation' AND last_inbound_at > $6 \
                         THEN NULL ELSE $5 END, \
                     status_changed_at = $6 \
                 WHERE tenant_id = $1 AND subject_id = $2 AND subject_kind = $3 \
                 RETURNING *), \
             labels_too AS ( \
                 UPDATE inbox_labels l SET status = i.status, snoozed_until = i.snoozed_until \
                 FROM item i \
                 WHERE l.tenant_id = $1 AND l.subject_id = i.subject_id) \
             SELECT * FROM item",
        )
        .bind(tenant.as_uuid())
        .bind(subject.id())
        .bind(subject.kind())
        .bind(status.as_str())
        .bind(until)
        .bind(at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.ok_or_else(|| StorageError::not_found(subject.kind(), subject.id()))?
            .into_entity()
    }

    async fn label_inbox_item(
        &self,
        tenant: TenantId,
        subject: InboxSubject,
        add: &[String],
        remove: &[String],
    ) -> Result<InboxItem> {
        let mut tx = self.scoped(tenant).await?;
        let current = Self::item_in(&mut tx, tenant, subject, true).await?;
        let labels = relabel(&current.labels, add, remove)?;
        // The labels, and their rows in `inbox_labels` (with the item's
        // list order), in one statement.
        let row: InboxRow = sqlx::query_as(
            "WITH gone AS ( \
                 DELETE FROM inbox_labels WHERE subject_id = $1 AND NOT label = ANY ($2)), \
             added AS ( \
                 INSERT INTO inbox_labels (subject_id, tenant_id, label, since, status, \
                     snoozed_until) \
                 SELECT $1, $3, l, $4, $5, $6 FROM UNNEST($2::text[]) AS l \
                 ON CONFLICT (subject_id, label) DO NOTHING) \
             UPDATE inbox_items SET labels = $2 WHERE subject_id = $1 RETURNING *",
        )
        .bind(subject.id())
        .bind(&labels)
        .bind(tenant.as_uuid())
        .bind(current.since)
        .bind(&current.status)
        .bind(current.snoozed_until)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.into_entity()
    }

    async fn add_inbox_note(
        &self,
        tenant: TenantId,
        subject: InboxSubject,
        author: &str,
        text: &str,
        at: DateTime<Utc>,
    ) -> Result<InboxNote> {
        check_note(author, text)?;
        let mut tx = self.scoped(tenant).await?;
        Self::item_in(&mut tx, tenant, subject, false).await?;
        let row: NoteRow = sqlx::query_as(
            "INSERT INTO inbox_notes (id, tenant_id, subject_kind, subject_id, author, text, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
        )
        .bind(InboxNoteId::generate().as_uuid())
        .bind(tenant.as_uuid())
        .bind(subject.kind())
        .bind(subject.id())
        .bind(author)
        .bind(text)
        .bind(at)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.into_entity()
    }

    async fn list_inbox_notes(
        &self,
        tenant: TenantId,
        subject: InboxSubject,
    ) -> Result<Vec<InboxNote>> {
        let mut tx = self.scoped(tenant).await?;
        Self::item_in(&mut tx, tenant, subject, false).await?;
        let rows: Vec<NoteRow> = sqlx::query_as(
            "SELECT * FROM inbox_notes WHERE tenant_id = $1 AND subject_id = $2 \
             ORDER BY created_at, id",
        )
        .bind(tenant.as_uuid())
        .bind(subject.id())
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        rows.into_iter().map(NoteRow::into_entity).collect()
    }

    async fn list_inbox(&self, query: InboxQuery) -> Result<InboxPage> {
        query.validate()?;
        let mut tx = self.scoped(query.tenant_id).await?;
        let rows: Vec<InboxRow> = sqlx::query_as_with(&list_sql(&query), list_args(&query)?)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let items = rows
            .into_iter()
            .map(InboxRow::into_entity)
            .collect::<Result<Vec<_>>>()?;
        let full = items.len() == usize::try_from(query.limit).unwrap_or(usize::MAX);
        let next = if full {
            items.last().map(InboxItem::cursor)
        } else {
            None
        };
        Ok(InboxPage { items, next })
    }

    async fn create_canned_reply(
        &self,
        tenant: TenantId,
        name: &str,
        text: &str,
        at: DateTime<Utc>,
    ) -> Result<CannedReply> {
        CannedReply::check(name, text)?;
        let mut tx = self.scoped(tenant).await?;
        let result: std::result::Result<CannedRow, _> = sqlx::query_as(
            "INSERT INTO canned_replies (id, tenant_id, name, text, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING *",
        )
        .bind(CannedReplyId::generate().as_uuid())
        .bind(tenant.as_uuid())
        .bind(name)
        .bind(text)
        .bind(at)
        .fetch_one(&mut *tx)
        .await;
        match result {
            Ok(row) => {
                tx.commit().await.map_err(db)?;
                Ok(row.into_entity())
            }
            Err(err) => {
                drop(tx);
                Err(write_error(
                    self,
                    err,
                    WriteFailure {
                        tenant: Some(tenant),
                        refs: &[],
                        conflict: Some(("canned reply", format!("name {name:?}"))),
                    },
                )
                .await)
            }
        }
    }

    async fn list_canned_replies(&self, tenant: TenantId) -> Result<Vec<CannedReply>> {
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<CannedRow> =
            sqlx::query_as("SELECT * FROM canned_replies WHERE tenant_id = $1 ORDER BY name, id")
                .bind(tenant.as_uuid())
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(rows.into_iter().map(CannedRow::into_entity).collect())
    }

    async fn delete_canned_reply(&self, tenant: TenantId, id: CannedReplyId) -> Result<()> {
        let mut tx = self.scoped(tenant).await?;
        let done = sqlx::query("DELETE FROM canned_replies WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StorageError::not_found("canned reply", id));
        }
        Ok(())
    }

    async fn set_first_response_target(
        &self,
        tenant: TenantId,
        target: Option<chrono::Duration>,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let seconds = target.map(target_seconds).transpose()?;
        let mut tx = self.scoped(tenant).await?;
        let written = match seconds {
            Some(seconds) => {
                sqlx::query(
                    "INSERT INTO first_response_targets (tenant_id, seconds, updated_at) \
                     VALUES ($1, $2, $3) \
                     ON CONFLICT (tenant_id) DO UPDATE \
                         SET seconds = EXCLUDED.seconds, updated_at = EXCLUDED.updated_at",
                )
                .bind(tenant.as_uuid())
                .bind(seconds)
                .bind(at)
                .execute(&mut *tx)
                .await
            }
            None => {
                let known: bool =
                    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1)")
                        .bind(tenant.as_uuid())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(db)?;
                if !known {
                    return Err(StorageError::unknown("tenant", tenant));
                }
                sqlx::query("DELETE FROM first_response_targets WHERE tenant_id = $1")
                    .bind(tenant.as_uuid())
                    .execute(&mut *tx)
                    .await
            }
        };
        if let Err(err) = written {
            drop(tx);
            return Err(write_error(
                self,
                err,
                WriteFailure {
                    tenant: Some(tenant),
                    refs: &[],
                    conflict: None,
                },
            )
            .await);
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn first_response_target(&self, tenant: TenantId) -> Result<Option<chrono::Duration>> {
        let mut tx = self.scoped(tenant).await?;
        let seconds: Option<i64> =
            sqlx::query_scalar("SELECT seconds FROM first_response_targets WHERE tenant_id = $1")
                .bind(tenant.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(seconds.map(chrono::Duration::seconds))
    }

    async fn list_first_response_targets(&self) -> Result<Vec<(TenantId, chrono::Duration)>> {
        // A cross-tenant read, on the scan pool.
        let rows: Vec<(Uuid, i64)> = sqlx::query_as(
            "SELECT tenant_id, seconds FROM first_response_targets ORDER BY tenant_id",
        )
        .fetch_all(&self.scan_pool)
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(t, s)| (TenantId::from_uuid(t), chrono::Duration::seconds(s)))
            .collect())
    }

    async fn list_unnotified_breaches(
        &self,
        tenant: TenantId,
        wait: chrono::Duration,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<InboxItem>> {
        // Through `ix_inbox_unnotified_breaches` (migration 0041): a marked
        // item is not in it.
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<InboxRow> = sqlx::query_as(
            "SELECT * FROM inbox_items \
             WHERE tenant_id = $1 AND waiting_since IS NOT NULL AND waiting_since <= $2 \
                 AND status <> 'resolved' \
                 AND (breach_notified_for IS NULL OR waiting_since > breach_notified_for) \
                 AND (status <> 'snoozed' OR snoozed_until <= $3) \
             ORDER BY waiting_since, subject_id LIMIT $4",
        )
        .bind(tenant.as_uuid())
        .bind(bound(waited_since(now, wait)))
        .bind(bound(now))
        .bind(super::limit(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        rows.into_iter().map(InboxRow::into_entity).collect()
    }

    async fn mark_breaches_notified(
        &self,
        tenant: TenantId,
        waits: &[(InboxSubject, DateTime<Utc>)],
    ) -> Result<u64> {
        if waits.is_empty() {
            return Ok(0);
        }
        let ids: Vec<Uuid> = waits.iter().map(|(s, _)| s.id()).collect();
        let since: Vec<DateTime<Utc>> = waits.iter().map(|(_, t)| bound(*t)).collect();
        let kinds: Vec<&str> = waits.iter().map(|(s, _)| s.kind()).collect();
        let mut tx = self.scoped(tenant).await?;
        let marked = sqlx::query(
            "UPDATE inbox_items i SET breach_notified_for = u.since \
             FROM UNNEST($2::uuid[], $3::timestamptz[], $4::text[]) AS u(id, since, kind) \
             WHERE i.tenant_id = $1 AND i.subject_id = u.id AND i.subject_kind = u.kind \
                 AND i.waiting_since = u.since",
        )
        .bind(tenant.as_uuid())
        .bind(&ids)
        .bind(&since)
        .bind(&kinds)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        tx.commit().await.map_err(db)?;
        Ok(marked)
    }
}
