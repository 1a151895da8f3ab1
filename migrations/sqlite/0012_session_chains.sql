-- One audit chain per session (and one for a tenant's events outside any session),
-- so concurrent sessions never wait on one another's audit writes. Each new event
-- links to the previous event of its chain (`chain_seq` from 1), carries the epoch of
-- the session lease it was written under and the newest checkpoint its writer saw,
-- and is sealed. Events written before this migration keep their tenant-wide chain
-- (`chain_seq` NULL) and are verified as before.
ALTER TABLE audit_events ADD COLUMN chain_seq INTEGER;
ALTER TABLE audit_events ADD COLUMN epoch INTEGER;
ALTER TABLE audit_events ADD COLUMN seen_checkpoint INTEGER;
CREATE UNIQUE INDEX audit_by_chain
    ON audit_events (tenant_id, COALESCE(session_key, ''), chain_seq)
    WHERE chain_seq IS NOT NULL;

-- A checkpoint now commits to the heads of the chains that moved since the one before
-- it (JSON `[[chain, chain_seq, hash], ...]`); folded in order, the checkpoints name
-- every chain's head. Older checkpoints keep `head_seq`/`head_hash` (tenant chain).
ALTER TABLE audit_checkpoints ADD COLUMN heads TEXT;

-- Each chain's head, so an append reads one row instead of searching the log, and
-- the sealer finds the chains that moved since they were last sealed. Only a
-- convenience: verification trusts the events and checkpoints, never this table.
CREATE TABLE audit_heads (
    tenant_id  TEXT    NOT NULL,
    chain      TEXT    NOT NULL,
    chain_seq  INTEGER NOT NULL,
    hash       TEXT    NOT NULL,
    sealed_seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, chain)
);
CREATE INDEX audit_heads_unsealed ON audit_heads (tenant_id) WHERE chain_seq > sealed_seq;

-- Every new event moves its chain's head, in the same transaction.
CREATE TRIGGER audit_heads_follow AFTER INSERT ON audit_events
WHEN NEW.chain_seq IS NOT NULL
BEGIN
    INSERT INTO audit_heads (tenant_id, chain, chain_seq, hash)
    VALUES (NEW.tenant_id, COALESCE(NEW.session_key, ''), NEW.chain_seq, NEW.hash)
    ON CONFLICT (tenant_id, chain) DO UPDATE
        SET chain_seq = excluded.chain_seq, hash = excluded.hash;
END;
