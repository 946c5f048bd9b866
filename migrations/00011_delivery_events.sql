-- +goose Up
-- Every status change of an operation, for the live status stream: a client
-- that reconnects with Last-Event-ID gets what it missed from here. Rows are
-- written by trigger, so no code path can change a status unrecorded.
CREATE TABLE operation_events (
    id           bigserial PRIMARY KEY,
    operation_id uuid NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    status       text NOT NULL,
    attempts     integer NOT NULL,
    at           timestamptz NOT NULL
);

CREATE INDEX operation_events_operation ON operation_events (operation_id, id);

-- Inserts are not announced: nobody can be watching an operation before
-- the response that names it is sent. Updates are, to every instance.
-- +goose StatementBegin
CREATE FUNCTION operations_record_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO operation_events (operation_id, status, attempts, at)
        VALUES (NEW.id, NEW.status, NEW.attempts, NEW.updated_at);
        IF TG_OP = 'UPDATE' THEN
            PERFORM pg_notify('spillway_operations', NEW.id::text);
        END IF;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER operations_record_event AFTER INSERT OR UPDATE OF status ON operations
    FOR EACH ROW EXECUTE FUNCTION operations_record_event();

-- One row per delivery attempt of a notification, for the admin's eyes.
CREATE TABLE deliveries (
    id            bigserial PRIMARY KEY,
    operation_id  uuid NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    channel       text NOT NULL CHECK (channel IN ('email', 'sms', 'webhook')),
    target        text NOT NULL,
    attempt       integer NOT NULL,
    outcome       text NOT NULL CHECK (outcome IN ('sent', 'failed', 'disabled', 'skipped')),
    response_code integer,
    error         text,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX deliveries_operation ON deliveries (operation_id, id);

-- Shared token buckets (the drain rate per dependency).
CREATE TABLE rate_limits (
    name       text PRIMARY KEY,
    tokens     double precision NOT NULL,
    updated_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE rate_limits;
DROP TABLE deliveries;
DROP TRIGGER operations_record_event ON operations;
DROP FUNCTION operations_record_event();
DROP TABLE operation_events;
