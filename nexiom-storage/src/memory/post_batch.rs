//! The publish queue's batched steps in memory: claims that keep a channel to
//! one worker, lease heartbeats, run starts, settlements (with the content job
//! a settled post carries along) and channel holds. The rest of
//! [`PostStore`](crate::traits::PostStore) is in `post.rs`.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use nexiom_core::{
    ChannelId, ContentJobId, ContentJobStatus, NewPostRun, PostId, PostRun, PostSettlement,
    PostStatus, ScheduledPost, TenantId,
};

use uuid::Uuid;

use super::{Inner, get_scoped, limit_len, require_ref};
use crate::checks;
use crate::error::{Result, StorageError};
use crate::fair_claim::{FairRounds, QueuePlace, filled_from_oldest, one_channel_crowds};

/// The posts a claim of `limit` takes from `due` (every claimable post,
/// oldest first) shared among channels: [`FairRounds`], each lane a
/// channel's due posts; a single channel's are its oldest.
fn shared_among_channels(due: &[QueuePlace], limit: u32) -> Vec<QueuePlace> {
    let mut lanes: HashMap<ChannelId, Vec<QueuePlace>> = HashMap::new();
    for place in due {
        lanes.entry(place.channel).or_default().push(*place);
    }
    if lanes.len() == 1 {
        return due[..due.len().min(limit_len(limit))].to_vec();
    }
    let heads: Vec<(QueuePlace, bool)> = lanes.values().map(|lane| (lane[0], true)).collect();
    let mut rounds = FairRounds::new(&heads, limit);
    while let Some((share, open)) = rounds.next() {
        let mut read = Vec::new();
        for lane in open {
            let posts = lanes.get(&lane.channel).map_or(&[][..], Vec::as_slice);
            read.extend(
                posts
                    .iter()
                    .filter(|p| lane.after.is_none_or(|after| (p.at, p.id) > after))
                    .take(usize::try_from(share).unwrap_or(usize::MAX))
                    .map(|p| (*p, true)),
            );
        }
        rounds.record(read);
    }
    rounds.finish().into_iter().map(|(p, _)| p).collect()
}

impl Inner {
    pub(super) fn claim_due_posts(
        &mut self,
        now: DateTime<Utc>,
        limit: u32,
        lease_owner: &str,
        lease: Duration,
    ) -> Result<Vec<ScheduledPost>> {
        let expires = checks::lease(lease_owner, now, lease)?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Channels another claimer is publishing on, and throttled channels.
        let held: HashSet<ChannelId> = self
            .posts
            .values()
            .filter(|p| {
                p.status == PostStatus::Publishing
                    && p.lease_owner.as_deref() != Some(lease_owner)
                    && p.lease_expires_at.is_some_and(|t| t > now)
            })
            .map(|p| p.channel_id)
            .chain(
                self.channel_throttles
                    .iter()
                    .filter(|(_, until)| **until > now)
                    .map(|(channel, _)| *channel),
            )
            .chain(self.paused_channels())
            .collect();
        let mut due: Vec<QueuePlace> = self
            .posts
            .values()
            .filter(|p| {
                p.status == PostStatus::Queued
                    && p.publish_at <= now
                    && p.next_attempt_at.is_none_or(|t| t <= now)
                    && !held.contains(&p.channel_id)
            })
            .map(|p| QueuePlace {
                channel: p.channel_id,
                at: p.publish_at,
                id: p.id.as_uuid(),
            })
            .collect();
        due.sort_unstable_by_key(|p| (p.at, p.id));
        let oldest = &due[..due.len().min(limit_len(limit))];
        let picked: Vec<Uuid> = if one_channel_crowds(oldest, limit) {
            filled_from_oldest(shared_among_channels(&due, limit), oldest, limit)
        } else {
            oldest.iter().map(|p| p.id).collect()
        };
        let mut claimed = Vec::with_capacity(picked.len());
        for id in picked {
            if let Some(post) = self.posts.get_mut(&PostId::from_uuid(id)) {
                post.status = PostStatus::Publishing;
                post.lease_owner = Some(lease_owner.to_owned());
                post.lease_expires_at = Some(expires);
                post.updated_at = now;
                claimed.push(post.clone());
            }
        }
        // Oldest first (a shared claim filled up from the oldest is not).
        claimed.sort_by_key(|p| (p.publish_at, p.id));
        Ok(claimed)
    }

    pub(super) fn renew_post_leases(
        &mut self,
        lease_owner: &str,
        ids: &[PostId],
        expires_at: DateTime<Utc>,
    ) -> u64 {
        let mut renewed = 0;
        for id in ids {
            if let Some(post) = self.posts.get_mut(id)
                && post.status == PostStatus::Publishing
                && post.lease_owner.as_deref() == Some(lease_owner)
            {
                post.lease_expires_at = Some(expires_at);
                renewed += 1;
            }
        }
        renewed
    }

    pub(super) fn insert_post_runs(
        &mut self,
        lease_owner: &str,
        runs: &[NewPostRun],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<PostRun>>> {
        for new in runs {
            new.validate()?;
            self.require_tenant(new.tenant_id)?;
            require_ref(&self.posts, new.tenant_id, &new.post_id, "post")?;
        }
        let mut started = Vec::with_capacity(runs.len());
        for new in runs {
            let held = self.posts.get(&new.post_id).is_some_and(|p| {
                p.status == PostStatus::Publishing
                    && p.lease_owner.as_deref() == Some(lease_owner)
                    && p.lease_expires_at.is_some_and(|t| t > now)
            });
            if !held {
                started.push(None);
                continue;
            }
            started.push(match self.insert_post_run(new.clone()) {
                Ok(run) => Some(run),
                Err(StorageError::Conflict { .. }) => None,
                Err(err) => return Err(err),
            });
        }
        Ok(started)
    }

    pub(super) fn settle_posts(
        &mut self,
        lease_owner: &str,
        settlements: &[PostSettlement],
        at: DateTime<Utc>,
    ) -> Result<Vec<PostId>> {
        for settlement in settlements {
            settlement.validate()?;
        }
        let claimed = |post: &ScheduledPost, s: &PostSettlement| {
            post.tenant_id == s.tenant_id
                && post.status == PostStatus::Publishing
                && post.lease_owner.as_deref() == Some(lease_owner)
        };
        // The notifications of the posts settled failed are checked before
        // anything is written: all of the batch is written, or none.
        for s in settlements
            .iter()
            .filter(|s| s.status == PostStatus::Failed)
        {
            if let Some(post) = self.posts.get(&s.post_id)
                && claimed(post, s)
            {
                let mut settled = post.clone();
                settle_one(&mut settled, s, at);
                self.check_notify(&crate::outbox::post_failed(&settled))?;
            }
        }
        let mut written = Vec::with_capacity(settlements.len());
        for s in settlements {
            let Some(post) = self.posts.get_mut(&s.post_id) else {
                continue;
            };
            if !claimed(post, s) {
                continue;
            }
            settle_one(post, s, at);
            written.push(post.id);
            let failed =
                (post.status == PostStatus::Failed).then(|| crate::outbox::post_failed(post));
            if let Some(job) = post.content_job_id {
                self.settle_content_job(job, s, at);
            }
            if let Some(end) = &s.run
                && let Some(run) = self.post_runs.get_mut(&end.run_id)
                && run.post_id == s.post_id
            {
                run.status = end.status;
                run.error.clone_from(&end.error);
                run.finished_at = Some(at);
            }
            if let Some(notification) = failed {
                self.notify(notification)?;
            }
        }
        let published: Vec<PostId> = settlements
            .iter()
            .filter(|s| s.published.is_some() && written.contains(&s.post_id))
            .map(|s| s.post_id)
            .collect();
        self.adopt_external_twins(&published, at);
        // A broadcast settled `failed` whose delivery in doubt was shown sent
        // between the pass's count and this write takes the account again.
        for s in settlements
            .iter()
            .filter(|s| s.status == PostStatus::Failed && written.contains(&s.post_id))
        {
            self.resettle_broadcast(s.post_id, at);
        }
        Ok(written)
    }

    /// The content job `job` of a post just settled by `s` follows it when
    /// the post is settled for good (see
    /// [`PostStore::settle_posts`](crate::traits::PostStore::settle_posts)).
    fn settle_content_job(&mut self, job: ContentJobId, s: &PostSettlement, at: DateTime<Utc>) {
        let status = match s.status {
            PostStatus::Published => ContentJobStatus::Published,
            PostStatus::Failed => ContentJobStatus::Failed,
            _ => return,
        };
        let Some(job) = self.content_jobs.get_mut(&job) else {
            return;
        };
        if job.tenant_id != s.tenant_id
            || job.status != ContentJobStatus::Scheduled
            || job.scheduled_post_id != Some(s.post_id)
        {
            return;
        }
        job.status = status;
        job.platform_post_id = s.published.as_ref().map(|p| p.platform_post_id.clone());
        job.published_at = s.published.as_ref().map(|p| p.published_at);
        job.error_message = match status {
            ContentJobStatus::Failed => s.error_message.clone(),
            _ => None,
        };
        job.updated_at = at;
    }

    pub(super) fn throttle_channel(
        &mut self,
        tenant: TenantId,
        channel: ChannelId,
        until: DateTime<Utc>,
    ) -> Result<()> {
        get_scoped(&self.channels, tenant, &channel, "channel")?;
        let hold = self.channel_throttles.entry(channel).or_insert(until);
        *hold = (*hold).max(until);
        Ok(())
    }
}

/// Applies settlement `s` to its claimed `post` at `at`.
fn settle_one(post: &mut ScheduledPost, s: &PostSettlement, at: DateTime<Utc>) {
    post.status = s.status;
    if let Some(retry_count) = s.retry_count {
        post.retry_count = retry_count;
    }
    post.error_message.clone_from(&s.error_message);
    post.next_attempt_at = s.next_attempt_at;
    if let Some(published) = &s.published {
        post.platform_post_id = Some(published.platform_post_id.clone());
        post.url.clone_from(&published.url);
        post.published_at = Some(published.published_at);
        post.next_check_at = published.next_check_at;
        post.stop_at = published.stop_at;
    }
    post.lease_owner = None;
    post.lease_expires_at = None;
    post.updated_at = at;
}
