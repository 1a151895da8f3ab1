-- The append-only, hash-chained audit log: one chain per tenant. The database refuses
-- UPDATE, DELETE and TRUNCATE on it.
CREATE TABLE audit_events (
    tenant_id   TEXT        NOT NULL,
    seq         BIGINT      NOT NULL,
    kind        TEXT        NOT NULL,
    session_key TEXT,
    run_id      TEXT,
    actor       TEXT        NOT NULL,
    data        TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    prev_hash   TEXT        NOT NULL,
    hash        TEXT        NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_by_run ON audit_events (tenant_id, run_id);
CREATE INDEX audit_by_session ON audit_events (tenant_id, session_key);
CREATE INDEX audit_by_kind ON audit_events (tenant_id, kind, created_at);

CREATE FUNCTION audit_events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;

CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();

CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();

-- Row-level security by tenant: see 0001_sessions.sql.
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_events_by_tenant ON audit_events
    USING (tenant_id = current_setting('facio.tenant', true));
CREATE POLICY audit_events_system_read ON audit_events FOR SELECT
    USING (current_setting('facio.system', true) = 'read');
