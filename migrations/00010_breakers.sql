-- +goose Up
-- One row per dependency's circuit breaker, shared by every instance.
-- Writers compare-and-swap on generation; durations are milliseconds.
CREATE TABLE breakers (
    name             text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    state            text NOT NULL CHECK (state IN ('closed', 'open', 'half_open', 'forced_open', 'forced_closed')),
    generation       bigint NOT NULL,
    since            timestamptz NOT NULL,
    open_until       timestamptz,
    trips            integer NOT NULL DEFAULT 0,
    window_ms        bigint NOT NULL,
    min_calls        integer NOT NULL,
    failure_rate     double precision NOT NULL CHECK (failure_rate > 0 AND failure_rate <= 1),
    slow_rate        double precision NOT NULL CHECK (slow_rate > 0 AND slow_rate <= 1),
    slow_call_ms     bigint NOT NULL,
    open_wait_ms     bigint NOT NULL,
    max_open_wait_ms bigint NOT NULL,
    probes           integer NOT NULL CHECK (probes BETWEEN 1 AND 100),
    probe_lease_ms   bigint NOT NULL,
    trip_memory_ms   bigint NOT NULL,
    updated_at       timestamptz NOT NULL
);

-- Outcomes per breaker generation and one-second bucket. Each instance adds
-- its local counts a few times a second; no write per request.
CREATE TABLE breaker_counts (
    name       text NOT NULL REFERENCES breakers (name) ON DELETE CASCADE,
    generation bigint NOT NULL,
    bucket     timestamptz NOT NULL,
    calls      integer NOT NULL,
    failures   integer NOT NULL,
    slow       integer NOT NULL,
    PRIMARY KEY (name, generation, bucket)
);

-- Half-open probe permits. A permit counts while it has an outcome or its
-- lease has not expired, so a dead instance's permit frees itself.
CREATE TABLE breaker_probes (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL REFERENCES breakers (name) ON DELETE CASCADE,
    generation   bigint NOT NULL,
    instance     text NOT NULL,
    leased_until timestamptz NOT NULL,
    outcome      text CHECK (outcome IN ('success', 'failure')),
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX breaker_probes_generation ON breaker_probes (name, generation);

CREATE TABLE breaker_transitions (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL REFERENCES breakers (name) ON DELETE CASCADE,
    generation   bigint NOT NULL,
    from_state   text NOT NULL,
    to_state     text NOT NULL,
    reason       text NOT NULL,
    calls        integer NOT NULL,
    failures     integer NOT NULL,
    slow         integer NOT NULL,
    instance     text NOT NULL,
    actor        text NOT NULL,
    at           timestamptz NOT NULL
);

CREATE INDEX breaker_transitions_name_at ON breaker_transitions (name, at DESC);

-- +goose Down
DROP TABLE breaker_transitions;
DROP TABLE breaker_probes;
DROP TABLE breaker_counts;
DROP TABLE breakers;
