package sim

import (
	"net/http"
)

func (s *Sim) handleGetControl(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.view())
}

func (s *Sim) view() chaosView {
	s.mu.Lock()
	defer s.mu.Unlock()
	return viewOf(s.chaos, s.downLocked())
}

func (s *Sim) handlePutControl(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	patch, err := decodeChaosPatch(body)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}

	s.mu.Lock()
	next, err := patch.apply(s.chaos)
	if err == nil {
		s.setChaosLocked(next)
	}
	v := viewOf(s.chaos, s.downLocked())
	s.mu.Unlock()

	if err != nil {
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Sim) handleEffects(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	st, ok := s.keyStats(key)
	if !ok {
		writeProblem(w, http.StatusNotFound, "no request has carried this idempotency key")
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Sim) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.totals())
}

func (s *Sim) handleReset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	writeJSON(w, http.StatusOK, s.view())
}
