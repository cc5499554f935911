//! The checks of publishing (ids, validation, rate limit, expired token,
//! server error), comment paging and secrets in output.

use std::time::Duration;

use wiremock::ResponseTemplate;

use super::fixtures::SeedComment;
use super::run::{Check, Run, expect};
use crate::connector::PlatformConnectorExt;
use crate::error::ConnectorError;

impl Run<'_> {
    pub(super) async fn publish_returns_ids(&mut self) -> Check {
        let (server, c) = self.fresh().await?;
        let expected = self.h.mount_publish_success(&server).await;
        let got = c
            .publish(&self.h.context(), &self.h.publish_request())
            .await
            .map_err(|e| format!("publish failed: {e}"))?;
        expect(got.platform_post_id == expected.post_id, || {
            format!(
                "post id {:?}, expected {:?}",
                got.platform_post_id, expected.post_id
            )
        })?;
        expect(!got.ids.is_empty(), || "no ids returned".into())?;
        if let Some(url) = expected.url {
            expect(got.url.as_deref() == Some(url.as_str()), || {
                format!("url {:?}, expected {url:?}", got.url)
            })?;
        }
        Ok(())
    }

    pub(super) async fn validation_sends_nothing(&mut self) -> Option<Check> {
        let request = self.h.invalid_publish_request()?;
        let result = async {
            let (server, c) = self.fresh().await?;
            let err = match c.publish(&self.h.context(), &request).await {
                Ok(p) => return Err(format!("invalid content was published: {p:?}")),
                Err(e) => e,
            };
            self.seen(&err);
            expect(matches!(err, ConnectorError::Validation(_)), || {
                format!("expected a validation error, got {err:?}")
            })?;
            let sent = server.received_requests().await.map_or(0, |r| r.len());
            expect(sent == 0, || {
                format!("{sent} request(s) reached the server")
            })
        }
        .await;
        Some(result)
    }

    async fn publish_error(
        &mut self,
        response: ResponseTemplate,
    ) -> Result<ConnectorError, String> {
        let (server, c) = self.fresh().await?;
        self.h.mount_publish_failure(&server, response).await;
        match c
            .publish(&self.h.context(), &self.h.publish_request())
            .await
        {
            Ok(p) => Err(format!("publish succeeded against an error answer: {p:?}")),
            Err(e) => {
                self.seen(&e);
                Ok(e)
            }
        }
    }

    pub(super) async fn rate_limit_429(&mut self) -> Check {
        let e = self
            .publish_error(
                ResponseTemplate::new(429)
                    .insert_header("Retry-After", "120")
                    .set_body_json(serde_json::json!({"message": "Too Many Requests"})),
            )
            .await?;
        expect(
            matches!(&e, ConnectorError::RateLimited { retry_after: Some(d), .. } if *d == Duration::from_secs(120)),
            || format!("expected RateLimited after 120 s, got {e:?}"),
        )
    }

    pub(super) async fn expired_token(&mut self) -> Check {
        let e = self.publish_error(self.h.expired_token_response()).await?;
        expect(matches!(e, ConnectorError::Unauthorized { .. }), || {
            format!("expected Unauthorized, got {e:?}")
        })
    }

    pub(super) async fn server_error(&mut self) -> Check {
        let e = self
            .publish_error(ResponseTemplate::new(503).set_body_string("Service Unavailable"))
            .await?;
        expect(matches!(e, ConnectorError::Transient { .. }), || {
            format!("expected Transient, got {e:?}")
        })
    }

    pub(super) async fn paging_exactly_once(&mut self) -> Option<Check> {
        let result = async {
            let (server, c) = self.fresh().await?;
            if !c.capabilities().comments {
                return Err("skip".to_owned());
            }
            let post = self.h.comment_post_id();
            let pages: Vec<Vec<SeedComment>> = [2usize, 2, 1]
                .iter()
                .scan(0, |n, size| {
                    let page = (0..*size)
                        .map(|i| {
                            let k = *n + i;
                            SeedComment {
                                id: format!("contract-comment-{k}"),
                                author_id: format!("author-{k}"),
                                text: format!("comment number {k}"),
                                created_unix: 1_700_000_000 + k as i64,
                            }
                        })
                        .collect::<Vec<_>>();
                    *n += size;
                    Some(page)
                })
                .collect();
            self.h.mount_comment_pages(&server, &post, &pages).await;
            let got = c
                .list_all_comments(&self.h.context(), &post, 10)
                .await
                .map_err(|e| format!("paging failed: {e}"))?;
            let want: Vec<String> = pages.iter().flatten().map(|s| s.id.clone()).collect();
            let ids: Vec<String> = got.iter().map(|c| c.id.clone()).collect();
            expect(ids == want, || {
                format!("got {ids:?}, expected each of {want:?} once")
            })?;
            let first = pages.iter().flatten().next();
            if let (Some(seed), Some(c)) = (first, got.first()) {
                expect(c.text == seed.text, || {
                    format!("text {:?} != {:?}", c.text, seed.text)
                })?;
                expect(c.created_at.timestamp() == seed.created_unix, || {
                    format!(
                        "created_at {} != {}",
                        c.created_at.timestamp(),
                        seed.created_unix
                    )
                })?;
            }
            Ok(())
        }
        .await;
        match result {
            Err(s) if s == "skip" => None,
            r => Some(r),
        }
    }

    pub(super) async fn no_secret_in_output(&mut self) -> Check {
        let (_server, c) = self.fresh().await?;
        let mut outputs = vec![format!("{c:?}"), format!("{:?}", self.h.context())];
        outputs.extend(self.errors_seen.iter().cloned());
        for secret in self.h.secrets() {
            if secret.len() < 6 {
                continue;
            }
            for out in &outputs {
                expect(!out.contains(&secret), || {
                    format!(
                        "a secret appears in output: {}",
                        out.replace(&secret, "<SECRET>")
                    )
                })?;
            }
        }
        Ok(())
    }
}
