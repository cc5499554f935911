//! The suite's runner: one [`Run`] per call of [`run_contract_suite`], each
//! check on a fresh mock server, its result recorded in the report.

use std::sync::Arc;

use wiremock::MockServer;

use super::harness::ContractHarness;
use super::lookup;
use super::report::ContractReport;
use crate::connector::PlatformConnector;
use crate::error::ConnectorError;

pub(super) type Check = Result<(), String>;

pub(super) fn expect(cond: bool, msg: impl FnOnce() -> String) -> Check {
    if cond { Ok(()) } else { Err(msg()) }
}

pub(super) struct Run<'a> {
    pub(super) h: &'a dyn ContractHarness,
    pub(super) report: ContractReport,
    pub(super) errors_seen: Vec<String>,
}

impl Run<'_> {
    pub(super) fn record(&mut self, name: &str, result: Check) {
        match result {
            Ok(()) => self.report.passed.push(name.to_owned()),
            Err(why) => self.report.failed.push((name.to_owned(), why)),
        }
    }

    pub(super) fn seen(&mut self, e: &ConnectorError) {
        self.errors_seen.push(format!("{e} / {e:?}"));
    }

    pub(super) async fn fresh(&self) -> Result<(MockServer, Arc<dyn PlatformConnector>), String> {
        let server = MockServer::start().await;
        let connector = self
            .h
            .connector(&server.uri())
            .map_err(|e| format!("cannot build the connector: {e}"))?;
        Ok((server, connector))
    }
}

/// Runs every check against `harness` and reports.
pub async fn run_contract_suite(harness: &dyn ContractHarness) -> ContractReport {
    let mut run = Run {
        h: harness,
        report: ContractReport {
            harness: harness.name(),
            ..ContractReport::default()
        },
        errors_seen: Vec::new(),
    };
    let r = run.publish_returns_ids().await;
    run.record("publish_returns_ids", r);
    match run.validation_sends_nothing().await {
        Some(r) => run.record("validation_sends_nothing", r),
        None => run.report.skipped.push((
            "validation_sends_nothing".into(),
            "no invalid request given".into(),
        )),
    }
    let r = run.rate_limit_429().await;
    run.record("rate_limit_429", r);
    let r = run.expired_token().await;
    run.record("expired_token", r);
    let r = run.server_error().await;
    run.record("server_error", r);
    match run.paging_exactly_once().await {
        Some(r) => run.record("paging_exactly_once", r),
        None => run.report.skipped.push((
            "paging_exactly_once".into(),
            "no comments capability".into(),
        )),
    }
    let r = run.webhook_samples().await;
    run.record("webhook_samples", r);
    let r = run.tampered_webhooks().await;
    run.record("tampered_webhooks", r);
    let r = run.garbage_webhooks().await;
    run.record("garbage_webhooks", r);
    match lookup::lookup_by_content_and_window(harness).await {
        Some(r) => run.record("lookup_by_content_and_window", r),
        None => run.report.skipped.push((
            "lookup_by_content_and_window".into(),
            "no post lookup".into(),
        )),
    }
    match lookup::recent_posts_newest_first(harness).await {
        Some(r) => run.record("recent_posts_newest_first", r),
        None => run.report.skipped.push((
            "recent_posts_newest_first".into(),
            "no recent-post listing".into(),
        )),
    }
    let r = run.no_secret_in_output().await;
    run.record("no_secret_in_output", r);
    run.report
}
