package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// server is a `spillway serve` child process.
type server struct {
	name    string
	cmd     *exec.Cmd
	api     string // http://127.0.0.1:port
	logPath string
	logFile *os.File
	done    chan struct{} // closed when the process has exited
	waitErr error
	stopped sync.Once
}

// startServer execs bin serve with env on addr (a free loopback port when
// empty) and waits until /healthz answers.
func startServer(ctx context.Context, bin, dir, name, addr string, env []string, logDir string) (*server, error) {
	if addr == "" {
		var err error
		if addr, err = freeLoopbackAddr(); err != nil {
			return nil, err
		}
	}
	s := &server{name: name, api: "http://" + addr, done: make(chan struct{}),
		logPath: filepath.Join(logDir, name+".log")}
	var err error
	// Appended to, so a restarted instance's log follows the killed one's.
	if s.logFile, err = os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, "serve")
	s.cmd.Dir = dir
	s.cmd.Env = append(env, "SPILLWAY_ADDR="+addr, "SPILLWAY_INSTANCE="+name)
	s.cmd.Stdout, s.cmd.Stderr = s.logFile, s.logFile
	// Its own process group, so a Ctrl-C to make reaches the suite first,
	// which stops the servers in order; and it dies with the suite.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		s.logFile.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	if err := s.waitHealthy(ctx, time.Minute); err != nil {
		s.kill()
		return nil, fmt.Errorf("%s: %w (log: %s)", name, err, s.logPath)
	}
	return s, nil
}

func (s *server) addr() string { return s.api[len("http://"):] }

func (s *server) waitHealthy(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	c := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("the server exited during start-up (%v)", s.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		res, err := c.Get(s.api + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("/healthz did not answer 200 within %s", limit)
}

// stop sends SIGTERM, waits up to grace for a clean exit, then kills.
// Only the first call of stop or kill does anything.
func (s *server) stop(grace time.Duration) {
	s.stopped.Do(func() {
		defer s.logFile.Close()
		select {
		case <-s.done:
			return
		default:
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
			return
		case <-time.After(grace):
		}
		_ = s.cmd.Process.Kill()
		<-s.done
	})
}

// kill is SIGKILL: no shutdown, jobs in flight are left to River's rescue.
func (s *server) kill() {
	s.stopped.Do(func() {
		defer s.logFile.Close()
		_ = s.cmd.Process.Kill()
		<-s.done
	})
}

func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func splitHostPort(addr string) (string, string) {
	h, p, _ := net.SplitHostPort(addr)
	return h, p
}
