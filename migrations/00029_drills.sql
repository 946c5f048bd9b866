-- +goose Up
-- Failover drills (app/drill.go): one row per drill, its progress and its
-- verdict. A dependency has at most one drill open at a time, and a
-- scheduled slot is drilled at most once per dependency whichever
-- instance's scheduler gets there, even two leaders across a failover.
CREATE TABLE drills (
    id          bigserial PRIMARY KEY,
    dependency  text NOT NULL CHECK (length(dependency) BETWEEN 1 AND 100),
    mode        text NOT NULL CHECK (mode IN ('shadow', 'live')),
    trigger     text NOT NULL CHECK (trigger IN ('manual', 'schedule')),
    actor       text NOT NULL DEFAULT '',
    slot        timestamptz,
    status      text NOT NULL CHECK (status IN ('running', 'draining', 'passed', 'failed')),
    duration_ms bigint NOT NULL CHECK (duration_ms > 0),
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz,
    canaries    integer NOT NULL CHECK (canaries > 0),
    sent        integer NOT NULL DEFAULT 0 CHECK (sent BETWEEN 0 AND canaries),
    completed   integer NOT NULL DEFAULT 0 CHECK (completed BETWEEN 0 AND sent),
    drain_ms    bigint CHECK (drain_ms >= 0),
    reason      text NOT NULL DEFAULT '',
    finished_at timestamptz,
    CHECK ((finished_at IS NOT NULL) = (status IN ('passed', 'failed'))),
    CHECK ((slot IS NOT NULL) = (trigger = 'schedule'))
);
CREATE UNIQUE INDEX drills_slot ON drills (dependency, slot) WHERE slot IS NOT NULL;
CREATE UNIQUE INDEX drills_open ON drills (dependency) WHERE status IN ('running', 'draining');
CREATE INDEX drills_finished ON drills (dependency, finished_at DESC) WHERE finished_at IS NOT NULL;

-- A drill's shadow canaries are captured with reason 'drill'.
ALTER TABLE operations DROP CONSTRAINT operations_reason_check;
ALTER TABLE operations ADD CONSTRAINT operations_reason_check
    CHECK (reason IN ('timeout', 'provider_error', 'breaker_open', 'overloaded', 'deferred', 'outcome_unknown', 'drill'));

-- +goose Down
-- Canaries are synthetic: forgetting why one was captured loses nothing.
UPDATE operations SET reason = NULL WHERE reason = 'drill';
ALTER TABLE operations DROP CONSTRAINT operations_reason_check;
ALTER TABLE operations ADD CONSTRAINT operations_reason_check
    CHECK (reason IN ('timeout', 'provider_error', 'breaker_open', 'overloaded', 'deferred', 'outcome_unknown'));
DROP TABLE drills;
