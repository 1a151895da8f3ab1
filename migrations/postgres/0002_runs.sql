-- Runs (one per turn) and the tool calls made in them.
CREATE TABLE runs (
    tenant_id         TEXT        NOT NULL,
    run_id            TEXT        NOT NULL,
    session_key       TEXT        NOT NULL,
    status            TEXT        NOT NULL,
    input             TEXT        NOT NULL,
    content           TEXT,
    prompt_tokens     BIGINT      NOT NULL DEFAULT 0,
    completion_tokens BIGINT      NOT NULL DEFAULT 0,
    total_tokens      BIGINT      NOT NULL DEFAULT 0,
    created_at        TIMESTAMPTZ NOT NULL,
    finished_at       TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, run_id),
    FOREIGN KEY (tenant_id, session_key) REFERENCES sessions (tenant_id, session_key)
);
CREATE INDEX runs_by_status ON runs (tenant_id, status);
CREATE INDEX runs_by_session ON runs (tenant_id, session_key, created_at);

-- Models do not always keep call ids unique within a turn, so rows have their own id.
CREATE TABLE tool_calls (
    id          BIGSERIAL   PRIMARY KEY,
    tenant_id   TEXT        NOT NULL,
    run_id      TEXT        NOT NULL,
    call_id     TEXT        NOT NULL,
    tool        TEXT        NOT NULL,
    arguments   TEXT        NOT NULL,
    status      TEXT        NOT NULL,
    result      TEXT,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    FOREIGN KEY (tenant_id, run_id) REFERENCES runs (tenant_id, run_id)
);
CREATE INDEX tool_calls_by_run ON tool_calls (tenant_id, run_id, call_id);

-- Row-level security by tenant: see 0001_sessions.sql.
ALTER TABLE runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE runs FORCE ROW LEVEL SECURITY;
CREATE POLICY runs_by_tenant ON runs
    USING (tenant_id = current_setting('facio.tenant', true));

ALTER TABLE tool_calls ENABLE ROW LEVEL SECURITY;
ALTER TABLE tool_calls FORCE ROW LEVEL SECURITY;
CREATE POLICY tool_calls_by_tenant ON tool_calls
    USING (tenant_id = current_setting('facio.tenant', true));
