//! The domain's enumerations, each with its lower-case string form.
//!
//! The string forms are what storage writes and what serde produces; they never
//! change once released.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::CoreError;

macro_rules! string_enum {
    ($($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ })+) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The lower-case string form.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = CoreError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(CoreError::UnknownValue {
                        kind: stringify!($name),
                        value: other.to_owned(),
                        expected: [$($text,)+].join(", "),
                    }),
                }
            }
        }
    )+};
}

string_enum! {
    /// Life cycle of a [`ScheduledPost`](crate::ScheduledPost):
    /// `queued → publishing → published / failed`, or `cancelled`.
    PostStatus {
        /// Waiting for its `publish_at` (or its next attempt).
        Queued => "queued",
        /// Claimed by a worker holding a lease.
        Publishing => "publishing",
        /// Live on the platform.
        Published => "published",
        /// Gave up; `error_message` says why.
        Failed => "failed",
        /// Cancelled by a user before it was published.
        Cancelled => "cancelled",
    }

    /// Where a [`ScheduledPost`](crate::ScheduledPost) comes from.
    PostOrigin {
        /// Created here (scheduled, planned by a mission) and published by the
        /// publish queue.
        Scheduled => "scheduled",
        /// A post of a connected channel made elsewhere (in the platform's
        /// app, an ad, a post from before the channel was connected), recorded
        /// once per `(channel, platform post id)` when a comment on it arrives
        /// or when post discovery lists it. Always `published`; never claimed
        /// by the publish queue nor counted against a channel's daily cap.
        External => "external",
    }

    /// Outcome of one publishing attempt.
    PostRunStatus {
        /// The attempt is under way.
        Running => "running",
        /// The platform accepted the post.
        Success => "success",
        /// The attempt failed; the run's `error` says why.
        Failed => "failed",
    }

    /// What triage decided for an inbound message or comment.
    Triage {
        /// No action.
        Ignore => "ignore",
        /// A human must look at it.
        Escalate => "escalate",
        /// Nexiom may answer automatically (only while AI control is ON).
        AutoReply => "auto_reply",
    }

    /// Where an AUTO_REPLY item stands in the reply queue:
    /// `pending → sending → sent`, back to `pending` after a failed attempt
    /// (with a backoff), or `given_up` (escalated to a person), or
    /// `superseded` (a person answered first).
    ReplyState {
        /// Waiting for its turn (`next_at`, when set, is the earliest).
        Pending => "pending",
        /// Claimed by a worker until its lease ends.
        Sending => "sending",
        /// Answered.
        Sent => "sent",
        /// No more automatic attempts: the item was escalated to a person.
        GivenUp => "given_up",
        /// Nothing automatic goes out: a person answered first (an agent
        /// reply to its conversation or comment was sent while the item
        /// was still pending or not yet triaged).
        Superseded => "superseded",
    }

    /// Kind of an [`AiRule`](crate::AiRule).
    RuleType {
        /// A match means IGNORE.
        Deny => "deny",
        /// A match means ESCALATE.
        Escalate => "escalate",
        /// A match makes AUTO_REPLY the candidate outcome.
        Auto => "auto",
    }

    /// Phase of a marketing mission's content.
    Phase {
        /// First third of the mission.
        Intro => "intro",
        /// Middle third.
        Nurture => "nurture",
        /// Last third.
        Closing => "closing",
    }

    /// Priority of a mission's objective; `high` is scheduled first.
    ObjectivePriority {
        /// Scheduled first.
        High => "high",
        /// Scheduled after `high`.
        Medium => "medium",
        /// Scheduled last.
        Low => "low",
    }

    /// Status of a [`Mission`](crate::Mission).
    MissionStatus {
        /// Being prepared; not scheduled.
        Draft => "draft",
        /// Eligible for orchestration between its dates.
        Active => "active",
        /// Temporarily not scheduled.
        Paused => "paused",
        /// Finished.
        Completed => "completed",
        /// Abandoned.
        Cancelled => "cancelled",
    }

    /// Status of a [`ContentJob`](crate::ContentJob).
    ContentJobStatus {
        /// Being written.
        Draft => "draft",
        /// Ready to be scheduled by the orchestrator.
        Ready => "ready",
        /// Has a scheduled post.
        Scheduled => "scheduled",
        /// Its post went out (set with the post's settlement, with the
        /// platform's post id and the publication time).
        Published => "published",
        /// Its post failed for good (set with the post's settlement, with the
        /// reason).
        Failed => "failed",
        /// Withdrawn.
        Cancelled => "cancelled",
    }

    /// Direction of a [`Message`](crate::Message).
    MessageDirection {
        /// From a contact to the business.
        Inbound => "inbound",
        /// From the business to a contact.
        Outbound => "outbound",
    }

    /// Delivery status of an outbound message. Statuses only move forward:
    /// `pending < sent < delivered < read`, and `failed` ends the state.
    DeliveryStatus {
        /// Stored, not yet acknowledged by the platform.
        Pending => "pending",
        /// Accepted by the platform.
        Sent => "sent",
        /// Delivered to the device.
        Delivered => "delivered",
        /// Read by the contact.
        Read => "read",
        /// Not delivered.
        Failed => "failed",
    }

    /// Where one recipient's message of a broadcast is:
    /// `pending → sending → sent / failed`, or `pending` again for a retry.
    BroadcastDeliveryState {
        /// Waiting for its (next) attempt.
        Pending => "pending",
        /// Claimed for a send; a delivery left `sending` by a worker that
        /// stopped is never sent again (it may have gone out).
        Sending => "sending",
        /// Accepted by the platform.
        Sent => "sent",
        /// Failed for good (refused, out of attempts, outside the window
        /// without a template, opted out, or the outcome of a send unknown).
        Failed => "failed",
    }

    /// Status of a [`Conversation`](crate::Conversation).
    ConversationStatus {
        /// Receiving messages; at most one per (contact, channel).
        Open => "open",
        /// Closed; a new inbound message opens a new conversation.
        Closed => "closed",
    }

    /// Health of a [`Channel`](crate::Channel)'s credentials.
    ChannelStatus {
        /// Usable.
        Active => "active",
        /// The platform refused a token refresh; a person must sign in again.
        NeedsReauth => "needs_reauth",
        /// Turned off by a user.
        Disabled => "disabled",
    }

    /// What a normalized webhook event is about.
    EventKind {
        /// An inbound direct message (WhatsApp, Instagram / Messenger DM).
        Message => "message",
        /// A delivery status for an outbound message.
        Status => "status",
        /// A comment on a post.
        Comment => "comment",
        /// A reply to a comment.
        CommentReply => "comment_reply",
        /// A contact's messaging preference (WhatsApp marketing messages
        /// `stop` / `resume`, in `text`): routing applies it to the contact's
        /// opt-in.
        Preference => "preference",
        /// A comment hidden, shown again or removed on the platform (a
        /// Facebook Page's moderator): `text` is the verb (`hide`, `unhide`,
        /// `remove`), `target_id` the post and `parent_id` the comment.
        /// Routing records it on the stored comment (`hidden`; a removed
        /// comment counts as hidden: it gets no decision and no reply).
        Moderation => "moderation",
        /// Anything else the platform sends (kept, not routed).
        Other => "other",
    }

    /// Status of a worker run in the execution log.
    RunStatus {
        /// Under way.
        Running => "running",
        /// Finished (some items may still have failed; see the counts).
        Completed => "completed",
        /// The run itself failed.
        Failed => "failed",
    }

    /// Kind of a media attachment.
    MediaKind {
        /// A still image.
        Image => "image",
        /// A video.
        Video => "video",
        /// An audio clip.
        Audio => "audio",
        /// A document (PDF…).
        Document => "document",
    }
}

impl DeliveryStatus {
    /// Rank used to apply out-of-order status events monotonically.
    pub const fn rank(self) -> u8 {
        match self {
            DeliveryStatus::Pending => 0,
            DeliveryStatus::Sent => 1,
            DeliveryStatus::Delivered => 2,
            DeliveryStatus::Read => 3,
            DeliveryStatus::Failed => 4,
        }
    }

    /// Whether moving from `self` to `next` is allowed: forward only, and nothing
    /// after `failed`.
    pub const fn can_advance_to(self, next: DeliveryStatus) -> bool {
        !matches!(self, DeliveryStatus::Failed) && next.rank() > self.rank()
    }
}

impl ObjectivePriority {
    /// Sort key: `high` first.
    pub const fn rank(self) -> u8 {
        match self {
            ObjectivePriority::High => 0,
            ObjectivePriority::Medium => 1,
            ObjectivePriority::Low => 2,
        }
    }
}

impl ContentJobStatus {
    /// `published` or `failed`: the statuses a job takes from its post's
    /// settlement, which carry the post's outcome (platform post id and time,
    /// or reason). Setting a job to any other status clears that outcome.
    pub const fn is_settled(self) -> bool {
        matches!(self, ContentJobStatus::Published | ContentJobStatus::Failed)
    }
}

impl Phase {
    /// The phase with index 0, 1 or 2 (anything above 2 is `closing`).
    pub const fn from_index(index: u32) -> Phase {
        match index {
            0 => Phase::Intro,
            1 => Phase::Nurture,
            _ => Phase::Closing,
        }
    }

    /// 0 for intro, 1 for nurture, 2 for closing.
    pub const fn index(self) -> u32 {
        match self {
            Phase::Intro => 0,
            Phase::Nurture => 1,
            Phase::Closing => 2,
        }
    }
}

string_enum! {
    /// What a [`Notification`](crate::Notification) tells people about.
    NotificationKind {
        /// A message or comment was escalated to a person.
        ItemEscalated => "item_escalated",
        /// A post failed for good (no more attempts).
        PostFailed => "post_failed",
        /// A post was left `outcome_unknown`: a person must check the platform.
        PublishOutcomeUnknown => "publish_outcome_unknown",
        /// A channel's token was refused: it must be authorized again.
        ChannelNeedsReauth => "channel_needs_reauth",
        /// A worker failed several runs in a row.
        WorkerFailing => "worker_failing",
        /// An item waited past the tenant's first-response target.
        SlaBreached => "sla_breached",
    }

    /// How a [`NotificationEndpoint`](crate::NotificationEndpoint) is called.
    EndpointKind {
        /// An outgoing webhook: the JSON event, signed with the endpoint's secret.
        Webhook => "webhook",
        /// A Slack-compatible incoming-webhook URL: a `{"text": …}` message.
        Slack => "slack",
    }

    /// Where one delivery of a notification to one endpoint stands.
    NotificationDeliveryState {
        /// Waiting for its (next) attempt.
        Pending => "pending",
        /// The endpoint accepted it.
        Delivered => "delivered",
        /// Given up after the last allowed attempt.
        Dead => "dead",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_forms_round_trip() {
        for s in PostStatus::ALL {
            assert_eq!(s.as_str().parse::<PostStatus>().expect("parse"), *s);
            assert_eq!(
                serde_json::to_string(s).expect("json"),
                format!("\"{}\"", s.as_str())
            );
        }
        assert_eq!(Triage::AutoReply.as_str(), "auto_reply");
        assert_eq!(ChannelStatus::NeedsReauth.to_string(), "needs_reauth");
        let err = "QUEUED".parse::<PostStatus>().expect_err("case matters");
        assert!(err.to_string().contains("queued, publishing"));
    }

    #[test]
    fn delivery_status_only_moves_forward() {
        use DeliveryStatus::*;
        assert!(Sent.can_advance_to(Delivered));
        assert!(Sent.can_advance_to(Read));
        assert!(!Read.can_advance_to(Delivered));
        assert!(Delivered.can_advance_to(Failed));
        assert!(!Failed.can_advance_to(Read));
    }
}
