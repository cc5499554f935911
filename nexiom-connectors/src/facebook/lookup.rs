//! Facebook post lookup (the Page's published posts, and its scheduled ones
//! for an attempt that scheduled its post, matched on message and time) and
//! the Page's recent posts.

use nexiom_core::Content;
use serde_json::Value;

use super::NAME;
use crate::error::ConnectorError;
use crate::graph::{GraphClient, id_of, page_query};
use crate::lookup::{Candidate, LookupOutcome, LookupQuery, search};
use crate::recent::{self, RecentPost};
use crate::time;
use crate::types::ChannelContext;

const FIELDS: &str = "id,message,created_time,permalink_url";

/// The caption of a photo post: the text, then the link on its own line when
/// the text does not already hold it.
pub(super) fn photo_caption(content: &Content) -> String {
    let caption = content.text.clone();
    match &content.link {
        Some(link) if !caption.contains(link.as_str()) => {
            format!("{caption}\n{link}").trim().to_owned()
        }
        _ => caption,
    }
}

/// The `message` a post of `content` has on the Page.
fn expected_message(content: &Content) -> String {
    if content.media.is_empty() {
        content.text.clone()
    } else {
        photo_caption(content)
    }
}

fn candidate(v: &Value) -> Result<Candidate, ConnectorError> {
    let id = id_of(NAME, v, "post")?;
    Ok(Candidate {
        url: Some(
            v.get("permalink_url")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map_or_else(|| format!("https://www.facebook.com/{id}"), str::to_owned),
        ),
        text: v.get("message").and_then(Value::as_str).map(str::to_owned),
        created_at: v.get("created_time").and_then(time::graph_time),
        sort_at: None,
        id,
    })
}

/// The Page's published posts.
const PUBLISHED: &str = "published_posts";
/// The Page's posts scheduled to publish later (`published=false` with a
/// `scheduled_publish_time`), which `published_posts` does not list.
const SCHEDULED: &str = "scheduled_posts";

/// One page of the Page's posts of `edge`, newest first, and the next page
/// (a cursor, or the time parameters of an edge paged by time).
async fn page(
    graph: &GraphClient,
    ctx: &ChannelContext,
    edge: &str,
    cursor: Option<String>,
    limit: usize,
) -> Result<(Vec<Candidate>, Option<String>), ConnectorError> {
    let limit = limit.to_string();
    let position = cursor.as_deref().map(page_query).unwrap_or_default();
    let mut q = vec![("fields", FIELDS), ("limit", limit.as_str())];
    q.extend(position.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let page = graph.get_page(ctx, &[&ctx.account_id, edge], &q).await?;
    let items = page
        .data
        .iter()
        .map(candidate)
        .collect::<Result<Vec<_>, _>>()?;
    let newest = items.iter().filter_map(|c| c.created_at).max();
    // Read as the end, a next page that cannot be read would answer "not
    // found" without having read the account's recent posts: the post
    // would be published again.
    let next = page
        .next_back(newest)
        .map_err(|why| ConnectorError::invalid_response(NAME, format!("recent posts: {why}")))?;
    Ok((items, next))
}

pub(super) async fn find(
    graph: &GraphClient,
    ctx: &ChannelContext,
    query: &LookupQuery,
) -> Result<LookupOutcome, ConnectorError> {
    let expected = [expected_message(&query.content)];
    // An attempt that scheduled its post: until its time the post is among
    // the scheduled ones only (answering "not found" from the published
    // ones would publish it twice); after, among the published ones.
    if query.schedule_at.is_some() {
        let scheduled = search(NAME, query, &expected, |cursor| {
            page(graph, ctx, SCHEDULED, cursor, 25)
        })
        .await?;
        if let LookupOutcome::Found(_) = scheduled {
            return Ok(scheduled);
        }
    }
    search(NAME, query, &expected, |cursor| {
        page(graph, ctx, PUBLISHED, cursor, 25)
    })
    .await
}

pub(super) async fn recent(
    graph: &GraphClient,
    ctx: &ChannelContext,
    limit: usize,
) -> Result<Vec<RecentPost>, ConnectorError> {
    recent::collect(limit, |cursor, wanted| {
        page(graph, ctx, PUBLISHED, cursor, wanted)
    })
    .await
}
