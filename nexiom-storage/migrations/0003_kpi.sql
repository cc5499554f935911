-- Nexiom storage schema, version 3: what the KPI aggregation reads.
--
-- recompute_kpis scans a tenant's messages of both directions from the first
-- window's start onwards, ordered per conversation. ix_messages_direction leads
-- with the direction, so it cannot serve that range; this index can, and holds
-- every column the scan needs, so the scan is index-only on a vacuumed table.
CREATE INDEX ix_messages_tenant_created ON messages (tenant_id, created_at)
    INCLUDE (conversation_id, direction, id);
