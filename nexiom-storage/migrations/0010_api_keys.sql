-- Nexiom storage schema: API keys of a tenant's applications.
--
-- A key is kept as the SHA-256 of its token (32 bytes), never the token: the
-- token is shown once, when the key is created. SHA-256 suffices because the
-- token's secret is 256 random bits (no dictionary to guess from); see
-- `ApiKeyStore`. `prefix` (`nxk_` and the first 8 characters of the random
-- part) is what lists show and what verification looks a token up by, within
-- the tenant the token names. Two keys of one tenant may share a prefix (it
-- is random), so the index is not unique: verification compares the hash of
-- every candidate.
CREATE TABLE api_keys (
    id            UUID        NOT NULL,
    tenant_id     UUID        NOT NULL,
    name          TEXT        NOT NULL,
    prefix        TEXT        NOT NULL,
    hash          BYTEA       NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    revoked_at    TIMESTAMPTZ,
    last_used_at  TIMESTAMPTZ,
    CONSTRAINT pk_api_keys PRIMARY KEY (id),
    CONSTRAINT fk_api_keys_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT ck_api_keys_hash CHECK (octet_length(hash) = 32)
);
-- Verification: a tenant's keys with a prefix.
CREATE INDEX ix_api_keys_prefix ON api_keys (tenant_id, prefix);
-- The listing: a tenant's keys, oldest first.
CREATE INDEX ix_api_keys_tenant ON api_keys (tenant_id, created_at, id);

-- Row-level security and grants for the new table (migration 0009).
SELECT nexiom_secure_tables();
