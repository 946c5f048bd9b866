-- +goose Up
-- An operator's hand on an optional feature of the customer's pages: a row
-- switches it off on every instance until an operator returns it to
-- automatic, which deletes the row. Which features exist is declared in
-- app/features.go, not here, so the name is not constrained.
CREATE TABLE feature_overrides (
    name       text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 100),
    state      text NOT NULL DEFAULT 'off' CHECK (state = 'off'),
    reason     text NOT NULL DEFAULT '',
    actor      text NOT NULL,
    created_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE feature_overrides;
