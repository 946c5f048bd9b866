package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/db/localpg"
)

// bouncerPoolSize is the server connections the pooler may open for the
// instances: with their direct connections (6 × 3) it stays below the 97
// an ordinary role gets on a stock server.
const bouncerPoolSize = 60

// TestSixInstancesThroughPgBouncerUnderLoad: six instances with the
// default pool settings, twice what a stock Postgres fits directly, start
// together through PgBouncer in transaction mode, each with
// DATABASE_DIRECT_URL for what needs a session. Under load spread over
// all six, half of it while the provider is slow or failing, every answer
// is a documented one and every acknowledged payment succeeds with
// exactly one effect; the LISTENs run on the direct connections only, and
// the server never comes near its limit.
func TestSixInstancesThroughPgBouncerUnderLoad(t *testing.T) {
	t.Parallel()
	pg := newStockPostgres(t)
	ctx := context.Background()
	port, err := strconv.Atoi(strings.TrimPrefix(freeAddr(t), "127.0.0.1:"))
	if err != nil {
		t.Fatal(err)
	}
	bouncer, err := localpg.StartBouncer(ctx, localpg.BouncerConfig{Dir: filepath.Join(pg.dir, "pgbouncer"),
		Port: port, ServerPort: pg.port, Users: []string{stockRole, "postgres"}, PoolSize: bouncerPoolSize})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = bouncer.Stop()
		if t.Failed() {
			t.Logf("pgbouncer log:\n%s", tail(bouncer.Log(), 40))
		}
	})
	provider := sim.New(sim.Config{})
	simSrv := httptest.NewServer(provider)
	t.Cleanup(simSrv.Close)

	admin, err := pgx.Connect(ctx, pg.adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	conns := watchConnections(t, pg.adminURL)

	const n = 6
	insts := make([]*instance, n)
	for i := range insts {
		name := fmt.Sprintf("pooled-%d", i)
		addr := freeAddr(t)
		insts[i] = startInstance(t, name, "http://"+addr, []string{
			"DATABASE_URL=" + bouncer.URL(stockRole, "spillway") + "&application_name=" + name,
			// The direct connections name themselves apart, so the
			// server's view tells them from the pooler's.
			"DATABASE_DIRECT_URL=" + pg.appURL + "&application_name=" + name + "-direct",
			"SPILLWAY_ADDR=" + addr, "SPILLWAY_INSTANCE=" + name,
			"PAYMENT_PROVIDER=http", "PAYMENT_PROVIDER_URL=" + simSrv.URL,
			"PAYMENT_RETRY_BASE=100ms", "PAYMENT_RETRY_MAX=1s", "LOG_LEVEL=warn",
		})
	}
	waitAllHealthy(t, insts)
	checkMigratedOnce(t, admin)
	checkListensDirect(t, admin, insts)

	loadAcrossInstances(t, insts, provider, admin)

	for _, in := range insts {
		in.checkAlive(t)
		in.checkLog(t)
	}
	perApp, role, all := conns.stop()
	t.Logf("most connections seen: by application %v, role %s %d, whole server %d", perApp, stockRole, role, all)
	for _, in := range insts {
		if c, want := perApp[in.name+"-direct"], app.DirectConns+app.RiverListenerConns; c > want {
			t.Errorf("%s held %d direct connections, want at most %d", in.name, c, want)
		}
	}
	if limit := bouncerPoolSize + n*(app.DirectConns+app.RiverListenerConns); role > limit || role >= 97 {
		t.Errorf("the instances held %d server connections together; want at most the pooler's %d and %d direct, below the 97 the role may open",
			role, bouncerPoolSize, n*(app.DirectConns+app.RiverListenerConns))
	}
}

// checkListensDirect waits until every instance listens (the operation
// events, the breakers and River's notifier) and checks that each LISTEN
// is on a direct connection: through the pooler it would hear nothing.
func checkListensDirect(t *testing.T, admin *pgx.Conn, insts []*instance) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(time.Minute)
	for {
		listening := map[string]int{}
		rows, err := admin.Query(ctx, `SELECT application_name, count(*) FROM pg_stat_activity
			WHERE backend_type = 'client backend' AND query ILIKE 'LISTEN%' GROUP BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var name string
			var c int
			if err := rows.Scan(&name, &c); err != nil {
				t.Fatal(err)
			}
			listening[name] = c
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		ready := true
		for _, in := range insts {
			if listening[in.name] > 0 {
				t.Fatalf("%s has a LISTEN through the pooler: %v", in.name, listening)
			}
			// The hub's and the breakers' LISTEN, and River's.
			if listening[in.name+"-direct"] < 3 {
				ready = false
			}
		}
		if ready {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("LISTEN connections by application: %v; want 3 direct per instance", listening)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
