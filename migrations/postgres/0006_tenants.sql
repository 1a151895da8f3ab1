-- Tenants are data: created by operators (`facio tenants create`), referenced by the
-- `tenant` claim of every token. The default tenant always exists.
CREATE TABLE tenants (
    tenant_id  TEXT NOT NULL PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL
);

-- Row-level security by tenant: see 0001_sessions.sql.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenants_by_tenant ON tenants
    USING (tenant_id = current_setting('facio.tenant', true));
CREATE POLICY tenants_system_read ON tenants FOR SELECT
    USING (current_setting('facio.system', true) = 'read');
