package provider

import (
	"testing"

	"github.com/spillway/spillway/app"
)

// FuzzDecodeReservationAnswer: never a panic; exactly one of a result or
// a fault; a reservation always has an id, out of stock never does, and
// neither comes from a status that does not say so.
func FuzzDecodeReservationAnswer(f *testing.F) {
	seeds := []struct {
		status int
		body   string
	}{
		{200, `{"id":"rs_1","status":"reserved","sku":"sku-a","quantity":2}`},
		{200, `{"id":"rs_1","status":"reserved","sku":"sku-b"}`},
		{200, `{"status":"reserved"}`},
		{409, `{"status":"out_of_stock","available":3}`},
		{409, `{"status":"out_of_stock","available":-1e9}`},
		{409, `{"status":"key_closed"}`},
		{409, `{"status":"in_flight"}`},
		{422, `{"title":"Unprocessable Entity"}`},
		{503, "\xff"},
		{0, `null`},
	}
	for _, s := range seeds {
		f.Add(s.status, []byte(s.body))
	}
	r := app.Reservation{IdempotencyKey: "k", SKU: "sku-a", Quantity: 2}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		res, err := decodeReservationAnswer(status, body, r)
		if err != nil {
			if res != (app.ReservationResult{}) {
				t.Errorf("both result %+v and error %v", res, err)
			}
			checkCompleteAnswerFault(t, asFault(t, err), status)
			return
		}
		switch res.Status {
		case app.ReservationReserved:
			if res.ID == "" || res.Available != 0 || status < 200 || status > 299 {
				t.Errorf("reserved %+v from %d %q", res, status, body)
			}
		case app.ReservationOutOfStock:
			if res.ID != "" || res.Available < 0 || status != 409 {
				t.Errorf("out of stock %+v from %d %q", res, status, body)
			}
		default:
			t.Errorf("status %q from %d %q", res.Status, status, body)
		}
	})
}

// FuzzDecodeReleaseAnswer: a release only from a 200 naming our
// reservation and status released.
func FuzzDecodeReleaseAnswer(f *testing.F) {
	for _, s := range []struct {
		status int
		body   string
	}{
		{200, `{"id":"rs_1","status":"released"}`},
		{200, `{"id":"rs_2","status":"released"}`},
		{200, `{"id":"rs_1","status":"reserved"}`},
		{404, `{"title":"Not Found"}`},
		{500, ``},
	} {
		f.Add(s.status, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		res, err := decodeReleaseAnswer(status, body, "rs_1")
		if err != nil {
			if res != (app.ReleaseResult{}) {
				t.Errorf("both result %+v and error %v", res, err)
			}
			checkCompleteAnswerFault(t, asFault(t, err), status)
			return
		}
		if status != 200 || res != (app.ReleaseResult{ID: "rs_1", Status: app.ReservationReleased}) {
			t.Errorf("release %+v from %d %q", res, status, body)
		}
	})
}

// FuzzDecodeReservationLookup: "nothing reserved" only from a 404 that
// says not_found, never from a body we merely failed to read.
func FuzzDecodeReservationLookup(f *testing.F) {
	for _, s := range []struct {
		status int
		body   string
	}{
		{200, `{"id":"rs_1","status":"reserved"}`},
		{200, `{"id":"rs_1","status":"released"}`},
		{200, `{"status":"out_of_stock","available":2}`},
		{200, `{"status":"not_found"}`},
		{404, `{"status":"not_found"}`},
		{404, `404 page not found`},
		{503, ``},
	} {
		f.Add(s.status, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		l, err := decodeReservationLookup(status, body)
		if err != nil {
			if l != (app.ReservationLookup{}) {
				t.Errorf("both answer %+v and error %v", l, err)
			}
			checkCompleteAnswerFault(t, asFault(t, err), status)
			return
		}
		switch l.Status {
		case app.ReservationNotFound:
			if status != 404 || !l.KeyClosed || l.ID != "" {
				t.Errorf("not found %+v from %d %q", l, status, body)
			}
		case app.ReservationReserved, app.ReservationReleased:
			if status != 200 || l.ID == "" || l.KeyClosed {
				t.Errorf("answer %+v from %d %q", l, status, body)
			}
		case app.ReservationOutOfStock:
			if status != 200 || l.KeyClosed || l.Available < 0 {
				t.Errorf("out of stock %+v from %d %q", l, status, body)
			}
		default:
			t.Errorf("unknown status %q from %d %q", l.Status, status, body)
		}
	})
}

// FuzzDecodeStock: both stock decoders never panic, return a slice or a
// fault, and every level returned is for a SKU asked about, once, with a
// count of zero or more and a time.
func FuzzDecodeStock(f *testing.F) {
	for _, s := range []struct {
		status int
		body   string
	}{
		{200, `{"sku":"a","available":5,"as_of":"2026-01-02T03:04:05Z"}`},
		{200, `{"stock":[{"sku":"a","available":5,"as_of":"2026-01-02T03:04:05Z"},{"sku":"b","available":0,"as_of":"2026-01-02T03:04:05+02:00"}]}`},
		{200, `{"stock":[{"sku":"a","available":5,"as_of":"2026-01-02T03:04:05Z"},{"sku":"a","available":5,"as_of":"2026-01-02T03:04:05Z"}]}`},
		{200, `{"sku":"a","available":-1,"as_of":"2026-01-02T03:04:05Z"}`},
		{200, `{"stock":null}`},
		{404, `{"status":"unknown_sku"}`},
		{404, ``},
	} {
		f.Add(s.status, []byte(s.body))
	}
	asked := []string{"a", "b"}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		check := func(levels []app.StockLevel, err error, max int) {
			if err != nil {
				if levels != nil {
					t.Errorf("both levels %+v and error %v", levels, err)
				}
				checkCompleteAnswerFault(t, asFault(t, err), status)
				return
			}
			if levels == nil || len(levels) > max {
				t.Errorf("levels %+v from %d %q", levels, status, body)
			}
			seen := map[string]bool{}
			for _, l := range levels {
				if (l.SKU != "a" && l.SKU != "b") || seen[l.SKU] || l.Available < 0 || l.AsOf.IsZero() {
					t.Errorf("level %+v from %d %q", l, status, body)
				}
				seen[l.SKU] = true
			}
		}
		levels, err := decodeStockLevel(status, body, "a")
		check(levels, err, 1)
		levels, err = decodeStockList(status, body, asked)
		check(levels, err, len(asked))
	})
}
