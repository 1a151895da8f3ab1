-- Sessions and their message history. Every row carries its tenant.
CREATE TABLE sessions (
    tenant_id     TEXT    NOT NULL,
    session_key   TEXT    NOT NULL,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL,
    message_count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, session_key)
);
CREATE INDEX sessions_recent ON sessions (tenant_id, updated_at DESC);

CREATE TABLE messages (
    tenant_id   TEXT    NOT NULL,
    session_key TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    run_id      TEXT,
    message     TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, session_key, seq),
    FOREIGN KEY (tenant_id, session_key) REFERENCES sessions (tenant_id, session_key)
);
