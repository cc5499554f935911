//! Scripting the mock: failures queued per operation, seeded comments and
//! posts, and the recorded calls read back.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::state::{MockCall, MockConnector, MockOp};
use crate::error::{ApiError, ConnectorError};
use crate::types::RemoteComment;

impl MockConnector {
    /// The next `times` calls of `op` fail with `error` (queued after anything
    /// already scripted for `op`).
    pub fn fail_next(&self, op: MockOp, times: usize, error: ConnectorError) {
        let mut s = self.lock();
        let q = s.scripted.entry(op).or_default();
        for _ in 0..times {
            q.push_back(Some(error.clone()));
        }
    }

    /// The next `times` calls of `op` go through (queued like failures), so
    /// a failure scripted after them meets a later call: the second page of
    /// a listing, say.
    pub fn pass_next(&self, op: MockOp, times: usize) {
        let mut s = self.lock();
        let q = s.scripted.entry(op).or_default();
        for _ in 0..times {
            q.push_back(None);
        }
    }

    /// The next `times` calls of `op` fail with a [`ConnectorError::Transient`].
    pub fn fail_transient(&self, op: MockOp, times: usize) {
        self.fail_next(
            op,
            times,
            ConnectorError::Transient {
                platform: self.name.clone(),
                detail: ApiError::message("scripted transient failure"),
            },
        );
    }

    /// The next call of `op` is rate limited with `retry_after`.
    pub fn rate_limit_next(&self, op: MockOp, retry_after: Duration) {
        self.fail_next(
            op,
            1,
            ConnectorError::RateLimited {
                platform: self.name.clone(),
                retry_after: Some(retry_after),
                detail: ApiError::message("scripted rate limit"),
            },
        );
    }

    /// The next call of `op` is unauthorized (expired token).
    pub fn unauthorized_next(&self, op: MockOp) {
        self.fail_next(
            op,
            1,
            ConnectorError::Unauthorized {
                platform: self.name.clone(),
                detail: ApiError::message("scripted expired token"),
            },
        );
    }

    /// The next call of `op` fails permanently.
    pub fn fail_permanently_next(&self, op: MockOp, message: &str) {
        self.fail_next(
            op,
            1,
            ConnectorError::Permanent {
                platform: self.name.clone(),
                detail: ApiError::message(message),
            },
        );
    }

    /// The next publish call creates the post (a later `find_published` finds
    /// it) but answers [`ConnectorError::OutcomeUnknown`], as a timeout after
    /// sending would. A scripted `OutcomeUnknown` ([`MockConnector::fail_next`])
    /// creates nothing.
    pub fn publish_then_lose_answer(&self) {
        self.lock().lost_answers += 1;
    }

    /// Forgets every scripted failure.
    pub fn clear_script(&self) {
        self.lock().scripted.clear();
    }

    /// Adds comments to `post_id` (listed in the order given, after earlier ones).
    pub fn seed_comments(&self, post_id: &str, comments: impl IntoIterator<Item = RemoteComment>) {
        self.lock()
            .comments
            .entry(post_id.to_owned())
            .or_default()
            .extend(comments);
    }

    /// Lists `comment` right after the comment `after` of `post_id` (at the
    /// end when `after` is not listed), as a reply shows under its top-level
    /// comment: on that comment's page, not on the last one.
    pub fn insert_comment_after(&self, post_id: &str, after: &str, comment: RemoteComment) {
        let mut s = self.lock();
        let comments = s.comments.entry(post_id.to_owned()).or_default();
        let at = comments
            .iter()
            .position(|c| c.id == after)
            .map_or(comments.len(), |i| i + 1);
        comments.insert(at, comment);
    }

    /// Adds a post made on `account` outside this mock's `publish` (in the
    /// platform's app, before the channel was connected), created at `at`:
    /// `list_recent_posts` lists it with the published ones, newest first.
    pub fn seed_post(&self, account: &str, id: &str, text: &str, at: DateTime<Utc>) {
        let url = format!("https://mock.invalid/{}/{id}", self.name);
        self.lock()
            .posts
            .push((account.to_owned(), id.to_owned(), url, text.to_owned(), at));
    }

    /// A simple comment for seeding: id, author and text, written now.
    pub fn comment(&self, id: &str, author: &str, text: &str) -> RemoteComment {
        RemoteComment {
            id: id.to_owned(),
            parent_id: None,
            author_id: Some(author.to_owned()),
            author_name: Some(author.to_owned()),
            text: text.to_owned(),
            created_at: self.clock.now(),
            hidden: false,
        }
    }

    /// Every call made so far, in order.
    pub fn calls(&self) -> Vec<MockCall> {
        self.lock().calls.clone()
    }

    /// The calls of one operation.
    pub fn calls_of(&self, op: MockOp) -> Vec<MockCall> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.op == op)
            .cloned()
            .collect()
    }

    /// Forgets recorded calls.
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }
}
