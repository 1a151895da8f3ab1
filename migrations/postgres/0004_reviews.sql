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
    request     JSONB       NOT NULL,
    context     JSONB       NOT NULL,
    status      TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    outcome     JSONB,
    decided_at  TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, review_id),
    FOREIGN KEY (tenant_id, run_id) REFERENCES runs (tenant_id, run_id)
);
CREATE INDEX reviews_by_status ON reviews (tenant_id, status, created_at);
CREATE INDEX reviews_by_run ON reviews (tenant_id, run_id, call_id);

-- Operator policy (rules and flags) per tenant, as one JSON document.
CREATE TABLE policies (
    tenant_id  TEXT        NOT NULL PRIMARY KEY,
    document   JSONB       NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
