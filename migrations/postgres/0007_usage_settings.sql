-- What each model call spent: tokens and the estimated cost from the price table, in
-- millionths of a currency unit so sums stay exact. Budgets sum these rows.
CREATE TABLE usage (
    id                BIGSERIAL   PRIMARY KEY,
    tenant_id         TEXT        NOT NULL,
    run_id            TEXT        NOT NULL,
    session_key       TEXT        NOT NULL,
    model             TEXT        NOT NULL,
    prompt_tokens     BIGINT      NOT NULL,
    completion_tokens BIGINT      NOT NULL,
    total_tokens      BIGINT      NOT NULL,
    cost_micros       BIGINT      NOT NULL,
    at                TIMESTAMPTZ NOT NULL
);
CREATE INDEX usage_by_time ON usage (tenant_id, at);
CREATE INDEX usage_by_run ON usage (tenant_id, run_id);

-- A tenant's own settings (model allow list, token budgets), as one JSON document.
-- The default tenant may have a row too.
CREATE TABLE tenant_settings (
    tenant_id  TEXT        NOT NULL PRIMARY KEY,
    settings   TEXT        NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Row-level security by tenant: see 0001_sessions.sql.
ALTER TABLE usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage FORCE ROW LEVEL SECURITY;
CREATE POLICY usage_by_tenant ON usage
    USING (tenant_id = current_setting('facio.tenant', true));

ALTER TABLE tenant_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_settings_by_tenant ON tenant_settings
    USING (tenant_id = current_setting('facio.tenant', true));
