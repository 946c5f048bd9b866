package provider_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/sim"
)

// clock is a settable time source for the simulator.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestHTTPListChargesPagesOldestFirst(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	start := clk.Now()
	s := sim.New(sim.Config{Now: clk.Now})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	p := newHTTP(t, srv.URL)

	const n = 7
	refs := make([]string, n)
	for i := range n {
		clk.Advance(time.Second)
		refs[i] = fmt.Sprintf("op-%d", i)
		if _, err := p.Charge(context.Background(), app.Charge{IdempotencyKey: refs[i], Amount: int64(100 * (i + 1)), Currency: "usd", Reference: refs[i]}); err != nil {
			t.Fatalf("Charge %d: %v", i, err)
		}
	}

	var all []app.ProviderCharge
	after, pages := "", 0
	for {
		page, err := p.ListCharges(context.Background(), start, after, 3)
		if err != nil {
			t.Fatalf("ListCharges page %d: %v", pages, err)
		}
		pages++
		all = append(all, page.Charges...)
		if page.Next == "" {
			break
		}
		if len(page.Charges) != 3 || pages > n {
			t.Fatalf("page %d: %d charges with next %q", pages, len(page.Charges), page.Next)
		}
		after = page.Next
	}
	if pages != 3 || len(all) != n {
		t.Fatalf("%d charges in %d pages, want %d in 3", len(all), pages, n)
	}
	for i, c := range all {
		want := app.ProviderCharge{ID: c.ID, Reference: refs[i], Amount: int64(100 * (i + 1)), Currency: "usd", Status: "succeeded", CreatedAt: start.Add(time.Duration(i+1) * time.Second)}
		if c != want || !strings.HasPrefix(c.ID, "ch_") {
			t.Errorf("charge %d = %+v, want %+v", i, c, want)
		}
	}

	// created_after is honoured, and strictly: the fifth charge's instant
	// leaves the sixth and seventh.
	page, err := p.ListCharges(context.Background(), all[4].CreatedAt, "", 0)
	if err != nil {
		t.Fatalf("ListCharges: %v", err)
	}
	if len(page.Charges) != 2 || page.Charges[0].Reference != "op-5" || page.Next != "" {
		t.Errorf("after the fifth: %+v", page)
	}
	// A time in another zone means the same instant.
	page, err = p.ListCharges(context.Background(), all[4].CreatedAt.In(time.FixedZone("x", 5*3600+1800)), "", 0)
	if err != nil || len(page.Charges) != 2 {
		t.Errorf("after the fifth, in +05:30: %+v, %v", page, err)
	}
}

func TestHTTPListChargesRequest(t *testing.T) {
	t.Parallel()
	after := time.Date(2025, 3, 1, 12, 0, 0, 500, time.FixedZone("x", 3600))
	tests := []struct {
		name      string
		after     string
		limit     int
		wantQuery string
	}{
		{name: "default limit", wantQuery: "created_after=2025-03-01T11%3A00%3A00.0000005Z"},
		{name: "cursor and limit", after: "ch_a b", limit: 5, wantQuery: "after=ch_a+b&created_after=2025-03-01T11%3A00%3A00.0000005Z&limit=5"},
		{name: "limit capped", limit: 5000, wantQuery: "created_after=2025-03-01T11%3A00%3A00.0000005Z&limit=1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodGet || r.URL.Path != "/charges" || r.URL.RawQuery != tt.wantQuery {
					t.Errorf("request %s %s?%s, want query %s", r.Method, r.URL.Path, r.URL.RawQuery, tt.wantQuery)
				}
				fmt.Fprint(w, `{"charges":[],"next":""}`)
			}))
			t.Cleanup(srv.Close)
			if _, err := newHTTP(t, srv.URL).ListCharges(context.Background(), after, tt.after, tt.limit); err != nil {
				t.Fatalf("ListCharges: %v", err)
			}
		})
	}
}

func TestHTTPListChargesAnswerMapping(t *testing.T) {
	t.Parallel()
	ok := `{"id":"ch_1","reference":"op-1","amount":100,"currency":"USD","status":"refunded","created_at":"2025-03-01T12:00:01Z"}`
	tests := []struct {
		name       string
		status     int
		body       string
		after      string
		want       app.ChargePage
		wantKind   app.FaultKind
		wantStatus int
	}{
		{name: "one charge", status: 200, body: `{"charges":[` + ok + `],"next":"ch_1"}`,
			want: app.ChargePage{Charges: []app.ProviderCharge{{ID: "ch_1", Reference: "op-1", Amount: 100, Currency: "usd", Status: "refunded", CreatedAt: time.Date(2025, 3, 1, 12, 0, 1, 0, time.UTC)}}, Next: "ch_1"}},
		{name: "empty last page", status: 200, body: `{"charges":[],"next":""}`, want: app.ChargePage{Charges: []app.ProviderCharge{}}},
		{name: "charges null", status: 200, body: `{"charges":null}`, want: app.ChargePage{Charges: []app.ProviderCharge{}}},
		{name: "no charges member", status: 200, body: `{"next":""}`, wantKind: app.FaultUnavailable, wantStatus: 200},
		{name: "charge without id", status: 200, body: `{"charges":[{"status":"succeeded","created_at":"2025-03-01T12:00:01Z"}]}`, wantKind: app.FaultUnavailable, wantStatus: 200},
		{name: "charge without time", status: 200, body: `{"charges":[{"id":"ch_1","status":"succeeded"}]}`, wantKind: app.FaultUnavailable, wantStatus: 200},
		{name: "charge with unknown status", status: 200, body: `{"charges":[{"id":"ch_1","status":"weird","created_at":"2025-03-01T12:00:01Z"}]}`, wantKind: app.FaultUnavailable, wantStatus: 200},
		{name: "next repeats the cursor", status: 200, after: "ch_1", body: `{"charges":[` + ok + `],"next":"ch_1"}`, wantKind: app.FaultUnavailable, wantStatus: 200},
		{name: "not JSON", status: 200, body: `<html>`, wantKind: app.FaultUnavailable, wantStatus: 200},
		{name: "400", status: 400, body: `{"title":"Bad Request","detail":"limit"}`, wantKind: app.FaultRejected, wantStatus: 400},
		{name: "503", status: 503, wantKind: app.FaultUnavailable, wantStatus: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			}))
			t.Cleanup(srv.Close)
			got, err := newHTTP(t, srv.URL).ListCharges(context.Background(), time.Time{}, tt.after, 10)
			if tt.wantKind != "" {
				assertFault(t, err, tt.wantKind, tt.wantStatus)
				return
			}
			if err != nil {
				t.Fatalf("ListCharges: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("page = %+v, want %+v", got, tt.want)
			}
		})
	}
}
