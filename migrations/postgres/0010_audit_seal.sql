-- The keyed seal over the audit chain: a MAC per event (NULL for events written
-- before sealing) and signed checkpoints of each tenant's head, append-only too.
ALTER TABLE audit_events ADD COLUMN mac TEXT;

CREATE TABLE audit_checkpoints (
    tenant_id  TEXT        NOT NULL,
    seq        BIGINT      NOT NULL,
    head_seq   BIGINT      NOT NULL,
    head_hash  TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    prev_mac   TEXT        NOT NULL,
    mac        TEXT        NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

CREATE TRIGGER audit_checkpoints_no_update_delete BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();

CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();

-- Row-level security by tenant: see 0001_sessions.sql.
ALTER TABLE audit_checkpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_checkpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_checkpoints_by_tenant ON audit_checkpoints
    USING (tenant_id = current_setting('facio.tenant', true));
