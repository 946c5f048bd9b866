package db

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// DefaultLocalPort is deliberately not 5432 so the project cluster never
	// collides with a system cluster (Debian's postgresql package starts one).
	DefaultLocalPort = 54329
	// DefaultLocalDatabase is the database EnsureLocal creates by default.
	DefaultLocalDatabase = "spillway"
	// DefaultLocalMaxConnections is above Postgres's default of 100
	// because many test binaries run in parallel, each with its own pool.
	DefaultLocalMaxConnections = 200
)

// LocalConfig describes a project-local PostgreSQL cluster.
type LocalConfig struct {
	Dir      string // cluster data dir, e.g. <repo>/.data/postgres (made absolute)
	Port     int    // TCP port on 127.0.0.1; DefaultLocalPort when zero
	Database string // database EnsureLocal creates; DefaultLocalDatabase when empty
	// MaxConnections is the server's max_connections; zero means
	// DefaultLocalMaxConnections. A test that must see what a stock
	// server allows sets Postgres's own default, 100.
	MaxConnections int
}

// URL returns the connection URL for cfg.Database on the local cluster. It
// does not check that the cluster is running; EnsureLocal returns the same URL.
func (c LocalConfig) URL() string {
	c = c.withDefaults()
	return c.urlFor(c.Database)
}

func (c LocalConfig) urlFor(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(localSuperuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)),
		Path:     "/" + database,
		RawPath:  "/" + url.PathEscape(database),
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

func (c LocalConfig) withDefaults() LocalConfig {
	if c.Port == 0 {
		c.Port = c.configuredPort()
	}
	if c.Database == "" {
		c.Database = DefaultLocalDatabase
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultLocalMaxConnections
	}
	return c
}

// configuredPort is the port an existing cluster in Dir was set up with,
// else DefaultLocalPort.
func (c LocalConfig) configuredPort() int {
	b, err := os.ReadFile(filepath.Join(localRelocate(absOr(c.Dir)), localConfFile))
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "port = "); ok {
				if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
					return n
				}
			}
		}
	}
	return DefaultLocalPort
}

// freePort is DefaultLocalPort when nothing listens there, else the first
// free port above it: a second checkout, or a cluster left running by an
// earlier session, must not stop this one from starting.
func freePort() int {
	for p := DefaultLocalPort; p < DefaultLocalPort+100; p++ {
		if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p))); err == nil {
			_ = ln.Close()
			return p
		}
	}
	return DefaultLocalPort
}

func absOr(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

func (c LocalConfig) normalize() (LocalConfig, error) {
	c = c.withDefaults()
	if c.Dir == "" {
		return c, errors.New("db: LocalConfig.Dir is required")
	}
	if c.Port < 1 || c.Port > 65535 {
		return c, fmt.Errorf("db: LocalConfig.Port %d out of range", c.Port)
	}
	if err := localCheckDBName(c.Database); err != nil {
		return c, err
	}
	if c.MaxConnections < 1 {
		return c, fmt.Errorf("db: LocalConfig.MaxConnections %d must be positive", c.MaxConnections)
	}
	abs, err := filepath.Abs(c.Dir)
	if err != nil {
		return c, fmt.Errorf("db: resolving %s: %w", c.Dir, err)
	}
	c.Dir = localRelocate(abs)
	return c, nil
}

// localRelocate keeps the cluster usable when we are root and the checkout
// sits where the postgres OS user cannot reach (a clone under /root, mode
// 0700, as CI may make): the cluster then lives under the system temp dir,
// keyed by the path it stands in for, so every caller still agrees on one
// cluster per checkout.
func localRelocate(dir string) string {
	if os.Geteuid() != 0 {
		return dir
	}
	u, err := user.Lookup(localSuperuser)
	if err != nil {
		return dir
	}
	if localTraversable(filepath.Dir(dir), u) == "" {
		return dir
	}
	sum := sha256.Sum256([]byte(dir))
	return filepath.Join(os.TempDir(), "spillway-"+hex.EncodeToString(sum[:6]), filepath.Base(dir))
}

func statT(fi os.FileInfo, err error) (*syscall.Stat_t, bool) {
	if err != nil {
		return nil, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return st, ok
}

// localTraversable returns the first directory from dir up to / that u
// cannot traverse, or "" when u reaches dir.
func localTraversable(dir string, u *user.User) string {
	uid, _ := strconv.Atoi(u.Uid)
	gids := []string{u.Gid}
	if more, err := u.GroupIds(); err == nil {
		gids = append(gids, more...)
	}
	for d := dir; ; d = filepath.Dir(d) {
		// A directory not made yet will be created traversable; its
		// parents decide.
		fi, err := os.Stat(d)
		if st, ok := statT(fi, err); ok {
			perm := fi.Mode().Perm()
			var can bool
			switch {
			case int(st.Uid) == uid:
				can = perm&0o100 != 0
			case slices.Contains(gids, strconv.Itoa(int(st.Gid))):
				can = perm&0o010 != 0
			default:
				can = perm&0o001 != 0
			}
			if !can {
				return d
			}
		}
		if d == filepath.Dir(d) {
			return ""
		}
	}
}

const (
	localSuperuser = "postgres"
	// localConfFile holds every setting we manage. It is included from
	// postgresql.conf so that initdb's defaults stay untouched and our
	// settings can be rewritten wholesale on each EnsureLocal.
	localConfFile = "spillway.conf"
	localLogFile  = "logfile"
	// localStartTimeout bounds pg_ctl's -w wait. Crash recovery after an
	// unclean shutdown can take a while, so this is generous.
	localStartTimeout = 60
	// localMaxLog is the size above which the server log is rotated once
	// before start, so a long-lived dev checkout does not grow it forever.
	localMaxLog = 10 << 20
)

// EnsureLocal makes sure the cluster in cfg.Dir exists, runs, and has
// cfg.Database, and returns a URL for that database.
//
// It is idempotent and safe to call from many processes at once (go test
// runs package test binaries in parallel): the whole bootstrap happens
// under an exclusive flock on <Dir>.lock. When running as root the cluster
// is created and run as the "postgres" OS user, because initdb and postgres
// refuse to run as root.
func EnsureLocal(ctx context.Context, cfg LocalConfig, log io.Writer) (string, error) {
	autoPort := cfg.Port == 0
	cfg, err := cfg.normalize()
	if err != nil {
		return "", err
	}
	if err := localEnsureParent(cfg.Dir); err != nil {
		return "", err
	}
	unlock, err := localLock(ctx, cfg.Dir, log)
	if err != nil {
		return "", err
	}
	defer unlock()
	if autoPort {
		// Decided under the lock: a cluster another process just created
		// keeps its port; a new one takes the default or the next free.
		cfg.Port = cfg.configuredPort()
		if _, err := os.Stat(filepath.Join(cfg.Dir, localConfFile)); err != nil {
			cfg.Port = freePort()
		}
	}

	cl, err := localNewCluster(cfg, log)
	if err != nil {
		return "", err
	}
	if !cl.initialized() {
		if err := cl.initdb(ctx); err != nil {
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
	if err := cl.ensureDatabase(ctx); err != nil {
		return "", err
	}
	return cfg.urlFor(cfg.Database), nil
}

// StopLocal stops the cluster in cfg.Dir with a fast shutdown (connections
// are terminated, data is checkpointed). Stopping a cluster that is not
// running is not an error.
func StopLocal(ctx context.Context, cfg LocalConfig, log io.Writer) error {
	cfg, err := cfg.normalize()
	if err != nil {
		return err
	}
	if err := localEnsureParent(cfg.Dir); err != nil {
		return err
	}
	unlock, err := localLock(ctx, cfg.Dir, log)
	if err != nil {
		return err
	}
	defer unlock()

	if !cfg.postmaster().running {
		return nil
	}
	cl, err := localNewCluster(cfg, log)
	if err != nil {
		return err
	}
	if err := cl.pgctl(ctx, "stop", "-m", "fast"); err != nil {
		return err
	}
	cl.logf("stopped")
	return nil
}

// LocalRunning reports whether a postmaster is running on the cluster in
// cfg.Dir. It takes no lock, so the answer may be stale by the time the
// caller acts on it; use EnsureLocal to actually depend on the server.
func LocalRunning(cfg LocalConfig) bool {
	cfg, err := cfg.normalize()
	if err != nil {
		return false
	}
	return cfg.postmaster().running
}

// localEnsureParent creates the directory holding Dir and its lock file.
// It is made 0755 explicitly (not via umask) because when we run as root the
// postgres user must be able to traverse it.
func localEnsureParent(dir string) error {
	parent := filepath.Dir(dir)
	if _, err := os.Stat(parent); err == nil {
		return nil
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("db: creating %s: %w", parent, err)
	}
	if err := os.Chmod(parent, 0o755); err != nil {
		return fmt.Errorf("db: chmod %s: %w", parent, err)
	}
	return nil
}

// localLock takes an exclusive flock on <dir>.lock, polling so that ctx can
// cancel the wait (a blocking flock cannot be interrupted). flock locks
// belong to the open file description, so this serializes goroutines in one
// process as well as separate processes.
func localLock(ctx context.Context, dir string, log io.Writer) (func(), error) {
	path := dir + ".lock"
	// O_RDONLY is enough for flock and lets a different user reuse a lock
	// file created by someone else (e.g. root earlier).
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("db: opening lock %s: %w", path, err)
	}
	_ = f.Chmod(0o644) // best effort against a restrictive umask
	fd := int(f.Fd())
	start, told := time.Now(), false
	for {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(fd, syscall.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("db: locking %s: %w", path, err)
		}
		// Stay quiet for short waits: with go test ./... most binaries
		// briefly queue behind the first one and that is not news.
		if !told && log != nil && time.Since(start) > 2*time.Second {
			fmt.Fprintf(log, "db: local postgres: waiting for %s (another process is bootstrapping the cluster)\n", path)
			told = true
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("db: waiting for %s: %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// localCluster carries what the bootstrap steps share. Helpers hang off it
// (rather than being package functions) to keep package db's namespace small.
type localCluster struct {
	cfg LocalConfig
	log io.Writer
	bin string // directory holding initdb, pg_ctl and postgres of one version

	// runAs is the OS user that owns and runs the cluster when we are root;
	// nil means "the current user".
	runAs    *user.User
	uid, gid int
}

func localNewCluster(cfg LocalConfig, log io.Writer) (*localCluster, error) {
	cl := &localCluster{cfg: cfg, log: log}
	want := ""
	if b, err := os.ReadFile(filepath.Join(cfg.Dir, "PG_VERSION")); err == nil {
		want = strings.TrimSpace(string(b))
	}
	bin, err := localFindBinaries(cfg.Dir, want)
	if err != nil {
		return nil, err
	}
	cl.bin = bin
	if err := cl.resolveUser(); err != nil {
		return nil, err
	}
	return cl, nil
}

func (cl *localCluster) logf(format string, args ...any) {
	if cl.log == nil {
		return
	}
	fmt.Fprintf(cl.log, "db: local postgres (%s): %s\n", cl.cfg.Dir, fmt.Sprintf(format, args...))
}

var localBinaryNames = []string{"initdb", "pg_ctl", "postgres"}

// localFindBinaries returns a directory containing initdb, pg_ctl and
// postgres. All three must come from one directory: pg_ctl and initdb locate
// postgres next to themselves, and mixing major versions breaks clusters.
// PATH wins (symlinks resolved to the real bin dir), then Debian's
// /usr/lib/postgresql/<major>/bin, highest major first. When the cluster
// already exists (wantMajor != ""), only binaries of its major version fit.
func localFindBinaries(dir, wantMajor string) (string, error) {
	var candidates []string
	var missing []string
	for _, name := range localBinaryNames {
		p, err := exec.LookPath(name)
		if err != nil {
			missing = append(missing, name)
			continue
		}
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		if d := filepath.Dir(p); !slices.Contains(candidates, d) {
			candidates = append(candidates, d)
		}
	}
	debian, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(debian, func(i, j int) bool {
		return localVersionLess(localDebianMajor(debian[j]), localDebianMajor(debian[i]))
	})
	for _, d := range debian {
		if !slices.Contains(candidates, d) {
			candidates = append(candidates, d)
		}
	}

	var found []string // "dir (major)" for the error message
	for _, d := range candidates {
		if !localHasBinaries(d) {
			continue
		}
		if wantMajor == "" {
			return d, nil
		}
		major := localDebianMajor(d)
		if major == "" {
			major = localPgctlMajor(filepath.Join(d, "pg_ctl"))
		}
		if major == wantMajor {
			return d, nil
		}
		found = append(found, fmt.Sprintf("%s (PostgreSQL %s)", d, major))
	}
	if len(found) > 0 {
		return "", fmt.Errorf("db: cluster %s was created by PostgreSQL %s, but only found %s; install PostgreSQL %s or remove %s to re-create it",
			dir, wantMajor, strings.Join(found, ", "), wantMajor, dir)
	}
	if len(missing) == 0 {
		missing = localBinaryNames // on PATH but scattered over different dirs
	}
	return "", fmt.Errorf("db: PostgreSQL server binaries not found (%s missing from PATH and /usr/lib/postgresql/*/bin); run scripts/setup.sh to install them, or set DATABASE_URL",
		strings.Join(missing, ", "))
}

func localHasBinaries(dir string) bool {
	for _, name := range localBinaryNames {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// localDebianMajor extracts <major> from /usr/lib/postgresql/<major>/bin.
func localDebianMajor(binDir string) string {
	parent := filepath.Dir(binDir)
	if filepath.Base(binDir) != "bin" || filepath.Dir(parent) != "/usr/lib/postgresql" {
		return ""
	}
	return filepath.Base(parent)
}

// localPgctlMajor parses "pg_ctl (PostgreSQL) 15.8 (Debian ...)" into "15".
func localPgctlMajor(pgctl string) string {
	out, err := exec.Command(pgctl, "--version").Output()
	if err != nil {
		return ""
	}
	_, rest, ok := strings.Cut(string(out), "(PostgreSQL)")
	if !ok {
		return ""
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return ""
	}
	v := fields[0]
	// Since PostgreSQL 10 the major version is the first component; before
	// that it was the first two (9.6), which PG_VERSION also records.
	if first, _, _ := strings.Cut(v, "."); first != "" {
		if n, err := strconv.Atoi(first); err == nil && n >= 10 {
			return first
		}
	}
	if parts := strings.SplitN(v, ".", 3); len(parts) >= 2 {
		return parts[0] + "." + parts[1]
	}
	return v
}

// localVersionLess compares dotted numeric versions ("9.6" < "15").
func localVersionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, errx := strconv.Atoi(as[i])
		y, erry := strconv.Atoi(bs[i])
		if errx != nil || erry != nil {
			if as[i] != bs[i] {
				return as[i] < bs[i]
			}
			continue
		}
		if x != y {
			return x < y
		}
	}
	return len(as) < len(bs)
}

// resolveUser decides which OS user owns and runs the cluster. initdb and
// postgres refuse to run as root, so as root we use the owner of an existing
// cluster (whoever created it) or else the "postgres" user.
func (cl *localCluster) resolveUser() error {
	dir := cl.cfg.Dir
	var owner *syscall.Stat_t
	if fi, err := os.Stat(dir); err == nil {
		owner, _ = fi.Sys().(*syscall.Stat_t)
	}
	if os.Geteuid() != 0 {
		if owner != nil && int(owner.Uid) != os.Geteuid() && cl.initialized() {
			return fmt.Errorf("db: cluster %s is owned by uid %d but this process runs as uid %d; run as that user (or root), or remove %s",
				dir, owner.Uid, os.Geteuid(), dir)
		}
		return nil
	}

	var u *user.User
	var err error
	if owner != nil && owner.Uid != 0 && cl.initialized() {
		u, err = user.LookupId(strconv.Itoa(int(owner.Uid)))
		if err != nil {
			return fmt.Errorf("db: cluster %s is owned by uid %d, which has no passwd entry: %w", dir, owner.Uid, err)
		}
	} else {
		u, err = user.Lookup(localSuperuser)
		if err != nil {
			return fmt.Errorf("db: running as root, and initdb/postgres refuse to run as root, so the cluster must run as the %q OS user, which does not exist (%v); run scripts/setup.sh (it installs Debian's postgresql package, which creates it)",
				localSuperuser, err)
		}
	}
	cl.runAs = u
	cl.uid, _ = strconv.Atoi(u.Uid)
	cl.gid, _ = strconv.Atoi(u.Gid)
	return cl.checkTraversable()
}

// checkTraversable fails early, with a useful message, when the run-as user
// cannot reach the data directory (e.g. a checkout under /root, mode 0700);
// otherwise initdb would fail with a bare "Permission denied".
func (cl *localCluster) checkTraversable() error {
	if d := localTraversable(filepath.Dir(cl.cfg.Dir), cl.runAs); d != "" {
		return fmt.Errorf("db: the %q OS user (which must run the local cluster because we are root) cannot traverse %s; run `chmod o+x %s` or move the checkout, or set DATABASE_URL",
			cl.runAs.Username, d, d)
	}
	return nil
}

func (cl *localCluster) chown(path string) error {
	if cl.runAs == nil {
		return nil
	}
	if err := os.Chown(path, cl.uid, cl.gid); err != nil {
		return fmt.Errorf("db: chown %s to %s: %w", path, cl.runAs.Username, err)
	}
	return nil
}

// command builds an exec.Cmd for one of the PostgreSQL binaries, run as
// cl.runAs when set.
func (cl *localCluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	path := filepath.Join(cl.bin, name)
	var cmd *exec.Cmd
	// runuser is made for root dropping privileges (no PAM password
	// prompt, no tty needed); su is the fallback where it is missing.
	runuser := localLookPath("runuser", "/usr/sbin/runuser", "/sbin/runuser")
	switch {
	case cl.runAs == nil:
		cmd = exec.CommandContext(ctx, path, args...)
	case runuser != "":
		cmd = exec.CommandContext(ctx, runuser, append([]string{"-u", cl.runAs.Username, "--", path}, args...)...)
	default:
		su := localLookPath("su", "/bin/su", "/usr/bin/su")
		if su == "" {
			su = "su" // exec reports the failure with a clear "not found"
		}
		quoted := []string{localShellQuote(path)}
		for _, a := range args {
			quoted = append(quoted, localShellQuote(a))
		}
		cmd = exec.CommandContext(ctx, su, cl.runAs.Username, "-s", "/bin/sh", "-c", strings.Join(quoted, " "))
	}
	// The run-as user may not be able to enter our working directory
	// (/root is 0700), which makes PostgreSQL tools warn or fail.
	cmd.Dir = "/"
	// PG* variables (PGDATA, PGPORT, PGHOST...) from the caller's shell
	// would override our explicit settings in surprising ways.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// A new session keeps the postmaster that pg_ctl spawns out of our
	// process group, so a Ctrl-C aimed at `make run`/`go test` does not kill
	// the shared cluster mid-flight for every other process using it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// pg_ctl redirects the postmaster's output to the log file, but guard
	// against a descendant holding our output pipe open forever.
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

func (cl *localCluster) run(ctx context.Context, name string, args ...string) error {
	cmd := cl.command(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if msg != "" {
			msg = "\n" + msg
		}
		return fmt.Errorf("db: %s %s failed: %w%s", name, strings.Join(args, " "), err, msg)
	}
	return nil
}

func localLookPath(names ...string) string {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

func localShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (cl *localCluster) initialized() bool {
	_, err := os.Stat(filepath.Join(cl.cfg.Dir, "PG_VERSION"))
	return err == nil
}

// initdb creates the cluster in a sibling directory and renames it into
// place, so a crash mid-initdb never leaves a half-built Dir that later runs
// would mistake for a cluster (PG_VERSION in Dir means initdb completed).
func (cl *localCluster) initdb(ctx context.Context) error {
	dir := cl.cfg.Dir
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("db: %s exists and is not empty but is not a PostgreSQL data directory (no PG_VERSION); remove it to let EnsureLocal create a cluster there", dir)
	}
	tmp := dir + ".initdb"
	if err := os.RemoveAll(tmp); err != nil { // leftover of a crashed run; we hold the lock
		return fmt.Errorf("db: removing %s: %w", tmp, err)
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return fmt.Errorf("db: creating %s: %w", tmp, err)
	}
	if err := cl.chown(tmp); err != nil {
		return err
	}
	as := ""
	if cl.runAs != nil {
		as = " as OS user " + cl.runAs.Username
	}
	cl.logf("initializing cluster with %s%s", cl.bin, as)
	// The default locale comes from the environment, which on fresh
	// machines is often unset or names a locale that is not generated.
	// C.UTF-8 ships with glibc (always present on Debian 12) and gives
	// Unicode-aware upper()/lower(); collation C keeps text ordering
	// byte-wise, fast, and immune to glibc collation changes corrupting
	// indexes across OS upgrades.
	locale := "C"
	if localLocaleAvailable("C.utf8") {
		locale = "C.UTF-8"
	}
	err := cl.run(ctx, "initdb", "-D", tmp,
		"--auth=trust", "-U", localSuperuser, "--encoding=UTF8",
		"--locale="+locale, "--lc-collate=C", "--no-instructions")
	if err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	// Rename replaces an empty Dir (e.g. one created by hand) atomically.
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("db: moving new cluster into %s: %w", dir, err)
	}
	// Hook our settings file into postgresql.conf once; later lines win,
	// and postgresql.auto.conf (ALTER SYSTEM) still overrides both.
	f, err := os.OpenFile(filepath.Join(dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("db: %w", err)
	}
	_, err = fmt.Fprintf(f, "\n# Settings managed by Spillway (db/local.go).\ninclude '%s'\n", localConfFile)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("db: appending to postgresql.conf: %w", err)
	}
	return nil
}

func localLocaleAvailable(name string) bool {
	for _, dir := range []string{"/usr/lib/locale", "/usr/lib64/locale"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	return false
}

// confContent renders the settings we own. It is rewritten on every
// EnsureLocal so changing the port (or these defaults) takes effect.
func (cl *localCluster) confContent() string {
	var b strings.Builder
	b.WriteString("# Managed by Spillway (db/local.go) and rewritten by EnsureLocal; edits are lost.\n")
	b.WriteString("listen_addresses = '127.0.0.1'\n")
	fmt.Fprintf(&b, "port = %d\n", cl.cfg.Port)
	// The socket lives in the data dir, not /var/run/postgresql, so no
	// system directory permissions are involved. sun_path holds at most
	// 107 bytes; with a longer path we go TCP-only rather than fail.
	sock := filepath.Join(cl.cfg.Dir, ".s.PGSQL."+strconv.Itoa(cl.cfg.Port))
	if len(sock) <= 107 && !strings.ContainsAny(cl.cfg.Dir, `",`) {
		fmt.Fprintf(&b, "unix_socket_directories = '\"%s\"'\n", strings.ReplaceAll(cl.cfg.Dir, "'", "''"))
	} else {
		b.WriteString("unix_socket_directories = ''\n")
	}
	fmt.Fprintf(&b, "max_connections = %d\n", cl.cfg.MaxConnections)
	b.WriteString("shared_buffers = 128MB\n")
	// Durability is the product: never trade fsync for speed here, so bugs
	// that only show with real fsync semantics show locally too.
	b.WriteString("fsync = on\n")
	b.WriteString("synchronous_commit = on\n")
	b.WriteString("full_page_writes = on\n")
	// Same rendering of timestamps on every developer machine and CI.
	b.WriteString("timezone = 'UTC'\n")
	b.WriteString("log_timezone = 'UTC'\n")
	return b.String()
}

func (cl *localCluster) writeConf() (changed bool, err error) {
	path := filepath.Join(cl.cfg.Dir, localConfFile)
	want := cl.confContent()
	if have, err := os.ReadFile(path); err == nil && string(have) == want {
		return false, nil
	}
	if err := os.WriteFile(path, []byte(want), 0o600); err != nil {
		return false, fmt.Errorf("db: writing %s: %w", path, err)
	}
	return true, cl.chown(path)
}

type localPostmaster struct {
	pid     int
	port    int
	running bool // a live postmaster for this data dir
	stale   bool // postmaster.pid exists but nothing of ours is running
}

// postmaster inspects postmaster.pid. pg_ctl status only checks that the PID
// is alive, which lies after a crash or container restart when the PID has
// been reused by an unrelated process (often a go test binary). So we also
// require the process's cwd to be the data dir: the postmaster chdirs there.
func (c LocalConfig) postmaster() localPostmaster {
	b, err := os.ReadFile(filepath.Join(c.Dir, "postmaster.pid"))
	if err != nil {
		return localPostmaster{}
	}
	lines := strings.Split(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || pid <= 0 {
		return localPostmaster{stale: true}
	}
	pm := localPostmaster{pid: pid, stale: true}
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
func (cl *localCluster) clearStale(pid int) {
	cl.logf("removing stale postmaster.pid (pid %d is not this cluster's postmaster)", pid)
	_ = os.Remove(filepath.Join(cl.cfg.Dir, "postmaster.pid"))
	socks, _ := filepath.Glob(filepath.Join(cl.cfg.Dir, ".s.PGSQL.*"))
	for _, s := range socks {
		_ = os.Remove(s)
	}
}

func (cl *localCluster) pgctl(ctx context.Context, action string, extra ...string) error {
	args := []string{action, "-D", cl.cfg.Dir, "-w", "-t", strconv.Itoa(localStartTimeout)}
	if action == "start" || action == "restart" {
		args = append(args, "-l", filepath.Join(cl.cfg.Dir, localLogFile))
	}
	args = append(args, extra...)
	if err := cl.run(ctx, "pg_ctl", args...); err != nil {
		if tail := cl.logTail(); tail != "" {
			return fmt.Errorf("%w\nlast lines of %s:\n%s", err, filepath.Join(cl.cfg.Dir, localLogFile), tail)
		}
		return err
	}
	return nil
}

func (cl *localCluster) start(ctx context.Context) error {
	// Check the port first: postgres would only say "could not bind" deep
	// in its log, and this is by far the most common start failure.
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cl.cfg.Port)))
	if err != nil {
		return fmt.Errorf("db: cannot start local postgres for %s: port %d on 127.0.0.1 is already in use by another process (%v); stop that process, pick another port, or set DATABASE_URL",
			cl.cfg.Dir, cl.cfg.Port, err)
	}
	_ = ln.Close()

	logPath := filepath.Join(cl.cfg.Dir, localLogFile)
	if fi, err := os.Stat(logPath); err == nil && fi.Size() > localMaxLog {
		_ = os.Rename(logPath, logPath+".old")
	}
	if err := cl.pgctl(ctx, "start"); err != nil {
		return err
	}
	cl.logf("started on 127.0.0.1:%d (log: %s)", cl.cfg.Port, logPath)
	return nil
}

func (cl *localCluster) logTail() string {
	f, err := os.Open(filepath.Join(cl.cfg.Dir, localLogFile))
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

func (cl *localCluster) ensureDatabase(ctx context.Context) error {
	conn, err := localConnect(ctx, cl.cfg.urlFor("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", cl.cfg.Database).Scan(&exists); err != nil {
		return fmt.Errorf("db: checking for database %q: %w", cl.cfg.Database, err)
	}
	if exists {
		return nil
	}
	if err := localCreateDB(ctx, conn, cl.cfg.Database); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: created meanwhile
			return nil
		}
		return err
	}
	cl.logf("created database %q", cl.cfg.Database)
	return nil
}

// localConnect connects, retrying briefly while the server is still coming
// up (e.g. started by hand moments ago, or finishing crash recovery).
func localConnect(ctx context.Context, connURL string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(connURL)
	if err != nil {
		return nil, fmt.Errorf("db: parsing database URL: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			return conn, nil
		}
		var pgErr *pgconn.PgError
		retry := errors.Is(err, syscall.ECONNREFUSED) ||
			(errors.As(err, &pgErr) && pgErr.Code == "57P03") // cannot_connect_now
		if !retry || time.Now().After(deadline) {
			return nil, fmt.Errorf("db: connecting to %s:%d: %w", cfg.Host, cfg.Port, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("db: connecting to %s:%d: %w", cfg.Host, cfg.Port, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// localCreateDB runs CREATE DATABASE, retrying while the template database
// is briefly in use (55006), which happens when many test binaries create
// databases at the same moment.
func localCreateDB(ctx context.Context, conn *pgx.Conn, name string) error {
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := conn.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55006" || time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("db: creating database %q: %w", name, err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("db: creating database %q: %w", name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func localCheckDBName(name string) error {
	if name == "" {
		return errors.New("db: database name is empty")
	}
	// PostgreSQL silently truncates longer identifiers, which would make the
	// returned URL point at a database that does not exist.
	if len(name) > 63 {
		return fmt.Errorf("db: database name %q is longer than 63 bytes", name)
	}
	if strings.ContainsRune(name, 0) {
		return fmt.Errorf("db: database name %q contains a NUL byte", name)
	}
	return nil
}

// localDBURL returns baseURL with its database replaced by name, along
// with baseURL's own database. Only URL-form connection strings are
// supported because keyword/value DSNs cannot be rewritten reliably.
func localDBURL(baseURL, name string) (newURL, baseDB string, err error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", "", errors.New("db: base URL must be a postgres:// URL")
	}
	baseDB = strings.TrimPrefix(u.Path, "/")
	// RawPath keeps a "/" inside the name escaped rather than splitting it.
	u.Path, u.RawPath = "/"+name, "/"+url.PathEscape(name)
	return u.String(), baseDB, nil
}

// CreateTestDatabase creates a fresh, empty database called name on the
// server baseURL points at and returns a URL for it (baseURL with the
// database replaced). It is meant for throwaway test databases: a database
// with the same name left over from an earlier, crashed run is dropped
// first, so use names unique to the test run or package.
func CreateTestDatabase(ctx context.Context, baseURL, name string) (string, error) {
	if err := localCheckDBName(name); err != nil {
		return "", err
	}
	newURL, baseDB, err := localDBURL(baseURL, name)
	if err != nil {
		return "", err
	}
	if name == baseDB {
		return "", fmt.Errorf("db: refusing to re-create %q: it is the database of the base URL", name)
	}
	conn, err := localConnect(ctx, baseURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := localDropDB(ctx, conn, name); err != nil {
		return "", err
	}
	if err := localCreateDB(ctx, conn, name); err != nil {
		return "", err
	}
	return newURL, nil
}

// DropDatabase drops database name on the server baseURL points at, if it
// exists, terminating any sessions still connected to it (WITH (FORCE)) so
// a leaked pool in a failed test cannot block cleanup.
func DropDatabase(ctx context.Context, baseURL, name string) error {
	if err := localCheckDBName(name); err != nil {
		return err
	}
	_, baseDB, err := localDBURL(baseURL, name)
	if err != nil {
		return err
	}
	if name == baseDB {
		return fmt.Errorf("db: cannot drop %q through a connection to that same database", name)
	}
	conn, err := localConnect(ctx, baseURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return localDropDB(ctx, conn, name)
}

func localDropDB(ctx context.Context, conn *pgx.Conn, name string) error {
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("db: dropping database %q: %w", name, err)
	}
	return nil
}
