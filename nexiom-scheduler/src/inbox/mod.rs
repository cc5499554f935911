//! The people side of the inbox: agents' replies through the connectors
//! under the platforms' messaging policy ([`AgentReplies`]), and the
//! first-response SLA ([`SlaMonitor`], [`SlaWorker`]). The inbox state
//! itself (assignee, status, labels, notes, lists, canned replies) is
//! [`nexiom_storage::InboxStore`].

mod abandoned;
mod agent_reply;
mod sla;

pub use abandoned::AGENT_REPLY_ABANDONED_AFTER_MINUTES;
pub(crate) use abandoned::settle_abandoned;
pub use agent_reply::{
    AgentReplies, AgentReplyError, AgentReplyRequest, MESSAGING_WINDOW_HOURS,
    PRIVATE_REPLY_WINDOW_DAYS,
};
pub use sla::{SLA_BREACHES, SlaMonitor, SlaReport, SlaWorker, breach_notification};
