package app

import (
	"crypto/sha256"
	"errors"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// Role is what an admin user may do. Viewers see everything; operators may
// also act (change jobs, queues and breakers).
type Role string

const (
	RoleViewer   Role = "viewer"
	RoleOperator Role = "operator"
)

// ParseRole accepts "viewer" or "operator".
func ParseRole(s string) (Role, error) {
	switch r := Role(strings.ToLower(strings.TrimSpace(s))); r {
	case RoleViewer, RoleOperator:
		return r, nil
	}
	return "", Errorf(EINVALID, "role must be viewer or operator, not %q", s)
}

// CanAct reports whether the role may change anything.
func (r Role) CanAct() bool { return r == RoleOperator }

// AdminUser is a person who may sign in to the admin UI.
type AdminUser struct {
	ID           int64
	Email        string
	PasswordHash string
	Role         Role
	CreatedAt    time.Time
	DisabledAt   *time.Time
}

// NormalizeEmail lower-cases and checks an admin's email address, so one
// person has one account however they type it.
func NormalizeEmail(s string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(s))
	if len(e) < 3 || len(e) > 254 {
		return "", FieldErrorf("email", "email must be 3 to 254 characters")
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" {
		return "", FieldErrorf("email", "email %q is not a plain address like ops@example.com", s)
	}
	return e, nil
}

// Password policy: long enough to resist guessing, short enough for
// bcrypt, which ignores bytes past 72.
const (
	MinPasswordLen   = 12
	MaxPasswordBytes = 72
)

// CheckPassword says what is wrong with a new password, if anything.
func CheckPassword(pw string) error {
	switch {
	case utf8.RuneCountInString(pw) < MinPasswordLen:
		return FieldErrorf("password", "password must be at least %d characters", MinPasswordLen)
	case len(pw) > MaxPasswordBytes:
		return FieldErrorf("password", "password must be at most %d bytes", MaxPasswordBytes)
	}
	return nil
}

// HashPassword checks pw against the policy and hashes it with bcrypt.
func HashPassword(pw string) (string, error) {
	if err := CheckPassword(pw); err != nil {
		return "", err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return "", err
	}
	return string(h), nil
}

// dummyHash is compared against when the email is unknown, so a wrong email
// takes as long as a wrong password and timing does not reveal accounts.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("spillway-no-such-user"), bcrypt.DefaultCost)

// PasswordMatches reports whether pw matches hash; an empty hash (no such
// user) costs the same time and never matches.
func PasswordMatches(hash, pw string) bool {
	if hash == "" {
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(pw))
		return false
	}
	err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw))
	if err != nil && !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
		return false
	}
	return err == nil
}

// SignInLimits bound failed sign-ins over Window: per email (guessing one
// account's password) and per client address (trying many accounts).
type SignInLimits struct {
	Window      time.Duration
	PerEmail    int
	PerAddress  int
	SessionLife time.Duration
}

// DefaultSignInLimits: five wrong passwords per account and twenty per
// address in 15 minutes; sessions last 12 hours.
func DefaultSignInLimits() SignInLimits {
	return SignInLimits{Window: 15 * time.Minute, PerEmail: 5, PerAddress: 20, SessionLife: 12 * time.Hour}
}

// DefaultSessionIdle is how long an unused session lasts when
// OperatorConfig.SessionIdle is zero (ADMIN_SESSION_IDLE's default).
const DefaultSessionIdle = 30 * time.Minute

// AdminSession is a signed-in user's session.
type AdminSession struct {
	User      AdminUser
	ExpiresAt time.Time
	LastSeen  time.Time
}

// NewSession is a session to store: only the SHA-256 of its token is kept.
type NewSession struct {
	TokenHash []byte
	UserID    int64
	IP        string
	UserAgent string
	Created   time.Time
	Expires   time.Time
}

// HashSessionToken is what is stored of a session's token, so a copy of
// the table signs nobody in.
func HashSessionToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}
