package localpg

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
)

// A cluster with Config.StandbyOf set is a streaming standby: created by a
// base backup of the primary instead of initdb, read-only until promoted.
// The tests use a pair to lose a primary for real: a primary that waits
// for the standby on every commit (synchronous_standby_names naming the
// standby's Config.Name, set by the caller with ALTER SYSTEM once the
// standby streams), Crash to lose it, Promote to fail over.

// basebackup creates the cluster from a base backup of the primary on
// 127.0.0.1:StandbyOf, written with -R (standby.signal and
// primary_conninfo). Like initdb it builds in a sibling directory and
// renames it into place, so a crash midway leaves no half-made Dir.
func (cl *cluster) basebackup(ctx context.Context) error {
	dir := cl.cfg.Dir
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("db: %s exists and is not empty but is not a PostgreSQL data directory; remove it to let localpg.Ensure make a standby there", dir)
	}
	tmp := dir + ".basebackup"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("db: removing %s: %w", tmp, err)
	}
	// Postgres insists on a data directory only its owner can enter.
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return fmt.Errorf("db: creating %s: %w", tmp, err)
	}
	if err := cl.chown(tmp); err != nil {
		return err
	}
	cl.logf("making a standby of 127.0.0.1:%d", cl.cfg.StandbyOf)
	if err := cl.run(ctx, "pg_basebackup", "-D", tmp, "-h", "127.0.0.1", "-p", strconv.Itoa(cl.cfg.StandbyOf),
		"-U", superuser, "-R", "-X", "stream", "--checkpoint=fast"); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("db: moving the standby into %s: %w", dir, err)
	}
	return nil
}

// Promote makes the standby in cfg.Dir a primary and waits until it
// accepts writes.
func Promote(ctx context.Context, cfg Config, log io.Writer) error {
	return withCluster(ctx, cfg, log, func(cl *cluster) error { return cl.pgctl(ctx, "promote") })
}

// Crash stops the cluster in cfg.Dir the way a lost machine does: an
// immediate shutdown, every connection cut, no checkpoint; a restart would
// recover from the WAL.
func Crash(ctx context.Context, cfg Config, log io.Writer) error {
	return withCluster(ctx, cfg, log, func(cl *cluster) error { return cl.pgctl(ctx, "stop", "-m", "immediate") })
}

// withCluster runs fn on the cluster in cfg.Dir under its lock.
func withCluster(ctx context.Context, cfg Config, log io.Writer, fn func(*cluster) error) error {
	cfg, err := cfg.normalize()
	if err != nil {
		return err
	}
	unlock, err := lock(ctx, cfg.Dir, log)
	if err != nil {
		return err
	}
	defer unlock()
	cl, err := newCluster(cfg, log)
	if err != nil {
		return err
	}
	return fn(cl)
}
