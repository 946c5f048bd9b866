// Package notify holds the three channel senders that River delivery
// workers use to tell a customer how their payment ended: Email (SMTP),
// SMS (a Twilio-style HTTP API) and Webhook (Standard Webhooks, signed).
//
// The senders touch no database and never retry on their own. Retrying
// belongs to the job queue, which knows how many attempts are left and can
// persist the outcome; a sender's job is to make one attempt and say, in a
// *DeliveryError, whether another attempt could help (Permanent), whether
// the receiver asked to stop (Disable) and how long it asked us to wait
// (RetryAfter). Every failure a sender returns is a *DeliveryError, so a
// worker can rely on errors.As.
//
// Each attempt also returns a Result with the status code and a short,
// sanitised excerpt of the answer, meant for the admin's delivery log.
//
// Webhook targets are customer-supplied URLs, so they are checked twice
// against server-side request forgery: CheckURL when the URL is accepted,
// and the dialer on every connection, which sees the address actually
// dialled and so cannot be fooled by DNS rebinding.
package notify
