//! The LinkedIn connector: the refresh-token grant (kept refresh token, missing
//! or refused grant), a post answered without its `x-restli-id` as an unknown
//! outcome, and replies that name their parent comment.

use nexiom_connectors::{
    ChannelContext, ConnectorError, OutboundMessage, PlatformConnector, PublishRequest, TokenGrant,
};
use nexiom_core::Content;
use serde_json::json;
use wiremock::matchers::{
    body_partial_json, body_string_contains, header, method, path, query_param,
};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::*;

#[tokio::test]
async fn linkedin_refresh_grant() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/v2/accessToken"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=li-refresh-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token":"AQV-new-token","expires_in":5184000,"refresh_token_expires_in":31536000}),
        ))
        .mount(&server)
        .await;
    let li = linkedin(&server.uri()).expect("build");
    let mut ctx = ChannelContext::new(LI_ORG, LI_TOKEN).with_refresh_token("li-refresh-1");
    let grant: TokenGrant = li.refresh_token(&ctx).await.expect("grant");
    assert!(grant.refresh_token.is_none());
    assert!(grant.refresh_token_expires_at.is_some());
    grant.apply_to_context(&mut ctx);
    assert_eq!(ctx.access_token.expose(), "AQV-new-token");
    assert_eq!(
        ctx.refresh_token.as_ref().map(|t| t.expose()),
        Some("li-refresh-1")
    );

    let no_refresh = ChannelContext::new(LI_ORG, LI_TOKEN);
    assert!(matches!(
        li.refresh_token(&no_refresh).await,
        Err(ConnectorError::NeedsReauth { .. })
    ));

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error":"invalid_request","error_description":"The provided authorization grant or refresh token is invalid, expired or revoked"}),
        ))
        .mount(&server)
        .await;
    let li = linkedin(&server.uri()).expect("build");
    let err = li.refresh_token(&ctx).await.expect_err("refused");
    assert!(matches!(err, ConnectorError::NeedsReauth { .. }), "{err:?}");
    assert!(!format!("{err:?}").contains(LI_CLIENT_SECRET));
}

#[tokio::test]
async fn linkedin_missing_restli_id_is_an_unknown_outcome_and_replies_name_the_parent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/rest/posts"))
        .respond_with(ResponseTemplate::new(201))
        .mount(&server)
        .await;
    let parent = "urn:li:comment:(urn:li:activity:7001,6001)";
    Mock::given(method("POST"))
        .and(path("/rest/socialActions/urn%3Ali%3Acomment%3A%28urn%3Ali%3Aactivity%3A7001%2C6001%29/comments"))
        .and(header("LinkedIn-Version", "202601"))
        .and(body_partial_json(json!({"actor": LI_ORG, "object":"urn:li:activity:7001",
            "message":{"text":"Thank you"}, "parentComment": parent})))
        .respond_with(ResponseTemplate::new(201).insert_header("x-restli-id", "urn:li:comment:(urn:li:activity:7001,6002)"))
        .mount(&server)
        .await;
    let li = linkedin(&server.uri()).expect("build");
    let ctx = ChannelContext::new(LI_ORG, LI_TOKEN);
    let err = li
        .publish(&ctx, &PublishRequest::new(Content::text("Hi")))
        .await
        .expect_err("no id");
    assert!(
        matches!(err, ConnectorError::OutcomeUnknown { .. }),
        "{err:?}"
    );
    assert_eq!(
        li.reply_comment(&ctx, parent, "Thank you")
            .await
            .expect("reply"),
        "urn:li:comment:(urn:li:activity:7001,6002)"
    );
    assert!(matches!(
        li.reply_comment(&ctx, "urn:li:share:1", "x").await,
        Err(ConnectorError::Validation(_))
    ));
    // `x-restli-id` holding only the comment's id (the documented "new
    // comment ID"): the id is the URN comment listings give, under the
    // parent's activity; a body with the comment gives its `commentUrn`.
    for (parent, header_id, body, expected) in [
        (
            "urn:li:comment:(urn:li:activity:7001,6101)",
            "6102",
            json!(null),
            "urn:li:comment:(urn:li:activity:7001,6102)",
        ),
        (
            "urn:li:comment:(urn:li:activity:7001,6201)",
            "6202",
            json!({"commentUrn": "urn:li:comment:(urn:li:activity:7001,6202)", "id": "6202"}),
            "urn:li:comment:(urn:li:activity:7001,6202)",
        ),
    ] {
        let mut answer = ResponseTemplate::new(201).insert_header("x-restli-id", header_id);
        if !body.is_null() {
            answer = answer.set_body_json(body);
        }
        Mock::given(method("POST"))
            .and(body_partial_json(json!({ "parentComment": parent })))
            .respond_with(answer)
            .mount(&server)
            .await;
        assert_eq!(
            li.reply_comment(&ctx, parent, "Thanks")
                .await
                .expect("reply"),
            expected
        );
    }
    assert!(matches!(
        li.send_message(&ctx, &OutboundMessage::text("x", "y"))
            .await,
        Err(ConnectorError::Unsupported { .. })
    ));
}

/// A comment's replies are not in the post's listing: they are comments on
/// the comment's URN (platform-apis §4.2). With `list_comments_with_replies`
/// a top-level comment whose `commentsSummary` counts replies is followed by
/// them, read with the same offset paging; one whose summary counts none is
/// not expanded, and a thread whose replies are refused (a deleted comment)
/// keeps the page's other comments. `list_new_comments` (every check) reads
/// no replies.
#[tokio::test]
async fn linkedin_replies_are_listed_under_their_comment() {
    let server = MockServer::start().await;
    let top = "urn:li:comment:(urn:li:activity:7001,6001)";
    let element = |id: &str, time: u64, text: &str, extra: serde_json::Value| {
        let mut e = json!({"actor": "urn:li:person:a", "id": id.rsplit(',').next().unwrap().trim_end_matches(')'),
            "commentUrn": id, "created": {"actor": "urn:li:person:a", "time": time},
            "message": {"text": text, "attributes": []}, "object": "urn:li:activity:7001"});
        e.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        e
    };
    Mock::given(method("GET"))
        .and(path("/rest/socialActions/urn%3Ali%3Ashare%3A7001/comments"))
        .and(query_param("start", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "paging": {"start": 0, "count": 2, "total": 3, "links": []},
            "elements": [
                element(top, 1767261600000, "Top",
                    json!({"commentsSummary": {"totalFirstLevelComments": 3, "aggregatedTotalComments": 3}})),
                element("urn:li:comment:(urn:li:activity:7001,6002)", 1767261700000, "Alone",
                    json!({"commentsSummary": {"totalFirstLevelComments": 0, "aggregatedTotalComments": 0}})),
                element("urn:li:comment:(urn:li:activity:7001,6006)", 1767261800000, "Gone",
                    json!({"commentsSummary": {"totalFirstLevelComments": 1, "aggregatedTotalComments": 1}})),
            ]})))
        .expect(2)
        .mount(&server)
        .await;
    let replies =
        "/rest/socialActions/urn%3Ali%3Acomment%3A%28urn%3Ali%3Aactivity%3A7001%2C6001%29/comments";
    Mock::given(method("GET"))
        .and(path(replies))
        .and(query_param("start", "0"))
        .and(query_param("count", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "paging": {"start": 0, "count": 2, "total": 3, "links": []},
            "elements": [
                element("urn:li:comment:(urn:li:activity:7001,6003)", 1767261660000, "Reply 1",
                    json!({"parentComment": top})),
                element("urn:li:comment:(urn:li:activity:7001,6004)", 1767261670000, "Reply 2", json!({})),
            ]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(replies))
        .and(query_param("start", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "paging": {"start": 2, "count": 2, "total": 3, "links": []},
            "elements": [element("urn:li:comment:(urn:li:activity:7001,6005)", 1767261680000, "Reply 3",
                json!({"parentComment": top}))]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/rest/socialActions/urn%3Ali%3Acomment%3A%28urn%3Ali%3Aactivity%3A7001%2C6002%29/comments"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;

    Mock::given(method("GET"))
        .and(path("/rest/socialActions/urn%3Ali%3Acomment%3A%28urn%3Ali%3Aactivity%3A7001%2C6006%29/comments"))
        .respond_with(ResponseTemplate::new(404).set_body_json(
            json!({"status": 404, "serviceErrorCode": 100, "message": "Comment not found"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let li = linkedin(&server.uri()).expect("build");
    assert!(li.new_comments_may_precede_the_cursor());
    // A reply is answered under its top-level comment.
    let reply = "urn:li:comment:(urn:li:activity:7001,6003)";
    assert_eq!(li.reply_target(reply, Some(top)), top);
    assert_eq!(li.reply_target(top, None), top);
    let ctx = ChannelContext::new(LI_ORG, LI_TOKEN);
    let cheap = li
        .list_new_comments(&ctx, "urn:li:share:7001", None)
        .await
        .expect("page");
    assert_eq!(cheap.comments.len(), 3);
    let page = li
        .list_comments_with_replies(&ctx, "urn:li:share:7001", None)
        .await
        .expect("page");
    let got: Vec<(&str, Option<&str>)> = page
        .comments
        .iter()
        .map(|c| (c.text.as_str(), c.parent_id.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("Top", None),
            ("Reply 1", Some(top)),
            ("Reply 2", Some(top)),
            ("Reply 3", Some(top)),
            ("Alone", None),
            ("Gone", None),
        ]
    );
    assert_eq!(page.next_cursor, None);
}
