package localpg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spillway/spillway/app/apptest"
)

// repoRoot finds the module root so the test cluster lives under
// the repo's .data/ like the real one (and the same traversal rules apply
// when running as root).
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

func queryInt(ctx context.Context, t *testing.T, url, sql string) int {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// TestLocalCluster exercises the whole lifecycle on a throwaway cluster: one
// initdb (a few seconds, fsync included) plus a stop and two starts.
func TestLocalCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("creates a PostgreSQL cluster; skipped with -short")
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	dir := filepath.Join(repoRoot(t), ".data", "test-local-"+hex.EncodeToString(suffix))
	// Reserved for the whole test, restarts included: a port found free
	// and let go could be handed to another process before postgres binds
	// it, which on a shared machine is only a matter of time.
	cfg := Config{Dir: dir, Port: apptest.ReservedPort(t), Database: "spillway_local_test"}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := Stop(ctx, cfg, t.Output()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, p := range []string{dir, dir + ".initdb", dir + ".lock"} {
			if err := os.RemoveAll(p); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	// A failure guard: initdb with fsync on a loaded machine is slow, and
	// nothing here waits for this to pass.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Concurrent first boot: the flock must serialize initdb and start.
	const callers = 4
	urls := make([]string, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { urls[i], errs[i] = Ensure(ctx, cfg, t.Output()) })
	}
	wg.Wait()
	want := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/spillway_local_test?sslmode=disable", cfg.Port)
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("Ensure #%d: %v", i, errs[i])
		}
		if urls[i] != want {
			t.Fatalf("Ensure #%d = %q, want %q", i, urls[i], want)
		}
	}
	if cfg.URL() != want {
		t.Errorf("URL() = %q, want %q", cfg.URL(), want)
	}
	if !Running(cfg) {
		t.Fatal("Running = false after Ensure")
	}

	// Idempotent when already running.
	url, err := Ensure(ctx, cfg, t.Output())
	if err != nil || url != want {
		t.Fatalf("second Ensure = %q, %v", url, err)
	}
	if n := queryInt(ctx, t, url, "select 1"); n != 1 {
		t.Fatalf("select 1 = %d", n)
	}
	if n := queryInt(ctx, t, url, "select current_setting('max_connections')::int"); n != 200 {
		t.Errorf("max_connections = %d, want 200", n)
	}
	if n := queryInt(ctx, t, url, "select (current_setting('fsync') = 'on')::int"); n != 1 {
		t.Error("fsync is off")
	}

	// Test database helpers. Keep a connection open to prove DROP forces.
	const testDB = "spillway local-test \"quoted\""
	testURL, err := CreateTestDatabase(ctx, url, testDB)
	if err != nil {
		t.Fatalf("CreateTestDatabase: %v", err)
	}
	conn, err := pgx.Connect(ctx, testURL)
	if err != nil {
		t.Fatalf("connect to test database: %v", err)
	}
	defer conn.Close(context.Background())
	var got string
	if err := conn.QueryRow(ctx, "select current_database()").Scan(&got); err != nil || got != testDB {
		t.Fatalf("current_database() = %q, %v; want %q", got, err, testDB)
	}
	if _, err := CreateTestDatabase(ctx, url, testDB); err != nil {
		t.Fatalf("CreateTestDatabase over a leftover database: %v", err)
	}
	if err := DropDatabase(ctx, url, testDB); err != nil {
		t.Fatalf("DropDatabase: %v", err)
	}
	if err := DropDatabase(ctx, url, testDB); err != nil {
		t.Fatalf("DropDatabase of a missing database: %v", err)
	}
	if n := queryInt(ctx, t, url, fmt.Sprintf("select count(*) from pg_database where datname = '%s'", strings.ReplaceAll(testDB, "'", "''"))); n != 0 {
		t.Fatalf("test database still exists")
	}

	// Stop, and stopping again is a no-op.
	if err := Stop(ctx, cfg, t.Output()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if Running(cfg) {
		t.Fatal("Running = true after Stop")
	}
	if err := Stop(ctx, cfg, t.Output()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	// A port held by someone else gives a clear error instead of a hang.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	busy := cfg
	busy.Port = ln.Addr().(*net.TCPAddr).Port
	_, err = Ensure(ctx, busy, t.Output())
	ln.Close()
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("Ensure on a busy port: err = %v, want 'already in use'", err)
	}

	// Simulate a crash whose postmaster PID was reused by an unrelated live
	// process (this test binary): Ensure must see through it.
	pidFile := fmt.Sprintf("%d\n%s\n0\n%d\n\n", os.Getpid(), dir, cfg.Port)
	if err := os.WriteFile(filepath.Join(dir, "postmaster.pid"), []byte(pidFile), 0o600); err != nil {
		t.Fatal(err)
	}
	if Running(cfg) {
		t.Fatal("Running = true for a postmaster.pid naming a non-postgres process")
	}

	// Restart after stop; data persisted.
	if url, err = Ensure(ctx, cfg, t.Output()); err != nil {
		t.Fatalf("Ensure after stop: %v", err)
	}
	if !Running(cfg) {
		t.Fatal("Running = false after restart")
	}
	if n := queryInt(ctx, t, url, "select 1"); n != 1 {
		t.Fatalf("select 1 after restart = %d", n)
	}
}

func TestLocalDatabaseHelpersValidate(t *testing.T) {
	ctx := context.Background()
	base := "postgres://postgres@127.0.0.1:1/app?sslmode=disable"
	cases := []struct {
		name, base, db, wantErr string
	}{
		{"empty name", base, "", "empty"},
		{"long name", base, strings.Repeat("x", 64), "63 bytes"},
		{"dsn base", "host=127.0.0.1 dbname=app", "t", "postgres:// URL"},
		{"same as base", base, "app", "app"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := CreateTestDatabase(ctx, tc.base, tc.db); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("CreateTestDatabase err = %v, want containing %q", err, tc.wantErr)
			}
			if err := DropDatabase(ctx, tc.base, tc.db); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("DropDatabase err = %v, want containing %q", err, tc.wantErr)
			}
		})
	}

	got, _, err := dbURL("postgresql://u:p@h:5/app?sslmode=disable&x=1", "t e/st")
	if want := "postgresql://u:p@h:5/t%20e%2Fst?sslmode=disable&x=1"; err != nil || got != want {
		t.Errorf("dbURL = %q, %v; want %q", got, err, want)
	}
}

func TestLocalConfigDefaults(t *testing.T) {
	if got, want := (Config{}).URL(), "postgres://postgres@127.0.0.1:54329/spillway?sslmode=disable"; got != want {
		t.Errorf("URL() = %q, want %q", got, want)
	}
	if _, err := Ensure(context.Background(), Config{}, nil); err == nil {
		t.Error("Ensure without Dir succeeded")
	}
	if !versionLess("9.6", "15") || versionLess("16", "15") {
		t.Error("versionLess orders versions wrongly")
	}
}
