//! [`RuleStore`] on Postgres: `ai_rules`, `ignore_examples`, `ai_decisions` and
//! `ai_controls`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{
    AiControl, AiDecision, AiRule, DecisionId, DecisionSubject, IgnoreExample, IgnoreExampleId,
    Inserted, NewAiDecision, NewAiRule, RuleId, RuleType, TenantId, Triage, validate,
};

use super::error::{Ref, WriteFailure, db, require_refs, write_error};
use super::rows::{AiControlRow, DecisionRow, IgnoreExampleRow, RuleRow, all};
use super::{PgStore, limit};
use crate::error::{Result, StorageError};
use crate::traits::RuleStore;

fn rule_conflict(new: &NewAiRule) -> Option<(&'static str, String)> {
    Some(("rule", format!("name {:?}", new.name)))
}

/// The reference a decision's subject makes.
fn subject_ref(subject: DecisionSubject) -> Ref {
    match subject {
        DecisionSubject::Message(id) => Ref::Message(id),
        DecisionSubject::Comment(id) => Ref::Comment(id),
    }
}

#[async_trait]
impl RuleStore for PgStore {
    async fn create_rule(&self, new: NewAiRule) -> Result<AiRule> {
        new.validate()?;
        let mut tx = self.scoped(new.tenant_id).await?;
        let result: std::result::Result<RuleRow, _> = sqlx::query_as(
            "INSERT INTO ai_rules (id, tenant_id, rule_type, name, keywords, patterns, \
                 confidence_min, enabled, priority, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
             RETURNING *",
        )
        .bind(RuleId::generate().as_uuid())
        .bind(new.tenant_id.as_uuid())
        .bind(new.rule_type.as_str())
        .bind(&new.name)
        .bind(&new.keywords)
        .bind(&new.patterns)
        .bind(new.confidence_min)
        .bind(new.enabled)
        .bind(new.priority)
        .bind(new.at)
        .fetch_one(&mut *tx)
        .await;
        match result {
            Ok(row) => {
                tx.commit().await.map_err(db)?;
                row.into_entity()
            }
            Err(err) => {
                drop(tx);
                Err(write_error(
                    self,
                    err,
                    WriteFailure {
                        tenant: Some(new.tenant_id),
                        refs: &[],
                        conflict: rule_conflict(&new),
                    },
                )
                .await)
            }
        }
    }

    async fn update_rule(&self, id: RuleId, new: NewAiRule) -> Result<AiRule> {
        new.validate()?;
        let mut tx = self.scoped(new.tenant_id).await?;
        let result: std::result::Result<Option<RuleRow>, _> = sqlx::query_as(
            "UPDATE ai_rules SET rule_type = $3, name = $4, keywords = $5, patterns = $6, \
                 confidence_min = $7, enabled = $8, priority = $9, updated_at = $10 \
             WHERE tenant_id = $1 AND id = $2 \
             RETURNING *",
        )
        .bind(new.tenant_id.as_uuid())
        .bind(id.as_uuid())
        .bind(new.rule_type.as_str())
        .bind(&new.name)
        .bind(&new.keywords)
        .bind(&new.patterns)
        .bind(new.confidence_min)
        .bind(new.enabled)
        .bind(new.priority)
        .bind(new.at)
        .fetch_optional(&mut *tx)
        .await;
        match result {
            Ok(row) => {
                tx.commit().await.map_err(db)?;
                row.ok_or_else(|| StorageError::not_found("rule", id))?
                    .into_entity()
            }
            Err(err) => {
                drop(tx);
                Err(write_error(
                    self,
                    err,
                    WriteFailure {
                        tenant: None,
                        refs: &[],
                        conflict: rule_conflict(&new),
                    },
                )
                .await)
            }
        }
    }

    async fn delete_rule(&self, tenant: TenantId, id: RuleId) -> Result<()> {
        let mut tx = self.scoped(tenant).await?;
        let done = sqlx::query("DELETE FROM ai_rules WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StorageError::not_found("rule", id));
        }
        Ok(())
    }

    async fn get_rule(&self, tenant: TenantId, id: RuleId) -> Result<AiRule> {
        let mut tx = self.scoped(tenant).await?;
        let row: Option<RuleRow> =
            sqlx::query_as("SELECT * FROM ai_rules WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.ok_or_else(|| StorageError::not_found("rule", id))?
            .into_entity()
    }

    async fn list_rules(&self, tenant: TenantId, enabled_only: bool) -> Result<Vec<AiRule>> {
        // Names sort bytewise (COLLATE "C"), as Rust strings do.
        let sql = format!(
            "SELECT * FROM ai_rules WHERE tenant_id = $1 AND (NOT $2 OR enabled) \
             ORDER BY priority, \
                 CASE rule_type WHEN '{deny}' THEN 0 WHEN '{escalate}' THEN 1 ELSE 2 END, \
                 name COLLATE \"C\", id",
            deny = RuleType::Deny.as_str(),
            escalate = RuleType::Escalate.as_str(),
        );
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<RuleRow> = sqlx::query_as(&sql)
            .bind(tenant.as_uuid())
            .bind(enabled_only)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        all(rows, RuleRow::into_entity)
    }

    async fn add_ignore_example(
        &self,
        tenant: TenantId,
        text: &str,
        at: DateTime<Utc>,
    ) -> Result<IgnoreExample> {
        validate::text("text", text)?;
        let mut tx = self.scoped(tenant).await?;
        let result: std::result::Result<IgnoreExampleRow, _> = sqlx::query_as(
            "INSERT INTO ignore_examples (id, tenant_id, text, created_at) \
             VALUES ($1, $2, $3, $4) \
             RETURNING *",
        )
        .bind(IgnoreExampleId::generate().as_uuid())
        .bind(tenant.as_uuid())
        .bind(text)
        .bind(at)
        .fetch_one(&mut *tx)
        .await;
        match result {
            Ok(row) => {
                tx.commit().await.map_err(db)?;
                row.into_entity()
            }
            Err(err) => {
                drop(tx);
                Err(write_error(
                    self,
                    err,
                    WriteFailure {
                        tenant: Some(tenant),
                        refs: &[],
                        conflict: None,
                    },
                )
                .await)
            }
        }
    }

    async fn list_ignore_examples(&self, tenant: TenantId) -> Result<Vec<IgnoreExample>> {
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<IgnoreExampleRow> = sqlx::query_as(
            "SELECT * FROM ignore_examples WHERE tenant_id = $1 ORDER BY created_at, id",
        )
        .bind(tenant.as_uuid())
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        all(rows, IgnoreExampleRow::into_entity)
    }

    async fn delete_ignore_example(&self, tenant: TenantId, id: IgnoreExampleId) -> Result<()> {
        let mut tx = self.scoped(tenant).await?;
        let done = sqlx::query("DELETE FROM ignore_examples WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StorageError::not_found("ignore_example", id));
        }
        Ok(())
    }

    async fn insert_decision(&self, new: NewAiDecision) -> Result<Inserted<AiDecision>> {
        new.validate()?;
        let refs = [subject_ref(new.subject)];
        let mut tx = self.scoped(new.tenant_id).await?;
        // A comment subject is checked by its foreign key; a message, here
        // (messages are partitioned: no foreign key points into them).
        let inserted: std::result::Result<Option<DecisionRow>, _> = sqlx::query_as(
            "INSERT INTO ai_decisions (id, tenant_id, subject_kind, subject_id, triage, \
                 confidence, rule_id, reason, snapshot, created_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 \
             WHERE $3 <> 'message' OR EXISTS (SELECT 1 FROM messages m \
                 WHERE m.tenant_id = $2 AND m.id = $4) \
             ON CONFLICT (subject_kind, subject_id) DO NOTHING \
             RETURNING *",
        )
        .bind(DecisionId::generate().as_uuid())
        .bind(new.tenant_id.as_uuid())
        .bind(new.subject.kind())
        .bind(new.subject.uuid())
        .bind(new.triage.as_str())
        .bind(new.confidence)
        .bind(new.rule_id.map(|r| r.as_uuid()))
        .bind(&new.reason)
        .bind(&new.snapshot)
        .bind(new.created_at)
        .fetch_optional(&mut *tx)
        .await;
        match inserted {
            Ok(Some(row)) => {
                tx.commit().await.map_err(db)?;
                return Ok(Inserted::created(row.into_entity()?));
            }
            Ok(None) => {}
            Err(err) => {
                drop(tx);
                return Err(write_error(
                    self,
                    err,
                    WriteFailure {
                        tenant: Some(new.tenant_id),
                        refs: &refs,
                        conflict: None,
                    },
                )
                .await);
            }
        }
        // The subject has a decision: it is the tenant's (its subject is), unless
        // the subject is not the tenant's, which the reference check reports.
        require_refs(&mut *tx, new.tenant_id, &refs).await?;
        let existing: Option<DecisionRow> = sqlx::query_as(
            "SELECT * FROM ai_decisions \
             WHERE tenant_id = $1 AND subject_kind = $2 AND subject_id = $3",
        )
        .bind(new.tenant_id.as_uuid())
        .bind(new.subject.kind())
        .bind(new.subject.uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        match existing {
            Some(row) => Ok(Inserted::existing(row.into_entity()?)),
            None => Err(StorageError::backend(
                "postgres: the decision conflicted with a stored one that cannot be read",
            )),
        }
    }

    async fn get_decision(&self, tenant: TenantId, id: DecisionId) -> Result<AiDecision> {
        let mut tx = self.scoped(tenant).await?;
        let row: Option<DecisionRow> =
            sqlx::query_as("SELECT * FROM ai_decisions WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.ok_or_else(|| StorageError::not_found("decision", id))?
            .into_entity()
    }

    async fn find_decision(
        &self,
        tenant: TenantId,
        subject: DecisionSubject,
    ) -> Result<Option<AiDecision>> {
        let mut tx = self.scoped(tenant).await?;
        let row: Option<DecisionRow> = sqlx::query_as(
            "SELECT * FROM ai_decisions \
             WHERE tenant_id = $1 AND subject_kind = $2 AND subject_id = $3",
        )
        .bind(tenant.as_uuid())
        .bind(subject.kind())
        .bind(subject.uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.map(DecisionRow::into_entity).transpose()
    }

    async fn list_decisions(
        &self,
        tenant: TenantId,
        triage: Option<Triage>,
        max: u32,
    ) -> Result<Vec<AiDecision>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<DecisionRow> = sqlx::query_as(
            "SELECT * FROM ai_decisions \
             WHERE tenant_id = $1 AND ($2::text IS NULL OR triage = $2) \
             ORDER BY created_at DESC, id DESC \
             LIMIT $3",
        )
        .bind(tenant.as_uuid())
        .bind(triage.map(Triage::as_str))
        .bind(limit(max))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        all(rows, DecisionRow::into_entity)
    }

    async fn get_ai_control(&self, tenant: TenantId) -> Result<AiControl> {
        let mut tx = self.scoped(tenant).await?;
        let row: Option<AiControlRow> = sqlx::query_as(
            "SELECT t.id AS tenant_id, COALESCE(c.enabled, FALSE) AS enabled, \
                 c.updated_by, c.updated_at \
             FROM tenants t LEFT JOIN ai_controls c ON c.tenant_id = t.id \
             WHERE t.id = $1",
        )
        .bind(tenant.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(row
            .ok_or_else(|| StorageError::not_found("tenant", tenant))?
            .into_entity())
    }

    async fn set_ai_control(
        &self,
        tenant: TenantId,
        enabled: bool,
        by: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<AiControl> {
        validate::opt_text("updated_by", by.as_deref())?;
        let mut tx = self.scoped(tenant).await?;
        let result: std::result::Result<AiControlRow, _> = sqlx::query_as(
            "INSERT INTO ai_controls (tenant_id, enabled, updated_by, updated_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id) DO UPDATE SET \
                 enabled = EXCLUDED.enabled, \
                 updated_by = EXCLUDED.updated_by, \
                 updated_at = EXCLUDED.updated_at \
             RETURNING *",
        )
        .bind(tenant.as_uuid())
        .bind(enabled)
        .bind(by.as_deref())
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
                        conflict: None,
                    },
                )
                .await)
            }
        }
    }
}
