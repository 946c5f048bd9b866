// Package provider holds Spillway's app.PaymentProvider implementations:
// HTTP speaks the generic JSON payment contract served by web/sim (and by
// any provider that adopts it), Stripe speaks Stripe's PaymentIntents API
// through stripe-go.
//
// Both send app.Charge.IdempotencyKey as the Idempotency-Key header and
// never retry on their own: retries belong to Spillway's job queue, which
// reuses the same key so a call that timed out but took effect downstream
// is not charged twice. Both honour ctx's deadline instead of a client
// timeout, and every failure that is not a decline is an *app.ProviderError.
package provider
