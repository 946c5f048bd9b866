-- +goose Up
-- Live streams register the operations they watch, so the status trigger
-- NOTIFYs only for watched operations. A NOTIFY serializes commits across
-- the whole cluster (one committer holding notifications at a time), which
-- cost the backlog drain more than half its speed when every status change
-- notified. Streams refresh their rows; expired ones are ignored.
CREATE TABLE operation_watchers (
    operation_id uuid NOT NULL,
    instance     text NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (operation_id, instance)
);

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION operations_record_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO operation_events (operation_id, status, attempts, at)
        VALUES (NEW.id, NEW.status, NEW.attempts, NEW.updated_at);
        IF TG_OP = 'UPDATE' AND EXISTS (
            SELECT 1 FROM operation_watchers WHERE operation_id = NEW.id AND expires_at > now()
        ) THEN
            PERFORM pg_notify('spillway_operations', NEW.id::text);
        END IF;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION operations_record_event() RETURNS trigger LANGUAGE plpgsql AS $$
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
DROP TABLE operation_watchers;
