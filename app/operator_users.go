package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// UserStore is the storage users, sign-ins and sessions need.
type UserStore interface {
	AdminUserByEmail(ctx context.Context, email string) (*AdminUser, error)
	AdminUserByEmailTx(ctx context.Context, tx pgx.Tx, email string) (*AdminUser, error)
	// UpsertAdminUserTx creates the user, or replaces the password and
	// role of the one with that email.
	UpsertAdminUserTx(ctx context.Context, tx pgx.Tx, email, hash string, role Role, now time.Time) (int64, error)
	// InsertAdminUserIfAbsentTx creates the user unless one with that
	// email exists; false means it did.
	InsertAdminUserIfAbsentTx(ctx context.Context, tx pgx.Tx, email, hash string, role Role, now time.Time) (bool, error)
	// DeleteUserSessionsTx ends every session of a user and says how many
	// there were.
	DeleteUserSessionsTx(ctx context.Context, tx pgx.Tx, userID int64) (int64, error)

	// ClaimSignIn admits one sign-in attempt if lim allows it, recording
	// it as failed, in a transaction of its own; ErrSignInLimited if not.
	ClaimSignIn(ctx context.Context, email, ip string, lim SignInLimits, now time.Time) (int64, error)
	// MarkSignInOKTx records that a claimed attempt had the right password.
	MarkSignInOKTx(ctx context.Context, tx pgx.Tx, id int64) error
	CreateSessionTx(ctx context.Context, tx pgx.Tx, s NewSession) error
	// PruneSessionsTx forgets sessions expired by now or last seen before
	// idleSince.
	PruneSessionsTx(ctx context.Context, tx pgx.Tx, now, idleSince time.Time) error
	DeleteSessionTx(ctx context.Context, tx pgx.Tx, tokenHash []byte) error
	// Session returns the live session with that token hash and its
	// (enabled) user; ENOTFOUND when there is none.
	Session(ctx context.Context, tokenHash []byte, now time.Time) (*AdminSession, error)
	// DeleteIdleSession ends a session last seen before idleSince.
	DeleteIdleSession(ctx context.Context, tokenHash []byte, idleSince time.Time) error
	// TouchSession records that the session was used, never moving
	// last_seen_at back.
	TouchSession(ctx context.Context, tokenHash []byte, now time.Time) error
}

// ErrSignInLimited is SignIn's answer when the email or the client
// address has used up its failed sign-ins for the window.
var ErrSignInLimited = errors.New("too many failed sign-ins")

// ErrWrongPassword is SignIn's answer to a wrong email or password; it
// does not say which.
var ErrWrongPassword = errors.New("wrong email or password")

// errNoSession is the answer for a token that opens no live session.
var errNoSession = Errorf(ENOTFOUND, "no such session")

// EnsureFirstAdmin creates an operator with this email and password unless
// a user with the email exists (so a restart never resets a password
// changed since). It is how ADMIN_EMAIL and ADMIN_PASSWORD take effect;
// the error names the variable at fault.
func (o *Operator) EnsureFirstAdmin(ctx context.Context, email, password string) error {
	e, err := NormalizeEmail(email)
	if err != nil {
		return fmt.Errorf("ADMIN_EMAIL: %s", ErrorMessage(err))
	}
	hash, err := HashPassword(password)
	if err != nil {
		return fmt.Errorf("ADMIN_PASSWORD: %s", ErrorMessage(err))
	}
	now := o.cfg.Now()
	return o.inTx(ctx, func(tx pgx.Tx) error {
		created, err := o.cfg.Store.InsertAdminUserIfAbsentTx(ctx, tx, e, hash, RoleOperator, now)
		if err != nil || !created {
			return err
		}
		return o.cfg.Store.InsertAuditTx(ctx, tx, o.audit(Actor{Email: "env"}, "user.create", "user "+e, nil,
			map[string]string{"role": string(RoleOperator)}, "first admin from ADMIN_EMAIL", now))
	})
}

// CreateUser creates a user, or resets the password and role of an
// existing one, and returns the normalized email. A reset ends every
// session the user had, in the same transaction: whoever knew the old
// password, or holds a cookie from it, must sign in with the new one.
func (o *Operator) CreateUser(ctx context.Context, actor Actor, email, password string, role Role) (string, error) {
	e, err := NormalizeEmail(email)
	if err != nil {
		return "", err
	}
	if _, err := ParseRole(string(role)); err != nil {
		return "", err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return "", err
	}
	now := o.cfg.Now()
	return e, o.inTx(ctx, func(tx pgx.Tx) error {
		before, err := o.cfg.Store.AdminUserByEmailTx(ctx, tx, e)
		if ErrorCode(err) == ENOTFOUND {
			before, err = nil, nil
		}
		if err != nil {
			return err
		}
		if _, err := o.cfg.Store.UpsertAdminUserTx(ctx, tx, e, hash, role, now); err != nil {
			return err
		}
		entry := o.audit(actor, "user.create", "user "+e, nil, map[string]string{"role": string(role)}, "", now)
		if before != nil {
			ended, err := o.cfg.Store.DeleteUserSessionsTx(ctx, tx, before.ID)
			if err != nil {
				return err
			}
			entry.Action = "user.reset"
			entry.Before = jsonOf(map[string]string{"role": string(before.Role)})
			sessions := "sessions"
			if ended == 1 {
				sessions = "session"
			}
			entry.Detail = fmt.Sprintf("password replaced; %d %s signed out", ended, sessions)
		}
		return o.cfg.Store.InsertAuditTx(ctx, tx, entry)
	})
}

// SignInLimits are the limits SignIn applies.
func (o *Operator) SignInLimits() SignInLimits { return o.cfg.Limits }

// SignInRequest is a sign-in form and where it came from.
type SignInRequest struct {
	Email     string
	Password  string
	IP        string // the client's address, as sign-in limits count it
	UserAgent string
	RequestID string
}

// SignedIn is a new session: its token (for the cookie; only its hash is
// stored), when it expires, and whose it is.
type SignedIn struct {
	Token   string
	Expires time.Time
	User    *AdminUser
}

// SignIn checks an email and password and opens a session. At most
// Limits.PerEmail wrong passwords per account and Limits.PerAddress per
// client address are checked in a window, counted across instances and
// exactly, even when guesses arrive at once: ClaimSignIn admits and
// records each attempt as failed under locks before its password is
// compared. Refused attempts are not recorded, so the window runs from
// the last guess that was checked. It answers ErrSignInLimited or
// ErrWrongPassword when it signs nobody in.
func (o *Operator) SignIn(ctx context.Context, req SignInRequest) (*SignedIn, error) {
	email := ClipText(strings.ToLower(strings.TrimSpace(req.Email)), 254)
	now := o.cfg.Now()
	lim := o.cfg.Limits
	attempt, err := o.cfg.Store.ClaimSignIn(ctx, email, req.IP, lim, now)
	if err != nil {
		return nil, err
	}
	var hash string
	u, err := o.cfg.Store.AdminUserByEmail(ctx, email)
	switch {
	case err == nil && u.DisabledAt == nil:
		hash = u.PasswordHash
	case err != nil && ErrorCode(err) != ENOTFOUND:
		return nil, err
	}
	// An unknown or disabled account compares against a dummy hash, so
	// a wrong email takes as long as a wrong password.
	if !PasswordMatches(hash, req.Password) {
		return nil, ErrWrongPassword
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	in := &SignedIn{Token: base64.RawURLEncoding.EncodeToString(raw[:]), Expires: now.Add(lim.SessionLife), User: u}
	actor := Actor{UserID: u.ID, Email: u.Email, IP: req.IP, RequestID: req.RequestID}
	err = o.inTx(ctx, func(tx pgx.Tx) error {
		if err := o.cfg.Store.MarkSignInOKTx(ctx, tx, attempt); err != nil {
			return err
		}
		s := NewSession{TokenHash: HashSessionToken(in.Token), UserID: u.ID, IP: req.IP, UserAgent: req.UserAgent,
			Created: now, Expires: in.Expires}
		if err := o.cfg.Store.CreateSessionTx(ctx, tx, s); err != nil {
			return err
		}
		// Sign-in is rare: a good moment to forget sessions nobody can use.
		if err := o.cfg.Store.PruneSessionsTx(ctx, tx, now, now.Add(-o.idle)); err != nil {
			return err
		}
		return o.cfg.Store.InsertAuditTx(ctx, tx, o.audit(actor, "signin", "user "+u.Email, nil, nil, "", now))
	})
	if err != nil {
		return nil, err
	}
	return in, nil
}

// SignOut ends the session with this token; actor is its user.
func (o *Operator) SignOut(ctx context.Context, actor Actor, token string) error {
	return o.inTx(ctx, func(tx pgx.Tx) error {
		if err := o.cfg.Store.DeleteSessionTx(ctx, tx, HashSessionToken(token)); err != nil {
			return err
		}
		return o.cfg.Store.InsertAuditTx(ctx, tx, o.audit(actor, "signout", "user "+actor.Email, nil, nil, "", o.cfg.Now()))
	})
}

// sessionTokenLen is a token's length: 32 bytes, base64url without padding.
const sessionTokenLen = 43

// Session returns the live session a token opens, or an ENOTFOUND error.
// A session unused for longer than SessionIdle is refused and deleted.
// Use is recorded in last_seen_at at most every touchEvery (a tenth of the
// idle time, a minute at most), so last_seen_at lags the last use by less
// than that and a session used at least every nine tenths of the idle time
// never expires.
func (o *Operator) Session(ctx context.Context, token string) (*AdminSession, error) {
	if len(token) != sessionTokenLen {
		return nil, errNoSession
	}
	hash := HashSessionToken(token)
	now := o.cfg.Now()
	sess, err := o.cfg.Store.Session(ctx, hash, now)
	if err != nil {
		return nil, err
	}
	if idleSince := now.Add(-o.idle); sess.LastSeen.Before(idleSince) {
		if err := o.cfg.Store.DeleteIdleSession(ctx, hash, idleSince); err != nil {
			return nil, err
		}
		return nil, errNoSession
	}
	if now.Sub(sess.LastSeen) >= o.touchEvery {
		if err := o.cfg.Store.TouchSession(ctx, hash, now); err != nil {
			o.cfg.Logger.Warn("touch admin session", "error", err)
		}
	}
	return sess, nil
}
