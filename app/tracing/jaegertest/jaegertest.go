// Package jaegertest runs a real Jaeger on loopback for tests that assert
// what a trace holds, and reads traces back over Jaeger's HTTP query API.
// Jaeger is a Go program scripts/setup.sh builds into .data/bin, as it
// does stripe-mock and promtool; a test that needs it fails, never skips,
// when it is missing, so `make test` always runs it.
package jaegertest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spillway/spillway/app/apptest"
)

// Jaeger is one running Jaeger.
type Jaeger struct {
	// TracesURL is its OTLP/HTTP traces endpoint
	// (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT).
	TracesURL string
	// QueryURL is the base of its query API and UI.
	QueryURL string
}

// Bin finds the jaeger binary: $JAEGER_BIN, then <repo>/.data/bin/jaeger,
// then PATH.
func Bin(t testing.TB) string {
	t.Helper()
	return apptest.Tool(t, "jaeger", "JAEGER_BIN")
}

// Start runs Jaeger with testdata/jaeger/config.yaml on free loopback ports
// and stops it when t ends. It returns once the query API answers.
func Start(t testing.TB) *Jaeger {
	t.Helper()
	bin := Bin(t)
	root, err := apptest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 3)
	otlp, query, grpc := "127.0.0.1:"+ports[0], "127.0.0.1:"+ports[1], "127.0.0.1:"+ports[2]
	cmd := exec.Command(bin, "--config", "file:"+filepath.Join(root, "testdata", "jaeger", "config.yaml"))
	cmd.Env = append(os.Environ(), "JAEGER_OTLP_HTTP_ADDR="+otlp, "JAEGER_QUERY_ADDR="+query, "JAEGER_QUERY_GRPC_ADDR="+grpc)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start jaeger: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	j := &Jaeger{TracesURL: "http://" + otlp + "/v1/traces", QueryURL: "http://" + query}
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case err := <-exited:
			t.Fatalf("jaeger exited: %v\n%s", err, out.String())
		default:
		}
		if res, err := http.Get(j.QueryURL + "/api/services"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return j
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("jaeger's query API did not answer within a minute\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Trace is one trace as Jaeger's query API returns it.
type Trace struct {
	TraceID string `json:"traceID"`
	Spans   []Span `json:"spans"`
}

// Span is one span of a trace.
type Span struct {
	TraceID       string      `json:"traceID"`
	SpanID        string      `json:"spanID"`
	OperationName string      `json:"operationName"`
	References    []Reference `json:"references"`
	StartTime     int64       `json:"startTime"` // µs since the epoch
	Tags          []Tag       `json:"tags"`
}

// Reference is a span's parent (CHILD_OF) or a link (FOLLOWS_FROM).
type Reference struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

// Tag is one span attribute.
type Tag struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

// Tag is the value of the span's attribute key, formatted; "" when absent.
func (s Span) Tag(key string) string {
	for _, t := range s.Tags {
		if t.Key == key {
			return fmt.Sprint(t.Value)
		}
	}
	return ""
}

// Parent is the span's parent span id, "" for a root.
func (s Span) Parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" && r.TraceID == s.TraceID {
			return r.SpanID
		}
	}
	return ""
}

// Links are the span's links to other spans.
func (s Span) Links() []Reference {
	var ls []Reference
	for _, r := range s.References {
		if r.RefType == "FOLLOWS_FROM" || (r.RefType == "CHILD_OF" && r.TraceID != s.TraceID) {
			ls = append(ls, r)
		}
	}
	return ls
}

// Get reads one trace; found is false while Jaeger has none of its spans.
func (j *Jaeger) Get(ctx context.Context, traceID string) (tr Trace, found bool, err error) {
	var body struct {
		Data []Trace `json:"data"`
	}
	status, err := j.get(ctx, "/api/traces/"+url.PathEscape(traceID), &body)
	if err != nil || status == http.StatusNotFound || len(body.Data) == 0 {
		return Trace{}, false, err
	}
	return body.Data[0], true, nil
}

// Find lists the recent traces of service holding a span named operation.
func (j *Jaeger) Find(ctx context.Context, service, operation string) ([]Trace, error) {
	var body struct {
		Data []Trace `json:"data"`
	}
	q := url.Values{"service": {service}, "operation": {operation}, "lookback": {"1h"}, "limit": {"100"}}
	if _, err := j.get(ctx, "/api/traces?"+q.Encode(), &body); err != nil {
		return nil, err
	}
	return body.Data, nil
}

func (j *Jaeger) get(ctx context.Context, path string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.QueryURL+path, nil)
	if err != nil {
		return 0, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, err
	}
	if res.StatusCode == http.StatusNotFound {
		return res.StatusCode, nil
	}
	if res.StatusCode != http.StatusOK {
		return res.StatusCode, fmt.Errorf("jaeger %s: %d %s", path, res.StatusCode, b)
	}
	return res.StatusCode, json.Unmarshal(b, v)
}

// freePorts asks the kernel for n free loopback ports. They are released
// before Jaeger takes them; another process could take one in between,
// and then Jaeger's start fails loudly rather than a test passing wrongly.
func freePorts(t testing.TB, n int) []string {
	t.Helper()
	var ports []string
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// lockedBuffer collects Jaeger's output for a failure message.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
