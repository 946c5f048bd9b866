package notify

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spillway/spillway/app/apptest"
)

func TestSMSSendPostsForm(t *testing.T) {
	t.Parallel()
	type seen struct {
		method, path, contentType, idemKey, user, pass string
		hasAuth                                        bool
		to, from, body                                 string
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var s seen
		s.method, s.path = r.Method, r.URL.Path
		s.contentType = r.Header.Get("Content-Type")
		s.idemKey = r.Header.Get("Idempotency-Key")
		s.user, s.pass, s.hasAuth = r.BasicAuth()
		if err := r.ParseForm(); err != nil {
			t.Errorf("parse form: %v", err)
		}
		s.to, s.from, s.body = r.PostForm.Get("To"), r.PostForm.Get("From"), r.PostForm.Get("Body")
		got <- s
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"sid":"SM123","status":"queued"}`))
	}))
	t.Cleanup(srv.Close)

	base := strings.Replace(srv.URL, "http://", "http://AC123:tok%2Fen@", 1)
	s, err := NewSMS(SMSConfig{URL: base + "/2010-04-01/Accounts/AC123/Messages.json", From: "+15550001111"})
	if err != nil {
		t.Fatal(err)
	}
	body := RenderPaymentSMS(PaymentNotice{Status: "succeeded", Amount: 1999, Currency: "usd", StatusURL: "http://127.0.0.1:8080/o/1"})
	res, err := s.Send(context.Background(), SMSMessage{To: "+15551234567", Body: body, IdempotencyKey: "deliv-9"})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if res.StatusCode != http.StatusCreated || !strings.Contains(res.Response, "SM123") {
		t.Errorf("Result = %+v", res)
	}
	g := <-got
	want := seen{
		method: http.MethodPost, path: "/2010-04-01/Accounts/AC123/Messages.json",
		contentType: "application/x-www-form-urlencoded", idemKey: "deliv-9",
		user: "AC123", pass: "tok/en", hasAuth: true,
		to: "+15551234567", from: "+15550001111", body: body,
	}
	if g != want {
		t.Errorf("request = %+v\nwant      %+v", g, want)
	}
}

func TestSMSStatusClassification(t *testing.T) {
	t.Parallel()
	// The sender's clock is fixed, so a date 90s after it is 90s exactly,
	// however long the test takes to get there.
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	httpDate := now.Add(90 * time.Second).Format(http.TimeFormat)
	tests := []struct {
		name       string
		status     int
		retryAfter string
		wantErr    bool
		permanent  bool
		minWait    time.Duration
		maxWait    time.Duration
	}{
		{name: "200", status: 200},
		{name: "201", status: 201},
		{name: "400 invalid number", status: 400, wantErr: true, permanent: true},
		{name: "401 bad credentials", status: 401, wantErr: true, permanent: true},
		{name: "404", status: 404, wantErr: true, permanent: true},
		{name: "408", status: 408, wantErr: true},
		{name: "429 seconds", status: 429, retryAfter: "7", wantErr: true, minWait: 7 * time.Second, maxWait: 7 * time.Second},
		{name: "429 no header", status: 429, wantErr: true},
		{name: "503 date", status: 503, retryAfter: httpDate, wantErr: true, minWait: 90 * time.Second, maxWait: 90 * time.Second},
		{name: "500", status: 500, retryAfter: "7", wantErr: true}, // Retry-After only counts on 429/503
		{name: "302 not followed", status: 302, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/elsewhere" {
					t.Error("redirect was followed")
				}
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				if tt.status == 302 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(`{"code":21211,"message":"something"}`))
			}))
			t.Cleanup(srv.Close)
			s, err := NewSMS(SMSConfig{URL: srv.URL + "/Messages.json", From: "+15550001111", Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.Send(context.Background(), SMSMessage{To: "+447700900123", Body: "hi"})
			if res.StatusCode != tt.status {
				t.Errorf("Result.StatusCode = %d, want %d", res.StatusCode, tt.status)
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
			if de.Permanent != tt.permanent || de.Disable || de.StatusCode != tt.status {
				t.Errorf("got %+v, want Permanent %v, status %d", de, tt.permanent, tt.status)
			}
			if de.RetryAfter < tt.minWait || de.RetryAfter > tt.maxWait {
				t.Errorf("RetryAfter = %v, want within [%v, %v]", de.RetryAfter, tt.minWait, tt.maxWait)
			}
		})
	}
}

func TestSMSRefusesBeforeSending(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }))
	t.Cleanup(srv.Close)
	s, err := NewSMS(SMSConfig{URL: srv.URL, From: "Spillway"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		msg  SMSMessage
	}{
		{name: "no plus", msg: SMSMessage{To: "15551234567", Body: "hi"}},
		{name: "leading zero", msg: SMSMessage{To: "+05551234567", Body: "hi"}},
		{name: "too long", msg: SMSMessage{To: "+1234567890123456", Body: "hi"}},
		{name: "letters", msg: SMSMessage{To: "+1555CALLNOW", Body: "hi"}},
		{name: "spaces", msg: SMSMessage{To: "+1 555 123 4567", Body: "hi"}},
		{name: "empty body", msg: SMSMessage{To: "+15551234567", Body: "  "}},
		{name: "body too long", msg: SMSMessage{To: "+15551234567", Body: strings.Repeat("é", maxSMSBody+1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := s.Send(context.Background(), tt.msg)
			var de *DeliveryError
			if !errors.As(err, &de) || !de.Permanent {
				t.Fatalf("err = %v, want a permanent *DeliveryError", err)
			}
		})
	}
	t.Cleanup(func() {
		if n := calls.Load(); n != 0 {
			t.Errorf("provider got %d requests, want none", n)
		}
	})
}

func TestSMSNetworkErrorIsRetryable(t *testing.T) {
	t.Parallel()
	// Held for the test, so no other listener can be given the port.
	s, err := NewSMS(SMSConfig{URL: "http://" + apptest.RefusingAddr(t), From: "+15550001111"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Send(context.Background(), SMSMessage{To: "+15551234567", Body: "hi"})
	var de *DeliveryError
	if !errors.As(err, &de) || de.Permanent || de.StatusCode != 0 || res.StatusCode != 0 {
		t.Fatalf("got %+v, %v; want a retryable failure without status", res, err)
	}
}

func TestSMSTimeoutIsRetryable(t *testing.T) {
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
	s, err := NewSMS(SMSConfig{URL: srv.URL, From: "+15550001111", Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Send(context.Background(), SMSMessage{To: "+15551234567", Body: "hi"})
	var de *DeliveryError
	if !errors.As(err, &de) || de.Permanent || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a retryable deadline failure", err)
	}
}

func TestNewSMSValidates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     SMSConfig
		wantErr string
	}{
		{name: "ok", cfg: SMSConfig{URL: "https://AC1:secret@127.0.0.1/Messages.json", From: "+15550001111"}},
		{name: "empty", cfg: SMSConfig{From: "+1555"}, wantErr: "SMS_PROVIDER_URL"},
		{name: "scheme", cfg: SMSConfig{URL: "ftp://127.0.0.1", From: "+1555"}, wantErr: "SMS_PROVIDER_URL"},
		{name: "no host", cfg: SMSConfig{URL: "https:///Messages.json", From: "+1555"}, wantErr: "SMS_PROVIDER_URL"},
		{name: "unparsable", cfg: SMSConfig{URL: "https://AC1:secret@127.0.0.1:%zz/", From: "+1555"}, wantErr: "SMS_PROVIDER_URL"},
		{name: "no from", cfg: SMSConfig{URL: "https://127.0.0.1/"}, wantErr: "From"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := NewSMS(tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("NewSMS: %v", err)
				}
				if strings.Contains(s.endpoint, "secret") {
					t.Errorf("endpoint keeps the credentials: %s", s.endpoint)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error leaks the token: %v", err)
			}
		})
	}
}
