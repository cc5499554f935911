//! [`PollReport`]: what a polling pass did.

use nexiom_core::{ChannelId, PostId, TenantId};

/// A post whose polling failed in a pass (the other posts were still polled).
#[derive(Debug, Clone, PartialEq)]
pub struct PollFailure {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The post.
    pub post_id: PostId,
    /// What went wrong, as the connector or the store said.
    pub error: String,
}

/// A channel whose post discovery failed in a pass (it runs again after
/// [`PollingConfig::discovery_interval`](crate::PollingConfig::discovery_interval)).
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveryFailure {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The channel.
    pub channel_id: ChannelId,
    /// What went wrong, as the connector or the store said.
    pub error: String,
}

/// What one polling pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PollReport {
    /// Posts claimed for a check by this pass (whatever came of each: a pass
    /// that claimed fewer than it asked for found no more due).
    pub posts_claimed: u64,
    /// Posts whose comments were read to the last page (or `max_pages`).
    pub posts_polled: u64,
    /// Pages of comments read.
    pub pages_read: u64,
    /// Comments stored by this pass (a comment stored already, by an earlier
    /// pass or by the webhook, is not counted).
    pub comments_stored: u64,
    /// Comments read but not stored because the store refuses them (a text
    /// it cannot hold, say): logged and left out, so that one bad comment
    /// does not stop the post's other comments for the rest of its polling.
    pub comments_refused: u64,
    /// Items of the pages read that the connector could not read (a
    /// comment without its id or time, say): logged and left out of their
    /// page. A page of three or more comments none of which can be read
    /// fails its check instead, and is read again.
    pub comments_unreadable: u64,
    /// Posts skipped or stopped because their channel is rate-limited; they are
    /// checked again after the platform's Retry-After.
    pub posts_rate_limited: u64,
    /// Posts on a platform without the comments capability (or never given a
    /// platform id): their polling is stopped for good.
    pub posts_unsupported: u64,
    /// Posts whose channel is paused (its token refresh was refused: it
    /// needs re-authorization): not polled, no call made. The claims skip
    /// the channel's posts until it is reconnected.
    pub posts_paused: u64,
    /// Posts whose polling ended in this pass (7 days after publication).
    pub posts_finished: u64,
    /// Posts whose check was not written because their claim had moved on
    /// (the pass outlived [`PollingConfig::lease`](crate::PollingConfig::lease)
    /// and another poller claimed them, or their schedule was changed
    /// meanwhile): nothing of that check is stored, and the post is not
    /// counted as polled.
    pub posts_lease_lost: u64,
    /// Comments triaged by the follow-up triage step.
    pub triaged: u64,
    /// Replies sent by the follow-up auto-reply step.
    pub auto_replied: u64,
    /// Posts that failed, with the reason.
    pub failures: Vec<PollFailure>,
    /// Why the follow-up triage or auto-reply step failed, if it did (the
    /// comments are stored; the pipeline's own steps pick them up later).
    pub follow_up_error: Option<String>,
    /// Channels whose latest posts were listed by post discovery.
    pub channels_discovered: u64,
    /// External posts recorded by post discovery (posts made elsewhere, seen
    /// for the first time).
    pub external_posts_found: u64,
    /// Channels whose post discovery failed, with the reason.
    pub discovery_failures: Vec<DiscoveryFailure>,
}

impl PollReport {
    /// The report as JSON, for an execution log.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "posts_claimed": self.posts_claimed,
            "posts_polled": self.posts_polled,
            "pages_read": self.pages_read,
            "comments_stored": self.comments_stored,
            "comments_refused": self.comments_refused,
            "comments_unreadable": self.comments_unreadable,
            "posts_rate_limited": self.posts_rate_limited,
            "posts_unsupported": self.posts_unsupported,
            "posts_paused": self.posts_paused,
            "posts_finished": self.posts_finished,
            "posts_lease_lost": self.posts_lease_lost,
            "triaged": self.triaged,
            "auto_replied": self.auto_replied,
            "failures": self.failures.iter().map(|f| serde_json::json!({
                "tenant_id": f.tenant_id.to_string(),
                "post_id": f.post_id.to_string(),
                "error": f.error,
            })).collect::<Vec<_>>(),
            "follow_up_error": self.follow_up_error,
            "channels_discovered": self.channels_discovered,
            "external_posts_found": self.external_posts_found,
            "discovery_failures": self.discovery_failures.iter().map(|f| serde_json::json!({
                "tenant_id": f.tenant_id.to_string(),
                "channel_id": f.channel_id.to_string(),
                "error": f.error,
            })).collect::<Vec<_>>(),
        })
    }
}

impl PollReport {
    /// Adds `other`'s counts and failures to this report (a follow-up error
    /// of `other` replaces this one's).
    pub(super) fn merge(&mut self, other: PollReport) {
        self.posts_claimed += other.posts_claimed;
        self.posts_polled += other.posts_polled;
        self.pages_read += other.pages_read;
        self.comments_stored += other.comments_stored;
        self.comments_refused += other.comments_refused;
        self.comments_unreadable += other.comments_unreadable;
        self.posts_rate_limited += other.posts_rate_limited;
        self.posts_unsupported += other.posts_unsupported;
        self.posts_paused += other.posts_paused;
        self.posts_finished += other.posts_finished;
        self.posts_lease_lost += other.posts_lease_lost;
        self.triaged += other.triaged;
        self.auto_replied += other.auto_replied;
        self.failures.extend(other.failures);
        self.channels_discovered += other.channels_discovered;
        self.external_posts_found += other.external_posts_found;
        self.discovery_failures.extend(other.discovery_failures);
        if other.follow_up_error.is_some() {
            self.follow_up_error = other.follow_up_error;
        }
    }
}
