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
	// Now drives the flapping schedule. nil → time.Now.
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
	entries   map[string]*entry
	effects   int
	calls     int
}

// New builds a simulator with all chaos off.
func New(cfg Config) *Sim {
	s := &Sim{
		rand:    cfg.Rand,
		now:     cfg.Now,
		entries: make(map[string]*entry),
	}
	if s.rand == nil {
		s.rand = rand.Float64
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /charges", s.handleCharge)
	s.mux.HandleFunc("GET /control", s.handleGetControl)
	s.mux.HandleFunc("PUT /control", s.handlePutControl)
	// {key...} so keys containing "/" (escaped or not) still resolve.
	s.mux.HandleFunc("GET /control/effects/{key...}", s.handleEffects)
	s.mux.HandleFunc("GET /control/stats", s.handleStats)
	s.mux.HandleFunc("POST /control/reset", s.handleReset)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}
