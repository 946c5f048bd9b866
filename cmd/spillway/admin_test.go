package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spillway/spillway/db/dbtest"
)

func TestAdminCreate(t *testing.T) {
	t.Parallel()
	pool, url := dbtest.NewWithURL(t)
	env := map[string]string{"DATABASE_URL": url, "ADMIN_PASSWORD": "a long enough password"}
	getenv := func(k string) string { return env[k] }
	ctx := context.Background()
	var out, errb bytes.Buffer
	if err := runAdmin(ctx, []string{"create", "-email", "Ops@Example.com"}, getenv, &out, &errb); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "ops@example.com (operator)") {
		t.Fatalf("output %q", out.String())
	}
	// Again, as a viewer, with the password from a file: a reset.
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("another long password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := runAdmin(ctx, []string{"create", "-email", "ops@example.com", "-role", "viewer", "-password-file", pw}, getenv, &out, &errb); err != nil {
		t.Fatal(err)
	}
	var role string
	var audits int
	if err := pool.QueryRow(ctx, `SELECT role, (SELECT count(*) FROM admin_audit_log WHERE actor_email = 'cli')
		FROM admin_users WHERE email = 'ops@example.com'`).Scan(&role, &audits); err != nil {
		t.Fatal(err)
	}
	if role != "viewer" || audits != 2 {
		t.Fatalf("role %s, %d audit entries", role, audits)
	}
	for _, args := range [][]string{{}, {"create"}, {"create", "-email", "x@example.com", "-role", "root"}} {
		if err := runAdmin(ctx, args, getenv, &out, &errb); err == nil {
			t.Errorf("%v succeeded", args)
		}
	}
	env["ADMIN_PASSWORD"] = "short"
	if err := runAdmin(ctx, []string{"create", "-email", "x@example.com"}, getenv, &out, &errb); err == nil ||
		!strings.Contains(err.Error(), "at least 12") {
		t.Errorf("short password: %v", err)
	}
}
