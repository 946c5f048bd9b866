package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/spillway/spillway/app"
)

// refundAnswer is the wire shape of a 200 refund answer.
type refundAnswer struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	ChargeID string `json:"charge_id"`
}

// statusRefunded is the only status of a successful refund.
const statusRefunded = "refunded"

// Refund posts to {BaseURL}/charges/{chargeID}/refunds with key as its
// Idempotency-Key, so a retry after a timeout returns the first refund
// instead of making another.
func (p *HTTP) Refund(ctx context.Context, chargeID, key string) (app.RefundResult, error) {
	switch {
	case chargeID == "":
		return app.RefundResult{}, rejected("refund has no charge id")
	case key == "":
		// Without a key a retry after a timeout could refund twice.
		return app.RefundResult{}, rejected("refund has no idempotency key")
	}
	target := p.chargesURL + "/" + url.PathEscape(chargeID) + "/refunds"
	status, body, pe := p.exchange(ctx, http.MethodPost, target, key, []byte("{}"), "refund")
	if pe != nil {
		return app.RefundResult{}, pe
	}
	return decodeRefundAnswer(status, body, chargeID)
}

// decodeRefundAnswer turns a refund's status and body into a result or an
// *app.ProviderError, never both.
//
// Unlike a charge, a 409 is final here: the contract answers 409 for a
// charge that was declined or is already refunded, which no retry changes,
// so it is FaultRejected rather than the retried "in flight" 409. A 200 that
// is not status "refunded" with an id, or names another charge, is not a
// refund we can trust and is FaultUnavailable (asked again with the same
// key, which replays the first answer).
func decodeRefundAnswer(status int, body []byte, chargeID string) (app.RefundResult, error) {
	switch status {
	case http.StatusOK:
		var a refundAnswer
		if err := json.Unmarshal(body, &a); err != nil {
			return app.RefundResult{}, &app.ProviderError{Kind: app.FaultUnavailable, StatusCode: status,
				Err: fmt.Errorf("decode refund answer: %w", err)}
		}
		if a.ID == "" || a.Status != statusRefunded || (a.ChargeID != "" && a.ChargeID != chargeID) {
			return app.RefundResult{}, &app.ProviderError{Kind: app.FaultUnavailable, StatusCode: status,
				Err: fmt.Errorf("unexpected refund answer: id %q, status %q, charge %q", clip(a.ID), clip(a.Status), clip(a.ChargeID))}
		}
		return app.RefundResult{ID: a.ID, Status: a.Status}, nil
	case http.StatusConflict:
		return app.RefundResult{}, &app.ProviderError{Kind: app.FaultRejected, StatusCode: status,
			Err: fmt.Errorf("refund refused: %s", excerpt(body))}
	default:
		return app.RefundResult{}, &app.ProviderError{Kind: statusKind(status), StatusCode: status,
			Err: fmt.Errorf("refund answered %d: %s", status, excerpt(body))}
	}
}
