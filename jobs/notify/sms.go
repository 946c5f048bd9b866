package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// defaultSMSTimeout bounds one request to the SMS provider when the config
// sets none.
const defaultSMSTimeout = 15 * time.Second

// maxSMSBody is Twilio's limit on a message body (in characters); longer
// bodies are refused by the provider, so we refuse them first.
const maxSMSBody = 1600

// SMSConfig configures the SMS sender.
type SMSConfig struct {
	// URL is SMS_PROVIDER_URL, the provider's full "create message"
	// endpoint, e.g.
	// https://ACxxx:token@api.twilio.com/2010-04-01/Accounts/ACxxx/Messages.json.
	// User and password, when present, are sent as HTTP basic auth and
	// never as part of the URL.
	URL string
	// From is the sending number (E.164) or sender id, passed through.
	From string
	// Timeout bounds one Send; 0 means 15s. The caller's ctx can only
	// shorten it.
	Timeout time.Duration
	// Client sends the requests; nil means a client that does not follow
	// redirects. A given client is used as is.
	Client *http.Client
	// WrapTransport, when set, wraps the default client's transport (the
	// tracing instruments the sends there); a given Client is used as is.
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// Now is the clock a Retry-After date is counted from; nil means
	// time.Now.
	Now func() time.Time
}

// SMS sends text messages through a Twilio-style HTTP API. It is safe for
// concurrent use.
type SMS struct {
	endpoint string // without credentials
	user     string
	pass     string
	hasAuth  bool
	from     string
	timeout  time.Duration
	client   *http.Client
	now      func() time.Time
}

// SMSMessage is one text message to deliver.
type SMSMessage struct {
	To   string // E.164, e.g. +15551234567
	Body string
	// IdempotencyKey is sent as the Idempotency-Key header so a provider
	// that honours it sends a retried message once. Twilio ignores it, so
	// a retry after a timeout may still send twice there.
	IdempotencyKey string
}

// NewSMS validates cfg and returns a sender. It does not connect.
func NewSMS(cfg SMSConfig) (*SMS, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		// url.Parse's error repeats the URL, token included: leave it out.
		return nil, errors.New("SMS_PROVIDER_URL: not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("SMS_PROVIDER_URL: scheme must be http or https, got %q", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("SMS_PROVIDER_URL: missing host")
	}
	if u.Fragment != "" {
		return nil, errors.New("SMS_PROVIDER_URL: must have no fragment")
	}
	s := &SMS{from: strings.TrimSpace(cfg.From), timeout: cfg.Timeout, client: cfg.Client, now: cfg.Now}
	if s.from == "" {
		return nil, errors.New("SMS From is required")
	}
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
		s.hasAuth = true
		u.User = nil
	}
	s.endpoint = u.String()
	if s.timeout <= 0 {
		s.timeout = defaultSMSTimeout
	}
	if s.client == nil {
		s.client = &http.Client{CheckRedirect: noRedirects}
		if cfg.WrapTransport != nil {
			s.client.Transport = cfg.WrapTransport(http.DefaultTransport)
		}
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Send posts one message: form fields To, From and Body, with basic auth
// and the Idempotency-Key header.
//
// A 2xx answer is success. Failures are *DeliveryError: an invalid number
// or body, and any 4xx except 408 and 429, are Permanent (the provider
// refused this message); 429 and 503 carry the provider's Retry-After;
// other statuses, network errors and timeouts are retryable.
func (s *SMS) Send(ctx context.Context, m SMSMessage) (Result, error) {
	if !isE164(m.To) {
		return Result{}, permanent(0, fmt.Errorf("sms: recipient %q is not an E.164 number", m.To))
	}
	if strings.TrimSpace(m.Body) == "" {
		return Result{}, permanent(0, errors.New("sms: empty body"))
	}
	if n := utf8.RuneCountInString(m.Body); n > maxSMSBody {
		return Result{}, permanent(0, fmt.Errorf("sms: body has %d characters, over the limit of %d", n, maxSMSBody))
	}

	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()

	form := url.Values{"To": {m.To}, "From": {s.from}, "Body": {m.Body}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return Result{}, permanent(0, fmt.Errorf("sms: build request: %w", err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if m.IdempotencyKey != "" {
		req.Header.Set("Idempotency-Key", m.IdempotencyKey)
	}
	if s.hasAuth {
		req.SetBasicAuth(s.user, s.pass)
	}

	resp, err := s.client.Do(req)
	if err != nil {
		// The request may have reached the provider: retryable, and the
		// worker reuses the idempotency key.
		return Result{}, retryable(0, fmt.Errorf("sms: %w", err))
	}
	defer resp.Body.Close()
	res := Result{StatusCode: resp.StatusCode, Response: readExcerpt(resp)}

	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return res, nil
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		de := retryable(code, fmt.Errorf("sms: provider answered %s", resp.Status))
		de.RetryAfter = retryAfterOf(resp, s.now())
		return res, de
	case code >= 400 && code < 500:
		return res, permanent(code, fmt.Errorf("sms: provider refused the message: %s", resp.Status))
	default:
		// 5xx, and anything we do not understand (1xx, 3xx): the message
		// was not accepted, and another attempt may be.
		de := retryable(code, fmt.Errorf("sms: provider answered %s", resp.Status))
		de.RetryAfter = retryAfterOf(resp, s.now())
		return res, de
	}
}

// isE164 reports whether s is an E.164 number: "+", a non-zero digit,
// then up to 14 more digits.
func isE164(s string) bool {
	if len(s) < 3 || len(s) > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9' {
		return false
	}
	return isDigits(s[2:])
}
