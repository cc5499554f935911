-- Per-tenant settings: the typed settings as one JSON document per tenant,
-- and the tenant's secret settings, sealed like channel tokens
-- ("nxenc:v1:…"), one row per key.

CREATE TABLE tenant_settings (
    tenant_id   UUID        NOT NULL,
    settings    JSONB       NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_tenant_settings PRIMARY KEY (tenant_id),
    CONSTRAINT fk_tenant_settings_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)
);

CREATE TABLE tenant_secrets (
    tenant_id   UUID        NOT NULL,
    key         TEXT        NOT NULL,
    value       TEXT        NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_tenant_secrets PRIMARY KEY (tenant_id, key),
    CONSTRAINT fk_tenant_secrets_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id)
);

SELECT nexiom_secure_tables();
