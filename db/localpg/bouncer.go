package localpg

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// BouncerConfig describes a PgBouncer in transaction mode in front of a
// local cluster: the pooler a deployment of many instances puts between
// them and Postgres, run here so the tests meet the real one (Debian's
// pgbouncer, which scripts/setup.sh installs).
type BouncerConfig struct {
	// Dir holds its configuration and log; it is created. As root it
	// runs as the postgres OS user, who must traverse Dir's parents.
	Dir string
	// Port is where it listens on 127.0.0.1; ServerPort is the
	// cluster's port on 127.0.0.1.
	Port, ServerPort int
	// Users may log in (no password: the cluster trusts loopback, and
	// so does the pooler); PgBouncer's trust still wants them listed.
	Users []string
	// PoolSize is the server connections per database and user
	// (default_pool_size), and so at most what the pooler opens for the
	// instances; zero: 20.
	PoolSize int
	// MaxClients is how many client connections it accepts
	// (max_client_conn); zero: 1000.
	MaxClients int
}

// Bouncer is a running PgBouncer, a child of this process.
type Bouncer struct {
	cfg  BouncerConfig
	cmd  *exec.Cmd
	done chan struct{}
	log  *syncBuffer
	err  error // set before done closes
}

// StartBouncer starts PgBouncer with cfg and returns once it accepts
// connections and reaches the server.
func StartBouncer(ctx context.Context, cfg BouncerConfig) (*Bouncer, error) {
	if cfg.Dir == "" || cfg.Port == 0 || cfg.ServerPort == 0 || len(cfg.Users) == 0 {
		return nil, errors.New("db: BouncerConfig needs Dir, Port, ServerPort and Users")
	}
	cfg.PoolSize = cmp.Or(cfg.PoolSize, 20)
	cfg.MaxClients = cmp.Or(cfg.MaxClients, 1000)
	bin := lookPath("pgbouncer", "/usr/sbin/pgbouncer")
	if bin == "" {
		return nil, errors.New("db: pgbouncer not found on PATH or in /usr/sbin; run scripts/setup.sh (it installs Debian's pgbouncer)")
	}
	var runAs *user.User
	if os.Geteuid() == 0 {
		// PgBouncer refuses to run as root, as postgres does.
		u, err := user.Lookup(superuser)
		if err != nil {
			return nil, fmt.Errorf("db: running as root, pgbouncer must run as the %q OS user: %w", superuser, err)
		}
		if d := untraversable(cfg.Dir, u); d != "" {
			return nil, fmt.Errorf("db: the %q OS user cannot traverse %s, where pgbouncer's files go", u.Username, d)
		}
		runAs = u
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("db: creating %s: %w", cfg.Dir, err)
	}
	var users strings.Builder
	for _, u := range cfg.Users {
		fmt.Fprintf(&users, "%q \"\"\n", u)
	}
	ini := filepath.Join(cfg.Dir, "pgbouncer.ini")
	for name, content := range map[string]string{ini: cfg.ini(), filepath.Join(cfg.Dir, "users.txt"): users.String()} {
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			return nil, fmt.Errorf("db: writing %s: %w", name, err)
		}
	}
	b := &Bouncer{cfg: cfg, done: make(chan struct{}), log: &syncBuffer{}}
	// Not CommandContext's ctx: the pooler outlives the start-up call.
	b.cmd = commandAs(context.Background(), runAs, bin, ini)
	b.cmd.Stdout, b.cmd.Stderr = b.log, b.log
	if err := b.cmd.Start(); err != nil {
		return nil, fmt.Errorf("db: starting pgbouncer: %w", err)
	}
	go func() {
		b.err = b.cmd.Wait()
		close(b.done)
	}()
	if err := b.waitReady(ctx); err != nil {
		_ = b.Stop()
		return nil, err
	}
	return b, nil
}

// ini is PgBouncer's configuration: every database of the cluster, in
// transaction mode, on loopback only.
func (c BouncerConfig) ini() string {
	return fmt.Sprintf(`[databases]
* = host=127.0.0.1 port=%d

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
admin_users = %s
pool_mode = transaction
default_pool_size = %d
max_db_connections = %d
max_client_conn = %d
server_reset_query =
; pgx sends none of these, but psql and other clients may.
ignore_startup_parameters = extra_float_digits,options
log_connections = 0
log_disconnections = 0
`, c.ServerPort, c.Port, filepath.Join(c.Dir, "users.txt"), superuser, c.PoolSize, c.PoolSize, c.MaxClients)
}

// URL is the pooler's URL for database as role.
func (b *Bouncer) URL(role, database string) string {
	u := url.URL{Scheme: "postgres", User: url.User(role), Host: "127.0.0.1:" + strconv.Itoa(b.cfg.Port),
		Path: "/" + database, RawQuery: "sslmode=disable"}
	return u.String()
}

// waitReady waits until a query passes through the pooler to the server.
func (b *Bouncer) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	target := b.URL(superuser, "postgres")
	for {
		conn, err := connect(ctx, target)
		if err == nil {
			// The simple protocol: what any client may send through
			// a transaction-mode pooler.
			_, err = conn.Exec(ctx, "SELECT 1")
			conn.Close(ctx)
			if err == nil {
				return nil
			}
		}
		select {
		case <-b.done:
			return fmt.Errorf("db: pgbouncer exited: %v\n%s", b.err, b.log.String())
		case <-ctx.Done():
			return fmt.Errorf("db: pgbouncer on port %d not ready: %v\n%s", b.cfg.Port, err, b.log.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Log is what PgBouncer printed.
func (b *Bouncer) Log() string { return b.log.String() }

// Stop shuts PgBouncer down at once (SIGTERM: its immediate shutdown) and
// waits for it to exit.
func (b *Bouncer) Stop() error {
	select {
	case <-b.done:
		return nil
	default:
	}
	// runuser passes the signal on to pgbouncer; the session is its own
	// (Setsid), so signal the whole group.
	_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-b.done
	}
	return nil
}

// syncBuffer is a bytes.Buffer the child's output and the caller may use
// at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
