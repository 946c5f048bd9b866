package localpg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

const (
	logFile = "logfile"
	// startTimeout bounds pg_ctl's -w wait. Crash recovery after an
	// unclean shutdown can take a while, so this is generous.
	startTimeout = 60
	// maxLogSize is the size above which the server log is rotated once
	// before start, so a long-lived dev checkout does not grow it forever.
	maxLogSize = 10 << 20
)

// Ensure makes sure the cluster in cfg.Dir exists, runs, and has
// cfg.Database, and returns a URL for that database.
//
// It is idempotent and safe to call from many processes at once (go test
// runs package test binaries in parallel): the whole bootstrap happens
// under an exclusive flock on <Dir>.lock. When running as root the cluster
// is created and run as the "postgres" OS user, because initdb and postgres
// refuse to run as root.
func Ensure(ctx context.Context, cfg Config, log io.Writer) (string, error) {
	autoPort := cfg.Port == 0
	cfg, err := cfg.normalize()
	if err != nil {
		return "", err
	}
	if err := ensureParent(cfg.Dir); err != nil {
		return "", err
	}
	unlock, err := lock(ctx, cfg.Dir, log)
	if err != nil {
		return "", err
	}
	defer unlock()
	if autoPort {
		// Decided under the lock: a cluster another process just created
		// keeps its port; a new one takes the default or the next free.
		cfg.Port = cfg.configuredPort()
		if _, err := os.Stat(filepath.Join(cfg.Dir, confFile)); err != nil {
			cfg.Port = freePort()
		}
	}

	cl, err := newCluster(cfg, log)
	if err != nil {
		return "", err
	}
	if !cl.initialized() {
		create := cl.initdb
		if cfg.StandbyOf != 0 {
			create = cl.basebackup
		}
		if err := create(ctx); err != nil {
			return "", err
		}
	}
	changed, err := cl.writeConf()
	if err != nil {
		return "", err
	}
	pm := cl.cfg.postmaster()
	switch {
	case pm.running && (changed || pm.port != cfg.Port):
		cl.logf("configuration changed; restarting")
		if err := cl.pgctl(ctx, "restart", "-m", "fast"); err != nil {
			return "", err
		}
	case !pm.running:
		if pm.stale {
			cl.clearStale(pm.pid)
		}
		if err := cl.start(ctx); err != nil {
			return "", err
		}
	}
	// A standby is read-only: its databases are the primary's.
	if cfg.StandbyOf == 0 {
		if err := cl.ensureDatabase(ctx); err != nil {
			return "", err
		}
	}
	return cfg.urlFor(cfg.Database), nil
}

// Stop stops the cluster in cfg.Dir with a fast shutdown (connections
// are terminated, data is checkpointed). Stopping a cluster that is not
// running is not an error.
func Stop(ctx context.Context, cfg Config, log io.Writer) error {
	cfg, err := cfg.normalize()
	if err != nil {
		return err
	}
	if err := ensureParent(cfg.Dir); err != nil {
		return err
	}
	unlock, err := lock(ctx, cfg.Dir, log)
	if err != nil {
		return err
	}
	defer unlock()

	if !cfg.postmaster().running {
		return nil
	}
	cl, err := newCluster(cfg, log)
	if err != nil {
		return err
	}
	if err := cl.pgctl(ctx, "stop", "-m", "fast"); err != nil {
		return err
	}
	cl.logf("stopped")
	return nil
}

// Running reports whether a postmaster is running on the cluster in
// cfg.Dir. It takes no lock, so the answer may be stale by the time the
// caller acts on it; use Ensure to actually depend on the server.
func Running(cfg Config) bool {
	cfg, err := cfg.normalize()
	if err != nil {
		return false
	}
	return cfg.postmaster().running
}

// cluster carries what the bootstrap steps share: the settings, where the
// binaries are, and which OS user runs them.
type cluster struct {
	cfg Config
	log io.Writer
	bin string // directory holding initdb, pg_ctl and postgres of one version

	// runAs is the OS user that owns and runs the cluster when we are root;
	// nil means "the current user".
	runAs    *user.User
	uid, gid int
}

func newCluster(cfg Config, log io.Writer) (*cluster, error) {
	cl := &cluster{cfg: cfg, log: log}
	want := ""
	if b, err := os.ReadFile(filepath.Join(cfg.Dir, "PG_VERSION")); err == nil {
		want = strings.TrimSpace(string(b))
	}
	bin, err := findBinaries(cfg.Dir, want)
	if err != nil {
		return nil, err
	}
	cl.bin = bin
	if err := cl.resolveUser(); err != nil {
		return nil, err
	}
	return cl, nil
}

func (cl *cluster) logf(format string, args ...any) {
	if cl.log == nil {
		return
	}
	fmt.Fprintf(cl.log, "db: local postgres (%s): %s\n", cl.cfg.Dir, fmt.Sprintf(format, args...))
}

type postmasterState struct {
	pid     int
	port    int
	running bool // a live postmaster for this data dir
	stale   bool // postmaster.pid exists but nothing of ours is running
}

// postmaster inspects postmaster.pid. pg_ctl status only checks that the PID
// is alive, which lies after a crash or container restart when the PID has
// been reused by an unrelated process (often a go test binary). So we also
// require the process's cwd to be the data dir: the postmaster chdirs there.
func (c Config) postmaster() postmasterState {
	b, err := os.ReadFile(filepath.Join(c.Dir, "postmaster.pid"))
	if err != nil {
		return postmasterState{}
	}
	lines := strings.Split(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || pid <= 0 {
		return postmasterState{stale: true}
	}
	pm := postmasterState{pid: pid, stale: true}
	if len(lines) > 3 {
		pm.port, _ = strconv.Atoi(strings.TrimSpace(lines[3]))
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return pm
	}
	proc := "/proc/" + strconv.Itoa(pid)
	// A postmaster killed with -9 is reparented to PID 1, which in many
	// containers never reaps it: the zombie passes kill(pid, 0) but is dead.
	if stat, err := os.ReadFile(proc + "/stat"); err == nil {
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
			return pm
		}
	}
	if cwd, err := os.Readlink(proc + "/cwd"); err == nil {
		want := c.Dir
		if real, err := filepath.EvalSymlinks(c.Dir); err == nil {
			want = real
		}
		if cwd != want {
			return pm
		}
	} else if errors.Is(err, os.ErrNotExist) {
		return pm // exited between the checks
	} else if comm, err := os.ReadFile(proc + "/comm"); err == nil {
		// Not allowed to see its cwd (another user, and we are not root).
		if strings.TrimSpace(string(comm)) != "postgres" {
			return pm
		}
	}
	pm.running, pm.stale = true, false
	return pm
}

// clearStale removes the lock files a dead postmaster left behind. postgres
// would otherwise refuse to start if their PID now belongs to another live
// process. Only called with the bootstrap lock held and no server running.
func (cl *cluster) clearStale(pid int) {
	cl.logf("removing stale postmaster.pid (pid %d is not this cluster's postmaster)", pid)
	_ = os.Remove(filepath.Join(cl.cfg.Dir, "postmaster.pid"))
	socks, _ := filepath.Glob(filepath.Join(cl.cfg.Dir, ".s.PGSQL.*"))
	for _, s := range socks {
		_ = os.Remove(s)
	}
}

func (cl *cluster) pgctl(ctx context.Context, action string, extra ...string) error {
	args := []string{action, "-D", cl.cfg.Dir, "-w", "-t", strconv.Itoa(startTimeout)}
	if action == "start" || action == "restart" {
		args = append(args, "-l", filepath.Join(cl.cfg.Dir, logFile))
	}
	args = append(args, extra...)
	if err := cl.run(ctx, "pg_ctl", args...); err != nil {
		if tail := cl.logTail(); tail != "" {
			return fmt.Errorf("%w\nlast lines of %s:\n%s", err, filepath.Join(cl.cfg.Dir, logFile), tail)
		}
		return err
	}
	return nil
}

func (cl *cluster) start(ctx context.Context) error {
	// Check the port first: postgres would only say "could not bind" deep
	// in its log, and this is by far the most common start failure.
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cl.cfg.Port)))
	if err != nil {
		return fmt.Errorf("db: cannot start local postgres for %s: port %d on 127.0.0.1 is already in use by another process (%v); stop that process, pick another port, or set DATABASE_URL",
			cl.cfg.Dir, cl.cfg.Port, err)
	}
	_ = ln.Close()

	logPath := filepath.Join(cl.cfg.Dir, logFile)
	if fi, err := os.Stat(logPath); err == nil && fi.Size() > maxLogSize {
		_ = os.Rename(logPath, logPath+".old")
	}
	if err := cl.pgctl(ctx, "start"); err != nil {
		return err
	}
	cl.logf("started on 127.0.0.1:%d (log: %s)", cl.cfg.Port, logPath)
	return nil
}

func (cl *cluster) logTail() string {
	f, err := os.Open(filepath.Join(cl.cfg.Dir, logFile))
	if err != nil {
		return ""
	}
	defer f.Close()
	const tailBytes = 4096
	if fi, err := f.Stat(); err == nil && fi.Size() > tailBytes {
		_, _ = f.Seek(-tailBytes, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}
