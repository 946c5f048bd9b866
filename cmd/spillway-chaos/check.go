package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spillway/spillway/app"
)

// books is what the database and the simulator say happened, read after
// the drain.
type books struct {
	ops map[string]string // operation id → status
	// charges counts the simulator's charges (succeeded or refunded: money
	// moved) per reference, which is the operation id for payments and
	// orders alike, whatever key each call carried.
	charges map[string]int
	// refunded counts, of those, the charges refunded since (the orphan
	// sweep refunds a charge it judges no operation accounts for).
	refunded map[string]int
	// reservations is, per order id, what the inventory recorded under the
	// key of its one reservation step.
	reservations map[string]reservation
}

type reservation struct {
	Made     int // reservations under the key: 0 or 1
	Released int // releases that gave the stock back
}

// books reads the scenario's operations and the simulator's charges and
// reservations. The simulator is reset per scenario, so its books are
// this scenario's alone.
func (r *scenarioRun) books(ctx context.Context) (books, error) {
	b := books{ops: map[string]string{}, charges: map[string]int{}, refunded: map[string]int{},
		reservations: map[string]reservation{}}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	rows, err := r.pool.Query(ctx, `SELECT id::text, kind, status FROM operations`)
	if err != nil {
		return b, err
	}
	var orders []string
	for rows.Next() {
		var id, kind, status string
		if err := rows.Scan(&id, &kind, &status); err != nil {
			rows.Close()
			return b, err
		}
		b.ops[id] = status
		if kind == "order" {
			orders = append(orders, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return b, err
	}
	for _, id := range orders {
		st, _ := r.s.sim.InventoryKey(id + ":reserve:" + chaosSKU)
		b.reservations[id] = reservation{Made: st.Reservations, Released: st.Releases}
	}
	if err := r.s.listCharges(ctx, b.charges, b.refunded); err != nil {
		return b, err
	}
	return b, nil
}

// listCharges pages through the simulator's GET /charges (the orphan
// sweep's listing), directly rather than through the proxy.
func (s *suite) listCharges(ctx context.Context, charges, refunded map[string]int) error {
	after := ""
	for {
		q := url.Values{"limit": {"1000"}}
		if after != "" {
			q.Set("after", after)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.simURL+"/charges?"+q.Encode(), nil)
		if err != nil {
			return err
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		var page struct {
			Charges []struct {
				Reference string `json:"reference"`
				Status    string `json:"status"`
			} `json:"charges"`
			Next string `json:"next"`
		}
		err = json.NewDecoder(res.Body).Decode(&page)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK {
			return fmt.Errorf("simulator GET /charges: %d %v", res.StatusCode, err)
		}
		for _, c := range page.Charges {
			if c.Status == "succeeded" || c.Status == "refunded" {
				charges[c.Reference]++
			}
			if c.Status == "refunded" {
				refunded[c.Reference]++
			}
		}
		if page.Next == "" {
			return nil
		}
		after = page.Next
	}
}

// row is one scenario's line of the table and of the JSON.
type row struct {
	Scenario     string `json:"scenario"`
	Fault        string `json:"fault"`
	Sent         int    `json:"sent"`
	Acknowledged int    `json:"acknowledged"`
	Sync         int    `json:"sync"`  // 201
	Async        int    `json:"async"` // 202
	Lost         int    `json:"lost"`
	Duplicated   int    `json:"duplicated"`
	Wrong        int    `json:"wrong"` // a terminal status the downstream books contradict
	// Undocumented counts answers with a status the API does not document
	// for these requests (a 500, say): the client cannot tell what happened.
	Undocumented int     `json:"undocumented"`
	P99Ms        float64 `json:"p99_ms"`
	MaxMs        float64 `json:"max_ms"`
	OverBudget   int     `json:"over_budget"`
	RecoverMs    float64 `json:"recover_ms"` // -1: did not recover within the wait; 0 with no fault
	// The two parts of RecoverMs: the first 201 after the heal, and the
	// moment no operation created before the heal was still open (-1: never).
	SyncBackMs    float64        `json:"sync_back_ms"`
	BacklogDoneMs float64        `json:"backlog_drained_ms"`
	Statuses      map[string]int `json:"statuses"`   // answers by status; "none" for no answer
	StillOpen     int64          `json:"still_open"` // operations open when the drain wait ended
	// Retried counts the requests sent again after the drain because
	// their first attempt got no answer or a 5xx; RetriedAcknowledged
	// those answered 2xx the second time (a replay when the first attempt
	// had committed).
	Retried             int `json:"retried"`
	RetriedAcknowledged int `json:"retried_acknowledged"`
	// RetriedReplayed counts retries answered with a replay: the first
	// attempt had been captured although its client got a 5xx or nothing.
	RetriedReplayed int      `json:"retried_replayed"`
	Problems        []string `json:"problems,omitempty"`
}

// failed says whether the row breaks the promise.
func (rw row) failed() bool {
	return rw.Lost > 0 || rw.Duplicated > 0 || rw.Wrong > 0 || rw.Undocumented > 0
}

// documented is every status DESIGN.md lets POST /payments and /orders
// answer: done, captured, declined, in flight, bad input or out of stock,
// and nothing acknowledged.
func documented(status int) bool {
	switch status {
	case http.StatusCreated, http.StatusAccepted, http.StatusPaymentRequired, http.StatusConflict,
		http.StatusUnprocessableEntity, http.StatusServiceUnavailable:
		return true
	}
	return false
}

// maxProblems bounds the examples a row keeps: enough to start debugging.
const maxProblems = 10

// judge turns a scenario's answers and the books into its row.
//
//   - lost: an acknowledged request whose operation is missing, or still
//     open after the drain wait;
//   - duplicated: more than one charge for one operation (counted over
//     every charge the simulator holds, acknowledged or not), or more than
//     one reservation for one order;
//   - wrong: a terminal status the downstream contradicts: succeeded
//     without its charge, or with it refunded (or an order without its
//     reservation), or failed/declined/cancelled while money moved and
//     stayed moved, or stock stayed held.
//
// retries are the client's second attempts at requests that got no
// answer or a 5xx, sent after the drain with the same key: they count
// apart (Retried, RetriedAcknowledged) and are judged by the same rules.
func judge(sc scenario, answers, retries []answer, b books, healAt time.Time, d drainResult) row {
	rw := row{Scenario: sc.Name, Fault: sc.Fault, Sent: len(answers), Statuses: map[string]int{}, StillOpen: d.open,
		Retried: len(retries)}
	problem := func(format string, args ...any) {
		if len(rw.Problems) < maxProblems {
			rw.Problems = append(rw.Problems, fmt.Sprintf(format, args...))
		}
	}
	for _, a := range retries {
		if !documented(a.Status) && a.Status != 0 {
			rw.Undocumented++
			problem("undocumented: retried %s %s answered %d", a.Kind, a.Key, a.Status)
		}
		if a.Replayed {
			rw.RetriedReplayed++
			// The first attempt was recorded after all. A 503 that said
			// "nothing was done" told the client a falsehood it may act on
			// (a retry under a new key charges twice); one that said the
			// request may have taken effect was honest.
			if strings.Contains(a.Detail, "nothing was done") {
				rw.Wrong++
				problem("wrong: %s %s was answered 503 %q, yet the retry replays the recorded first attempt (%s)",
					a.Kind, a.Key, a.Detail, a.OpID)
			}
		}
		if a.acknowledged() {
			rw.RetriedAcknowledged++
			rw.checkAcknowledged(a, b, problem)
		}
	}
	var lat []time.Duration
	var syncBack time.Duration = -1
	for _, a := range answers {
		if a.Status == 0 {
			rw.Statuses["none"]++
			continue
		}
		rw.Statuses[fmt.Sprint(a.Status)]++
		if !documented(a.Status) {
			rw.Undocumented++
			problem("undocumented: %s %s answered %d", a.Kind, a.Key, a.Status)
		}
		lat = append(lat, a.Latency)
		if a.Latency > budget(a.Kind) {
			rw.OverBudget++
		}
		if a.Status == http.StatusCreated && !a.Sent.Before(healAt) {
			if back := a.Sent.Add(a.Latency).Sub(healAt); syncBack < 0 || back < syncBack {
				syncBack = back
			}
		}
		if !a.acknowledged() {
			continue
		}
		rw.Acknowledged++
		switch a.Status {
		case http.StatusCreated:
			rw.Sync++
		case http.StatusAccepted:
			rw.Async++
		}
		rw.checkAcknowledged(a, b, problem)
	}
	for _, ref := range sortedKeys(b.charges) {
		if n := b.charges[ref]; n > 1 {
			rw.Duplicated++
			problem("duplicated: %d charges for operation %s", n, ref)
		}
	}
	for _, id := range sortedKeys(b.reservations) {
		if n := b.reservations[id].Made; n > 1 {
			rw.Duplicated++
			problem("duplicated: %d reservations for order %s", n, id)
		}
	}
	rw.P99Ms, rw.MaxMs = ms(quantile(lat, 0.99)), ms(quantile(lat, 1))
	rw.SyncBackMs, rw.BacklogDoneMs = -1, -1
	if syncBack >= 0 {
		rw.SyncBackMs = ms(syncBack)
	}
	if !d.backlogDone.IsZero() {
		rw.BacklogDoneMs = ms(d.backlogDone.Sub(healAt))
	}
	switch {
	case sc.inject == nil:
		rw.RecoverMs = 0
	case syncBack < 0 || d.backlogDone.IsZero():
		rw.RecoverMs = -1
	default:
		rw.RecoverMs = ms(max(syncBack, d.backlogDone.Sub(healAt)))
	}
	return rw
}

// quantile is the q-quantile of ds by the nearest-rank method; 0 when
// empty. It sorts ds.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(q*float64(len(ds))+0.999999) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkAcknowledged judges one acknowledged request against the books.
func (rw *row) checkAcknowledged(a answer, b books, problem func(string, ...any)) {
	status, ok := b.ops[a.OpID]
	switch {
	case !ok:
		rw.Lost++
		problem("lost: %s %s answered %d with id %q: no such operation", a.Kind, a.Key, a.Status, a.OpID)
		return
	case !app.Status(status).Terminal():
		rw.Lost++
		problem("lost: %s %s (%s) still %s after the drain wait", a.Kind, a.Key, a.OpID, status)
		return
	}
	charged, refunded := b.charges[a.OpID], b.refunded[a.OpID]
	ok = true
	switch status {
	case "succeeded":
		// Charged once and kept: a succeeded operation whose charge the
		// orphan sweep refunded took the customer's money back.
		ok = charged == 1 && refunded == 0
		if a.Kind == "order" {
			ok = ok && b.reservations[a.OpID].Made == 1 && b.reservations[a.OpID].Released == 0
		}
	default: // declined, failed, cancelled: nothing may have stuck
		ok = charged == refunded
		if res := b.reservations[a.OpID]; a.Kind == "order" && res.Made != res.Released {
			ok = false
		}
	}
	if !ok && charged <= 1 {
		rw.Wrong++
		problem("wrong: %s %s (%s) is %s; the provider holds %d charge(s), %d refunded, the inventory %+v",
			a.Kind, a.Key, a.OpID, status, charged, refunded, b.reservations[a.OpID])
	}
}
