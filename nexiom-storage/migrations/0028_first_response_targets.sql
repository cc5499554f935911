-- Each tenant's first-response target (SLA): an item waiting longer than
-- it is a breach, listed and notified once.

CREATE TABLE first_response_targets (
    tenant_id   UUID        NOT NULL,
    seconds     INT8        NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT pk_first_response_targets PRIMARY KEY (tenant_id),
    CONSTRAINT fk_first_response_targets_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT ck_first_response_targets_seconds CHECK (seconds > 0)
);

SELECT nexiom_secure_tables();
