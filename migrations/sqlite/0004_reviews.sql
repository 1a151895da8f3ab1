-- Human reviews (approval gates). The row is written before a review is delivered
-- anywhere; closing it is a conditional update on `status = 'pending'`, so a second
-- decision can never be applied twice.
CREATE TABLE reviews (
    tenant_id   TEXT NOT NULL,
    review_id   TEXT NOT NULL,
    session_key TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    call_id     TEXT NOT NULL,
    tool        TEXT NOT NULL,
    origin      TEXT NOT NULL,
    request     TEXT NOT NULL,
    context     TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    outcome     TEXT,
    decided_at  TEXT,
    PRIMARY KEY (tenant_id, review_id),
    FOREIGN KEY (tenant_id, run_id) REFERENCES runs (tenant_id, run_id)
);
CREATE INDEX reviews_by_status ON reviews (tenant_id, status, created_at);
CREATE INDEX reviews_by_run ON reviews (tenant_id, run_id, call_id);

-- Operator policy (rules and flags) per tenant, as one JSON document.
CREATE TABLE policies (
    tenant_id  TEXT NOT NULL PRIMARY KEY,
    document   TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
