-- +goose Up
-- The catalog: what can be ordered, and at what price. An order's amount
-- is computed from these prices in the transaction that records it; a
-- client never sends a price (DESIGN.md, Orders). Prices are in minor
-- units of their currency.
CREATE TABLE products (
    sku        text PRIMARY KEY CHECK (sku ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    price      bigint NOT NULL CHECK (price > 0),
    currency   text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    active     boolean NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE products;
