package sim

import "net/http"

// healthBody answers a health check while the dependency is up.
var healthBody = []byte(`{"status":"ok"}`)

// handleHealth says whether the payment provider is up: GET /health. It
// follows Down and flapping only, with no latency and no error_rate draw:
// drills probe it to learn whether the provider is up, not to sample its
// transient faults.
func (s *Sim) handleHealth(w http.ResponseWriter, _ *http.Request) {
	s.health(w, &s.pay)
}

// handleInventoryHealth is GET /inventory/health, the inventory's own:
// {INVENTORY_URL}/health when INVENTORY_URL is the simulator's /inventory,
// as the drills' contract expects of every dependency.
func (s *Sim) handleInventoryHealth(w http.ResponseWriter, _ *http.Request) {
	s.health(w, &s.inv)
}

func (s *Sim) health(w http.ResponseWriter, cs *chaosState) {
	s.mu.Lock()
	down := s.downLocked(cs)
	s.mu.Unlock()
	if down {
		writeAnswer(w, unavailable("simulated outage: "+cs.name+" is down"))
		return
	}
	writeAnswer(w, answer{status: http.StatusOK, body: healthBody})
}
