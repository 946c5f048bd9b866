package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

const adminUsage = `usage: spillway admin create -email EMAIL [-role operator|viewer] [-password-file FILE]

Creates an admin UI user, or resets the password and role of an existing one.
The password comes from -password-file, else from $ADMIN_PASSWORD; never from
the command line, where other users of the machine could read it.`

// runAdmin manages admin UI users.
func runAdmin(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprintln(stderr, adminUsage)
		return errors.New("usage: spillway admin create -email EMAIL")
	}
	fs := flag.NewFlagSet("admin create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "the user's email (required)")
	roleFlag := fs.String("role", string(app.RoleOperator), "operator (may act) or viewer (may look)")
	pwFile := fs.String("password-file", "", "file holding the password (default: $ADMIN_PASSWORD)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *email == "" {
		return errors.New("admin create: -email is required")
	}
	role, err := app.ParseRole(*roleFlag)
	if err != nil {
		return fmt.Errorf("admin create: -role: %s", app.ErrorMessage(err))
	}
	password := getenv("ADMIN_PASSWORD")
	if *pwFile != "" {
		b, err := os.ReadFile(*pwFile)
		if err != nil {
			return fmt.Errorf("admin create: -password-file: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	if password == "" {
		return errors.New("admin create: no password: set ADMIN_PASSWORD or pass -password-file")
	}
	if err := app.CheckPassword(password); err != nil {
		return fmt.Errorf("admin create: %s", app.ErrorMessage(err))
	}
	// The admin variables are the server's first admin; this command only
	// borrows the password, so the server's rule that both are set does
	// not apply here.
	cfg, err := app.LoadConfig(func(k string) string {
		if k == "ADMIN_EMAIL" || k == "ADMIN_PASSWORD" {
			return ""
		}
		return getenv(k)
	})
	if err != nil {
		return err
	}
	pool, err := openDatabase(ctx, cfg, getenv, stderr, db.PoolConfig{MaxConns: 2})
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := db.MigrateUp(ctx, pool, io.Discard); err != nil {
		return err
	}
	// Users are all this command manages, so the service needs no River.
	op, err := app.NewOperator(app.OperatorConfig{Store: db.NewStore(pool)})
	if err != nil {
		return err
	}
	e, err := op.CreateUser(ctx, app.Actor{Email: "cli"}, *email, password, role)
	if err != nil {
		return fmt.Errorf("admin create: %s", app.ErrorMessage(err))
	}
	fmt.Fprintf(stdout, "admin user %s (%s) ready; sign in at /admin/signin\n", e, role)
	return nil
}
