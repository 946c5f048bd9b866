package provider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/spillway/spillway/app"
)

// chargeAnswer is the wire shape of a 200 or 402 answer.
type chargeAnswer struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	DeclineCode string `json:"decline_code"`
}

// unspecifiedDecline is the DeclineCode of a 402 whose body names none, so
// a declined result always carries a reason.
const unspecifiedDecline = "declined"

// decodeChargeAnswer turns a status and body into a result or an
// *app.ProviderError; it never returns both or neither.
//
// A 2xx counts only with status "succeeded" and an id: a success we cannot
// identify is treated as unavailable, and the retry with the same key
// fetches the stored answer again. A 402 is always a decline, even with an
// unreadable body, because it is the provider's business answer.
func decodeChargeAnswer(status int, body []byte) (app.ChargeResult, error) {
	switch {
	case status >= 200 && status < 300:
		var a chargeAnswer
		if err := json.Unmarshal(body, &a); err != nil {
			return app.ChargeResult{}, &app.ProviderError{Kind: app.FaultUnavailable, StatusCode: status,
				Err: fmt.Errorf("decode charge answer: %w", err)}
		}
		if a.Status != "succeeded" || a.ID == "" {
			return app.ChargeResult{}, &app.ProviderError{Kind: app.FaultUnavailable, StatusCode: status,
				Err: fmt.Errorf("unexpected charge answer: status %q, id %q", a.Status, a.ID)}
		}
		return app.ChargeResult{ProviderRef: a.ID}, nil

	case status == http.StatusPaymentRequired:
		var a chargeAnswer
		// Best effort: the status alone already says "declined".
		_ = json.Unmarshal(body, &a)
		code := a.DeclineCode
		if code == "" {
			code = unspecifiedDecline
		}
		return app.ChargeResult{Declined: true, ProviderRef: a.ID, DeclineCode: code}, nil

	default:
		return app.ChargeResult{}, &app.ProviderError{Kind: statusKind(status), StatusCode: status,
			Err: fmt.Errorf("provider answered %d: %s", status, excerpt(body))}
	}
}

// excerpt returns a short, printable piece of an error body for logs:
// the problem+json title and detail when present, else the raw start.
func excerpt(body []byte) string {
	var p struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
	}
	var s string
	if json.Unmarshal(body, &p) == nil {
		switch {
		case p.Title != "" && p.Detail != "":
			s = p.Title + ": " + p.Detail
		case p.Detail != "":
			s = p.Detail
		default:
			s = p.Title
		}
	}
	if s == "" {
		s = string(body)
	}
	const maxLen = 200
	if len(s) > maxLen {
		// Dropping invalid UTF-8 after the cut removes a split rune.
		s = strings.ToValidUTF8(s[:maxLen], "") + "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
