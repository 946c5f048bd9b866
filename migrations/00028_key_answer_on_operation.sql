-- +goose Up
-- The first answer given for an idempotency key is kept on the operation
-- the key names, not in a table of its own: a request writes one row, not
-- two. The operation's id is derived from scope and key alone
-- (app.OperationID), so its primary key is the unique index on scope +
-- key, and the claim reads the answer from the row it may create.
-- IDEMPOTENCY_TTL is applied when the key is read: an answer older than it
-- is no longer replayed (the operation is reported as it stands), and it
-- stays with the operation as the record of what the client was told.
ALTER TABLE operations
    ADD COLUMN idempotency_key text CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    ADD COLUMN fingerprint     bytea,
    ADD COLUMN response        bytea, -- bytes as sent: jsonb would reorder keys and break byte-exact replay
    ADD CHECK ((fingerprint IS NULL) = (response IS NULL));

UPDATE operations o SET idempotency_key = k.key, fingerprint = k.fingerprint, response = k.response
FROM idempotency_keys k WHERE k.operation_id = o.id;

DROP TABLE idempotency_keys;

-- The periodic job that deleted expired records is gone with its table.
DELETE FROM river_job WHERE kind = 'expire_idempotency_keys' AND finalized_at IS NULL;

-- +goose Down
CREATE TABLE idempotency_keys (
    scope        text NOT NULL,
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    fingerprint  bytea NOT NULL,
    operation_id uuid NOT NULL REFERENCES operations (id),
    response     bytea NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

INSERT INTO idempotency_keys (scope, key, fingerprint, operation_id, response, created_at)
SELECT CASE kind WHEN 'order' THEN 'orders' ELSE 'payments' END, idempotency_key, fingerprint, id, response, created_at
FROM operations WHERE idempotency_key IS NOT NULL AND response IS NOT NULL;

ALTER TABLE operations DROP COLUMN idempotency_key, DROP COLUMN fingerprint, DROP COLUMN response;
