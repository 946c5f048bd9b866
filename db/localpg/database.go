package localpg

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func (cl *cluster) ensureDatabase(ctx context.Context) error {
	conn, err := connect(ctx, cl.cfg.urlFor("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", cl.cfg.Database).Scan(&exists); err != nil {
		return fmt.Errorf("db: checking for database %q: %w", cl.cfg.Database, err)
	}
	if exists {
		return nil
	}
	if err := createDB(ctx, conn, cl.cfg.Database); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: created meanwhile
			return nil
		}
		return err
	}
	cl.logf("created database %q", cl.cfg.Database)
	return nil
}

// createDB runs CREATE DATABASE, retrying while the template database
// is briefly in use (55006), which happens when many test binaries create
// databases at the same moment.
func createDB(ctx context.Context, conn *pgx.Conn, name string) error {
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := conn.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55006" || time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("db: creating database %q: %w", name, err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("db: creating database %q: %w", name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func checkDBName(name string) error {
	if name == "" {
		return errors.New("db: database name is empty")
	}
	// PostgreSQL silently truncates longer identifiers, which would make the
	// returned URL point at a database that does not exist.
	if len(name) > 63 {
		return fmt.Errorf("db: database name %q is longer than 63 bytes", name)
	}
	if strings.ContainsRune(name, 0) {
		return fmt.Errorf("db: database name %q contains a NUL byte", name)
	}
	return nil
}

// CreateTestDatabase creates a fresh, empty database called name on the
// server baseURL points at and returns a URL for it (baseURL with the
// database replaced). It is meant for throwaway test databases: a database
// with the same name left over from an earlier, crashed run is dropped
// first, so use names unique to the test run or package.
func CreateTestDatabase(ctx context.Context, baseURL, name string) (string, error) {
	if err := checkDBName(name); err != nil {
		return "", err
	}
	newURL, baseDB, err := dbURL(baseURL, name)
	if err != nil {
		return "", err
	}
	if name == baseDB {
		return "", fmt.Errorf("db: refusing to re-create %q: it is the database of the base URL", name)
	}
	conn, err := connect(ctx, baseURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := dropDB(ctx, conn, name); err != nil {
		return "", err
	}
	if err := createDB(ctx, conn, name); err != nil {
		return "", err
	}
	return newURL, nil
}

// DropDatabase drops database name on the server baseURL points at, if it
// exists, terminating any sessions still connected to it (WITH (FORCE)) so
// a leaked pool in a failed test cannot block cleanup.
func DropDatabase(ctx context.Context, baseURL, name string) error {
	if err := checkDBName(name); err != nil {
		return err
	}
	_, baseDB, err := dbURL(baseURL, name)
	if err != nil {
		return err
	}
	if name == baseDB {
		return fmt.Errorf("db: cannot drop %q through a connection to that same database", name)
	}
	conn, err := connect(ctx, baseURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return dropDB(ctx, conn, name)
}

func dropDB(ctx context.Context, conn *pgx.Conn, name string) error {
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("db: dropping database %q: %w", name, err)
	}
	return nil
}
