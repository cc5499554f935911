//! Topics, their members and daily sizes, and item vectors.

use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use nexiom_core::{
    ItemEmbedding, MessageDirection, PostId, TenantId, Topic, TopicCursor, TopicId, TopicItem,
    TopicMember, TopicMembersPage, TopicRun, TopicScope, TopicSubject, TopicSummary,
};

use super::{Inner, MemoryStore, limit_len, require_ref};
use crate::error::{Result, StorageError};
use crate::traits::TopicStore;

/// The smallest subject (messages sort before comments, the nil id first).
const FIRST_SUBJECT: TopicSubject =
    TopicSubject::Message(nexiom_core::MessageId::from_uuid(uuid::Uuid::nil()));

/// A membership: the topic and the similarity to its centroid.
#[derive(Debug, Clone, Copy)]
pub(super) struct Membership {
    pub(super) topic: TopicId,
    pub(super) similarity: f32,
}

impl Inner {
    /// `UnknownReference` unless the subject is the tenant's message or comment.
    fn require_subject(&self, tenant: TenantId, subject: &TopicSubject) -> Result<()> {
        match subject {
            TopicSubject::Message(id) => require_ref(&self.messages, tenant, id, "message"),
            TopicSubject::Comment(id) => require_ref(&self.comments, tenant, id, "comment"),
        }
    }

    /// The subject's text and time (it exists: checked on write).
    fn subject_text(&self, subject: &TopicSubject) -> Option<(String, DateTime<Utc>)> {
        match subject {
            TopicSubject::Message(id) => self
                .messages
                .get(id)
                .map(|m| (m.text.clone(), m.created_at)),
            TopicSubject::Comment(id) => self
                .comments
                .get(id)
                .map(|c| (c.text.clone(), c.created_at)),
        }
    }

    fn list_topic_items(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        post: Option<PostId>,
    ) -> Vec<TopicItem> {
        let mut items: Vec<TopicItem> = Vec::new();
        if post.is_none() {
            items.extend(
                self.messages
                    .values()
                    .filter(|m| {
                        m.tenant_id == tenant
                            && m.direction == MessageDirection::Inbound
                            && !m.text.trim().is_empty()
                            && m.created_at >= from
                            && m.created_at < to
                    })
                    .map(|m| TopicItem {
                        subject: TopicSubject::Message(m.id),
                        post_id: None,
                        text: m.text.clone(),
                        created_at: m.created_at,
                    }),
            );
        }
        items.extend(
            self.comments
                .values()
                .filter(|c| {
                    c.tenant_id == tenant
                        && post.is_none_or(|p| c.post_id == p)
                        && !c.text.trim().is_empty()
                        && c.created_at >= from
                        && c.created_at < to
                })
                .map(|c| TopicItem {
                    subject: TopicSubject::Comment(c.id),
                    post_id: Some(c.post_id),
                    text: c.text.clone(),
                    created_at: c.created_at,
                }),
        );
        items.sort_by_key(|i| (i.created_at, i.subject.uuid()));
        items
    }

    fn list_posts_with_comments(
        &self,
        tenant: TenantId,
        min_comments: u32,
        since: DateTime<Utc>,
    ) -> Vec<PostId> {
        let mut counts: std::collections::BTreeMap<PostId, (u64, bool)> = Default::default();
        for c in self.comments.values().filter(|c| c.tenant_id == tenant) {
            let entry = counts.entry(c.post_id).or_insert((0, false));
            entry.0 += 1;
            entry.1 |= c.created_at >= since;
        }
        counts
            .into_iter()
            .filter(|(_, (n, recent))| *recent && *n >= u64::from(min_comments))
            .map(|(p, _)| p)
            .collect()
    }

    fn upsert_embeddings(&mut self, embeddings: &[ItemEmbedding]) -> Result<u64> {
        for e in embeddings {
            e.validate()?;
        }
        for e in embeddings {
            self.require_tenant(e.tenant_id)?;
            self.require_subject(e.tenant_id, &e.subject)?;
        }
        for e in embeddings {
            self.embeddings
                .insert((e.subject, e.model.clone()), e.clone());
        }
        Ok(embeddings.len() as u64)
    }

    fn save_topic_run(&mut self, run: TopicRun) -> Result<Vec<Topic>> {
        run.validate()?;
        self.require_tenant(run.tenant_id)?;
        if let TopicScope::Post(post) = run.scope {
            require_ref(&self.posts, run.tenant_id, &post, "post")?;
        }
        for t in &run.topics {
            if let Some(known) = self.topics.get(&t.id)
                && (known.tenant_id != run.tenant_id || known.scope != run.scope)
            {
                return Err(StorageError::unknown("topic", t.id));
            }
        }
        for t in &run.topics {
            for (s, _) in &t.members {
                self.require_subject(run.tenant_id, s)?;
            }
        }
        for s in &run.unassigned {
            self.require_subject(run.tenant_id, s)?;
        }
        // Checks done: write.
        let key = |s: TopicSubject| (run.tenant_id, run.scope, s);
        for s in &run.unassigned {
            self.topic_members.remove(&key(*s));
        }
        let mut out = Vec::with_capacity(run.topics.len());
        for t in run.topics {
            let size = t.members.len() as i64;
            for (s, similarity) in &t.members {
                self.topic_members.insert(
                    key(*s),
                    Membership {
                        topic: t.id,
                        similarity: *similarity,
                    },
                );
            }
            let topic = match self.topics.get(&t.id) {
                Some(known) => Topic {
                    label: t.label,
                    terms: t.terms,
                    centroid: t.centroid,
                    model: run.model.clone(),
                    size,
                    first_seen_on: known.first_seen_on.min(run.day),
                    last_seen_on: known.last_seen_on.max(run.day),
                    updated_at: run.computed_at,
                    ..known.clone()
                },
                None => Topic {
                    id: t.id,
                    tenant_id: run.tenant_id,
                    scope: run.scope,
                    label: t.label,
                    terms: t.terms,
                    centroid: t.centroid,
                    model: run.model.clone(),
                    size,
                    first_seen_on: run.day,
                    last_seen_on: run.day,
                    created_at: run.computed_at,
                    updated_at: run.computed_at,
                },
            };
            self.topics.insert(topic.id, topic.clone());
            self.topic_days.insert((topic.id, run.day), size);
            out.push(topic);
        }
        Ok(out)
    }

    fn day_size(&self, topic: TopicId, day: Option<NaiveDate>) -> i64 {
        day.and_then(|d| self.topic_days.get(&(topic, d)).copied())
            .unwrap_or(0)
    }

    fn top_topics(
        &self,
        tenant: TenantId,
        scope: TopicScope,
        from: NaiveDate,
        to: NaiveDate,
        limit: u32,
    ) -> Vec<TopicSummary> {
        if from > to {
            return Vec::new();
        }
        let mut out: Vec<TopicSummary> = self
            .topics
            .values()
            .filter(|t| t.tenant_id == tenant && t.scope == scope)
            .filter_map(|t| {
                let size: i64 = self
                    .topic_days
                    .range((t.id, from)..=(t.id, to))
                    .map(|(_, n)| *n)
                    .sum();
                (size > 0).then(|| TopicSummary {
                    topic: t.clone(),
                    size,
                    today: self.day_size(t.id, Some(to)),
                    yesterday: self.day_size(t.id, to.checked_sub_signed(Duration::days(1))),
                    week_ago: self.day_size(t.id, to.checked_sub_signed(Duration::days(7))),
                })
            })
            .collect();
        out.sort_by(|a, b| b.size.cmp(&a.size).then(a.topic.id.cmp(&b.topic.id)));
        out.truncate(limit_len(limit));
        out
    }

    fn messages_in_topic(
        &self,
        tenant: TenantId,
        topic: TopicId,
        cursor: Option<TopicCursor>,
        limit: u32,
    ) -> Result<TopicMembersPage> {
        let t = self
            .topics
            .get(&topic)
            .filter(|t| t.tenant_id == tenant)
            .ok_or_else(|| StorageError::not_found("topic", topic))?;
        let mut members: Vec<TopicMember> = self
            .topic_members
            .range((tenant, t.scope, FIRST_SUBJECT)..)
            .take_while(|((tn, sc, _), _)| *tn == tenant && *sc == t.scope)
            .filter(|(_, m)| m.topic == topic)
            .filter_map(|((_, _, s), m)| {
                let (text, created_at) = self.subject_text(s)?;
                Some(TopicMember {
                    subject: *s,
                    text,
                    created_at,
                    similarity: m.similarity,
                })
            })
            .filter(|m| {
                cursor.is_none_or(|c| (m.created_at, m.subject.uuid()) < (c.created_at, c.id))
            })
            .collect();
        members.sort_by(|a, b| {
            (b.created_at, b.subject.uuid()).cmp(&(a.created_at, a.subject.uuid()))
        });
        let limit = limit_len(limit);
        let more = members.len() > limit;
        members.truncate(limit);
        let next = if more {
            members.last().map(|m| TopicCursor {
                created_at: m.created_at,
                id: m.subject.uuid(),
            })
        } else {
            None
        };
        Ok(TopicMembersPage { members, next })
    }
}

#[async_trait]
impl TopicStore for MemoryStore {
    async fn list_topic_items(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        post: Option<PostId>,
    ) -> Result<Vec<TopicItem>> {
        Ok(self.lock().list_topic_items(tenant, from, to, post))
    }

    async fn list_posts_with_comments(
        &self,
        tenant: TenantId,
        min_comments: u32,
        since: DateTime<Utc>,
    ) -> Result<Vec<PostId>> {
        Ok(self
            .lock()
            .list_posts_with_comments(tenant, min_comments, since))
    }

    async fn upsert_embeddings(&self, embeddings: &[ItemEmbedding]) -> Result<u64> {
        self.lock().upsert_embeddings(embeddings)
    }

    async fn get_embeddings(
        &self,
        tenant: TenantId,
        model: &str,
        subjects: &[TopicSubject],
    ) -> Result<Vec<ItemEmbedding>> {
        nexiom_core::validate::key("model", model)?;
        let inner = self.lock();
        Ok(subjects
            .iter()
            .filter_map(|s| inner.embeddings.get(&(*s, model.to_owned())))
            .filter(|e| e.tenant_id == tenant)
            .cloned()
            .collect())
    }

    async fn list_topics(&self, tenant: TenantId, scope: TopicScope) -> Result<Vec<Topic>> {
        let inner = self.lock();
        let mut out: Vec<Topic> = inner
            .topics
            .values()
            .filter(|t| t.tenant_id == tenant && t.scope == scope)
            .cloned()
            .collect();
        out.sort_by(|a, b| b.last_seen_on.cmp(&a.last_seen_on).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    async fn save_topic_run(&self, run: TopicRun) -> Result<Vec<Topic>> {
        self.lock().save_topic_run(run)
    }

    async fn top_topics(
        &self,
        tenant: TenantId,
        scope: TopicScope,
        from: NaiveDate,
        to: NaiveDate,
        limit: u32,
    ) -> Result<Vec<TopicSummary>> {
        Ok(self.lock().top_topics(tenant, scope, from, to, limit))
    }

    async fn topics_for_post(&self, tenant: TenantId, post: PostId) -> Result<Vec<Topic>> {
        let inner = self.lock();
        let mut out: Vec<Topic> = inner
            .topics
            .values()
            .filter(|t| t.tenant_id == tenant && t.scope == TopicScope::Post(post))
            .cloned()
            .collect();
        out.sort_by(|a, b| b.size.cmp(&a.size).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    async fn messages_in_topic(
        &self,
        tenant: TenantId,
        topic: TopicId,
        cursor: Option<TopicCursor>,
        limit: u32,
    ) -> Result<TopicMembersPage> {
        self.lock().messages_in_topic(tenant, topic, cursor, limit)
    }
}
