-- +goose Up
-- The last stock each SKU was read at, live from the inventory dependency:
-- what a degraded read serves, with its age, when the live read is slow,
-- failing or its breaker is open (DESIGN.md, Degraded reads). A row may
-- exist before any value (available and as_of null): it is also the claim
-- that lets one refresh per SKU run at a time across instances, held by
-- refresh_token until refresh_until, so a claimant that died frees it by
-- itself.
CREATE TABLE stock_cache (
    sku           text PRIMARY KEY,
    available     integer CHECK (available >= 0),
    as_of         timestamptz,
    refresh_token text,
    refresh_until timestamptz,
    CHECK ((available IS NULL) = (as_of IS NULL))
);

-- +goose Down
DROP TABLE stock_cache;
