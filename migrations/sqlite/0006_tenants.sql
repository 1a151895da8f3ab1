-- Tenants are data: created by operators (`facio tenants create`), referenced by the
-- `tenant` claim of every token. The default tenant always exists.
CREATE TABLE tenants (
    tenant_id  TEXT NOT NULL PRIMARY KEY,
    created_at TEXT NOT NULL
);
