-- +goose Up
-- An operation is one client request from capture to its terminal status.
-- Its id is derived from the idempotency key and body, and is the key every
-- provider call carries.
CREATE TABLE operations (
    id             uuid PRIMARY KEY,
    kind           text NOT NULL,
    status         text NOT NULL CHECK (status IN ('queued', 'processing', 'succeeded', 'declined', 'failed', 'cancelled')),
    mode           text NOT NULL CHECK (mode IN ('sync', 'async')),
    reason         text CHECK (reason IN ('timeout', 'provider_error', 'breaker_open', 'overloaded', 'deferred')),
    attempts       integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    priority       smallint NOT NULL CHECK (priority BETWEEN 1 AND 4),
    amount         bigint NOT NULL CHECK (amount > 0),
    currency       text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    customer_email text,
    customer_phone text,
    description    text,
    callback_url   text,
    job_id         bigint,
    result         jsonb,
    error          jsonb,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    completed_at   timestamptz,
    CHECK ((completed_at IS NOT NULL) = (status IN ('succeeded', 'declined', 'failed', 'cancelled')))
);

CREATE INDEX operations_created_at ON operations (created_at);
CREATE INDEX operations_status_open ON operations (status) WHERE status IN ('queued', 'processing');
CREATE INDEX operations_job_id ON operations (job_id) WHERE job_id IS NOT NULL;

-- The first answer given for each idempotency key. Rows are written only in
-- the committing transaction, so a key is never left "in flight" by a crash.
CREATE TABLE idempotency_keys (
    scope        text NOT NULL,
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    fingerprint  bytea NOT NULL,
    operation_id uuid NOT NULL REFERENCES operations (id),
    response     bytea NOT NULL, -- bytes as sent: jsonb would reorder keys and break byte-exact replay
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE operations;
