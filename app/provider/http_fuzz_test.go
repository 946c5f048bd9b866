package provider

import (
	"errors"
	"testing"

	"github.com/spillway/spillway/app"
)

// FuzzDecodeChargeAnswer feeds arbitrary statuses and bodies through the
// HTTP provider's answer decoding: it must never panic and must yield
// exactly one of a result or an *app.ProviderError.
func FuzzDecodeChargeAnswer(f *testing.F) {
	seeds := []struct {
		status int
		body   string
	}{
		{200, `{"id":"ch_1","status":"succeeded"}`},
		{200, `{"id":"ch_1","status":"declined"}`},
		{200, `{"id":`},
		{402, `{"id":"ch_2","status":"declined","decline_code":"card_declined"}`},
		{402, ``},
		{400, `{"type":"about:blank","title":"Bad Request","status":400,"detail":"x"}`},
		{503, "\xff\xfe"},
		{302, ``},
		{409, `{"status":"key_closed"}`},
		{409, `{"status":"in_flight"}`},
		{200, `{"id":"ch_1","status":"succeeded","amount":-5,"currency":"ÉUR"}`},
		{0, `null`},
	}
	for _, s := range seeds {
		f.Add(s.status, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		res, err := decodeChargeAnswer(status, body)
		if err == nil {
			if !res.Declined && res.ProviderRef == "" {
				t.Errorf("success without a provider ref for %d %q", status, body)
			}
			if res.Declined && res.DeclineCode == "" {
				t.Errorf("decline without a code for %d %q", status, body)
			}
			return
		}
		if res != (app.ChargeResult{}) {
			t.Errorf("both result %+v and error %v", res, err)
		}
		var pe *app.ProviderError
		if !errors.As(err, &pe) {
			t.Fatalf("error %v (%T) is not *app.ProviderError", err, err)
		}
		switch {
		case pe.Kind == app.FaultUnavailable, pe.Kind == app.FaultRejected:
		case pe.Kind == app.FaultKeyClosed && status == 409:
		default:
			t.Errorf("kind %q from a complete %d answer", pe.Kind, status)
		}
		checkCompleteAnswerFault(t, pe, status)
	})
}

// checkCompleteAnswerFault holds for every fault decoded from a whole
// answer: the provider said what it did, so the outcome is known, and the
// status is kept.
func checkCompleteAnswerFault(t *testing.T, pe *app.ProviderError, status int) {
	t.Helper()
	if pe.OutcomeUnknown {
		t.Errorf("outcome unknown from a complete %d answer", status)
	}
	if pe.StatusCode != status {
		t.Errorf("status %d recorded as %d", status, pe.StatusCode)
	}
	_ = pe.Error() // must not panic either
}

// asFault returns err as a *app.ProviderError or fails the fuzz run.
func asFault(t *testing.T, err error) *app.ProviderError {
	t.Helper()
	var pe *app.ProviderError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not *app.ProviderError", err, err)
	}
	return pe
}

// FuzzDecodeLookupAnswer: never a panic; exactly one of an answer or a
// fault; and above all, "nothing charged" only from a 404 that says
// not_found — never from a body we merely failed to read.
func FuzzDecodeLookupAnswer(f *testing.F) {
	seeds := []struct {
		status int
		body   string
	}{
		{200, `{"id":"ch_1","status":"succeeded","amount":1000,"currency":"usd","reference":"op"}`},
		{200, `{"id":"ch_1","status":"declined","decline_code":"card_declined"}`},
		{200, `{"status":"processing"}`},
		{200, `{"status":"not_found"}`},
		{404, `{"status":"not_found"}`},
		{404, `404 page not found`},
		{404, `{"status":"not_found"`},
		{503, `{"type":"about:blank","status":503}`},
		{200, `{"id":`},
	}
	for _, s := range seeds {
		f.Add(s.status, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		l, err := decodeLookupAnswer(status, body)
		if err != nil {
			if l != (app.ChargeLookup{}) {
				t.Errorf("both answer %+v and error %v", l, err)
			}
			checkCompleteAnswerFault(t, asFault(t, err), status)
			return
		}
		switch l.Status {
		case app.LookupNotFound:
			if status != 404 || !l.KeyClosed || l.ProviderRef != "" {
				t.Errorf("not found %+v from %d %q", l, status, body)
			}
		case app.LookupSucceeded, app.LookupDeclined:
			if status != 200 || l.ProviderRef == "" || l.KeyClosed {
				t.Errorf("answer %+v from %d %q", l, status, body)
			}
			if (l.Status == app.LookupDeclined) != (l.DeclineCode != "") {
				t.Errorf("decline code %q with status %s", l.DeclineCode, l.Status)
			}
		case app.LookupProcessing:
			if status != 200 || l.KeyClosed {
				t.Errorf("processing %+v from %d", l, status)
			}
		default:
			t.Errorf("unknown status %q from %d %q", l.Status, status, body)
		}
	})
}

// FuzzDecodeChargePage: never a panic; a page or a fault; every listed
// charge has an id, a time and a known status; next never repeats the
// cursor sent.
func FuzzDecodeChargePage(f *testing.F) {
	seeds := []struct {
		status int
		body   string
		after  string
	}{
		{200, `{"charges":[{"id":"ch_1","reference":"op","amount":100,"currency":"usd","status":"succeeded","created_at":"2025-01-01T00:00:00Z"}],"next":"ch_1"}`, ""},
		{200, `{"charges":[],"next":""}`, "ch_0"},
		{200, `{"charges":[{"id":"ch_1","status":"refunded","created_at":"2025-01-01T00:00:00.5+02:00"}],"next":"ch_1"}`, "ch_1"},
		{200, `{"charges":null}`, ""},
		{200, `{"charges":[{"id":"","status":"succeeded"}]}`, ""},
		{200, `[]`, ""},
		{400, `{"title":"Bad Request","detail":"limit"}`, ""},
	}
	for _, s := range seeds {
		f.Add(s.status, []byte(s.body), s.after)
	}
	f.Fuzz(func(t *testing.T, status int, body []byte, after string) {
		page, err := decodeChargePage(status, body, after)
		if err != nil {
			if page.Charges != nil || page.Next != "" {
				t.Errorf("both page %+v and error %v", page, err)
			}
			checkCompleteAnswerFault(t, asFault(t, err), status)
			return
		}
		if status != 200 {
			t.Errorf("page from status %d", status)
		}
		if page.Next != "" && page.Next == after {
			t.Errorf("next %q repeats the cursor", page.Next)
		}
		for _, c := range page.Charges {
			if c.ID == "" || c.CreatedAt.IsZero() || !knownChargeStatus(c.Status) || c.Amount < 0 {
				t.Errorf("listed charge %+v", c)
			}
			if c.Currency != "" && c.Currency != currencyCode(c.Currency) {
				t.Errorf("currency %q not canonical", c.Currency)
			}
		}
	})
}

// FuzzDecodeRefundAnswer: never a panic; a refund only from a 200 naming
// a refund id, status refunded and (when it names one) our charge.
func FuzzDecodeRefundAnswer(f *testing.F) {
	seeds := []struct {
		status int
		body   string
	}{
		{200, `{"id":"re_1","status":"refunded","charge_id":"ch_1"}`},
		{200, `{"id":"re_1","status":"refunded","charge_id":"ch_2"}`},
		{200, `{"id":"re_1","status":"pending"}`},
		{409, `{"type":"about:blank","title":"Conflict","status":409}`},
		{404, ``},
		{500, "ÿ"},
	}
	for _, s := range seeds {
		f.Add(s.status, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		r, err := decodeRefundAnswer(status, body, "ch_1")
		if err != nil {
			if r != (app.RefundResult{}) {
				t.Errorf("both refund %+v and error %v", r, err)
			}
			pe := asFault(t, err)
			checkCompleteAnswerFault(t, pe, status)
			if status == 409 && pe.Kind != app.FaultRejected {
				t.Errorf("409 is %s, want final (rejected)", pe.Kind)
			}
			return
		}
		if status != 200 || r.ID == "" || r.Status != "refunded" {
			t.Errorf("refund %+v from %d %q", r, status, body)
		}
	})
}
