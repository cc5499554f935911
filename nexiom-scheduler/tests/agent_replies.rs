//! Agent replies end to end, on both backends: through the real WhatsApp
//! connector against a fake Cloud API, a reply outside the 24-hour window
//! without a template is refused with no request; inside it, two tasks
//! calling `reply_as_agent` with one key make exactly one request, and the
//! reply counts for the first-response time; a template goes outside the
//! window. Comment replies through a scripted connector: one private reply
//! per comment within 7 days, public replies always.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use nexiom_connectors::{
    Backoff, BreakerConfig, ConnectorError, ConnectorRegistry, HttpConfig, MockConnector, MockOp,
    PlatformConnector, WhatsAppConnector,
};
use nexiom_core::*;
use nexiom_scheduler::inbox::{AgentReplies, AgentReplyError, AgentReplyRequest};
use nexiom_scheduler::{ReleaseStaleLeasesWorker, Shutdown, WorkerRun, WorkerRuntime};
use nexiom_storage::conformance::{TestStore, memory_test_store, postgres_test_store, t0};
use nexiom_storage::{ABANDONED_AGENT_REPLY_ERROR, AgentReplyClaim, Store};
use serde_json::{Value, json};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The Cloud API's `/messages`: logs each body, answers after 200 ms (so
/// two concurrent callers overlap) with the documented success payload.
#[derive(Clone, Default)]
struct FakeMessages(Arc<Mutex<Vec<Value>>>);

impl Respond for FakeMessages {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let to = body["to"].clone();
        let n = {
            let mut log = self.0.lock().unwrap();
            log.push(body);
            log.len()
        };
        ResponseTemplate::new(200)
            .set_body_json(json!({
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": format!("wamid.agent{n}")}],
            }))
            .set_delay(StdDuration::from_millis(200))
    }
}

struct Fx {
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    tenant: TenantId,
    channel: Channel,
    fake: FakeMessages,
    replies: AgentReplies,
    _server: MockServer,
}

async fn whatsapp(store: Arc<dyn Store>) -> Fx {
    let clock = Arc::new(ManualClock::new(t0()));
    let tenant = store
        .create_tenant(NewTenant::new("Acme", t0()))
        .await
        .unwrap();
    let channel = store
        .create_channel(NewChannel {
            tenant_id: tenant.id,
            platform: Platform::WhatsApp,
            external_account_id: "106540352242922".into(),
            name: "Shop".into(),
            credentials: Credentials {
                access_token: Some(SecretString::new("system-user-token")),
                ..Credentials::default()
            },
            created_at: t0(),
        })
        .await
        .unwrap();
    let server = MockServer::start().await;
    let fake = FakeMessages::default();
    Mock::given(method("POST"))
        .and(path_regex(r"/messages$"))
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    let connector = WhatsAppConnector::builder()
        .with_base_url(server.uri())
        .with_app_secret("app-secret")
        .with_verify_token("verify")
        .with_http_config(HttpConfig {
            max_retries: 0,
            backoff: Backoff::none(),
            breaker: BreakerConfig {
                failure_threshold: 0,
                ..BreakerConfig::default()
            },
            ..HttpConfig::default()
        })
        .with_clock(clock.clone())
        .build()
        .unwrap();
    let replies = AgentReplies::new(
        store.clone(),
        clock.clone(),
        ConnectorRegistry::new().with(Arc::new(connector)),
    );
    Fx {
        store,
        clock,
        tenant: tenant.id,
        channel,
        fake,
        replies,
        _server: server,
    }
}

impl Fx {
    /// A conversation whose contact (`+33…`) wrote at `wrote`.
    async fn conversation(&self, phone: &str, wrote: chrono::DateTime<Utc>) -> Conversation {
        let cc = self
            .store
            .insert_contact_channel(NewContactChannel {
                tenant_id: self.tenant,
                platform: Platform::WhatsApp,
                external_handle: phone.into(),
                display_name: None,
                created_at: wrote,
            })
            .await
            .unwrap()
            .record;
        let conv = self
            .store
            .insert_open_conversation(self.tenant, cc.contact_id, self.channel.id, wrote)
            .await
            .unwrap()
            .record;
        self.store
            .insert_message(NewMessage {
                tenant_id: self.tenant,
                conversation_id: conv.id,
                direction: MessageDirection::Inbound,
                text: "Where is my order?".into(),
                has_media: false,
                provider_message_id: Some(format!("wamid.in-{phone}")),
                in_reply_to: None,
                delivery_status: None,
                created_at: wrote,
                stored_at: wrote,
            })
            .await
            .unwrap();
        conv
    }

    fn request(&self, conv: &Conversation, key: &str) -> AgentReplyRequest {
        AgentReplyRequest {
            tenant_id: self.tenant,
            target: AgentReplyTarget::Conversation {
                conversation: conv.id,
            },
            agent_id: "agent-42".into(),
            text: "It ships today.".into(),
            template: None,
            idempotency_key: key.into(),
        }
    }
}

async fn whatsapp_window_and_one_call_per_key(test: TestStore) {
    let fx = whatsapp(test.store()).await;
    let now = t0() + Duration::days(2);
    fx.clock.set(now);

    // Outside the window, no template: refused, no request, nothing stored.
    let late = fx
        .conversation("+33600000001", now - Duration::hours(25))
        .await;
    let refused = fx.replies.reply_as_agent(fx.request(&late, "k-late")).await;
    assert!(
        matches!(refused, Err(AgentReplyError::Refused(ref why)) if why.contains("template")),
        "{refused:?}"
    );
    assert_eq!(fx.fake.0.lock().unwrap().len(), 0, "no platform call");
    assert_eq!(
        fx.store
            .find_agent_reply(fx.tenant, "k-late")
            .await
            .unwrap(),
        None
    );

    // Inside it: two tasks, one key, one request.
    let wrote = now - Duration::hours(2);
    let conv = fx.conversation("+33600000002", wrote).await;
    let spawn = |request: AgentReplyRequest| {
        let replies = fx.replies.clone();
        tokio::spawn(async move { replies.reply_as_agent(request).await })
    };
    let (a, b) = (
        spawn(fx.request(&conv, "k-1")),
        spawn(fx.request(&conv, "k-1")),
    );
    let (a, b) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap());
    assert_eq!(a.id, b.id, "one reply under the key");
    assert_eq!(
        fx.fake.0.lock().unwrap().len(),
        1,
        "exactly one platform call"
    );
    let stored = fx
        .store
        .find_agent_reply(fx.tenant, "k-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.state, AgentReplyState::Sent);
    assert_eq!(stored.agent_id, "agent-42");
    assert_eq!(stored.provider_id.as_deref(), Some("wamid.agent1"));
    let body = fx.fake.0.lock().unwrap()[0].clone();
    assert_eq!(body["to"], "+33600000002");
    assert_eq!(body["text"]["body"], "It ships today.");
    // A third call later: the stored reply, still one request.
    let again = fx
        .replies
        .reply_as_agent(fx.request(&conv, "k-1"))
        .await
        .unwrap();
    assert_eq!(again, stored);
    assert_eq!(fx.fake.0.lock().unwrap().len(), 1);

    // Recorded as the conversation's outbound message: first response 2 h.
    let messages = fx
        .store
        .list_messages(fx.tenant, conv.id, 10)
        .await
        .unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1].id, stored.message_id.unwrap());
    assert_eq!(messages[1].direction, MessageDirection::Outbound);
    let window = KpiWindow {
        start: wrote - Duration::hours(1),
        end: wrote + Duration::hours(1),
    };
    let kpis = fx
        .store
        .recompute_kpis(fx.tenant, &[window], now)
        .await
        .unwrap();
    assert_eq!(kpis[0].frt_p50_seconds, Some(2 * 3600));

    // Outside the window with a template: sent as the template.
    let mut with_template = fx.request(&late, "k-template");
    with_template.template = Some(AgentTemplate {
        name: "order_update".into(),
        language: "fr_FR".into(),
        parameters: vec!["A-1042".into()],
    });
    let sent = fx.replies.reply_as_agent(with_template).await.unwrap();
    assert_eq!(sent.state, AgentReplyState::Sent);
    let body = fx.fake.0.lock().unwrap()[1].clone();
    assert_eq!(body["type"], "template");
    assert_eq!(body["template"]["name"], "order_update");
    test.cleanup().await;
}

/// A Page with one published post, and agent replies through `mock`.
struct PageFx {
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    tenant: TenantId,
    post: ScheduledPost,
    replies: AgentReplies,
}

impl PageFx {
    async fn new(test: &TestStore, mock: MockConnector) -> Self {
        let store = test.store();
        let clock = Arc::new(ManualClock::new(t0()));
        let tenant = store
            .create_tenant(NewTenant::new("Acme", t0()))
            .await
            .unwrap();
        let channel = store
            .create_channel(NewChannel {
                tenant_id: tenant.id,
                platform: mock.platform(),
                external_account_id: "page-1".into(),
                name: "Page".into(),
                credentials: Credentials {
                    access_token: Some(SecretString::new("page-token")),
                    ..Credentials::default()
                },
                created_at: t0(),
            })
            .await
            .unwrap();
        let mock = mock.with_clock(clock.clone());
        let replies = AgentReplies::new(
            store.clone(),
            clock.clone(),
            ConnectorRegistry::new().with(Arc::new(mock)),
        );
        let post = store
            .insert_post(NewScheduledPost::one_off(
                tenant.id,
                channel.id,
                Content::text("Spring sale"),
                t0(),
                t0(),
            ))
            .await
            .unwrap()
            .record;
        PageFx {
            store,
            clock,
            tenant: tenant.id,
            post,
            replies,
        }
    }

    /// Stores a comment on the post, made (and stored) at `at`.
    async fn comment(&self, id: &str, parent: Option<&str>, at: DateTime<Utc>) -> Comment {
        self.store
            .insert_comment(NewComment {
                tenant_id: self.tenant,
                post_id: self.post.id,
                platform_comment_id: id.into(),
                parent_platform_comment_id: parent.map(Into::into),
                author_id: Some("u1".into()),
                author_name: Some("Ana".into()),
                text: "Price?".into(),
                created_at: at,
                stored_at: at,
                hidden: false,
            })
            .await
            .unwrap()
            .record
    }

    fn request(&self, target: AgentReplyTarget, key: &str) -> AgentReplyRequest {
        AgentReplyRequest {
            tenant_id: self.tenant,
            target,
            agent_id: "agent-1".into(),
            text: "Sent you the price in private.".into(),
            template: None,
            idempotency_key: key.into(),
        }
    }
}

async fn comment_replies_keep_the_private_reply_rules(test: TestStore) {
    let mock = MockConnector::new(Platform::Facebook);
    let fx = PageFx::new(&test, mock.clone()).await;
    let (store, clock, replies) = (fx.store.clone(), fx.clock.clone(), &fx.replies);
    let old = fx.comment("c-old", None, t0()).await;
    clock.set(t0() + Duration::days(8));
    let fresh = fx.comment("c-new", None, t0() + Duration::days(7)).await;
    let request = |target, key: &str| fx.request(target, key);
    let too_old = replies
        .reply_as_agent(request(
            AgentReplyTarget::PrivateComment { comment: old.id },
            "p-old",
        ))
        .await;
    assert!(matches!(too_old, Err(AgentReplyError::Refused(ref why)) if why.contains("7 days")));
    // A channel that cannot send now (here no connector for its platform):
    // nothing is sent or recorded, so neither the key nor the comment's one
    // private reply is used up.
    let unavailable = AgentReplies::new(store.clone(), clock.clone(), ConnectorRegistry::new())
        .reply_as_agent(request(
            AgentReplyTarget::PrivateComment { comment: fresh.id },
            "p-1",
        ))
        .await;
    assert!(
        matches!(unavailable, Err(AgentReplyError::Unavailable(_))),
        "{unavailable:?}"
    );
    assert!(
        store
            .find_agent_reply(fx.tenant, "p-1")
            .await
            .unwrap()
            .is_none()
    );
    let first = replies
        .reply_as_agent(request(
            AgentReplyTarget::PrivateComment { comment: fresh.id },
            "p-1",
        ))
        .await
        .unwrap();
    assert_eq!(first.state, AgentReplyState::Sent);
    let second = replies
        .reply_as_agent(request(
            AgentReplyTarget::PrivateComment { comment: fresh.id },
            "p-2",
        ))
        .await;
    assert!(
        matches!(second, Err(AgentReplyError::Refused(ref why)) if why.contains("one per comment"))
    );
    assert_eq!(mock.calls_of(MockOp::SendPrivateReply).len(), 1);
    let public = replies
        .reply_as_agent(request(
            AgentReplyTarget::PublicComment { comment: old.id },
            "pub-1",
        ))
        .await
        .unwrap();
    assert_eq!(public.state, AgentReplyState::Sent);
    let calls = mock.calls_of(MockOp::ReplyComment);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].target.as_deref(), Some("c-old"));
    test.cleanup().await;
}

/// A private reply the platform throttled, or refused with the channel's
/// token, sent nothing: the claim is withdrawn and the call answers
/// `Unavailable`, so the same key sends it once the platform takes it, and
/// the comment's one private reply is not used up. Before, the throttle was
/// recorded `failed` and the private reply was gone for good. An answer that
/// never came after the request went out is recorded as outcome unknown.
async fn a_throttled_private_reply_can_be_sent_again(test: TestStore) {
    let mock = MockConnector::new(Platform::Facebook);
    let fx = PageFx::new(&test, mock.clone()).await;
    let comment = fx.comment("c-1", None, t0()).await;
    let target = AgentReplyTarget::PrivateComment {
        comment: comment.id,
    };
    mock.rate_limit_next(MockOp::SendPrivateReply, StdDuration::from_secs(60));
    mock.unauthorized_next(MockOp::SendPrivateReply);
    for _ in 0..2 {
        let refused = fx.replies.reply_as_agent(fx.request(target, "p-1")).await;
        assert!(
            matches!(refused, Err(AgentReplyError::Unavailable(_))),
            "{refused:?}"
        );
        assert!(
            fx.store
                .find_agent_reply(fx.tenant, "p-1")
                .await
                .unwrap()
                .is_none()
        );
    }
    let sent = fx
        .replies
        .reply_as_agent(fx.request(target, "p-1"))
        .await
        .unwrap();
    assert_eq!(sent.state, AgentReplyState::Sent);
    assert_eq!(mock.calls_of(MockOp::SendPrivateReply).len(), 3);

    // No answer after the request went out: recorded, never sent again.
    let other = fx.comment("c-2", None, t0()).await;
    mock.fail_next(
        MockOp::ReplyComment,
        1,
        ConnectorError::OutcomeUnknown {
            platform: "facebook".into(),
            reason: "timed out after the request was sent".into(),
        },
    );
    let public = AgentReplyTarget::PublicComment { comment: other.id };
    let unknown = fx
        .replies
        .reply_as_agent(fx.request(public, "pub-1"))
        .await
        .unwrap();
    assert_eq!(unknown.state, AgentReplyState::Failed);
    assert!(unknown.error.unwrap().starts_with("outcome_unknown"));
    test.cleanup().await;
}

/// Instagram takes replies under a top-level comment only: an agent's
/// public reply to a reply goes to the comment that reply answers.
async fn a_reply_to_a_reply_goes_where_the_platform_takes_it(test: TestStore) {
    let mock = MockConnector::new(Platform::Instagram).with_replies_under_comments();
    let fx = PageFx::new(&test, mock.clone()).await;
    fx.comment("c-top", None, t0()).await;
    let answer = fx.comment("c-answer", Some("c-top"), t0()).await;
    let sent = fx
        .replies
        .reply_as_agent(fx.request(
            AgentReplyTarget::PublicComment { comment: answer.id },
            "pub-1",
        ))
        .await
        .unwrap();
    assert_eq!(sent.state, AgentReplyState::Sent);
    let calls = mock.calls_of(MockOp::ReplyComment);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].target.as_deref(), Some("c-top"));
    test.cleanup().await;
}

/// A sender that claimed a reply and stopped before recording the
/// platform's answer leaves it `sending`: past the bound, a call with its
/// key settles it as of unknown outcome instead of answering `sending` for
/// ever, and the worker releasing stale leases settles the others. Nothing
/// is sent.
async fn a_reply_left_sending_is_settled_never_sent(test: TestStore) {
    let fx = whatsapp(test.store()).await;
    let now = t0() + Duration::days(2);
    fx.clock.set(now);
    let conv = fx
        .conversation("+33600000009", now - Duration::hours(2))
        .await;
    for (key, at) in [("k-stuck", now), ("k-swept", now + Duration::minutes(1))] {
        let request = fx.request(&conv, key);
        let claim = fx
            .store
            .claim_agent_reply(NewAgentReply {
                tenant_id: fx.tenant,
                target: request.target,
                agent_id: request.agent_id,
                text: request.text,
                template: None,
                idempotency_key: key.into(),
                created_at: at,
            })
            .await
            .unwrap();
        assert!(matches!(claim, AgentReplyClaim::Claimed(_)), "{claim:?}");
    }

    // Within the bound the reply may still be in flight: as it is.
    fx.clock.set(now + Duration::minutes(10));
    let early = fx
        .replies
        .reply_as_agent(fx.request(&conv, "k-stuck"))
        .await
        .unwrap();
    assert_eq!(early.state, AgentReplyState::Sending);

    // Past it: failed as of unknown outcome, never sent.
    fx.clock.set(now + Duration::minutes(16));
    let settled = fx
        .replies
        .reply_as_agent(fx.request(&conv, "k-stuck"))
        .await
        .unwrap();
    assert_eq!(settled.state, AgentReplyState::Failed);
    assert_eq!(settled.error.as_deref(), Some(ABANDONED_AGENT_REPLY_ERROR));
    assert_eq!(settled.finished_at, Some(now + Duration::minutes(16)));

    // The worker settles the other one.
    fx.clock.set(now + Duration::minutes(17));
    let mut runtime = WorkerRuntime::new(fx.store.clone(), fx.clock.clone());
    runtime.register(Arc::new(ReleaseStaleLeasesWorker::new(fx.store.clone())));
    let runs = runtime.run_once(&Shutdown::never()).await.unwrap();
    let report = match &runs[..] {
        [(_, WorkerRun::Ran(log))] => log.results.clone(),
        other => panic!("expected one run, got {other:?}"),
    };
    assert_eq!(report["agent_replies_settled"], 1, "{report}");
    let swept = fx
        .store
        .find_agent_reply(fx.tenant, "k-swept")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(swept.state, AgentReplyState::Failed);
    assert_eq!(swept.error.as_deref(), Some(ABANDONED_AGENT_REPLY_ERROR));
    assert_eq!(fx.fake.0.lock().unwrap().len(), 0, "nothing sent");
    test.cleanup().await;
}

macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::memory_test_store().await.unwrap()).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(nexiom_no_postgres, ignore = "no PostgreSQL reachable")]
                async fn $name() {
                    let Some(test) = super::postgres_test_store().await else { return };
                    super::$name(test).await;
                }
            )+
        }
    };
}

on_both_backends!(
    whatsapp_window_and_one_call_per_key,
    comment_replies_keep_the_private_reply_rules,
    a_reply_to_a_reply_goes_where_the_platform_takes_it,
    a_throttled_private_reply_can_be_sent_again,
    a_reply_left_sending_is_settled_never_sent,
);
