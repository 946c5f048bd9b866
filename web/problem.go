package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/spillway/spillway/app"
)

// problemTypePrefix roots the stable problem types; clients match on them.
const problemTypePrefix = "urn:spillway:problem:"

// problem is an RFC 9457 problem details document. It carries nothing that
// differs between two answers to the same request (the request id is in a
// header), so a replayed 402 is byte for byte the first.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Extensions.
	Field      string                 `json:"field,omitempty"`
	Operation  *app.OperationDocument `json:"operation,omitempty"`
	retryAfter int
}

func problemNotFound(detail string) problem {
	return problem{Type: "not-found", Title: "Not found", Status: http.StatusNotFound, Detail: detail}
}

// problemFor maps an error to its problem: the one place app's codes
// become HTTP statuses.
func problemFor(err error, retryAfter int) problem {
	var e *app.Error
	if !errors.As(err, &e) {
		return problem{Type: "internal", Title: "Internal error", Status: http.StatusInternalServerError,
			Detail: "something went wrong on our side; nothing was acknowledged"}
	}
	p := problem{Detail: e.Message, Field: e.Field}
	switch e.Code {
	case app.EBADREQUEST:
		p.Type, p.Title, p.Status = "bad-request", "Bad request", http.StatusBadRequest
	case app.EINVALID:
		p.Type, p.Title, p.Status = "validation-failed", "Validation failed", http.StatusUnprocessableEntity
	case app.ETOOLARGE:
		p.Type, p.Title, p.Status = "body-too-large", "Request body too large", http.StatusRequestEntityTooLarge
	case app.EUNSUPPORTED:
		p.Type, p.Title, p.Status = "unsupported-media-type", "Unsupported media type", http.StatusUnsupportedMediaType
	case app.ENOTFOUND:
		p.Type, p.Title, p.Status = "not-found", "Not found", http.StatusNotFound
	case app.ECONFLICT:
		p.Type, p.Title, p.Status = "request-in-flight", "Request in flight", http.StatusConflict
		p.retryAfter = 1
	case app.EKEYREUSED:
		p.Type, p.Title, p.Status = "idempotency-key-reused", "Idempotency key reused", http.StatusUnprocessableEntity
	case app.EUNAVAILABLE:
		p.Type, p.Title, p.Status = "unavailable", "Service unavailable", http.StatusServiceUnavailable
		p.retryAfter = retryAfter
	default:
		p.Type, p.Title, p.Status = "internal", "Internal error", http.StatusInternalServerError
		p.Detail = "something went wrong on our side; nothing was acknowledged"
	}
	return p
}

func writeProblem(w http.ResponseWriter, r *http.Request, p problem) {
	p.Type = problemTypePrefix + p.Type
	p.Instance = r.URL.Path
	if p.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(p.retryAfter))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
