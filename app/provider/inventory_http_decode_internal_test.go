package provider

import (
	"errors"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
)

// faultOf returns err's kind, "" for nil.
func faultOf(t *testing.T, err error) app.FaultKind {
	t.Helper()
	if err == nil {
		return ""
	}
	var pe *app.ProviderError
	if !errors.As(err, &pe) {
		t.Fatalf("err %v (%T) is not *app.ProviderError", err, err)
	}
	if pe.OutcomeUnknown {
		t.Errorf("a complete answer decoded as outcome unknown: %v", err)
	}
	return pe.Kind
}

func TestDecodeReservationAnswer(t *testing.T) {
	t.Parallel()
	r := app.Reservation{IdempotencyKey: "k", SKU: "sku-a", Quantity: 2}
	tests := []struct {
		name     string
		status   int
		body     string
		want     app.ReservationResult
		wantKind app.FaultKind
	}{
		{"reserved", 200, `{"id":"rs_1","status":"reserved","sku":"sku-a","quantity":2}`, app.ReservationResult{ID: "rs_1", Status: app.ReservationReserved}, ""},
		{"reserved, bare contract", 200, `{"id":"rs_1","status":"reserved"}`, app.ReservationResult{ID: "rs_1", Status: app.ReservationReserved}, ""},
		{"reserved, odd echo types ignored", 200, `{"id":"rs_1","status":"reserved","quantity":"2"}`, app.ReservationResult{ID: "rs_1", Status: app.ReservationReserved}, ""},
		{"reserved without id", 200, `{"status":"reserved"}`, app.ReservationResult{}, app.FaultUnavailable},
		{"200 saying released", 200, `{"id":"rs_1","status":"released"}`, app.ReservationResult{}, app.FaultUnavailable},
		{"200 not JSON", 200, `ok`, app.ReservationResult{}, app.FaultUnavailable},
		{"reserved for another sku", 200, `{"id":"rs_1","status":"reserved","sku":"sku-b"}`, app.ReservationResult{}, app.FaultConflict},
		{"reserved for another quantity", 200, `{"id":"rs_1","status":"reserved","quantity":3}`, app.ReservationResult{}, app.FaultConflict},
		{"out of stock", 409, `{"status":"out_of_stock","available":1}`, app.ReservationResult{Status: app.ReservationOutOfStock, Available: 1}, ""},
		{"out of stock, none left", 409, `{"status":"out_of_stock","available":0}`, app.ReservationResult{Status: app.ReservationOutOfStock}, ""},
		{"out of stock, count unreadable", 409, `{"status":"out_of_stock","available":-4}`, app.ReservationResult{Status: app.ReservationOutOfStock}, ""},
		{"out of stock, count not a number", 409, `{"status":"out_of_stock","available":"many"}`, app.ReservationResult{Status: app.ReservationOutOfStock}, ""},
		{"out of stock for another sku", 409, `{"status":"out_of_stock","available":1,"sku":"sku-b"}`, app.ReservationResult{}, app.FaultConflict},
		{"key closed", 409, `{"status":"key_closed"}`, app.ReservationResult{}, app.FaultKeyClosed},
		{"409 in flight", 409, `{"status":"in_flight"}`, app.ReservationResult{}, app.FaultUnavailable},
		{"409 problem", 409, `{"type":"about:blank","title":"Conflict"}`, app.ReservationResult{}, app.FaultUnavailable},
		{"unknown sku", 422, `{"title":"Unprocessable Entity","detail":"unknown sku"}`, app.ReservationResult{}, app.FaultRejected},
		{"bad request", 400, ``, app.ReservationResult{}, app.FaultRejected},
		{"unavailable", 503, `{"title":"Service Unavailable"}`, app.ReservationResult{}, app.FaultUnavailable},
		{"rate limited", 429, ``, app.ReservationResult{}, app.FaultUnavailable},
		{"redirect", 302, ``, app.ReservationResult{}, app.FaultUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := decodeReservationAnswer(tt.status, []byte(tt.body), r)
			if got != tt.want || faultOf(t, err) != tt.wantKind {
				t.Errorf("= %+v, %v; want %+v, fault %q", got, err, tt.want, tt.wantKind)
			}
		})
	}
}

func TestDecodeReleaseAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		status   int
		body     string
		wantKind app.FaultKind
	}{
		{"released", 200, `{"id":"rs_1","status":"released"}`, ""},
		{"another reservation", 200, `{"id":"rs_2","status":"released"}`, app.FaultUnavailable},
		{"no id", 200, `{"status":"released"}`, app.FaultUnavailable},
		{"still reserved", 200, `{"id":"rs_1","status":"reserved"}`, app.FaultUnavailable},
		{"not JSON", 200, `released`, app.FaultUnavailable},
		{"no such reservation", 404, `{"title":"Not Found"}`, app.FaultRejected},
		{"unavailable", 503, ``, app.FaultUnavailable},
		{"in flight", 409, ``, app.FaultUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := decodeReleaseAnswer(tt.status, []byte(tt.body), "rs_1")
			if faultOf(t, err) != tt.wantKind {
				t.Errorf("= %+v, %v; want fault %q", got, err, tt.wantKind)
			}
			if err == nil && got != (app.ReleaseResult{ID: "rs_1", Status: app.ReservationReleased}) {
				t.Errorf("result = %+v", got)
			}
		})
	}
}

func TestDecodeReservationLookup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		status   int
		body     string
		want     app.ReservationLookup
		wantKind app.FaultKind
	}{
		{"reserved", 200, `{"id":"rs_1","status":"reserved"}`, app.ReservationLookup{Status: app.ReservationReserved, ID: "rs_1"}, ""},
		{"released", 200, `{"id":"rs_1","status":"released"}`, app.ReservationLookup{Status: app.ReservationReleased, ID: "rs_1"}, ""},
		{"out of stock", 200, `{"status":"out_of_stock","available":2}`, app.ReservationLookup{Status: app.ReservationOutOfStock, Available: 2}, ""},
		{"reserved without id", 200, `{"status":"reserved"}`, app.ReservationLookup{}, app.FaultUnavailable},
		{"200 saying not_found", 200, `{"status":"not_found"}`, app.ReservationLookup{}, app.FaultUnavailable},
		{"200 not JSON", 200, `{`, app.ReservationLookup{}, app.FaultUnavailable},
		{"not found closes the key", 404, `{"status":"not_found"}`, app.ReservationLookup{Status: app.ReservationNotFound, KeyClosed: true}, ""},
		// A 404 that does not say not_found proves nothing was reserved no
		// more than a wrong URL does.
		{"bare 404", 404, `404 page not found`, app.ReservationLookup{}, app.FaultRejected},
		{"unavailable", 503, ``, app.ReservationLookup{}, app.FaultUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := decodeReservationLookup(tt.status, []byte(tt.body))
			if got != tt.want || faultOf(t, err) != tt.wantKind {
				t.Errorf("= %+v, %v; want %+v, fault %q", got, err, tt.want, tt.wantKind)
			}
		})
	}
}

func TestDecodeStock(t *testing.T) {
	t.Parallel()
	asOf := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := app.StockLevel{SKU: "a", Available: 5, AsOf: asOf}
	b0 := app.StockLevel{SKU: "b", Available: 0, AsOf: asOf}
	const at = `"as_of":"2026-01-02T03:04:05Z"`
	tests := []struct {
		name     string
		list     bool // GET /stock?skus=a,b rather than GET /stock/a
		status   int
		body     string
		want     []app.StockLevel
		wantKind app.FaultKind
	}{
		{"one", false, 200, `{"sku":"a","available":5,` + at + `}`, []app.StockLevel{a}, ""},
		{"one for another sku", false, 200, `{"sku":"b","available":5,` + at + `}`, nil, app.FaultUnavailable},
		{"one without count", false, 200, `{"sku":"a",` + at + `}`, nil, app.FaultUnavailable},
		{"one negative", false, 200, `{"sku":"a","available":-1,` + at + `}`, nil, app.FaultUnavailable},
		{"one without time", false, 200, `{"sku":"a","available":5}`, nil, app.FaultUnavailable},
		{"one with a bad time", false, 200, `{"sku":"a","available":5,"as_of":"yesterday"}`, nil, app.FaultUnavailable},
		{"unknown sku", false, 404, `{"status":"unknown_sku","sku":"a"}`, []app.StockLevel{}, ""},
		{"bare 404", false, 404, ``, nil, app.FaultRejected},
		{"one unavailable", false, 503, ``, nil, app.FaultUnavailable},
		{"list", true, 200, `{"stock":[{"sku":"b","available":0,` + at + `},{"sku":"a","available":5,` + at + `}]}`, []app.StockLevel{b0, a}, ""},
		{"list, one unknown", true, 200, `{"stock":[{"sku":"a","available":5,` + at + `}]}`, []app.StockLevel{a}, ""},
		{"list, none known", true, 200, `{"stock":[]}`, []app.StockLevel{}, ""},
		{"list, missing", true, 200, `{}`, nil, app.FaultUnavailable},
		{"list, repeated", true, 200, `{"stock":[{"sku":"a","available":5,` + at + `},{"sku":"a","available":5,` + at + `}]}`, nil, app.FaultUnavailable},
		{"list, not asked", true, 200, `{"stock":[{"sku":"c","available":5,` + at + `}]}`, nil, app.FaultUnavailable},
		{"list, bad level", true, 200, `{"stock":[{"sku":"a","available":5}]}`, nil, app.FaultUnavailable},
		{"list, not JSON", true, 200, `[`, nil, app.FaultUnavailable},
		{"list, 400", true, 400, `{"detail":"skus"}`, nil, app.FaultRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []app.StockLevel
			var err error
			if tt.list {
				got, err = decodeStockList(tt.status, []byte(tt.body), []string{"a", "b"})
			} else {
				got, err = decodeStockLevel(tt.status, []byte(tt.body), "a")
			}
			if faultOf(t, err) != tt.wantKind || (got == nil) != (tt.want == nil) || len(got) != len(tt.want) {
				t.Fatalf("= %+v, %v; want %+v, fault %q", got, err, tt.want, tt.wantKind)
			}
			for i := range got {
				if got[i].SKU != tt.want[i].SKU || got[i].Available != tt.want[i].Available || !got[i].AsOf.Equal(tt.want[i].AsOf) {
					t.Errorf("level %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}
