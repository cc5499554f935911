//! [`PostStore::replace_series`](crate::PostStore::replace_series) in memory:
//! every check before the first write, all under the one lock.

use chrono::{DateTime, Utc};
use nexiom_core::{
    BroadcastAudience, BroadcastTemplate, NewScheduledPost, PostFilter, PostId, PostPatch,
    PostStatus, ScheduledPost,
};

use super::{Inner, get_scoped};
use crate::checks;
use crate::error::{Result, StorageError};

impl Inner {
    pub(super) fn replace_series(
        &mut self,
        old: PostId,
        new: NewScheduledPost,
        broadcast: Option<(BroadcastAudience, Option<BroadcastTemplate>)>,
        at: DateTime<Utc>,
    ) -> Result<ScheduledPost> {
        let spec = checks::series_replacement(&new, broadcast)?;
        let tenant = new.tenant_id;
        let current = get_scoped(&self.posts, tenant, &old, "post")?;
        if current.status != PostStatus::Queued {
            return Err(StorageError::precondition(
                "post",
                old,
                format!("status is {}, expected queued", current.status.as_str()),
            ));
        }
        if current.recurrence.is_none() || current.series_id.is_some() {
            return Err(StorageError::precondition(
                "post",
                old,
                "not a series template",
            ));
        }
        // The inserts check everything before they write: a refusal leaves
        // the old series as it was.
        let created = match spec {
            Some(spec) => {
                self.insert_broadcast_post(new, spec.audience, spec.template)?
                    .0
            }
            None => self.insert_post(new)?.record,
        };
        let occurrences = self.list_posts(
            tenant,
            &PostFilter {
                series_id: Some(old),
                status: Some(PostStatus::Queued),
                ..PostFilter::default()
            },
        );
        let template = PostPatch {
            status: Some(PostStatus::Cancelled),
            error_message: Some(Some(checks::replaced_by(created.id))),
            release_lease: true,
            expect_status: Some(PostStatus::Queued),
            ..PostPatch::default()
        };
        self.update_post(tenant, old, template, at)?;
        for occurrence in occurrences {
            let patch = PostPatch {
                status: Some(PostStatus::Cancelled),
                expect_status: Some(PostStatus::Queued),
                ..PostPatch::default()
            };
            self.update_post(tenant, occurrence.id, patch, at)?;
        }
        Ok(created)
    }
}
