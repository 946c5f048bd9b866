package web_test

import (
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spillway/spillway/app/apptest"
)

// The alerting rules Prometheus loads, and their promtool unit tests.
const (
	alertRules     = "../testdata/prometheus/alerts.yml"
	alertRuleTests = "../testdata/prometheus/alerts_test.yml"
)

// pendingMetrics are named by the rules before Spillway exports them.
// Listed here so that every other name the rules use must be exported;
// none is pending now.
var pendingMetrics []string

// The rules are valid, and promtool's unit tests of every alert (firing
// and not firing) pass.
func TestAlertRulesPassPromtool(t *testing.T) {
	t.Parallel()
	bin := apptest.Tool(t, "promtool", "PROMTOOL_BIN")
	for _, args := range [][]string{
		{"check", "rules", alertRules},
		{"test", "rules", alertRuleTests},
	} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// Every alert has a unit test that sees it fire and one that sees it
// quiet: an alert whose test only ever expects silence passes whatever
// its expression says.
func TestEveryAlertIsTestedFiringAndNotFiring(t *testing.T) {
	t.Parallel()
	rules, err := os.ReadFile(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(alertRuleTests)
	if err != nil {
		t.Fatal(err)
	}
	// Each alert_rule_test case starts at "- eval_time:" and names its
	// alert; it expects the alert to fire when it lists exp_labels.
	firing, quiet := map[string]bool{}, map[string]bool{}
	nameRE := regexp.MustCompile(`alertname: (\S+)`)
	for _, c := range regexp.MustCompile(`\n\s*- (?:eval_time|name):`).Split(string(tests), -1) {
		m := nameRE.FindStringSubmatch(c)
		switch {
		case m == nil:
		case strings.Contains(c, "exp_labels:"):
			firing[m[1]] = true
		default:
			quiet[m[1]] = true
		}
	}
	for _, m := range regexp.MustCompile(`(?m)^\s*- alert: (\S+)`).FindAllStringSubmatch(string(rules), -1) {
		if !firing[m[1]] {
			t.Errorf("no promtool test sees %s fire", m[1])
		}
		if !quiet[m[1]] {
			t.Errorf("no promtool test sees %s stay quiet", m[1])
		}
	}
}

// Every metric the rules name is one the running product exports on
// /metrics, so a rename in the code cannot leave an alert watching
// nothing. A drill's metrics exist once a drill has finished: one is
// recorded, as the drill job leaves it.
func TestAlertRulesUseOnlyExportedMetrics(t *testing.T) {
	t.Parallel()
	rules, err := os.ReadFile(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for line := range strings.Lines(string(rules)) {
		if l := strings.TrimSpace(line); !strings.HasPrefix(l, "#") && !strings.Contains(l, "runbook_url:") &&
			!strings.HasPrefix(l, "summary:") && !strings.HasPrefix(l, "description:") {
			exprs = append(exprs, l)
		}
	}
	named := map[string]bool{}
	for _, n := range regexp.MustCompile(`\bspillway_[a-z0-9_]+`).FindAllString(strings.Join(exprs, "\n"), -1) {
		named[n] = true
	}
	if len(named) == 0 {
		t.Fatalf("%s names no spillway_ metric", alertRules)
	}

	h := newHarness(t, harnessOpts{})
	h.pay("alerts-1", payment)
	if _, err := h.Pool.Exec(t.Context(), `
		INSERT INTO drills (dependency, mode, trigger, status, duration_ms, started_at, ended_at, canaries, sent, completed, drain_ms, finished_at)
		VALUES ('payment', 'shadow', 'manual', 'passed', 60000, now() - interval '2 minutes', now() - interval '1 minute', 3, 3, 3, 1500, now())`); err != nil {
		t.Fatal(err)
	}
	r := h.do(http.MethodGet, "/metrics", "", "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", r.status, r.body)
	}
	exported := map[string]bool{}
	for line := range strings.Lines(string(r.body)) {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			exported[strings.Fields(name)[0]] = true
		}
	}
	for n := range named {
		switch {
		case slices.Contains(pendingMetrics, n):
			if exported[n] {
				t.Errorf("%s is exported now: take it off pendingMetrics", n)
			}
		case !exported[n]:
			t.Errorf("the rules use %s, which /metrics does not export", n)
		}
	}
}
