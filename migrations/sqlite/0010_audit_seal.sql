-- The keyed seal over the audit chain: a MAC per event (NULL for events written
-- before sealing) and signed checkpoints of each tenant's head, append-only too.
ALTER TABLE audit_events ADD COLUMN mac TEXT;

CREATE TABLE audit_checkpoints (
    tenant_id  TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    head_seq   INTEGER NOT NULL,
    head_hash  TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    prev_mac   TEXT    NOT NULL,
    mac        TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;

CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;
