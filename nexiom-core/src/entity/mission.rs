use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::content::Content;
use crate::enums::{ContentJobStatus, MissionStatus, ObjectivePriority, Phase};
use crate::error::CoreError;
use crate::id::{ChannelId, ContentJobId, MissionId, PostId, ReportId, TenantId};
use crate::validate;

/// A marketing mission on one channel between two dates (inclusive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mission {
    /// Id.
    pub id: MissionId,
    /// Owner.
    pub tenant_id: TenantId,
    /// Channel it publishes on.
    pub channel_id: ChannelId,
    /// Name.
    pub name: String,
    /// Status.
    pub status: MissionStatus,
    /// Priority of its objective.
    pub objective_priority: ObjectivePriority,
    /// First day (local date).
    pub start_date: NaiveDate,
    /// Last day (local date), `>= start_date`.
    pub end_date: NaiveDate,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// Input to create a [`Mission`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewMission {
    /// Owner.
    pub tenant_id: TenantId,
    /// Channel (must belong to the tenant).
    pub channel_id: ChannelId,
    /// Name (non-empty).
    pub name: String,
    /// Initial status.
    pub status: MissionStatus,
    /// Priority.
    pub objective_priority: ObjectivePriority,
    /// First day.
    pub start_date: NaiveDate,
    /// Last day (`>= start_date`).
    pub end_date: NaiveDate,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl NewMission {
    /// Checks `name`, then that `end_date` >= `start_date`; the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate::key("name", &self.name)?;
        if self.start_date > self.end_date {
            return Err(CoreError::invalid(
                "end_date",
                format!(
                    "{} is before the start date {}",
                    self.end_date, self.start_date
                ),
            ));
        }
        Ok(())
    }
}

/// Filter for listing missions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MissionFilter {
    /// Channel.
    pub channel_id: Option<ChannelId>,
    /// Status.
    pub status: Option<MissionStatus>,
    /// Missions whose dates include this day.
    pub active_on: Option<NaiveDate>,
    /// At most this many.
    pub limit: Option<u32>,
}

/// A piece of content to publish, usually for a mission phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentJob {
    /// Id.
    pub id: ContentJobId,
    /// Owner.
    pub tenant_id: TenantId,
    /// Mission, if any.
    pub mission_id: Option<MissionId>,
    /// Channel.
    pub channel_id: ChannelId,
    /// Phase it belongs to.
    pub phase: Phase,
    /// Status.
    pub status: ContentJobStatus,
    /// What to publish.
    pub content: Content,
    /// The scheduled post made from it.
    pub scheduled_post_id: Option<PostId>,
    /// Where it came from (for example a prepared Facebook post's id).
    pub source_ref: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Input to create a [`ContentJob`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewContentJob {
    /// Owner.
    pub tenant_id: TenantId,
    /// Mission (must belong to the tenant and use the same channel).
    pub mission_id: Option<MissionId>,
    /// Channel (must belong to the tenant).
    pub channel_id: ChannelId,
    /// Phase.
    pub phase: Phase,
    /// Initial status.
    pub status: ContentJobStatus,
    /// Content.
    pub content: Content,
    /// Origin reference.
    pub source_ref: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl NewContentJob {
    /// Checks the content, then `source_ref`; the storage backends call it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        self.content.validate()?;
        validate::opt_key("source_ref", self.source_ref.as_deref())
    }
}

/// Filter for listing content jobs; ordered oldest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContentJobFilter {
    /// Mission.
    pub mission_id: Option<MissionId>,
    /// Channel.
    pub channel_id: Option<ChannelId>,
    /// Phase.
    pub phase: Option<Phase>,
    /// Status.
    pub status: Option<ContentJobStatus>,
    /// At most this many.
    pub limit: Option<u32>,
}

/// A mission intelligence report; the latest one is the mission's summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MissionIntelligenceReport {
    /// Id.
    pub id: ReportId,
    /// Owner.
    pub tenant_id: TenantId,
    /// Mission.
    pub mission_id: MissionId,
    /// The report.
    pub report: serde_json::Value,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_date_must_not_precede_start_date() {
        let day = |d| NaiveDate::from_ymd_opt(2026, 3, d).expect("a March day");
        let mut mission = NewMission {
            tenant_id: TenantId::generate(),
            channel_id: ChannelId::generate(),
            name: "Launch".into(),
            status: MissionStatus::Active,
            objective_priority: ObjectivePriority::High,
            start_date: day(10),
            end_date: day(1),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        assert!(matches!(
            mission.validate(),
            Err(CoreError::Invalid {
                field: "end_date",
                ..
            })
        ));
        mission.end_date = day(10);
        assert_eq!(mission.validate(), Ok(()));
        mission.name = String::new();
        assert!(matches!(
            mission.validate(),
            Err(CoreError::Invalid { field: "name", .. })
        ));
    }
}
