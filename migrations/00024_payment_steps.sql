-- +goose Up
-- Payments are one kind of operation among others: their one step is the
-- charge, worked by the same engine as an order's steps. A payment still
-- open when this runs (captured by a version before) gets that step, as
-- its own columns say it stands, so the worker carries it on: an outcome
-- we do not know stays unknown, to be settled by charging again under the
-- same provider key (which replays) or by a lookup.
UPDATE operations SET steps = jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
        'name', 'charge',
        'dependency', 'payment',
        'status', CASE WHEN outcome_unknown_since IS NOT NULL THEN 'processing' ELSE 'pending' END,
        'mode', mode,
        'attempts', attempts,
        'outcome_unknown', CASE WHEN outcome_unknown_since IS NOT NULL THEN true END,
        'attempted_at', attempted_at,
        'replays', true)))
    WHERE kind = 'payment' AND steps IS NULL AND status IN ('queued', 'processing');

-- +goose Down
-- A payment's step is a view of its own columns; older versions ignore it.
SELECT 1;
