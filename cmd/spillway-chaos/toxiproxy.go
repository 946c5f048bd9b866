package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spillway/spillway/cmd/internal/child"
)

// toxiproxy is a toxiproxy-server child and a client of its HTTP API. The
// API is small and stable (proxies, toxics, reset), so it is spoken with
// net/http rather than through the module's client package, which would
// add the module to go.mod for four requests.
type toxiproxy struct {
	api  string // http://127.0.0.1:port
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
	hc   *http.Client
}

// startToxiproxy runs bin (toxiproxy-server) on a free loopback port and
// waits until its API answers.
func startToxiproxy(ctx context.Context, bin, logPath string) (*toxiproxy, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s: %w (make chaos runs scripts/setup.sh, which installs it)", bin, err)
	}
	addr, err := child.FreeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	host, port := splitHostPort(addr)
	t := &toxiproxy{api: "http://" + addr, done: make(chan struct{}), hc: &http.Client{}}
	if t.log, err = os.Create(logPath); err != nil {
		return nil, err
	}
	t.cmd = exec.Command(bin, "-host", host, "-port", port)
	t.cmd.Stdout, t.cmd.Stderr = t.log, t.log
	t.cmd.Env = append(os.Environ(), "LOG_LEVEL=warn")
	t.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := t.cmd.Start(); err != nil {
		t.log.Close()
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	go func() { _ = t.cmd.Wait(); close(t.done) }()
	deadline := time.Now().Add(20 * time.Second)
	probe := &http.Client{Timeout: time.Second}
	for {
		res, err := probe.Get(t.api + "/version")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return t, nil
			}
		}
		select {
		case <-t.done:
			return nil, fmt.Errorf("toxiproxy-server exited during start-up; see %s", logPath)
		case <-ctx.Done():
			t.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.stop()
			return nil, fmt.Errorf("toxiproxy-server did not answer on %s within 20s", t.api)
		}
	}
}

func (t *toxiproxy) stop() {
	defer t.log.Close()
	_ = t.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-t.done:
	case <-time.After(3 * time.Second):
		_ = t.cmd.Process.Kill()
		<-t.done
	}
}

// apiTimeout bounds an API request; removeTimeout a toxic's removal,
// which waits for every link through the proxy to let go of the toxic: a
// bandwidth toxic holding data for a client that stopped reading gives it
// up to 5 s per link (Toxiproxy's WriteOutput), one link after another.
const (
	apiTimeout    = 10 * time.Second
	removeTimeout = 3 * time.Minute
)

// do sends one API request with a JSON body and checks the status.
func (t *toxiproxy) do(ctx context.Context, method, path string, body any, want ...int) error {
	limit := apiTimeout
	if method == http.MethodDelete {
		limit = removeTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.api+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := t.hc.Do(req)
	if err != nil {
		return fmt.Errorf("toxiproxy %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	for _, w := range want {
		if res.StatusCode == w {
			return nil
		}
	}
	return fmt.Errorf("toxiproxy %s %s: %d %s", method, path, res.StatusCode, bytes.TrimSpace(msg))
}

// proxy creates a proxy listening on a free loopback port and returns
// that address.
func (t *toxiproxy) proxy(ctx context.Context, name, upstream string) (string, error) {
	listen, err := child.FreeLoopbackAddr()
	if err != nil {
		return "", err
	}
	err = t.do(ctx, http.MethodPost, "/proxies",
		map[string]any{"name": name, "listen": listen, "upstream": upstream, "enabled": true}, http.StatusCreated)
	return listen, err
}

// toxic is one toxic as the API takes it.
type toxic struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Stream     string         `json:"stream"` // upstream (to the server) or downstream (to the client)
	Toxicity   float64        `json:"toxicity"`
	Attributes map[string]int `json:"attributes"`
}

func (t *toxiproxy) addToxic(ctx context.Context, proxy string, x toxic) error {
	if x.Toxicity == 0 {
		x.Toxicity = 1
	}
	return t.do(ctx, http.MethodPost, "/proxies/"+proxy+"/toxics", x, http.StatusOK)
}

func (t *toxiproxy) removeToxic(ctx context.Context, proxy, name string) error {
	return t.do(ctx, http.MethodDelete, "/proxies/"+proxy+"/toxics/"+name, nil, http.StatusNoContent, http.StatusOK)
}

// setEnabled turns a proxy off (it closes every connection through it and
// stops listening) or on again.
func (t *toxiproxy) setEnabled(ctx context.Context, proxy string, on bool) error {
	return t.do(ctx, http.MethodPost, "/proxies/"+proxy, map[string]any{"enabled": on}, http.StatusOK)
}

// reset enables every proxy and removes every toxic: the clean state each
// scenario starts from, whatever the last one left.
func (t *toxiproxy) reset(ctx context.Context) error {
	return t.do(ctx, http.MethodPost, "/reset", nil, http.StatusNoContent, http.StatusOK)
}
