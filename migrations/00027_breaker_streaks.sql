-- +goose Up
-- The fast trigger beside the failure-rate window: that many failures in
-- a row, across every instance, open the breaker (0: off). The window
-- judges sustained error rates; a run of failures sees a hard outage in
-- milliseconds.
ALTER TABLE breakers ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 20
    CHECK (consecutive_failures BETWEEN 0 AND 1000000);

-- Each generation's current run of failures with no success between them.
-- Instances fold in what they saw since their last flush a few times a
-- second: a success seen resets the run to the failures after it, and
-- failures alone add to it. A new generation starts a new run.
CREATE TABLE breaker_streaks (
    name       text NOT NULL REFERENCES breakers (name) ON DELETE CASCADE,
    generation bigint NOT NULL,
    failures   integer NOT NULL CHECK (failures >= 0),
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (name, generation)
);

-- +goose Down
DROP TABLE breaker_streaks;
ALTER TABLE breakers DROP COLUMN consecutive_failures;
