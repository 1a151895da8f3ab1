-- A tenant's own MCP servers (added through /api/v1/mcp or the manage_mcp tool), one
-- row each: the definition as JSON (the `tools.mcpServers.<name>` shape). Credential
-- values are never in it, only `${credentials.KEY}` references.
CREATE TABLE mcp_servers (
    tenant_id  TEXT NOT NULL,
    name       TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
