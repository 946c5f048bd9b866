package loadgen

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Limits keep every run bounded in time and resources, whatever a caller
// passes.
const (
	MaxDuration    = 10 * time.Minute
	MaxConnections = 4096
	defaultConns   = 64
	defaultTimeout = 30 * time.Second
)

// Config describes one run. URL and Duration are required.
type Config struct {
	URL         string        // e.g. http://127.0.0.1:8080/api/v1/payments
	Method      string        // default POST
	Connections int           // concurrent workers (default 64), each with one request in flight
	Duration    time.Duration // how long to run; required, at most MaxDuration
	Requests    int           // optional cap on total requests (0 = none)
	// Rate is an optional open-loop target in requests per second across all
	// workers (0 = closed loop: each worker sends as soon as its previous
	// answer arrives). With a rate, latency is measured from each request's
	// scheduled send time, so a server that falls behind is charged for the
	// queueing it causes instead of silently lowering the rate ("coordinated
	// omission"); give it enough Connections to keep up.
	Rate float64
	// Body returns the body and headers of request i, a global sequence
	// number from 0. It is called concurrently; it may return shared slices
	// and headers as long as it never modifies them afterwards. Nil sends no
	// body.
	Body    func(i int64) (body []byte, headers http.Header)
	Timeout time.Duration // per-request timeout (default 30s)
	// OnAnswer, when set, hears every finished exchange: when it was
	// scheduled (or sent, in a closed loop), its latency as the run counts
	// it, and its status (0 for a transport error). It is called
	// concurrently, so that a caller can judge requests by when they
	// started, which the ticks (by when they ended) cannot say.
	OnAnswer func(start time.Time, latency time.Duration, status int)
	// Client is optional. Without it Run builds one whose transport keeps
	// Connections idle connections to the host, ignores proxy settings and
	// does not follow redirects, and closes its connections when Run ends.
	Client *http.Client
}

// withDefaults validates cfg and fills in defaults.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Method == "" {
		cfg.Method = http.MethodPost
	}
	if cfg.Connections == 0 {
		cfg.Connections = defaultConns
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultTimeout
	}
	switch {
	case cfg.Connections < 0 || cfg.Connections > MaxConnections:
		return cfg, fmt.Errorf("connections %d: want 1 to %d", cfg.Connections, MaxConnections)
	case cfg.Duration <= 0 || cfg.Duration > MaxDuration:
		return cfg, fmt.Errorf("duration %s: want more than 0 and at most %s", cfg.Duration, MaxDuration)
	case cfg.Requests < 0:
		return cfg, fmt.Errorf("requests %d: want 0 (no cap) or more", cfg.Requests)
	case cfg.Rate < 0 || cfg.Rate != cfg.Rate: // NaN compares unequal to itself
		return cfg, fmt.Errorf("rate %v: want 0 (closed loop) or more", cfg.Rate)
	case cfg.Timeout < 0:
		return cfg, fmt.Errorf("timeout %s: want more than 0", cfg.Timeout)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return cfg, fmt.Errorf("url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return cfg, errors.New("url: want http:// or https:// with a host")
	}
	// Building one request up front turns a bad method into one error now
	// rather than one per request.
	if _, err := http.NewRequest(cfg.Method, cfg.URL, nil); err != nil {
		return cfg, fmt.Errorf("request: %w", err)
	}
	return cfg, nil
}
