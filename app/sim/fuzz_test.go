package sim

import (
	"net/url"
	"strconv"
	"testing"
	"time"
)

// FuzzChargeRequest checks that the charge decoder never panics and that
// whatever it accepts satisfies the contract's invariants.
func FuzzChargeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"amount":1000,"currency":"usd","reference":"r"}`,
		`{"amount":1002,"currency":"USD"}`,
		`{"amount":-1,"currency":"usd"}`,
		`{"amount":1e3,"currency":"usd"}`,
		`{"amount":9223372036854775808,"currency":"usd"}`,
		`{"amount":1,"currency":"\u00e9ur"}`,
		`{"amount":1,"currency":"usd"} trailing`,
		`null`, `[]`, ``, `{`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeChargeRequest(body)
		if err != nil {
			if req != (chargeRequest{}) {
				t.Errorf("error %v came with a non-zero request %+v", err, req)
			}
			return
		}
		if req.Amount <= 0 {
			t.Errorf("accepted amount %d", req.Amount)
		}
		if len(req.Currency) != 3 {
			t.Errorf("accepted currency %q", req.Currency)
		}
		for i := range len(req.Currency) {
			if c := req.Currency[i]; c < 'a' || c > 'z' {
				t.Errorf("currency %q not lower-case ASCII", req.Currency)
			}
		}
		if len(req.Reference) > maxReferenceLen {
			t.Errorf("accepted reference of %d bytes", len(req.Reference))
		}
	})
}

// FuzzControlPatch checks that the PUT /control decoder never panics and
// that an accepted patch never produces out-of-range chaos.
func FuzzControlPatch(f *testing.F) {
	for _, seed := range []string{
		`{"latency_ms": 5000, "error_rate": 0.2, "down": true, "decline_rate": 0, "flap_period_ms": 1000}`,
		`{"latency_ms": 600000}`,
		`{"latency_ms": 9223372036854775807}`,
		`{"error_rate": 1e308}`,
		`{"error_rate": -0}`,
		`{"unknown": 1}`,
		`{}`, `null`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodeChaosPatch(body)
		if err != nil {
			return
		}
		c, err := p.apply(Chaos{})
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Errorf("accepted patch %s produced invalid chaos %+v: %v", body, c, err)
		}
	})
}

// FuzzListQuery checks that the GET /charges query parser never panics,
// and that what it accepts is in range and round-trips through a
// well-formed query.
func FuzzListQuery(f *testing.F) {
	for _, seed := range []string{
		"",
		"created_after=2025-01-01T00:00:00Z&limit=10",
		"created_after=2025-01-01T00:00:00.123456789%2B02:00&limit=1000&after=ch_abc",
		"created_after=2025-01-01T00:00:00+02:00",
		"limit=0", "limit=1001", "limit=-1", "limit=+5", "limit=99999999999999999999",
		"limit=1&limit=2", "after=", "bogus=1", "%zz", "a=b;c=d", "created_after=\xff",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseListQuery(raw)
		if err != nil {
			if q != (listQuery{}) {
				t.Errorf("error %v came with a non-zero query %+v", err, q)
			}
			return
		}
		if q.limit < 1 || q.limit > maxListLimit {
			t.Errorf("accepted limit %d from %q", q.limit, raw)
		}
		if len(q.after) > maxKeyLen {
			t.Errorf("accepted a cursor of %d bytes", len(q.after))
		}
		// What was accepted, written back out, parses to the same query.
		again := url.Values{"limit": {strconv.Itoa(q.limit)}}
		if !q.createdAfter.IsZero() {
			again.Set("created_after", q.createdAfter.Format(time.RFC3339Nano))
		}
		if q.after != "" {
			again.Set("after", q.after)
		}
		q2, err := parseListQuery(again.Encode())
		if err != nil {
			t.Fatalf("re-encoded %q refused: %v", again.Encode(), err)
		}
		if q2.limit != q.limit || q2.after != q.after || !q2.createdAfter.Equal(q.createdAfter) {
			t.Errorf("round trip of %q: %+v became %+v", raw, q, q2)
		}
	})
}

// FuzzReservationRequest checks that the reservation decoder never panics
// and that whatever it accepts is a reservation the inventory can hold.
func FuzzReservationRequest(f *testing.F) {
	for _, seed := range []string{
		`{"sku":"sku-tea","quantity":2,"reference":"op"}`,
		`{"sku":"sku-tea","quantity":0}`,
		`{"sku":"sku-tea","quantity":1e2}`,
		`{"sku":"sku-tea","quantity":9223372036854775808}`,
		`{"sku":"a,b","quantity":1}`,
		`{"sku":"","quantity":1}`,
		`{"sku":"x","quantity":1} trailing`,
		`null`, `[]`, ``, `{`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeReservationRequest(body)
		if err != nil {
			if req != (reservationRequest{}) {
				t.Errorf("error %v came with a non-zero request %+v", err, req)
			}
			return
		}
		if req.Quantity < 1 || req.Quantity > maxQuantity {
			t.Errorf("accepted quantity %d", req.Quantity)
		}
		if validateSKU(req.SKU) != nil {
			t.Errorf("accepted sku %q", req.SKU)
		}
		if len(req.Reference) > maxReferenceLen {
			t.Errorf("accepted reference of %d bytes", len(req.Reference))
		}
	})
}

// FuzzStockQuery checks that the GET /stock query parser never panics and
// that what it accepts is a bounded list of distinct, valid SKUs.
func FuzzStockQuery(f *testing.F) {
	for _, seed := range []string{
		"", "skus=a", "skus=a,b,a", "skus=", "skus=a,,b", "sku=a", "skus=a&skus=b",
		"skus=%2C", "skus=%zz", "skus=a%20b",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		skus, err := parseStockQuery(raw)
		if err != nil {
			if skus != nil {
				t.Errorf("error %v came with skus %q", err, skus)
			}
			return
		}
		if len(skus) > maxStockSKUs {
			t.Errorf("accepted %d skus", len(skus))
		}
		seen := map[string]bool{}
		for _, sku := range skus {
			if validateSKU(sku) != nil || seen[sku] {
				t.Errorf("accepted sku %q (repeated: %v)", sku, seen[sku])
			}
			seen[sku] = true
		}
	})
}
