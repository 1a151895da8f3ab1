-- Bearer tokens a tenant's admins issued (`facio tokens create`) and revoked ones.
-- A revocation of a token issued elsewhere (another signer) has no subject or roles.
CREATE TABLE tokens (
    tenant_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    subject    TEXT,
    roles      TEXT,
    issued_at  TIMESTAMPTZ,
    expires_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ,
    revoked_by TEXT,
    PRIMARY KEY (tenant_id, jti)
);

-- Row-level security by tenant: see 0001_sessions.sql.
ALTER TABLE tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tokens_by_tenant ON tokens
    USING (tenant_id = current_setting('facio.tenant', true));
