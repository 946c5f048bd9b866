package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// defaultWebhookTimeout bounds one delivery when the config sets none; the
// Standard Webhooks spec recommends 15–30s.
const defaultWebhookTimeout = 15 * time.Second

// Secret length limits from the Standard Webhooks spec: at least 24 bytes,
// at most 64.
const (
	minSecretBytes = 24
	maxSecretBytes = 64
)

// WebhookConfig configures the webhook sender.
type WebhookConfig struct {
	// Secret is WEBHOOK_SECRET: "whsec_" followed by the standard base64
	// of 24 to 64 random bytes (the prefix may be left out).
	Secret string
	// AllowPrivate turns off the SSRF protection, for development and
	// tests where the receiver runs on loopback. Never in production.
	AllowPrivate bool
	// Timeout bounds one Send, connection included; 0 means 15s. The
	// caller's ctx can only shorten it.
	Timeout time.Duration
	// Now gives the webhook-timestamp and the moment a Retry-After date is
	// counted from; nil means time.Now.
	Now func() time.Time
	// WrapTransport, when set, wraps the transport (the tracing
	// instruments each delivery there, and it sends traceparent).
	WrapTransport func(http.RoundTripper) http.RoundTripper
}

// Webhook delivers Standard Webhooks (https://www.standardwebhooks.com/):
// a JSON POST signed with HMAC-SHA256 over id, timestamp and body. It is
// safe for concurrent use.
type Webhook struct {
	key     []byte
	allow   bool
	timeout time.Duration
	now     func() time.Time
	client  *http.Client
}

// WebhookMessage is one delivery.
type WebhookMessage struct {
	URL string
	// ID is the webhook-id: the same for every attempt of one delivery, so
	// the receiver can use it to drop duplicates. Letters, digits, '-' and
	// '_' only (the spec forbids '.', which delimits the signed content).
	ID      string
	Payload []byte // JSON, sent and signed byte for byte
}

// NewWebhook validates cfg and returns a sender. It does not connect.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(strings.TrimSpace(cfg.Secret), "whsec_"))
	switch {
	case cfg.Secret == "":
		return nil, errors.New("WEBHOOK_SECRET is required")
	case err != nil:
		// The decoder's error would quote part of the secret.
		return nil, errors.New(`WEBHOOK_SECRET: not "whsec_" followed by standard base64`)
	case len(key) < minSecretBytes || len(key) > maxSecretBytes:
		return nil, fmt.Errorf("WEBHOOK_SECRET: key is %d bytes, must be %d to %d", len(key), minSecretBytes, maxSecretBytes)
	}
	w := &Webhook{key: key, allow: cfg.AllowPrivate, timeout: cfg.Timeout, now: cfg.Now}
	if w.timeout <= 0 {
		w.timeout = defaultWebhookTimeout
	}
	if w.now == nil {
		w.now = time.Now
	}

	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !cfg.AllowPrivate {
		dialer.Control = dialControl
	}
	w.client = &http.Client{
		Transport: &http.Transport{
			// No proxy, even when the environment names one: the proxy
			// would connect on our behalf, past dialControl.
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
			// Receivers' headers are untrusted too.
			MaxResponseHeaderBytes: 64 << 10,
		},
		CheckRedirect: noRedirects,
	}
	if cfg.WrapTransport != nil {
		w.client.Transport = cfg.WrapTransport(w.client.Transport)
	}
	return w, nil
}

// Send makes one delivery attempt of m.
//
// Outcomes follow the Standard Webhooks spec, which counts every non-2xx
// answer as a failure to retry, with two exceptions: 410 Gone means the
// receiver wants no more (Disable and Permanent), and 429 or 503 may
// carry a Retry-After to honour. So a 400, 401, 404 or 413 is retryable
// too: receivers answer those while misconfigured or mid-deploy, and the
// retry schedule gives them the day to fix it. A redirect is not followed
// and counts as a retryable failure (the endpoint should be updated).
// Network errors and timeouts are retryable. Permanent failures are
// otherwise ours: an invalid message or URL, or a target refused as
// internal (wrapping ErrBlockedAddress).
func (w *Webhook) Send(ctx context.Context, m WebhookMessage) (Result, error) {
	u, err := parseTarget(m.URL)
	if err != nil {
		return Result{}, permanent(0, err)
	}
	if !w.allow {
		// Refuse an internal IP literal or localhost before dialling; names
		// are judged by dialControl on the address actually dialled.
		if addr, ok, err := literalHost(u.Hostname()); err != nil {
			return Result{}, permanent(0, err)
		} else if ok {
			if err := checkAddr(addr); err != nil {
				return Result{}, permanent(0, fmt.Errorf("webhook URL: %w", err))
			}
		}
	}
	if !validWebhookID(m.ID) {
		return Result{}, permanent(0, fmt.Errorf("webhook: invalid id %q", m.ID))
	}
	if !json.Valid(m.Payload) {
		return Result{}, permanent(0, errors.New("webhook: payload is not valid JSON"))
	}

	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(m.Payload))
	if err != nil {
		return Result{}, permanent(0, fmt.Errorf("webhook: build request: %w", err))
	}
	ts := strconv.FormatInt(w.now().Unix(), 10)
	req.Header.Set("webhook-id", m.ID)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", w.sign(m.ID, ts, m.Payload))
	req.Header.Set("content-type", "application/json")
	req.Header.Set("user-agent", "Spillway-Webhooks/1")

	resp, err := w.client.Do(req)
	if err != nil {
		if errors.Is(err, ErrBlockedAddress) {
			return Result{}, permanent(0, fmt.Errorf("webhook: %w", err))
		}
		return Result{}, retryable(0, fmt.Errorf("webhook: %w", err))
	}
	defer resp.Body.Close()
	res := Result{StatusCode: resp.StatusCode, Response: readExcerpt(resp)}

	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return res, nil
	case code == http.StatusGone:
		de := permanent(code, errors.New("webhook: receiver answered 410 Gone: endpoint no longer accepts webhooks"))
		de.Disable = true
		return res, de
	case code >= 300 && code < 400:
		return res, retryable(code, fmt.Errorf("webhook: receiver redirected (%s) to %q; redirects are not followed", resp.Status, resp.Header.Get("Location")))
	default:
		de := retryable(code, fmt.Errorf("webhook: receiver answered %s", resp.Status))
		de.RetryAfter = retryAfterOf(resp, w.now())
		return res, de
	}
}

// sign returns the webhook-signature header value: "v1," and the base64 of
// HMAC-SHA256 over "{id}.{timestamp}.{payload}".
func (w *Webhook) sign(id, ts string, payload []byte) string {
	mac := hmac.New(sha256.New, w.key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(payload)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// validWebhookID allows the characters ids are made of here (UUIDs,
// prefixed ids) and nothing that could break the header or the signed
// content's '.' delimiters.
func validWebhookID(id string) bool {
	if id == "" || len(id) > 255 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
