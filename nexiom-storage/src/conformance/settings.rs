//! Conformance tests of application settings, worker flags and execution logs.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use chrono::Duration;
use nexiom_core::*;
use serde_json::json;

use super::fixtures::{assert_not_found, mins, t0};
use crate::Store;

pub async fn settings(store: Arc<dyn Store>) {
    let s = &*store;
    assert_eq!(s.get_setting("OPENROUTER_API_KEY").await.unwrap(), None);
    let set = s
        .set_setting("OPENROUTER_API_KEY", SecretString::new("sk-1"), t0())
        .await
        .unwrap();
    assert_eq!(set.value.expose(), "sk-1");
    s.set_setting("META_APP_SECRET", SecretString::new("app"), t0())
        .await
        .unwrap();
    let replaced = s
        .set_setting(
            "OPENROUTER_API_KEY",
            SecretString::new("sk-2"),
            t0() + mins(1),
        )
        .await
        .unwrap();
    assert_eq!(
        s.get_setting("OPENROUTER_API_KEY").await.unwrap(),
        Some(replaced)
    );
    assert_eq!(
        s.list_setting_keys().await.unwrap(),
        vec![
            "META_APP_SECRET".to_owned(),
            "OPENROUTER_API_KEY".to_owned()
        ]
    );
    assert!(s.delete_setting("META_APP_SECRET").await.unwrap());
    assert!(!s.delete_setting("META_APP_SECRET").await.unwrap());
    assert_eq!(
        s.list_setting_keys().await.unwrap(),
        vec!["OPENROUTER_API_KEY".to_owned()]
    );
}

pub async fn worker_flags_and_execution_logs(store: Arc<dyn Store>) {
    let s = &*store;
    assert_eq!(s.get_worker_flag("enqueue_due_posts").await.unwrap(), None);
    s.set_worker_flag("poll_comments", true, t0())
        .await
        .unwrap();
    let off = s
        .set_worker_flag("enqueue_due_posts", false, t0())
        .await
        .unwrap();
    assert!(!off.enabled);
    let on = s
        .set_worker_flag("enqueue_due_posts", true, t0() + mins(1))
        .await
        .unwrap();
    assert_eq!(
        s.get_worker_flag("enqueue_due_posts").await.unwrap(),
        Some(on)
    );
    let names: Vec<_> = s
        .list_worker_flags()
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.worker_name)
        .collect();
    assert_eq!(names, vec!["enqueue_due_posts", "poll_comments"]);

    let run1 = s.start_execution("enqueue_due_posts", t0()).await.unwrap();
    assert_eq!(run1.status, RunStatus::Running);
    let done = s
        .finish_execution(
            run1.id,
            ExecutionOutcome {
                status: RunStatus::Completed,
                finished_at: t0() + Duration::milliseconds(1_250),
                items_processed: 12,
                items_failed: 1,
                results: json!({"claimed": 12}),
                error: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(done.duration_ms, Some(1_250));
    assert_eq!(done.items_processed, 12);
    assert_eq!(done.results["claimed"], 12);
    let run2 = s
        .start_execution("poll_comments", t0() + Duration::days(2))
        .await
        .unwrap();
    let run3 = s
        .start_execution("enqueue_due_posts", t0() + Duration::days(3))
        .await
        .unwrap();
    let ids = |v: Vec<TaskExecutionLog>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_executions(None, 10).await.unwrap()),
        vec![run3.id, run2.id, run1.id]
    );
    assert_eq!(
        ids(s
            .list_executions(Some("enqueue_due_posts"), 10)
            .await
            .unwrap()),
        vec![run3.id, run1.id]
    );
    assert_eq!(
        ids(s.list_executions(None, 1).await.unwrap()),
        vec![run3.id]
    );
    assert_eq!(
        s.delete_executions_before(t0() + Duration::days(2))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        ids(s.list_executions(None, 10).await.unwrap()),
        vec![run3.id, run2.id]
    );
    assert_not_found(
        s.finish_execution(
            ExecutionId::generate(),
            ExecutionOutcome {
                status: RunStatus::Failed,
                finished_at: t0(),
                items_processed: 0,
                items_failed: 0,
                results: json!(null),
                error: Some("boom".into()),
            },
        )
        .await,
    );
}

pub async fn worker_slots_are_claimed_once(store: Arc<dyn Store>) {
    let slot = t0() + Duration::hours(3);
    // Eight claims of one slot at once, as eight worker processes would make
    // them: exactly one takes it.
    let claims = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .claim_worker_slot("cluster_topics", slot, slot + mins(i))
                .await
                .unwrap()
        })
    });
    let mut taken = 0;
    for claim in claims {
        taken += usize::from(claim.await.unwrap());
    }
    assert_eq!(taken, 1, "one claim of the slot takes it");
    let s = &*store;
    assert!(
        !s.claim_worker_slot("cluster_topics", slot, slot)
            .await
            .unwrap()
    );
    // Another slot, or another worker's same slot, is a slot of its own.
    let next = slot + Duration::days(1);
    assert!(
        s.claim_worker_slot("cluster_topics", next, next)
            .await
            .unwrap()
    );
    assert!(s.claim_worker_slot("cleanup", slot, slot).await.unwrap());
    // Claims go with the execution logs of their time: what is left is
    // still taken, what went can be taken again.
    s.delete_executions_before(slot + Duration::hours(1))
        .await
        .unwrap();
    assert!(
        !s.claim_worker_slot("cluster_topics", next, next)
            .await
            .unwrap()
    );
    assert!(
        s.claim_worker_slot("cluster_topics", slot, next)
            .await
            .unwrap()
    );
    assert!(s.claim_worker_slot("", slot, slot).await.is_err());
}
