use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::enums::{RuleType, Triage};
use crate::error::CoreError;
use crate::id::{CommentId, DecisionId, IgnoreExampleId, MessageId, RuleId, TenantId};
use crate::validate;

/// A triage rule. A rule matches when any keyword or pattern matches; a rule with
/// neither matches everything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AiRule {
    /// Id.
    pub id: RuleId,
    /// Owner.
    pub tenant_id: TenantId,
    /// Deny, escalate or auto.
    pub rule_type: RuleType,
    /// Name, unique per tenant.
    pub name: String,
    /// Keywords (matched case- and accent-insensitively at word boundaries).
    pub keywords: Vec<String>,
    /// Regular expressions (matched case-insensitively).
    pub patterns: Vec<String>,
    /// For auto rules: below this generator confidence the item is escalated.
    pub confidence_min: Option<f64>,
    /// Disabled rules are ignored.
    pub enabled: bool,
    /// Lower runs first.
    pub priority: i32,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Input to create or replace an [`AiRule`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewAiRule {
    /// Owner.
    pub tenant_id: TenantId,
    /// Type.
    pub rule_type: RuleType,
    /// Name (a key, unique per tenant).
    pub name: String,
    /// Keywords.
    pub keywords: Vec<String>,
    /// Patterns.
    pub patterns: Vec<String>,
    /// Minimum generator confidence (auto rules), in `0..=1`.
    pub confidence_min: Option<f64>,
    /// Enabled.
    pub enabled: bool,
    /// Priority.
    pub priority: i32,
    /// Time of the change.
    pub at: DateTime<Utc>,
}

impl NewAiRule {
    /// Checks `name`, `keywords`, `patterns`, `confidence_min`; the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate::key("name", &self.name)?;
        for keyword in &self.keywords {
            validate::text("keywords", keyword)?;
        }
        for pattern in &self.patterns {
            validate::text("patterns", pattern)?;
        }
        if let Some(min) = self.confidence_min {
            validate::unit_interval("confidence_min", min)?;
        }
        Ok(())
    }
}

/// A text the tenant wants ignored, and everything similar to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IgnoreExample {
    /// Id.
    pub id: IgnoreExampleId,
    /// Owner.
    pub tenant_id: TenantId,
    /// The example text.
    pub text: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// What a decision is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum DecisionSubject {
    /// An inbound message.
    Message(MessageId),
    /// A comment.
    Comment(CommentId),
}

impl DecisionSubject {
    /// `message` or `comment`.
    pub const fn kind(&self) -> &'static str {
        match self {
            DecisionSubject::Message(_) => "message",
            DecisionSubject::Comment(_) => "comment",
        }
    }

    /// The subject's UUID.
    pub fn uuid(&self) -> uuid::Uuid {
        match self {
            DecisionSubject::Message(id) => id.as_uuid(),
            DecisionSubject::Comment(id) => id.as_uuid(),
        }
    }
}

/// The triage decision for one message or comment. One per subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AiDecision {
    /// Id.
    pub id: DecisionId,
    /// Owner.
    pub tenant_id: TenantId,
    /// What was triaged.
    pub subject: DecisionSubject,
    /// The outcome.
    pub triage: Triage,
    /// Confidence in `0..=1`.
    pub confidence: f64,
    /// The rule that decided, if any.
    pub rule_id: Option<RuleId>,
    /// Why (`empty`, `rule`, `similar_to_ignore_example`, `low_confidence`,
    /// `ai_control_off`, …).
    pub reason: String,
    /// What was evaluated (text, rules considered, scores).
    pub snapshot: serde_json::Value,
    /// Decision time.
    pub created_at: DateTime<Utc>,
}

/// Input to store an [`AiDecision`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewAiDecision {
    /// Owner.
    pub tenant_id: TenantId,
    /// Subject (must belong to the tenant).
    pub subject: DecisionSubject,
    /// Outcome.
    pub triage: Triage,
    /// Confidence.
    pub confidence: f64,
    /// Deciding rule.
    pub rule_id: Option<RuleId>,
    /// Reason.
    pub reason: String,
    /// Snapshot.
    pub snapshot: serde_json::Value,
    /// Decision time.
    pub created_at: DateTime<Utc>,
}

impl NewAiDecision {
    /// Checks `confidence`, `reason`, then `snapshot`; the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate::unit_interval("confidence", self.confidence)?;
        validate::text("reason", &self.reason)?;
        validate::json("snapshot", &self.snapshot)
    }
}

/// The tenant's AI-control switch. While it is OFF nothing is ever sent
/// automatically. A tenant that never set it is OFF.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AiControl {
    /// Owner.
    pub tenant_id: TenantId,
    /// ON (`true`) or OFF.
    pub enabled: bool,
    /// Who switched it last, if recorded.
    pub updated_by: Option<String>,
    /// When it was switched last (`None`: never).
    pub updated_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_and_decision_numbers_are_in_the_unit_interval() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let mut rule = NewAiRule {
            tenant_id: TenantId::generate(),
            rule_type: RuleType::Auto,
            name: "prices".into(),
            keywords: vec!["prix".into()],
            patterns: vec![],
            confidence_min: Some(1.5),
            enabled: true,
            priority: 1,
            at: t0,
        };
        assert!(matches!(
            rule.validate(),
            Err(CoreError::Invalid {
                field: "confidence_min",
                ..
            })
        ));
        rule.confidence_min = Some(0.7);
        assert_eq!(rule.validate(), Ok(()));

        let decision = NewAiDecision {
            tenant_id: TenantId::generate(),
            subject: DecisionSubject::Message(MessageId::generate()),
            triage: Triage::Ignore,
            confidence: f64::NAN,
            rule_id: None,
            reason: "rule".into(),
            snapshot: serde_json::json!({}),
            created_at: t0,
        };
        assert!(matches!(
            decision.validate(),
            Err(CoreError::Invalid {
                field: "confidence",
                ..
            })
        ));
    }
}
