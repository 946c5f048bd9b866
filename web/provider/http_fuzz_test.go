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
		switch pe.Kind {
		case app.FaultUnavailable, app.FaultRejected:
		default:
			t.Errorf("kind %q from a complete answer", pe.Kind)
		}
		if pe.StatusCode != status {
			t.Errorf("status %d recorded as %d", status, pe.StatusCode)
		}
		_ = pe.Error() // must not panic either
	})
}
