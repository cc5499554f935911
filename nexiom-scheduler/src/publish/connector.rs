//! [`ConnectorGateway`]: the publish queue's [`PublishGateway`] over the
//! connectors of `nexiom-connectors`.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexiom_connectors::{
    ChannelContext, ConnectorError, ConnectorRegistry, LookupOutcome, LookupQuery, MessageBody,
    OutboundMessage, PlatformConnector, PublishRequest, Template,
};
use nexiom_core::{Channel, Content, Credentials, SecretString};

use super::gateway::{PublishFailure, PublishGateway, PublishedPost, RecipientMessage};

/// A custom way to find a post the library published (by the reference it put
/// in the request, the post id, or by the content), replacing the connector's
/// own [`PlatformConnector::find_published`]. Plug one in with
/// [`ConnectorGateway::with_lookup`]; by default the gateway uses the
/// connector's lookup where [`PlatformConnector::supports_lookup`].
#[async_trait]
pub trait PostLookup: Send + Sync {
    /// Whether posts of `connector`'s platform can be looked up.
    fn supports(&self, connector: &dyn PlatformConnector) -> bool;

    /// The post the attempt described by `query` published, `Ok(None)` when it
    /// is definitely not there (the queue then publishes again), an error when
    /// the lookup cannot tell.
    async fn find_post(
        &self,
        connector: &dyn PlatformConnector,
        ctx: &ChannelContext,
        query: &LookupQuery,
    ) -> Result<Option<PublishedPost>, ConnectorError>;
}

/// Publishes through the connector registered under the channel's platform
/// name, with the channel's credentials in a [`ChannelContext`].
///
/// How [`ConnectorError`]s map onto the retry rules:
///
/// | connector error | queue |
/// | --- | --- |
/// | `RateLimited` (with its wait hint) | retried, not before the hint |
/// | `Transient`, `CircuitOpen` (with its wait) | retried with backoff |
/// | `Unauthorized` | token refreshed once ([`PlatformConnector::refresh_token`], through [`ChannelTokens`](crate::ChannelTokens)), retried |
/// | `NeedsReauth` (a refused refresh) | the channel is set `needs_reauth`; the post waits, queued, until it is reconnected |
/// | `OutcomeUnknown`, `InvalidResponse` | ambiguous: lookup (found → `published`; not found → a new attempt; lookup error → `outcome_unknown`) |
/// | `PublishedWithoutId` | published: lookup for the id (found → `published`; else `outcome_unknown`, never published again) |
/// | everything else (`Permanent`, `Forbidden`, validation, …) | failed at once |
///
/// An unreadable answer to a publish (`InvalidResponse`) is treated as
/// ambiguous: the post may exist, and a duplicate is worse than a visible
/// failure. Content the connector's [`Capabilities`](nexiom_connectors::Capabilities)
/// refuse, and a channel whose platform has no registered connector, can never
/// be published: both are refusals.
///
/// Lookups use the connector's [`PlatformConnector::find_published`] where it
/// [`supports_lookup`](PlatformConnector::supports_lookup) (Facebook, Instagram,
/// LinkedIn), unless a custom [`PostLookup`] is plugged in.
#[derive(Clone)]
pub struct ConnectorGateway {
    registry: Arc<ConnectorRegistry>,
    lookup: Option<Arc<dyn PostLookup>>,
}

impl std::fmt::Debug for ConnectorGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorGateway")
            .field("connectors", &self.registry.names())
            .field("lookup", &self.lookup.is_some())
            .finish()
    }
}

impl ConnectorGateway {
    /// A gateway over `registry`.
    pub fn new(registry: ConnectorRegistry) -> Self {
        ConnectorGateway {
            registry: Arc::new(registry),
            lookup: None,
        }
    }

    /// A gateway over one connector.
    pub fn single(connector: Arc<dyn PlatformConnector>) -> Self {
        ConnectorGateway::new(ConnectorRegistry::new().with(connector))
    }

    /// Looks posts up with `lookup` after an ambiguous outcome, instead of the
    /// connectors' own lookup.
    pub fn with_lookup(mut self, lookup: Arc<dyn PostLookup>) -> Self {
        self.lookup = Some(lookup);
        self
    }

    fn connector(&self, channel: &Channel) -> Result<Arc<dyn PlatformConnector>, ConnectorError> {
        self.registry.get(channel.platform.as_str())
    }
}

/// The connector call context of a stored channel.
pub fn channel_context(channel: &Channel) -> ChannelContext {
    let credentials = &channel.credentials;
    ChannelContext {
        channel_id: Some(channel.id),
        account_id: channel.external_account_id.clone(),
        access_token: credentials
            .access_token
            .clone()
            .unwrap_or_else(|| SecretString::new("")),
        refresh_token: credentials.refresh_token.clone(),
        expires_at: credentials.expires_at,
    }
}

fn to_chrono(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// How a connector error drives the queue (see [`ConnectorGateway`]).
/// WhatsApp's pair rate limit (131056) is about one recipient, so it is
/// `Transient` with no wait (that send retried with backoff), not
/// `RateLimited`, which holds the whole channel back.
pub fn classify(error: ConnectorError) -> PublishFailure {
    let message = error.to_string();
    let pair_limit = error.is_pair_rate_limit();
    match error {
        // Its wait, if any, is that recipient's: not passed on, since a
        // `Transient` failure's Retry-After holds the whole channel.
        ConnectorError::RateLimited { .. } if pair_limit => PublishFailure::Transient {
            message,
            retry_after: None,
        },
        ConnectorError::RateLimited { retry_after, .. } => PublishFailure::RateLimited {
            message,
            retry_after: retry_after.map(to_chrono),
        },
        ConnectorError::CircuitOpen { retry_after, .. } => PublishFailure::Transient {
            message,
            retry_after: Some(to_chrono(retry_after)),
        },
        ConnectorError::Transient { .. } => PublishFailure::Transient {
            message,
            retry_after: None,
        },
        ConnectorError::Unauthorized { .. } => PublishFailure::Unauthorized(message),
        ConnectorError::OutcomeUnknown { .. } | ConnectorError::InvalidResponse { .. } => {
            PublishFailure::Ambiguous(message)
        }
        ConnectorError::PublishedWithoutId { .. } => PublishFailure::PublishedWithoutId(message),
        ConnectorError::NeedsReauth { reason, .. } => PublishFailure::NeedsReauth(reason),
        _ => PublishFailure::Permanent(message),
    }
}

#[async_trait]
impl PublishGateway for ConnectorGateway {
    fn refusal(&self, channel: &Channel, content: &Content) -> Option<String> {
        match self.connector(channel) {
            Ok(connector) => connector
                .capabilities()
                .validate(connector.name(), content, None)
                .err()
                .map(|e| e.to_string()),
            Err(e) => Some(e.to_string()),
        }
    }

    async fn publish(
        &self,
        channel: &Channel,
        content: &Content,
        reference: &str,
    ) -> Result<PublishedPost, PublishFailure> {
        let connector = self.connector(channel).map_err(classify)?;
        let request = PublishRequest {
            reference: Some(reference.to_owned()),
            ..PublishRequest::new(content.clone())
        };
        let started = std::time::Instant::now();
        let published = connector.publish(&channel_context(channel), &request).await;
        crate::telemetry::publish_call(
            channel.platform.as_str(),
            published.is_ok(),
            started.elapsed().as_secs_f64(),
        );
        let published = published.map_err(classify)?;
        Ok(PublishedPost {
            platform_post_id: published.platform_post_id,
            url: published.url,
        })
    }

    fn can_lookup(&self, channel: &Channel) -> bool {
        match (&self.lookup, self.connector(channel)) {
            (Some(lookup), Ok(connector)) => lookup.supports(connector.as_ref()),
            (None, Ok(connector)) => connector.supports_lookup(),
            _ => false,
        }
    }

    /// Any error of the lookup is reported as a failure: only a definite
    /// answer settles the post. A throttle or a transient error keeps its
    /// kind and its Retry-After (the queue holds the channel and looks the
    /// post up again after the wait); any other error is `Ambiguous`.
    async fn lookup(
        &self,
        channel: &Channel,
        content: &Content,
        reference: &str,
        attempted_at: DateTime<Utc>,
    ) -> Result<Option<PublishedPost>, PublishFailure> {
        let connector = self.connector(channel).map_err(classify)?;
        let ctx = channel_context(channel);
        let query = LookupQuery::new(content.clone(), attempted_at).with_reference(reference);
        let lookup_failed = |e: ConnectorError| {
            let message = e.to_string();
            match classify(e) {
                failure @ (PublishFailure::RateLimited { .. }
                | PublishFailure::Transient { .. }) => failure,
                _ => PublishFailure::Ambiguous(message),
            }
        };
        if let Some(lookup) = &self.lookup {
            return lookup
                .find_post(connector.as_ref(), &ctx, &query)
                .await
                .map_err(lookup_failed);
        }
        match connector
            .find_published(&ctx, &query)
            .await
            .map_err(lookup_failed)?
        {
            LookupOutcome::Found(found) => Ok(Some(PublishedPost {
                platform_post_id: found.platform_post_id,
                url: found.url,
            })),
            LookupOutcome::NotFound => Ok(None),
        }
    }

    async fn refresh_credentials(&self, channel: &Channel) -> Result<Credentials, PublishFailure> {
        let connector = self.connector(channel).map_err(classify)?;
        let grant = connector
            .refresh_token(&channel_context(channel))
            .await
            .map_err(|e| match e {
                // No refresh flow (WhatsApp's system-user tokens): a token
                // that stops working can only be replaced by a person.
                ConnectorError::Unsupported { .. } => PublishFailure::NeedsReauth(e.to_string()),
                e => classify(e),
            })?;
        let mut credentials = channel.credentials.clone();
        grant.apply_to(&mut credentials);
        Ok(credentials)
    }

    /// [`PlatformConnector::send_message`] with the content, or the template
    /// (its parameters as the body's text parameters), and the delivery
    /// reference as the message's callback data. A refusal of the sender or
    /// the template ([`ConnectorError::refuses_every_recipient`]) is
    /// [`PublishFailure::SenderRefused`].
    async fn send_to_recipient(
        &self,
        channel: &Channel,
        message: RecipientMessage<'_>,
    ) -> Result<String, PublishFailure> {
        let connector = self.connector(channel).map_err(classify)?;
        let body = match message.template {
            Some(t) => {
                let mut template = Template::new(t.name.clone(), t.language.clone());
                if !t.parameters.is_empty() {
                    let parameters: Vec<serde_json::Value> = t
                        .parameters
                        .iter()
                        .map(|p| serde_json::json!({"type": "text", "text": p}))
                        .collect();
                    template.components =
                        vec![serde_json::json!({"type": "body", "parameters": parameters})];
                }
                MessageBody::Template(template)
            }
            None => MessageBody::Content(message.content.clone()),
        };
        let outbound = OutboundMessage {
            recipient: message.recipient.to_owned(),
            body,
            reply_to: None,
            reference: Some(message.reference.to_owned()),
            last_inbound_at: message.last_inbound_at,
        };
        let sent = connector
            .send_message(&channel_context(channel), &outbound)
            .await
            .map_err(|e| {
                if e.refuses_every_recipient() {
                    PublishFailure::SenderRefused(e.to_string())
                } else {
                    classify(e)
                }
            })?;
        Ok(sent.message_id)
    }
}
