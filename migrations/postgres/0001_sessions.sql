-- Sessions and their message history. Every row carries its tenant.
CREATE TABLE sessions (
    tenant_id     TEXT        NOT NULL,
    session_key   TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    message_count BIGINT      NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, session_key)
);
CREATE INDEX sessions_recent ON sessions (tenant_id, updated_at DESC);

CREATE TABLE messages (
    tenant_id   TEXT        NOT NULL,
    session_key TEXT        NOT NULL,
    seq         BIGINT      NOT NULL,
    run_id      TEXT,
    message     JSONB       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, session_key, seq),
    FOREIGN KEY (tenant_id, session_key) REFERENCES sessions (tenant_id, session_key)
);
