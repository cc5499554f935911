//! LinkedIn post lookup (the author's posts, matched on commentary and time)
//! and the author's recent posts.

use reqwest::Method;
use serde_json::Value;

use super::{LinkedInConnector, NAME, escape_little_text};
use crate::error::ConnectorError;
use crate::lookup::{Candidate, LookupOutcome, LookupQuery, search};
use crate::recent::{self, RecentPost};
use crate::time;
use crate::types::ChannelContext;

/// Posts read per page by a lookup.
const PAGE: usize = 20;

fn candidate(v: &Value) -> Result<Candidate, ConnectorError> {
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ConnectorError::invalid_response(NAME, "a post without id"))?
        .to_owned();
    let created_at = v
        .get("createdAt")
        .or_else(|| v.get("publishedAt"))
        .and_then(time::millis_value);
    Ok(Candidate {
        url: Some(format!("https://www.linkedin.com/feed/update/{id}")),
        text: v
            .get("commentary")
            .and_then(Value::as_str)
            .map(str::to_owned),
        sort_at: v
            .get("lastModifiedAt")
            .and_then(time::millis_value)
            .or(created_at),
        created_at,
        id,
    })
}

impl LinkedInConnector {
    /// One page of the author's posts, most recently modified first, from the
    /// offset in `cursor`, and the next offset.
    async fn posts_page(
        &self,
        ctx: &ChannelContext,
        cursor: Option<String>,
        count: usize,
    ) -> Result<(Vec<Candidate>, Option<String>), ConnectorError> {
        let start: u64 = cursor.as_deref().and_then(|c| c.parse().ok()).unwrap_or(0);
        let count = count.max(1) as u64;
        let mut req = self.request(ctx, Method::GET, self.rest_url("posts")?);
        req.query = vec![
            ("author".into(), ctx.account_id.clone()),
            ("q".into(), "author".into()),
            ("sortBy".into(), "LAST_MODIFIED".into()),
            ("start".into(), start.to_string()),
            ("count".into(), count.to_string()),
        ];
        let v = self.send(req).await?.json(NAME)?;
        let elements = v
            .get("elements")
            .and_then(Value::as_array)
            .ok_or_else(|| ConnectorError::invalid_response(NAME, "no elements array"))?;
        let items = elements
            .iter()
            .map(candidate)
            .collect::<Result<Vec<_>, _>>()?;
        let got = items.len() as u64;
        let next = start.saturating_add(got);
        let more = match v.pointer("/paging/total").and_then(Value::as_u64) {
            Some(total) => got > 0 && next < total,
            None => got >= count,
        };
        Ok((items, more.then(|| next.to_string())))
    }

    pub(super) async fn find_post(
        &self,
        ctx: &ChannelContext,
        query: &LookupQuery,
    ) -> Result<LookupOutcome, ConnectorError> {
        // LinkedIn returns the commentary as stored (escaped); accept the raw
        // text too, in case an API version hands it back unescaped.
        let text = &query.content.text;
        let expected = [escape_little_text(text), text.clone()];
        search(NAME, query, &expected, |cursor| {
            self.posts_page(ctx, cursor, PAGE)
        })
        .await
    }

    pub(super) async fn recent_posts(
        &self,
        ctx: &ChannelContext,
        limit: usize,
    ) -> Result<Vec<RecentPost>, ConnectorError> {
        recent::collect(limit, |cursor, wanted| self.posts_page(ctx, cursor, wanted)).await
    }
}
