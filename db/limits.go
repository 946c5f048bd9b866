package db

import (
	"context"
	"fmt"
)

// ConnLimit is how many connections the server lets this role open to this
// database, and where the figure comes from.
type ConnLimit struct {
	Allowed        int
	MaxConnections int
	Reserved       int // slots kept for superusers (and, from Postgres 16, reserved roles)
	RoleLimit      int // -1: none
	DatabaseLimit  int // -1: none
}

// String explains the limit for a start-up error.
func (l ConnLimit) String() string {
	s := fmt.Sprintf("max_connections %d", l.MaxConnections)
	if l.Reserved > 0 {
		s += fmt.Sprintf(" minus %d reserved", l.Reserved)
	}
	if l.RoleLimit >= 0 {
		s += fmt.Sprintf(", role limit %d", l.RoleLimit)
	}
	if l.DatabaseLimit >= 0 {
		s += fmt.Sprintf(", database limit %d", l.DatabaseLimit)
	}
	return s
}

// ServerConnLimit reads the connection limits that apply to the current
// role and database. A superuser may use the reserved slots; anyone else
// may not.
func ServerConnLimit(ctx context.Context, q Querier) (ConnLimit, error) {
	var l ConnLimit
	var super bool
	err := q.QueryRow(ctx, `
		SELECT current_setting('max_connections')::int,
			current_setting('superuser_reserved_connections')::int
				+ coalesce(nullif(current_setting('reserved_connections', true), '')::int, 0),
			r.rolsuper, r.rolconnlimit, d.datconnlimit
		FROM pg_roles r, pg_database d
		WHERE r.rolname = current_user AND d.datname = current_database()`).
		Scan(&l.MaxConnections, &l.Reserved, &super, &l.RoleLimit, &l.DatabaseLimit)
	if err != nil {
		return l, fmt.Errorf("read connection limits: %w", err)
	}
	if super {
		l.Reserved = 0
	}
	l.Allowed = l.MaxConnections - l.Reserved
	for _, lim := range []int{l.RoleLimit, l.DatabaseLimit} {
		if lim >= 0 && lim < l.Allowed {
			l.Allowed = lim
		}
	}
	return l, nil
}

// ServerSettings is what a benchmark report says about the server.
type ServerSettings struct {
	Version           string
	Fsync             string
	SynchronousCommit string
}

// ReadServerSettings reads the server's version and durability settings.
func ReadServerSettings(ctx context.Context, q Querier) (ServerSettings, error) {
	var s ServerSettings
	err := q.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('fsync'),
		current_setting('synchronous_commit')`).Scan(&s.Version, &s.Fsync, &s.SynchronousCommit)
	if err != nil {
		return s, fmt.Errorf("read server settings: %w", err)
	}
	return s, nil
}
