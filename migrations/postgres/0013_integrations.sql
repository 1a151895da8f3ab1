-- What a tenant connects its agents to, one row each, by kind: `mcp_server` (added
-- through /api/v1/mcp or the manage_mcp tool; the `tools.mcpServers.<name>` shape) and
-- `a2a_peer` (/api/v1/a2a/peers: an alias, its card and a token reference) and
-- `channel` (/api/v1/channels: a webhook channel, its secret a reference). The
-- definition is JSON. Credential values are never in it, only `${credentials.KEY}`
-- references.
CREATE TABLE integrations (
    tenant_id  TEXT        NOT NULL,
    kind       TEXT        NOT NULL,
    name       TEXT        NOT NULL,
    definition JSONB       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, kind, name)
);

-- Row-level security by tenant: see 0001_sessions.sql.
ALTER TABLE integrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE integrations FORCE ROW LEVEL SECURITY;
CREATE POLICY integrations_by_tenant ON integrations
    USING (tenant_id = current_setting('facio.tenant', true));
