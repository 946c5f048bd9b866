package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/spillway/spillway/app"
)

// maxListLimit is the generic contract's largest page; a larger limit is
// sent as this rather than refused by the provider.
const maxListLimit = 1000

// listAnswer is the wire shape of a 200 GET /charges answer.
type listAnswer struct {
	Charges []listedCharge `json:"charges"`
	Next    string         `json:"next"`
}

type listedCharge struct {
	ID        string    `json:"id"`
	Reference string    `json:"reference"`
	Amount    int64     `json:"amount"`
	Currency  string    `json:"currency"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
}

// ListCharges asks {BaseURL}/charges for the charges created after
// createdAfter, oldest first, continuing after the cursor after (a
// previous page's Next; "" for the first page). limit ≤ 0 leaves the page
// size to the provider (100); above 1000 it is capped at 1000.
func (p *HTTP) ListCharges(ctx context.Context, createdAfter time.Time, after string, limit int) (app.ChargePage, error) {
	q := url.Values{"created_after": {createdAfter.UTC().Format(time.RFC3339Nano)}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(min(limit, maxListLimit)))
	}
	if after != "" {
		q.Set("after", after)
	}
	// Encode escapes the "+" of an offset, which would otherwise arrive as a space.
	status, body, pe := p.exchange(ctx, http.MethodGet, p.chargesURL+"?"+q.Encode(), "", nil, "list charges")
	if pe != nil {
		return app.ChargePage{}, pe
	}
	return decodeChargePage(status, body, after)
}

// decodeChargePage turns a listing's status and body into a page or an
// *app.ProviderError, never both.
//
// The whole page is refused (FaultUnavailable, so the sweep asks again)
// when any charge on it lacks an id, a time or a known status: skipping one
// would hide exactly the charge the orphan sweep exists to find. A next
// equal to the cursor we sent would page for ever and is refused too.
func decodeChargePage(status int, body []byte, after string) (app.ChargePage, error) {
	if status != http.StatusOK {
		return app.ChargePage{}, &app.ProviderError{Kind: statusKind(status), StatusCode: status,
			Err: fmt.Errorf("list charges answered %d: %s", status, excerpt(body))}
	}
	fault := func(err error) (app.ChargePage, error) {
		return app.ChargePage{}, &app.ProviderError{Kind: app.FaultUnavailable, StatusCode: status, Err: err}
	}
	var a listAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return fault(fmt.Errorf("decode charge listing: %w", err))
	}
	if a.Charges == nil && !isJSONObjectWith(body, "charges") {
		return fault(errors.New("charge listing has no charges array"))
	}
	if a.Next != "" && a.Next == after {
		return fault(fmt.Errorf("charge listing's next %q repeats the cursor sent", clip(a.Next)))
	}
	page := app.ChargePage{Charges: make([]app.ProviderCharge, 0, len(a.Charges)), Next: a.Next}
	for i, c := range a.Charges {
		switch {
		case c.ID == "":
			return fault(fmt.Errorf("charge %d in listing has no id", i))
		case c.CreatedAt.IsZero():
			return fault(fmt.Errorf("charge %s in listing has no created_at", clip(c.ID)))
		case !knownChargeStatus(c.Status):
			return fault(fmt.Errorf("charge %s in listing has unknown status %q", clip(c.ID), clip(c.Status)))
		}
		page.Charges = append(page.Charges, app.ProviderCharge{
			ID:        c.ID,
			Reference: c.Reference,
			Amount:    max(c.Amount, 0),
			Currency:  currencyCode(c.Currency),
			Status:    c.Status,
			CreatedAt: c.CreatedAt,
		})
	}
	return page, nil
}

// knownChargeStatus lists app.ProviderCharge's statuses.
func knownChargeStatus(s string) bool {
	switch s {
	case "succeeded", "declined", "processing", "refunded":
		return true
	}
	return false
}

// isJSONObjectWith reports whether body is a JSON object with member name
// (present, even if null or empty).
func isJSONObjectWith(body []byte, name string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return false
	}
	_, ok := m[name]
	return ok
}
