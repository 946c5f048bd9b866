package localpg

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// command builds an exec.Cmd for one of the PostgreSQL binaries, run as
// cl.runAs when set.
func (cl *cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return commandAs(ctx, cl.runAs, filepath.Join(cl.bin, name), args...)
}

// commandAs builds an exec.Cmd for the program at path, run as runAs
// when set (root dropping to the postgres OS user: initdb, postgres and
// pgbouncer all refuse to run as root).
func commandAs(ctx context.Context, runAs *user.User, path string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	// runuser is made for root dropping privileges (no PAM password
	// prompt, no tty needed); su is the fallback where it is missing.
	runuser := lookPath("runuser", "/usr/sbin/runuser", "/sbin/runuser")
	switch {
	case runAs == nil:
		cmd = exec.CommandContext(ctx, path, args...)
	case runuser != "":
		cmd = exec.CommandContext(ctx, runuser, append([]string{"-u", runAs.Username, "--", path}, args...)...)
	default:
		su := lookPath("su", "/bin/su", "/usr/bin/su")
		if su == "" {
			su = "su" // exec reports the failure with a clear "not found"
		}
		quoted := []string{shellQuote(path)}
		for _, a := range args {
			quoted = append(quoted, shellQuote(a))
		}
		cmd = exec.CommandContext(ctx, su, runAs.Username, "-s", "/bin/sh", "-c", strings.Join(quoted, " "))
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

func (cl *cluster) run(ctx context.Context, name string, args ...string) error {
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

func lookPath(names ...string) string {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
