-- What each model call spent: tokens and the estimated cost from the price table, in
-- millionths of a currency unit so sums stay exact. Budgets sum these rows.
CREATE TABLE usage (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id         TEXT    NOT NULL,
    run_id            TEXT    NOT NULL,
    session_key       TEXT    NOT NULL,
    model             TEXT    NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    total_tokens      INTEGER NOT NULL,
    cost_micros       INTEGER NOT NULL,
    at                TEXT    NOT NULL
);
CREATE INDEX usage_by_time ON usage (tenant_id, at);
CREATE INDEX usage_by_run ON usage (tenant_id, run_id);

-- A tenant's own settings (model allow list, token budgets), as one JSON document.
-- The default tenant may have a row too.
CREATE TABLE tenant_settings (
    tenant_id  TEXT NOT NULL PRIMARY KEY,
    settings   TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
