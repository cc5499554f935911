//! Instagram's two-step publishing (platform-apis §2): the media container,
//! its `status_code`, and `media_publish`; and how a `media_publish` whose
//! answer was lost is settled from the container's status.
//!
//! A container is published at most once (its `status_code` becomes
//! `PUBLISHED`), so after a lost answer the container says what happened:
//!
//! | `status_code` | meaning | what `publish` does |
//! | --- | --- | --- |
//! | `PUBLISHED` | the media exists | finds its id among the account's media (caption and time, as [`crate::lookup`]); not found: [`ConnectorError::PublishedWithoutId`] |
//! | `FINISHED` | not published | sends `media_publish` again with the same container, once; if that fails too (however) and the container is still `FINISHED`, `OutcomeUnknown` naming it |
//! | `EXPIRED`, `ERROR` | not published | a failure (`Transient` when Instagram says to try again: a new container next time) |
//! | `IN_PROGRESS`, unreadable | cannot tell | [`ConnectorError::OutcomeUnknown`] naming the container |
//!
//! The container id lives only in this call (and in the error's text): an
//! `OutcomeUnknown` from here, or a worker that stopped during the call, is
//! settled by the queue's caption lookup, as on the other platforms.

use chrono::{DateTime, Utc};
use nexiom_core::{Content, MediaKind};
use serde_json::{Value, json};

use super::{InstagramConnector, NAME, lookup};
use crate::error::{ApiError, ConnectorError, ValidationError};
use crate::graph::id_of;
use crate::lookup::{LookupOutcome, LookupQuery};
use crate::types::{ChannelContext, PublishRequest, Published};

/// How many times the media of a `PUBLISHED` container is looked for.
const PUBLISHED_LOOKUPS: u32 = 3;

/// A container's `status_code` and `status`.
struct ContainerStatus {
    code: String,
    status: String,
}

/// The media a `media_publish` made: its id, and its permalink when the
/// lookup that found it read one.
struct Media {
    id: String,
    url: Option<String>,
}

/// Whether `error` leaves open that `media_publish` was carried out (no
/// answer after the request was sent, or a success answer without an id).
fn is_ambiguous(error: &ConnectorError) -> bool {
    matches!(
        error,
        ConnectorError::OutcomeUnknown { .. } | ConnectorError::InvalidResponse { .. }
    )
}

/// `error` (a lost `media_publish` answer) naming the container to check.
fn naming(error: ConnectorError, container: &str, why: &str) -> ConnectorError {
    ConnectorError::OutcomeUnknown {
        platform: NAME.into(),
        reason: format!("{error}; container {container} {why}; check it before publishing again"),
    }
}

/// The publishing subcode (`2207xxx`) a container's `status` names, as in
/// `Error: Media upload has failed with error code 2207053`.
fn status_subcode(status: &str) -> Option<i32> {
    status
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| w.len() == 7 && w.starts_with("2207"))
        .find_map(|w| w.parse().ok())
}

/// A container that ended `ERROR` or `EXPIRED`: nothing was published.
/// Expired, or failed with an error Instagram says to try again: `Transient`
/// (a new container is made at the next attempt); else `Permanent`.
fn container_failure(container: &str, s: &ContainerStatus) -> ConnectorError {
    let detail = ApiError {
        subcode: status_subcode(&s.status),
        ..ApiError::message(format!("container {container} is {} {}", s.code, s.status))
    };
    let again = s.code == "EXPIRED"
        || (s.code == "ERROR"
            && detail
                .subcode
                .is_some_and(crate::graph::is_try_again_subcode));
    let platform = NAME.into();
    if again {
        ConnectorError::Transient { platform, detail }
    } else {
        ConnectorError::Permanent { platform, detail }
    }
}

impl InstagramConnector {
    /// Creates the container, waits for it when it is a video, publishes it.
    pub(super) async fn publish_media(
        &self,
        ctx: &ChannelContext,
        request: &PublishRequest,
    ) -> Result<Published, ConnectorError> {
        let started = self.clock.now();
        let content = &request.content;
        self.capabilities
            .validate(NAME, content, request.schedule_at)?;
        let media = content
            .media
            .first()
            .ok_or(ValidationError::MediaRequired {
                platform: NAME.into(),
            })?;
        let caption = lookup::caption(content);
        let mut body = match media.kind {
            MediaKind::Video => json!({"media_type": "REELS", "video_url": media.url}),
            _ => json!({"image_url": media.url}),
        };
        if !caption.is_empty() {
            body["caption"] = json!(caption);
        }
        // A container is not a post: nothing is published before
        // `media_publish`, so a container request whose answer was lost is
        // safe to send again (an orphan container expires unpublished).
        let created = self
            .graph
            .post(ctx, &[&ctx.account_id, "media"], body)
            .await
            .map_err(|e| match e {
                ConnectorError::OutcomeUnknown { platform, reason } => ConnectorError::Transient {
                    platform,
                    detail: ApiError::message(format!(
                        "creating the media container: {reason} (nothing was published)"
                    )),
                },
                other => other,
            })?;
        let container = id_of(NAME, &created, "container")?;
        if media.kind == MediaKind::Video {
            self.wait_for_container(ctx, &container).await?;
        }
        let Media { id, url } = self
            .publish_container(ctx, &container, content, started)
            .await?;
        let url = match url {
            Some(url) => Some(url),
            None => self.permalink(ctx, &id).await,
        };
        Ok(Published {
            platform_post_id: id.clone(),
            url,
            ids: vec![container, id],
            failed_recipients: Vec::new(),
            unknown_recipients: Vec::new(),
            unsent_recipients: Vec::new(),
            scheduled: false,
        })
    }

    /// `media_publish` of `container`; a lost answer is settled from the
    /// container's status (see the module docs).
    async fn publish_container(
        &self,
        ctx: &ChannelContext,
        container: &str,
        content: &Content,
        started: DateTime<Utc>,
    ) -> Result<Media, ConnectorError> {
        let mut resent = false;
        loop {
            let error = match self
                .graph
                .post(
                    ctx,
                    &[&ctx.account_id, "media_publish"],
                    json!({"creation_id": container}),
                )
                .await
            {
                Ok(v) => match id_of(NAME, &v, "media_publish") {
                    Ok(id) => return Ok(Media { id, url: None }),
                    Err(e) => e,
                },
                Err(e) => e,
            };
            // A refusal of the first request published nothing. A refusal
            // of the second may answer a container the first published.
            if !resent && !is_ambiguous(&error) {
                return Err(error);
            }
            let status = match self.container_status(ctx, container).await {
                Ok(status) => status,
                Err(read) => {
                    tracing::debug!(error = %read, "container status unreadable");
                    return Err(naming(error, container, "could not be read"));
                }
            };
            match status.code.as_str() {
                "PUBLISHED" => return self.published_media(ctx, container, content, started).await,
                "FINISHED" if !resent => resent = true,
                "EXPIRED" | "ERROR" => return Err(container_failure(container, &status)),
                // Still FINISHED after the second request failed, however it
                // failed: the first may still be under way on the platform's
                // side (a timeout), so the outcome stays unknown: the queue
                // looks the post up before any new container.
                other => return Err(naming(error, container, &format!("is {other}"))),
            }
        }
    }

    /// The media a `PUBLISHED` container made, found among the account's
    /// media by its caption and time.
    async fn published_media(
        &self,
        ctx: &ChannelContext,
        container: &str,
        content: &Content,
        started: DateTime<Utc>,
    ) -> Result<Media, ConnectorError> {
        let query = LookupQuery::new(content.clone(), started);
        // The media may be listed a little after its container reads
        // PUBLISHED: looked for a few times, up to 10 s apart.
        let pause = self.poll_interval.min(std::time::Duration::from_secs(10));
        let mut why = String::new();
        for look in 0..PUBLISHED_LOOKUPS {
            if look > 0 && !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            let again;
            (why, again) = match lookup::find(&self.graph, ctx, &query).await {
                Ok(LookupOutcome::Found(found)) => {
                    return Ok(Media {
                        id: found.platform_post_id,
                        url: found.url,
                    });
                }
                Ok(LookupOutcome::NotFound) => (
                    format!(
                        "its media is not among the account's media since the attempt \
                         ({} reads)",
                        look + 1
                    ),
                    true,
                ),
                // Content it cannot match on (no caption) stays so.
                Err(e @ ConnectorError::LookupInconclusive { .. }) => {
                    (format!("its media could not be found ({e})"), false)
                }
                Err(e) => (format!("its media could not be found ({e})"), true),
            };
            if !again {
                break;
            }
        }
        Err(ConnectorError::PublishedWithoutId {
            platform: NAME.into(),
            reason: format!("container {container} is PUBLISHED, but {why}"),
        })
    }

    /// The media's permalink, a best-effort read: the post exists whatever
    /// happens.
    async fn permalink(&self, ctx: &ChannelContext, media_id: &str) -> Option<String> {
        match self
            .graph
            .get(ctx, &[media_id], &[("fields", "permalink")])
            .await
        {
            Ok(v) => v
                .get("permalink")
                .and_then(Value::as_str)
                .map(str::to_owned),
            Err(e) => {
                tracing::debug!(error = %e, "permalink lookup failed");
                None
            }
        }
    }

    /// `GET /{container}?fields=status_code,status`.
    async fn container_status(
        &self,
        ctx: &ChannelContext,
        container: &str,
    ) -> Result<ContainerStatus, ConnectorError> {
        let v = self
            .graph
            .get(ctx, &[container], &[("fields", "status_code,status")])
            .await?;
        let text = |field: &str| {
            v.get(field)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        Ok(ContainerStatus {
            code: text("status_code"),
            status: text("status"),
        })
    }

    /// Waits until a video container is `FINISHED`.
    async fn wait_for_container(
        &self,
        ctx: &ChannelContext,
        container: &str,
    ) -> Result<(), ConnectorError> {
        for attempt in 0..self.poll_attempts {
            let status = self.container_status(ctx, container).await?;
            match status.code.as_str() {
                "FINISHED" => return Ok(()),
                "IN_PROGRESS" => {}
                "ERROR" | "EXPIRED" | "PUBLISHED" => {
                    return Err(container_failure(container, &status));
                }
                other => {
                    return Err(ConnectorError::invalid_response(
                        NAME,
                        format!("unknown container status_code {other:?}"),
                    ));
                }
            }
            if attempt + 1 < self.poll_attempts && !self.poll_interval.is_zero() {
                tokio::time::sleep(self.poll_interval).await;
            }
        }
        Err(ConnectorError::Transient {
            platform: NAME.into(),
            detail: ApiError::message(format!(
                "container {container} still IN_PROGRESS after {} checks",
                self.poll_attempts
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subcodes_are_read_from_the_status() {
        assert_eq!(
            status_subcode("Error: Media upload has failed with error code 2207053"),
            Some(2_207_053)
        );
        assert_eq!(status_subcode("Error: 12345"), None);
    }

    #[test]
    fn a_failed_container_is_retried_only_when_instagram_says_so() {
        let s = |code: &str, status: &str| ContainerStatus {
            code: code.into(),
            status: status.into(),
        };
        assert!(matches!(
            container_failure("c", &s("EXPIRED", "")),
            ConnectorError::Transient { .. }
        ));
        assert!(matches!(
            container_failure("c", &s("ERROR", "failed with error code 2207001")),
            ConnectorError::Transient { .. }
        ));
        assert!(matches!(
            container_failure("c", &s("ERROR", "failed with error code 2207057")),
            ConnectorError::Permanent { .. }
        ));
    }
}
