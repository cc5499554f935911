//! Typed identifiers.
//!
//! Every entity has its own id type so that a `PostId` can never be passed where a
//! `MessageId` is expected. Ids are UUID v7: time-ordered, which keeps B-tree
//! indexes compact and makes "oldest first" cheap.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::CoreError;

macro_rules! typed_id {
    ($($(#[$meta:meta])* $name:ident;)+) => {$(
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered (UUID v7) id.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID (for example one read from a database row).
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl FromStr for $name {
            type Err = CoreError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|e| CoreError::invalid(stringify!($name), format!("not a UUID: {e}")))
            }
        }
    )+};
}

typed_id! {
    /// Identifies a [`Tenant`](crate::Tenant).
    TenantId;
    /// Identifies a [`Channel`](crate::Channel) (a connected social account).
    ChannelId;
    /// Identifies a stored [`WebhookEvent`](crate::WebhookEvent).
    WebhookEventId;
    /// Identifies a [`Contact`](crate::Contact).
    ContactId;
    /// Identifies a [`ContactChannel`](crate::ContactChannel).
    ContactChannelId;
    /// Identifies a [`Conversation`](crate::Conversation).
    ConversationId;
    /// Identifies a [`Message`](crate::Message).
    MessageId;
    /// Identifies a [`ScheduledPost`](crate::ScheduledPost).
    PostId;
    /// Identifies a [`PostRun`](crate::PostRun).
    PostRunId;
    /// Identifies a [`Comment`](crate::Comment).
    CommentId;
    /// Identifies an [`AiRule`](crate::AiRule).
    RuleId;
    /// Identifies an [`IgnoreExample`](crate::IgnoreExample).
    IgnoreExampleId;
    /// Identifies an [`AiDecision`](crate::AiDecision).
    DecisionId;
    /// Identifies a [`Mission`](crate::Mission).
    MissionId;
    /// Identifies a [`ContentJob`](crate::ContentJob).
    ContentJobId;
    /// Identifies a [`MissionIntelligenceReport`](crate::MissionIntelligenceReport).
    ReportId;
    /// Identifies a [`TaskExecutionLog`](crate::TaskExecutionLog).
    ExecutionId;
    /// Identifies a [`DeadLetter`](crate::DeadLetter).
    DeadLetterId;
    /// Identifies a [`Topic`](crate::Topic).
    TopicId;
    /// Identifies an [`ApiKey`](crate::ApiKey).
    ApiKeyId;
    /// Identifies a [`BroadcastContact`](crate::BroadcastContact).
    BroadcastContactId;
    /// Identifies an [`Audience`](crate::Audience).
    AudienceId;
    /// Identifies a [`BroadcastDelivery`](crate::BroadcastDelivery).
    BroadcastDeliveryId;
}

typed_id! {
    /// Identifies a [`Notification`](crate::Notification).
    NotificationId;
    /// Identifies a [`NotificationEndpoint`](crate::NotificationEndpoint).
    EndpointId;
    /// Identifies a [`NotificationDelivery`](crate::NotificationDelivery).
    NotificationDeliveryId;
    /// Identifies an [`AgentReply`](crate::AgentReply).
    AgentReplyId;
    /// Identifies an [`InboxNote`](crate::InboxNote).
    InboxNoteId;
    /// Identifies a [`CannedReply`](crate::CannedReply).
    CannedReplyId;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_time_ordered_and_round_trip() {
        let a = PostId::generate();
        let b = PostId::generate();
        assert!(a < b, "v7 ids generated later sort later");
        let parsed: PostId = a.to_string().parse().expect("round trip");
        assert_eq!(parsed, a);
        let json = serde_json::to_string(&a).expect("serialize");
        assert_eq!(json, format!("\"{a}\""));
        assert!(format!("{a:?}").starts_with("PostId("));
        assert!("not-a-uuid".parse::<PostId>().is_err());
    }
}
