package app

import (
	"errors"
	"fmt"
)

// Error codes are stable: web maps each to one HTTP status in one place.
const (
	EBADREQUEST  = "bad_request" // the request cannot be read: malformed JSON, bad header
	EINVALID     = "invalid"     // the request is well-formed but fails validation
	ETOOLARGE    = "too_large"   // the request body is over its limit
	EUNSUPPORTED = "unsupported" // wrong content type
	ENOTFOUND    = "not_found"   // no such entity
	ECONFLICT    = "conflict"    // the same idempotency key is still in flight
	EKEYREUSED   = "key_reused"  // the same idempotency key came with another body
	EUNAVAILABLE = "unavailable" // durable capture is impossible right now; nothing was acknowledged
	EINTERNAL    = "internal"    // a bug or an unexpected failure
)

// Error is a domain error with a code the caller can act on and a message
// safe to show to a client. Field names a request field when one is at fault.
type Error struct {
	Code    string
	Message string
	Field   string
	Err     error // the cause, for logs; never shown to clients
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldErrorf returns an EINVALID error about one request field.
func FieldErrorf(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, or EINTERNAL.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err, hiding internals.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
