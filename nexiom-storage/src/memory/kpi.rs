//! 2-hour KPI rows.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{
    DecisionSubject, Kpi2h, KpiComment, KpiDecision, KpiFacts, KpiMessage, KpiWindow, TenantId,
    compute_kpis,
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

#[async_trait]
impl KpiStore for MemoryStore {
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

    async fn list_kpis(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Kpi2h>> {
        Ok(self.lock().list_kpis(tenant, from, to))
    }
}
