//! External posts: posts of a connected channel made elsewhere (in the
//! platform's app, ads, posts from before the channel was connected), and the
//! per-channel discovery that lists them so their comments are polled.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::error::CoreError;
use crate::id::{ChannelId, TenantId};
use crate::validate;

/// The most recent posts a channel's discovery may list per run.
pub const MAX_DISCOVERY_POSTS: u32 = 100;

/// A post of a channel as the platform lists it (its feed, its media).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveredPost {
    /// The platform's id of the post (the id comments name).
    pub platform_post_id: String,
    /// Its permalink, when listed.
    pub url: Option<String>,
    /// Its text (message, caption, commentary), when it has one.
    pub text: Option<String>,
    /// When it was published on the platform, when listed.
    pub published_at: Option<DateTime<Utc>>,
}

impl DiscoveredPost {
    /// Checks the id (a key), the URL and the text; the storage backends call
    /// it before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate::key("platform_post_id", &self.platform_post_id)?;
        validate::opt_text("url", self.url.as_deref())?;
        validate::opt_text("text", self.text.as_deref())
    }
}

/// A channel's post discovery: every run lists the `recent_posts` most recent
/// posts of the channel's account, records those made elsewhere as external
/// posts (once per `(channel, platform post id)`) and polls their comments
/// within the polling window after their publication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostDiscovery {
    /// Owner.
    pub tenant_id: TenantId,
    /// The channel listed.
    pub channel_id: ChannelId,
    /// How many of the most recent posts a run lists (1 to
    /// [`MAX_DISCOVERY_POSTS`]).
    pub recent_posts: u32,
    /// When the next run is due (a claimed run moves it to the end of its
    /// lease).
    pub next_run_at: DateTime<Utc>,
    /// When the last run finished.
    pub last_run_at: Option<DateTime<Utc>>,
    /// Why the last run failed, when it did.
    pub last_error: Option<String>,
    /// When discovery was switched on.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Checks a number of recent posts to list: 1 to [`MAX_DISCOVERY_POSTS`].
pub fn validate_recent_posts(recent_posts: u32) -> Result<(), CoreError> {
    if (1..=MAX_DISCOVERY_POSTS).contains(&recent_posts) {
        Ok(())
    } else {
        Err(CoreError::invalid(
            "recent_posts",
            format!("must be between 1 and {MAX_DISCOVERY_POSTS}"),
        ))
    }
}

/// What one discovery run of a channel saw, to record in one atomic write.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveryRun {
    /// Owner.
    pub tenant_id: TenantId,
    /// The channel listed.
    pub channel_id: ChannelId,
    /// The posts listed (empty when the listing failed).
    pub posts: Vec<DiscoveredPost>,
    /// How long after its publication a post is polled for comments (a post
    /// whose time is not listed counts from `at`).
    pub poll_window: Duration,
    /// When the channel's next run is due.
    pub next_run_at: DateTime<Utc>,
    /// Why the listing failed, when it did.
    pub error: Option<String>,
    /// The run's time.
    pub at: DateTime<Utc>,
}

impl DiscoveryRun {
    /// Checks every post and the error text; the storage backends call it
    /// before writing.
    pub fn validate(&self) -> Result<(), CoreError> {
        for post in &self.posts {
            post.validate()?;
        }
        validate::opt_text("error", self.error.as_deref())
    }

    /// When polling of a post published at `published_at` ends: its
    /// publication (or the run's time, when not listed) plus the window.
    pub fn stop_at(&self, published_at: Option<DateTime<Utc>>) -> DateTime<Utc> {
        published_at
            .unwrap_or(self.at)
            .checked_add_signed(self.poll_window)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// What recording a [`DiscoveryRun`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryOutcome {
    /// External posts this run created.
    pub posts_created: u64,
    /// Posts whose comment polling this run started: the new external posts
    /// still inside their window, and external posts known from a comment
    /// only (never polled) that the listing named.
    pub polls_started: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_posts_are_bounded() {
        assert!(validate_recent_posts(0).is_err());
        assert!(validate_recent_posts(1).is_ok());
        assert!(validate_recent_posts(MAX_DISCOVERY_POSTS).is_ok());
        assert!(validate_recent_posts(MAX_DISCOVERY_POSTS + 1).is_err());
    }

    #[test]
    fn a_post_without_time_counts_from_the_run() {
        let at = DateTime::<Utc>::UNIX_EPOCH + Duration::days(30);
        let run = DiscoveryRun {
            tenant_id: TenantId::generate(),
            channel_id: ChannelId::generate(),
            posts: vec![DiscoveredPost {
                platform_post_id: String::new(),
                url: None,
                text: None,
                published_at: None,
            }],
            poll_window: Duration::days(7),
            next_run_at: at,
            error: None,
            at,
        };
        assert_eq!(run.stop_at(None), at + Duration::days(7));
        let earlier = at - Duration::days(10);
        assert_eq!(run.stop_at(Some(earlier)), at - Duration::days(3));
        assert!(matches!(
            run.validate(),
            Err(CoreError::Invalid {
                field: "platform_post_id",
                ..
            })
        ));
    }
}
