//! [`TopicStore`] on Postgres: `item_embeddings`, `topics`, `topic_members`,
//! `topic_days`.

use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use nexiom_core::{
    CommentId, ItemEmbedding, MessageId, PostId, TenantId, Topic, TopicCursor, TopicId, TopicItem,
    TopicMember, TopicMembersPage, TopicRun, TopicScope, TopicSubject, TopicSummary, validate,
};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::error::{Ref, corrupt, db, missing_ref};
use super::{PgStore, bound, limit};
use crate::error::{Result, StorageError};
use crate::traits::TopicStore;

#[derive(Debug, sqlx::FromRow)]
struct TopicRow {
    id: Uuid,
    tenant_id: Uuid,
    scope_kind: String,
    post_id: Option<Uuid>,
    label: String,
    terms: Vec<String>,
    centroid: Vec<f32>,
    model: String,
    size: i64,
    first_seen_on: NaiveDate,
    last_seen_on: NaiveDate,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TopicRow {
    fn into_entity(self) -> Result<Topic> {
        let scope = match (self.scope_kind.as_str(), self.post_id) {
            ("daily", None) => TopicScope::Daily,
            ("weekly", None) => TopicScope::Weekly,
            ("post", Some(p)) => TopicScope::Post(PostId::from_uuid(p)),
            (other, _) => return Err(corrupt("topic scope", other)),
        };
        Ok(Topic {
            id: TopicId::from_uuid(self.id),
            tenant_id: TenantId::from_uuid(self.tenant_id),
            scope,
            label: self.label,
            terms: self.terms,
            centroid: self.centroid,
            model: self.model,
            size: self.size,
            first_seen_on: self.first_seen_on,
            last_seen_on: self.last_seen_on,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

fn subject(kind: &str, id: Uuid) -> Result<TopicSubject> {
    match kind {
        "message" => Ok(TopicSubject::Message(MessageId::from_uuid(id))),
        "comment" => Ok(TopicSubject::Comment(CommentId::from_uuid(id))),
        other => Err(corrupt("subject kind", other)),
    }
}

fn subject_ref(s: &TopicSubject) -> Ref {
    match s {
        TopicSubject::Message(id) => Ref::Message(*id),
        TopicSubject::Comment(id) => Ref::Comment(*id),
    }
}

/// The first subject that is not the tenant's message or comment, as an error.
async fn missing_subject<'c, E>(
    executor: E,
    tenant: TenantId,
    subjects: &[TopicSubject],
) -> Result<Option<StorageError>>
where
    E: sqlx::Executor<'c, Database = Postgres>,
{
    let (kinds, ids) = columns(subjects);
    let found: Vec<bool> = sqlx::query_scalar(
        "SELECT CASE s.kind WHEN 'message' THEN EXISTS (SELECT 1 FROM messages m \
             WHERE m.tenant_id = $1 AND m.id = s.id) \
           ELSE EXISTS (SELECT 1 FROM comments c WHERE c.tenant_id = $1 AND c.id = s.id) END \
         FROM unnest($2::text[], $3::uuid[]) WITH ORDINALITY AS s (kind, id, n) ORDER BY s.n",
    )
    .bind(tenant.as_uuid())
    .bind(&kinds)
    .bind(&ids)
    .fetch_all(executor)
    .await
    .map_err(db)?;
    Ok(found
        .iter()
        .position(|f| !f)
        .map(|i| StorageError::unknown(subject_ref(&subjects[i]).entity(), subjects[i].uuid())))
}

fn columns(subjects: &[TopicSubject]) -> (Vec<String>, Vec<Uuid>) {
    subjects
        .iter()
        .map(|s| (s.kind().to_owned(), s.uuid()))
        .unzip()
}

fn scope_columns(scope: TopicScope) -> (&'static str, Option<Uuid>) {
    (scope.kind(), scope.post_id().map(|p| p.as_uuid()))
}

async fn write_run(tx: &mut Transaction<'_, Postgres>, run: &TopicRun) -> Result<Vec<Topic>> {
    let tenant = run.tenant_id.as_uuid();
    let (scope_kind, post) = scope_columns(run.scope);
    let (kinds, ids) = columns(&run.unassigned);
    sqlx::query(
        "DELETE FROM topic_members m USING unnest($4::text[], $5::uuid[]) AS s (kind, id) \
         WHERE m.tenant_id = $1 AND m.scope_kind = $2 AND m.post_id IS NOT DISTINCT FROM $3 \
           AND m.subject_kind = s.kind AND m.subject_id = s.id",
    )
    .bind(tenant)
    .bind(scope_kind)
    .bind(post)
    .bind(&kinds)
    .bind(&ids)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    let mut out = Vec::with_capacity(run.topics.len());
    for t in &run.topics {
        let size = t.members.len() as i64;
        let row: TopicRow = sqlx::query_as(
            "INSERT INTO topics (id, tenant_id, scope_kind, post_id, label, terms, centroid, \
                 model, size, first_seen_on, last_seen_on, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $11) \
             ON CONFLICT (id) DO UPDATE SET label = EXCLUDED.label, terms = EXCLUDED.terms, \
                 centroid = EXCLUDED.centroid, model = EXCLUDED.model, size = EXCLUDED.size, \
                 first_seen_on = LEAST(topics.first_seen_on, EXCLUDED.first_seen_on), \
                 last_seen_on = GREATEST(topics.last_seen_on, EXCLUDED.last_seen_on), \
                 updated_at = EXCLUDED.updated_at \
             RETURNING *",
        )
        .bind(t.id.as_uuid())
        .bind(tenant)
        .bind(scope_kind)
        .bind(post)
        .bind(&t.label)
        .bind(&t.terms)
        .bind(&t.centroid)
        .bind(&run.model)
        .bind(size)
        .bind(run.day)
        .bind(run.computed_at)
        .fetch_one(&mut **tx)
        .await
        .map_err(db)?;
        let subjects: Vec<TopicSubject> = t.members.iter().map(|(s, _)| *s).collect();
        let (kinds, ids) = columns(&subjects);
        let sims: Vec<f32> = t.members.iter().map(|(_, sim)| *sim).collect();
        sqlx::query(
            "INSERT INTO topic_members (topic_id, tenant_id, scope_kind, post_id, subject_kind, \
                 subject_id, created_at, similarity) \
             SELECT $1, $2, $3, $4, s.kind, s.id, \
                 COALESCE(m.created_at, c.created_at), s.sim \
             FROM unnest($5::text[], $6::uuid[], $7::real[]) AS s (kind, id, sim) \
             LEFT JOIN messages m ON s.kind = 'message' AND m.id = s.id \
             LEFT JOIN comments c ON s.kind = 'comment' AND c.id = s.id \
             ON CONFLICT (tenant_id, scope_kind, \
                 COALESCE(post_id, '00000000-0000-0000-0000-000000000000'::uuid), \
                 subject_kind, subject_id) \
             DO UPDATE SET topic_id = EXCLUDED.topic_id, similarity = EXCLUDED.similarity",
        )
        .bind(t.id.as_uuid())
        .bind(tenant)
        .bind(scope_kind)
        .bind(post)
        .bind(&kinds)
        .bind(&ids)
        .bind(&sims)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
        sqlx::query(
            "INSERT INTO topic_days (topic_id, tenant_id, day, size) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (topic_id, day) DO UPDATE SET size = EXCLUDED.size",
        )
        .bind(t.id.as_uuid())
        .bind(tenant)
        .bind(run.day)
        .bind(size)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
        out.push(row.into_entity()?);
    }
    Ok(out)
}

/// Every character Rust's `char::is_whitespace` (Unicode's `White_Space`)
/// counts, trimmed from a text to tell a blank one, as the in-memory store
/// does with `str::trim` (SQL's `btrim` alone trims only spaces, so a text of
/// a newline or a no-break space counted as an item here).
const WHITE_SPACE: &str = "\t\n\u{b}\u{c}\r \u{85}\u{a0}\u{1680}\u{2000}\u{2001}\u{2002}\u{2003}\
    \u{2004}\u{2005}\u{2006}\u{2007}\u{2008}\u{2009}\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}";

#[async_trait]
impl TopicStore for PgStore {
    async fn list_topic_items(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        post: Option<PostId>,
    ) -> Result<Vec<TopicItem>> {
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<(String, Uuid, Option<Uuid>, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT 'message', m.id, NULL::uuid, m.text, m.created_at FROM messages m \
             WHERE $4::uuid IS NULL AND m.tenant_id = $1 AND m.direction = 'inbound' \
               AND m.created_at >= $2 AND m.created_at < $3 AND btrim(m.text, $5) <> '' \
             UNION ALL \
             SELECT 'comment', c.id, c.post_id, c.text, c.created_at FROM comments c \
             WHERE c.tenant_id = $1 AND ($4::uuid IS NULL OR c.post_id = $4) \
               AND c.created_at >= $2 AND c.created_at < $3 AND btrim(c.text, $5) <> '' \
             ORDER BY 5, 2",
        )
        .bind(tenant.as_uuid())
        .bind(bound(from))
        .bind(bound(to))
        .bind(post.map(|p| p.as_uuid()))
        .bind(WHITE_SPACE)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        rows.into_iter()
            .map(|(kind, id, post, text, created_at)| {
                Ok(TopicItem {
                    subject: subject(&kind, id)?,
                    post_id: post.map(PostId::from_uuid),
                    text,
                    created_at,
                })
            })
            .collect()
    }

    async fn list_posts_with_comments(
        &self,
        tenant: TenantId,
        min_comments: u32,
        since: DateTime<Utc>,
    ) -> Result<Vec<PostId>> {
        let mut tx = self.scoped(tenant).await?;
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT post_id FROM comments WHERE tenant_id = $1 GROUP BY post_id \
             HAVING count(*) >= $2 AND max(created_at) >= $3 ORDER BY post_id",
        )
        .bind(tenant.as_uuid())
        .bind(i64::from(min_comments))
        .bind(bound(since))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(ids.into_iter().map(PostId::from_uuid).collect())
    }

    async fn upsert_embeddings(&self, embeddings: &[ItemEmbedding]) -> Result<u64> {
        for e in embeddings {
            e.validate()?;
        }
        let mut by_tenant: Vec<TenantId> = embeddings.iter().map(|e| e.tenant_id).collect();
        by_tenant.sort_unstable();
        by_tenant.dedup();
        // A batch of one tenant (what the topic runner writes) runs scoped to
        // it; a batch of several tenants is cross-tenant work, on the scan
        // pool, so that it stays one transaction.
        let mut tx = match by_tenant.as_slice() {
            [tenant] => self.scoped(*tenant).await?,
            _ => self.scan_pool.begin().await.map_err(db)?,
        };
        for tenant in by_tenant {
            let subjects: Vec<TopicSubject> = embeddings
                .iter()
                .filter(|e| e.tenant_id == tenant)
                .map(|e| e.subject)
                .collect();
            if let Some(err) = missing_ref(&mut *tx, tenant, &[]).await? {
                return Err(err);
            }
            if let Some(err) = missing_subject(&mut *tx, tenant, &subjects).await? {
                return Err(err);
            }
        }
        for e in embeddings {
            sqlx::query(
                "INSERT INTO item_embeddings (tenant_id, subject_kind, subject_id, model, dims, \
                     vector, computed_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (tenant_id, subject_kind, subject_id, model) DO UPDATE SET \
                     dims = EXCLUDED.dims, vector = EXCLUDED.vector, \
                     computed_at = EXCLUDED.computed_at",
            )
            .bind(e.tenant_id.as_uuid())
            .bind(e.subject.kind())
            .bind(e.subject.uuid())
            .bind(&e.model)
            .bind(i32::try_from(e.vector.len()).unwrap_or(i32::MAX))
            .bind(&e.vector)
            .bind(e.computed_at)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(embeddings.len() as u64)
    }

    async fn get_embeddings(
        &self,
        tenant: TenantId,
        model: &str,
        subjects: &[TopicSubject],
    ) -> Result<Vec<ItemEmbedding>> {
        validate::key("model", model)?;
        let (kinds, ids) = columns(subjects);
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<(String, Uuid, Vec<f32>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT e.subject_kind, e.subject_id, e.vector, e.computed_at \
             FROM unnest($3::text[], $4::uuid[]) WITH ORDINALITY AS s (kind, id, n) \
             JOIN item_embeddings e ON e.tenant_id = $1 AND e.model = $2 \
                 AND e.subject_kind = s.kind AND e.subject_id = s.id \
             ORDER BY s.n",
        )
        .bind(tenant.as_uuid())
        .bind(model)
        .bind(&kinds)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        rows.into_iter()
            .map(|(kind, id, vector, computed_at)| {
                Ok(ItemEmbedding {
                    tenant_id: tenant,
                    subject: subject(&kind, id)?,
                    model: model.to_owned(),
                    vector,
                    computed_at,
                })
            })
            .collect()
    }

    async fn list_topics(&self, tenant: TenantId, scope: TopicScope) -> Result<Vec<Topic>> {
        let (kind, post) = scope_columns(scope);
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<TopicRow> = sqlx::query_as(
            "SELECT * FROM topics WHERE tenant_id = $1 AND scope_kind = $2 \
               AND post_id IS NOT DISTINCT FROM $3 ORDER BY last_seen_on DESC, id",
        )
        .bind(tenant.as_uuid())
        .bind(kind)
        .bind(post)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        rows.into_iter().map(TopicRow::into_entity).collect()
    }

    async fn save_topic_run(&self, run: TopicRun) -> Result<Vec<Topic>> {
        run.validate()?;
        let refs: Vec<Ref> = run.scope.post_id().map(Ref::Post).into_iter().collect();
        let ids: Vec<Uuid> = run.topics.iter().map(|t| t.id.as_uuid()).collect();
        let (kind, post) = scope_columns(run.scope);
        // A cross-tenant lookup (a topic id of another tenant must be seen to
        // be refused), read before the scoped transaction begins so that the
        // operation never holds two connections; reported after the reference
        // check, as before.
        let foreign: Option<Uuid> = sqlx::query_scalar(
            "SELECT t.id FROM topics t JOIN unnest($1::uuid[]) WITH ORDINALITY AS s (id, n) \
                 ON t.id = s.id \
             WHERE NOT (t.tenant_id = $2 AND t.scope_kind = $3 \
                 AND t.post_id IS NOT DISTINCT FROM $4) \
             ORDER BY s.n LIMIT 1",
        )
        .bind(&ids)
        .bind(run.tenant_id.as_uuid())
        .bind(kind)
        .bind(post)
        .fetch_optional(&self.scan_pool)
        .await
        .map_err(db)?;
        let mut tx = self.scoped(run.tenant_id).await?;
        if let Some(err) = missing_ref(&mut *tx, run.tenant_id, &refs).await? {
            return Err(err);
        }
        if let Some(id) = foreign {
            return Err(StorageError::unknown("topic", id));
        }
        let subjects: Vec<TopicSubject> = run
            .topics
            .iter()
            .flat_map(|t| t.members.iter().map(|(s, _)| *s))
            .chain(run.unassigned.iter().copied())
            .collect();
        if let Some(err) = missing_subject(&mut *tx, run.tenant_id, &subjects).await? {
            return Err(err);
        }
        let topics = write_run(&mut tx, &run).await?;
        tx.commit().await.map_err(db)?;
        Ok(topics)
    }

    async fn top_topics(
        &self,
        tenant: TenantId,
        scope: TopicScope,
        from: NaiveDate,
        to: NaiveDate,
        limit_to: u32,
    ) -> Result<Vec<TopicSummary>> {
        if from > to {
            return Ok(Vec::new());
        }
        let (kind, post) = scope_columns(scope);
        let yesterday = to.checked_sub_signed(Duration::days(1));
        let week_ago = to.checked_sub_signed(Duration::days(7));
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<TopicSummaryRow> = sqlx::query_as(
            "SELECT t.*, s.total, \
                 COALESCE((SELECT d.size FROM topic_days d WHERE d.topic_id = t.id AND d.day = $5), 0) AS today, \
                 COALESCE((SELECT d.size FROM topic_days d WHERE d.topic_id = t.id AND d.day = $6), 0) AS yesterday, \
                 COALESCE((SELECT d.size FROM topic_days d WHERE d.topic_id = t.id AND d.day = $7), 0) AS week_ago \
             FROM (SELECT topic_id, sum(size)::bigint AS total FROM topic_days \
                   WHERE tenant_id = $1 AND day BETWEEN $4 AND $5 GROUP BY topic_id) s \
             JOIN topics t ON t.id = s.topic_id \
             WHERE t.tenant_id = $1 AND t.scope_kind = $2 AND t.post_id IS NOT DISTINCT FROM $3 \
               AND s.total > 0 \
             ORDER BY s.total DESC, t.id LIMIT $8",
        )
        .bind(tenant.as_uuid())
        .bind(kind)
        .bind(post)
        .bind(from)
        .bind(to)
        .bind(yesterday)
        .bind(week_ago)
        .bind(limit(limit_to))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        rows.into_iter()
            .map(|r| {
                Ok(TopicSummary {
                    size: r.total,
                    today: r.today,
                    yesterday: r.yesterday,
                    week_ago: r.week_ago,
                    topic: r.topic.into_entity()?,
                })
            })
            .collect()
    }

    async fn topics_for_post(&self, tenant: TenantId, post: PostId) -> Result<Vec<Topic>> {
        let mut tx = self.scoped(tenant).await?;
        let rows: Vec<TopicRow> = sqlx::query_as(
            "SELECT * FROM topics WHERE tenant_id = $1 AND scope_kind = 'post' \
               AND post_id = $2 ORDER BY size DESC, id",
        )
        .bind(tenant.as_uuid())
        .bind(post.as_uuid())
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        rows.into_iter().map(TopicRow::into_entity).collect()
    }

    async fn messages_in_topic(
        &self,
        tenant: TenantId,
        topic: TopicId,
        cursor: Option<TopicCursor>,
        limit_to: u32,
    ) -> Result<TopicMembersPage> {
        let mut tx = self.scoped(tenant).await?;
        super::require_row(&mut tx, "topics", "topic", tenant, topic.as_uuid()).await?;
        let rows: Vec<(String, Uuid, DateTime<Utc>, f32, String)> = sqlx::query_as(
            "SELECT tm.subject_kind, tm.subject_id, tm.created_at, tm.similarity, \
                 COALESCE(m.text, c.text, '') \
             FROM topic_members tm \
             LEFT JOIN messages m ON tm.subject_kind = 'message' AND m.id = tm.subject_id \
             LEFT JOIN comments c ON tm.subject_kind = 'comment' AND c.id = tm.subject_id \
             WHERE tm.topic_id = $1 AND tm.tenant_id = $2 \
               AND ($3::timestamptz IS NULL OR (tm.created_at, tm.subject_id) < ($3, $4)) \
             ORDER BY tm.created_at DESC, tm.subject_id DESC LIMIT $5",
        )
        .bind(topic.as_uuid())
        .bind(tenant.as_uuid())
        .bind(cursor.map(|c| c.created_at))
        .bind(cursor.map(|c| c.id))
        .bind(limit(limit_to) + 1)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let mut members = rows
            .into_iter()
            .map(|(kind, id, created_at, similarity, text)| {
                Ok(TopicMember {
                    subject: subject(&kind, id)?,
                    text,
                    created_at,
                    similarity,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let more = members.len() > limit_to as usize;
        members.truncate(limit_to as usize);
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

#[derive(Debug, sqlx::FromRow)]
struct TopicSummaryRow {
    #[sqlx(flatten)]
    topic: TopicRow,
    total: i64,
    today: i64,
    yesterday: i64,
    week_ago: i64,
}

#[cfg(test)]
mod white_space_tests {
    use super::WHITE_SPACE;

    #[test]
    fn white_space_is_what_str_trim_trims() {
        let listed: Vec<char> = WHITE_SPACE.chars().collect();
        let every: Vec<char> = (0..=u32::from(char::MAX))
            .filter_map(char::from_u32)
            .filter(|c| c.is_whitespace())
            .collect();
        assert_eq!(listed, every);
    }
}
