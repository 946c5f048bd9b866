package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/tracing"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/db/localpg"
)

const usage = `usage: spillway <command> [args]

commands:
  serve                  HTTP API and workers (migrates first)
  worker                 workers only
  migrate up|down|status database migrations (River's schema and ours)
  sim                    the downstream payment simulator on SIM_ADDR
  db start|stop|url      the project-local Postgres under $SPILLWAY_DATA_DIR (default .data)
  load [flags]           closed-loop payment load against a loopback API (-h for flags)
  admin create -email E [-role operator|viewer] [-password-file F]
                         an admin UI user (password from $ADMIN_PASSWORD or the file)
  seed                   add the demo catalog's products that are missing (make run does)

Configuration is read from the environment; see README.md.`

// run is the whole program; main only supplies the process's environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return errors.New("no command given")
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return runServe(ctx, getenv, stdout, stderr, true)
	case "worker":
		return runServe(ctx, getenv, stdout, stderr, false)
	case "migrate":
		return runMigrate(ctx, rest, getenv, stdout, stderr)
	case "sim":
		return runSim(ctx, getenv, stdout, stderr)
	case "db":
		return runDB(ctx, rest, getenv, stdout, stderr)
	case "load":
		return runLoad(ctx, rest, getenv, stdout, stderr)
	case "admin":
		return runAdmin(ctx, rest, getenv, stdout, stderr)
	case "seed":
		if len(rest) > 0 {
			return fmt.Errorf("seed: unexpected arguments %q", rest)
		}
		return runSeed(ctx, getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	default:
		fmt.Fprintln(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

func newLogger(cfg app.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	// Records logged with a context name its trace_id, span_id,
	// request_id and operation_id.
	return slog.New(tracing.NewLogHandler(h))
}

func localConfig(getenv func(string) string) localpg.Config {
	dir := getenv("SPILLWAY_DATA_DIR")
	if dir == "" {
		dir = ".data"
	}
	abs, err := filepath.Abs(dir)
	if err == nil {
		dir = abs
	}
	return localpg.Config{Dir: filepath.Join(dir, "postgres")}
}

// databaseURL is DATABASE_URL, or the project-local cluster started on demand.
func databaseURL(ctx context.Context, cfg app.Config, getenv func(string) string, log io.Writer) (string, error) {
	if cfg.DatabaseURL != "" {
		return cfg.DatabaseURL, nil
	}
	url, err := localpg.Ensure(ctx, localConfig(getenv), log)
	if err != nil {
		return "", fmt.Errorf("DATABASE_URL is unset and the local Postgres could not start: %w", err)
	}
	return url, nil
}

func runDB(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: spillway db start|stop|url")
	}
	lc := localConfig(getenv)
	switch args[0] {
	case "start", "url":
		url, err := localpg.Ensure(ctx, lc, stderr)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, url)
		return nil
	case "stop":
		return localpg.Stop(ctx, lc, stdout)
	}
	return fmt.Errorf("unknown db command %q; want start, stop or url", args[0])
}

// openDatabase connects to DATABASE_URL, or the local cluster, sized by pc.
func openDatabase(ctx context.Context, cfg app.Config, getenv func(string) string, log io.Writer, pc db.PoolConfig) (*pgxpool.Pool, error) {
	url, err := databaseURL(ctx, cfg, getenv, log)
	if err != nil {
		return nil, err
	}
	pc.URL = url
	return db.Open(ctx, pc)
}

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: spillway migrate up|down|status")
	}
	cfg, err := app.LoadConfig(getenv)
	if err != nil {
		return err
	}
	pool, err := openDatabase(ctx, cfg, getenv, stderr, db.PoolConfig{MaxConns: 4})
	if err != nil {
		return err
	}
	defer pool.Close()
	m, err := db.NewMigrator(pool)
	if err != nil {
		return err
	}
	defer m.Close()
	switch args[0] {
	case "up":
		return m.Up(ctx, stdout)
	case "down":
		return m.Down(ctx, stdout)
	case "status":
		return m.Status(ctx, stdout)
	}
	return fmt.Errorf("unknown migrate command %q; want up, down or status", args[0])
}
