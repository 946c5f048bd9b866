package localpg

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// resolveUser decides which OS user owns and runs the cluster. initdb and
// postgres refuse to run as root, so as root we use the owner of an existing
// cluster (whoever created it) or else the "postgres" user.
func (cl *cluster) resolveUser() error {
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
		u, err = user.Lookup(superuser)
		if err != nil {
			return fmt.Errorf("db: running as root, and initdb/postgres refuse to run as root, so the cluster must run as the %q OS user, which does not exist (%v); run scripts/setup.sh (it installs Debian's postgresql package, which creates it)",
				superuser, err)
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
func (cl *cluster) checkTraversable() error {
	if d := untraversable(filepath.Dir(cl.cfg.Dir), cl.runAs); d != "" {
		return fmt.Errorf("db: the %q OS user (which must run the local cluster because we are root) cannot traverse %s; run `chmod o+x %s` or move the checkout, or set DATABASE_URL",
			cl.runAs.Username, d, d)
	}
	return nil
}

func (cl *cluster) chown(path string) error {
	if cl.runAs == nil {
		return nil
	}
	if err := os.Chown(path, cl.uid, cl.gid); err != nil {
		return fmt.Errorf("db: chown %s to %s: %w", path, cl.runAs.Username, err)
	}
	return nil
}

// ensureParent creates the directory holding Dir and its lock file.
// It is made 0755 explicitly (not via umask) because when we run as root the
// postgres user must be able to traverse it.
func ensureParent(dir string) error {
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

// relocate keeps the cluster usable when we are root and the checkout
// sits where the postgres OS user cannot reach (a clone under /root, mode
// 0700, as CI may make): the cluster then lives under the system temp dir,
// keyed by the path it stands in for, so every caller still agrees on one
// cluster per checkout.
func relocate(dir string) string {
	if os.Geteuid() != 0 {
		return dir
	}
	u, err := user.Lookup(superuser)
	if err != nil {
		return dir
	}
	if untraversable(filepath.Dir(dir), u) == "" {
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

// untraversable returns the first directory from dir up to / that u
// cannot traverse, or "" when u reaches dir.
func untraversable(dir string, u *user.User) string {
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
