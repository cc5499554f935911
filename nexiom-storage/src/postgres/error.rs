//! Mapping sqlx errors onto [`StorageError`], and the reference checks that
//! tell which reference of an input is unknown.
//!
//! The schema enforces references with composite foreign keys named
//! `fk_<table>_<entity>`; a violation (SQLSTATE 23503) becomes
//! `UnknownReference(<entity>)`. Because several keys can fail at once (an unknown
//! tenant also fails every `(tenant_id, x_id)` key), and because Postgres checks
//! unique keys before foreign keys, a failed write first runs [`missing_ref`]:
//! one query that checks the tenant and then each reference in the order the
//! operation lists them, so the error names the same entity as the in-memory
//! backend does whatever order Postgres fired its checks in.

use nexiom_core::{
    ChannelId, CommentId, ContactId, ContentJobId, ConversationId, MessageId, MissionId, Platform,
    PostId, TenantId,
};
use sqlx::error::ErrorKind;
use sqlx::{Postgres, QueryBuilder};

use super::PgStore;
use uuid::Uuid;

use crate::error::StorageError;

/// A sqlx failure as a [`StorageError`], keeping the error as its source:
///
/// - [`StorageError::Unavailable`] when the database cannot be reached or
///   cannot serve now: I/O and TLS errors (connection refused or lost), pool
///   timeout or closed pool, and SQLSTATE classes 08 (connection exception),
///   53 (insufficient resources), 57P (operator intervention: shutdown), 40001
///   and 40P01 (serialization failure, deadlock), 55P03, 57014 and 25P04
///   (a lock, statement or transaction timeout: the database is too busy to
///   serve now; these also answer [`StorageError::is_timeout`]);
/// - [`StorageError::Invalid`] for SQLSTATE class 22 (data exception: a value
///   the database refuses), so that such an input is not retried forever;
/// - [`StorageError::Backend`] otherwise; a row-level security refusal
///   (SQLSTATE 42501) says which role the operation needs.
pub(super) fn db(err: sqlx::Error) -> StorageError {
    let mut message = format!("postgres: {err}");
    if let sqlx::Error::Database(e) = &err
        && e.code().is_some_and(|c| c == "42501")
    {
        message.push_str(
            " (row-level security: a tenant-scoped operation may only touch its own tenant's \
             rows; cross-tenant work must run on a pool connected as a member of \
             nexiom_worker, see PgStore::with_scan_pool)",
        );
    }
    let timeout = matches!(&err, sqlx::Error::Database(e)
        if e.code().is_some_and(|c| c == "55P03" || c == "57014" || c == "25P04"));
    if timeout {
        return StorageError::Unavailable {
            message,
            source: Some(Box::new(crate::error::TimedOut(Some(Box::new(err))))),
        };
    }
    let unavailable = match &err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(e) => e.code().is_some_and(|c| {
            c.starts_with("08")
                || c.starts_with("53")
                || c.starts_with("57P")
                || c == "40001"
                || c == "40P01"
        }),
        _ => false,
    };
    if unavailable {
        return StorageError::Unavailable {
            message,
            source: Some(Box::new(err)),
        };
    }
    if let sqlx::Error::Database(e) = &err
        && e.code().is_some_and(|c| c.starts_with("22"))
    {
        return StorageError::Invalid(nexiom_core::CoreError::invalid(
            "value",
            format!("refused by the database: {}", e.message()),
        ));
    }
    StorageError::Backend {
        message,
        source: Some(Box::new(err)),
    }
}

/// A value read from the database that does not parse back (a corrupt or
/// hand-edited row).
pub(super) fn corrupt(what: &str, err: impl std::fmt::Display) -> StorageError {
    StorageError::backend(format!(
        "postgres: unreadable {what} in a stored row: {err}"
    ))
}

/// A reference an input makes to another row of its tenant.
#[derive(Debug, Clone)]
pub(super) enum Ref {
    /// A channel of the tenant.
    Channel(ChannelId),
    /// A channel of the tenant on this platform.
    ChannelOn(ChannelId, Platform),
    /// A contact of the tenant.
    Contact(ContactId),
    /// A conversation of the tenant.
    Conversation(ConversationId),
    /// A message of the tenant.
    Message(MessageId),
    /// A scheduled post of the tenant.
    Post(PostId),
    /// A comment of the tenant.
    Comment(CommentId),
    /// A mission of the tenant.
    Mission(MissionId),
    /// A mission of the tenant on this channel.
    MissionOn(MissionId, ChannelId),
    /// A content job of the tenant.
    ContentJob(ContentJobId),
}

impl Ref {
    /// The entity name used in errors.
    pub(super) fn entity(&self) -> &'static str {
        match self {
            Ref::Channel(_) | Ref::ChannelOn(..) => "channel",
            Ref::Contact(_) => "contact",
            Ref::Conversation(_) => "conversation",
            Ref::Message(_) => "message",
            Ref::Post(_) => "post",
            Ref::Comment(_) => "comment",
            Ref::Mission(_) | Ref::MissionOn(..) => "mission",
            Ref::ContentJob(_) => "content_job",
        }
    }

    fn table(&self) -> &'static str {
        match self {
            Ref::Channel(_) | Ref::ChannelOn(..) => "channels",
            Ref::Contact(_) => "contacts",
            Ref::Conversation(_) => "conversations",
            Ref::Message(_) => "messages",
            Ref::Post(_) => "scheduled_posts",
            Ref::Comment(_) => "comments",
            Ref::Mission(_) | Ref::MissionOn(..) => "missions",
            Ref::ContentJob(_) => "content_jobs",
        }
    }

    fn uuid(&self) -> Uuid {
        match self {
            Ref::Channel(id) | Ref::ChannelOn(id, _) => id.as_uuid(),
            Ref::Contact(id) => id.as_uuid(),
            Ref::Conversation(id) => id.as_uuid(),
            Ref::Message(id) => id.as_uuid(),
            Ref::Post(id) => id.as_uuid(),
            Ref::Comment(id) => id.as_uuid(),
            Ref::Mission(id) | Ref::MissionOn(id, _) => id.as_uuid(),
            Ref::ContentJob(id) => id.as_uuid(),
        }
    }

    fn error(&self) -> StorageError {
        StorageError::unknown(self.entity(), self.uuid())
    }
}

/// The first unknown reference among the tenant and `refs` (in that order), as
/// an `UnknownReference` error; `None` when every reference is the tenant's.
/// One round trip.
pub(super) async fn missing_ref<'c, E>(
    executor: E,
    tenant: TenantId,
    refs: &[Ref],
) -> Result<Option<StorageError>, StorageError>
where
    E: sqlx::Executor<'c, Database = Postgres>,
{
    let mut qb =
        QueryBuilder::<Postgres>::new("SELECT ARRAY[EXISTS (SELECT 1 FROM tenants WHERE id = ");
    qb.push_bind(tenant.as_uuid());
    qb.push(")");
    for r in refs {
        qb.push(", EXISTS (SELECT 1 FROM ");
        qb.push(r.table());
        qb.push(" WHERE tenant_id = ");
        qb.push_bind(tenant.as_uuid());
        qb.push(" AND id = ");
        qb.push_bind(r.uuid());
        match r {
            Ref::ChannelOn(_, platform) => {
                qb.push(" AND platform = ");
                qb.push_bind(platform.as_str().to_owned());
            }
            Ref::MissionOn(_, channel) => {
                qb.push(" AND channel_id = ");
                qb.push_bind(channel.as_uuid());
            }
            _ => {}
        }
        qb.push(")");
    }
    qb.push("]");
    let found: Vec<bool> = qb
        .build_query_scalar()
        .fetch_one(executor)
        .await
        .map_err(db)?;
    if !found.first().copied().unwrap_or(false) {
        return Ok(Some(StorageError::unknown("tenant", tenant)));
    }
    Ok(refs
        .iter()
        .zip(found.iter().skip(1))
        .find(|(_, ok)| !**ok)
        .map(|(r, _)| r.error()))
}

/// Like [`missing_ref`], as a `Result`: `Err(UnknownReference)` for the first
/// unknown reference.
pub(super) async fn require_refs<'c, E>(
    executor: E,
    tenant: TenantId,
    refs: &[Ref],
) -> Result<(), StorageError>
where
    E: sqlx::Executor<'c, Database = Postgres>,
{
    match missing_ref(executor, tenant, refs).await? {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// The entity a foreign-key constraint points at, from its name
/// (`fk_<table>_<entity>`).
pub(super) fn fk_entity(constraint: &str) -> Option<&'static str> {
    const ENTITIES: [&str; 11] = [
        "tenant",
        "channel",
        "contact",
        "conversation",
        "message",
        "post",
        "comment",
        "mission",
        "content_job",
        "series",
        "in_reply_to",
    ];
    let name = constraint.strip_prefix("fk_")?;
    let entity = ENTITIES.iter().find(|e| name.ends_with(&format!("_{e}")))?;
    Some(match *entity {
        "series" => "post",
        "in_reply_to" => "message",
        other => other,
    })
}

/// How a failed write is reported.
pub(super) struct WriteFailure<'a> {
    /// The tenant the write was for, when it is tenant data.
    pub tenant: Option<TenantId>,
    /// The references the input makes, in the order they are checked.
    pub refs: &'a [Ref],
    /// For `create_*`: the entity and key a unique violation is a conflict on.
    pub conflict: Option<(&'static str, String)>,
}

/// Maps the error of a write: reference errors (whichever constraint Postgres
/// reported) to `UnknownReference` naming the first unknown reference, unique
/// violations to `Conflict` when the operation refuses duplicates, anything else
/// to `Backend`.
pub(super) async fn write_error(
    store: &PgStore,
    err: sqlx::Error,
    failure: WriteFailure<'_>,
) -> StorageError {
    let (kind, constraint) = match &err {
        sqlx::Error::Database(e) => (Some(e.kind()), e.constraint().map(str::to_owned)),
        _ => (None, None),
    };
    let is_fk = matches!(kind, Some(ErrorKind::ForeignKeyViolation));
    let is_unique = matches!(kind, Some(ErrorKind::UniqueViolation));
    if !is_fk && !is_unique {
        return db(err);
    }
    if let Some(tenant) = failure.tenant {
        // The failed statement aborted its transaction: look in a new one.
        let found = match store.scoped(tenant).await {
            Ok(mut tx) => missing_ref(&mut *tx, tenant, failure.refs).await,
            Err(e) => Err(e),
        };
        match found {
            Ok(Some(unknown)) => return unknown,
            Ok(None) => {}
            Err(other) => return other,
        }
    }
    if is_unique {
        return match failure.conflict {
            Some((entity, key)) => StorageError::conflict(entity, key),
            None => db(err),
        };
    }
    // A reference vanished between the check and the report (or was not listed):
    // name it from the constraint.
    match constraint.as_deref().and_then(fk_entity) {
        Some("tenant") => match failure.tenant {
            Some(tenant) => StorageError::unknown("tenant", tenant),
            None => db(err),
        },
        Some(entity) => {
            let id = failure
                .refs
                .iter()
                .find(|r| r.entity() == entity)
                .map(|r| r.uuid().to_string())
                .unwrap_or_default();
            StorageError::unknown(entity, id)
        }
        None => db(err),
    }
}

#[cfg(test)]
mod tests {
    use super::fk_entity;

    #[test]
    fn constraint_names_map_to_entities() {
        assert_eq!(fk_entity("fk_scheduled_posts_channel"), Some("channel"));
        assert_eq!(
            fk_entity("fk_scheduled_posts_content_job"),
            Some("content_job")
        );
        assert_eq!(fk_entity("fk_scheduled_posts_series"), Some("post"));
        assert_eq!(fk_entity("fk_messages_in_reply_to"), Some("message"));
        assert_eq!(fk_entity("fk_content_jobs_post"), Some("post"));
        assert_eq!(fk_entity("fk_kpi_2h_tenant"), Some("tenant"));
        assert_eq!(fk_entity("fk_ai_decisions_comment"), Some("comment"));
        assert_eq!(fk_entity("uq_channels_account"), None);
    }
}
