//! The reply queue: the state an AUTO_REPLY message or comment carries until
//! it is answered or given up.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Comment, DecisionSubject, Message};
use crate::enums::ReplyState;

/// The reply-queue state of an inbound message or comment triaged
/// AUTO_REPLY (`None` on items that need no automatic reply), or of an item
/// a person answered before its triage (`superseded`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplyStatus {
    /// Where the item stands.
    pub state: ReplyState,
    /// Failed attempts so far (an attempt left aside while AI control was OFF
    /// does not count).
    pub attempts: u32,
    /// The error of the last failed attempt.
    pub error: Option<String>,
    /// While `pending`: not due before this instant (a backoff); `None`: due now.
    pub next_at: Option<DateTime<Utc>>,
    /// While `sending`: the claim holds until this instant; after it, another
    /// worker may claim the item again.
    pub lease_until: Option<DateTime<Utc>>,
}

impl ReplyStatus {
    /// A fresh `pending` state, due now.
    pub fn pending() -> Self {
        ReplyStatus {
            state: ReplyState::Pending,
            attempts: 0,
            error: None,
            next_at: None,
            lease_until: None,
        }
    }
}

/// An item claimed from the reply queue (state `sending`, leased).
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimedReply {
    /// An inbound message.
    Message(Message),
    /// A comment.
    Comment(Comment),
}

impl ClaimedReply {
    /// The item's subject (message or comment id).
    pub fn subject(&self) -> DecisionSubject {
        match self {
            ClaimedReply::Message(m) => DecisionSubject::Message(m.id),
            ClaimedReply::Comment(c) => DecisionSubject::Comment(c.id),
        }
    }

    /// The item's creation time (the queue's order).
    pub fn created_at(&self) -> DateTime<Utc> {
        match self {
            ClaimedReply::Message(m) => m.created_at,
            ClaimedReply::Comment(c) => c.created_at,
        }
    }

    /// The item's reply state.
    pub fn reply(&self) -> Option<&ReplyStatus> {
        match self {
            ClaimedReply::Message(m) => m.reply.as_ref(),
            ClaimedReply::Comment(c) => c.reply.as_ref(),
        }
    }
}

/// How a claimed item's turn ended (see `ReplyQueueStore::finish_reply`).
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyOutcome {
    /// Answered: `sent`, lease and error cleared.
    Sent,
    /// Put back `pending` without counting an attempt (AI control was OFF at
    /// send time), due again at `next_at` (`None`: at once).
    Released {
        /// Earliest next claim.
        next_at: Option<DateTime<Utc>>,
    },
    /// A failed attempt to retry: one more attempt counted, `error` kept,
    /// `pending` again, not due before `next_at`.
    Retry {
        /// Why the attempt failed.
        error: String,
        /// Earliest next claim (the backoff).
        next_at: DateTime<Utc>,
    },
    /// A failed attempt after which no other is made: one more attempt
    /// counted, `error` kept, `given_up`, and the item's triage becomes
    /// ESCALATE so that a person sees it.
    GiveUp {
        /// Why.
        error: String,
    },
}
