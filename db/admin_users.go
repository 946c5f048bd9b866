package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

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
		return nil, app.Errorf(app.ENOTFOUND, "no such user")
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

// RecordSignIn records one finished sign-in attempt and drops those older
// than a day, which no limit looks at. The sign-in form goes through
// ClaimSignIn instead, which checks the limits in the same transaction.
func RecordSignIn(ctx context.Context, q Querier, email, ip string, ok bool, now time.Time) error {
	if _, err := insertSignIn(ctx, q, email, ip, ok, now); err != nil {
		return err
	}
	return pruneSignIns(ctx, q, now.Add(-24*time.Hour))
}

// ClaimSignIn admits one sign-in attempt if the limits allow it, recording
// it as failed before anyone checks the password; the caller marks it with
// MarkSignInOK if the password turns out right. It returns the attempt's
// id, or app.ErrSignInLimited.
//
// Counting and recording happen in one transaction under advisory locks
// on the email and on the address, so attempts for either, from any
// instance, take their turn: with N already counted, exactly limit-N more
// are admitted however many arrive at once. Recording first keeps the
// locks for a few statements, not for the bcrypt comparison, and an
// attempt whose check never finishes (a crash) still counts against the
// guesser. The email lock is always taken before the address lock, so two
// attempts can never wait on each other.
func ClaimSignIn(ctx context.Context, pool *pgxpool.Pool, email, ip string, lim app.SignInLimits, now time.Time) (int64, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	id, err := claimSignInTx(ctx, tx, email, ip, lim, now)
	if err != nil {
		return 0, err
	}
	return id, tx.Commit(ctx)
}

func claimSignInTx(ctx context.Context, tx pgx.Tx, email, ip string, lim app.SignInLimits, now time.Time) (int64, error) {
	// Separate key spaces for emails and addresses, so an email never
	// shares a lock with an address that happens to be spelled the same.
	for _, key := range []string{"admin_signin_email:" + email, "admin_signin_ip:" + ip} {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, key); err != nil {
			return 0, fmt.Errorf("lock sign-in limit: %w", err)
		}
	}
	byEmail, byIP, err := CountSignInFailures(ctx, tx, email, ip, now.Add(-lim.Window))
	if err != nil {
		return 0, err
	}
	if byEmail >= lim.PerEmail || byIP >= lim.PerAddress {
		return 0, app.ErrSignInLimited
	}
	id, err := insertSignIn(ctx, tx, email, ip, false, now)
	if err != nil {
		return 0, err
	}
	// Keep a day, or the window if longer: older attempts count for
	// nothing.
	if err := pruneSignIns(ctx, tx, now.Add(-max(24*time.Hour, lim.Window))); err != nil {
		return 0, err
	}
	return id, nil
}

// MarkSignInOK records that the attempt ClaimSignIn admitted had the right
// password, so it no longer counts as a failure.
func MarkSignInOK(ctx context.Context, q Querier, id int64) error {
	if _, err := q.Exec(ctx, `UPDATE admin_login_attempts SET ok = true WHERE id = $1`, id); err != nil {
		return fmt.Errorf("mark sign-in ok: %w", err)
	}
	return nil
}

func insertSignIn(ctx context.Context, q Querier, email, ip string, ok bool, now time.Time) (int64, error) {
	var id int64
	if err := q.QueryRow(ctx, `INSERT INTO admin_login_attempts (email, ip, ok, at) VALUES ($1, $2, $3, $4) RETURNING id`,
		email, ip, ok, now).Scan(&id); err != nil {
		return 0, fmt.Errorf("record sign-in: %w", err)
	}
	return id, nil
}

func pruneSignIns(ctx context.Context, q Querier, before time.Time) error {
	if _, err := q.Exec(ctx, `DELETE FROM admin_login_attempts WHERE at < $1`, before); err != nil {
		return fmt.Errorf("prune sign-ins: %w", err)
	}
	return nil
}

// CreateAdminSession stores a session under the SHA-256 of its token.
func CreateAdminSession(ctx context.Context, q Querier, s app.NewSession) error {
	_, err := q.Exec(ctx, `
		INSERT INTO admin_sessions (token_hash, user_id, created_at, expires_at, last_seen_at, ip, user_agent)
		VALUES ($1, $2, $3, $4, $3, $5, $6)`, s.TokenHash, s.UserID, s.Created, s.Expires, s.IP, app.ClipText(s.UserAgent, 512))
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// PruneAdminSessions forgets sessions that can no longer be used: expired
// by now, or last seen before idleSince. Sign-in is rare: a good moment.
func PruneAdminSessions(ctx context.Context, q Querier, now, idleSince time.Time) error {
	if _, err := q.Exec(ctx, `DELETE FROM admin_sessions WHERE expires_at < $1 OR last_seen_at < $2`, now, idleSince); err != nil {
		return fmt.Errorf("prune sessions: %w", err)
	}
	return nil
}

// GetAdminSession returns the live session with that token hash and its
// (enabled) user; ENOTFOUND when there is none.
func GetAdminSession(ctx context.Context, q Querier, tokenHash []byte, now time.Time) (*app.AdminSession, error) {
	var s app.AdminSession
	err := q.QueryRow(ctx, `
		SELECT `+adminUserColumns+`, s.expires_at, s.last_seen_at
		FROM admin_sessions s JOIN admin_users u ON u.id = s.user_id
		WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL`, tokenHash, now).
		Scan(&s.User.ID, &s.User.Email, &s.User.PasswordHash, &s.User.Role, &s.User.CreatedAt, &s.User.DisabledAt,
			&s.ExpiresAt, &s.LastSeen)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, app.Errorf(app.ENOTFOUND, "no such session")
	}
	if err != nil {
		return nil, fmt.Errorf("get session: %w", err)
	}
	return &s, nil
}

// TouchAdminSession records that the session was used. It never moves
// last_seen_at back, should another instance's clock run ahead.
func TouchAdminSession(ctx context.Context, q Querier, tokenHash []byte, now time.Time) error {
	_, err := q.Exec(ctx, `UPDATE admin_sessions SET last_seen_at = greatest(last_seen_at, $2) WHERE token_hash = $1`,
		tokenHash, now)
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// DeleteAdminSession ends a session.
func DeleteAdminSession(ctx context.Context, q Querier, tokenHash []byte) error {
	if _, err := q.Exec(ctx, `DELETE FROM admin_sessions WHERE token_hash = $1`, tokenHash); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// DeleteIdleAdminSession ends a session last seen before idleSince; one
// used since (by another request) is left alone.
func DeleteIdleAdminSession(ctx context.Context, q Querier, tokenHash []byte, idleSince time.Time) error {
	_, err := q.Exec(ctx, `DELETE FROM admin_sessions WHERE token_hash = $1 AND last_seen_at < $2`, tokenHash, idleSince)
	if err != nil {
		return fmt.Errorf("end idle session: %w", err)
	}
	return nil
}

// DeleteUserAdminSessions ends every session of a user and says how many
// there were.
func DeleteUserAdminSessions(ctx context.Context, q Querier, userID int64) (int64, error) {
	tag, err := q.Exec(ctx, `DELETE FROM admin_sessions WHERE user_id = $1`, userID)
	if err != nil {
		return 0, fmt.Errorf("end user's sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}
