-- Topics (issue 18): item vectors, topics, their members and daily sizes.
--
-- Vectors are float4[] (real[]): any PostgreSQL can hold them, and where the
-- pgvector extension is installed a later migration can add an index on an
-- expression such as (vector::vector(512)) without rewriting the table.

CREATE TABLE item_embeddings (
    tenant_id     UUID         NOT NULL,
    subject_kind  TEXT         NOT NULL,
    subject_id    UUID         NOT NULL,
    model         TEXT         NOT NULL,
    dims          INTEGER      NOT NULL,
    vector        REAL[]       NOT NULL,
    computed_at   TIMESTAMPTZ  NOT NULL,
    CONSTRAINT pk_item_embeddings PRIMARY KEY (tenant_id, subject_kind, subject_id, model),
    CONSTRAINT fk_item_embeddings_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT ck_item_embeddings_kind CHECK (subject_kind IN ('message', 'comment')),
    CONSTRAINT ck_item_embeddings_dims CHECK (dims = cardinality(vector) AND dims > 0)
);

CREATE TABLE topics (
    id             UUID         NOT NULL,
    tenant_id      UUID         NOT NULL,
    scope_kind     TEXT         NOT NULL,
    post_id        UUID,
    label          TEXT         NOT NULL,
    terms          TEXT[]       NOT NULL,
    centroid       REAL[]       NOT NULL,
    model          TEXT         NOT NULL,
    size           BIGINT       NOT NULL,
    first_seen_on  DATE         NOT NULL,
    last_seen_on   DATE         NOT NULL,
    created_at     TIMESTAMPTZ  NOT NULL,
    updated_at     TIMESTAMPTZ  NOT NULL,
    CONSTRAINT pk_topics PRIMARY KEY (id),
    CONSTRAINT uq_topics_tenant_id UNIQUE (tenant_id, id),
    CONSTRAINT fk_topics_tenant FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT fk_topics_post FOREIGN KEY (tenant_id, post_id)
        REFERENCES scheduled_posts (tenant_id, id),
    CONSTRAINT ck_topics_scope CHECK (
        (scope_kind IN ('daily', 'weekly') AND post_id IS NULL)
        OR (scope_kind = 'post' AND post_id IS NOT NULL))
);

-- A run reads its scope's topics; topics_for_post reads a post's.
CREATE INDEX ix_topics_scope ON topics (tenant_id, scope_kind, post_id);

CREATE TABLE topic_members (
    topic_id      UUID         NOT NULL,
    tenant_id     UUID         NOT NULL,
    scope_kind    TEXT         NOT NULL,
    post_id       UUID,
    subject_kind  TEXT         NOT NULL,
    subject_id    UUID         NOT NULL,
    created_at    TIMESTAMPTZ  NOT NULL,
    similarity    REAL         NOT NULL,
    CONSTRAINT pk_topic_members PRIMARY KEY (topic_id, subject_kind, subject_id),
    CONSTRAINT fk_topic_members_topic FOREIGN KEY (tenant_id, topic_id)
        REFERENCES topics (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT ck_topic_members_kind CHECK (subject_kind IN ('message', 'comment'))
);

-- One topic per subject and scope: a run replaces a subject's membership.
CREATE UNIQUE INDEX uq_topic_members_scope ON topic_members
    (tenant_id, scope_kind, COALESCE(post_id, '00000000-0000-0000-0000-000000000000'::uuid),
     subject_kind, subject_id);
-- messages_in_topic pages newest first.
CREATE INDEX ix_topic_members_page ON topic_members (topic_id, created_at DESC, subject_id DESC);

CREATE TABLE topic_days (
    topic_id   UUID    NOT NULL,
    tenant_id  UUID    NOT NULL,
    day        DATE    NOT NULL,
    size       BIGINT  NOT NULL,
    CONSTRAINT pk_topic_days PRIMARY KEY (topic_id, day),
    CONSTRAINT fk_topic_days_topic FOREIGN KEY (tenant_id, topic_id)
        REFERENCES topics (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX ix_topic_days_tenant ON topic_days (tenant_id, day);
