// Package sim is Spillway's downstream payment simulator. It serves the
// generic HTTP payment contract that provider.HTTP speaks, plus a control
// API that injects chaos (latency, error rate, hard down, flapping, random
// declines) and counts effects per idempotency key, so a demo or a test can
// prove that Spillway charges exactly once however badly the downstream
// behaves.
//
// Routes:
//
//	POST /charges                    charge (header Idempotency-Key)
//	GET  /control                    current chaos
//	PUT  /control                    merge-update chaos
//	GET  /control/effects/{key...}   effects and calls for one key
//	GET  /control/stats              totals
//	POST /control/reset              clear chaos and counters
//
// Deterministic declines: an amount whose last two digits are 02 (102,
// 1002, 25002…) is always declined with decline_code "card_declined", so
// tests can ask for a decline without touching chaos.
//
// Ordering of a charge, which is what exactly-once tests rely on: the
// request is validated (400), counted as a call, checked against down and
// error_rate (503, no effect), then either replays the answer stored for its
// key or records a new effect and stores its answer — and only THEN is the
// response delayed by latency. A client that gives up during the delay has
// therefore still caused an effect, as with a real provider, and a retry
// with the same key gets the stored answer.
package sim
