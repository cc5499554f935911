//! Comments on posts a channel did not publish here (made in the platform's
//! app, before the channel was connected): a webhook comment records the post
//! once as an external post, post discovery lists the channel's latest posts
//! so theirs are polled, and every comment is stored, triaged and answered
//! once; each test on memory and on PostgreSQL.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use common::{AutoReplying, Env};
use nexiom_connectors::{
    FacebookConnector, META_SIGNATURE_HEADER, MetaWebhookVerifier, MockConnector, MockOp,
    WebhookHeaders,
};
use nexiom_core::*;
use nexiom_scheduler::inbound::InboundPipeline;
use nexiom_scheduler::*;
use nexiom_storage::Store;
use serde_json::json;

on_both_backends!(
    a_webhook_and_a_polled_comment_on_an_external_post_are_handled_once,
    discovered_posts_are_polled_within_their_window,
    a_failing_discovery_is_recorded_and_retried_later,
    two_pollers_discover_and_answer_each_comment_once,
    a_comment_the_page_hides_gets_no_reply_until_shown_again,
    moderations_in_one_entry_apply_in_their_order,
);

const APP_SECRET: &str = "external-posts-app-secret";

/// The fake platform (a Facebook Page), the pipeline that triages and answers
/// through it, and a poller running the pipeline after each pass. Comments
/// asking for "horaires" are answered automatically.
struct Setup {
    env: Env,
    mock: MockConnector,
    account: String,
    inbound: InboundPipeline,
    poller: CommentPoller,
}

async fn setup(store: Arc<dyn Store>) -> Setup {
    let env = Env::new(store).await;
    let mock = MockConnector::new(Platform::Facebook).with_clock(env.clock.clone());
    let AutoReplying { inbound, poller } = env.auto_replying(&mock, "Merci {name} : 9h-18h.").await;
    let account = env
        .store
        .get_channel(env.tenant, env.channel)
        .await
        .unwrap()
        .external_account_id;
    Setup {
        env,
        mock,
        account,
        inbound,
        poller,
    }
}

impl Setup {
    /// A Page feed webhook (`object: page`, field `feed`, item `comment`) for
    /// one comment on `post`, signed with the app secret.
    fn feed_comment(
        &self,
        post: &str,
        comment: &str,
        text: &str,
        at: DateTime<Utc>,
    ) -> (WebhookHeaders, Vec<u8>) {
        self.feed_change(post, comment, text, "add", at)
    }

    /// The same for a comment change of any verb (`hide`, `unhide`…).
    fn feed_change(
        &self,
        post: &str,
        comment: &str,
        text: &str,
        verb: &str,
        at: DateTime<Utc>,
    ) -> (WebhookHeaders, Vec<u8>) {
        self.feed_changes(post, comment, text, &[verb], at)
    }

    /// One entry holding a change of the comment per verb, in that order.
    fn feed_changes(
        &self,
        post: &str,
        comment: &str,
        text: &str,
        verbs: &[&str],
        at: DateTime<Utc>,
    ) -> (WebhookHeaders, Vec<u8>) {
        let changes: Vec<serde_json::Value> = verbs
            .iter()
            .map(|verb| {
                json!({
                    "field": "feed",
                    "value": {
                        "from": {"id": "24033296592948231", "name": "Ann Example"},
                        "post": {"status_type": "mobile_status_update", "is_published": true,
                                 "id": post},
                        "message": text,
                        "post_id": post,
                        "comment_id": comment,
                        "created_time": at.timestamp(),
                        "item": "comment",
                        "parent_id": post,
                        "verb": verb
                    }
                })
            })
            .collect();
        let body = serde_json::to_vec(&json!({
            "object": "page",
            "entry": [{"id": self.account, "time": at.timestamp(), "changes": changes}]
        }))
        .unwrap();
        let headers = WebhookHeaders::new().with(
            META_SIGNATURE_HEADER,
            MetaWebhookVerifier::sign(&SecretString::new(APP_SECRET), &body),
        );
        (headers, body)
    }

    fn webhook_connector(&self) -> FacebookConnector {
        FacebookConnector::builder()
            .with_app_secret(APP_SECRET)
            .build()
            .unwrap()
    }

    async fn external(&self, platform_id: &str) -> Option<ScheduledPost> {
        self.env
            .store
            .find_post_by_platform_id(self.env.tenant, self.env.channel, platform_id)
            .await
            .unwrap()
    }

    async fn comment_ids(&self, post: PostId) -> Vec<String> {
        let mut ids: Vec<String> = self
            .env
            .store
            .list_comments(self.env.tenant, post, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.platform_comment_id)
            .collect();
        ids.sort();
        ids
    }

    /// The comment ids the fake platform was asked to reply to, sorted.
    fn replied(&self) -> Vec<String> {
        let mut targets: Vec<String> = self
            .mock
            .calls_of(MockOp::ReplyComment)
            .into_iter()
            .filter(|c| c.ok)
            .filter_map(|c| c.target)
            .collect();
        targets.sort();
        targets
    }
}

async fn a_webhook_and_a_polled_comment_on_an_external_post_are_handled_once(
    store: Arc<dyn Store>,
) {
    let s = setup(store).await;
    let now = s.env.clock.now();
    let post_id = format!("{}_122131676912594941", s.account);
    // A post made in the platform's app, and discovery of the Page's latest
    // posts switched on.
    s.mock.seed_post(
        &s.account,
        &post_id,
        "Made in the app",
        now - Duration::hours(2),
    );
    s.env
        .store
        .set_post_discovery(s.env.tenant, s.env.channel, 10, now)
        .await
        .unwrap();

    // The same webhook comment, delivered twice, routed after each delivery.
    let fb = s.webhook_connector();
    let (headers, body) = s.feed_comment(
        &post_id,
        "cm-1",
        "Vos horaires ?",
        now - Duration::minutes(1),
    );
    let mut created = 0;
    for _ in 0..2 {
        s.inbound
            .ingest_webhook(&fb, &headers, &body)
            .await
            .unwrap();
        let routed = s.inbound.route_unrouted_events(None, 100).await.unwrap();
        created += routed.external_posts_created;
        s.inbound.triage_new_items(100).await.unwrap();
        s.inbound
            .auto_reply_recent_inbound(now - Duration::hours(1), 100)
            .await
            .unwrap();
    }
    assert_eq!(created, 1, "the post is recorded once");
    let external = s.external(&post_id).await.expect("the external post");
    assert_eq!(
        (external.origin, external.status),
        (PostOrigin::External, PostStatus::Published)
    );
    assert_eq!(s.comment_ids(external.id).await, ["cm-1"]);
    assert_eq!(s.replied(), ["cm-1"], "the webhook comment answered once");

    // Polling twice: discovery lists the Page's posts (the external post
    // starts being polled), the platform lists the webhook's comment again
    // and a new one.
    s.mock.seed_comments(
        &post_id,
        [
            s.mock
                .comment("cm-1", "24033296592948231", "Vos horaires ?"),
            s.mock
                .comment("cm-2", "other", "Et vos horaires le dimanche ?"),
        ],
    );
    let first = s.poller.poll_due(50, None).await.unwrap();
    assert_eq!(first.channels_discovered, 1);
    assert_eq!(
        first.external_posts_found, 0,
        "recorded by the webhook already"
    );
    assert_eq!(first.posts_polled, 1);
    assert_eq!(first.comments_stored, 1, "cm-1 is stored already");
    assert_eq!((first.triaged, first.auto_replied), (1, 1));
    s.env.advance(Duration::minutes(5));
    let second = s.poller.poll_due(50, None).await.unwrap();
    assert_eq!((second.posts_polled, second.comments_stored), (1, 0));
    assert_eq!(
        second.channels_discovered, 0,
        "discovery runs every 15 minutes"
    );
    // The pipeline's own steps find nothing left to do.
    s.inbound.triage_new_items(100).await.unwrap();
    s.inbound
        .auto_reply_recent_inbound(now - Duration::hours(1), 100)
        .await
        .unwrap();

    let posts = s
        .env
        .store
        .list_posts(s.env.tenant, PostFilter::default())
        .await
        .unwrap();
    assert_eq!(posts.len(), 1, "one post for the platform's post");
    assert_eq!(s.comment_ids(external.id).await, ["cm-1", "cm-2"]);
    let decisions = s
        .env
        .store
        .list_decisions(s.env.tenant, None, 100)
        .await
        .unwrap();
    assert_eq!(decisions.len(), 2, "one triage decision per comment");
    assert!(decisions.iter().all(|d| d.triage == Triage::AutoReply));
    assert_eq!(s.replied(), ["cm-1", "cm-2"], "one reply per comment");
    assert_eq!(s.mock.calls_of(MockOp::ListRecentPosts).len(), 1);
}

async fn discovered_posts_are_polled_within_their_window(store: Arc<dyn Store>) {
    let s = setup(store).await;
    let now = s.env.clock.now();
    // Three posts made elsewhere (one 10 days old) and one published here.
    for (id, age) in [("org-1", 1), ("org-2", 2), ("org-old", 240)] {
        s.mock
            .seed_post(&s.account, id, "Made elsewhere", now - Duration::hours(age));
    }
    let ours = s.env.post_at("Ours", now - Duration::hours(3)).await;
    let ours = s
        .env
        .store
        .update_post(
            s.env.tenant,
            ours.id,
            PostPatch {
                status: Some(PostStatus::Published),
                platform_post_id: Some(Some("ours-1".into())),
                published_at: Some(Some(now - Duration::hours(3))),
                ..PostPatch::default()
            },
            now,
        )
        .await
        .unwrap();
    s.mock
        .seed_post(&s.account, "ours-1", "Ours", now - Duration::hours(3));
    s.mock
        .seed_comments("org-1", [s.mock.comment("c-1", "fan", "Vos horaires ?")]);
    // The latest three posts only.
    s.env
        .store
        .set_post_discovery(s.env.tenant, s.env.channel, 3, now)
        .await
        .unwrap();

    let report = s.poller.poll_due(50, None).await.unwrap();
    assert_eq!(report.channels_discovered, 1);
    assert_eq!(
        report.external_posts_found, 2,
        "org-1 and org-2; ours-1 is ours"
    );
    assert_eq!(report.posts_polled, 2);
    assert_eq!((report.comments_stored, report.auto_replied), (1, 1));
    assert!(s.external("org-old").await.is_none(), "beyond the latest 3");
    assert_eq!(
        s.env.post(ours.id).await,
        ours,
        "a post published here is left alone"
    );
    let org2 = s.external("org-2").await.unwrap();
    assert_eq!(org2.published_at, Some(now - Duration::hours(2)));
    assert_eq!(
        org2.stop_at,
        Some(now - Duration::hours(2) + Duration::days(7))
    );
    assert_eq!(org2.content.text, "Made elsewhere");

    // More posts listed later: the old one is recorded, never polled.
    s.env
        .store
        .set_post_discovery(s.env.tenant, s.env.channel, 10, now)
        .await
        .unwrap();
    s.env.advance(Duration::minutes(5));
    let more = s.poller.poll_due(50, None).await.unwrap();
    assert_eq!(more.external_posts_found, 1);
    assert_eq!(more.posts_polled, 2, "org-1 and org-2 again, not org-old");
    let old = s.external("org-old").await.unwrap();
    assert_eq!((old.next_check_at, old.last_check_at), (None, None));

    // Polling ends 7 days after each post's publication: past it, the
    // check planned within the window is the last one, then none.
    s.env.advance(Duration::days(7));
    let last = s.poller.poll_due(50, None).await.unwrap();
    assert_eq!((last.posts_polled, last.posts_finished), (2, 2));
    s.env.advance(Duration::minutes(5));
    s.mock.clear_calls();
    let after = s.poller.poll_due(50, None).await.unwrap();
    assert_eq!(after.posts_polled, 0);
    assert!(s.mock.calls_of(MockOp::ListComments).is_empty());
    assert_eq!(after.external_posts_found, 0, "nothing new listed");
}

async fn a_failing_discovery_is_recorded_and_retried_later(store: Arc<dyn Store>) {
    let s = setup(store).await;
    let now = s.env.clock.now();
    s.mock.seed_post(&s.account, "org-1", "Made elsewhere", now);
    s.env
        .store
        .set_post_discovery(s.env.tenant, s.env.channel, 5, now)
        .await
        .unwrap();
    s.mock
        .fail_permanently_next(MockOp::ListRecentPosts, "(#10) permission missing");
    let failed = s.poller.poll_due(50, None).await.unwrap();
    assert_eq!(failed.channels_discovered, 0);
    assert_eq!(failed.discovery_failures.len(), 1);
    assert!(
        failed.discovery_failures[0]
            .error
            .contains("permission missing")
    );
    let discovery = s
        .env
        .store
        .get_post_discovery(s.env.tenant, s.env.channel)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(discovery.next_run_at, now + Duration::minutes(15));
    assert!(discovery.last_error.unwrap().contains("permission missing"));

    // Not retried before the interval; then it succeeds and clears the error.
    s.env.advance(Duration::minutes(5));
    s.poller.poll_due(50, None).await.unwrap();
    assert_eq!(s.mock.calls_of(MockOp::ListRecentPosts).len(), 1);
    s.env.advance(Duration::minutes(10));
    let retried = s.poller.poll_due(50, None).await.unwrap();
    assert_eq!(retried.external_posts_found, 1);
    let discovery = s
        .env
        .store
        .get_post_discovery(s.env.tenant, s.env.channel)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(discovery.last_error, None);

    // A rate limit holds the channel until the platform's Retry-After.
    s.env.advance(Duration::minutes(15));
    s.mock.rate_limit_next(
        MockOp::ListRecentPosts,
        std::time::Duration::from_secs(3600),
    );
    let limited = s.poller.poll_due(50, None).await.unwrap();
    assert_eq!(limited.discovery_failures.len(), 1);
    assert!(s.poller.channel_not_before(s.env.channel).is_some());
    let discovery = s
        .env
        .store
        .get_post_discovery(s.env.tenant, s.env.channel)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        discovery.next_run_at,
        s.env.clock.now() + Duration::hours(1)
    );
}

/// Two pollers (two workers) passing at the same time over the same channel:
/// the discovery is claimed by one, the post is recorded once, each comment
/// stored, triaged and answered once.
async fn two_pollers_discover_and_answer_each_comment_once(store: Arc<dyn Store>) {
    let s = setup(store).await;
    let now = s.env.clock.now();
    for i in 0..6 {
        let id = format!("org-{i}");
        s.mock
            .seed_post(&s.account, &id, "Made elsewhere", now - Duration::hours(i));
        s.mock.seed_comments(
            &id,
            [
                s.mock.comment(&format!("{id}-a"), "fan", "Vos horaires ?"),
                s.mock
                    .comment(&format!("{id}-b"), "fan2", "Horaires du samedi ?"),
            ],
        );
    }
    s.env
        .store
        .set_post_discovery(s.env.tenant, s.env.channel, 10, now)
        .await
        .unwrap();
    // Each round: two workers' passes at once, on their own tasks.
    let round = |poller: &CommentPoller| {
        let (a, b) = (poller.clone(), poller.clone());
        async move {
            let a = tokio::spawn(async move { a.poll_due(50, None).await.unwrap() });
            let b = tokio::spawn(async move { b.poll_due(50, None).await.unwrap() });
            let (a, b) = (a.await.unwrap(), b.await.unwrap());
            let mut total = PollReport::default();
            for r in [a, b] {
                total.channels_discovered += r.channels_discovered;
                total.external_posts_found += r.external_posts_found;
                total.comments_stored += r.comments_stored;
            }
            total
        }
    };
    let first = round(&s.poller).await;
    assert_eq!(first.channels_discovered, 1, "one worker lists the channel");
    assert_eq!(first.external_posts_found, 6);
    // What the first round left (a post recorded after the other pass had
    // claimed its polls) is polled by the next one.
    s.env.advance(Duration::minutes(5));
    let second = round(&s.poller).await;
    assert_eq!(
        first.comments_stored + second.comments_stored,
        12,
        "each comment stored once"
    );
    s.inbound.triage_new_items(100).await.unwrap();
    s.inbound
        .auto_reply_recent_inbound(now - Duration::days(1), 100)
        .await
        .unwrap();
    assert_eq!(s.mock.calls_of(MockOp::ListRecentPosts).len(), 1);
    let decisions = s
        .env
        .store
        .list_decisions(s.env.tenant, None, 100)
        .await
        .unwrap();
    assert_eq!(decisions.len(), 12, "one decision per comment");
    let replied = s.replied();
    let mut distinct = replied.clone();
    distinct.dedup();
    assert_eq!(
        (replied.len(), distinct.len()),
        (12, 12),
        "one reply per comment"
    );
}

/// A Page moderator hides a comment before the pipeline answers it (Page
/// feed webhooks, verb `hide`, then `unhide`): routed, the hide keeps the
/// comment out of triage and replies while its neighbour is answered;
/// shown again, it is triaged and answered like any comment.
async fn a_comment_the_page_hides_gets_no_reply_until_shown_again(store: Arc<dyn Store>) {
    let s = setup(store).await;
    let now = s.env.clock.now();
    let post_id = format!("{}_122131676912594941", s.account);
    let fb = s.webhook_connector();
    let at = now - Duration::minutes(3);
    let changes = [
        s.feed_comment(&post_id, "cm-1", "Vos horaires ? spam spam", at),
        s.feed_comment(&post_id, "cm-2", "Vos horaires ?", at),
        s.feed_change(
            &post_id,
            "cm-1",
            "Vos horaires ? spam spam",
            "hide",
            now - Duration::minutes(2),
        ),
    ];
    for (headers, body) in &changes {
        s.inbound.ingest_webhook(&fb, headers, body).await.unwrap();
    }
    let step = || async {
        s.inbound.route_unrouted_events(None, 100).await.unwrap();
        s.inbound.triage_new_items(100).await.unwrap();
        s.inbound
            .auto_reply_recent_inbound(now - Duration::hours(1), 100)
            .await
            .unwrap();
    };
    step().await;
    let external = s.external(&post_id).await.expect("the external post");
    assert_eq!(s.comment_ids(external.id).await, ["cm-1", "cm-2"]);
    let cm_1 = || async {
        let found = s.env.store.find_comment(s.env.tenant, external.id, "cm-1");
        found.await.unwrap().expect("cm-1 is stored")
    };
    let hidden = cm_1().await;
    assert!(hidden.hidden);
    assert_eq!(hidden.triage, None, "a hidden comment gets no decision");
    assert_eq!(
        s.replied(),
        ["cm-2"],
        "only the visible comment is answered"
    );

    let (headers, body) = s.feed_change(
        &post_id,
        "cm-1",
        "Vos horaires ? spam spam",
        "unhide",
        now - Duration::minutes(1),
    );
    s.inbound
        .ingest_webhook(&fb, &headers, &body)
        .await
        .unwrap();
    step().await;
    let shown = cm_1().await;
    assert!(!shown.hidden);
    assert_eq!(shown.triage, Some(Triage::AutoReply));
    assert_eq!(s.replied(), ["cm-1", "cm-2"]);
}

/// A moderator shows then hides a comment (or hides then shows it) within
/// one second: Meta sends both changes in one entry, whose time is in
/// seconds. Routing applies them in the order the entry lists them.
async fn moderations_in_one_entry_apply_in_their_order(store: Arc<dyn Store>) {
    let s = setup(store).await;
    let now = s.env.clock.now();
    let post_id = format!("{}_122131676912594942", s.account);
    let fb = s.webhook_connector();
    let text = "Vos horaires ? spam spam";
    let (headers, body) = s.feed_comment(&post_id, "cm-9", text, now - Duration::minutes(3));
    s.inbound
        .ingest_webhook(&fb, &headers, &body)
        .await
        .unwrap();
    let mut at = now - Duration::minutes(2);
    let cases: [(&[&str], bool); 3] = [
        (&["unhide", "hide"], true),
        (&["hide", "unhide"], false),
        (&["hide", "unhide", "hide"], true),
    ];
    for (verbs, hidden) in cases {
        let (headers, body) = s.feed_changes(&post_id, "cm-9", text, verbs, at);
        s.inbound
            .ingest_webhook(&fb, &headers, &body)
            .await
            .unwrap();
        s.inbound.route_unrouted_events(None, 100).await.unwrap();
        let external = s.external(&post_id).await.expect("the external post");
        let comment = s.env.store.find_comment(s.env.tenant, external.id, "cm-9");
        let comment = comment.await.unwrap().expect("stored");
        assert_eq!(comment.hidden, hidden, "{verbs:?}");
        at += Duration::seconds(30);
    }
}
