package apptest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Tool finds a program a test needs that scripts/setup.sh installs: $env
// when set, then <repo>/.data/bin/name, then PATH. Missing is a failure,
// not a skip: a test skipped for want of its tool checks nothing, and
// `make test` would pass without it.
func Tool(t testing.TB, name, env string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v; run scripts/setup.sh or fix the variable", env, p, err)
		}
		return p
	}
	if root, err := RepoRoot(); err == nil {
		p := filepath.Join(root, ".data", "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	t.Fatalf("%s not found (looked at $%s, <repo>/.data/bin/%s and PATH): run scripts/setup.sh", name, env, name)
	return ""
}

// RepoRoot is the nearest directory above the working directory with a go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}
