//! Triage rules, ignore-examples, decisions and the AI-control switch.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::*;

use crate::error::Result;

/// Triage rules, ignore-examples, decisions and the AI-control switch.
#[async_trait]
pub trait RuleStore: Send + Sync {
    /// Creates a rule. `Conflict` when the tenant has a rule of that name.
    async fn create_rule(&self, new: NewAiRule) -> Result<AiRule>;
    /// Replaces the rule's definition (name, type, keywords, …) keeping its id.
    async fn update_rule(&self, id: RuleId, new: NewAiRule) -> Result<AiRule>;
    /// Deletes the rule; `NotFound` when absent.
    async fn delete_rule(&self, tenant: TenantId, id: RuleId) -> Result<()>;
    /// The rule, or `NotFound`.
    async fn get_rule(&self, tenant: TenantId, id: RuleId) -> Result<AiRule>;
    /// The tenant's rules (only enabled ones when `enabled_only`), by priority,
    /// then type (deny, escalate, auto), then name.
    async fn list_rules(&self, tenant: TenantId, enabled_only: bool) -> Result<Vec<AiRule>>;

    /// Adds an ignore-example.
    async fn add_ignore_example(
        &self,
        tenant: TenantId,
        text: &str,
        at: DateTime<Utc>,
    ) -> Result<IgnoreExample>;
    /// The tenant's ignore-examples, oldest first.
    async fn list_ignore_examples(&self, tenant: TenantId) -> Result<Vec<IgnoreExample>>;
    /// Deletes an ignore-example; `NotFound` when absent.
    async fn delete_ignore_example(&self, tenant: TenantId, id: IgnoreExampleId) -> Result<()>;

    /// Stores the decision unless the subject already has one (one decision per
    /// message or comment). `UnknownReference` when the subject is not the tenant's.
    async fn insert_decision(&self, new: NewAiDecision) -> Result<Inserted<AiDecision>>;
    /// The decision, or `NotFound`.
    async fn get_decision(&self, tenant: TenantId, id: DecisionId) -> Result<AiDecision>;
    /// The subject's decision, if any.
    async fn find_decision(
        &self,
        tenant: TenantId,
        subject: DecisionSubject,
    ) -> Result<Option<AiDecision>>;
    /// The tenant's decisions, optionally of one triage, newest first.
    async fn list_decisions(
        &self,
        tenant: TenantId,
        triage: Option<Triage>,
        limit: u32,
    ) -> Result<Vec<AiDecision>>;

    /// The tenant's AI-control switch (OFF when never set). `NotFound` for an
    /// unknown tenant.
    async fn get_ai_control(&self, tenant: TenantId) -> Result<AiControl>;
    /// Switches the tenant's AI control. `UnknownReference` for an unknown tenant.
    async fn set_ai_control(
        &self,
        tenant: TenantId,
        enabled: bool,
        by: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<AiControl>;
}
