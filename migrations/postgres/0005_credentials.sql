-- Secrets, encrypted with AES-256-GCM under the node's master key. Only ciphertext
-- and nonce are stored; the key never is.
CREATE TABLE credentials (
    tenant_id  TEXT        NOT NULL,
    key        TEXT        NOT NULL,
    nonce      TEXT        NOT NULL,
    ciphertext TEXT        NOT NULL,
    exposed    BOOLEAN     NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
