//! Topics: groups of inbound messages and comments about one subject, their
//! members, daily sizes, and the stored vectors they come from.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::CoreError;
use crate::id::{CommentId, MessageId, PostId, TenantId, TopicId};
use crate::validate;

/// The longest topic label, in bytes.
pub const MAX_TOPIC_LABEL_LEN: usize = 200;

/// What a topic groups: the tenant's messages and comments of the last day, of
/// the last 7 days, or the comments of one post.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "post_id")]
pub enum TopicScope {
    /// Messages and comments of the last 24 hours.
    Daily,
    /// Messages and comments of the last 7 days.
    Weekly,
    /// The comments of one post.
    Post(PostId),
}

impl TopicScope {
    /// `daily`, `weekly` or `post`.
    pub fn kind(&self) -> &'static str {
        match self {
            TopicScope::Daily => "daily",
            TopicScope::Weekly => "weekly",
            TopicScope::Post(_) => "post",
        }
    }

    /// The post, for a post scope.
    pub fn post_id(&self) -> Option<PostId> {
        match self {
            TopicScope::Post(p) => Some(*p),
            _ => None,
        }
    }
}

/// A message or a comment: what is embedded and clustered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum TopicSubject {
    /// An inbound message.
    Message(MessageId),
    /// A comment.
    Comment(CommentId),
}

impl TopicSubject {
    /// `message` or `comment`.
    pub fn kind(&self) -> &'static str {
        match self {
            TopicSubject::Message(_) => "message",
            TopicSubject::Comment(_) => "comment",
        }
    }

    /// The underlying id.
    pub fn uuid(&self) -> uuid::Uuid {
        match self {
            TopicSubject::Message(id) => id.as_uuid(),
            TopicSubject::Comment(id) => id.as_uuid(),
        }
    }
}

/// A text to cluster, as storage reads it: an inbound message or a comment
/// with non-empty text.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicItem {
    /// Which message or comment.
    pub subject: TopicSubject,
    /// For a comment, its post.
    pub post_id: Option<PostId>,
    /// The text.
    pub text: String,
    /// Platform time.
    pub created_at: DateTime<Utc>,
}

/// A stored vector of a message or comment.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemEmbedding {
    /// Owner.
    pub tenant_id: TenantId,
    /// Which message or comment.
    pub subject: TopicSubject,
    /// The embedding model's name; vectors of different models are never compared.
    pub model: String,
    /// The vector (finite values, at least one).
    pub vector: Vec<f32>,
    /// When it was computed.
    pub computed_at: DateTime<Utc>,
}

impl ItemEmbedding {
    /// Checks the model name and the vector.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate::key("model", &self.model)?;
        validate_vector("vector", &self.vector)
    }
}

fn validate_vector(field: &'static str, v: &[f32]) -> Result<(), CoreError> {
    if v.is_empty() {
        return Err(CoreError::invalid(
            field,
            "a vector needs at least one value",
        ));
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(CoreError::invalid(field, "every value must be finite"));
    }
    Ok(())
}

/// A topic of a tenant. Its id stays the same from one run to the next while
/// the subject goes on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Topic {
    /// Id.
    pub id: TopicId,
    /// Owner.
    pub tenant_id: TenantId,
    /// What it groups.
    pub scope: TopicScope,
    /// A short name (the top terms, or a labeller's).
    pub label: String,
    /// Top distinguishing terms, best first.
    pub terms: Vec<String>,
    /// The unit centroid of its members' vectors (how the next run recognizes it).
    pub centroid: Vec<f32>,
    /// The embedding model of the centroid.
    pub model: String,
    /// Members at the last run.
    pub size: i64,
    /// The (local) day of its first run.
    pub first_seen_on: NaiveDate,
    /// The day of its last run.
    pub last_seen_on: NaiveDate,
    /// Creation.
    pub created_at: DateTime<Utc>,
    /// Last run.
    pub updated_at: DateTime<Utc>,
}

/// A topic as one run found it; `id` is a known topic's (kept identity) or a
/// new one.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicUpdate {
    /// The topic's id.
    pub id: TopicId,
    /// Label.
    pub label: String,
    /// Terms.
    pub terms: Vec<String>,
    /// Unit centroid.
    pub centroid: Vec<f32>,
    /// Members, with their similarity to the centroid.
    pub members: Vec<(TopicSubject, f32)>,
}

/// Everything one run writes, atomically: the topics found (created or
/// updated), their members (each subject in at most one topic of the scope:
/// a subject's earlier membership in the scope is replaced), the subjects that
/// the run left unassigned (their membership in the scope is removed), and
/// each topic's size on `day`.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicRun {
    /// Owner.
    pub tenant_id: TenantId,
    /// Scope.
    pub scope: TopicScope,
    /// The embedding model of the centroids.
    pub model: String,
    /// The day the sizes are recorded for.
    pub day: NaiveDate,
    /// When the run happened.
    pub computed_at: DateTime<Utc>,
    /// Topics found.
    pub topics: Vec<TopicUpdate>,
    /// Subjects of the run in no topic.
    pub unassigned: Vec<TopicSubject>,
}

impl TopicRun {
    /// Checks labels, terms, centroids, similarities, and that no topic id nor
    /// subject appears twice.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate::key("model", &self.model)?;
        let mut ids = std::collections::HashSet::new();
        let mut subjects = std::collections::HashSet::new();
        for t in &self.topics {
            if !ids.insert(t.id) {
                return Err(CoreError::invalid(
                    "topics",
                    format!("topic {} appears twice", t.id),
                ));
            }
            if t.label.trim().is_empty() || t.label.len() > MAX_TOPIC_LABEL_LEN {
                return Err(CoreError::invalid(
                    "label",
                    format!("a label needs 1 to {MAX_TOPIC_LABEL_LEN} bytes"),
                ));
            }
            if t.label.contains('\0') || t.terms.iter().any(|x| x.contains('\0') || x.is_empty()) {
                return Err(CoreError::invalid(
                    "terms",
                    "no empty term and no NUL character",
                ));
            }
            validate_vector("centroid", &t.centroid)?;
            for (s, sim) in &t.members {
                if !sim.is_finite() {
                    return Err(CoreError::invalid("members", "similarities must be finite"));
                }
                if !subjects.insert(*s) {
                    return Err(CoreError::invalid(
                        "members",
                        format!("{} {} is in two topics", s.kind(), s.uuid()),
                    ));
                }
            }
        }
        for s in &self.unassigned {
            if !subjects.insert(*s) {
                return Err(CoreError::invalid(
                    "unassigned",
                    format!(
                        "{} {} is both in a topic and unassigned",
                        s.kind(),
                        s.uuid()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A topic with its trend, as the storage's `top_topics` lists them.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicSummary {
    /// The topic.
    pub topic: Topic,
    /// Its daily sizes summed over the range asked.
    pub size: i64,
    /// Its size on the range's last day.
    pub today: i64,
    /// On the day before.
    pub yesterday: i64,
    /// Seven days before the last day.
    pub week_ago: i64,
}

/// One member of a topic, with its text, as `messages_in_topic` pages them.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicMember {
    /// The message or comment.
    pub subject: TopicSubject,
    /// Its text.
    pub text: String,
    /// Its platform time.
    pub created_at: DateTime<Utc>,
    /// Similarity to the topic's centroid when assigned.
    pub similarity: f32,
}

/// Where the next page of members starts: after this `(created_at, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicCursor {
    /// The last member's time.
    pub created_at: DateTime<Utc>,
    /// The last member's id.
    pub id: uuid::Uuid,
}

/// A page of members, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicMembersPage {
    /// Members.
    pub members: Vec<TopicMember>,
    /// The cursor of the next page; `None` at the end.
    pub next: Option<TopicCursor>,
}
