//! Rows of the triage data: `ai_rules`, `ignore_examples`, `ai_decisions`
//! and the AI control.

use chrono::{DateTime, Utc};
use nexiom_core::{AiControl, AiDecision, AiRule, DecisionSubject, IgnoreExample};
use uuid::Uuid;

use super::convert::parse;
use crate::error::Result;
use crate::postgres::error::corrupt;

/// `ai_rules`.
#[derive(Debug, sqlx::FromRow)]
pub(in crate::postgres) struct RuleRow {
    id: Uuid,
    tenant_id: Uuid,
    rule_type: String,
    name: String,
    keywords: Vec<String>,
    patterns: Vec<String>,
    confidence_min: Option<f64>,
    enabled: bool,
    priority: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl RuleRow {
    pub(in crate::postgres) fn into_entity(self) -> Result<AiRule> {
        Ok(AiRule {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            rule_type: parse("rule type", &self.rule_type)?,
            name: self.name,
            keywords: self.keywords,
            patterns: self.patterns,
            confidence_min: self.confidence_min,
            enabled: self.enabled,
            priority: self.priority,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// `ignore_examples`.
#[derive(Debug, sqlx::FromRow)]
pub(in crate::postgres) struct IgnoreExampleRow {
    id: Uuid,
    tenant_id: Uuid,
    text: String,
    created_at: DateTime<Utc>,
}

impl IgnoreExampleRow {
    pub(in crate::postgres) fn into_entity(self) -> Result<IgnoreExample> {
        Ok(IgnoreExample {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            text: self.text,
            created_at: self.created_at,
        })
    }
}

/// `ai_decisions`.
#[derive(Debug, sqlx::FromRow)]
pub(in crate::postgres) struct DecisionRow {
    id: Uuid,
    tenant_id: Uuid,
    subject_kind: String,
    subject_id: Uuid,
    triage: String,
    confidence: f64,
    rule_id: Option<Uuid>,
    reason: String,
    snapshot: serde_json::Value,
    created_at: DateTime<Utc>,
}

impl DecisionRow {
    pub(in crate::postgres) fn into_entity(self) -> Result<AiDecision> {
        let subject = match self.subject_kind.as_str() {
            "message" => DecisionSubject::Message(self.subject_id.into()),
            "comment" => DecisionSubject::Comment(self.subject_id.into()),
            other => return Err(corrupt("decision subject kind", other)),
        };
        Ok(AiDecision {
            id: self.id.into(),
            tenant_id: self.tenant_id.into(),
            subject,
            triage: parse("triage", &self.triage)?,
            confidence: self.confidence,
            rule_id: self.rule_id.map(Into::into),
            reason: self.reason,
            snapshot: self.snapshot,
            created_at: self.created_at,
        })
    }
}

/// A tenant's AI control, joined from `tenants` (absent switch: OFF).
#[derive(Debug, sqlx::FromRow)]
pub(in crate::postgres) struct AiControlRow {
    tenant_id: Uuid,
    enabled: bool,
    updated_by: Option<String>,
    updated_at: Option<DateTime<Utc>>,
}

impl AiControlRow {
    pub(in crate::postgres) fn into_entity(self) -> AiControl {
        AiControl {
            tenant_id: self.tenant_id.into(),
            enabled: self.enabled,
            updated_by: self.updated_by,
            updated_at: self.updated_at,
        }
    }
}
