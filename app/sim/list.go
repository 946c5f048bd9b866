package sim

import (
	"net/http"
	"slices"
	"time"
)

// listedCharge is one charge in a GET /charges answer.
type listedCharge struct {
	ID        string    `json:"id"`
	Reference string    `json:"reference"`
	Amount    int64     `json:"amount"`
	Currency  string    `json:"currency"`
	Status    string    `json:"status"` // succeeded | declined | refunded
	CreatedAt time.Time `json:"created_at"`
}

// listResponse is the body of a 200 GET /charges answer. Next is the
// cursor to pass back as after=, "" on the last page.
type listResponse struct {
	Charges []listedCharge `json:"charges"`
	Next    string         `json:"next"`
}

func (s *Sim) handleList(w http.ResponseWriter, r *http.Request) {
	q, err := parseListQuery(r.URL.RawQuery)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}
	ans, latency := s.list(q)
	sleep(r.Context(), latency)
	writeAnswer(w, ans)
}

// list answers one page of charges created strictly after q.createdAfter,
// oldest first by (created_at, id), starting after the charge q.after.
//
// The cursor is a charge id rather than an offset, so charges recorded
// while a client pages through land after its cursor (or before
// created_after) instead of shifting the pages it has yet to read.
func (s *Sim) list(q listQuery) (answer, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	latency := s.pay.chaos.Latency
	if ans, failed := s.chaosFailureLocked(&s.pay); failed {
		return ans, latency
	}

	// The first charge created after created_after: the comparison never
	// says "equal", so the search lands on the boundary.
	start, _ := slices.BinarySearchFunc(s.byCreated, q.createdAfter, func(c *chargeRecord, t time.Time) int {
		if c.createdAt.After(t) {
			return 1
		}
		return -1
	})
	if q.after != "" {
		cur := s.charges[q.after]
		if cur == nil {
			return problemAnswer(http.StatusBadRequest, "after is not a cursor this simulator issued (unknown charge id)"), latency
		}
		i, found := slices.BinarySearchFunc(s.byCreated, cur, compareCharges)
		if found {
			i++
		}
		start = max(start, i)
	}
	end := min(start+q.limit, len(s.byCreated))

	resp := listResponse{Charges: make([]listedCharge, 0, end-start)}
	for _, c := range s.byCreated[start:end] {
		resp.Charges = append(resp.Charges, listedCharge{
			ID:        c.id,
			Reference: c.reference,
			Amount:    c.amount,
			Currency:  c.currency,
			Status:    c.status(),
			CreatedAt: c.createdAt,
		})
	}
	if end < len(s.byCreated) {
		resp.Next = s.byCreated[end-1].id
	}
	return answer{status: http.StatusOK, body: mustJSON(resp)}, latency
}
