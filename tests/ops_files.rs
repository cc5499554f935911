//! The Grafana dashboard and the Prometheus alert rules under
//! `examples/ops/` name only metrics the library records (a renamed metric
//! would leave a panel or an alert silently empty), and the dashboard is
//! valid JSON with a query in every panel.
#![allow(clippy::unwrap_used)]

use nexiom::scheduler::telemetry::METRIC_NAMES;

/// The `nexiom_…` identifiers in `text`.
fn metric_refs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("nexiom_") {
        let start = i + at;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        out.push(text[start..end].to_owned());
        i = end;
    }
    out
}

fn known(name: &str) -> bool {
    METRIC_NAMES.iter().any(|m| {
        name == *m
            || ["_bucket", "_count", "_sum"]
                .iter()
                .any(|suffix| name.strip_suffix(suffix) == Some(m))
    })
}

#[test]
fn the_dashboard_queries_only_recorded_metrics() {
    let text = include_str!("../examples/ops/grafana-dashboard.json");
    let dashboard: serde_json::Value = serde_json::from_str(text).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    for panel in panels {
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            let refs = metric_refs(expr);
            assert!(!refs.is_empty(), "{expr}");
            for name in refs {
                assert!(known(&name), "{name} in {expr}");
            }
        }
    }
}

#[test]
fn the_alert_rules_name_only_recorded_metrics() {
    let text = include_str!("../examples/ops/prometheus-alerts.yml");
    let rules: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let refs = metric_refs(&rules);
    for name in &refs {
        assert!(known(name), "{name}");
    }
    for must in [
        "nexiom_publish_queue_oldest_due_seconds",
        "nexiom_posts_failed_total",
        "nexiom_channels_needing_reauth",
        "nexiom_worker_last_success_timestamp_seconds",
    ] {
        assert!(refs.iter().any(|r| r == must), "no alert on {must}");
    }
}
