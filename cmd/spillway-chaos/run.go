package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"
)

const usage = `usage: spillway-chaos [-only a,b]   (make chaos; go run ./cmd/spillway-chaos)

Runs two spillway serve instances (bin/spillway, built first) on a Postgres
cluster of its own (.data/chaos/postgres, a free port), with toxiproxy-server
(.data/bin, from scripts/setup.sh) between the instances and Postgres, the
payment provider and the inventory (the simulator, app/sim). Each scenario
gets a fresh database, sends payments and orders at a fixed rate, injects
one fault, removes it, waits for every operation to end, and checks each
acknowledged request against the database and the simulator. It prints a
table, writes it as JSON, and exits non-zero when a row lost, duplicated or
contradicted anything.

scenarios: %s

environment:
  CHAOS_OUT    where the JSON report goes (default .data/chaos/latest.json)
  CHAOS_RATE   requests per second, payments and orders alternating (default 30)
  CHAOS_WARM, CHAOS_FAULT, CHAOS_AFTER
               load before, during and after the fault (default 2s, 4s, 4s)
  CHAOS_DRAIN  the most to wait after the fault for every operation to end (default 2m)
  CHAOS_KEEP   1: keep the chaos_* databases for inspection
  GO           the go command that builds bin/spillway (default go)

flags:
  -only db-reset,sigkill   run only these scenarios`

// run is the whole program; main only supplies the process's environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	all := scenarios()
	fs := flag.NewFlagSet("spillway-chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintf(stderr, usage+"\n", strings.Join(scenarioNames(all), ", ")) }
	only := fs.String("only", "", "comma-separated scenarios to run alone")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	chosen, err := selectScenarios(all, *only)
	if err != nil {
		return err
	}
	t, err := parseTiming(getenv)
	if err != nil {
		return err
	}

	begin := time.Now()
	s, err := newSuite(ctx, getenv, stderr, t)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.start(ctx); err != nil {
		return err
	}
	rep := newReport(t)
	rep.Started = begin.UTC().Format(time.RFC3339)
	for _, sc := range chosen {
		s.progress("%s: start", sc.Name)
		r, err := s.prepare(ctx, sc)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.Name, err)
		}
		rw, err := s.execute(ctx, r)
		r.close()
		if err != nil {
			return err
		}
		s.progress("%s: %d acknowledged, %d lost, %d duplicated, %d wrong, recover %s",
			sc.Name, rw.Acknowledged, rw.Lost, rw.Duplicated, rw.Wrong, formatRecover(rw.RecoverMs))
		rep.add(rw)
	}
	rep.Seconds = time.Since(begin).Seconds()
	rep.Format(stdout)
	out := getenv("CHAOS_OUT")
	if out == "" {
		out = filepath.Join(s.dir, "latest.json")
	}
	if err := rep.WriteJSON(out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%d scenarios in %.0fs; written to %s\n", len(rep.Rows), rep.Seconds, out)
	if !rep.OK {
		return errors.New("a scenario lost, duplicated or contradicted an acknowledged request (see the table)")
	}
	return nil
}
