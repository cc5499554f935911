//! [`Scheduler`]: create, preview, cancel, reschedule and list scheduled posts.

use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use nexiom_core::{
    BroadcastAudience, BroadcastTemplate, ChannelId, Clock, Content, NewScheduledPost,
    PostBroadcast, PostFilter, PostId, PostPatch, PostStatus, ScheduledPost, TenantId,
};
use nexiom_storage::{StorageError, Store};

use super::recurrence::RecurrenceRule;
use crate::error::{Result, SchedulerError};
use crate::publish::PublishGateway;

/// The most occurrences [`Scheduler::preview`] and
/// [`Scheduler::preview_post`] list (a year of an hourly rule is 8,760: page
/// through longer spans with [`RecurrenceRule::occurrences_after`]).
pub const PREVIEW_LIMIT: usize = 1_000;

/// The `error_message` of a series cancelled on request.
const CANCELLED_ON_REQUEST: &str = "series stopped: cancelled on request";

/// A recurrence as a user writes it: an RFC 5545 RRULE, DTSTART as local wall
/// time, and an IANA time-zone name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesSpec {
    /// The rule, e.g. `FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR` (an `RRULE:` prefix is allowed).
    pub rrule: String,
    /// DTSTART in local time (its time of day is the time of every occurrence
    /// unless the rule says otherwise).
    pub dtstart: NaiveDateTime,
    /// IANA zone, e.g. `Europe/Paris`.
    pub time_zone: String,
}

impl SeriesSpec {
    /// A spec from its three parts.
    pub fn new(
        rrule: impl Into<String>,
        dtstart: NaiveDateTime,
        time_zone: impl Into<String>,
    ) -> Self {
        SeriesSpec {
            rrule: rrule.into(),
            dtstart,
            time_zone: time_zone.into(),
        }
    }

    /// The validated rule.
    pub fn rule(&self) -> Result<RecurrenceRule> {
        RecurrenceRule::parse(&self.rrule, self.dtstart, &self.time_zone)
    }
}

/// The scheduling API of a tenant's posts.
///
/// A one-off post is a row with `publish_at`. A series is a *template* row
/// carrying the recurrence, whose `publish_at` is its next occurrence; the publish
/// queue turns each due occurrence into a post of its own, unique by
/// `(series, occurrence instant)` (see [`crate::PublishQueue`]).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use chrono::{NaiveDate, TimeZone, Utc};
/// use nexiom_core::*;
/// use nexiom_storage::{MemoryStore, Store};
/// use nexiom_scheduler::{Scheduler, SeriesSpec};
///
/// let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 27, 12, 0, 0).unwrap()));
/// let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
/// let tenant = store.create_tenant(NewTenant::new("Acme", clock.now())).await.unwrap();
/// let channel = store.create_channel(NewChannel {
///     tenant_id: tenant.id, platform: Platform::Facebook, external_account_id: "page-1".into(),
///     name: "Page".into(), credentials: Credentials::default(), created_at: clock.now(),
/// }).await.unwrap();
/// let scheduler = Scheduler::new(store, clock);
/// let spec = SeriesSpec::new(
///     "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
///     NaiveDate::from_ymd_opt(2026, 3, 2).unwrap().and_hms_opt(9, 0, 0).unwrap(),
///     "Europe/Paris",
/// );
/// let series = scheduler
///     .schedule_series(tenant.id, channel.id, Content::text("Good morning"), &spec)
///     .await
///     .unwrap();
/// // The next weekday at 09:00 Paris after Friday noon is Monday, after the DST change.
/// assert_eq!(series.publish_at, Utc.with_ymd_and_hms(2026, 3, 30, 7, 0, 0).unwrap());
/// # });
/// ```
#[derive(Clone)]
pub struct Scheduler {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    gateway: Option<Arc<dyn PublishGateway>>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("checks_content", &self.gateway.is_some())
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// A scheduler over `store`, with time from `clock`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Scheduler {
            store,
            clock,
            gateway: None,
        }
    }

    /// Checks content against `gateway`'s capabilities when a post is created or
    /// changed ([`SchedulerError::ContentRefused`]).
    pub fn with_gateway(mut self, gateway: Arc<dyn PublishGateway>) -> Self {
        self.gateway = Some(gateway);
        self
    }

    async fn check_content(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        content: &Content,
    ) -> Result<()> {
        let channel = self.store.get_channel(tenant, channel).await?;
        if let Some(gateway) = &self.gateway
            && let Some(reason) = gateway.refusal(&channel, content)
        {
            return Err(SchedulerError::ContentRefused(reason));
        }
        Ok(())
    }

    /// Creates a post. With a `recurrence`, it is a series template whose
    /// `publish_at` is set to the rule's first occurrence at or after now
    /// ([`SchedulerError::NoFutureOccurrence`] when there is none). Without one,
    /// it is a one-off post at `publish_at` (a time already past means "as soon
    /// as a worker runs"). Occurrences (`series_id` set) are made by the queue,
    /// not here.
    pub async fn schedule_post(&self, new: NewScheduledPost) -> Result<ScheduledPost> {
        let new = self.prepared(new).await?;
        Ok(self.store.insert_post(new).await?.record)
    }

    /// Creates a post on a WhatsApp channel with its audience (explicit
    /// recipients or a stored audience) and the approved template used
    /// outside a recipient's 24-hour window, in one atomic write: the post is
    /// never claimed without them. Otherwise as
    /// [`schedule_post`](Self::schedule_post); a series' occurrences use the
    /// series' audience and template.
    pub async fn schedule_broadcast(
        &self,
        new: NewScheduledPost,
        audience: BroadcastAudience,
        template: Option<BroadcastTemplate>,
    ) -> Result<(ScheduledPost, PostBroadcast)> {
        let new = self.prepared(new).await?;
        Ok(self
            .store
            .insert_broadcast_post(new, audience, template)
            .await?)
    }

    /// `new` checked and, for a series, moved to its first occurrence.
    async fn prepared(&self, mut new: NewScheduledPost) -> Result<NewScheduledPost> {
        if new.series_id.is_some() || new.occurrence_at.is_some() {
            return Err(SchedulerError::Unsupported {
                post: new.series_id.unwrap_or_else(PostId::generate),
                reason: "occurrences are created by the publish queue; schedule the series instead"
                    .into(),
            });
        }
        if let Some(recurrence) = new.recurrence.take() {
            let rule = RecurrenceRule::new(recurrence)?;
            let now = self.clock.now();
            let first =
                rule.first_at_or_after(now)?
                    .ok_or_else(|| SchedulerError::NoFutureOccurrence {
                        rrule: rule.recurrence().rrule.clone(),
                        after: now,
                    })?;
            new.publish_at = first;
            new.recurrence = Some(rule.recurrence().clone());
        }
        self.check_content(new.tenant_id, new.channel_id, &new.content)
            .await?;
        Ok(new)
    }

    /// Creates a one-off post at `publish_at`.
    pub async fn schedule_once(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        content: Content,
        publish_at: DateTime<Utc>,
    ) -> Result<ScheduledPost> {
        let now = self.clock.now();
        self.schedule_post(NewScheduledPost::one_off(
            tenant, channel, content, publish_at, now,
        ))
        .await
    }

    /// Creates a series from a user's RRULE, DTSTART and zone name. Refused with
    /// [`SchedulerError::InvalidRrule`], [`SchedulerError::UnknownTimeZone`],
    /// [`SchedulerError::NoFutureOccurrence`] or [`SchedulerError::ContentRefused`].
    pub async fn schedule_series(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        content: Content,
        spec: &SeriesSpec,
    ) -> Result<ScheduledPost> {
        let rule = spec.rule()?;
        let now = self.clock.now();
        let mut new = NewScheduledPost::one_off(tenant, channel, content, now, now);
        new.recurrence = Some(rule.recurrence().clone());
        self.schedule_post(new).await
    }

    /// The next `n` occurrences of `spec` after now (nothing is stored), at
    /// most [`PREVIEW_LIMIT`]: a larger `n` (from a user, say) lists that many
    /// rather than computing an endless rule's occurrences until memory runs
    /// out.
    pub fn preview(&self, spec: &SeriesSpec, n: usize) -> Result<Vec<DateTime<Utc>>> {
        let n = n.min(PREVIEW_LIMIT);
        let now = self.clock.now();
        let rule = spec.rule()?;
        match rule.first_at_or_after(now)? {
            Some(first) => {
                let mut out = vec![first];
                if n > 1 {
                    out.extend(rule.occurrences_after(first, n - 1)?);
                }
                out.truncate(n);
                Ok(out)
            }
            None => Ok(Vec::new()),
        }
    }

    /// The next `n` occurrences of a stored series, from its next one (its
    /// `publish_at`) on; for a one-off post, its `publish_at` while it is queued.
    /// At most [`PREVIEW_LIMIT`].
    pub async fn preview_post(
        &self,
        tenant: TenantId,
        post: PostId,
        n: usize,
    ) -> Result<Vec<DateTime<Utc>>> {
        let n = n.min(PREVIEW_LIMIT);
        let post = self.store.get_post(tenant, post).await?;
        if n == 0 || post.status != PostStatus::Queued {
            return Ok(Vec::new());
        }
        let Some(recurrence) = post.recurrence else {
            return Ok(vec![post.publish_at]);
        };
        let rule = RecurrenceRule::new(recurrence)?;
        let mut out = vec![post.publish_at];
        out.extend(rule.occurrences_after(post.publish_at, n - 1)?);
        Ok(out)
    }

    /// Cancels a queued post. A WhatsApp broadcast cancelled part-way sends
    /// to no one more: its deliveries not sent yet are failed as cancelled
    /// ([`BroadcastStore::close_cancelled_deliveries`](nexiom_storage::BroadcastStore::close_cancelled_deliveries)).
    /// Cancelling a series template also cancels its
    /// occurrences that are still queued (those waiting for a retry too), and
    /// can be asked again once the template is `cancelled`: a series whose
    /// rule ran out is cancelled as its last occurrence is created, and
    /// cancelling it still stops the occurrences not published yet.
    /// A cancelled series is marked stopped (its `error_message` starts with
    /// [`SERIES_STOPPED`](nexiom_core::SERIES_STOPPED)): an occurrence being published at that instant
    /// finishes its attempt, but if it comes back to `queued` (a retry, a
    /// lease taken over from a stopped worker) it is cancelled when next
    /// claimed, with no call to the platform.
    /// [`SchedulerError::WrongStatus`] when the post is being published or is
    /// already done (a one-off post or an occurrence).
    pub async fn cancel(&self, tenant: TenantId, post: PostId) -> Result<ScheduledPost> {
        let series = self
            .store
            .get_post(tenant, post)
            .await?
            .recurrence
            .is_some();
        let patch = PostPatch {
            status: Some(PostStatus::Cancelled),
            error_message: series.then(|| Some(CANCELLED_ON_REQUEST.to_owned())),
            release_lease: true,
            expect_status: Some(PostStatus::Queued),
            ..PostPatch::default()
        };
        let cancelled = match self.guarded(tenant, post, patch, "cancelling").await {
            Ok(cancelled) => cancelled,
            Err(SchedulerError::WrongStatus {
                status: PostStatus::Cancelled,
                ..
            }) if series => self.mark_stopped(tenant, post).await?,
            Err(err) => return Err(err),
        };
        if cancelled.recurrence.is_some() {
            self.cancel_occurrences(tenant, post).await?;
        } else {
            close_deliveries(self.store.as_ref(), tenant, post, self.clock.now()).await;
        }
        Ok(cancelled)
    }

    /// Marks the cancelled series `post` (its rule ran out, or cancelled
    /// before) stopped, when it is not yet.
    async fn mark_stopped(&self, tenant: TenantId, post: PostId) -> Result<ScheduledPost> {
        let current = self.store.get_post(tenant, post).await?;
        if current.is_stopped_series() {
            return Ok(current);
        }
        let patch = PostPatch {
            error_message: Some(Some(CANCELLED_ON_REQUEST.to_owned())),
            expect_status: Some(PostStatus::Cancelled),
            ..PostPatch::default()
        };
        self.guarded(tenant, post, patch, "cancelling").await
    }

    /// Cancels the queued occurrences of the series `series`; one claimed
    /// meanwhile is being published and stays so (and is cancelled when
    /// next claimed, if it comes back to `queued`).
    async fn cancel_occurrences(&self, tenant: TenantId, series: PostId) -> Result<()> {
        for occurrence in self.queued_occurrences(tenant, series).await? {
            let patch = PostPatch {
                status: Some(PostStatus::Cancelled),
                expect_status: Some(PostStatus::Queued),
                ..PostPatch::default()
            };
            match self
                .store
                .update_post(tenant, occurrence.id, patch, self.clock.now())
                .await
            {
                Ok(_) => {
                    let now = self.clock.now();
                    close_deliveries(self.store.as_ref(), tenant, occurrence.id, now).await;
                }
                Err(StorageError::Precondition { .. }) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    /// The queued occurrences of the series `series`.
    async fn queued_occurrences(
        &self,
        tenant: TenantId,
        series: PostId,
    ) -> Result<Vec<ScheduledPost>> {
        let filter = PostFilter {
            series_id: Some(series),
            status: Some(PostStatus::Queued),
            ..PostFilter::default()
        };
        Ok(self.store.list_posts(tenant, filter).await?)
    }

    /// Moves a queued one-off post or occurrence to `publish_at` (its retry
    /// delay is cleared). A series is rescheduled with
    /// [`Scheduler::reschedule_series`].
    pub async fn reschedule(
        &self,
        tenant: TenantId,
        post: PostId,
        publish_at: DateTime<Utc>,
    ) -> Result<ScheduledPost> {
        let current = self.store.get_post(tenant, post).await?;
        if current.recurrence.is_some() {
            return Err(SchedulerError::Unsupported {
                post,
                reason: "this is a series: use reschedule_series with a new rule".into(),
            });
        }
        let patch = PostPatch {
            publish_at: Some(publish_at),
            next_attempt_at: Some(None),
            expect_status: Some(PostStatus::Queued),
            ..PostPatch::default()
        };
        self.guarded(tenant, post, patch, "rescheduling").await
    }

    /// Replaces a queued series with one following `spec`: the new series
    /// (the same content, links, and for a WhatsApp broadcast the same
    /// audience and template) is checked first, as
    /// [`schedule_post`](Self::schedule_post) checks one; only then is the
    /// old template cancelled (with its queued occurrences) and the new
    /// series created and returned, in one atomic step of the store
    /// ([`PostStore::replace_series`](nexiom_storage::PostStore::replace_series)).
    /// So a refused rule or content, a failing store or a process stopped
    /// midway leaves the old series as it was, never cancelled without its
    /// replacement. Occurrences already published keep their series.
    /// [`SchedulerError::WrongStatus`] when the series is not queued (being
    /// advanced at that instant, or cancelled).
    pub async fn reschedule_series(
        &self,
        tenant: TenantId,
        post: PostId,
        spec: &SeriesSpec,
    ) -> Result<ScheduledPost> {
        let current = self.store.get_post(tenant, post).await?;
        if current.recurrence.is_none() {
            return Err(SchedulerError::Unsupported {
                post,
                reason: "this is not a series: use reschedule with a new time".into(),
            });
        }
        if current.status != PostStatus::Queued {
            return Err(SchedulerError::WrongStatus {
                post,
                status: current.status,
                action: "rescheduling",
            });
        }
        let rule = spec.rule()?;
        let now = self.clock.now();
        let broadcast = self.store.get_post_broadcast(tenant, post).await?;
        let mut new =
            NewScheduledPost::one_off(tenant, current.channel_id, current.content, now, now);
        new.recurrence = Some(rule.recurrence().clone());
        new.mission_id = current.mission_id;
        new.content_job_id = current.content_job_id;
        let new = self.prepared(new).await?;
        // One atomic step: only a series still queued is replaced (one
        // cancelled, finished or replaced meanwhile is refused, so no cancelled
        // series comes back and none is replaced twice), and a failure leaves
        // the old series as it was, never cancelled without its replacement.
        // A broadcast series' queued occurrences may be part-way through
        // their fan-out: those the replacement cancels close their
        // deliveries not sent.
        let waiting = match &broadcast {
            Some(_) => self.queued_occurrences(tenant, post).await?,
            None => Vec::new(),
        };
        let broadcast = broadcast.map(|b| (b.audience, b.template));
        match self
            .store
            .replace_series(post, new, broadcast, self.clock.now())
            .await
        {
            Ok(created) => {
                for occurrence in waiting {
                    let now = self.clock.now();
                    close_deliveries(self.store.as_ref(), tenant, occurrence.id, now).await;
                }
                Ok(created)
            }
            Err(StorageError::Precondition { .. }) => {
                let current = self.store.get_post(tenant, post).await?;
                Err(SchedulerError::WrongStatus {
                    post,
                    status: current.status,
                    action: "rescheduling",
                })
            }
            Err(err) => Err(err.into()),
        }
    }

    /// The tenant's posts of `status`, by `publish_at`, at most `limit`.
    pub async fn list_by_status(
        &self,
        tenant: TenantId,
        status: PostStatus,
        limit: u32,
    ) -> Result<Vec<ScheduledPost>> {
        Ok(self
            .store
            .list_posts(
                tenant,
                PostFilter {
                    status: Some(status),
                    limit: Some(limit),
                    ..PostFilter::default()
                },
            )
            .await?)
    }

    async fn guarded(
        &self,
        tenant: TenantId,
        post: PostId,
        patch: PostPatch,
        action: &'static str,
    ) -> Result<ScheduledPost> {
        match self
            .store
            .update_post(tenant, post, patch, self.clock.now())
            .await
        {
            Ok(updated) => Ok(updated),
            Err(StorageError::Precondition { .. }) => {
                let current = self.store.get_post(tenant, post).await?;
                Err(SchedulerError::WrongStatus {
                    post,
                    status: current.status,
                    action,
                })
            }
            Err(err) => Err(err.into()),
        }
    }
}

/// Settles the deliveries of the cancelled post `post` not sent yet
/// ([`BroadcastStore::close_cancelled_deliveries`](nexiom_storage::BroadcastStore::close_cancelled_deliveries));
/// a post that is no broadcast has none. A failure is logged: the post
/// stays cancelled, and its deliveries send to no one either way.
pub(crate) async fn close_deliveries(
    store: &dyn nexiom_storage::Store,
    tenant: TenantId,
    post: PostId,
    at: DateTime<Utc>,
) {
    match store.close_cancelled_deliveries(tenant, post, at).await {
        Ok(0) => {}
        Ok(closed) => {
            tracing::info!(%tenant, %post, closed, "cancelled broadcast: deliveries not sent closed");
        }
        Err(error) => {
            tracing::warn!(%tenant, %post, %error, "cancelled broadcast: its deliveries not sent were not closed");
        }
    }
}
