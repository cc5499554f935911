//! The people side of the inbox: agents' replies through the connectors
//! under the platforms' messaging policy ([`AgentReplies`]).

mod agent_reply;

pub use agent_reply::{
    AgentReplies, AgentReplyError, AgentReplyRequest, MESSAGING_WINDOW_HOURS,
    PRIVATE_REPLY_WINDOW_DAYS,
};
