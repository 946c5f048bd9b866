package localpg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// URL returns the connection URL for cfg.Database on the local cluster. It
// does not check that the cluster is running; Ensure returns the same URL.
func (c Config) URL() string {
	c = c.withDefaults()
	return c.urlFor(c.Database)
}

func (c Config) urlFor(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(superuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)),
		Path:     "/" + database,
		RawPath:  "/" + url.PathEscape(database),
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// connect connects, retrying briefly while the server is still coming
// up (e.g. started by hand moments ago, or finishing crash recovery).
func connect(ctx context.Context, connURL string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(connURL)
	if err != nil {
		return nil, fmt.Errorf("db: parsing database URL: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			return conn, nil
		}
		var pgErr *pgconn.PgError
		retry := errors.Is(err, syscall.ECONNREFUSED) ||
			(errors.As(err, &pgErr) && pgErr.Code == "57P03") // cannot_connect_now
		if !retry || time.Now().After(deadline) {
			return nil, fmt.Errorf("db: connecting to %s:%d: %w", cfg.Host, cfg.Port, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("db: connecting to %s:%d: %w", cfg.Host, cfg.Port, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// dbURL returns baseURL with its database replaced by name, along
// with baseURL's own database. Only URL-form connection strings are
// supported because keyword/value DSNs cannot be rewritten reliably.
func dbURL(baseURL, name string) (newURL, baseDB string, err error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", "", errors.New("db: base URL must be a postgres:// URL")
	}
	baseDB = strings.TrimPrefix(u.Path, "/")
	// RawPath keeps a "/" inside the name escaped rather than splitting it.
	u.Path, u.RawPath = "/"+name, "/"+url.PathEscape(name)
	return u.String(), baseDB, nil
}
