// Package provider holds Spillway's adapters to its downstreams. For
// payments (app.PaymentProvider): HTTP speaks the generic JSON payment
// contract served by app/sim (and by any provider that adopts it), Stripe
// speaks Stripe's PaymentIntents API through stripe-go. Each charges,
// looks up what happened under a key, lists charges for the orphan sweep
// and refunds; one file per action (http_lookup.go, stripe_refund.go, …).
// For inventory (app.InventoryService): InventoryHTTP speaks the generic
// JSON inventory contract (inventory_http.go): reserve, release, look up
// a reservation by key, read stock. Out of stock is its business answer,
// a result like a decline.
//
// All send the call's idempotency key (app.Charge.IdempotencyKey,
// app.Reservation.IdempotencyKey) as the Idempotency-Key header and never
// retry on their own: retries belong to Spillway's job queue, which
// reuses the same key so a call that timed out but took effect downstream
// is not charged twice. All honour ctx's deadline instead of a client
// timeout, and every failure that is not a decline (or out of stock) is an
// *app.ProviderError.
//
// This package also decides ProviderError.OutcomeUnknown, the flag that
// keeps an operation from being reported failed while a charge or a
// reservation may exist: set unless the request provably never left
// (faults.go, sendTrace) or a complete answer said what the downstream
// did. A stock read changes nothing, so its faults are never unknown.
package provider
