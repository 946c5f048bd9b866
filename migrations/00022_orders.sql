-- +goose Up
-- Orders are operations of kind 'order' (DESIGN.md, Orders): their lines,
-- priced from the catalog when the order was recorded, and their steps
-- (one reservation per line, then the charge), each with its own status,
-- mode, attempts and what the dependency answered. Both are written in
-- the same statement as the rest of the operation, so a step's outcome is
-- never recorded apart from the order it belongs to.
ALTER TABLE operations ADD COLUMN lines jsonb;
ALTER TABLE operations ADD COLUMN steps jsonb;
ALTER TABLE operations ADD CONSTRAINT operations_order_has_steps
    CHECK (kind <> 'order' OR (lines IS NOT NULL AND steps IS NOT NULL));

-- +goose Down
ALTER TABLE operations DROP CONSTRAINT operations_order_has_steps;
ALTER TABLE operations DROP COLUMN steps;
ALTER TABLE operations DROP COLUMN lines;
