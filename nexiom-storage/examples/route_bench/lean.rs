//! The lean paths: the floor's inserts plus, in each batch's transaction,
//! the router's other steps as one bare statement. Beside the router they
//! show how much of its cost is those steps themselves, and what a queue
//! that does not rewrite the event row would save.

use sqlx::PgPool;

/// The fillfactor `lean-queue-hot` rewrites the events' partitions at:
/// `ROUTE_BENCH_FILLFACTOR`, 45 by default.
pub fn fillfactor() -> u32 {
    std::env::var("ROUTE_BENCH_FILLFACTOR")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|f| (10..=100).contains(f))
        .unwrap_or(45)
}

/// The end of the statements that mark every event routed, by the row
/// the batch locked or read.
const MARK: &str = ", mark AS ( \
    UPDATE webhook_events e SET routed_at = $2, \
        conversation_id = COALESCE(f.stored_conv, f.open_conv) \
    FROM f WHERE e.ctid = f.tid AND e.tableoid = f.toid \
    RETURNING 1) \
    SELECT count(*) FROM mark";

/// Which steps a lean path runs before the floor's inserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lean {
    /// `lean`: the batch taken from `webhook_events` (`FOR UPDATE SKIP
    /// LOCKED`), the three lookups, `last_message_at`, every event marked
    /// routed (a rewrite of the event row), as the router does.
    Marks,
    /// `lean-queue`: the same lookups and `last_message_at`, the batch
    /// taken by deleting its keys from a narrow `routing_queue` (filled
    /// before the clock starts, as a receiver would fill it in the event's
    /// own insert) and read back from `webhook_events` by key; no event row
    /// is written.
    Queue,
    /// `lean-queue-carry`: as `Queue`, the queue rows carrying the fields
    /// routing reads (tenant, channel, platform, event and sender ids,
    /// time), so the events are not read back.
    QueueCarry,
    /// `lean-queue-hot`: as `Queue`, and every event still marked routed
    /// with its conversation, but as a HOT update: the partial index of
    /// unrouted events is dropped (the queue replaces it) and the events'
    /// partitions rewritten at fillfactor 45 (`ROUTE_BENCH_FILLFACTOR`) before
    /// the clock starts (each row
    /// is marked once, so half of each page must be free for its new version:
    /// at fillfactor 85 only about one update in six was HOT).
    QueueHot,
    /// `lean-queue-take`: only the queue's delete (a part of `Queue`, for
    /// its cost).
    QueueTake,
    /// `lean-queue-nobump`: `Queue` with `last_message_at` left alone (a
    /// part, for its cost).
    QueueNoBump,
    /// `lean-queue-nolookups`: `Queue` with the three lookups (message,
    /// contact channel, conversation) skipped (a part, for their cost;
    /// nothing is bumped then either).
    QueueNoLookups,
}

impl Lean {
    /// The lean path a `PATHS` name asks for.
    pub fn from_path(path: &str) -> Option<Lean> {
        Some(match path {
            "lean" => Lean::Marks,
            "lean-queue" => Lean::Queue,
            "lean-queue-carry" => Lean::QueueCarry,
            "lean-queue-hot" => Lean::QueueHot,
            "lean-queue-take" => Lean::QueueTake,
            "lean-queue-nobump" => Lean::QueueNoBump,
            "lean-queue-nolookups" => Lean::QueueNoLookups,
            _ => return None,
        })
    }

    /// Whether the path moves `last_message_at` as routing must (the parts
    /// measured for their cost do not).
    pub fn is_complete(self) -> bool {
        matches!(
            self,
            Lean::Marks | Lean::Queue | Lean::QueueCarry | Lean::QueueHot
        )
    }

    /// Whether the batch is taken from `routing_queue`.
    pub fn uses_queue(self) -> bool {
        self != Lean::Marks
    }

    /// Creates and fills `routing_queue` for the queue paths (untimed).
    pub async fn prepare(self, pool: &PgPool) {
        if !self.uses_queue() {
            return;
        }
        let (columns, select) = if self == Lean::QueueCarry {
            (
                "tenant_id uuid NOT NULL, channel_id uuid NOT NULL, platform text NOT NULL, \
                 event_id text NOT NULL, sender_id text, ",
                "tenant_id, channel_id, platform, event_id, sender_id, ",
            )
        } else {
            ("", "")
        };
        for sql in [
            format!(
                "CREATE TABLE routing_queue (received_at timestamptz NOT NULL, id uuid NOT NULL, \
                 {columns}occurred_at timestamptz NOT NULL, PRIMARY KEY (received_at, id))"
            ),
            format!(
                "INSERT INTO routing_queue SELECT received_at, id, {select}occurred_at \
                 FROM webhook_events WHERE routed_at IS NULL"
            ),
            // As the world's tables: hint bits set, statistics fresh.
            "VACUUM ANALYZE routing_queue".to_owned(),
        ] {
            sqlx::query(&sql).execute(pool).await.unwrap();
        }
        if self == Lean::QueueHot {
            let partitions: Vec<String> = sqlx::query_scalar(
                "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                 WHERE i.inhparent = 'webhook_events'::regclass",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            sqlx::query("DROP INDEX ix_webhook_events_unrouted")
                .execute(pool)
                .await
                .unwrap();
            for partition in partitions {
                for sql in [
                    format!(
                        "ALTER TABLE \"{partition}\" SET (fillfactor = {})",
                        fillfactor()
                    ),
                    format!("VACUUM FULL \"{partition}\""),
                    format!("VACUUM ANALYZE \"{partition}\""),
                ] {
                    sqlx::query(&sql).execute(pool).await.unwrap();
                }
            }
        }
    }

    /// The statement run per batch: `$1` the batch size, `$2` the time of
    /// routing; it returns how many events it took.
    pub fn statement(self) -> String {
        let take = "q AS ( \
            DELETE FROM routing_queue WHERE ctid = ANY(ARRAY( \
                SELECT ctid FROM routing_queue ORDER BY received_at, id LIMIT $1 \
                FOR UPDATE SKIP LOCKED)) \
            RETURNING *)";
        let (batch, tail) = match self {
            Lean::Marks => (
                "b AS MATERIALIZED ( \
                    SELECT e.tableoid AS toid, e.ctid AS tid, e.tenant_id, e.channel_id, \
                        e.platform, e.event_id, e.sender_id, e.occurred_at \
                    FROM webhook_events e WHERE e.routed_at IS NULL \
                    ORDER BY e.received_at, e.id LIMIT $1 FOR UPDATE SKIP LOCKED)"
                    .to_owned(),
                MARK,
            ),
            Lean::QueueTake => {
                return format!(
                    "WITH {take} SELECT count(*) FROM q WHERE $2::timestamptz IS NOT NULL"
                );
            }
            Lean::QueueCarry => (
                format!("{take}, b AS MATERIALIZED (SELECT * FROM q)"),
                " SELECT count(*) FROM f WHERE $2::timestamptz IS NOT NULL",
            ),
            Lean::QueueHot => (
                format!(
                    "{take}, b AS MATERIALIZED ( \
                        SELECT e.tableoid AS toid, e.ctid AS tid, e.tenant_id, e.channel_id, \
                            e.platform, e.event_id, e.sender_id, e.occurred_at \
                        FROM q JOIN webhook_events e \
                            ON e.id = q.id AND e.occurred_at = q.occurred_at)"
                ),
                MARK,
            ),
            Lean::Queue | Lean::QueueNoBump | Lean::QueueNoLookups => (
                format!(
                    "{take}, b AS MATERIALIZED ( \
                        SELECT e.tenant_id, e.channel_id, e.platform, e.event_id, \
                            e.sender_id, e.occurred_at \
                        FROM q JOIN webhook_events e \
                            ON e.id = q.id AND e.occurred_at = q.occurred_at)"
                ),
                " SELECT count(*) FROM f WHERE $2::timestamptz IS NOT NULL",
            ),
        };
        let find = if self == Lean::QueueNoLookups {
            "false AND"
        } else {
            ""
        };
        let moves = if self == Lean::QueueNoBump {
            "false"
        } else {
            "c.last_message_at IS NULL OR c.last_message_at < l.at"
        };
        let row = if matches!(self, Lean::Marks | Lean::QueueHot) {
            "b.toid, b.tid, "
        } else {
            ""
        };
        format!(
            "WITH {batch}, f AS MATERIALIZED ( \
                SELECT {row}b.occurred_at, m.conversation_id AS stored_conv, \
                    conv.id AS open_conv \
                FROM b \
                LEFT JOIN messages m ON {find} m.channel_id = b.channel_id \
                    AND m.provider_message_id = b.event_id AND m.tenant_id = b.tenant_id \
                LEFT JOIN contact_channels cc ON {find} m.id IS NULL \
                    AND cc.tenant_id = b.tenant_id \
                    AND cc.platform = b.platform AND cc.external_handle = b.sender_id \
                LEFT JOIN conversations conv ON {find} conv.contact_id = cc.contact_id \
                    AND conv.channel_id = b.channel_id AND conv.status = 'open' \
                    AND conv.tenant_id = b.tenant_id \
            ), bump AS ( \
                UPDATE conversations c SET last_message_at = l.at \
                FROM (SELECT open_conv, max(occurred_at) AS at FROM f \
                      WHERE stored_conv IS NULL AND open_conv IS NOT NULL \
                      GROUP BY open_conv ORDER BY open_conv) l \
                WHERE c.id = l.open_conv AND ({moves}) \
            ){tail}"
        )
    }
}
