//! Reading a media's comments: `GET /{ig-media-id}/comments` (top-level
//! comments, 50 a page, cursor paging) with each comment's replies through the
//! `replies` field, and, when asked (`expand`), the replies past that field's
//! first page through `GET /{ig-comment-id}/replies` (platform-apis §2.4).

use serde_json::Value;

use super::{InstagramConnector, NAME, comment_from};
use crate::error::{ConnectorError, Sift};
use crate::graph::parse_page;
use crate::types::{ChannelContext, CommentPage, RemoteComment};

/// The fields of a reply.
const REPLY_FIELDS: &str = "id,text,timestamp,username,from,hidden,parent_id";

/// The fields of a top-level comment, its first replies expanded.
const COMMENT_FIELDS: &str = "id,text,timestamp,username,from,hidden,parent_id,replies{id,text,timestamp,username,from,hidden,parent_id}";

/// Pages of one comment's replies read after the `replies` field's own, at
/// most, so a thread of thousands of replies cannot hold a poll.
const MAX_REPLY_PAGES: u32 = 10;

impl InstagramConnector {
    /// Top-level comments (50 a page), each followed by its replies: those
    /// of its `replies` field, and with `expand` the pages after it.
    pub(super) async fn comment_page(
        &self,
        ctx: &ChannelContext,
        post_id: &str,
        cursor: Option<&str>,
        expand: bool,
    ) -> Result<CommentPage, ConnectorError> {
        let mut query = vec![("fields", COMMENT_FIELDS), ("limit", "50")];
        if let Some(c) = cursor {
            query.push(("after", c));
        }
        let page = self
            .graph
            .get_page(ctx, &[post_id, "comments"], &query)
            .await?;
        let mut comments = Vec::new();
        let mut sift = Sift::new(NAME);
        for item in &page.data {
            let Some(top) = sift.top(comment_from(item, None)) else {
                continue;
            };
            let top_id = top.id.clone();
            comments.push(top);
            comments.extend(
                self.replies(ctx, &top_id, item.get("replies"), expand, &mut sift)
                    .await?,
            );
        }
        let left_out = sift.finish()?;
        if page.uncursored_next {
            // An edge paged by time: the comments after this page cannot be
            // read with a cursor; this page's are kept.
            tracing::warn!(
                post_id,
                "a comments page links a next page without a cursor; reading stops here"
            );
        }
        Ok(CommentPage {
            comments,
            next_cursor: page.next_after,
            left_out,
        })
    }

    /// The replies of the comment `top`: those of its `replies` field, then
    /// with `expand` the pages after it (at most [`MAX_REPLY_PAGES`]). A
    /// later page refused (the comment deleted meanwhile, a server error)
    /// keeps the replies read; a throttle or an expired token fails the page
    /// (the poller holds the channel, or renews the token).
    async fn replies(
        &self,
        ctx: &ChannelContext,
        top: &str,
        field: Option<&Value>,
        expand: bool,
        sift: &mut Sift,
    ) -> Result<Vec<RemoteComment>, ConnectorError> {
        // No `replies` field (a comment without replies), or one without
        // a `data` array: no replies listed.
        let Some(field) = field.filter(|f| f.get("data").is_some_and(Value::is_array)) else {
            return Ok(Vec::new());
        };
        let mut page = parse_page(NAME, field)?;
        let mut replies = Vec::new();
        let mut pages = 0;
        loop {
            for reply in &page.data {
                replies.extend(sift.reply(comment_from(reply, Some(top))));
            }
            if !expand {
                break;
            }
            let Some(after) = page.next_after.take() else {
                if page.uncursored_next {
                    tracing::warn!(
                        comment = top,
                        "a replies page links a next page without a cursor; reading stops here"
                    );
                }
                break;
            };
            if pages == MAX_REPLY_PAGES {
                tracing::warn!(
                    comment = top,
                    pages,
                    "an Instagram comment has more replies than are read at once; the rest is left out"
                );
                break;
            }
            pages += 1;
            page = match self
                .graph
                .get_page(
                    ctx,
                    &[top, "replies"],
                    &[("fields", REPLY_FIELDS), ("limit", "50"), ("after", &after)],
                )
                .await
            {
                Ok(next) => next,
                Err(err) if err.stops_a_listing() => return Err(err),
                Err(err) => {
                    tracing::warn!(comment = top, error = %err, "a page of a comment's replies failed; the replies read are kept");
                    break;
                }
            };
        }
        Ok(replies)
    }
}
