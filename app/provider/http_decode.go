package provider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/spillway/spillway/app"
)

// chargeAnswer is the wire shape of a 200 or 402 answer, and of the 409
// that refuses a closed key.
type chargeAnswer struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	DeclineCode string `json:"decline_code"`
}

// chargeMoney is what an answer says was charged. It is decoded apart and
// on a best-effort basis: the fields are informative, and a provider
// sending them in another shape must not turn a charge it made into a
// fault that is retried for ever.
type chargeMoney struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

func moneyOf(body []byte) chargeMoney {
	var m chargeMoney
	// A type error still fills the other field; an amount that is no
	// int64 stays 0, "the answer does not say".
	_ = json.Unmarshal(body, &m)
	return chargeMoney{Amount: max(m.Amount, 0), Currency: currencyCode(m.Currency)}
}

// currencyCode lower-cases a 3-letter code as Spillway stores it; anything
// else is no currency code and becomes "" ("the answer does not say").
func currencyCode(s string) string {
	if len(s) != 3 {
		return ""
	}
	b := []byte(strings.ToLower(s))
	for _, c := range b {
		if c < 'a' || c > 'z' {
			return ""
		}
	}
	return string(b)
}

// statusKeyClosed is the status of the 409 answered to a charge whose key a
// lookup closed.
const statusKeyClosed = "key_closed"

// unspecifiedDecline is the DeclineCode of a 402 whose body names none, so
// a declined result always carries a reason.
const unspecifiedDecline = "declined"

// decodeChargeAnswer turns a status and body into a result or an
// *app.ProviderError; it never returns both or neither. A complete answer
// is never OutcomeUnknown: the provider said what it did.
//
// A 2xx counts only with status "succeeded" and an id: a success we cannot
// identify is treated as unavailable, and the retry with the same key
// fetches the stored answer again. A 402 is always a decline, even with an
// unreadable body, because it is the provider's business answer. A 409
// saying key_closed is FaultKeyClosed: a lookup concluded nothing was
// charged, so nothing will be under this key; any other 409 is a request
// with this key still in flight, retried.
//
// Amount and Currency are copied from the answer (currency lower-cased, as
// Spillway stores it) so the caller can check the key was first used for
// this same charge.
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
				Err: fmt.Errorf("unexpected charge answer: status %q, id %q", clip(a.Status), clip(a.ID))}
		}
		m := moneyOf(body)
		return app.ChargeResult{ProviderRef: a.ID, Amount: m.Amount, Currency: m.Currency}, nil

	case status == http.StatusPaymentRequired:
		var a chargeAnswer
		// Best effort: the status alone already says "declined".
		_ = json.Unmarshal(body, &a)
		code := a.DeclineCode
		if code == "" {
			code = unspecifiedDecline
		}
		m := moneyOf(body)
		return app.ChargeResult{Declined: true, ProviderRef: a.ID, DeclineCode: code, Amount: m.Amount, Currency: m.Currency}, nil

	case status == http.StatusConflict && answerStatus(body) == statusKeyClosed:
		return app.ChargeResult{}, &app.ProviderError{Kind: app.FaultKeyClosed, StatusCode: status,
			Err: fmt.Errorf("provider answered %d: key closed by an earlier lookup", status)}

	default:
		return app.ChargeResult{}, &app.ProviderError{Kind: statusKind(status), StatusCode: status,
			Err: fmt.Errorf("provider answered %d: %s", status, excerpt(body))}
	}
}

// answerStatus returns the "status" member of a JSON object body, "" when
// there is none or the body is not one.
func answerStatus(body []byte) string {
	var a struct {
		Status string `json:"status"`
	}
	if json.Unmarshal(body, &a) != nil {
		return ""
	}
	return a.Status
}

// clip bounds untrusted text quoted in an error message.
func clip(s string) string { return app.ElideText(s, 64) }

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
	if s == "" {
		return "(empty body)"
	}
	return app.ElideText(s, 200)
}
