-- The receiver's batch of webhook events in one call: the insert and the
-- answers of the events it skipped, planned once per session for the small
-- batches of group commit.
--
-- The group-committed writer (`EventBatchStore::insert_events`) sends a
-- batch of about 10 events per commit under load. It ran two statements:
-- the insert, then, when some events were skipped (a redelivery: one body
-- in 20 in `examples/webhook_load.rs`, so about 4 flushes in 10), a read of
-- who holds the skipped keys and whether their channels are right. That read
-- was planned at every execution: the planner's default kept a custom plan
-- for it (the generic plan assumes 100 rows from `UNNEST`, so it never looked
-- cheaper), 0.3 ms of planning for 0.05 ms of work, plus a round trip, on 4
-- flushes in 10. With every statement of the database forced to generic
-- plans the receiver did 8,405-9,070 requests/s against 7,050-7,990 with the
-- default (alternating, same binary); but the 2,700-event body then took a
-- median of 148 ms instead of 92 ms, its generic plan being worse.
--
-- So one PL/pgSQL function runs both statements: PL/pgSQL keeps each
-- statement's plan for the session, generic, with sequential scans off (a
-- generic plan made while a month's partition is empty would otherwise keep
-- scanning it once it fills, as in migration 0034), for batches of up to 64
-- events; a larger batch is planned with its own values, sequential scans
-- allowed, as before. The settings made inside the function end with it
-- (its `SET` clauses).
--
-- 1. The insert is the one `insert_events` ran since migration 0032: rows
--    whose `(tenant, channel, platform)` is a stored channel and whose
--    `(platform, event_id)` is stored in no month, in the order of their
--    position (the caller passes them in key order, so that two concurrent
--    batches take the key locks in the same order).
-- 2. Only when some rows were skipped, in a new snapshot (a new statement of
--    a PL/pgSQL function, in READ COMMITTED), which sees a key that a
--    concurrent batch committed while the insert waited for it: for each
--    skipped row, its position (from 1), the tenant of the first event
--    stored under its key (NULL when none can be read) and whether its
--    channel is the tenant's on its platform.
CREATE FUNCTION nexiom_insert_events(
    p_id uuid[], p_tenant uuid[], p_channel uuid[], p_platform text[], p_event_id text[],
    p_kind text[], p_sender_id text[], p_sender_name text[], p_text text[],
    p_has_media boolean[], p_delivery_status text[], p_target_id text[], p_parent_id text[],
    p_occurred_at timestamptz[], p_payload jsonb[], p_received_at timestamptz[])
RETURNS TABLE (pos integer, holder uuid, channel_ok boolean)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
    v_created uuid[];
BEGIN
    IF cardinality(p_id) > 64 THEN
        PERFORM set_config('plan_cache_mode', 'force_custom_plan', true);
        PERFORM set_config('enable_seqscan', 'on', true);
    END IF;
    WITH inserted AS (
        INSERT INTO webhook_events AS w (id, tenant_id, channel_id, platform, event_id, kind,
            sender_id, sender_name, text, has_media, delivery_status, target_id, parent_id,
            occurred_at, payload, received_at)
        SELECT e.id, e.tenant_id, e.channel_id, e.platform, e.event_id, e.kind,
            e.sender_id, e.sender_name, e.text, e.has_media, e.delivery_status, e.target_id,
            e.parent_id, e.occurred_at, e.payload, e.received_at
        FROM UNNEST(p_id, p_tenant, p_channel, p_platform, p_event_id, p_kind, p_sender_id,
                p_sender_name, p_text, p_has_media, p_delivery_status, p_target_id, p_parent_id,
                p_occurred_at, p_payload, p_received_at) WITH ORDINALITY
            AS e(id, tenant_id, channel_id, platform, event_id, kind, sender_id, sender_name,
                text, has_media, delivery_status, target_id, parent_id, occurred_at, payload,
                received_at, ord)
        WHERE (e.tenant_id, e.channel_id, e.platform) IN (
                SELECT c.tenant_id, c.id, c.platform FROM channels c WHERE c.id = ANY (p_channel))
            AND NOT EXISTS (SELECT 1 FROM webhook_events o
                WHERE o.platform = e.platform AND o.event_id = e.event_id)
        ORDER BY e.ord
        ON CONFLICT (platform, event_id, occurred_at) DO NOTHING
        RETURNING w.id
    )
    SELECT array_agg(inserted.id) INTO v_created FROM inserted;
    IF COALESCE(cardinality(v_created), 0) = cardinality(p_id) THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT k.ord::integer, h.tenant_id, EXISTS (SELECT 1 FROM channels c
            WHERE c.tenant_id = k.tenant_id AND c.id = k.channel_id AND c.platform = k.platform)
    FROM UNNEST(p_id, p_tenant, p_channel, p_platform, p_event_id) WITH ORDINALITY
        AS k(id, tenant_id, channel_id, platform, event_id, ord)
    LEFT JOIN LATERAL (SELECT w.tenant_id FROM webhook_events w
        WHERE w.platform = k.platform AND w.event_id = k.event_id
        ORDER BY w.received_at, w.id LIMIT 1) h ON true
    WHERE NOT EXISTS (SELECT 1 FROM unnest(v_created) AS n(id) WHERE n.id = k.id)
    ORDER BY k.ord;
END $$;
