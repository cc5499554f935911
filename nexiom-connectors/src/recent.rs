//! Recent posts of a channel's account
//! ([`PlatformConnector::list_recent_posts`](crate::PlatformConnector::list_recent_posts)):
//! what post discovery reads to find the posts made elsewhere (in the
//! platform's app, ads published on the page, posts from before the channel
//! was connected) whose comments should be handled too.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ConnectorError;
use crate::lookup::Candidate;

/// The most posts one [`list_recent_posts`](crate::PlatformConnector::list_recent_posts)
/// call returns.
pub const MAX_RECENT_POSTS: usize = 100;

/// Pages read at most by one listing (a guard against a platform that keeps
/// handing out cursors with empty pages).
const MAX_PAGES: usize = 20;

/// A post of the account, as the platform lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentPost {
    /// The platform's id of the post (the id its comments name).
    pub id: String,
    /// Its permalink, when the platform gives one.
    pub url: Option<String>,
    /// Its text (message, caption, commentary), when it has one.
    pub text: Option<String>,
    /// When it was created, when the platform gives it.
    pub created_at: Option<DateTime<Utc>>,
}

impl From<Candidate> for RecentPost {
    fn from(c: Candidate) -> Self {
        RecentPost {
            id: c.id,
            url: c.url,
            text: c.text,
            created_at: c.created_at,
        }
    }
}

/// Reads pages newest first until `limit` posts (at most
/// [`MAX_RECENT_POSTS`]) are collected or the listing ends: `fetch(cursor,
/// wanted)` reads one page of at most `wanted` posts and its next cursor.
pub(crate) async fn collect<F, Fut>(
    limit: usize,
    mut fetch: F,
) -> Result<Vec<RecentPost>, ConnectorError>
where
    F: FnMut(Option<String>, usize) -> Fut,
    Fut: Future<Output = Result<(Vec<Candidate>, Option<String>), ConnectorError>>,
{
    let limit = limit.min(MAX_RECENT_POSTS);
    let mut posts: Vec<RecentPost> = Vec::with_capacity(limit);
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        if posts.len() >= limit {
            break;
        }
        let (items, next) = fetch(cursor.clone(), limit - posts.len()).await?;
        posts.extend(items.into_iter().map(RecentPost::from));
        // An empty page with a next link is not the end (the Graph API
        // filters pages after cutting them): read on, still within
        // MAX_PAGES.
        if next.is_none() || next == cursor {
            break;
        }
        cursor = next;
    }
    posts.truncate(limit);
    Ok(posts)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn page(ids: &[&str]) -> Vec<Candidate> {
        ids.iter()
            .map(|id| Candidate {
                id: (*id).into(),
                ..Candidate::default()
            })
            .collect()
    }

    #[tokio::test]
    async fn pages_until_the_limit_and_asks_only_for_what_is_missing() {
        let pages = [page(&["a", "b"]), page(&["c", "d"]), page(&["e"])];
        let mut asked = Vec::new();
        let got = collect(3, |cursor, wanted| {
            let i = cursor.map_or(0, |c| c.parse::<usize>().unwrap());
            asked.push(wanted);
            let items = pages[i].clone();
            async move { Ok((items, Some((i + 1).to_string()))) }
        })
        .await
        .unwrap();
        let ids: Vec<_> = got.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(asked, [3, 1]);
    }

    #[tokio::test]
    async fn reads_past_an_empty_page_that_has_a_next_link() {
        let pages = [page(&[]), page(&["a"])];
        let got = collect(5, |cursor, _| {
            let i = cursor.map_or(0, |c| c.parse::<usize>().unwrap());
            let items = pages[i].clone();
            let next = (i + 1 < pages.len()).then(|| (i + 1).to_string());
            async move { Ok((items, next)) }
        })
        .await
        .unwrap();
        let ids: Vec<_> = got.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["a"]);
        // Empty pages forever end at MAX_PAGES.
        let mut calls = 0;
        let none = collect(5, |cursor, _| {
            calls += 1;
            let i = cursor.map_or(0, |c| c.parse::<usize>().unwrap());
            async move { Ok((page(&[]), Some((i + 1).to_string()))) }
        })
        .await
        .unwrap();
        assert!(none.is_empty());
        assert_eq!(calls, MAX_PAGES);
    }

    #[tokio::test]
    async fn stops_at_the_end_of_the_listing_and_caps_the_limit() {
        let mut calls = 0;
        let got = collect(1_000, |_, wanted| {
            calls += 1;
            assert_eq!(wanted, MAX_RECENT_POSTS);
            async { Ok((page(&["only"]), None)) }
        })
        .await
        .unwrap();
        assert_eq!((got.len(), calls), (1, 1));
        let none = collect(0, |_, _| async { Ok((page(&["x"]), None)) })
            .await
            .unwrap();
        assert!(none.is_empty(), "a limit of 0 reads nothing");
    }
}
