package provider

import (
	"net/http"
	"time"
)

// newPooledClient returns the HTTP client used when the caller gives none.
// It has no overall Timeout because the caller's ctx deadline decides how
// long a charge may take, and a deep idle pool because a burst of queued
// retries all target the same host: as deep as the workers a drain runs
// at once (WORKERS may be a few hundred), or every call past the pool's
// depth dials a new connection and closes it after (a drain's profile at
// 256 workers spent a quarter of its time dialling).
// wrap, when set, wraps its transport (tracing).
func newPooledClient(wrap func(http.RoundTripper) http.RoundTripper) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 512
	t.IdleConnTimeout = 90 * time.Second
	var rt http.RoundTripper = t
	if wrap != nil {
		rt = wrap(t)
	}
	return &http.Client{
		Transport: rt,
		// A redirected payment POST is a misconfiguration, not something to
		// follow silently: surface the 3xx instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
