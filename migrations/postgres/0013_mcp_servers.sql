-- A tenant's own MCP servers (added through /api/v1/mcp or the manage_mcp tool), one
-- row each: the definition as JSON (the `tools.mcpServers.<name>` shape). Credential
-- values are never in it, only `${credentials.KEY}` references.
CREATE TABLE mcp_servers (
    tenant_id  TEXT        NOT NULL,
    name       TEXT        NOT NULL,
    definition JSONB       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- Row-level security by tenant: see 0001_sessions.sql.
ALTER TABLE mcp_servers ENABLE ROW LEVEL SECURITY;
ALTER TABLE mcp_servers FORCE ROW LEVEL SECURITY;
CREATE POLICY mcp_servers_by_tenant ON mcp_servers
    USING (tenant_id = current_setting('facio.tenant', true));
