package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// -h explains the command and reads nothing: no cluster is started, no
// binary built.
func TestHelpMeasuresNothing(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	getenv := func(k string) string {
		t.Errorf("-h read %s", k)
		return ""
	}
	if err := run(context.Background(), []string{"-h"}, getenv, io.Discard, &stderr); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"usage: spillway-bench", "BENCH_OUT", "make bench"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, stderr.String())
		}
	}
}

// A stray argument (`spillway-bench capture`, say) is refused before
// anything starts, rather than ignored by a run of several minutes.
func TestArgumentsAreRefusedBeforeAnythingStarts(t *testing.T) {
	t.Parallel()
	getenv := func(k string) string {
		t.Errorf("read %s", k)
		return ""
	}
	for _, args := range [][]string{{"capture"}, {"-quick"}, {"-only", "failover,trip"}} {
		if err := run(context.Background(), args, getenv, io.Discard, io.Discard); err == nil {
			t.Errorf("%q: accepted", args)
		}
	}
}

// The late p99 judges requests by when they started, within the outage
// only, by nearest rank.
func TestLateP99CountsRequestsByTheirStart(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	var answers []answer
	// Started before the window (slow, as before the trip), in it (100 of
	// them, one slow), and after the provider's return (slow again).
	answers = append(answers, answer{t0.Add(500 * time.Millisecond), time.Second, 202})
	for i := range 100 {
		lat := 2 * time.Millisecond
		if i == 99 {
			lat = 40 * time.Millisecond
		}
		answers = append(answers, answer{t0.Add(time.Second + time.Duration(i)*5*time.Millisecond), lat, 202})
	}
	answers = append(answers, answer{t0.Add(3 * time.Second), time.Second, 201})
	p99, n, by := lateP99(answers, t0.Add(time.Second), t0.Add(3*time.Second))
	if n != 100 || by[202] != 100 || p99 != 2 {
		t.Fatalf("p99 %.2f ms of %d (%v), want 2 ms of 100 202s", p99, n, by)
	}
	if p99, n, _ := lateP99(nil, t0, t0.Add(time.Second)); n != 0 || p99 != 0 {
		t.Fatalf("no answers: %v of %d", p99, n)
	}
	if r := judged(fixedRow("x", "ms", 11, "10ms", 10, ""), false); r.Verdict != "MISS" {
		t.Fatalf("a miss is marked %q", r.Verdict)
	}
}
