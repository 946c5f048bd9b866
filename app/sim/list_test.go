package sim_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spillway/spillway/app/sim"
)

type listedJSON struct {
	ID        string    `json:"id"`
	Reference string    `json:"reference"`
	Amount    int64     `json:"amount"`
	Currency  string    `json:"currency"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
}

type pageJSON struct {
	Charges []listedJSON `json:"charges"`
	Next    *string      `json:"next"` // a pointer to tell "" from absent
}

func listPage(t *testing.T, srv, query string) pageJSON {
	t.Helper()
	r := control(t, srv, http.MethodGet, "/charges?"+query, "")
	if r.status != http.StatusOK {
		t.Fatalf("GET /charges?%s = %d %s", query, r.status, r.body)
	}
	p := decode[pageJSON](t, r.body)
	if p.Next == nil || p.Charges == nil {
		t.Fatalf("GET /charges?%s: next or charges missing in %s", query, r.body)
	}
	return p
}

// listAll pages through with limit, checking every page but the last is
// full and carries a next.
func listAll(t *testing.T, srv string, createdAfter time.Time, limit int) (all []listedJSON, pages int) {
	t.Helper()
	after := ""
	for {
		q := url.Values{"created_after": {createdAfter.Format(time.RFC3339Nano)}, "limit": {fmt.Sprint(limit)}}
		if after != "" {
			q.Set("after", after)
		}
		p := listPage(t, srv, q.Encode())
		pages++
		all = append(all, p.Charges...)
		if *p.Next == "" {
			return all, pages
		}
		if len(p.Charges) != limit {
			t.Fatalf("page %d has %d charges and a next, want a full page of %d", pages, len(p.Charges), limit)
		}
		if *p.Next != p.Charges[len(p.Charges)-1].ID {
			t.Fatalf("next = %q, want the last id on the page", *p.Next)
		}
		after = *p.Next
		if pages > 100 {
			t.Fatal("listing does not end")
		}
	}
}

func TestListPagesOldestFirst(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	t0 := clock.Now()
	s, srv := start(t, sim.Config{Now: clock.Now})

	// Seven charges, two of them in the same instant (ordered by id), one
	// declined, one refunded, one refused with 503 (no charge at all).
	var keys []string
	for i := range 7 {
		if i != 3 { // charges 2 and 3 share an instant
			clock.Advance(time.Second)
		}
		key := fmt.Sprintf("op-%d", i)
		keys = append(keys, key)
		amount := int64(1000 + i*100)
		if i == 5 {
			amount = 1002
		}
		charge(t, srv, key, fmt.Sprintf(`{"amount":%d,"currency":"EUR","reference":"ref-%d"}`, amount, i))
	}
	s.SetChaos(sim.Chaos{Down: true})
	charge(t, srv, "refused", chargeBody(100))
	s.SetChaos(sim.Chaos{})
	id6 := decode[keyStatsJSON](t, control(t, srv.URL, http.MethodGet, "/control/effects/op-6", "").body).ChargeID
	if r := refund(t, srv.URL, id6, "rf-1"); r.status != http.StatusOK {
		t.Fatalf("refund = %d %s", r.status, r.body)
	}

	all, pages := listAll(t, srv.URL, t0, 2)
	if len(all) != 7 || pages != 4 {
		t.Fatalf("listed %d charges in %d pages, want 7 in 4", len(all), pages)
	}
	seen := map[string]bool{}
	for i, c := range all {
		if seen[c.ID] {
			t.Errorf("charge %s listed twice", c.ID)
		}
		seen[c.ID] = true
		if i > 0 {
			prev := all[i-1]
			if c.CreatedAt.Before(prev.CreatedAt) || (c.CreatedAt.Equal(prev.CreatedAt) && c.ID < prev.ID) {
				t.Errorf("charge %d (%s %s) listed after a later one (%s %s)", i, c.CreatedAt, c.ID, prev.CreatedAt, prev.ID)
			}
		}
		if c.Currency != "eur" || !strings.HasPrefix(c.Reference, "ref-") || c.Amount < 1000 {
			t.Errorf("charge %d = %+v", i, c)
		}
	}
	statuses := map[string]string{}
	for _, c := range all {
		statuses[c.Reference] = c.Status
	}
	if statuses["ref-5"] != "declined" || statuses["ref-6"] != "refunded" || statuses["ref-0"] != "succeeded" {
		t.Errorf("statuses = %v", statuses)
	}

	// created_after is strict: the instant of charges 2 and 3 excludes both.
	after, _ := listAll(t, srv.URL, all[3].CreatedAt, 100)
	if len(after) != 3 || after[0].ID != all[4].ID {
		t.Errorf("after %s: listed %d charges starting %v, want 3 starting %s", all[3].CreatedAt, len(after), after, all[4].ID)
	}
	if !all[2].CreatedAt.Equal(all[3].CreatedAt) {
		t.Errorf("charges 2 and 3 at %s and %s, want the same instant", all[2].CreatedAt, all[3].CreatedAt)
	}
	if got, _ := listAll(t, srv.URL, clock.Now(), 100); len(got) != 0 {
		t.Errorf("after the last charge: listed %v, want none", got)
	}
	// With no parameters at all: everything, default limit.
	if p := listPage(t, srv.URL, ""); len(p.Charges) != 7 || *p.Next != "" {
		t.Errorf("unqualified listing = %d charges, next %q", len(p.Charges), *p.Next)
	}
}

// TestListCursorIsStableUnderNewCharges: charges recorded while a client
// pages through come after its cursor; none is skipped or repeated.
func TestListCursorIsStableUnderNewCharges(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	t0 := clock.Now()
	_, srv := start(t, sim.Config{Now: clock.Now})
	for i := range 3 {
		clock.Advance(time.Second)
		charge(t, srv, fmt.Sprintf("a-%d", i), chargeBody(100))
	}
	first := listPage(t, srv.URL, url.Values{"created_after": {t0.Format(time.RFC3339)}, "limit": {"2"}}.Encode())
	clock.Advance(time.Second)
	charge(t, srv, "late", chargeBody(100))
	rest := listPage(t, srv.URL, url.Values{"created_after": {t0.Format(time.RFC3339)}, "limit": {"10"}, "after": {*first.Next}}.Encode())
	if len(first.Charges) != 2 || len(rest.Charges) != 2 || *rest.Next != "" {
		t.Fatalf("pages of %d and %d (next %q), want 2 and 2", len(first.Charges), len(rest.Charges), *rest.Next)
	}
}

func TestListRefusesBadQueries(t *testing.T) {
	t.Parallel()
	_, srv := start(t, sim.Config{})
	charge(t, srv, "k", chargeBody(100))
	tests := []struct{ name, query string }{
		{"created_after not a time", "created_after=yesterday"},
		{"created_after date only", "created_after=2025-01-01"},
		{"created_after empty", "created_after="},
		{"offset not escaped", "created_after=2025-01-01T00:00:00+01:00"},
		{"limit zero", "limit=0"},
		{"limit above 1000", "limit=1001"},
		{"limit not a number", "limit=ten"},
		{"limit with sign", "limit=+5"},
		{"limit empty", "limit="},
		{"limit twice", "limit=1&limit=2"},
		{"unknown parameter", "created_afer=2025-01-01T00:00:00Z"},
		{"unknown cursor", "after=ch_nosuch"},
		{"cursor too long", "after=" + strings.Repeat("c", 256)},
		{"malformed escape", "limit=%zz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := control(t, srv.URL, http.MethodGet, "/charges?"+tt.query, "")
			if r.status != http.StatusBadRequest || r.header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("GET /charges?%s = %d %q %s, want 400 problem", tt.query, r.status, r.header.Get("Content-Type"), r.body)
			}
		})
	}
}

func TestListUnavailableUnderChaos(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Config{})
	s.SetChaos(sim.Chaos{Down: true})
	if r := control(t, srv.URL, http.MethodGet, "/charges", ""); r.status != http.StatusServiceUnavailable {
		t.Errorf("listing while down = %d, want 503", r.status)
	}
}
