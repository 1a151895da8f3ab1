-- One audit chain per session (and one for a tenant's events outside any session),
-- so concurrent sessions never wait on one another's audit writes. Each new event
-- links to the previous event of its chain (`chain_seq` from 1), carries the epoch of
-- the session lease it was written under and the newest checkpoint its writer saw,
-- and is sealed. Events written before this migration keep their tenant-wide chain
-- (`chain_seq` NULL) and are verified as before.
ALTER TABLE audit_events ADD COLUMN chain_seq BIGINT;
ALTER TABLE audit_events ADD COLUMN epoch BIGINT;
ALTER TABLE audit_events ADD COLUMN seen_checkpoint BIGINT;
CREATE UNIQUE INDEX audit_by_chain
    ON audit_events (tenant_id, COALESCE(session_key, ''), chain_seq)
    WHERE chain_seq IS NOT NULL;

-- `seq` orders a tenant's listing; new events draw it from one sequence (unique and
-- increasing, with gaps) instead of the tenant's head, which every writer would wait
-- on. It starts above every number already used.
CREATE SEQUENCE audit_events_seq OWNED BY audit_events.seq;
SELECT set_config('facio.system', 'read', true);
SELECT setval('audit_events_seq', COALESCE((SELECT MAX(seq) FROM audit_events), 0) + 1, false);
ALTER TABLE audit_events ALTER COLUMN seq SET DEFAULT nextval('audit_events_seq');

-- A checkpoint now commits to the heads of the chains that moved since the one before
-- it (JSON `[[chain, chain_seq, hash], ...]`); folded in order, the checkpoints name
-- every chain's head. Older checkpoints keep `head_seq`/`head_hash` (tenant chain).
ALTER TABLE audit_checkpoints ADD COLUMN heads TEXT;

-- Each chain's head: an append locks its chain's row (only writers of the same
-- session wait), and the sealer finds the chains that moved since they were last
-- sealed. Only a convenience: verification trusts the events and checkpoints.
CREATE TABLE audit_heads (
    tenant_id  TEXT   NOT NULL,
    chain      TEXT   NOT NULL,
    chain_seq  BIGINT NOT NULL,
    hash       TEXT   NOT NULL,
    sealed_seq BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, chain)
);
CREATE INDEX audit_heads_unsealed ON audit_heads (tenant_id) WHERE chain_seq > sealed_seq;

-- Row-level security by tenant: see 0001_sessions.sql. The sealer lists the tenants
-- with unsealed chains through `facio.system = 'read'`.
ALTER TABLE audit_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_heads FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_heads_by_tenant ON audit_heads
    USING (tenant_id = current_setting('facio.tenant', true));
CREATE POLICY audit_heads_system_read ON audit_heads FOR SELECT
    USING (current_setting('facio.system', true) = 'read');

-- Every new event moves its chain's head, in the same transaction (the appender
-- locked the head's row before reading it).
CREATE FUNCTION audit_heads_follow() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_heads (tenant_id, chain, chain_seq, hash)
    VALUES (NEW.tenant_id, COALESCE(NEW.session_key, ''), NEW.chain_seq, NEW.hash)
    ON CONFLICT (tenant_id, chain) DO UPDATE
        SET chain_seq = excluded.chain_seq, hash = excluded.hash;
    RETURN NULL;
END;
$$;

CREATE TRIGGER audit_heads_follow AFTER INSERT ON audit_events
    FOR EACH ROW WHEN (NEW.chain_seq IS NOT NULL) EXECUTE FUNCTION audit_heads_follow();
