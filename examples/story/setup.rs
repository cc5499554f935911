//! The setup every step shares: the manual clock, the fake platform, the real
//! connectors pointed at it, and the tenant with its three channels.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use nexiom::connectors::{
    ConnectorRegistry, FacebookConnector, LinkedInConnector, PlatformConnector, WhatsAppConnector,
};
use nexiom::core::*;
use nexiom::storage::Store;

use super::fake_platform::FakePlatform;
use super::outcome::StoryError;

pub(super) const APP_SECRET: &str = "story-app-secret";
pub(super) const PAGE_ID: &str = "104857600000001";
pub(super) const PHONE_ID: &str = "106540352242922";
pub(super) const LI_ORG: &str = "urn:li:organization:2414183";

/// What the steps of the story share.
pub(super) struct Story {
    /// Print each step as the quickstart shows it.
    pub verbose: bool,
    pub store: Arc<dyn Store>,
    pub clock: ManualClock,
    /// The same clock, as the library takes it.
    pub dyn_clock: Arc<dyn Clock>,
    pub fake: FakePlatform,
    pub facebook: Arc<dyn PlatformConnector>,
    pub whatsapp: Arc<dyn PlatformConnector>,
    /// Facebook, WhatsApp and LinkedIn.
    pub registry: ConnectorRegistry,
    pub tenant: Tenant,
    pub tz: Tz,
    /// The Facebook page.
    pub page: Channel,
    /// The WhatsApp number.
    pub phone: Channel,
    /// The LinkedIn organization.
    pub org: Channel,
}

impl Story {
    /// Starts the fake platform, builds the connectors and creates the tenant
    /// and its channels on `store` (empty, migrated).
    pub async fn set_up(store: Arc<dyn Store>, verbose: bool) -> Result<Story, StoryError> {
        let start = Utc
            .with_ymd_and_hms(2026, 11, 23, 7, 0, 0)
            .single()
            .ok_or("bad start date")?;
        let clock = ManualClock::new(start);
        let dyn_clock: Arc<dyn Clock> = Arc::new(clock.clone());
        let fake = FakePlatform::start().await?;

        // --- Setup: the real connectors, pointed at the fake platform.
        let facebook = FacebookConnector::builder()
            .with_base_url(fake.base_url.as_str())
            .with_app_secret(APP_SECRET)
            .with_clock(Arc::clone(&dyn_clock))
            .build()?;
        let whatsapp = WhatsAppConnector::builder()
            .with_base_url(fake.base_url.as_str())
            .with_app_secret(APP_SECRET)
            .with_clock(Arc::clone(&dyn_clock))
            .build()?;
        let linkedin = LinkedInConnector::builder()
            .with_base_url(fake.base_url.as_str())
            .with_oauth_url(fake.base_url.as_str())
            .with_clock(Arc::clone(&dyn_clock))
            .build()?;
        let facebook: Arc<dyn PlatformConnector> = Arc::new(facebook);
        let whatsapp: Arc<dyn PlatformConnector> = Arc::new(whatsapp);
        let registry = ConnectorRegistry::new()
            .with(Arc::clone(&facebook))
            .with(Arc::clone(&whatsapp))
            .with(Arc::new(linkedin));
        say!(
            verbose,
            "== Nexiom quickstart: the whole loop on an in-process fake platform"
        );
        say!(
            verbose,
            "fake platform   {} (Graph + LinkedIn shapes; real connectors pointed at it)",
            fake.base_url
        );

        let tenant = store
            .create_tenant(NewTenant::new("Acme Bakery", clock.now()))
            .await?;
        let tz = tenant.time_zone;
        let channel = |platform: Platform, account: &str, name: &str| NewChannel {
            tenant_id: tenant.id,
            platform,
            external_account_id: account.into(),
            name: name.into(),
            credentials: Credentials {
                access_token: Some(SecretString::new("EAAG-demo-token")),
                ..Credentials::default()
            },
            created_at: clock.now(),
        };
        let page = store
            .create_channel(channel(Platform::Facebook, PAGE_ID, "Acme Bakery page"))
            .await?;
        let phone = store
            .create_channel(channel(
                Platform::WhatsApp,
                PHONE_ID,
                "Acme Bakery WhatsApp",
            ))
            .await?;
        let org = store
            .create_channel(channel(
                Platform::LinkedIn,
                LI_ORG,
                "Acme Bakery on LinkedIn",
            ))
            .await?;
        say!(
            verbose,
            "tenant          {} ({tz}); channels: Facebook page, WhatsApp number, LinkedIn page",
            tenant.name
        );
        Ok(Story {
            verbose,
            store,
            clock,
            dyn_clock,
            fake,
            facebook,
            whatsapp,
            registry,
            tenant,
            tz,
            page,
            phone,
            org,
        })
    }
}
