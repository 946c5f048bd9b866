// Package dbtest gives each integration test its own migrated database on a
// real Postgres: DATABASE_URL's server when set, else the project-local
// cluster. Databases are cloned from a template migrated once per schema
// version, so a fresh database costs a file copy rather than a migration run.
package dbtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	neturl "net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/localpg"
	"github.com/spillway/spillway/migrations"
)

var (
	setupOnce sync.Once
	baseURL   string
	template  string
	setupErr  error
)

// New returns a pool on a fresh, fully migrated database that is dropped
// when the test ends.
func New(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, _ := NewWithURL(t)
	return pool
}

// NewWithURL is New that also returns the database's URL, for tests that
// start a second instance or a child process on the same database.
func NewWithURL(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	setupOnce.Do(func() { setupErr = setup(ctx) })
	if setupErr != nil {
		t.Fatalf("test database: %v", setupErr)
	}
	name := "test_" + randomHex(8)
	conn, err := pgx.Connect(ctx, baseURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s STRATEGY FILE_COPY",
		pgx.Identifier{name}.Sanitize(), pgx.Identifier{template}.Sanitize())); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	url, err := urlWithPath(baseURL, name)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := db.Open(ctx, db.PoolConfig{URL: url, MaxConns: 40})
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(func() {
		pool.Close()
		if err := localpg.DropDatabase(context.Background(), baseURL, name); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	return pool, url
}

// NewEmpty returns the URL of a fresh database with no schema at all, for
// tests of migrations themselves; it is dropped when the test ends.
func NewEmpty(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	setupOnce.Do(func() { setupErr = setup(ctx) })
	if setupErr != nil {
		t.Fatalf("test database: %v", setupErr)
	}
	name := "test_" + randomHex(8)
	url, err := localpg.CreateTestDatabase(ctx, baseURL, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := localpg.DropDatabase(context.Background(), baseURL, name); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	return url
}

func setup(ctx context.Context) error {
	baseURL = os.Getenv("DATABASE_URL")
	if baseURL == "" {
		root, err := apptest.RepoRoot()
		if err != nil {
			return err
		}
		baseURL, err = localpg.Ensure(ctx, localpg.Config{Dir: filepath.Join(root, ".data", "postgres")}, io.Discard)
		if err != nil {
			return err
		}
	}
	sum, err := schemaHash()
	if err != nil {
		return err
	}
	template = "spillway_template_" + sum
	conn, err := pgx.Connect(ctx, baseURL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", baseURL, err)
	}
	defer conn.Close(ctx)
	// Test binaries run in parallel; one builds the template, the others wait.
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(7345612)`); err != nil {
		return err
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(7345612)`) //nolint:errcheck
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)`, template).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	building := template + "_build"
	url, err := localpg.CreateTestDatabase(ctx, baseURL, building)
	if err != nil {
		return err
	}
	if err := migrate(ctx, url); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s RENAME TO %s", pgx.Identifier{building}.Sanitize(), pgx.Identifier{template}.Sanitize())); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s IS_TEMPLATE true", pgx.Identifier{template}.Sanitize()))
	return err
}

func migrate(ctx context.Context, url string) error {
	pool, err := db.Open(ctx, db.PoolConfig{URL: url, MaxConns: 4})
	if err != nil {
		return err
	}
	defer pool.Close()
	return db.MigrateUp(ctx, pool, io.Discard)
}

// schemaHash changes whenever a migration does, so a stale template is
// never used.
func schemaHash() (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "river=%d\n", migrations.RiverVersion)
	err := fs.WalkDir(migrations.SQL, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.SQL, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\n%s\n", path, b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12], err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func urlWithPath(base, name string) (string, error) {
	u, err := neturl.Parse(base)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}
