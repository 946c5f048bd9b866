-- +goose Up
-- An operator's cancel of an operation of a step kind (an order) cannot
-- end it at once: what its steps did must be undone first, by its worker,
-- one compensation at a time. The request is recorded here, apart from
-- the columns the worker writes, so no write of the worker's can lose it.
ALTER TABLE operations ADD COLUMN cancel_requested_at timestamptz;

-- Step kinds without money (a health ping) carry no amount; a payment and
-- an order always do.
ALTER TABLE operations DROP CONSTRAINT operations_amount_check;
ALTER TABLE operations ADD CONSTRAINT operations_amount_check
    CHECK (amount > 0 OR (amount = 0 AND kind NOT IN ('payment', 'order')));

-- +goose Down
ALTER TABLE operations DROP CONSTRAINT operations_amount_check;
ALTER TABLE operations ADD CONSTRAINT operations_amount_check CHECK (amount > 0);
ALTER TABLE operations DROP COLUMN cancel_requested_at;
