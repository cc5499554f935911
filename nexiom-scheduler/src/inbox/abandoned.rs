//! Agent replies left `sending`: their sender stopped (or failed to record
//! the platform's answer) between the claim and the record. They are
//! settled as of unknown outcome, never sent again.

use chrono::{DateTime, Duration, Utc};
use nexiom_core::{AgentReply, AgentReplyOutcome, AgentReplyState};
use nexiom_storage::{ABANDONED_AGENT_REPLY_ERROR, Store};

use super::agent_reply::{AgentReplies, AgentReplyError};

/// How long an agent reply may stay `sending` before it is taken as
/// abandoned, in minutes: well past any platform call's timeout, so a reply
/// still in flight is never settled under its sender.
pub const AGENT_REPLY_ABANDONED_AFTER_MINUTES: i64 = 15;

/// The claim time before which a reply still `sending` at `now` is taken
/// as abandoned.
pub(crate) fn abandoned_before(now: DateTime<Utc>) -> DateTime<Utc> {
    now.checked_sub_signed(Duration::minutes(AGENT_REPLY_ABANDONED_AFTER_MINUTES))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Settles up to `limit` agent replies of every tenant left `sending` for
/// longer than [`AGENT_REPLY_ABANDONED_AFTER_MINUTES`] at `now` (see
/// [`AgentReplyStore::settle_abandoned_agent_replies`](nexiom_storage::AgentReplyStore::settle_abandoned_agent_replies)),
/// each logged; returns them.
pub(crate) async fn settle_abandoned(
    store: &dyn Store,
    now: DateTime<Utc>,
    limit: u32,
) -> nexiom_storage::Result<Vec<AgentReply>> {
    let settled = store
        .settle_abandoned_agent_replies(abandoned_before(now), now, limit)
        .await?;
    for reply in &settled {
        tracing::warn!(tenant = %reply.tenant_id, reply = %reply.id, claimed_at = %reply.created_at,
            "agent reply left sending by a stopped sender: failed as of unknown outcome");
    }
    Ok(settled)
}

impl AgentReplies {
    /// Settles up to `limit` agent replies of every tenant that stayed
    /// `sending` for longer than [`AGENT_REPLY_ABANDONED_AFTER_MINUTES`]: the
    /// process that claimed one stopped before recording the platform's
    /// answer, or that record failed. Each becomes `failed` with
    /// [`ABANDONED_AGENT_REPLY_ERROR`] (it may have been sent; never sent
    /// again under its key). The worker that releases stale leases
    /// ([`ReleaseStaleLeasesWorker`](crate::ReleaseStaleLeasesWorker)) does
    /// this every minute; a call with the reply's key settles it too. A
    /// cross-tenant sweep: on PostgreSQL with row-level security it needs
    /// the worker's store (a scan pool of `nexiom_worker`); through an API
    /// process's `nexiom_app` pool it sees, and settles, nothing.
    pub async fn settle_abandoned(&self, limit: u32) -> Result<Vec<AgentReply>, AgentReplyError> {
        Ok(settle_abandoned(self.store.as_ref(), self.clock.now(), limit).await?)
    }

    /// `reply` as a caller should see it: one left `sending` for longer
    /// than [`AGENT_REPLY_ABANDONED_AFTER_MINUTES`] is settled first (see
    /// [`Self::settle_abandoned`]); any other as it is.
    pub(super) async fn unless_abandoned(
        &self,
        reply: AgentReply,
    ) -> Result<AgentReply, AgentReplyError> {
        let now = self.clock.now();
        if reply.state != AgentReplyState::Sending || reply.created_at >= abandoned_before(now) {
            return Ok(reply);
        }
        tracing::warn!(tenant = %reply.tenant_id, reply = %reply.id,
            "agent reply left sending by a stopped sender: failed as of unknown outcome");
        let error = ABANDONED_AGENT_REPLY_ERROR.to_owned();
        Ok(self
            .store
            .finish_agent_reply(
                reply.tenant_id,
                reply.id,
                AgentReplyOutcome::Failed { error },
                now,
            )
            .await?)
    }
}
