//! 2-hour KPI rows.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap};

use nexiom_core::{
    ConversationId, DecisionSubject, Kpi2h, KpiComment, KpiDecision, KpiFacts, KpiMessage,
    KpiWindow, Message, MessageDirection, TenantId, compute_kpis,
};

use super::{Inner, MemoryStore};
use crate::error::Result;
use crate::traits::KpiStore;

impl Inner {
    fn upsert_kpi(&mut self, row: Kpi2h) -> Result<Kpi2h> {
        row.validate()?;
        self.require_tenant(row.tenant_id)?;
        self.kpis
            .insert((row.tenant_id, row.window_start), row.clone());
        Ok(row)
    }

    fn recompute_kpis(
        &mut self,
        tenant: TenantId,
        windows: &[KpiWindow],
        computed_at: DateTime<Utc>,
    ) -> Result<Vec<Kpi2h>> {
        KpiWindow::validate_list(windows)?;
        self.require_tenant(tenant)?;
        let rows = compute_kpis(tenant, windows, &self.kpi_facts(tenant), computed_at)?;
        for row in &rows {
            self.kpis
                .insert((row.tenant_id, row.window_start), row.clone());
        }
        Ok(rows)
    }

    /// Everything of the tenant the KPI rules read (the whole history: a
    /// memory store is small, and this is always right).
    fn kpi_facts(&self, tenant: TenantId) -> KpiFacts {
        let messages = self
            .messages
            .values()
            .filter(|m| m.tenant_id == tenant)
            .map(|m| KpiMessage {
                id: m.id,
                conversation_id: m.conversation_id,
                direction: m.direction,
                created_at: m.created_at,
            })
            .collect();
        let comments = self
            .comments
            .values()
            .filter(|c| c.tenant_id == tenant)
            .map(|c| KpiComment {
                post_id: c.post_id,
                created_at: c.created_at,
            })
            .collect();
        let decisions = self
            .decisions
            .values()
            .filter(|d| d.tenant_id == tenant)
            .filter_map(|d| {
                let item_created_at = match d.subject {
                    DecisionSubject::Message(id) => self.messages.get(&id)?.created_at,
                    DecisionSubject::Comment(id) => self.comments.get(&id)?.created_at,
                };
                Some(KpiDecision {
                    triage: d.triage,
                    item_created_at,
                })
            })
            .collect();
        KpiFacts {
            messages,
            comments,
            decisions,
        }
    }

    fn kpi_activity(&self, tenant: TenantId, since: DateTime<Utc>) -> Result<Vec<DateTime<Utc>>> {
        self.require_tenant(tenant)?;
        let mut touched: BTreeSet<DateTime<Utc>> = BTreeSet::new();
        let mut conversations: HashMap<ConversationId, Vec<&Message>> = HashMap::new();
        for m in self.messages.values().filter(|m| m.tenant_id == tenant) {
            conversations.entry(m.conversation_id).or_default().push(m);
        }
        for list in conversations.values_mut() {
            list.sort_by_key(|m| (m.created_at, m.id));
            for (i, m) in list.iter().enumerate() {
                if m.created_at < since {
                    continue;
                }
                touched.insert(m.created_at);
                if let Some(next) = list.get(i + 1) {
                    touched.insert(next.created_at);
                }
                if m.direction == MessageDirection::Outbound {
                    // The inbound messages since the previous reply.
                    for earlier in list[..i].iter().rev() {
                        if earlier.direction == MessageDirection::Outbound {
                            break;
                        }
                        touched.insert(earlier.created_at);
                    }
                }
            }
        }
        touched.extend(
            self.comments
                .values()
                .filter(|c| c.tenant_id == tenant && c.created_at >= since)
                .map(|c| c.created_at),
        );
        for d in self
            .decisions
            .values()
            .filter(|d| d.tenant_id == tenant && d.created_at >= since)
        {
            let item = match d.subject {
                DecisionSubject::Message(id) => self.messages.get(&id).map(|m| m.created_at),
                DecisionSubject::Comment(id) => self.comments.get(&id).map(|c| c.created_at),
            };
            touched.extend(item);
        }
        let quarters: BTreeSet<DateTime<Utc>> = touched.into_iter().filter_map(quarter).collect();
        Ok(quarters.into_iter().collect())
    }

    fn list_kpis(&self, tenant: TenantId, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Kpi2h> {
        if from >= to {
            return Vec::new();
        }
        // The map is ordered by (tenant, window_start): one range, reversed.
        self.kpis
            .range((tenant, from)..(tenant, to))
            .rev()
            .map(|(_, row)| row.clone())
            .collect()
    }
}

/// The start of the UTC quarter hour holding `at`.
fn quarter(at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(at.timestamp().div_euclid(900) * 900, 0)
}

#[async_trait]
impl KpiStore for MemoryStore {
    async fn kpi_activity(
        &self,
        tenant: TenantId,
        since: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>> {
        self.lock().kpi_activity(tenant, since)
    }

    async fn upsert_kpi(&self, row: Kpi2h) -> Result<Kpi2h> {
        self.lock().upsert_kpi(row)
    }

    async fn recompute_kpis(
        &self,
        tenant: TenantId,
        windows: &[KpiWindow],
        computed_at: DateTime<Utc>,
    ) -> Result<Vec<Kpi2h>> {
        self.lock().recompute_kpis(tenant, windows, computed_at)
    }

    async fn recompute_kpis_for(
        &self,
        tenants: &[TenantId],
        windows: &[KpiWindow],
        computed_at: DateTime<Utc>,
    ) -> Result<Vec<Kpi2h>> {
        let mut inner = self.lock();
        KpiWindow::validate_list(windows)?;
        for tenant in tenants {
            inner.require_tenant(*tenant)?;
        }
        // Each tenant once, as on PostgreSQL.
        let mut seen = std::collections::HashSet::new();
        let mut rows = Vec::new();
        for tenant in tenants.iter().filter(|t| seen.insert(**t)) {
            rows.extend(inner.recompute_kpis(*tenant, windows, computed_at)?);
        }
        Ok(rows)
    }

    async fn list_kpis(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Kpi2h>> {
        Ok(self.lock().list_kpis(tenant, from, to))
    }
}
