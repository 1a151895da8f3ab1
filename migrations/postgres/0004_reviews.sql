-- Human reviews (approval gates). The row is written before a review is delivered
-- anywhere; closing it is a conditional update on `status = 'pending'`, so a second
-- decision can never be applied twice.
CREATE TABLE reviews (
    tenant_id   TEXT        NOT NULL,
    review_id   TEXT        NOT NULL,
    session_key TEXT        NOT NULL,
    run_id      TEXT        NOT NULL,
    call_id     TEXT        NOT NULL,
    tool        TEXT        NOT NULL,
    origin      TEXT        NOT NULL,
    request     TEXT        NOT NULL,
    context     TEXT        NOT NULL,
    status      TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    outcome     TEXT,
    decided_at  TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, review_id),
    FOREIGN KEY (tenant_id, run_id) REFERENCES runs (tenant_id, run_id)
);
CREATE INDEX reviews_by_status ON reviews (tenant_id, status, created_at);
CREATE INDEX reviews_by_run ON reviews (tenant_id, run_id, call_id);

-- Operator policy (rules and flags) per tenant, as one JSON document.
CREATE TABLE policies (
    tenant_id  TEXT        NOT NULL PRIMARY KEY,
    document   TEXT        NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Row-level security by tenant: see 0001_sessions.sql.
ALTER TABLE reviews ENABLE ROW LEVEL SECURITY;
ALTER TABLE reviews FORCE ROW LEVEL SECURITY;
CREATE POLICY reviews_by_tenant ON reviews
    USING (tenant_id = current_setting('facio.tenant', true));
CREATE POLICY reviews_system_read ON reviews FOR SELECT
    USING (current_setting('facio.system', true) = 'read');

ALTER TABLE policies ENABLE ROW LEVEL SECURITY;
ALTER TABLE policies FORCE ROW LEVEL SECURITY;
CREATE POLICY policies_by_tenant ON policies
    USING (tenant_id = current_setting('facio.tenant', true));
