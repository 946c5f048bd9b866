package sim

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Config injects the sources of randomness and time so tests can make the
// simulator deterministic. Zero values use the real ones.
type Config struct {
	// Rand returns a float in [0,1); it decides error_rate and decline_rate
	// draws. It is always called under the simulator's lock, so it need not
	// be safe for concurrent use. nil → math/rand/v2.Float64.
	Rand func() float64
	// Now drives the flapping schedule and stamps each charge's
	// created_at. nil → time.Now.
	Now func() time.Time
}

// Sim is the simulator. It is an http.Handler and safe for concurrent use.
type Sim struct {
	rand func() float64
	now  func() time.Time
	mux  *http.ServeMux

	mu        sync.Mutex // guards everything below
	chaos     Chaos
	flapStart time.Time
	entries   map[string]*entry        // by idempotency key
	charges   map[string]*chargeRecord // by charge id
	byCreated []*chargeRecord          // every charge, oldest first (created_at, then id)
	refunds   map[string]*refundRecord // by refund idempotency key
	effects   int                      // charges recorded
	seq       int                      // sequence number of the last charge recorded
	calls     int                      // valid POST /charges requests
	lookups   int                      // valid lookups
	refunded  int                      // refunds recorded
	failNext  int                      // lookups still to fail, see FailNextLookups
	holds     map[string]*hold         // by idempotency key, see Hold
}

// New builds a simulator with all chaos off.
func New(cfg Config) *Sim {
	s := &Sim{
		rand:  cfg.Rand,
		now:   cfg.Now,
		holds: make(map[string]*hold),
	}
	s.clearLocked()
	if s.rand == nil {
		s.rand = rand.Float64
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /charges", s.handleCharge)
	s.mux.HandleFunc("GET /charges", s.handleList)
	// {key...} so keys containing "/" (escaped or not) still resolve. The
	// refund route does not clash with it: it is another method.
	s.mux.HandleFunc("GET /charges/{key...}", s.handleLookup)
	s.mux.HandleFunc("POST /charges/{id}/refunds", s.handleRefund)
	s.mux.HandleFunc("GET /health", s.handleHealth)
	s.mux.HandleFunc("GET /control", s.handleGetControl)
	s.mux.HandleFunc("PUT /control", s.handlePutControl)
	s.mux.HandleFunc("GET /control/effects/{key...}", s.handleEffects)
	s.mux.HandleFunc("GET /control/stats", s.handleStats)
	s.mux.HandleFunc("POST /control/reset", s.handleReset)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}
