// Package child runs `spillway serve` as a child process for the tools
// under cmd/ (the bench and the chaos suite): started as a user starts it,
// its output in a log file, healthy once /healthz answers, stopped with
// SIGTERM and a grace or killed with SIGKILL, in its own process group so
// that a Ctrl-C reaches the tool first, which stops its servers in order.
package child

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Config is one server to start.
type Config struct {
	Name string
	// Bin is the spillway binary, Dir its working directory, Env its
	// whole environment.
	Bin, Dir string
	Env      []string
	// API is the base URL it serves on (http://127.0.0.1:port).
	API string
	// LogPath receives its output; AppendLog keeps what an earlier
	// process of the same name wrote there (a restarted instance's log
	// follows the killed one's).
	LogPath   string
	AppendLog bool
	// DeathSignal is what it gets if the tool dies first.
	DeathSignal syscall.Signal
}

// Server is a running `spillway serve`.
type Server struct {
	Name, API, LogPath string
	Cmd                *exec.Cmd
	logFile            *os.File
	done               chan struct{} // closed when the process has exited
	waitErr            error
	stopped            sync.Once
}

// Start starts the server without waiting for it to be healthy.
func Start(cfg Config) (*Server, error) {
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if cfg.AppendLog {
		flags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	f, err := os.OpenFile(cfg.LogPath, flags, 0o644)
	if err != nil {
		return nil, err
	}
	s := &Server{Name: cfg.Name, API: cfg.API, LogPath: cfg.LogPath, logFile: f, done: make(chan struct{})}
	s.Cmd = exec.Command(cfg.Bin, "serve")
	s.Cmd.Dir, s.Cmd.Env = cfg.Dir, cfg.Env
	s.Cmd.Stdout, s.Cmd.Stderr = f, f
	s.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: cfg.DeathSignal}
	if err := s.Cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", cfg.Bin, err)
	}
	go func() {
		s.waitErr = s.Cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

// WaitHealthy waits until /healthz answers 200, the process exits, ctx
// ends or limit passes.
func (s *Server) WaitHealthy(ctx context.Context, limit time.Duration) error {
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
		res, err := c.Get(s.API + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("/healthz did not answer 200 within %s", limit)
}

// Stop sends SIGTERM, waits up to grace for a clean exit, then kills.
// Only the first call of Stop or Kill does anything.
func (s *Server) Stop(grace time.Duration) {
	s.stopped.Do(func() {
		defer s.logFile.Close()
		select {
		case <-s.done:
			return
		default:
		}
		_ = s.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
			return
		case <-time.After(grace):
		}
		_ = s.Cmd.Process.Kill()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
		}
	})
}

// Kill is SIGKILL: no shutdown; jobs in flight are left to River's rescue.
func (s *Server) Kill() {
	s.stopped.Do(func() {
		defer s.logFile.Close()
		_ = s.Cmd.Process.Kill()
		<-s.done
	})
}

// Alive reports an error if the server has exited.
func (s *Server) Alive() error {
	select {
	case <-s.done:
		return fmt.Errorf("server %s exited (%v)\n%s", s.Name, s.waitErr, s.LogTail())
	default:
		return nil
	}
}

// Done is closed when the process has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// LogTail is the end of the server's log, for an error message.
func (s *Server) LogTail() string {
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "--- " + s.LogPath + " (tail) ---\n" + string(b)
}

// FreeLoopbackAddr is a port on 127.0.0.1 free a moment ago.
func FreeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
