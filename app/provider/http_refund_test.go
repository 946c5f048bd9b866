package provider_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/sim"
)

func TestHTTPRefundTwiceWithOneKeyRefundsOnce(t *testing.T) {
	t.Parallel()
	s, srv := startSim(t)
	p := newHTTP(t, srv.URL)
	res, err := p.Charge(context.Background(), charge1("op-1"))
	if err != nil {
		t.Fatalf("Charge: %v", err)
	}
	first, err := p.Refund(context.Background(), res.ProviderRef, "refund-op-1")
	if err != nil {
		t.Fatalf("Refund: %v", err)
	}
	second, err := p.Refund(context.Background(), res.ProviderRef, "refund-op-1")
	if err != nil {
		t.Fatalf("second Refund: %v", err)
	}
	if first != second || first.Status != "refunded" || !strings.HasPrefix(first.ID, "re_") {
		t.Errorf("refunds = %+v then %+v, want the same refund twice", first, second)
	}
	if n := s.Refunds(res.ProviderRef); n != 1 {
		t.Errorf("sim refunds = %d, want 1", n)
	}
	page, err := p.ListCharges(context.Background(), time.Time{}, "", 0)
	if err != nil || len(page.Charges) != 1 || page.Charges[0].Status != "refunded" {
		t.Errorf("listing after refund = %+v, %v", page, err)
	}
}

func TestHTTPRefundRefusals(t *testing.T) {
	t.Parallel()
	s, srv := startSim(t)
	p := newHTTP(t, srv.URL)
	declined, err := p.Charge(context.Background(), app.Charge{IdempotencyKey: "op-d", Amount: 1002, Currency: "usd"})
	if err != nil || !declined.Declined {
		t.Fatalf("Charge = %+v, %v", declined, err)
	}
	tests := []struct {
		name       string
		chargeID   string
		key        string
		chaos      sim.Chaos
		wantKind   app.FaultKind
		wantStatus int
	}{
		{name: "unknown charge", chargeID: "ch_nosuch", key: "k1", wantKind: app.FaultRejected, wantStatus: 404},
		{name: "declined charge", chargeID: declined.ProviderRef, key: "k2", wantKind: app.FaultRejected, wantStatus: 409},
		{name: "no key", chargeID: declined.ProviderRef, wantKind: app.FaultRejected},
		{name: "no charge id", key: "k3", wantKind: app.FaultRejected},
	}
	for _, tt := range tests {
		_, err := p.Refund(context.Background(), tt.chargeID, tt.key)
		assertFault(t, err, tt.wantKind, tt.wantStatus)
		assertOutcome(t, err, tt.wantKind, false)
	}
	s.SetChaos(sim.Chaos{Down: true})
	_, err = p.Refund(context.Background(), declined.ProviderRef, "k4")
	assertFault(t, err, app.FaultUnavailable, 503)
	if n := s.TotalRefunds(); n != 0 {
		t.Errorf("sim refunds = %d, want 0", n)
	}
}

func TestHTTPRefundAnswerMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		body       string
		want       app.RefundResult
		wantKind   app.FaultKind
		wantStatus int
	}{
		{name: "refunded", status: 200, body: `{"id":"re_1","status":"refunded","charge_id":"ch_1"}`, want: app.RefundResult{ID: "re_1", Status: "refunded"}},
		{name: "refunded without charge id", status: 200, body: `{"id":"re_1","status":"refunded"}`, want: app.RefundResult{ID: "re_1", Status: "refunded"}},
		{name: "another charge's refund", status: 200, body: `{"id":"re_1","status":"refunded","charge_id":"ch_2"}`, wantKind: app.FaultUnavailable, wantStatus: 200},
		{name: "no id", status: 200, body: `{"status":"refunded"}`, wantKind: app.FaultUnavailable, wantStatus: 200},
		{name: "other status", status: 200, body: `{"id":"re_1","status":"pending"}`, wantKind: app.FaultUnavailable, wantStatus: 200},
		{name: "unparseable", status: 200, body: `{`, wantKind: app.FaultUnavailable, wantStatus: 200},
		{name: "409 is final", status: 409, body: `{"title":"Conflict","detail":"already refunded"}`, wantKind: app.FaultRejected, wantStatus: 409},
		{name: "404", status: 404, wantKind: app.FaultRejected, wantStatus: 404},
		{name: "422", status: 422, wantKind: app.FaultRejected, wantStatus: 422},
		{name: "500", status: 500, wantKind: app.FaultUnavailable, wantStatus: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.URL.EscapedPath() != "/charges/ch_1/refunds" || r.Header.Get("Idempotency-Key") != "rk" {
					t.Errorf("request %s %s headers %v", r.Method, r.URL.EscapedPath(), r.Header)
				}
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			}))
			t.Cleanup(srv.Close)
			got, err := newHTTP(t, srv.URL).Refund(context.Background(), "ch_1", "rk")
			if tt.wantKind != "" {
				assertFault(t, err, tt.wantKind, tt.wantStatus)
				return
			}
			if err != nil {
				t.Fatalf("Refund: %v", err)
			}
			if got != tt.want {
				t.Errorf("refund = %+v, want %+v", got, tt.want)
			}
		})
	}
}
