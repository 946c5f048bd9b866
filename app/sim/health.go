package sim

import "net/http"

// healthBody answers GET /health while the simulator is up.
var healthBody = []byte(`{"status":"ok"}`)

// handleHealth says whether the provider is up. It follows Down and
// flapping only, with no latency and no error_rate draw: drills probe it
// to learn whether the provider is up, not to sample its transient
// faults.
func (s *Sim) handleHealth(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	down := s.downLocked()
	s.mu.Unlock()
	if down {
		writeAnswer(w, unavailable("simulated outage: provider is down"))
		return
	}
	writeAnswer(w, answer{status: http.StatusOK, body: healthBody})
}
