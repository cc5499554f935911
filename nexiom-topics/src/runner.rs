//! [`TopicRunner`]: a tenant's topic runs, from the stored items to the stored
//! topics.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use nexiom_core::{
    ItemEmbedding, Tenant, TenantId, Topic, TopicId, TopicRun, TopicScope, TopicSubject,
    TopicUpdate,
};
use nexiom_storage::Store;

use crate::embed::Embedder;
use crate::error::TopicsError;
use crate::identity::match_topics;
use crate::label::Labeller;
use crate::model::{TopicConfig, assignments, find_topics};

/// What runs and when.
#[derive(Debug, Clone, PartialEq)]
pub struct RunnerConfig {
    /// How topics are found.
    pub topics: TopicConfig,
    /// A post gets a run of its own from this many comments (default 20).
    pub min_post_comments: u32,
    /// A scope with fewer items is not clustered (default 20).
    pub min_items: usize,
    /// Vectors stored per storage call (default 500).
    pub store_batch: usize,
    /// Member texts shown to the labeller (default 5).
    pub label_examples: usize,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            topics: TopicConfig::default(),
            min_post_comments: 20,
            min_items: 20,
            store_batch: 500,
            label_examples: 5,
        }
    }
}

/// What one scope's run did.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeReport {
    /// The scope.
    pub scope: TopicScope,
    /// Items read.
    pub items: usize,
    /// Topics found.
    pub topics: usize,
    /// Of which new (the others kept a known id).
    pub new_topics: usize,
    /// Items left unassigned.
    pub unassigned: usize,
}

/// Runs a tenant's topics: reads the items of a window, embeds them (storing
/// each vector), clusters and labels them, matches the clusters to the scope's
/// known topics (a match keeps the topic's id, so its daily sizes make a
/// trend), and writes the run atomically.
///
/// - [`TopicRunner::run_tenant`]: the daily run (last 24 hours), the weekly
///   run (last 7 days) and a run per post with at least
///   [`RunnerConfig::min_post_comments`] comments of which one is recent.
/// - Sizes are recorded under the tenant's local day that most of the last
///   24 hours belong to (the local date of `now − 12 h`): a run at 03:00
///   records the previous day.
/// - An embedder that learns from its corpus ([`Embedder::fitted`], the local
///   one) is fitted on each window's texts first.
#[derive(Clone)]
pub struct TopicRunner {
    store: Arc<dyn Store>,
    embedder: Arc<dyn Embedder>,
    labeller: Option<Arc<dyn Labeller>>,
    config: RunnerConfig,
}

impl std::fmt::Debug for TopicRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicRunner")
            .field("embedder", &self.embedder)
            .field("labeller", &self.labeller)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl TopicRunner {
    /// A runner over `store` with `embedder`, no labeller and the default
    /// configuration.
    pub fn new(store: Arc<dyn Store>, embedder: Arc<dyn Embedder>) -> Self {
        TopicRunner {
            store,
            embedder,
            labeller: None,
            config: RunnerConfig::default(),
        }
    }

    /// The same runner naming topics with `labeller`.
    pub fn with_labeller(mut self, labeller: Arc<dyn Labeller>) -> Self {
        self.labeller = Some(labeller);
        self
    }

    /// The same runner with another configuration.
    pub fn with_config(mut self, config: RunnerConfig) -> Self {
        self.config = config;
        self
    }

    /// The day sizes are recorded under for a run at `now`.
    pub fn run_day(tenant: &Tenant, now: DateTime<Utc>) -> NaiveDate {
        (now - Duration::hours(12))
            .with_timezone(&tenant.time_zone)
            .date_naive()
    }

    /// The daily, weekly and per-post runs of one tenant at `now`. Each
    /// scope is tried even when another failed; the first failure is then
    /// returned (the scopes that ran have saved their runs).
    pub async fn run_tenant(
        &self,
        tenant: &Tenant,
        now: DateTime<Utc>,
    ) -> Result<Vec<ScopeReport>, TopicsError> {
        let mut reports = Vec::new();
        // Each scope is its own run: one that fails (a text the embedder
        // refuses, say) does not keep the others from theirs. The first
        // failure is returned once every scope was tried.
        let mut first_error = None;
        let mut keep = |result: Result<ScopeReport, TopicsError>| match result {
            Ok(report) => reports.push(report),
            Err(err) => {
                tracing::warn!(tenant = %tenant.id, error = %err, "a topic scope failed");
                first_error.get_or_insert(err);
            }
        };
        keep(
            self.run_scope(
                tenant,
                TopicScope::Daily,
                now - Duration::hours(24),
                now,
                now,
            )
            .await,
        );
        keep(
            self.run_scope(
                tenant,
                TopicScope::Weekly,
                now - Duration::days(7),
                now,
                now,
            )
            .await,
        );
        let posts = self
            .store
            .list_posts_with_comments(
                tenant.id,
                self.config.min_post_comments,
                now - Duration::hours(24),
            )
            .await?;
        for post in posts {
            keep(
                self.run_scope(
                    tenant,
                    TopicScope::Post(post),
                    DateTime::<Utc>::MIN_UTC,
                    now,
                    now,
                )
                .await,
            );
        }
        match first_error {
            Some(err) => Err(err),
            None => Ok(reports),
        }
    }

    /// One run over the items of `scope` created in `[from, to)`.
    pub async fn run_scope(
        &self,
        tenant: &Tenant,
        scope: TopicScope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<ScopeReport, TopicsError> {
        let items = self
            .store
            .list_topic_items(tenant.id, from, to, scope.post_id())
            .await?;
        let mut report = ScopeReport {
            scope,
            items: items.len(),
            topics: 0,
            new_topics: 0,
            unassigned: items.len(),
        };
        if items.len() < self.config.min_items.max(2) {
            return Ok(report);
        }
        let texts: Vec<String> = items.iter().map(|i| i.text.clone()).collect();
        let (embedder, vectors) = match self.embedder.fitted(&texts) {
            // Fitted on this window: its vectors are this window's only.
            Some(fitted) => {
                let vectors = fitted.embed(&texts).await?;
                self.store_vectors(tenant.id, fitted.model(), &items, &vectors, now)
                    .await?;
                (fitted, vectors)
            }
            None => {
                let vectors = self.reuse_or_embed(tenant.id, &items, &texts, now).await?;
                (Arc::clone(&self.embedder), vectors)
            }
        };

        let found = find_topics(&texts, &vectors, &self.config.topics);
        let known: Vec<Topic> = self
            .store
            .list_topics(tenant.id, scope)
            .await?
            .into_iter()
            .filter(|t| t.model == embedder.model())
            .collect();
        let previous: Vec<&[f32]> = known.iter().map(|t| t.centroid.as_slice()).collect();
        let current: Vec<&[f32]> = found.iter().map(|t| t.centroid.as_slice()).collect();
        let matched = match_topics(&previous, &current, self.config.topics.match_similarity);

        let mut updates = Vec::with_capacity(found.len());
        for (topic, known_index) in found.iter().zip(&matched) {
            let id = match known_index {
                Some(k) => known[*k].id,
                None => {
                    report.new_topics += 1;
                    TopicId::generate()
                }
            };
            let label = match &self.labeller {
                Some(labeller) => {
                    let examples: Vec<&str> = topic
                        .members
                        .iter()
                        .take(self.config.label_examples)
                        .map(|(i, _)| texts[*i].as_str())
                        .collect();
                    labeller
                        .label(tenant.id, &topic.terms, &examples)
                        .await
                        .unwrap_or_else(|| topic.label.clone())
                }
                None => topic.label.clone(),
            };
            let label = crate::label::fit_label(&label);
            updates.push(TopicUpdate {
                id,
                label,
                terms: topic.terms.clone(),
                centroid: topic.centroid.clone(),
                members: topic
                    .members
                    .iter()
                    .map(|(i, sim)| (items[*i].subject, *sim))
                    .collect(),
            });
        }
        let assigned = assignments(&found, items.len());
        let unassigned: Vec<TopicSubject> = items
            .iter()
            .zip(&assigned)
            .filter(|(_, a)| a.is_none())
            .map(|(i, _)| i.subject)
            .collect();
        report.topics = updates.len();
        report.unassigned = unassigned.len();
        self.store
            .save_topic_run(TopicRun {
                tenant_id: tenant.id,
                scope,
                model: embedder.model().to_owned(),
                day: Self::run_day(tenant, now),
                computed_at: now,
                topics: updates,
                unassigned,
            })
            .await?;
        Ok(report)
    }

    /// The items' vectors from an embedder that learns nothing from the
    /// window: those stored for its model are read back, only the others
    /// are embedded (and stored). A post's scope reads every comment since
    /// the post began, each day: without this, each run embedded them all
    /// again (for a paid API, a cost that grows with the post's age).
    async fn reuse_or_embed(
        &self,
        tenant: TenantId,
        items: &[nexiom_core::TopicItem],
        texts: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<Vec<f32>>, TopicsError> {
        let model = self.embedder.model();
        let dimension = self.embedder.dimension();
        let subjects: Vec<TopicSubject> = items.iter().map(|i| i.subject).collect();
        let mut stored = std::collections::HashMap::new();
        for chunk in subjects.chunks(self.config.store_batch.max(1)) {
            for e in self.store.get_embeddings(tenant, model, chunk).await? {
                if e.vector.len() == dimension {
                    stored.insert(e.subject, e.vector);
                }
            }
        }
        let missing: Vec<usize> = (0..items.len())
            .filter(|i| !stored.contains_key(&items[*i].subject))
            .collect();
        let mut fresh = Vec::new();
        if !missing.is_empty() {
            let missing_texts: Vec<String> = missing.iter().map(|i| texts[*i].clone()).collect();
            fresh = self.embedder.embed(&missing_texts).await?;
            let missing_items: Vec<nexiom_core::TopicItem> =
                missing.iter().map(|i| items[*i].clone()).collect();
            self.store_vectors(tenant, model, &missing_items, &fresh, now)
                .await?;
        }
        let mut fresh = missing
            .into_iter()
            .zip(fresh)
            .collect::<std::collections::HashMap<_, _>>();
        Ok((0..items.len())
            .map(|i| {
                fresh
                    .remove(&i)
                    .or_else(|| stored.remove(&items[i].subject))
                    .unwrap_or_default()
            })
            .collect())
    }

    async fn store_vectors(
        &self,
        tenant: TenantId,
        model: &str,
        items: &[nexiom_core::TopicItem],
        vectors: &[Vec<f32>],
        now: DateTime<Utc>,
    ) -> Result<(), TopicsError> {
        let rows: Vec<ItemEmbedding> = items
            .iter()
            .zip(vectors)
            .filter(|(_, v)| v.iter().any(|x| *x != 0.0))
            .map(|(item, v)| ItemEmbedding {
                tenant_id: tenant,
                subject: item.subject,
                model: model.to_owned(),
                vector: v.clone(),
                computed_at: now,
            })
            .collect();
        for chunk in rows.chunks(self.config.store_batch.max(1)) {
            self.store.upsert_embeddings(chunk).await?;
        }
        Ok(())
    }
}
