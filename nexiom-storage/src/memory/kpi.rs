//! 2-hour KPI rows.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_core::{Kpi2h, TenantId};

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

    async fn list_kpis(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Kpi2h>> {
        Ok(self.lock().list_kpis(tenant, from, to))
    }
}
