package notify

import (
	"io"
	"net/http"
	"time"
)

// maxReadBytes bounds how much of an HTTP answer is read. Receivers are
// not trusted to answer briefly, and the admin log keeps 512 bytes anyway.
const maxReadBytes = 4 << 10

// readExcerpt reads at most maxReadBytes of resp's body and returns it as
// log-safe text. A read error only shortens the excerpt: the status code
// has already said what happened.
func readExcerpt(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxReadBytes))
	return responseText(b)
}

// retryAfterOf returns the receiver's Retry-After hint for the statuses
// that carry one in practice (429 Too Many Requests, 503 Service
// Unavailable), 0 for any other.
func retryAfterOf(resp *http.Response, now time.Time) time.Duration {
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
		return 0
	}
	return parseRetryAfter(resp.Header.Get("Retry-After"), now)
}

// noRedirects makes an http.Client hand back a 3xx instead of following
// it: a POST that is redirected was sent to the wrong place, and following
// it to wherever the answer points would bypass our checks on the target.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
