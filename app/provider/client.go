package provider

import (
	"net/http"
	"time"
)

// newPooledClient returns the HTTP client used when the caller gives none.
// It has no overall Timeout because the caller's ctx deadline decides how
// long a charge may take, and a deep idle pool because a burst of queued
// retries all target the same host.
func newPooledClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{
		Transport: t,
		// A redirected payment POST is a misconfiguration, not something to
		// follow silently: surface the 3xx instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
