package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func newTestSecret(t *testing.T) string {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}

// captured is one request as a test receiver saw it.
type captured struct {
	header http.Header
	body   []byte
}

func receiver(t *testing.T, status int, extra http.Header) (*httptest.Server, <-chan captured) {
	t.Helper()
	got := make(chan captured, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- captured{header: r.Header.Clone(), body: body}
		for k, v := range extra {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte("thanks"))
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func TestWebhookSignatureVerifiesWithReferenceLibrary(t *testing.T) {
	t.Parallel()
	secret := newTestSecret(t)
	fixed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		now  func() time.Time // nil: the real clock, so Verify's tolerance applies
	}{
		{name: "real clock"},
		{name: "fixed clock", now: func() time.Time { return fixed }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, got := receiver(t, http.StatusNoContent, nil)
			w, err := NewWebhook(WebhookConfig{Secret: secret, AllowPrivate: true, Now: tt.now})
			if err != nil {
				t.Fatal(err)
			}
			payload := []byte(`{"type":"payment.succeeded","data":{"id":"op_1","amount":1999}}`)
			before := time.Now()
			res, err := w.Send(context.Background(), WebhookMessage{URL: srv.URL + "/hooks", ID: "msg_op1-succeeded", Payload: payload})
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if res.StatusCode != http.StatusNoContent {
				t.Errorf("StatusCode = %d", res.StatusCode)
			}
			c := <-got
			after := time.Now()

			for name, want := range map[string]string{
				"Webhook-Id":   "msg_op1-succeeded",
				"Content-Type": "application/json",
				"User-Agent":   "Spillway-Webhooks/1",
			} {
				if v := c.header.Get(name); v != want {
					t.Errorf("%s = %q, want %q", name, v, want)
				}
			}
			if !bytes.Equal(c.body, payload) {
				t.Errorf("body = %s", c.body)
			}
			if !strings.HasPrefix(c.header.Get("Webhook-Signature"), "v1,") {
				t.Errorf("signature %q lacks the v1 prefix", c.header.Get("Webhook-Signature"))
			}

			ref, err := standardwebhooks.NewWebhook(secret)
			if err != nil {
				t.Fatal(err)
			}
			if tt.now == nil {
				// The real clock was read during Send, so the timestamp lies
				// between readings taken before and after it, in whole seconds.
				ts, _ := strconv.ParseInt(c.header.Get("Webhook-Timestamp"), 10, 64)
				if ts < before.Unix() || ts > after.Unix() {
					t.Errorf("timestamp %d is outside the Send call [%d, %d]", ts, before.Unix(), after.Unix())
				}
				if err := ref.Verify(c.body, c.header); err != nil {
					t.Errorf("reference library rejects our signature: %v", err)
				}
			} else {
				if ts := c.header.Get("Webhook-Timestamp"); ts != strconv.FormatInt(fixed.Unix(), 10) {
					t.Errorf("timestamp = %s, want %d", ts, fixed.Unix())
				}
				if err := ref.VerifyIgnoringTimestamp(c.body, c.header); err != nil {
					t.Errorf("reference library rejects our signature: %v", err)
				}
			}
			// And the signature covers the body: one changed byte fails.
			tampered := bytes.Replace(c.body, []byte("1999"), []byte("1998"), 1)
			if err := ref.VerifyIgnoringTimestamp(tampered, c.header); err == nil {
				t.Error("reference library accepts a tampered body")
			}
		})
	}
}

func TestWebhookStatusClassification(t *testing.T) {
	t.Parallel()
	secret := newTestSecret(t)
	// The sender's clock is fixed, so a date two minutes after it is 120s
	// exactly, however long the test takes to get there.
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	httpDate := now.Add(2 * time.Minute).Format(http.TimeFormat)
	tests := []struct {
		name      string
		status    int
		header    http.Header
		wantErr   bool
		permanent bool
		disable   bool
		minWait   time.Duration
		maxWait   time.Duration
	}{
		{name: "200", status: 200},
		{name: "202", status: 202},
		{name: "410 gone", status: 410, wantErr: true, permanent: true, disable: true},
		{name: "429 seconds", status: 429, header: http.Header{"Retry-After": {"30"}}, wantErr: true, minWait: 30 * time.Second, maxWait: 30 * time.Second},
		{name: "503 date", status: 503, header: http.Header{"Retry-After": {httpDate}}, wantErr: true, minWait: 120 * time.Second, maxWait: 120 * time.Second},
		{name: "503 garbage", status: 503, header: http.Header{"Retry-After": {"soon"}}, wantErr: true},
		// The spec retries every other failure, 4xx included.
		{name: "400", status: 400, wantErr: true},
		{name: "401", status: 401, wantErr: true},
		{name: "404", status: 404, wantErr: true},
		{name: "413", status: 413, wantErr: true},
		{name: "500", status: 500, wantErr: true},
		{name: "502", status: 502, wantErr: true},
		{name: "301 not followed", status: 301, header: http.Header{"Location": {"/elsewhere"}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var elsewhere atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/elsewhere" {
					elsewhere.Add(1)
					return
				}
				for k, v := range tt.header {
					w.Header()[k] = v
				}
				w.WriteHeader(tt.status)
			}))
			t.Cleanup(srv.Close)
			w, err := NewWebhook(WebhookConfig{Secret: secret, AllowPrivate: true, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			res, err := w.Send(context.Background(), WebhookMessage{URL: srv.URL + "/hook", ID: "msg_1", Payload: []byte(`{}`)})
			if res.StatusCode != tt.status {
				t.Errorf("Result.StatusCode = %d, want %d", res.StatusCode, tt.status)
			}
			if elsewhere.Load() != 0 {
				t.Error("redirect was followed")
			}
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				return
			}
			var de *DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want a *DeliveryError", err)
			}
			if de.Permanent != tt.permanent || de.Disable != tt.disable || de.StatusCode != tt.status {
				t.Errorf("got %+v; want Permanent %v, Disable %v, status %d", de, tt.permanent, tt.disable, tt.status)
			}
			if de.RetryAfter < tt.minWait || de.RetryAfter > tt.maxWait {
				t.Errorf("RetryAfter = %v, want within [%v, %v]", de.RetryAfter, tt.minWait, tt.maxWait)
			}
		})
	}
}

func TestWebhookTimeoutIsRetryable(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	w, err := NewWebhook(WebhookConfig{Secret: newTestSecret(t), AllowPrivate: true, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = w.Send(context.Background(), WebhookMessage{URL: srv.URL, ID: "msg_slow", Payload: []byte(`{}`)})
	var de *DeliveryError
	if !errors.As(err, &de) || de.Permanent || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a retryable deadline failure", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Send took %v with a 100ms timeout", d)
	}
}

func TestWebhookReadsBoundedResponse(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		// Far more than we read, with bytes a database would refuse.
		chunk := bytes.Repeat([]byte("é\x00\xff"), 1<<10)
		for range 256 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	w, err := NewWebhook(WebhookConfig{Secret: newTestSecret(t), AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := w.Send(context.Background(), WebhookMessage{URL: srv.URL, ID: "msg_big", Payload: []byte(`{}`)})
	if err == nil {
		t.Fatal("Send succeeded against a 500")
	}
	if len(res.Response) == 0 || len(res.Response) > maxResponseText {
		t.Errorf("Response has %d bytes, want 1..%d", len(res.Response), maxResponseText)
	}
	if strings.ContainsRune(res.Response, 0) || !strings.Contains(res.Response, "é") {
		t.Errorf("Response not sanitised: %q", res.Response[:min(40, len(res.Response))])
	}
}

// With AllowPrivate off, a loopback receiver gets nothing: refused before
// dialling when the URL names the address, and by the dialer on the
// socket itself otherwise.
func TestWebhookRefusesLoopbackTargets(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }))
	t.Cleanup(srv.Close)
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]

	w, err := NewWebhook(WebhookConfig{Secret: newTestSecret(t)})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("Send", func(t *testing.T) {
		for _, u := range []string{srv.URL, "http://localhost:" + port, "http://[::ffff:127.0.0.1]:" + port, "http://127.1:" + port} {
			_, err := w.Send(context.Background(), WebhookMessage{URL: u, ID: "msg_1", Payload: []byte(`{}`)})
			var de *DeliveryError
			if !errors.As(err, &de) || !de.Permanent || !errors.Is(err, ErrBlockedAddress) {
				t.Errorf("%s: err = %v, want a permanent ErrBlockedAddress", u, err)
			}
		}
	})
	t.Run("dialer", func(t *testing.T) {
		// Straight to the transport, past Send's check of the URL: what
		// stops this is the dialer's Control on the actual socket address,
		// which is what defeats a name that rebinds to loopback.
		req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := w.client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			t.Fatal("transport connected to loopback")
		}
		if !errors.Is(err, ErrBlockedAddress) {
			t.Errorf("err = %v, want ErrBlockedAddress", err)
		}
	})
	if n := calls.Load(); n != 0 {
		t.Errorf("receiver got %d requests, want none", n)
	}
}

func TestWebhookRefusesBadMessages(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }))
	t.Cleanup(srv.Close)
	w, err := NewWebhook(WebhookConfig{Secret: newTestSecret(t), AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		msg  WebhookMessage
	}{
		{name: "no id", msg: WebhookMessage{URL: srv.URL, Payload: []byte(`{}`)}},
		{name: "dot in id", msg: WebhookMessage{URL: srv.URL, ID: "a.b", Payload: []byte(`{}`)}},
		{name: "newline in id", msg: WebhookMessage{URL: srv.URL, ID: "a\nb", Payload: []byte(`{}`)}},
		{name: "not json", msg: WebhookMessage{URL: srv.URL, ID: "m", Payload: []byte(`{`)}},
		{name: "empty payload", msg: WebhookMessage{URL: srv.URL, ID: "m"}},
		{name: "ftp", msg: WebhookMessage{URL: "ftp://127.0.0.1/", ID: "m", Payload: []byte(`{}`)}},
		{name: "relative", msg: WebhookMessage{URL: "/hook", ID: "m", Payload: []byte(`{}`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := w.Send(context.Background(), tt.msg)
			var de *DeliveryError
			if !errors.As(err, &de) || !de.Permanent {
				t.Fatalf("err = %v, want a permanent *DeliveryError", err)
			}
		})
	}
	t.Cleanup(func() {
		if n := calls.Load(); n != 0 {
			t.Errorf("receiver got %d requests, want none", n)
		}
	})
}

func TestNewWebhookValidatesSecret(t *testing.T) {
	t.Parallel()
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, n)) }
	tests := []struct {
		name   string
		secret string
		ok     bool
	}{
		{name: "32 bytes", secret: "whsec_" + b64(32), ok: true},
		{name: "24 bytes", secret: "whsec_" + b64(24), ok: true},
		{name: "64 bytes", secret: "whsec_" + b64(64), ok: true},
		{name: "no prefix", secret: b64(32), ok: true},
		{name: "empty", secret: ""},
		{name: "too short", secret: "whsec_" + b64(16)},
		{name: "too long", secret: "whsec_" + b64(65)},
		{name: "not base64", secret: "whsec_hunter2!!hunter2!!hunter2!!hunter2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewWebhook(WebhookConfig{Secret: tt.secret})
			if tt.ok {
				if err != nil {
					t.Fatalf("NewWebhook: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "WEBHOOK_SECRET") {
				t.Fatalf("err = %v, want it to name WEBHOOK_SECRET", err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the secret: %v", err)
			}
		})
	}
}
