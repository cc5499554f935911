//! [9] The KPI windows with activity, in local time.

use nexiom::core::Clock;
use nexiom::scheduler::{KpiConfig, aggregate_kpis, recent_kpis};

use super::outcome::{StoryError, StoryOutcome};
use super::setup::Story;

/// Step 9.
pub(super) async fn kpi_windows(s: &Story, out: &mut StoryOutcome) -> Result<(), StoryError> {
    let v = s.verbose;
    let (store, clock, tenant, tz) = (&s.store, &s.clock, &s.tenant, s.tz);

    // --- 9. KPI windows.
    let config = KpiConfig::default();
    let kpi_run = aggregate_kpis(store.as_ref(), clock, &config).await?;
    say!(
        v,
        "\n[9] KPIs: {} rows upserted; windows with activity (local time):",
        kpi_run.rows_upserted
    );
    for k in recent_kpis(store.as_ref(), tenant.id, clock.now(), &config).await? {
        let Some(row) = &k.current else { continue };
        if row.messages_count + row.comments_count + row.posts_active == 0 {
            continue;
        }
        out.kpi_windows_with_activity += 1;
        out.kpi_messages += row.messages_count;
        say!(
            v,
            "    {} {}-{}  messages {}  comments {}  escalated {}  ignored {}  auto-reply rate {}  posts active {}",
            k.window.date,
            k.window.window.start.with_timezone(&tz).format("%H:%M"),
            k.window.window.end.with_timezone(&tz).format("%H:%M"),
            row.messages_count,
            row.comments_count,
            row.escalate_count,
            row.ignored_count,
            row.auto_reply_rate
                .map_or("-".into(), |r| format!("{:.0}%", r * 100.0)),
            row.posts_active
        );
    }
    Ok(())
}
