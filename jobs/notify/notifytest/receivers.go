package notifytest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// SMSRequest is one message an SMS receiver got.
type SMSRequest struct {
	To, From, Body string
	User, Pass     string
	IdempotencyKey string
}

// SMSReceiver is a Twilio-style SMS endpoint on loopback.
type SMSReceiver struct {
	URL  string // with user:pass for basic auth
	mu   sync.Mutex
	reqs []SMSRequest
}

// NewSMSReceiver starts an SMS endpoint that accepts form POSTs with basic
// auth user:pass and answers 201; it stops when the test ends.
func NewSMSReceiver(t testing.TB, user, pass string) *SMSReceiver {
	t.Helper()
	r := &SMSReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		u, p, ok := req.BasicAuth()
		if req.Method != http.MethodPost || !ok || u != user || p != pass ||
			req.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || req.ParseForm() != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.reqs = append(r.reqs, SMSRequest{To: req.PostForm.Get("To"), From: req.PostForm.Get("From"),
			Body: req.PostForm.Get("Body"), User: u, Pass: p, IdempotencyKey: req.Header.Get("Idempotency-Key")})
		r.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"sid":"SM1","status":"queued"}`)
	}))
	t.Cleanup(srv.Close)
	r.URL = "http://" + user + ":" + pass + "@" + srv.Listener.Addr().String() + "/Messages.json"
	return r
}

// Requests returns what arrived so far.
func (r *SMSReceiver) Requests() []SMSRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]SMSRequest(nil), r.reqs...)
}

// Webhook is one delivery a webhook receiver got, with whether its
// signature verified.
type Webhook struct {
	ID       string
	Payload  []byte
	Verified bool
}

// WebhookReceiver is a callback endpoint on loopback that checks every
// delivery with the Standard Webhooks reference library.
type WebhookReceiver struct {
	URL string
	mu  sync.Mutex
	got []Webhook
	ref *standardwebhooks.Webhook
}

// NewWebhookReceiver starts a receiver for secret ("whsec_…"); it stops
// when the test ends.
func NewWebhookReceiver(t testing.TB, secret string) *WebhookReceiver {
	t.Helper()
	ref, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	r := &WebhookReceiver{ref: ref}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got = append(r.got, Webhook{ID: req.Header.Get("webhook-id"), Payload: body, Verified: r.ref.Verify(body, req.Header) == nil})
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL + "/hooks/spillway"
	return r
}

// Received returns what arrived so far.
func (r *WebhookReceiver) Received() []Webhook {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Webhook(nil), r.got...)
}
