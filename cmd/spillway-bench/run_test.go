package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
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
	for _, args := range [][]string{{"capture"}, {"-quick"}} {
		if err := run(context.Background(), args, getenv, io.Discard, io.Discard); err == nil {
			t.Errorf("%q: accepted", args)
		}
	}
}
