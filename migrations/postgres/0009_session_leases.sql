-- Session ownership: one fenced lease per session. Taking a lease bumps its epoch;
-- every step checks its writer's epoch in the step's own transaction. Expiry is the
-- database's clock (now()).
CREATE TABLE session_leases (
    tenant_id   TEXT        NOT NULL,
    session_key TEXT        NOT NULL,
    owner       TEXT        NOT NULL,
    epoch       BIGINT      NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, session_key)
);
CREATE INDEX session_leases_by_owner ON session_leases (owner, expires_at);
