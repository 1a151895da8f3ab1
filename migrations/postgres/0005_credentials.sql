-- Secrets, encrypted with AES-256-GCM under the node's master key. Only ciphertext
-- and nonce are stored; the key never is.
CREATE TABLE credentials (
    tenant_id  TEXT        NOT NULL,
    key        TEXT        NOT NULL,
    nonce      TEXT        NOT NULL,
    ciphertext TEXT        NOT NULL,
    exposed    BOOLEAN     NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

-- Row-level security by tenant: see 0001_sessions.sql.
ALTER TABLE credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE credentials FORCE ROW LEVEL SECURITY;
CREATE POLICY credentials_by_tenant ON credentials
    USING (tenant_id = current_setting('facio.tenant', true));
CREATE POLICY credentials_system_read ON credentials FOR SELECT
    USING (current_setting('facio.system', true) = 'read');
