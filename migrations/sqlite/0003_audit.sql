-- The append-only, hash-chained audit log: one chain per tenant. The database itself
-- refuses to change or remove an event, so tampering needs to drop the triggers first,
-- and then `facio audit verify` still names the first event whose hash does not match.
CREATE TABLE audit_events (
    tenant_id   TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    session_key TEXT,
    run_id      TEXT,
    actor       TEXT    NOT NULL,
    data        TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_by_run ON audit_events (tenant_id, run_id);
CREATE INDEX audit_by_session ON audit_events (tenant_id, session_key);
CREATE INDEX audit_by_kind ON audit_events (tenant_id, kind, created_at);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
