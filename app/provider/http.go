package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/spillway/spillway/app"
)

// maxResponseBytes caps how much of an answer is read; a charge answer is a
// few hundred bytes, so anything near this is not one.
const maxResponseBytes = 1 << 20

// HTTPConfig configures the generic HTTP payment provider.
type HTTPConfig struct {
	// BaseURL is the provider's absolute http(s) URL; charges go to
	// {BaseURL}/charges, health checks to {BaseURL}/health.
	BaseURL string
	// Client sends the requests. nil → a pooled client with no overall
	// timeout (ctx deadlines rule) that does not follow redirects.
	Client *http.Client
	// WrapTransport, when set, wraps the pooled client's transport (the
	// tracing instruments the calls there); it is not applied to a given
	// Client.
	WrapTransport func(http.RoundTripper) http.RoundTripper
}

// HTTP is an app.PaymentProvider speaking the generic JSON contract.
// It is safe for concurrent use.
type HTTP struct {
	caller
	chargesURL string // {BaseURL}/charges: charges, lookups, listings, refunds
	healthURL  string // {BaseURL}/health
}

// caller sends the requests of one generic-contract adapter (HTTP,
// InventoryHTTP): both decide a fault's OutcomeUnknown the same way.
type caller struct {
	client *http.Client
}

var _ app.PaymentProvider = (*HTTP)(nil)

// NewHTTP validates cfg and returns a provider.
func NewHTTP(cfg HTTPConfig) (*HTTP, error) {
	u, err := parseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("http provider: %w", err)
	}
	return &HTTP{
		caller:     newCaller(cfg.Client, cfg.WrapTransport),
		chargesURL: u.JoinPath("charges").String(),
		healthURL:  u.JoinPath("health").String(),
	}, nil
}

// newCaller uses client, or a pooled one when it is nil.
func newCaller(client *http.Client, wrap func(http.RoundTripper) http.RoundTripper) caller {
	if client == nil {
		client = newPooledClient(wrap)
	}
	return caller{client: client}
}

// parseBaseURL accepts only absolute http/https URLs without query or
// fragment, which would otherwise be silently dropped or misplaced.
func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("parse base URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("base URL %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("base URL %q: missing host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("base URL %q: must not carry a query, fragment or credentials", raw)
	}
	return u, nil
}

// chargeRequestBody is the wire shape of POST /charges.
type chargeRequestBody struct {
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
	Reference string `json:"reference"`
}

// Charge posts c to {BaseURL}/charges. A decline is a result; every other
// failure is an *app.ProviderError.
func (p *HTTP) Charge(ctx context.Context, c app.Charge) (app.ChargeResult, error) {
	if pe := checkCharge(c); pe != nil {
		return app.ChargeResult{}, pe
	}
	payload, err := json.Marshal(chargeRequestBody{Amount: c.Amount, Currency: c.Currency, Reference: c.Reference})
	if err != nil {
		return app.ChargeResult{}, rejected("encode charge: %w", err)
	}
	status, body, pe := p.exchange(ctx, http.MethodPost, p.chargesURL, c.IdempotencyKey, payload, "charge")
	if pe != nil {
		return app.ChargeResult{}, pe
	}
	return decodeChargeAnswer(status, body)
}

// exchange sends one request and reads its whole answer. Any failure
// before the whole answer is in hand is a transport fault, whose
// OutcomeUnknown says whether the request may have reached the provider;
// an answer is left to the caller's decoder. key, when not "", is sent as
// the Idempotency-Key; payload, when not nil, as a JSON body.
func (p caller) exchange(ctx context.Context, method, target, key string, payload []byte, what string) (int, []byte, *app.ProviderError) {
	var reqBody io.Reader
	if payload != nil {
		reqBody = bytes.NewReader(payload)
	}
	tctx, tr := traceSend(ctx)
	req, err := http.NewRequestWithContext(tctx, method, target, reqBody)
	if err != nil {
		return 0, nil, rejected("build %s request: %w", what, err)
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}

	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, transportFault(ctx, 0, fmt.Errorf("%s: %w", what, withoutURL(err)), tr.mayHaveSent(err))
	}
	body, err := readBounded(resp.Body)
	if err != nil {
		// The status line arrived but not the whole answer: the request
		// may well have taken effect, whatever the status said.
		return resp.StatusCode, nil, transportFault(ctx, resp.StatusCode, fmt.Errorf("read %s answer: %w", what, err), true)
	}
	return resp.StatusCode, body, nil
}

// withoutURL drops the *url.Error layer, whose message repeats the whole
// request URL, so an error that ends up in an operation's record or a log
// names the failure, not the provider's address and our keys in its path.
// The cause stays reachable with errors.Is/As.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// errTooLarge marks an answer longer than maxResponseBytes.
var errTooLarge = errors.New("answer exceeds 1 MiB")

// readBounded reads at most maxResponseBytes and always drains (a bounded
// amount) and closes the body so the connection can be reused.
func readBounded(rc io.ReadCloser) ([]byte, error) {
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(rc, maxResponseBytes))
		_ = rc.Close()
	}()
	b, err := io.ReadAll(io.LimitReader(rc, maxResponseBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxResponseBytes {
		return nil, errTooLarge
	}
	return b, nil
}
