-- pgbench script for `make bench`: the database ceiling of durable capture.
--
-- One transaction with the two rows every captured payment needs, on
-- Spillway's real schema: a River job shaped as River's InsertTx writes it
-- for the payments queue, and the operation row pointing at it. This is the
-- least a capture can ask of Postgres; Spillway's own transaction also takes
-- the idempotency lock, reads and writes the idempotency record and updates
-- the operation, so it is expected to land below this line.
--
-- Run by cmd/spillway-bench/pgbench.go as
--   pgbench -n -M prepared -c 64 -j <cpus> -T 10 -f capture.sql <url>
\set amount random(100, 99999)
BEGIN;
INSERT INTO river_job (args, kind, max_attempts, priority, queue, state, scheduled_at, metadata, tags)
VALUES (jsonb_build_object('operation_id', gen_random_uuid()), 'payment', 25, 3, 'payments', 'available',
        now(), '{}', '{}')
RETURNING id AS job_id, args->>'operation_id' AS op_id \gset
INSERT INTO operations (id, kind, status, mode, reason, attempts, priority, amount, currency, job_id,
                        created_at, updated_at)
VALUES (:op_id::uuid, 'payment', 'queued', 'async', 'breaker_open', 0, 3, :amount, 'usd', :job_id,
        now(), now());
COMMIT;
