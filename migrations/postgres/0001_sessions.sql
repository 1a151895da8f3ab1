-- Sessions and their message history. Every row carries its tenant.
--
-- JSON documents (messages, audit data, reviews, policies, settings, token roles)
-- are TEXT holding exactly what the runtime wrote, as in SQLite: the audit chain
-- hashes that text, JSONB would rewrite numbers (-0.0, exponents) and refuses
-- \u0000, and `facio audit list --text` searches the compact form.
--
-- Row-level security: every tenant table is ENABLEd and FORCEd (its owner, the
-- application's role, is bound too; only superusers and BYPASSRLS roles are not), with
-- one policy admitting the rows of the tenant the transaction set with
-- `SELECT set_config('facio.tenant', $1, true)`. A query that did not set it sees and
-- writes nothing. The store's four cross-tenant reads (tenants, pending reviews of
-- every tenant, tenants with audit events, any one credential) set
-- `facio.system = 'read'` instead, which a second policy admits for SELECT only, on
-- those four tables only. (A SECURITY DEFINER function would not do: owned by the
-- application's role, it is bound by FORCE like the role itself.)
CREATE TABLE sessions (
    tenant_id     TEXT        NOT NULL,
    session_key   TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    message_count BIGINT      NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, session_key)
);
CREATE INDEX sessions_recent ON sessions (tenant_id, updated_at DESC);

CREATE TABLE messages (
    tenant_id   TEXT        NOT NULL,
    session_key TEXT        NOT NULL,
    seq         BIGINT      NOT NULL,
    run_id      TEXT,
    message     TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, session_key, seq),
    FOREIGN KEY (tenant_id, session_key) REFERENCES sessions (tenant_id, session_key)
);

-- Row-level security by tenant (see above).
ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY sessions_by_tenant ON sessions
    USING (tenant_id = current_setting('facio.tenant', true));

ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE messages FORCE ROW LEVEL SECURITY;
CREATE POLICY messages_by_tenant ON messages
    USING (tenant_id = current_setting('facio.tenant', true));
