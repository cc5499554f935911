//! [`PostStore::replace_series`](crate::PostStore::replace_series) on Postgres:
//! one transaction cancels the old series and its queued occurrences and
//! inserts the new template with its broadcast.

use chrono::{DateTime, Utc};
use nexiom_core::{BroadcastAudience, BroadcastTemplate, NewScheduledPost, PostId, ScheduledPost};
use uuid::Uuid;

use super::PgStore;
use super::broadcast::{audience_on_channel, insert_post_broadcast, insert_template};
use super::error::{WriteFailure, db, require_refs, write_error};
use super::post::{GUARD_ATTEMPTS, post_refs};
use crate::checks;
use crate::error::{Result, StorageError};

impl PgStore {
    pub(super) async fn replace_series_in_one(
        &self,
        old: PostId,
        new: NewScheduledPost,
        broadcast: Option<(BroadcastAudience, Option<BroadcastTemplate>)>,
        at: DateTime<Utc>,
    ) -> Result<ScheduledPost> {
        let spec = checks::series_replacement(&new, broadcast)?;
        let tenant = new.tenant_id;
        let id = spec.as_ref().map_or_else(PostId::generate, |s| s.post_id);
        // READ COMMITTED whatever the server's default: a concurrent
        // replacement waits for the row lock, then finds the template no
        // longer queued (a refusal, not a serialization failure).
        let mut tx = self
            .scoped_with(tenant, "ISOLATION LEVEL READ COMMITTED")
            .await?;
        // The old template first: its row lock makes a concurrent cancel or
        // replacement wait, then find it no longer queued. A template being
        // advanced at that instant (`publishing`, then `queued` again) is
        // tried again, as `update_post` does.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let cancelled: Option<Uuid> = sqlx::query_scalar(
                "UPDATE scheduled_posts SET status = 'cancelled', lease_owner = NULL, \
                     lease_expires_at = NULL, updated_at = $3, error_message = $4 \
                 WHERE tenant_id = $1 AND id = $2 AND status = 'queued' \
                     AND rrule IS NOT NULL AND series_id IS NULL \
                 RETURNING id",
            )
            .bind(tenant.as_uuid())
            .bind(old.as_uuid())
            .bind(at)
            .bind(checks::replaced_by(id))
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            if cancelled.is_some() {
                break;
            }
            let found: Option<(String, bool)> = sqlx::query_as(
                "SELECT status, rrule IS NOT NULL AND series_id IS NULL \
                 FROM scheduled_posts WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.as_uuid())
            .bind(old.as_uuid())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            return Err(match found {
                None => StorageError::not_found("post", old),
                Some((_, false)) => {
                    StorageError::precondition("post", old, "not a series template")
                }
                Some((status, true)) if status == "queued" && attempts < GUARD_ATTEMPTS => {
                    continue;
                }
                Some((status, true)) => StorageError::precondition(
                    "post",
                    old,
                    format!("status is {status}, expected queued"),
                ),
            });
        }
        let refs = post_refs(&new);
        require_refs(&mut *tx, tenant, &refs).await?;
        if let Some(spec) = &spec {
            audience_on_channel(&mut tx, tenant, &spec.audience, new.channel_id).await?;
        }
        let row = match insert_template(&mut tx, id, &new).await {
            Ok(row) => row,
            Err(err) => {
                drop(tx);
                return Err(write_error(
                    self,
                    err,
                    WriteFailure {
                        tenant: Some(tenant),
                        refs: &refs,
                        conflict: None,
                    },
                )
                .await);
            }
        };
        if let Some(spec) = &spec {
            insert_post_broadcast(&mut tx, spec).await?;
        }
        sqlx::query(
            "UPDATE scheduled_posts SET status = 'cancelled', updated_at = $3 \
             WHERE tenant_id = $1 AND series_id = $2 AND status = 'queued'",
        )
        .bind(tenant.as_uuid())
        .bind(old.as_uuid())
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.into_entity()
    }
}
