//! Instagram post lookup (the user's media, matched on caption and time) and
//! the user's recent media.

use nexiom_core::Content;
use serde_json::Value;

use super::NAME;
use crate::error::ConnectorError;
use crate::graph::{GraphClient, id_of, page_query};
use crate::lookup::{Candidate, LookupOutcome, LookupQuery, search};
use crate::recent::{self, RecentPost};
use crate::time;
use crate::types::ChannelContext;

const FIELDS: &str = "id,caption,timestamp,permalink";

/// The caption sent for `content`: the text, then the link on its own line when
/// the text does not already hold it (links in captions are not clickable, but
/// what the author wrote is kept).
pub(super) fn caption(content: &Content) -> String {
    content.text_with_link()
}

fn candidate(v: &Value) -> Result<Candidate, ConnectorError> {
    Ok(Candidate {
        id: id_of(NAME, v, "media")?,
        url: v
            .get("permalink")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        text: v.get("caption").and_then(Value::as_str).map(str::to_owned),
        created_at: v.get("timestamp").and_then(time::graph_time),
        sort_at: None,
    })
}

/// One page of the user's media, newest first, and the next page (a
/// cursor, or the time parameters of an edge paged by time).
async fn page(
    graph: &GraphClient,
    ctx: &ChannelContext,
    cursor: Option<String>,
    limit: usize,
) -> Result<(Vec<Candidate>, Option<String>), ConnectorError> {
    let limit = limit.to_string();
    let position = cursor.as_deref().map(page_query).unwrap_or_default();
    let mut q = vec![("fields", FIELDS), ("limit", limit.as_str())];
    q.extend(position.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let page = graph.get_page(ctx, &[&ctx.account_id, "media"], &q).await?;
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
    let expected = [caption(&query.content)];
    search(NAME, query, &expected, |cursor| {
        page(graph, ctx, cursor, 25)
    })
    .await
}

pub(super) async fn recent(
    graph: &GraphClient,
    ctx: &ChannelContext,
    limit: usize,
) -> Result<Vec<RecentPost>, ConnectorError> {
    recent::collect(limit, |cursor, wanted| page(graph, ctx, cursor, wanted)).await
}
