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

-- Row-level security by tenant: see 0001_sessions.sql. The node's heartbeat renews
-- its leases of every tenant in one statement, admitted by `facio.system = 'leases'`
-- on this table only.
ALTER TABLE session_leases ENABLE ROW LEVEL SECURITY;
ALTER TABLE session_leases FORCE ROW LEVEL SECURITY;
CREATE POLICY session_leases_by_tenant ON session_leases
    USING (tenant_id = current_setting('facio.tenant', true));
CREATE POLICY session_leases_node ON session_leases
    USING (current_setting('facio.system', true) = 'leases')
    WITH CHECK (current_setting('facio.system', true) = 'leases');
