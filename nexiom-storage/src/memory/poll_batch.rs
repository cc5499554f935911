//! [`PollBatchStore`] in memory: the same claims and guarded write-backs as
//! on Postgres, under the store's lock.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use nexiom_core::PostStatus;

use super::{Inner, MemoryStore};
use crate::error::Result;
use crate::poll_batch::{
    ClaimedPoll, PollBatchStore, PollResult, PollWritten, check_results, poll_lease,
};

impl Inner {
    fn claim_polls(
        &mut self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedPoll>> {
        let until = poll_lease(now, lease)?;
        let due = self.list_posts_due_for_polling(now, limit);
        let mut claimed = Vec::with_capacity(due.len());
        for post in due {
            let Some(stored) = self.posts.get_mut(&post.id) else {
                continue;
            };
            let Some(due_at) = stored.next_check_at else {
                continue;
            };
            stored.next_check_at = Some(until);
            claimed.push(ClaimedPoll {
                post: stored.clone(),
                checkpoint: self.checkpoints.get(&post.id).cloned(),
                due_at,
                lease_until: until,
            });
        }
        Ok(claimed)
    }

    fn finish_polls(
        &mut self,
        results: &[PollResult],
        at: DateTime<Utc>,
    ) -> Result<Vec<PollWritten>> {
        check_results(results)?;
        let mut answer = Vec::with_capacity(results.len());
        for result in results {
            let holds = self.posts.get(&result.post_id).is_some_and(|p| {
                p.tenant_id == result.tenant_id
                    && p.status == PostStatus::Published
                    && p.next_check_at == Some(result.lease_until)
            });
            if !holds {
                answer.push(PollWritten {
                    written: false,
                    created: vec![false; result.comments.len()],
                });
                continue;
            }
            let mut created = Vec::with_capacity(result.comments.len());
            for comment in &result.comments {
                // Validated, and its post is the tenant's: it cannot fail.
                created.push(self.insert_comment(comment.clone())?.created);
            }
            if let Some(checkpoint) = &result.checkpoint {
                self.checkpoints
                    .insert(checkpoint.post_id, checkpoint.clone());
            }
            if let Some(post) = self.posts.get_mut(&result.post_id) {
                if let Some(checked) = result.last_check_at {
                    post.last_check_at = Some(checked);
                }
                post.next_check_at = result.next_check_at;
                post.poll_failures = result.poll_failures;
                post.updated_at = at;
            }
            answer.push(PollWritten {
                written: true,
                created,
            });
        }
        Ok(answer)
    }
}

#[async_trait]
impl PollBatchStore for MemoryStore {
    async fn claim_polls(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedPoll>> {
        self.lock().claim_polls(now, limit, lease)
    }

    async fn finish_polls(
        &self,
        results: &[PollResult],
        at: DateTime<Utc>,
    ) -> Result<Vec<PollWritten>> {
        self.lock().finish_polls(results, at)
    }
}
