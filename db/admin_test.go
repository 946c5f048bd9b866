package db_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/rivertype"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/dbtest"
)

func TestJobCursorRoundTrips(t *testing.T) {
	c := db.JobCursor{Priority: 2, ScheduledAt: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), ID: 42}
	got, err := db.ParseJobCursor(c.String())
	if err != nil || *got != c {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"1.2", "a.b.c", "1.2.3.4"} {
		if _, err := db.ParseJobCursor(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// The waiting tabs page through jobs in River's fetch order with a keyset
// on (priority, scheduled_at, id): no job twice, none skipped, even when
// many share a due time.
func TestListAdminJobsKeysetInWorkerOrder(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `
		INSERT INTO river_job (args, kind, max_attempts, priority, queue, state, scheduled_at)
		SELECT '{}', 'k', 25, 1 + i % 4, 'q', 'available', '2026-01-01'::timestamptz + (i % 3) * interval '1 second'
		FROM generate_series(1, 95) i`); err != nil {
		t.Fatal(err)
	}
	// The pending tab.
	f := app.JobFilter{States: []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStateScheduled, rivertype.JobStatePending}}
	now := time.Now()
	var all []db.AdminJob
	var after *db.JobCursor
	for {
		page, err := db.ListAdminJobs(ctx, pool, f, db.WorkerOrder, after, 10, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		last := page[len(page)-1]
		after = &db.JobCursor{Priority: last.Priority, ScheduledAt: last.ScheduledAt, ID: last.ID}
	}
	if len(all) != 95 {
		t.Fatalf("%d jobs over all pages, want 95", len(all))
	}
	for i := 1; i < len(all); i++ {
		a, b := all[i-1], all[i]
		if a.Priority > b.Priority || a.Priority == b.Priority && (a.ScheduledAt.After(b.ScheduledAt) ||
			a.ScheduledAt.Equal(b.ScheduledAt) && a.ID >= b.ID) {
			t.Fatalf("out of worker order at %d: %+v then %+v", i, a, b)
		}
	}
	n, err := db.CountAdminJobs(ctx, pool, f, []rivertype.JobState{rivertype.JobStateAvailable}, now)
	if err != nil || n != 95 {
		t.Fatalf("count %d %v", n, err)
	}
}

func TestSignInFailuresCountedPerEmailAndAddress(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	ctx := context.Background()
	now := time.Now().UTC()
	for _, a := range []struct {
		email, ip string
		ok        bool
		at        time.Time
	}{
		{"a@x.example", "10.0.0.1", false, now},
		{"a@x.example", "10.0.0.2", false, now},
		{"b@x.example", "10.0.0.1", false, now},
		{"a@x.example", "10.0.0.1", true, now},
		{"a@x.example", "10.0.0.1", false, now.Add(-time.Hour)}, // outside the window
	} {
		if err := db.RecordSignIn(ctx, pool, a.email, a.ip, a.ok, a.at); err != nil {
			t.Fatal(err)
		}
	}
	byEmail, byIP, err := db.CountSignInFailures(ctx, pool, "a@x.example", "10.0.0.1", now.Add(-15*time.Minute))
	if err != nil || byEmail != 2 || byIP != 2 {
		t.Fatalf("by email %d, by address %d, %v", byEmail, byIP, err)
	}
}

// Two pools on one database stand for two instances: claims for the same
// email or address from both take turns, so exactly the limit is admitted,
// and claims crossing emails and addresses never deadlock.
func TestClaimSignInExactAcrossInstances(t *testing.T) {
	t.Parallel()
	pool, dbURL := dbtest.NewWithURL(t)
	ctx := context.Background()
	other, err := db.Open(ctx, db.PoolConfig{URL: dbURL, MaxConns: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	pools := []*pgxpool.Pool{pool, other}
	now := time.Now().UTC().Truncate(time.Microsecond)
	lim := app.SignInLimits{Window: 15 * time.Minute, PerEmail: 7, PerAddress: 11}

	type claim struct{ email, ip string }
	run := func(claims []claim) (admitted []claim) {
		start := make(chan struct{})
		var (
			wg sync.WaitGroup
			mu sync.Mutex
		)
		for i, c := range claims {
			wg.Go(func() {
				<-start
				_, err := db.ClaimSignIn(ctx, pools[i%2], c.email, c.ip, lim, now)
				if errors.Is(err, app.ErrSignInLimited) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				admitted = append(admitted, c)
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		return admitted
	}

	var one []claim
	for i := range 40 {
		one = append(one, claim{"a@x.example", fmt.Sprintf("10.0.1.%d", i)})
	}
	if got := run(one); len(got) != lim.PerEmail {
		t.Fatalf("%d claims for one email admitted, want %d", len(got), lim.PerEmail)
	}

	var crossed []claim
	for i := range 60 {
		crossed = append(crossed, claim{fmt.Sprintf("u%d@x.example", i%5), fmt.Sprintf("10.0.2.%d", (i*7)%4)})
	}
	byEmail, byIP := map[string]int{}, map[string]int{}
	for _, c := range run(crossed) {
		byEmail[c.email]++
		byIP[c.ip]++
	}
	for e, n := range byEmail {
		if n > lim.PerEmail {
			t.Errorf("%s: %d admitted, limit %d", e, n, lim.PerEmail)
		}
	}
	for ip, n := range byIP {
		if n > lim.PerAddress {
			t.Errorf("%s: %d admitted, limit %d", ip, n, lim.PerAddress)
		}
	}

	// An attempt marked ok no longer counts against the email.
	id, err := db.ClaimSignIn(ctx, pool, "b@x.example", "10.0.3.1", lim, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.MarkSignInOK(ctx, pool, id); err != nil {
		t.Fatal(err)
	}
	byE, _, err := db.CountSignInFailures(ctx, pool, "b@x.example", "10.0.3.1", now.Add(-lim.Window))
	if err != nil || byE != 0 {
		t.Fatalf("failures after a success: %d %v", byE, err)
	}
}

// The dependency filter chooses operation jobs by what they call, alike
// for the list, the count and a bulk action's ids: a payment calls
// payment; an order calls what its steps name.
func TestDependencyFilterMatchesWhatOperationsCall(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `
		INSERT INTO river_job (id, args, kind, max_attempts, priority, queue, state)
		VALUES (1, '{}', 'payment', 25, 3, 'payments', 'available'), (2, '{}', 'order', 25, 3, 'orders', 'available'),
			(3, '{}', 'delivery', 25, 3, 'deliveries', 'available'), (4, '{}', 'order', 25, 3, 'orders', 'available');
		INSERT INTO operations (id, kind, status, mode, priority, amount, currency, job_id, created_at, updated_at, lines, steps)
		VALUES (gen_random_uuid(), 'payment', 'queued', 'async', 3, 100, 'usd', 1, now(), now(), NULL, NULL),
			(gen_random_uuid(), 'order', 'queued', 'async', 3, 200, 'usd', 2, now(), now(), '[]',
				'[{"name":"reserve:a","dependency":"inventory","status":"succeeded"},{"name":"charge","dependency":"payment","status":"pending"}]'),
			(gen_random_uuid(), 'order', 'queued', 'async', 3, 300, 'usd', 4, now(), now(), '[]',
				'[{"name":"reserve:a","dependency":"inventory","status":"pending"}]')`); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for dep, want := range map[string][]int64{app.DepPayment: {1, 2}, app.DepInventory: {2, 4}, "": {1, 2, 3, 4}} {
		f := app.JobFilter{Dependency: dep}
		jobs, err := db.ListAdminJobs(ctx, pool, f, db.WorkerOrder, nil, 10, now)
		if err != nil {
			t.Fatal(err)
		}
		var listed []int64
		for _, j := range jobs {
			listed = append(listed, j.ID)
		}
		n, err := db.CountAdminJobs(ctx, pool, f, nil, now)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := db.AdminJobIDs(ctx, pool, f, app.WaitingStates, 0, 10, now)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(listed) != fmt.Sprint(want) || n != len(want) || fmt.Sprint(ids) != fmt.Sprint(want) {
			t.Errorf("dependency %q: listed %v, counted %d, ids %v; want %v", dep, listed, n, ids, want)
		}
	}
	jobs, err := db.ListAdminJobs(ctx, pool, app.JobFilter{Kind: app.KindOrder}, db.NewestFirst, nil, 10, now)
	if err != nil || len(jobs) != 2 || len(jobs[1].Steps) != 2 || jobs[1].Steps[1].Name != app.StepCharge || jobs[1].Amount != 200 {
		t.Fatalf("orders listed without their steps and total: %+v %v", jobs, err)
	}
	kinds, err := db.AdminJobKinds(ctx, pool, 10)
	if err != nil || fmt.Sprint(kinds) != "[delivery order payment]" {
		t.Fatalf("kinds %v %v", kinds, err)
	}
}
