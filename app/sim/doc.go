// Package sim is Spillway's downstream simulator: the payment provider and
// the inventory service, in one http.Handler. It serves the generic HTTP
// payment contract that provider.HTTP speaks and, under InventoryPath,
// the generic inventory contract that provider.InventoryHTTP speaks, plus
// a control API that injects chaos (latency, error rate, hard down,
// flapping, random declines) into each dependency on its own and counts
// effects per idempotency key, so a demo or a test can prove that Spillway
// charges and reserves exactly once however badly either downstream
// behaves.
//
// Routes:
//
//	POST /charges                    charge (header Idempotency-Key)
//	GET  /charges/{key...}           what happened under a key; 404 closes it
//	GET  /charges?created_after=&limit=&after=
//	                                 charges oldest first, paged
//	POST /charges/{id}/refunds       refund a charge (header Idempotency-Key)
//	GET  /health                     payment provider: 200 up, 503 down
//
//	POST   /inventory/reservations                reserve (header Idempotency-Key)
//	GET    /inventory/reservations/by-key/{key...} what happened under a key; 404 closes it
//	DELETE /inventory/reservations/{id}           release, idempotent
//	GET    /inventory/stock/{sku}                 one SKU's stock; 404 unknown_sku
//	GET    /inventory/stock?skus=a,b              several (no skus: all), unknown ones left out
//	GET    /inventory/health                      inventory: 200 up, 503 down
//
//	GET  /control                    payment chaos
//	PUT  /control                    merge-update payment chaos
//	GET  /control/effects/{key...}   effects, calls, lookups, seq, refunds for one charge key
//	GET  /control/stats              payment totals
//	GET  /control/inventory          inventory chaos
//	PUT  /control/inventory          merge-update inventory chaos (same fields)
//	GET  /control/inventory/effects/{key...}
//	                                 reservations, calls, lookups, releases for one key
//	GET  /control/inventory/stats    inventory totals and the stock now
//	POST /control/reset              clear both dependencies' chaos and counters, restock
//
// The inventory lives under a path of its own so that INVENTORY_URL (the
// simulator's URL + InventoryPath) gets every route of its contract,
// /health included, while the root keeps serving the payment contract as
// before.
//
// Deterministic declines: an amount whose last two digits are 02 (102,
// 1002, 25002…) is always declined with decline_code "card_declined", so
// tests can ask for a decline without touching chaos.
//
// Ordering of a charge, which is what exactly-once tests rely on: the
// request is validated (400), counted as a call, checked against down and
// error_rate (503, no effect), then — holding the key's lock — either
// replays the answer stored for its key, or answers 409
// {"status":"key_closed"} with no effect if a lookup closed the key, or
// records a new effect (with the next global sequence number and its
// created_at) and stores its answer; and only THEN is the response delayed
// by latency. A client that gives up during the delay has therefore still
// caused an effect, as with a real provider, and a retry with the same key
// gets the stored answer.
//
// Ordering of a lookup, which is what makes "not found" safe to act on:
// validated, counted, checked against down and error_rate (503), then,
// holding the same per-key lock, it answers 200 with the charge if one was
// recorded (even while that charge's answer is still being delayed by
// latency: the effect exists) or else closes the key and answers 404
// {"status":"not_found"}. Because a charge decides under that lock too, a
// key never sees "not found" and then a charge: a request still on the wire
// when we concluded nothing happened finds the key closed. The lookup
// reports the outcome under the key (succeeded or declined); a later
// refund shows in the listing and the control API, not here. Latency
// delays the answer after the decision, as for charges.
//
// The listing pages through charges created strictly after created_after
// (RFC 3339; default: all), oldest first by created_at then id, limit per
// page (default 100, at most 1000). A non-empty next is the id of the last
// charge on the page; passing it back as after= continues after it, so
// charges recorded meanwhile never shift the pages still to come. Unknown
// or repeated parameters, bad values and cursors this simulator did not
// issue are 400 problems.
//
// A refund is of the whole charge and runs in one step under the
// simulator's lock: the first request with a key refunds and stores its
// answer, later ones with that key get the same answer and refund nothing.
// An unknown charge is 404, a declined or already refunded one 409, a key
// first used for another charge 422.
//
// Tests have a Go hook the HTTP contract does not: Hold(key) keeps back
// every answer to a charge or lookup under key, after all of the above
// has been recorded and before any latency, until Release(key) or the
// client leaves; Held(key) counts the answers that reached the hold. A
// test holds a call in flight for as long as it acts, or times its client
// out once Held says the provider has acted, instead of racing a latency
// against a deadline.
//
// Chaos applies to charges, lookups, listings and refunds alike: a down
// provider cannot answer anything. GET /health follows down and flapping
// only, without latency, so drills can ask whether the provider is up.
//
// The inventory mirrors all of this with its own chaos (SetInventoryChaos,
// PUT /control/inventory), so either dependency can be down, slow or
// flapping while the other is healthy. Its stock starts at Config.Stock
// (DefaultStock when nil) and Reset restores it. A reservation runs like a
// charge: validated (400), counted, inventory chaos (503, no effect), then
// under the key's lock the stored answer replayed, or 409 key_closed, or —
// under the simulator's lock, so stock never goes negative — 422 for an
// unknown SKU (nothing stored), 409 {"status":"out_of_stock","available":n}
// when the quantity exceeds the stock or a decline_rate draw says so
// (stored: a repeated key never reserves what its first request could
// not), else the stock taken and 200 {"id","status":"reserved"} stored;
// only then latency. A lookup by key answers the reservation as it is now
// (reserved or released), or 200 out_of_stock for a key first answered
// so, or closes the key with 404 {"status":"not_found"}. A release gives
// the stock back the first time and answers 200 released every time; an
// id never issued is 404. Hold works for reservation keys and lookups as
// for charges, and for a release under the reservation's id;
// FailNextReservationLookups is FailNextLookups for the inventory.
package sim
