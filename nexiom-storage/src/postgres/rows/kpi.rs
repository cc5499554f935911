//! Rows of `kpi_2h`.

use chrono::{DateTime, Utc};
use nexiom_core::Kpi2h;
use uuid::Uuid;

/// `kpi_2h`.
#[derive(Debug, sqlx::FromRow)]
pub(in crate::postgres) struct KpiRow {
    tenant_id: Uuid,
    window_start: DateTime<Utc>,
    window_end: DateTime<Utc>,
    messages_count: i64,
    comments_count: i64,
    frt_p50_seconds: Option<i64>,
    auto_reply_rate: Option<f64>,
    escalate_count: i64,
    ignored_count: i64,
    posts_active: i64,
    computed_at: DateTime<Utc>,
}

impl KpiRow {
    pub(in crate::postgres) fn into_entity(self) -> Kpi2h {
        Kpi2h {
            tenant_id: self.tenant_id.into(),
            window_start: self.window_start,
            window_end: self.window_end,
            messages_count: self.messages_count,
            comments_count: self.comments_count,
            frt_p50_seconds: self.frt_p50_seconds,
            auto_reply_rate: self.auto_reply_rate,
            escalate_count: self.escalate_count,
            ignored_count: self.ignored_count,
            posts_active: self.posts_active,
            computed_at: self.computed_at,
        }
    }
}
