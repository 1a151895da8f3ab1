-- Secrets, encrypted with AES-256-GCM under the node's master key. Only ciphertext
-- and nonce are stored; the key never is.
CREATE TABLE credentials (
    tenant_id  TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    nonce      TEXT    NOT NULL,
    ciphertext TEXT    NOT NULL,
    exposed    INTEGER NOT NULL DEFAULT 0,
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
