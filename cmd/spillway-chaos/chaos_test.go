package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// -h explains the command and starts nothing: no cluster, no build.
func TestHelpStartsNothing(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	getenv := func(k string) string {
		t.Errorf("-h read %s", k)
		return ""
	}
	if err := run(context.Background(), []string{"-h"}, getenv, io.Discard, &stderr); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"usage: spillway-chaos", "CHAOS_OUT", "make chaos", "db-half-open", "sigkill", "clock-step"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, stderr.String())
		}
	}
}

// A misspelt scenario or a bad setting is refused before anything starts,
// rather than discovered after minutes of set-up.
func TestBadArgumentsAreRefusedBeforeAnythingStarts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"-only", "db-reset,db-rset"}, want: `no scenario "db-rset"`},
		{args: []string{"sigkill"}, want: "unexpected arguments"},
		{env: map[string]string{"CHAOS_RATE": "fast"}, want: "CHAOS_RATE"},
		{env: map[string]string{"CHAOS_FAULT": "-1s", "CHAOS_DRAIN": "1h"}, want: "CHAOS_DRAIN"},
	} {
		getenv := func(k string) string { return tc.env[k] }
		err := run(context.Background(), tc.args, getenv, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q, %v) = %v, want an error naming %q", tc.args, tc.env, err, tc.want)
		}
	}
}

func TestParseTimingReportsEveryBadVariable(t *testing.T) {
	t.Parallel()
	env := map[string]string{"CHAOS_FAULT": "-1s", "CHAOS_DRAIN": "1h", "CHAOS_WARM": "3s"}
	_, err := parseTiming(func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "CHAOS_FAULT") || !strings.Contains(err.Error(), "CHAOS_DRAIN") {
		t.Fatalf("parseTiming = %v, want both CHAOS_FAULT and CHAOS_DRAIN named", err)
	}
	env = map[string]string{"CHAOS_WARM": "3s", "CHAOS_RATE": "12.5"}
	got, err := parseTiming(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := defaultTiming()
	want.Warm, want.Rate = 3*time.Second, 12.5
	if got != want {
		t.Errorf("parseTiming = %+v, want %+v", got, want)
	}
}

// -only keeps the suite's order, whatever order it names scenarios in.
func TestSelectScenariosKeepsTheSuitesOrder(t *testing.T) {
	t.Parallel()
	got, err := selectScenarios(scenarios(), " sigkill, baseline ,db-reset")
	if err != nil {
		t.Fatal(err)
	}
	if names := strings.Join(scenarioNames(got), ","); names != "baseline,db-reset,sigkill" {
		t.Errorf("selected %s", names)
	}
	all, _ := selectScenarios(scenarios(), "")
	if len(all) != len(scenarios()) {
		t.Errorf("empty -only selected %d of %d", len(all), len(scenarios()))
	}
}

// Every fault the issue asks for has a scenario, and each one can be
// removed again.
func TestEveryFaultHasAScenarioThatHeals(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, sc := range scenarios() {
		if seen[sc.Name] {
			t.Errorf("scenario %s twice", sc.Name)
		}
		seen[sc.Name] = true
		if (sc.inject == nil) != (sc.heal == nil) {
			t.Errorf("%s: inject without heal or heal without inject", sc.Name)
		}
	}
	for _, want := range []string{"db-latency", "db-bandwidth", "db-reset", "db-half-open", "db-restart",
		"provider-latency", "provider-reset", "provider-half-open", "provider-down", "sigkill", "clock-step"} {
		if !seen[want] {
			t.Errorf("no scenario %s", want)
		}
	}
}

// judge counts by the suite's definitions: an acknowledged request whose
// operation is missing or open is lost; two charges for one operation, even
// one never acknowledged, are a duplicate; a status the downstream's books
// contradict is wrong; a 503 with nothing behind it is none of these.
func TestJudgeCountsLostDuplicatedAndWrong(t *testing.T) {
	t.Parallel()
	heal := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return heal.Add(time.Duration(ms) * time.Millisecond) }
	answers := []answer{
		{Kind: "payment", Key: "k0", Sent: at(-1000), Latency: 20 * time.Millisecond, Status: 201, OpID: "ok"},
		{Kind: "payment", Key: "k1", Sent: at(-900), Latency: 900 * time.Millisecond, Status: 202, OpID: "open"},
		{Kind: "payment", Key: "k2", Sent: at(-800), Latency: 10 * time.Millisecond, Status: 201, OpID: "missing"},
		{Kind: "payment", Key: "k3", Sent: at(-700), Latency: 5 * time.Second, Status: 503},
		{Kind: "order", Key: "k4", Sent: at(-600), Latency: 30 * time.Millisecond, Status: 202, OpID: "order-unreleased"},
		{Kind: "payment", Key: "k5", Sent: at(-500), Latency: 30 * time.Millisecond, Status: 201, OpID: "uncharged"},
		{Kind: "payment", Key: "k6", Sent: at(-400), Status: 0},
		{Kind: "payment", Key: "k7", Sent: at(-300), Latency: 10 * time.Millisecond, Status: 500},
		{Kind: "payment", Key: "k8", Sent: at(100), Latency: 50 * time.Millisecond, Status: 201, OpID: "after"},
		{Kind: "payment", Key: "k9", Sent: at(200), Latency: 50 * time.Millisecond, Status: 201, OpID: "refunded"},
	}
	b := books{
		ops: map[string]string{"ok": "succeeded", "open": "processing", "order-unreleased": "failed",
			"uncharged": "succeeded", "after": "succeeded", "unacked": "succeeded", "refunded": "succeeded"},
		charges:      map[string]int{"ok": 1, "after": 1, "unacked": 2, "refunded": 1},
		refunded:     map[string]int{"refunded": 1},
		reservations: map[string]reservation{"order-unreleased": {Made: 1}},
	}
	sc := scenario{Name: "x", inject: func(context.Context, *scenarioRun) error { return nil }}
	retries := []answer{
		{Kind: "payment", Key: "k3", Status: 201, OpID: "unacked"},
		{Kind: "payment", Key: "k6", Status: 202, OpID: "vanished"},
		{Kind: "payment", Key: "k7", Status: 0},
	}
	rw := judge(sc, answers, retries, b, heal, drainResult{backlogDone: at(400)})
	type counts struct{ Sent, Acknowledged, Sync, Async, Lost, Duplicated, Wrong, Undocumented, OverBudget int }
	// The retried k3 replays "unacked", already a duplicate (counted once,
	// by operation); the retried k6 names an operation that is not there.
	want := counts{Sent: 10, Acknowledged: 7, Sync: 5, Async: 2, Lost: 3, Duplicated: 1, Wrong: 3, Undocumented: 1, OverBudget: 1}
	got := counts{Sent: rw.Sent, Acknowledged: rw.Acknowledged, Sync: rw.Sync, Async: rw.Async, Lost: rw.Lost,
		Duplicated: rw.Duplicated, Wrong: rw.Wrong, Undocumented: rw.Undocumented, OverBudget: rw.OverBudget}
	if got != want {
		t.Errorf("judge counted %+v\nwant %+v\nproblems: %q", got, want, rw.Problems)
	}
	if !rw.failed() {
		t.Error("the row does not fail")
	}
	if rw.Retried != 3 || rw.RetriedAcknowledged != 2 {
		t.Errorf("retried %d, %d acknowledged; want 3, 2", rw.Retried, rw.RetriedAcknowledged)
	}
	// Recovered at the later of the first 201 after the heal (150 ms) and
	// the backlog's end (400 ms).
	if rw.RecoverMs != 400 || rw.SyncBackMs != 150 || rw.BacklogDoneMs != 400 {
		t.Errorf("recover %v (sync %v, backlog %v), want 400 (150, 400)", rw.RecoverMs, rw.SyncBackMs, rw.BacklogDoneMs)
	}
	if rw.Statuses["none"] != 1 || rw.Statuses["503"] != 1 {
		t.Errorf("statuses %v", rw.Statuses)
	}
}

// Without a 201 after the heal, or with a backlog that never drained, the
// scenario did not recover, and says so rather than reporting a time.
func TestJudgeWithoutRecoverySaysNever(t *testing.T) {
	t.Parallel()
	heal := time.Now()
	sc := scenario{Name: "x", inject: func(context.Context, *scenarioRun) error { return nil }}
	answers := []answer{{Kind: "payment", Sent: heal.Add(time.Second), Status: 202, OpID: "a"}}
	b := books{ops: map[string]string{"a": "succeeded"}, charges: map[string]int{"a": 1}}
	if rw := judge(sc, answers, nil, b, heal, drainResult{backlogDone: heal}); rw.RecoverMs != -1 || rw.failed() {
		t.Errorf("recover %v, failed %v; want never, and no failure", rw.RecoverMs, rw.failed())
	}
}

func TestReportTableAndJSON(t *testing.T) {
	t.Parallel()
	rep := newReport(defaultTiming())
	rep.add(row{Scenario: "baseline", Sent: 300, Acknowledged: 300, Sync: 300, P99Ms: 12.4})
	rep.add(row{Scenario: "provider-half-open", Sent: 300, Acknowledged: 298, Sync: 120, Async: 178, P99Ms: 1043.2,
		RecoverMs: 2450, Duplicated: 1, Problems: []string{"duplicated: 2 charges for operation x"}})
	var out bytes.Buffer
	rep.Format(&out)
	lines := strings.Split(out.String(), "\n")
	for i, want := range []string{
		"  scenario            sent  acknowledged  sync  async  lost  duplicated  wrong  undocumented    p99  over budget  recover",
		"  baseline             300           300   300      0     0           0      0             0   12ms            0        -",
		"  provider-half-open   300           298   120    178     0           1      0             0  1.04s            0    2.45s",
	} {
		if i >= len(lines) || strings.TrimRight(lines[i], " ") != want {
			t.Errorf("line %d:\n got %q\nwant %q", i, lines[min(i, len(lines)-1)], want)
		}
	}
	if !strings.Contains(out.String(), "provider-half-open:\n  duplicated: 2 charges") {
		t.Errorf("the failing row's problems are not listed:\n%s", out.String())
	}
	if rep.OK {
		t.Error("a report with a duplicate is OK")
	}

	path := filepath.Join(t.TempDir(), "sub", "chaos.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		OK   bool `json:"ok"`
		Rows []struct {
			Scenario   string  `json:"scenario"`
			Duplicated int     `json:"duplicated"`
			RecoverMs  float64 `json:"recover_ms"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if back.OK || len(back.Rows) != 2 || back.Rows[1].Duplicated != 1 || back.Rows[1].RecoverMs != 2450 {
		t.Errorf("JSON read back as %+v", back)
	}
}

func TestQuantileIsNearestRank(t *testing.T) {
	t.Parallel()
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(101-i)*time.Millisecond)
	}
	if got := quantile(ds, 0.99); got != 99*time.Millisecond {
		t.Errorf("p99 of 1..100 ms = %s", got)
	}
	if got := quantile(ds, 1); got != 100*time.Millisecond {
		t.Errorf("max = %s", got)
	}
	if got := quantile(nil, 0.99); got != 0 {
		t.Errorf("p99 of nothing = %s", got)
	}
}
