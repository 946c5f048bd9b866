-- +goose Up
-- Outcomes we do not know yet (DESIGN.md): an attempt that timed out or
-- lost its connection may have charged. outcome_unknown_since is when the
-- first such attempt was made; it is cleared only when the provider says
-- what happened. key_gen counts the provider keys an operation has used:
-- a lookup that found nothing closes the key, so a later attempt (an
-- operator's retry) charges under the next one, <id>~<gen>.
ALTER TABLE operations DROP CONSTRAINT operations_reason_check;
ALTER TABLE operations ADD CONSTRAINT operations_reason_check
    CHECK (reason IN ('timeout', 'provider_error', 'breaker_open', 'overloaded', 'deferred', 'outcome_unknown'));
ALTER TABLE operations ADD COLUMN key_gen integer NOT NULL DEFAULT 0 CHECK (key_gen >= 0);
ALTER TABLE operations ADD COLUMN outcome_unknown_since timestamptz;
-- When the latest provider call started: a not-found lookup that did not
-- close the key is believed only well after it (app.LookupSettle).
ALTER TABLE operations ADD COLUMN attempted_at timestamptz;
CREATE INDEX operations_outcome_unknown ON operations (outcome_unknown_since)
    WHERE outcome_unknown_since IS NOT NULL AND status IN ('queued', 'processing');

-- Charges the provider holds whose reference is none of our operations: a
-- sync charge that succeeded while our commit was lost, and whose client
-- never retried. Found by the orphan sweep, shown to operators, refunded
-- when ORPHAN_REFUND=true; adopted when the client's retry records the
-- operation after all.
CREATE TABLE orphan_charges (
    charge_id   text PRIMARY KEY,
    reference   text NOT NULL,
    amount      bigint NOT NULL,
    currency    text NOT NULL,
    status      text NOT NULL CHECK (status IN ('open', 'refunded', 'adopted')),
    created_at  timestamptz NOT NULL,
    found_at    timestamptz NOT NULL,
    resolved_at timestamptz,
    refund_id   text,
    error       text
);

CREATE INDEX orphan_charges_reference ON orphan_charges (reference);
CREATE INDEX orphan_charges_open ON orphan_charges (found_at) WHERE status = 'open';

-- How far each sweep has looked: charges created before swept_until have
-- been judged.
CREATE TABLE orphan_sweeps (
    name        text PRIMARY KEY,
    swept_until timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- +goose Down
DROP TABLE orphan_sweeps;
DROP TABLE orphan_charges;
DROP INDEX operations_outcome_unknown;
ALTER TABLE operations DROP COLUMN attempted_at;
ALTER TABLE operations DROP COLUMN outcome_unknown_since;
ALTER TABLE operations DROP COLUMN key_gen;
ALTER TABLE operations DROP CONSTRAINT operations_reason_check;
ALTER TABLE operations ADD CONSTRAINT operations_reason_check
    CHECK (reason IN ('timeout', 'provider_error', 'breaker_open', 'overloaded', 'deferred'));
