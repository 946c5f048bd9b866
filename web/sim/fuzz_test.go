package sim

import (
	"testing"
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
