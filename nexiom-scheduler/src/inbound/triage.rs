//! Triage step: every new inbound message and comment gets one stored
//! decision, and carries its triage and confidence.

use std::collections::{HashMap, HashSet};

use futures_util::stream::{self, StreamExt};

use nexiom_core::{
    AiDecision, ChannelId, ContactId, ConversationId, DecisionSubject, NewAiDecision, TenantId,
    Triage,
};
use nexiom_triage::{ReplyKind, ReplyRequest, TriageConfig, TriageEngine};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{InboundError, InboundPipeline};

/// The decision reason when the reply generator failed (the item is escalated
/// and the error is in the snapshot).
pub const REASON_GENERATOR_ERROR: &str = "generator_error";

/// The decision reason when the tenant's stored rules do not compile (the
/// item is escalated and the compile error is in the snapshot).
pub const REASON_RULES_INVALID: &str = "rules_invalid";

/// The decision reason of an item a person answered before triage reached it
/// (its reply state is `superseded`): it is decided IGNORE, the reply
/// generator is not called and no escalation notifies anyone; the rules' own
/// outcome (before the generator and AI control) is kept in the snapshot as
/// `"rules_triage"`. An item answered while its triage was being decided
/// keeps the rules' decision (an escalation stays one, in the inbox too);
/// only its notification is held back, by the store.
pub const REASON_ANSWERED_BY_PERSON: &str = "answered_by_person";

/// Items of a tenant triage decides at once by default (see
/// [`InboundPipeline::with_triage_concurrency`]).
pub const DEFAULT_TRIAGE_CONCURRENCY: usize = 8;

/// What one triage batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriageReport {
    /// Messages that got their decision.
    pub messages: u64,
    /// Comments that got their decision.
    pub comments: u64,
    /// Of those, items escalated because the generator failed or the rules did
    /// not compile.
    pub escalated_on_error: u64,
    /// Items (or whole tenants, counted once) that could not be triaged in
    /// this batch because a read or write failed; they stay untriaged and are
    /// tried again by the next batch, and never stop the batch for the others.
    #[serde(default)]
    pub failed: u64,
}

/// The item being triaged.
struct Item<'a> {
    subject: DecisionSubject,
    channel: ChannelId,
    kind: ReplyKind,
    text: &'a str,
    has_media: bool,
    contact_name: Option<&'a str>,
    /// A person answered it already (its reply state is `superseded`).
    answered: bool,
}

/// Whether a person answered the item before its triage (see
/// [`REASON_ANSWERED_BY_PERSON`]).
fn answered(reply: Option<&nexiom_core::ReplyStatus>) -> bool {
    reply.is_some_and(|r| r.state == nexiom_core::ReplyState::Superseded)
}

/// A tenant's compiled rules (or why they do not compile) and AI switch.
struct TenantTriage {
    engine: Result<TriageEngine, String>,
    ai_control_on: bool,
    settings: std::sync::Arc<nexiom_core::TenantSettings>,
}

impl InboundPipeline {
    /// Triages up to `limit` untriaged inbound messages and `limit` untriaged
    /// comments of every tenant, oldest first. Each tenant's rules and
    /// ignore-examples are compiled once per batch. For an AUTO_REPLY
    /// candidate the reply generator drafts the answer (its draft is kept in
    /// the decision's snapshot for the auto-reply step); it is not called while
    /// AI control is OFF unless the deciding rule has a `confidence_min` (whose
    /// outcome depends on it). A generator error escalates the item with
    /// reason [`REASON_GENERATOR_ERROR`]; stored rules that no longer compile
    /// escalate every item with [`REASON_RULES_INVALID`]: a person always sees
    /// them. An item a person answered before its triage (reply state
    /// `superseded`) is decided IGNORE with [`REASON_ANSWERED_BY_PERSON`],
    /// without a draft.
    ///
    /// Decisions are insert-if-absent per item, so a concurrent worker never
    /// stores a second one; the item always carries the stored decision.
    pub async fn triage_new_items(&self, limit: u32) -> Result<TriageReport, InboundError> {
        let mut report = TriageReport::default();
        for tenant in self.store.list_tenants().await? {
            if let Err(error) = self.triage_tenant(tenant.id, limit, &mut report).await {
                tracing::warn!(tenant = %tenant.id, %error, "triage failed for this tenant; others go on");
                report.failed += 1;
            }
        }
        Ok(report)
    }

    async fn compile_for(&self, tenant: TenantId) -> Result<TenantTriage, InboundError> {
        let rules = self.store.list_rules(tenant, true).await?;
        let examples = self.store.list_ignore_examples(tenant).await?;
        let ai_control_on = self.store.get_ai_control(tenant).await?.enabled;
        let settings = self.configs.get(tenant).await?;
        let config = TriageConfig::from(&settings.triage);
        let engine = TriageEngine::compile(&rules, &examples, config).map_err(|e| e.to_string());
        Ok(TenantTriage {
            engine,
            ai_control_on,
            settings,
        })
    }

    #[tracing::instrument(name = "triage_tenant", skip(self, report), fields(%tenant))]
    async fn triage_tenant(
        &self,
        tenant: TenantId,
        limit: u32,
        report: &mut TriageReport,
    ) -> Result<(), InboundError> {
        let messages = self.store.list_untriaged_messages(tenant, limit).await?;
        let comments = self.store.list_untriaged_comments(tenant, limit).await?;
        if messages.is_empty() && comments.is_empty() {
            return Ok(());
        }
        let compiled = self.compile_for(tenant).await?;
        let in_flight = self.triage_concurrency.max(1);
        // The contact name of each conversation of the batch, read once.
        let conversations: HashSet<ConversationId> =
            messages.iter().map(|m| m.conversation_id).collect();
        let names: HashMap<ConversationId, Option<String>> = stream::iter(conversations)
            .map(|id| async move {
                let name = async {
                    let conversation = self.store.get_conversation(tenant, id).await?;
                    self.contact_name(tenant, conversation.contact_id).await
                }
                .await;
                (id, name)
            })
            .buffer_unordered(in_flight)
            .filter_map(|(id, name)| async move {
                match name {
                    Ok(name) => Some((id, name)),
                    Err(error) => {
                        tracing::warn!(%tenant, conversation = %id, %error, "contact name not read; its messages are retried next batch");
                        None
                    }
                }
            })
            .collect()
            .await;
        // Items are decided concurrently (each may wait on the reply
        // generator); each is decided and stored on its own.
        let compiled = &compiled;
        let names = &names;
        // (By position: a closure over references would not be `Send` here.)
        let messages = &messages;
        let message_one = |i: usize| async move {
            let message = &messages[i];
            let done: Result<bool, InboundError> = async {
                let Some(name) = names.get(&message.conversation_id) else {
                    return Err(nexiom_storage::StorageError::backend(
                        "the conversation's contact could not be read",
                    )
                    .into());
                };
                let item = Item {
                    subject: DecisionSubject::Message(message.id),
                    channel: message.channel_id,
                    kind: ReplyKind::Message,
                    text: &message.text,
                    has_media: message.has_media,
                    contact_name: name.as_deref(),
                    answered: answered(message.reply.as_ref()),
                };
                let (decision, on_error) = self.decide(tenant, compiled, &item).await?;
                self.store
                    .set_message_triage(
                        tenant,
                        message.id,
                        decision.triage,
                        decision.confidence,
                        Some(decision.id),
                    )
                    .await?;
                crate::telemetry::triage_decision(decision.triage);
                Ok(on_error)
            }
            .await;
            if let Err(error) = &done {
                tracing::warn!(%tenant, message = %message.id, %error, "message not triaged; retried next batch");
            }
            done
        };
        // A decision makes its item claimable by the reply queue, so the
        // items of one conversation are decided one after another, in the
        // batch's order (oldest first), and conversations concurrently.
        let groups = in_order_groups(
            messages
                .iter()
                .map(|m| m.conversation_id.as_uuid().as_u128()),
        );
        for done in decide_groups(groups, in_flight, message_one).await {
            match done {
                Ok(on_error) => {
                    report.messages += 1;
                    report.escalated_on_error += u64::from(on_error);
                }
                Err(_) => report.failed += 1,
            }
        }
        let comments = &comments;
        let comment_one = |i: usize| async move {
            let comment = &comments[i];
            let item = Item {
                subject: DecisionSubject::Comment(comment.id),
                channel: comment.channel_id,
                kind: ReplyKind::Comment,
                text: &comment.text,
                has_media: false,
                contact_name: comment.author_name.as_deref(),
                answered: answered(comment.reply.as_ref()),
            };
            let done: Result<bool, InboundError> = async {
                let (decision, on_error) = self.decide(tenant, compiled, &item).await?;
                self.store
                    .set_comment_triage(
                        tenant,
                        comment.id,
                        decision.triage,
                        decision.confidence,
                        Some(decision.id),
                    )
                    .await?;
                crate::telemetry::triage_decision(decision.triage);
                Ok(on_error)
            }
            .await;
            if let Err(error) = &done {
                tracing::warn!(%tenant, comment = %comment.id, %error, "comment not triaged; retried next batch");
            }
            done
        };
        // A comment thread (the top-level comment and its replies), as the
        // reply queue's lanes group them.
        let groups = in_order_groups(comments.iter().map(|c| {
            super::auto_reply::comment_thread(
                c.post_id,
                &c.platform_comment_id,
                c.parent_platform_comment_id.as_deref(),
            )
        }));
        for done in decide_groups(groups, in_flight, comment_one).await {
            match done {
                Ok(on_error) => {
                    report.comments += 1;
                    report.escalated_on_error += u64::from(on_error);
                }
                Err(_) => report.failed += 1,
            }
        }
        Ok(())
    }

    async fn contact_name(
        &self,
        tenant: TenantId,
        contact: ContactId,
    ) -> Result<Option<String>, InboundError> {
        Ok(self.store.get_contact(tenant, contact).await?.display_name)
    }

    /// Decides one item and stores the decision (or returns the one stored
    /// already); the flag tells whether it was escalated on an error.
    async fn decide(
        &self,
        tenant: TenantId,
        compiled: &TenantTriage,
        item: &Item<'_>,
    ) -> Result<(AiDecision, bool), InboundError> {
        let now = self.clock.now();
        // A channel whose auto-replies the tenant switched off is decided as
        // when AI control is OFF.
        let channel_on = compiled.settings.auto_reply_on(item.channel);
        let ai_on = compiled.ai_control_on && channel_on;
        let base = json!({
            "text": item.text,
            "has_media": item.has_media,
            "ai_control_on": compiled.ai_control_on,
            "auto_reply_on_channel": channel_on,
        });
        let (new, on_error) = match &compiled.engine {
            // A person answered it: nothing to draft, no one to alert.
            _ if item.answered => {
                // What the rules say, kept for the record (no draft: the
                // generator is not called).
                let rules = match &compiled.engine {
                    Ok(engine) => {
                        let decision = engine
                            .classify(item.text, item.has_media)
                            .finish(None, ai_on);
                        merge(
                            decision.snapshot(),
                            json!({
                                "rules_triage": decision.candidate,
                                "rule": decision.rule.as_ref().map(|r| &r.name),
                            }),
                        )
                    }
                    Err(error) => json!({"error": error}),
                };
                (
                    NewAiDecision {
                        tenant_id: tenant,
                        subject: item.subject,
                        triage: Triage::Ignore,
                        confidence: 1.0,
                        rule_id: None,
                        reason: REASON_ANSWERED_BY_PERSON.to_owned(),
                        snapshot: merge(merge(base, rules), json!({"answered_by_person": true})),
                        created_at: now,
                    },
                    false,
                )
            }
            Err(error) => (
                NewAiDecision {
                    tenant_id: tenant,
                    subject: item.subject,
                    triage: Triage::Escalate,
                    confidence: 0.0,
                    rule_id: None,
                    reason: REASON_RULES_INVALID.to_owned(),
                    snapshot: merge(base, json!({"error": error})),
                    created_at: now,
                },
                true,
            ),
            Ok(engine) => {
                let classification = engine.classify(item.text, item.has_media);
                let wants_draft = classification.wants_reply()
                    && (ai_on || classification.confidence_min.is_some());
                let draft = if wants_draft {
                    let request = ReplyRequest {
                        tenant_id: tenant,
                        kind: item.kind,
                        contact_name: item.contact_name,
                        text: item.text,
                    };
                    Some(
                        self.generator
                            .generate_with(&request, &compiled.settings.reply)
                            .await,
                    )
                } else {
                    None
                };
                match draft {
                    Some(Err(error)) => {
                        tracing::warn!(%tenant, subject = ?item.subject, %error, "reply generator failed; escalating");
                        let decision = classification.finish(None, ai_on);
                        (
                            NewAiDecision {
                                tenant_id: tenant,
                                subject: item.subject,
                                triage: Triage::Escalate,
                                confidence: 0.0,
                                rule_id: decision.rule.as_ref().map(|r| r.id),
                                reason: REASON_GENERATOR_ERROR.to_owned(),
                                snapshot: merge(
                                    merge(base, decision.snapshot()),
                                    json!({"error": error.to_string()}),
                                ),
                                created_at: now,
                            },
                            true,
                        )
                    }
                    draft => {
                        let draft = draft.and_then(Result::ok);
                        let confidence = draft.as_ref().and_then(|d| d.confidence);
                        let decision = classification.finish(confidence, ai_on);
                        let mut snapshot = merge(base, decision.snapshot());
                        if let Some(draft) = &draft {
                            snapshot = merge(snapshot, json!({"draft": draft.text}));
                        }
                        (
                            NewAiDecision {
                                tenant_id: tenant,
                                subject: item.subject,
                                triage: decision.triage,
                                confidence: decision.confidence.clamp(0.0, 1.0),
                                rule_id: decision.rule.as_ref().map(|r| r.id),
                                reason: decision.reason.as_str().to_owned(),
                                snapshot: merge(
                                    snapshot,
                                    json!({"rule": decision.rule.as_ref().map(|r| &r.name)}),
                                ),
                                created_at: now,
                            },
                            false,
                        )
                    }
                }
            }
        };
        let mut new = new;
        // A generator's draft or error may hold NUL characters, which no
        // store takes (PostgreSQL refuses them): the decision would be
        // refused at every pass and the generator asked again each time.
        strip_nul(&mut new.snapshot);
        let stored = self.store.insert_decision(new).await?;
        Ok((stored.record, on_error && stored.created))
    }
}

/// Removes the NUL characters from every string and key of `value` (a
/// draft is sent as stored, so they are dropped rather than replaced).
fn strip_nul(value: &mut Value) {
    match value {
        Value::String(s) if s.contains('\0') => s.retain(|c| c != '\0'),
        Value::Array(items) => items.iter_mut().for_each(strip_nul),
        Value::Object(map) if map.keys().any(|k| k.contains('\0')) => {
            let entries = std::mem::take(map);
            for (key, mut v) in entries {
                strip_nul(&mut v);
                map.insert(key.replace('\0', ""), v);
            }
        }
        Value::Object(map) => map.values_mut().for_each(strip_nul),
        _ => {}
    }
}

/// The positions of `keys` grouped by key, each group in order, the groups in
/// the order of their first position.
fn in_order_groups(keys: impl Iterator<Item = u128>) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut group_of: HashMap<u128, usize> = HashMap::new();
    for (i, key) in keys.enumerate() {
        let g = *group_of.entry(key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    groups
}

/// Runs `one` over each group's positions one after another, at most
/// `in_flight` groups at once; the answers of every position.
async fn decide_groups<F, Fut>(
    groups: Vec<Vec<usize>>,
    in_flight: usize,
    one: F,
) -> Vec<Result<bool, InboundError>>
where
    F: Fn(usize) -> Fut + Copy,
    Fut: std::future::Future<Output = Result<bool, InboundError>>,
{
    stream::iter(groups)
        .map(|group| async move {
            let mut answers = Vec::with_capacity(group.len());
            for i in group {
                answers.push(one(i).await);
            }
            answers
        })
        .buffer_unordered(in_flight)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// `a` with `b`'s fields added (both objects; anything else keeps `a`).
fn merge(mut a: serde_json::Value, b: serde_json::Value) -> serde_json::Value {
    if let (Some(a_map), serde_json::Value::Object(b_map)) = (a.as_object_mut(), b) {
        a_map.extend(b_map);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_are_dropped_from_strings_and_keys() {
        let mut v = json!({"draft": "Bon\u{0}jour", "a\u{0}b": ["x\u{0}", 1, {"k": "\u{0}"}]});
        strip_nul(&mut v);
        assert_eq!(v, json!({"draft": "Bonjour", "ab": ["x", 1, {"k": ""}]}));
    }
}
