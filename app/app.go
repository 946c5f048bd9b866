// Package app is Spillway's domain: operations and their lifecycle, the
// sync-or-enqueue runner, idempotency, priority rules, configuration and the
// interfaces to downstream providers. It knows nothing of HTTP or HTML; the
// web package turns its error codes into responses.
package app
