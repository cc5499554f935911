//! Post lookup: after a publish whose outcome is unknown (a timeout after
//! sending, a 5xx, an unreadable success), find the post the attempt created
//! among the account's recent posts.
//!
//! # Matching rule
//!
//! Facebook, Instagram and LinkedIn keep no caller reference on a post, so a post
//! matches when, all three:
//!
//! - it is listed under the channel's account (the Page's published posts, and
//!   its scheduled posts for an attempt with [`LookupQuery::schedule_at`]; the
//!   Instagram user's media; the LinkedIn author's posts);
//! - it was created at or after [`LookupQuery::window_start`] (the attempt's start
//!   minus [`LookupQuery::skew`], for clock differences with the platform);
//! - its text equals the text the connector sends for the content, after
//!   [`normalize_text`] on both sides: every run of Unicode whitespace (spaces,
//!   tabs, line breaks, no-break spaces) becomes one space and the ends are
//!   trimmed. Nothing else is changed: case, punctuation, emoji and invisible
//!   characters that are not whitespace must be equal.
//!
//! Several matches: the earliest is the attempt's post. Content whose text is
//! empty (a photo without caption) cannot be matched: the lookup answers
//! [`ConnectorError::LookupInconclusive`], as it does when it pages through
//! [`MAX_LOOKUP_PAGES`] pages without reaching the attempt's time, or when a
//! matching item has no readable time. `NotFound` is only answered after every
//! post since the window start was read.

use std::future::Future;

use chrono::{DateTime, Duration, Utc};
use nexiom_core::Content;

use crate::error::ConnectorError;

/// The default [`LookupQuery::skew`]: five minutes.
pub const DEFAULT_LOOKUP_SKEW_SECS: i64 = 300;

/// How many pages of recent posts a lookup reads at most before it gives up
/// ([`ConnectorError::LookupInconclusive`]).
pub const MAX_LOOKUP_PAGES: usize = 8;

/// What a lookup looks for.
#[derive(Debug, Clone, PartialEq)]
pub struct LookupQuery {
    /// The content of the publish attempt (as in its
    /// [`PublishRequest`](crate::PublishRequest)).
    pub content: Content,
    /// The reference of the attempt (the
    /// [`PublishRequest::reference`](crate::PublishRequest::reference)). Used by
    /// connectors whose platform keeps one on the post; Facebook, Instagram and
    /// LinkedIn keep none and match on content (see the module docs).
    pub reference: Option<String>,
    /// When the publish attempt started.
    pub attempted_at: DateTime<Utc>,
    /// Tolerance for clock differences between this process and the platform.
    pub skew: Duration,
    /// The attempt's [`PublishRequest::schedule_at`](crate::PublishRequest::schedule_at),
    /// when it asked the platform to publish later: such a post is not among
    /// the published ones until then (Facebook also reads the Page's
    /// scheduled posts).
    pub schedule_at: Option<DateTime<Utc>>,
}

impl LookupQuery {
    /// A query for `content` published by an attempt started at `attempted_at`,
    /// with the default skew.
    pub fn new(content: Content, attempted_at: DateTime<Utc>) -> Self {
        LookupQuery {
            content,
            reference: None,
            attempted_at,
            skew: Duration::seconds(DEFAULT_LOOKUP_SKEW_SECS),
            schedule_at: None,
        }
    }

    /// The same query for an attempt that asked the platform to publish at
    /// `at` (its [`PublishRequest::schedule_at`](crate::PublishRequest::schedule_at)).
    pub fn with_schedule_at(mut self, at: DateTime<Utc>) -> Self {
        self.schedule_at = Some(at);
        self
    }

    /// The same query with the attempt's reference.
    pub fn with_reference(mut self, reference: impl Into<String>) -> Self {
        self.reference = Some(reference.into());
        self
    }

    /// The earliest creation time a matching post can have.
    pub fn window_start(&self) -> DateTime<Utc> {
        self.attempted_at
            .checked_sub_signed(self.skew.abs())
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

/// A post a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundPost {
    /// The platform's id of the post (the id `publish` would have returned).
    pub platform_post_id: String,
    /// Its permalink, when known.
    pub url: Option<String>,
}

/// The answer of a lookup that could read the platform. A lookup that could not
/// is an `Err` ([`ConnectorError::LookupInconclusive`], or the HTTP error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupOutcome {
    /// The attempt created this post.
    Found(FoundPost),
    /// Every post of the account since the window start was read; none matches.
    NotFound,
}

/// Collapses every run of Unicode whitespace into one space and trims the ends
/// (the comparison form of the matching rule).
pub fn normalize_text(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One listed post, as a connector read it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Candidate {
    pub id: String,
    pub url: Option<String>,
    pub text: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    /// The time the listing is ordered by (newest first), when it is not the
    /// creation time (LinkedIn: last modification).
    pub sort_at: Option<DateTime<Utc>>,
}

/// The matching state of one lookup.
struct Matcher<'a> {
    platform: &'a str,
    window_start: DateTime<Utc>,
    expected: Vec<String>,
    best: Option<(DateTime<Utc>, FoundPost)>,
}

impl Matcher<'_> {
    /// Reads one page; `true` when it reaches posts older than the window.
    fn page(&mut self, items: &[Candidate]) -> Result<bool, ConnectorError> {
        let mut past = false;
        for item in items {
            if let Some(at) = item.sort_at.or(item.created_at)
                && at < self.window_start
            {
                past = true;
            }
            let Some(text) = &item.text else { continue };
            if !self.expected.contains(&normalize_text(text)) {
                continue;
            }
            let Some(created) = item.created_at else {
                return Err(inconclusive(
                    self.platform,
                    format!(
                        "post {} matches the content but has no readable time",
                        item.id
                    ),
                ));
            };
            if created < self.window_start {
                continue;
            }
            if self.best.as_ref().is_none_or(|(at, _)| created < *at) {
                self.best = Some((
                    created,
                    FoundPost {
                        platform_post_id: item.id.clone(),
                        url: item.url.clone(),
                    },
                ));
            }
        }
        Ok(past)
    }
}

fn inconclusive(platform: &str, reason: impl Into<String>) -> ConnectorError {
    ConnectorError::LookupInconclusive {
        platform: platform.to_owned(),
        reason: reason.into(),
    }
}

/// Runs a lookup over a listing, newest first: `fetch(cursor)` reads one page
/// and its next cursor. `expected` are the texts the connector may have sent
/// (any one matches).
pub(crate) async fn search<F, Fut>(
    platform: &str,
    query: &LookupQuery,
    expected: &[String],
    mut fetch: F,
) -> Result<LookupOutcome, ConnectorError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<Candidate>, Option<String>), ConnectorError>>,
{
    let expected: Vec<String> = expected
        .iter()
        .map(|t| normalize_text(t))
        .filter(|t| !t.is_empty())
        .collect();
    if expected.is_empty() {
        return Err(inconclusive(
            platform,
            "the content has no text to match the account's posts on",
        ));
    }
    let mut matcher = Matcher {
        platform,
        window_start: query.window_start(),
        expected,
        best: None,
    };
    let mut cursor: Option<String> = None;
    // The listing counts as read to its end only when a page reaches the
    // attempt's time or the platform gives no next page. An empty page may
    // still have a next one (Graph says so), and a cursor handed back
    // unchanged ends the reading without proving anything: answering
    // "not found" there would publish the post a second time.
    let mut stopped = None;
    for _ in 0..MAX_LOOKUP_PAGES {
        let (items, next) = fetch(cursor.clone()).await?;
        let past = matcher.page(&items)?;
        match next {
            _ if past => {
                stopped = Some(true);
                break;
            }
            None => {
                stopped = Some(true);
                break;
            }
            Some(next) if cursor.as_deref() == Some(next.as_str()) => {
                stopped = Some(false);
                break;
            }
            Some(next) => cursor = Some(next),
        }
    }
    match (matcher.best, stopped) {
        (Some((_, found)), _) => Ok(LookupOutcome::Found(found)),
        (None, Some(true)) => Ok(LookupOutcome::NotFound),
        (None, Some(false)) => Err(inconclusive(
            platform,
            "the platform gave the same page cursor twice before the attempt's time",
        )),
        (None, None) => Err(inconclusive(
            platform,
            format!(
                "read {MAX_LOOKUP_PAGES} pages of recent posts without reaching the attempt's time"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    fn at(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap() + Duration::minutes(min)
    }

    fn item(id: &str, text: &str, min: i64) -> Candidate {
        Candidate {
            id: id.into(),
            text: Some(text.into()),
            created_at: Some(at(min)),
            ..Candidate::default()
        }
    }

    async fn run(
        pages: Vec<Vec<Candidate>>,
        text: &str,
    ) -> (Result<LookupOutcome, ConnectorError>, usize) {
        let query = LookupQuery::new(Content::text(text), at(0));
        let mut read = 0;
        let n = pages.len();
        let result = search("test", &query, &[text.to_owned()], |cursor| {
            let i = cursor.map_or(0, |c| c.parse::<usize>().unwrap());
            read += 1;
            let page = pages[i].clone();
            async move { Ok((page, (i + 1 < n).then(|| (i + 1).to_string()))) }
        })
        .await;
        (result, read)
    }

    #[test]
    fn whitespace_is_collapsed_and_nothing_else() {
        assert_eq!(normalize_text("  a\r\n\tb\u{a0} c  "), "a b c");
        assert_ne!(normalize_text("Hello"), normalize_text("hello"));
        assert_ne!(normalize_text("a\u{200b}b"), normalize_text("ab"));
    }

    #[tokio::test]
    async fn finds_the_earliest_match_in_the_window() {
        let pages = vec![
            vec![item("new", "Hi  there", 3), item("other", "Hi", 2)],
            vec![item("first", "Hi there\n", 1), item("old", "Hi there", -60)],
        ];
        let (found, read) = run(pages, "Hi there").await;
        assert_eq!(
            found.unwrap(),
            LookupOutcome::Found(FoundPost {
                platform_post_id: "first".into(),
                url: None
            })
        );
        assert_eq!(read, 2);
    }

    #[tokio::test]
    async fn an_identical_post_before_the_window_is_not_a_match() {
        let pages = vec![vec![item("old", "Hi there", -6)], vec![item("x", "y", -90)]];
        let (found, read) = run(pages, "Hi there").await;
        assert_eq!(found.unwrap(), LookupOutcome::NotFound);
        assert_eq!(read, 1, "stops at the first page older than the window");
    }

    #[tokio::test]
    async fn too_many_recent_pages_is_inconclusive() {
        let pages = (0..MAX_LOOKUP_PAGES + 1)
            .map(|i| vec![item(&i.to_string(), "other", 10)])
            .collect();
        let (found, read) = run(pages, "Hi there").await;
        assert!(matches!(
            found,
            Err(ConnectorError::LookupInconclusive { .. })
        ));
        assert_eq!(read, MAX_LOOKUP_PAGES);
    }

    #[tokio::test]
    async fn an_empty_page_with_a_next_page_is_read_past() {
        // Graph may answer an empty page that still has a next one: the post
        // made by the attempt is on the page after it.
        let pages = vec![vec![], vec![item("made", "Hi there", 1)]];
        let (found, read) = run(pages, "Hi there").await;
        assert_eq!(
            found.unwrap(),
            LookupOutcome::Found(FoundPost {
                platform_post_id: "made".into(),
                url: None
            })
        );
        assert_eq!(read, 2);
    }

    #[tokio::test]
    async fn a_cursor_given_back_unchanged_is_inconclusive_not_absent() {
        let query = LookupQuery::new(Content::text("Hi there"), at(0));
        let mut read = 0;
        let result = search("test", &query, &["Hi there".to_owned()], |cursor| {
            read += 1;
            // The first page hands out cursor "c"; the page read with "c"
            // hands "c" back again, and nothing reached the window's start.
            let _ = cursor;
            async move { Ok((vec![item("other", "other", 5)], Some("c".to_owned()))) }
        })
        .await;
        assert!(
            matches!(result, Err(ConnectorError::LookupInconclusive { .. })),
            "{result:?}"
        );
        assert_eq!(read, 2);
    }

    #[tokio::test]
    async fn empty_text_and_timeless_matches_are_inconclusive() {
        let (found, read) = run(vec![vec![]], "  ").await;
        assert!(matches!(
            found,
            Err(ConnectorError::LookupInconclusive { .. })
        ));
        assert_eq!(read, 0);
        let mut timeless = item("t", "Hi", 0);
        timeless.created_at = None;
        let (found, _) = run(vec![vec![timeless]], "Hi").await;
        assert!(matches!(
            found,
            Err(ConnectorError::LookupInconclusive { .. })
        ));
    }
}
