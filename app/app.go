// Package app is Spillway's domain: operations and their lifecycle, the
// sync-or-enqueue runner, the provider call both paths share, breakers,
// idempotency, priority rules, the operator service, configuration, money
// and text rules, and the interfaces to downstream providers. It knows
// nothing of HTTP or HTML; the web package turns its error codes into
// responses.
//
// It is not storage-neutral, and does not pretend to be. Its promise is
// capture: a request that cannot be answered within its deadline becomes a
// River job in the same Postgres transaction that records the operation
// and the idempotency key's answer, so the job exists if and only if the
// answer that promises it was committed. That needs one transaction
// shared by our rows and River's, so app depends on:
//
//   - pgx: the store ports (OperationStore, OperatorStore) take a pgx.Tx,
//     the transaction River's pgx driver inserts into;
//   - River: job arguments are river.JobArgs with their river.InsertOpts
//     (PaymentArgs, DeliveryArgs), notifications are inserted as
//     []river.InsertManyParams in the transaction that ends an operation,
//     and the JobInserter and JobController ports are River's own client
//     methods (InsertTx, InsertManyTx, JobCancelTx, JobRetryTx);
//   - rivertype: those methods' results (JobInsertResult, and JobRow with
//     its rivertype.JobState).
//
// It opens no pool and starts no client: db implements the store ports,
// jobs builds the River client, and cmd/spillway wires them.
package app
