package localpg

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// confFile holds every setting we manage. It is included from
// postgresql.conf so that initdb's defaults stay untouched and our
// settings can be rewritten wholesale on each Ensure.
const confFile = "spillway.conf"

func (cl *cluster) initialized() bool {
	_, err := os.Stat(filepath.Join(cl.cfg.Dir, "PG_VERSION"))
	return err == nil
}

// initdb creates the cluster in a sibling directory and renames it into
// place, so a crash mid-initdb never leaves a half-built Dir that later runs
// would mistake for a cluster (PG_VERSION in Dir means initdb completed).
func (cl *cluster) initdb(ctx context.Context) error {
	dir := cl.cfg.Dir
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("db: %s exists and is not empty but is not a PostgreSQL data directory (no PG_VERSION); remove it to let localpg.Ensure create a cluster there", dir)
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
	if localeAvailable("C.utf8") {
		locale = "C.UTF-8"
	}
	err := cl.run(ctx, "initdb", "-D", tmp,
		"--auth=trust", "-U", superuser, "--encoding=UTF8",
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
	_, err = fmt.Fprintf(f, "\n# Settings managed by Spillway (db/localpg).\ninclude '%s'\n", confFile)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("db: appending to postgresql.conf: %w", err)
	}
	return nil
}

func localeAvailable(name string) bool {
	for _, dir := range []string{"/usr/lib/locale", "/usr/lib64/locale"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	return false
}

// confContent renders the settings we own. It is rewritten on every
// Ensure so changing the port (or these defaults) takes effect.
func (cl *cluster) confContent() string {
	var b strings.Builder
	// The header still names the file and function that wrote it before
	// this package existed: writeConf restarts a running server whenever
	// these bytes change, and renaming code is no reason to restart every
	// existing cluster (and drop the connections of whoever is using it).
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
	// Only when set, so an existing cluster's settings (and so whether
	// Ensure restarts it) stay as they were.
	if cl.cfg.Name != "" {
		fmt.Fprintf(&b, "cluster_name = '%s'\n", strings.ReplaceAll(cl.cfg.Name, "'", "''"))
	}
	return b.String()
}

func (cl *cluster) writeConf() (changed bool, err error) {
	path := filepath.Join(cl.cfg.Dir, confFile)
	want := cl.confContent()
	if have, err := os.ReadFile(path); err == nil && string(have) == want {
		return false, nil
	}
	if err := os.WriteFile(path, []byte(want), 0o600); err != nil {
		return false, fmt.Errorf("db: writing %s: %w", path, err)
	}
	return true, cl.chown(path)
}
