//! Contract checks of post lookup ([`PlatformConnector::find_published`]) and
//! of the recent-post listing ([`PlatformConnector::list_recent_posts`]).

use chrono::DateTime;
use wiremock::MockServer;

use crate::connector::PlatformConnector;
use crate::lookup::{LookupOutcome, LookupQuery};

use super::{ContractHarness, SeedPost};

/// `lookup_by_content_and_window`: among the account's recent posts, the one
/// with the request's text created after the attempt is found; an identical post
/// from a day before is not; another text is `NotFound`. `None`: the connector
/// has no lookup (or the harness mounts no listing).
pub(super) async fn lookup_by_content_and_window(
    h: &dyn ContractHarness,
) -> Option<Result<(), String>> {
    let server = MockServer::start().await;
    let c = match h.connector(&server.uri()) {
        Ok(c) => c,
        Err(e) => return Some(Err(format!("cannot build the connector: {e}"))),
    };
    if !c.supports_lookup() {
        return None;
    }
    let request = h.publish_request();
    let attempt = 1_767_000_000;
    let posts = [
        SeedPost {
            id: "contract-new".into(),
            text: format!("  {}\n", request.content.text),
            created_unix: attempt + 2,
        },
        SeedPost {
            id: "contract-old".into(),
            text: request.content.text.clone(),
            created_unix: attempt - 86_400,
        },
    ];
    if !h.mount_recent_posts(&server, &posts).await {
        return None;
    }
    Some(check(c.as_ref(), h, request.content, attempt).await)
}

async fn check(
    c: &dyn PlatformConnector,
    h: &dyn ContractHarness,
    content: nexiom_core::Content,
    attempt: i64,
) -> Result<(), String> {
    let at = DateTime::from_timestamp(attempt, 0).ok_or("bad time")?;
    let ctx = h.context();
    let query = LookupQuery::new(content.clone(), at);
    match c.find_published(&ctx, &query).await {
        Ok(LookupOutcome::Found(found)) if found.platform_post_id == "contract-new" => {}
        other => return Err(format!("expected Found(contract-new), got {other:?}")),
    }
    let mut other = content;
    other.text = format!("{} (another text)", other.text);
    match c.find_published(&ctx, &LookupQuery::new(other, at)).await {
        Ok(LookupOutcome::NotFound) => Ok(()),
        got => Err(format!("expected NotFound for another text, got {got:?}")),
    }
}

/// `recent_posts_newest_first`: the account's listing is read newest first
/// with each post's id, text and creation time, and the limit is honoured.
/// `None`: the connector lists no recent posts (or the harness mounts no
/// listing).
pub(super) async fn recent_posts_newest_first(
    h: &dyn ContractHarness,
) -> Option<Result<(), String>> {
    let server = MockServer::start().await;
    let c = match h.connector(&server.uri()) {
        Ok(c) => c,
        Err(e) => return Some(Err(format!("cannot build the connector: {e}"))),
    };
    if !c.supports_recent_posts() {
        return None;
    }
    let posts = [
        SeedPost {
            id: "contract-organic".into(),
            text: "Made in the app".into(),
            created_unix: 1_767_000_100,
        },
        SeedPost {
            id: "contract-earlier".into(),
            text: "Before the channel was connected".into(),
            created_unix: 1_766_000_000,
        },
    ];
    if !h.mount_recent_posts(&server, &posts).await {
        return None;
    }
    let ctx = h.context();
    let all = match c.list_recent_posts(&ctx, 10).await {
        Ok(all) => all,
        Err(e) => return Some(Err(format!("listing failed: {e}"))),
    };
    let seen: Vec<_> = all
        .iter()
        .map(|p| {
            (
                p.id.as_str(),
                p.text.as_deref(),
                p.created_at.map(|t| t.timestamp()),
            )
        })
        .collect();
    let expected: Vec<_> = posts
        .iter()
        .map(|p| (p.id.as_str(), Some(p.text.as_str()), Some(p.created_unix)))
        .collect();
    if seen != expected {
        return Some(Err(format!("expected {expected:?}, got {seen:?}")));
    }
    Some(match c.list_recent_posts(&ctx, 1).await {
        Ok(one) if one.len() == 1 && one[0].id == "contract-organic" => Ok(()),
        other => Err(format!("expected the newest post only, got {other:?}")),
    })
}
