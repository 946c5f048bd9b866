-- +goose Up
-- An operator's cancel of an operation of a step kind (an order) cannot
-- end it at once: what its steps did must be undone first, by its worker,
-- one compensation at a time. The request is recorded here, apart from
-- the columns the worker writes, so no write of the worker's can lose it.
ALTER TABLE operations ADD COLUMN cancel_requested_at timestamptz;

-- +goose Down
ALTER TABLE operations DROP COLUMN cancel_requested_at;
