package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/spillway/spillway/app"
)

// lookupAnswer is the wire shape of a 200 or 404 GET /charges/{key} answer.
type lookupAnswer struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	DeclineCode string `json:"decline_code"`
}

// Lookup asks {BaseURL}/charges/{key} what happened under key. On the
// generic contract a not-found answer also closes the key, so the result
// has KeyClosed set and a charge still on the wire cannot land later.
//
// A lookup is not free of effects (it may close the key), so a lookup
// that timed out or lost its connection is OutcomeUnknown like a charge:
// the key may or may not be closed now, and the next lookup will say.
func (p *HTTP) Lookup(ctx context.Context, key string) (app.ChargeLookup, error) {
	if key == "" {
		return app.ChargeLookup{}, rejected("lookup has no idempotency key")
	}
	status, body, pe := p.exchange(ctx, http.MethodGet, p.chargesURL+"/"+url.PathEscape(key), "", nil, "lookup")
	if pe != nil {
		return app.ChargeLookup{}, pe
	}
	return decodeLookupAnswer(status, body)
}

// decodeLookupAnswer turns a lookup's status and body into an answer or an
// *app.ProviderError, never both or neither.
//
// A 404 means "nothing charged, key closed" only when its body says
// {"status":"not_found"}. A bare 404 — a proxy, a provider that does not
// serve lookups, a wrong base URL — says nothing about the charge, and
// reading it as "nothing charged" would let an operation fail that did
// charge; it is FaultRejected instead, for an operator to see.
//
// A 200 must name a status we know; succeeded and declined must carry the
// charge's id. Anything else is FaultUnavailable: the lookup is asked
// again later, and nothing is concluded from an answer we cannot read.
func decodeLookupAnswer(status int, body []byte) (app.ChargeLookup, error) {
	switch status {
	case http.StatusOK:
		var a lookupAnswer
		if err := json.Unmarshal(body, &a); err != nil {
			return app.ChargeLookup{}, &app.ProviderError{Kind: app.FaultUnavailable, StatusCode: status,
				Err: fmt.Errorf("decode lookup answer: %w", err)}
		}
		switch app.LookupStatus(a.Status) {
		case app.LookupSucceeded:
			if a.ID != "" {
				return app.ChargeLookup{Status: app.LookupSucceeded, ProviderRef: a.ID}, nil
			}
		case app.LookupDeclined:
			if a.ID != "" {
				code := a.DeclineCode
				if code == "" {
					code = unspecifiedDecline
				}
				return app.ChargeLookup{Status: app.LookupDeclined, ProviderRef: a.ID, DeclineCode: code}, nil
			}
		case app.LookupProcessing:
			return app.ChargeLookup{Status: app.LookupProcessing, ProviderRef: a.ID}, nil
		}
		return app.ChargeLookup{}, &app.ProviderError{Kind: app.FaultUnavailable, StatusCode: status,
			Err: fmt.Errorf("unexpected lookup answer: status %q, id %q", clip(a.Status), clip(a.ID))}

	case http.StatusNotFound:
		if answerStatus(body) == string(app.LookupNotFound) {
			return app.ChargeLookup{Status: app.LookupNotFound, KeyClosed: true}, nil
		}
		return app.ChargeLookup{}, &app.ProviderError{Kind: app.FaultRejected, StatusCode: status,
			Err: fmt.Errorf("lookup answered 404 without status not_found (is lookup served at this URL?): %s", excerpt(body))}

	default:
		return app.ChargeLookup{}, &app.ProviderError{Kind: statusKind(status), StatusCode: status,
			Err: fmt.Errorf("lookup answered %d: %s", status, excerpt(body))}
	}
}
