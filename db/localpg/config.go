package localpg

import (
	"errors"
	"fmt"
	"path/filepath"
)

const (
	// DefaultPort is deliberately not 5432 so the project cluster never
	// collides with a system cluster (Debian's postgresql package starts one).
	DefaultPort = 54329
	// DefaultDatabase is the database Ensure creates by default.
	DefaultDatabase = "spillway"
	// DefaultMaxConnections is above Postgres's default of 100
	// because many test binaries run in parallel, each with its own pool.
	DefaultMaxConnections = 200

	// superuser is the cluster's superuser role (initdb -U) and, as root,
	// the OS user a new cluster is created and run as.
	superuser = "postgres"
)

// Config describes a project-local PostgreSQL cluster.
type Config struct {
	Dir      string // cluster data dir, e.g. <repo>/.data/postgres (made absolute)
	Port     int    // TCP port on 127.0.0.1; DefaultPort when zero
	Database string // database Ensure creates; DefaultDatabase when empty
	// MaxConnections is the server's max_connections; zero means
	// DefaultMaxConnections. A test that must see what a stock
	// server allows sets Postgres's own default, 100.
	MaxConnections int
	// Name is the server's cluster_name, which a standby's WAL receiver
	// also gives the primary as its application_name, so the primary's
	// synchronous_standby_names can name it.
	Name string
	// StandbyOf, when set, is the port on 127.0.0.1 of the primary this
	// cluster is created as a streaming standby of (replica.go).
	StandbyOf int
}

func (c Config) withDefaults() Config {
	if c.Port == 0 {
		c.Port = c.configuredPort()
	}
	if c.Database == "" {
		c.Database = DefaultDatabase
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	return c
}

func absOr(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

func (c Config) normalize() (Config, error) {
	c = c.withDefaults()
	if c.Dir == "" {
		return c, errors.New("db: localpg.Config.Dir is required")
	}
	if c.Port < 1 || c.Port > 65535 {
		return c, fmt.Errorf("db: localpg.Config.Port %d out of range", c.Port)
	}
	if err := checkDBName(c.Database); err != nil {
		return c, err
	}
	if c.MaxConnections < 1 {
		return c, fmt.Errorf("db: localpg.Config.MaxConnections %d must be positive", c.MaxConnections)
	}
	abs, err := filepath.Abs(c.Dir)
	if err != nil {
		return c, fmt.Errorf("db: resolving %s: %w", c.Dir, err)
	}
	c.Dir = relocate(abs)
	return c, nil
}
