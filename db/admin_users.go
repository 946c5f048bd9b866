package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spillway/spillway/app"
)

// UpsertAdminUser creates the user, or replaces the password and role of
// the one with that email.
func UpsertAdminUser(ctx context.Context, q Querier, email, hash string, role app.Role, now time.Time) (int64, error) {
	var id int64
	err := q.QueryRow(ctx, `
		INSERT INTO admin_users (email, password_hash, role, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $4)
		ON CONFLICT (email) DO UPDATE SET password_hash = excluded.password_hash, role = excluded.role,
			updated_at = excluded.updated_at, disabled_at = NULL
		RETURNING id`, email, hash, role, now).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("upsert admin user: %w", err)
	}
	return id, nil
}

// InsertAdminUserIfAbsent creates the user unless one with that email
// exists; false means it did.
func InsertAdminUserIfAbsent(ctx context.Context, q Querier, email, hash string, role app.Role, now time.Time) (bool, error) {
	tag, err := q.Exec(ctx, `
		INSERT INTO admin_users (email, password_hash, role, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $4) ON CONFLICT (email) DO NOTHING`, email, hash, role, now)
	if err != nil {
		return false, fmt.Errorf("insert admin user: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

const adminUserColumns = `u.id, u.email, u.password_hash, u.role, u.created_at, u.disabled_at`

func scanAdminUser(row pgx.Row) (*app.AdminUser, error) {
	var u app.AdminUser
	err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &u.Role, &u.CreatedAt, &u.DisabledAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read admin user: %w", err)
	}
	return &u, nil
}

// GetAdminUserByEmail reads a user by normalized email.
func GetAdminUserByEmail(ctx context.Context, q Querier, email string) (*app.AdminUser, error) {
	return scanAdminUser(q.QueryRow(ctx, `SELECT `+adminUserColumns+` FROM admin_users u WHERE u.email = $1`, email))
}

// CountSignInFailures counts failed sign-ins since a moment, for one email
// and for one client address.
func CountSignInFailures(ctx context.Context, q Querier, email, ip string, since time.Time) (byEmail, byIP int, err error) {
	err = q.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM admin_login_attempts WHERE email = $1 AND NOT ok AND at >= $3),
		       (SELECT count(*) FROM admin_login_attempts WHERE ip = $2 AND NOT ok AND at >= $3)`,
		email, ip, since).Scan(&byEmail, &byIP)
	if err != nil {
		return 0, 0, fmt.Errorf("count sign-in failures: %w", err)
	}
	return byEmail, byIP, nil
}

// RecordSignIn records one sign-in attempt and drops those older than a
// day, which no limit looks at.
func RecordSignIn(ctx context.Context, q Querier, email, ip string, ok bool, now time.Time) error {
	if _, err := q.Exec(ctx, `INSERT INTO admin_login_attempts (email, ip, ok, at) VALUES ($1, $2, $3, $4)`,
		email, ip, ok, now); err != nil {
		return fmt.Errorf("record sign-in: %w", err)
	}
	if _, err := q.Exec(ctx, `DELETE FROM admin_login_attempts WHERE at < $1`, now.Add(-24*time.Hour)); err != nil {
		return fmt.Errorf("prune sign-ins: %w", err)
	}
	return nil
}

// AdminSession is a signed-in user's session.
type AdminSession struct {
	User      app.AdminUser
	ExpiresAt time.Time
	LastSeen  time.Time
}

// CreateAdminSession stores a session under the SHA-256 of its token.
func CreateAdminSession(ctx context.Context, q Querier, tokenHash []byte, userID int64, ip, userAgent string, now, expires time.Time) error {
	userAgent = app.ClipText(userAgent, 512)
	_, err := q.Exec(ctx, `
		INSERT INTO admin_sessions (token_hash, user_id, created_at, expires_at, last_seen_at, ip, user_agent)
		VALUES ($1, $2, $3, $4, $3, $5, $6)`, tokenHash, userID, now, expires, ip, userAgent)
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	// Sign-in is rare: a good moment to forget expired sessions.
	if _, err := q.Exec(ctx, `DELETE FROM admin_sessions WHERE expires_at < $1`, now); err != nil {
		return fmt.Errorf("prune sessions: %w", err)
	}
	return nil
}

// GetAdminSession returns the live session with that token hash and its
// (enabled) user; ErrNotFound when there is none.
func GetAdminSession(ctx context.Context, q Querier, tokenHash []byte, now time.Time) (*AdminSession, error) {
	var s AdminSession
	err := q.QueryRow(ctx, `
		SELECT `+adminUserColumns+`, s.expires_at, s.last_seen_at
		FROM admin_sessions s JOIN admin_users u ON u.id = s.user_id
		WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL`, tokenHash, now).
		Scan(&s.User.ID, &s.User.Email, &s.User.PasswordHash, &s.User.Role, &s.User.CreatedAt, &s.User.DisabledAt,
			&s.ExpiresAt, &s.LastSeen)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get session: %w", err)
	}
	return &s, nil
}

// TouchAdminSession records that the session was used.
func TouchAdminSession(ctx context.Context, q Querier, tokenHash []byte, now time.Time) error {
	_, err := q.Exec(ctx, `UPDATE admin_sessions SET last_seen_at = $2 WHERE token_hash = $1`, tokenHash, now)
	return err
}

// DeleteAdminSession ends a session.
func DeleteAdminSession(ctx context.Context, q Querier, tokenHash []byte) error {
	_, err := q.Exec(ctx, `DELETE FROM admin_sessions WHERE token_hash = $1`, tokenHash)
	return err
}
