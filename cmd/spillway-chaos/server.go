package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spillway/spillway/cmd/internal/child"
)

// server is a `spillway serve` child process, one of the suite's
// instances.
type server struct {
	*child.Server
	api string // http://127.0.0.1:port
}

// startServer execs bin serve with env on addr (a free loopback port when
// empty) and waits until /healthz answers.
func startServer(ctx context.Context, bin, dir, name, addr string, env []string, logDir string) (*server, error) {
	if addr == "" {
		var err error
		if addr, err = child.FreeLoopbackAddr(); err != nil {
			return nil, err
		}
	}
	// The log is appended to, so a restarted instance's follows the
	// killed one's; SIGKILL if the suite dies first.
	cs, err := child.Start(child.Config{Name: name, Bin: bin, Dir: dir, API: "http://" + addr,
		Env:     append(env, "SPILLWAY_ADDR="+addr, "SPILLWAY_INSTANCE="+name),
		LogPath: filepath.Join(logDir, name+".log"), AppendLog: true, DeathSignal: syscall.SIGKILL})
	if err != nil {
		return nil, err
	}
	s := &server{Server: cs, api: cs.API}
	if err := s.WaitHealthy(ctx, time.Minute); err != nil {
		s.Kill()
		return nil, fmt.Errorf("%s: %w (log: %s)", name, err, s.LogPath)
	}
	return s, nil
}

func (s *server) addr() string { return s.api[len("http://"):] }

func splitHostPort(addr string) (string, string) {
	h, p, _ := net.SplitHostPort(addr)
	return h, p
}
