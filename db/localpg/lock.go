package localpg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// lock takes an exclusive flock on <dir>.lock, polling so that ctx can
// cancel the wait (a blocking flock cannot be interrupted). flock locks
// belong to the open file description, so this serializes goroutines in one
// process as well as separate processes.
func lock(ctx context.Context, dir string, log io.Writer) (func(), error) {
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
