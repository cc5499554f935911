//! Triage rules, ignore-examples, decisions and the AI-control switch.

use std::cmp::Reverse;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{
    AiControl, AiDecision, AiRule, DecisionId, DecisionSubject, IgnoreExample, IgnoreExampleId,
    Inserted, NewAiDecision, NewAiRule, RuleId, TenantId, Triage, validate,
};

use super::{Inner, MemoryStore, get_scoped, limit_len, require_ref, scoped};
use crate::error::{Result, StorageError};
use crate::traits::RuleStore;

impl Inner {
    /// `Conflict` when another rule of the tenant (not `except`) is named `name`.
    fn check_rule_name(&self, tenant: TenantId, name: &str, except: Option<RuleId>) -> Result<()> {
        let taken = self
            .rules
            .values()
            .any(|r| r.tenant_id == tenant && r.name == name && Some(r.id) != except);
        if taken {
            return Err(StorageError::conflict("rule", format!("name {name:?}")));
        }
        Ok(())
    }

    fn create_rule(&mut self, new: NewAiRule) -> Result<AiRule> {
        new.validate()?;
        self.require_tenant(new.tenant_id)?;
        self.check_rule_name(new.tenant_id, &new.name, None)?;
        let rule = AiRule {
            id: RuleId::generate(),
            tenant_id: new.tenant_id,
            rule_type: new.rule_type,
            name: new.name,
            keywords: new.keywords,
            patterns: new.patterns,
            confidence_min: new.confidence_min,
            enabled: new.enabled,
            priority: new.priority,
            created_at: new.at,
            updated_at: new.at,
        };
        self.rules.insert(rule.id, rule.clone());
        Ok(rule)
    }

    fn update_rule(&mut self, id: RuleId, new: NewAiRule) -> Result<AiRule> {
        new.validate()?;
        let created_at = get_scoped(&self.rules, new.tenant_id, &id, "rule")?.created_at;
        self.check_rule_name(new.tenant_id, &new.name, Some(id))?;
        let rule = AiRule {
            id,
            tenant_id: new.tenant_id,
            rule_type: new.rule_type,
            name: new.name,
            keywords: new.keywords,
            patterns: new.patterns,
            confidence_min: new.confidence_min,
            enabled: new.enabled,
            priority: new.priority,
            created_at,
            updated_at: new.at,
        };
        self.rules.insert(id, rule.clone());
        Ok(rule)
    }

    fn list_rules(&self, tenant: TenantId, enabled_only: bool) -> Vec<AiRule> {
        let mut rules: Vec<&AiRule> = self
            .rules
            .values()
            .filter(|r| r.tenant_id == tenant && (r.enabled || !enabled_only))
            .collect();
        // `RuleType` orders deny, escalate, auto (its declaration order).
        rules.sort_by(|a, b| {
            (a.priority, a.rule_type, &a.name, a.id).cmp(&(b.priority, b.rule_type, &b.name, b.id))
        });
        rules.into_iter().cloned().collect()
    }

    fn add_ignore_example(
        &mut self,
        tenant: TenantId,
        text: &str,
        at: DateTime<Utc>,
    ) -> Result<IgnoreExample> {
        validate::text("text", text)?;
        self.require_tenant(tenant)?;
        let example = IgnoreExample {
            id: IgnoreExampleId::generate(),
            tenant_id: tenant,
            text: text.to_owned(),
            created_at: at,
        };
        self.ignore_examples.insert(example.id, example.clone());
        Ok(example)
    }

    fn list_ignore_examples(&self, tenant: TenantId) -> Vec<IgnoreExample> {
        let mut examples: Vec<IgnoreExample> = self
            .ignore_examples
            .values()
            .filter(|e| e.tenant_id == tenant)
            .cloned()
            .collect();
        examples.sort_by_key(|e| (e.created_at, e.id));
        examples
    }

    fn insert_decision(&mut self, new: NewAiDecision) -> Result<Inserted<AiDecision>> {
        new.validate()?;
        let tenant = new.tenant_id;
        self.require_tenant(tenant)?;
        match new.subject {
            DecisionSubject::Message(id) => require_ref(&self.messages, tenant, &id, "message")?,
            DecisionSubject::Comment(id) => require_ref(&self.comments, tenant, &id, "comment")?,
        }
        // `rule_id` is not checked: rules can be deleted while their decisions
        // stay (the audit trail keeps the id), as on PostgreSQL.
        if let Some(existing) = self
            .decision_by_subject
            .get(&new.subject)
            .and_then(|id| self.decisions.get(id))
        {
            return Ok(Inserted::existing(existing.clone()));
        }
        let decision = AiDecision {
            id: DecisionId::generate(),
            tenant_id: tenant,
            subject: new.subject,
            triage: new.triage,
            confidence: new.confidence,
            rule_id: new.rule_id,
            reason: new.reason,
            snapshot: new.snapshot,
            created_at: new.created_at,
        };
        self.decision_by_subject
            .insert(decision.subject, decision.id);
        self.decisions.insert(decision.id, decision.clone());
        Ok(Inserted::created(decision))
    }

    fn list_decisions(
        &self,
        tenant: TenantId,
        triage: Option<Triage>,
        limit: u32,
    ) -> Vec<AiDecision> {
        if limit == 0 {
            return Vec::new();
        }
        let mut decisions: Vec<&AiDecision> = self
            .decisions
            .values()
            .filter(|d| d.tenant_id == tenant && triage.is_none_or(|t| d.triage == t))
            .collect();
        // Newest first.
        decisions.sort_by_key(|d| Reverse((d.created_at, d.id)));
        decisions
            .into_iter()
            .take(limit_len(limit))
            .cloned()
            .collect()
    }

    fn get_ai_control(&self, tenant: TenantId) -> Result<AiControl> {
        if !self.tenants.contains_key(&tenant) {
            return Err(StorageError::not_found("tenant", tenant));
        }
        Ok(self.ai_controls.get(&tenant).cloned().unwrap_or(AiControl {
            tenant_id: tenant,
            enabled: false,
            updated_by: None,
            updated_at: None,
        }))
    }

    fn set_ai_control(
        &mut self,
        tenant: TenantId,
        enabled: bool,
        by: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<AiControl> {
        validate::opt_text("updated_by", by.as_deref())?;
        self.require_tenant(tenant)?;
        let control = AiControl {
            tenant_id: tenant,
            enabled,
            updated_by: by,
            updated_at: Some(at),
        };
        self.ai_controls.insert(tenant, control.clone());
        Ok(control)
    }
}

#[async_trait]
impl RuleStore for MemoryStore {
    async fn create_rule(&self, new: NewAiRule) -> Result<AiRule> {
        self.lock().create_rule(new)
    }

    async fn update_rule(&self, id: RuleId, new: NewAiRule) -> Result<AiRule> {
        self.lock().update_rule(id, new)
    }

    async fn delete_rule(&self, tenant: TenantId, id: RuleId) -> Result<()> {
        let mut inner = self.lock();
        get_scoped(&inner.rules, tenant, &id, "rule")?;
        inner.rules.remove(&id);
        Ok(())
    }

    async fn get_rule(&self, tenant: TenantId, id: RuleId) -> Result<AiRule> {
        get_scoped(&self.lock().rules, tenant, &id, "rule").cloned()
    }

    async fn list_rules(&self, tenant: TenantId, enabled_only: bool) -> Result<Vec<AiRule>> {
        Ok(self.lock().list_rules(tenant, enabled_only))
    }

    async fn add_ignore_example(
        &self,
        tenant: TenantId,
        text: &str,
        at: DateTime<Utc>,
    ) -> Result<IgnoreExample> {
        self.lock().add_ignore_example(tenant, text, at)
    }

    async fn list_ignore_examples(&self, tenant: TenantId) -> Result<Vec<IgnoreExample>> {
        Ok(self.lock().list_ignore_examples(tenant))
    }

    async fn delete_ignore_example(&self, tenant: TenantId, id: IgnoreExampleId) -> Result<()> {
        let mut inner = self.lock();
        get_scoped(&inner.ignore_examples, tenant, &id, "ignore_example")?;
        inner.ignore_examples.remove(&id);
        Ok(())
    }

    async fn insert_decision(&self, new: NewAiDecision) -> Result<Inserted<AiDecision>> {
        self.lock().insert_decision(new)
    }

    async fn get_decision(&self, tenant: TenantId, id: DecisionId) -> Result<AiDecision> {
        get_scoped(&self.lock().decisions, tenant, &id, "decision").cloned()
    }

    async fn find_decision(
        &self,
        tenant: TenantId,
        subject: DecisionSubject,
    ) -> Result<Option<AiDecision>> {
        let inner = self.lock();
        Ok(inner
            .decision_by_subject
            .get(&subject)
            .and_then(|id| scoped(&inner.decisions, tenant, id))
            .cloned())
    }

    async fn list_decisions(
        &self,
        tenant: TenantId,
        triage: Option<Triage>,
        limit: u32,
    ) -> Result<Vec<AiDecision>> {
        Ok(self.lock().list_decisions(tenant, triage, limit))
    }

    async fn get_ai_control(&self, tenant: TenantId) -> Result<AiControl> {
        self.lock().get_ai_control(tenant)
    }

    async fn set_ai_control(
        &self,
        tenant: TenantId,
        enabled: bool,
        by: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<AiControl> {
        self.lock().set_ai_control(tenant, enabled, by, at)
    }
}
