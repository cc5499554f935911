//! Reading a post's comments: `GET /rest/socialActions/{urn}/comments` with
//! `start`/`count` offset paging (platform-apis §4.2). A reply is a comment on
//! its comment's URN, so it is not in the post's listing: when asked
//! (`expand`), the replies of each top-level comment that has some (its
//! `commentsSummary`) are read from that comment's URN and listed right
//! after it.

use serde_json::Value;

use super::wire::{comment_from, encode_urn};
use super::{LinkedInConnector, NAME};
use crate::error::{ConnectorError, Sift, ValidationError};
use crate::types::{ChannelContext, CommentPage, RemoteComment};
use reqwest::Method;

/// Pages of one comment's replies read at most (at the connector's page
/// size each), so a thread of thousands of replies cannot hold a poll.
const MAX_REPLY_PAGES: u32 = 10;

/// One page of a `socialActions/{urn}/comments` listing.
struct Listing {
    elements: Vec<Value>,
    /// The `start` of the next page, when there is one.
    next: Option<u64>,
}

impl LinkedInConnector {
    /// The comments of `post_id` from offset `cursor`, with `expand` each
    /// top-level comment followed by its replies.
    pub(super) async fn comment_page(
        &self,
        ctx: &ChannelContext,
        post_id: &str,
        cursor: Option<&str>,
        expand: bool,
    ) -> Result<CommentPage, ConnectorError> {
        if post_id.is_empty() {
            return Err(ValidationError::InvalidField {
                field: "post_id",
                reason: "must not be empty".into(),
            }
            .into());
        }
        let start: u64 = match cursor {
            None => 0,
            Some(c) => c.parse().map_err(|_| ValidationError::InvalidField {
                field: "cursor",
                reason: format!("{c:?} is not a LinkedIn start offset"),
            })?,
        };
        let listing = self.listing(ctx, post_id, start).await?;
        let mut comments = Vec::with_capacity(listing.elements.len());
        let mut sift = Sift::new(NAME);
        for element in &listing.elements {
            let Some(comment) = sift.top(comment_from(element)) else {
                continue;
            };
            let thread = (expand
                && comment.parent_id.is_none()
                && comment.id.starts_with("urn:li:comment:")
                && has_replies(element))
            .then(|| comment.id.clone());
            comments.push(comment);
            if let Some(top) = thread {
                comments.extend(self.replies(ctx, &top, &mut sift).await?);
            }
        }
        let left_out = sift.finish()?;
        Ok(CommentPage {
            comments,
            next_cursor: listing.next.map(|n| n.to_string()),
            left_out,
        })
    }

    /// The replies of the comment `top` (its URN), oldest pages first, at
    /// most [`MAX_REPLY_PAGES`] pages; each names `top` as its parent. A
    /// page refused (the comment deleted meanwhile, a server error) keeps
    /// the replies read; a throttle or an expired token fails the listing
    /// (the poller holds the channel, or renews the token).
    async fn replies(
        &self,
        ctx: &ChannelContext,
        top: &str,
        sift: &mut Sift,
    ) -> Result<Vec<RemoteComment>, ConnectorError> {
        let mut replies = Vec::new();
        let mut start = Some(0);
        for _ in 0..MAX_REPLY_PAGES {
            let Some(at) = start else { break };
            let listing = match self.listing(ctx, top, at).await {
                Ok(listing) => listing,
                Err(err) if err.stops_a_listing() => return Err(err),
                Err(err) => {
                    tracing::warn!(comment = top, error = %err, "a page of a comment's replies failed; the replies read are kept");
                    return Ok(replies);
                }
            };
            for element in &listing.elements {
                let Some(mut reply) = sift.reply(comment_from(element)) else {
                    continue;
                };
                reply.parent_id.get_or_insert_with(|| top.to_owned());
                replies.push(reply);
            }
            start = listing.next;
        }
        if start.is_some() {
            tracing::warn!(
                comment = top,
                pages = MAX_REPLY_PAGES,
                "a LinkedIn comment has more replies than are read at once; the rest is left out"
            );
        }
        Ok(replies)
    }

    /// One page of the comments on `urn` (a post's or a comment's).
    async fn listing(
        &self,
        ctx: &ChannelContext,
        urn: &str,
        start: u64,
    ) -> Result<Listing, ConnectorError> {
        let url = self.rest_url(&format!("socialActions/{}/comments", encode_urn(urn)))?;
        let mut req = self.request(ctx, Method::GET, url);
        req.query = vec![
            ("start".into(), start.to_string()),
            ("count".into(), self.page_size.to_string()),
        ];
        let v = self.send(req).await?.json(NAME)?;
        let elements = v
            .get("elements")
            .and_then(Value::as_array)
            .ok_or_else(|| ConnectorError::invalid_response(NAME, "no elements array"))?
            .clone();
        let got = elements.len() as u64;
        let next = start.saturating_add(got);
        let more = match v.pointer("/paging/total").and_then(Value::as_u64) {
            Some(total) => got > 0 && next < total,
            None => got >= u64::from(self.page_size),
        };
        Ok(Listing {
            elements,
            next: more.then_some(next),
        })
    }
}

/// Whether a comment's `commentsSummary` counts replies to it. A comment
/// without a summary is not expanded: the listing is read every few minutes,
/// and a call per comment each time is more than a thread's replies are
/// worth (LinkedIn's webhooks bring them too).
fn has_replies(element: &Value) -> bool {
    ["aggregatedTotalComments", "totalFirstLevelComments"]
        .iter()
        .any(|k| {
            element
                .pointer(&format!("/commentsSummary/{k}"))
                .and_then(Value::as_u64)
                .is_some_and(|n| n > 0)
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::has_replies;

    #[test]
    fn replies_are_read_only_where_the_summary_counts_some() {
        assert!(has_replies(
            &json!({"commentsSummary": {"totalFirstLevelComments": 1, "aggregatedTotalComments": 1}})
        ));
        assert!(has_replies(
            &json!({"commentsSummary": {"aggregatedTotalComments": 2}})
        ));
        assert!(!has_replies(
            &json!({"commentsSummary": {"totalFirstLevelComments": 0, "aggregatedTotalComments": 0}})
        ));
        assert!(!has_replies(&json!({"id": "1"})));
        assert!(!has_replies(
            &json!({"commentsSummary": {"aggregatedTotalComments": "3"}})
        ));
    }
}
