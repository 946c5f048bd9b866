package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/db/localpg"
)

// standbyName is the standby's cluster_name, which the primary's
// synchronous_standby_names waits for.
const standbyName = "standby1"

// startSyncStandby makes a streaming standby of pg's cluster and has the
// primary wait for it on every commit, so that a commit, and therefore a
// 2xx, means the standby has it. It returns the standby's config.
func startSyncStandby(t *testing.T, pg stockPostgres) localpg.Config {
	t.Helper()
	port, err := strconv.Atoi(strings.TrimPrefix(freeAddr(t), "127.0.0.1:"))
	if err != nil {
		t.Fatal(err)
	}
	// max_connections no lower than the primary's, as a hot standby needs.
	sc := localpg.Config{Dir: filepath.Join(pg.dir, "standby"), Port: port, Database: "postgres", MaxConnections: 100,
		Name: standbyName, StandbyOf: pg.port}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := localpg.Stop(ctx, sc, io.Discard); err != nil {
			t.Errorf("stop standby: %v", err)
		}
	})
	if _, err := localpg.Ensure(ctx, sc, io.Discard); err != nil {
		t.Fatal(err)
	}
	primary, err := pgx.Connect(ctx, pg.adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close(ctx)
	for _, q := range []string{`ALTER SYSTEM SET synchronous_standby_names = '"` + standbyName + `"'`, `SELECT pg_reload_conf()`} {
		if _, err := primary.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	waitFor(t, "the standby to replicate synchronously", time.Minute, func() bool {
		var state string
		err := primary.QueryRow(ctx, `SELECT sync_state FROM pg_stat_replication WHERE application_name = $1`, standbyName).Scan(&state)
		return err == nil && state == "sync"
	})
	return sc
}

// TestPrimaryFailoverLosesNoAcknowledgedPayment: two instances on a
// primary with a synchronous standby, DATABASE_URL naming both hosts with
// target_session_attrs=read-write. Under load, with the provider failing
// half its calls so there is a backlog of captured payments, the primary
// is lost (an immediate shutdown). While no primary is up a request is
// answered 503, acknowledging nothing. The standby is promoted, and the
// instances, untouched, answer 201 again on their own; every payment
// acknowledged before, during or after is on the new primary and
// succeeds with exactly one effect.
func TestPrimaryFailoverLosesNoAcknowledgedPayment(t *testing.T) {
	t.Parallel()
	pg := newStockPostgres(t)
	standby := startSyncStandby(t, pg)
	primary := localpg.Config{Dir: filepath.Join(pg.dir, "postgres"), Port: pg.port, Database: "postgres", MaxConnections: 100}
	ctx := context.Background()
	provider := sim.New(sim.Config{})
	simSrv := httptest.NewServer(provider)
	t.Cleanup(simSrv.Close)

	dbURL := fmt.Sprintf("postgres://%s@127.0.0.1:%d,127.0.0.1:%d/spillway?sslmode=disable&target_session_attrs=read-write",
		stockRole, pg.port, standby.Port)
	const n = 2
	insts := make([]*instance, n)
	for i := range insts {
		name := fmt.Sprintf("failover-%d", i)
		addr := freeAddr(t)
		insts[i] = startInstance(t, name, "http://"+addr, []string{
			"DATABASE_URL=" + dbURL, "SPILLWAY_ADDR=" + addr, "SPILLWAY_INSTANCE=" + name,
			"PAYMENT_PROVIDER=http", "PAYMENT_PROVIDER_URL=" + simSrv.URL,
			"PAYMENT_RETRY_BASE=100ms", "PAYMENT_RETRY_MAX=1s", "LOG_LEVEL=warn",
		})
	}
	waitAllHealthy(t, insts)

	// Load from 16 clients until the end; the phases are wall-clock only
	// to shape it, and nothing below asserts on timing.
	lt := newLoadTally()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 16 {
		wg.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				lt.post(insts[(c+k)%n].api, fmt.Sprintf("fo-%d-%d", c, k))
			}
		})
	}
	time.Sleep(2 * time.Second)
	provider.SetChaos(sim.Chaos{ErrorRate: 0.5})
	time.Sleep(2 * time.Second)

	if err := localpg.Crash(ctx, primary, io.Discard); err != nil {
		t.Fatal(err)
	}
	// No primary now, until the promotion below: whatever is asked must
	// be refused with a 503 that acknowledges nothing.
	for i, in := range insts {
		a := lt.send(in.api, fmt.Sprintf("no-primary-%d", i))
		if a.err != nil || a.status != http.StatusServiceUnavailable {
			t.Fatalf("%s with no primary: %d %v %s; want 503", in.name, a.status, a.err, a.body)
		}
		if !strings.Contains(string(a.body), "nothing was done") {
			t.Errorf("%s's 503 with no primary does not say nothing was done: %s", in.name, a.body)
		}
		lt.mu.Lock()
		lt.retry = append(lt.retry, fmt.Sprintf("no-primary-%d", i))
		lt.mu.Unlock()
	}
	time.Sleep(time.Second)
	if err := localpg.Promote(ctx, standby, io.Discard); err != nil {
		t.Fatal(err)
	}
	provider.SetChaos(sim.Chaos{})
	// The instances reconnect by themselves: each answers 201 again.
	// Every key tried is kept, so its effect is accounted for below.
	for i, in := range insts {
		k := 0
		waitFor(t, in.name+" to answer 201 on the new primary", time.Minute, func() bool {
			k++
			key := fmt.Sprintf("after-%d-%d", i, k)
			lt.post(in.api, key)
			a := lt.send(in.api, key) // the same key: its answer, replayed
			return a.status == http.StatusCreated
		})
	}
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()

	newPrimary, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/spillway?sslmode=disable", standby.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer newPrimary.Close(ctx)
	acked, byStatus, reasons, bad, retry := lt.result()
	t.Logf("answers by status %v, 202 reasons %v", byStatus, reasons)
	if len(bad) > 0 {
		t.Fatalf("%d answers outside 201/202/402/409/503, e.g. %v", len(bad), bad[:min(len(bad), 5)])
	}
	acked = append(acked, retryUntilAcknowledged(t, lt, insts, retry)...)
	waitAllSucceeded(t, newPrimary, acked, insts)
	for _, id := range acked {
		if e := provider.Effects(id); e != 1 {
			t.Errorf("payment %s: %d effects at the provider, want 1", id, e)
		}
	}
	if total := provider.TotalEffects(); total != len(acked) {
		t.Errorf("provider has %d effects for %d acknowledged payments", total, len(acked))
	}
	for _, in := range insts {
		in.checkAlive(t)
	}
}

// retryUntilAcknowledged sends each key again, with the same key, until it
// is acknowledged, as a client told 503 or 409 must; it returns the ids.
func retryUntilAcknowledged(t *testing.T, lt *loadTally, insts []*instance, keys []string) []string {
	t.Helper()
	var acked []string
	for i, key := range keys {
		deadline := time.Now().Add(time.Minute)
		for {
			a := lt.send(insts[i%len(insts)].api, key)
			if a.status == http.StatusCreated || a.status == http.StatusAccepted {
				acked = append(acked, a.id)
				break
			}
			if a.err != nil || (a.status != http.StatusServiceUnavailable && a.status != http.StatusConflict) || time.Now().After(deadline) {
				t.Fatalf("retry of %s: %d %v %s", key, a.status, a.err, a.body)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Logf("acknowledged %d payments on a retry after 503 or 409", len(acked))
	return acked
}

// waitAllSucceeded waits until every acknowledged payment is recorded on
// conn's server and has succeeded, failing at once if one is missing or
// ended otherwise.
func waitAllSucceeded(t *testing.T, conn *pgx.Conn, acked []string, insts []*instance) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(4 * time.Minute)
	for {
		counts := map[string]int{}
		rows, err := conn.Query(ctx, `SELECT status, count(*) FROM operations WHERE id = ANY($1::uuid[]) GROUP BY status`, acked)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for rows.Next() {
			var s string
			var c int
			if err := rows.Scan(&s, &c); err != nil {
				t.Fatal(err)
			}
			counts[s] = c
			total += c
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if total != len(acked) {
			t.Fatalf("%d acknowledged payments, %d operations recorded", len(acked), total)
		}
		for _, s := range []app.Status{app.StatusDeclined, app.StatusFailed, app.StatusCancelled} {
			if counts[string(s)] > 0 {
				t.Fatalf("acknowledged payments ended %s: %v", s, counts)
			}
		}
		if counts[string(app.StatusSucceeded)] == len(acked) {
			return
		}
		for _, in := range insts {
			in.checkAlive(t)
		}
		if time.Now().After(deadline) {
			t.Fatalf("acknowledged payments not all succeeded: %v", counts)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
