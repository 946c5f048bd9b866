package notify

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/spillway/spillway/app"
)

// maxResponseText bounds Result.Response. The admin log wants a hint of
// what the receiver said, not its error page.
const maxResponseText = 512

// Result describes what came back from one delivery attempt, successful or
// not.
type Result struct {
	// StatusCode is the HTTP status or SMTP reply code when one arrived,
	// 0 when none did (for example the connection failed).
	StatusCode int
	// Response is a short excerpt (at most 512 bytes, valid UTF-8, no
	// control characters other than tab and newline) of the receiver's
	// answer, for the admin log.
	Response string
}

// DeliveryError is the only error type the senders return. Its fields tell
// the worker what to do next.
type DeliveryError struct {
	// Permanent means retrying cannot help: the address is invalid, the
	// receiver refused the request itself (an HTTP 4xx other than 408/429
	// for SMS, an SMTP 5xx), or the endpoint is gone.
	Permanent bool
	// Disable means a webhook endpoint answered 410 Gone: stop sending it
	// anything for this operation. It always comes with Permanent.
	Disable bool
	// RetryAfter is how long the receiver asked us to wait (Retry-After on
	// a 429 or 503), 0 when it did not say.
	RetryAfter time.Duration
	// StatusCode is the HTTP status or SMTP code that caused the failure,
	// 0 when none arrived.
	StatusCode int
	// Err is the underlying cause.
	Err error
}

func (e *DeliveryError) Error() string {
	kind := "retryable"
	switch {
	case e.Disable:
		kind = "permanent, disable endpoint"
	case e.Permanent:
		kind = "permanent"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "notify: %s delivery failure", kind)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, " (status %d)", e.StatusCode)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// permanent and retryable keep the call sites short and make the
// classification visible where it is decided.
func permanent(status int, err error) *DeliveryError {
	return &DeliveryError{Permanent: true, StatusCode: status, Err: err}
}

func retryable(status int, err error) *DeliveryError {
	return &DeliveryError{StatusCode: status, Err: err}
}

// responseText turns whatever a receiver sent into something safe to log
// and to store in a Postgres text column, which refuses NUL bytes and
// invalid UTF-8: invalid sequences become U+FFFD, control characters other
// than tab and newline are dropped, and the result is cut to
// maxResponseText bytes without splitting a character.
func responseText(raw []byte) string {
	s := strings.ToValidUTF8(string(raw), "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if r == '\r' || unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	return app.ClipText(strings.TrimSpace(s), maxResponseText)
}
