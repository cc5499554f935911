//! One post's check: the pages of its comments read from its saved cursor
//! (or from the first page, with every reply, when a re-read is due), each
//! page's comments kept with the checkpoint after it, until the last page,
//! the page limit or the claim's deadline.

use chrono::{DateTime, Duration, Utc};
use nexiom_connectors::ConnectorError;
use nexiom_core::{Channel, CommentCheckpoint, NewComment, ScheduledPost};
use nexiom_storage::ClaimedPoll;
use tracing::warn;

use super::error::PollingError;
use super::poller::{Checked, CommentPoller, Stored};
use crate::tokens::connector_refresh;

impl CommentPoller {
    /// When a check of `claim` stops reading pages: half its lease before the
    /// lease ends, so that what it read is written while the claim holds
    /// (the next check goes on from the saved cursor).
    pub(super) fn check_deadline(&self, claim: &ClaimedPoll) -> DateTime<Utc> {
        claim
            .lease_until
            .checked_sub_signed(self.config.lease / 2)
            .unwrap_or(claim.lease_until)
    }

    /// Whether the check of `post` at `now` reads its comments from the first
    /// page again, with every reply: a first check (no checkpoint), or the
    /// first since a multiple of [`PollingConfig::reread_every`] counted from
    /// the post's publication (from its creation when it has none, so posts
    /// published at different times do not all re-read at once; a re-read's
    /// checkpoint is dated when that re-read began, or half a period before
    /// its end when it took longer). A re-read
    /// writes the checkpoint at each page, marked
    /// [`rereading`](CommentCheckpoint::rereading) until its last page, so a
    /// re-read that stopped part way (a throttle, a failure, the page limit,
    /// the claim's time) goes on from where it stopped, with every reply, at
    /// the next check instead of starting over.
    fn reread_due(
        &self,
        post: &ScheduledPost,
        checkpoint: Option<&CommentCheckpoint>,
        now: DateTime<Utc>,
    ) -> bool {
        let Some(checkpoint) = checkpoint else {
            return true;
        };
        let every = self.config.reread_every.num_milliseconds();
        if every <= 0 {
            return false;
        }
        let origin = post.published_at.unwrap_or(post.created_at);
        let period = |at: DateTime<Utc>| (at - origin).num_milliseconds().div_euclid(every);
        period(now) > period(checkpoint.updated_at)
    }

    /// Reads the post's new comments into `stored`.
    pub(super) async fn check_post(
        &self,
        claim: &ClaimedPoll,
        channel: Option<&Channel>,
        now: DateTime<Utc>,
        stored: &mut Stored,
    ) -> Result<Checked, PollingError> {
        let post = &claim.post;
        if self
            .stop_of(post)
            .and_then(|stop| self.grace_end(stop))
            .is_some_and(|end| now >= end)
        {
            return Ok(Checked::Over);
        }
        if let Some(until) = self.channel_not_before(post.channel_id) {
            return Ok(Checked::Deferred(until));
        }
        let read;
        let channel = match channel {
            Some(channel) => channel,
            None => {
                read = self
                    .store
                    .get_channel(post.tenant_id, post.channel_id)
                    .await?;
                &read
            }
        };
        let connector = self.connectors.get(channel.platform.as_str())?;
        if !connector.capabilities().comments {
            return Ok(Checked::Unsupported);
        }
        let Some(platform_post_id) = post.platform_post_id.as_deref() else {
            return Ok(Checked::Unsupported);
        };
        let mut ctx = match self.tokens.context(connector.as_ref(), channel).await {
            Ok(ctx) => ctx,
            Err(err) if err.is_paused() => return Ok(Checked::Paused),
            Err(err) => return Err(err.into()),
        };
        let mut renewed = false;
        let mut restarted = false;
        // Pages read when the check restarted from the first page.
        let mut pages_at_restart = 0;
        let checkpoint = claim.checkpoint.as_ref();
        let mut cursor = checkpoint.and_then(|c| c.last_cursor.clone());
        // A reply listed under an earlier page's comment is not on the pages
        // after the cursor: read them all again now and then, with every
        // reply (a call per thread, so not at every check).
        let in_progress = checkpoint.is_some_and(|c| c.rereading);
        let rereading = connector.new_comments_may_precede_the_cursor()
            && (in_progress || self.reread_due(post, checkpoint, now));
        if rereading && !in_progress {
            cursor = None;
        }
        // A re-read's checkpoints carry the time it began (kept while it
        // goes on), so one finished in a later period still counts for the
        // period it began in and that later period gets its own; but not
        // earlier than half a period before its end, so that re-reads
        // longer than a period do not follow one another without a break.
        let reread_began = match checkpoint {
            Some(c) if in_progress => c.updated_at,
            _ => now,
        };
        let half_period = self.config.reread_every / 2;
        let deadline = self.check_deadline(claim);
        let mut last_seen = checkpoint.and_then(|c| c.last_seen_at);
        let mut pages_left = self.config.max_pages.max(1);
        while pages_left > 0 {
            pages_left -= 1;
            let read = if rereading {
                connector
                    .list_comments_with_replies(&ctx, platform_post_id, cursor.as_deref())
                    .await
            } else {
                connector
                    .list_new_comments(&ctx, platform_post_id, cursor.as_deref())
                    .await
            };
            let page = match read {
                Ok(page) => page,
                Err(ConnectorError::Unauthorized { .. }) if !renewed => {
                    // Once: the token another holder stored, or a new one.
                    renewed = true;
                    let used = ctx.access_token.clone();
                    let connector = connector.as_ref();
                    let renewed_channel = self
                        .tokens
                        .after_unauthorized(channel, Some(&used), |c| async move {
                            connector_refresh(connector, &c).await
                        })
                        .await;
                    match renewed_channel {
                        Ok(fresh) => {
                            ctx = crate::publish::channel_context(&fresh);
                            pages_left += 1;
                            continue;
                        }
                        Err(err) if err.is_paused() => return Ok(Checked::Paused),
                        Err(err) => return Err(err.into()),
                    }
                }
                Err(err @ ConnectorError::Permanent { .. }) if cursor.is_some() && !restarted => {
                    // A cursor the platform no longer accepts (Graph's
                    // cursors name an item, which may be gone) would fail
                    // every check for the rest of the 7 days: read once
                    // more from the first page instead. The comments read
                    // again are stored once (their key); a post that is
                    // refused from the start too fails as before.
                    warn!(post = %post.id, error = %err,
                        "a comment page refused from a saved cursor; reading from the start");
                    restarted = true;
                    pages_at_restart = stored.pages;
                    cursor = None;
                    pages_left += 1;
                    continue;
                }
                Err(err) => {
                    let refused = matches!(
                        err,
                        ConnectorError::Permanent { .. } | ConnectorError::Forbidden { .. }
                    );
                    if restarted && refused && stored.pages == pages_at_restart {
                        // Refused from the first page too (a deleted post):
                        // the cursor is dropped, so the next check makes one
                        // call, not two (a re-read under way stays marked:
                        // it starts again from the first page).
                        if let Some(saved) = stored.checkpoint.as_ref().or(checkpoint) {
                            stored.checkpoint = Some(CommentCheckpoint {
                                last_cursor: None,
                                rereading: saved.rereading || rereading,
                                ..saved.clone()
                            });
                        }
                    }
                    self.hold_if_rate_limited(post.tenant_id, post.channel_id, &err)
                        .await;
                    return Err(err.into());
                }
            };
            stored.pages += 1;
            stored.unreadable += u64::from(page.left_out);
            let mut comments = Vec::with_capacity(page.comments.len());
            for remote in &page.comments {
                let created_at = plausible(remote.created_at, now);
                last_seen = Some(last_seen.map_or(created_at, |t| t.max(created_at)));
                // The account's own comments (the replies this library
                // sent, a person answering as the Page) are not comments to
                // triage: kept out, as the webhooks keep them out, so an
                // auto-reply never answers itself.
                if remote.author_id.as_deref() == Some(channel.external_account_id.as_str()) {
                    continue;
                }
                let comment = NewComment {
                    tenant_id: post.tenant_id,
                    post_id: post.id,
                    platform_comment_id: remote.id.clone(),
                    parent_platform_comment_id: remote.parent_id.clone(),
                    author_id: remote.author_id.clone(),
                    author_name: remote.author_name.clone(),
                    text: remote.text.clone(),
                    created_at,
                    stored_at: now,
                    hidden: remote.hidden,
                };
                // A comment the store would refuse is left out here (not
                // failing the batch its write goes in, nor, at every check,
                // the post's other comments).
                if let Err(error) = comment.validate() {
                    warn!(post = %post.id, comment = %remote.id, %error,
                        "a polled comment the store refuses is left out");
                    stored.refused += 1;
                    continue;
                }
                comments.push(comment);
            }
            // The page counts once all of it is kept, with the cursor after it.
            let next = page
                .next_cursor
                .filter(|next| Some(next) != cursor.as_ref());
            let resume = next.clone().or_else(|| cursor.clone());
            let saved = stored.checkpoint.as_ref().or(checkpoint);
            // A re-read goes on until a page has no next one.
            let still_rereading = rereading && next.is_some();
            // A re-read's pages are written whatever they hold: the
            // checkpoint's time and mark tell the next check the re-read is
            // done, or where it stopped.
            let changed = saved.is_none_or(|c| {
                c.last_cursor != resume
                    || c.last_seen_at != last_seen
                    || c.rereading != still_rereading
            }) || next.is_some()
                || rereading;
            let moved = changed.then_some(CommentCheckpoint {
                tenant_id: post.tenant_id,
                post_id: post.id,
                last_cursor: resume,
                last_seen_at: last_seen,
                updated_at: match (rereading, still_rereading) {
                    (false, _) => now,
                    (true, true) => reread_began,
                    (true, false) => reread_began.max(now - half_period),
                },
                rereading: still_rereading,
            });
            // A cursor the store would refuse (longer than any platform's
            // seen) does not cost the page: its comments are kept, and the
            // checkpoint stays where it was.
            let moved = moved.filter(|moved| match moved.validate() {
                Ok(()) => true,
                Err(error) => {
                    tracing::warn!(post = %post.id, %error,
                        "a comments cursor the store refuses: the checkpoint stays");
                    false
                }
            });
            stored.comments.extend(comments);
            if moved.is_some() {
                stored.checkpoint = moved;
            }
            match next {
                // Past the deadline, the pages read are written while the
                // claim holds; the next check reads on.
                Some(_) if self.clock.now() >= deadline => break,
                Some(next) => cursor = Some(next),
                None => return Ok(Checked::Polled),
            }
        }
        // Stopped at the page limit or the deadline with pages left.
        Ok(Checked::PolledInPart)
    }
}

/// A comment's time as the platform gave it, unless it is implausible (before
/// 2004 or more than a day after `now`: a unit mistake, a broken field), in
/// which case the time it was read: the comment is kept, and its time cannot
/// move the checkpoint, or a window, decades away.
fn plausible(at: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    let earliest =
        DateTime::<Utc>::from_timestamp(1_072_915_200, 0).unwrap_or(DateTime::<Utc>::MIN_UTC);
    if at < earliest || at > now + Duration::days(1) {
        warn!(%at, "a polled comment's time is implausible; the time it was read is kept");
        now
    } else {
        at
    }
}
