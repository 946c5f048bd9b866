package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

const sessionCookie = "spillway_admin_session"

type ctxKey int

const (
	userKey ctxKey = iota
	requestIDKey
)

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// userFrom returns the signed-in user of a request that passed
// requireSession.
func userFrom(ctx context.Context) *app.AdminUser {
	u, _ := ctx.Value(userKey).(*app.AdminUser)
	return u
}

// EnsureFirstAdmin creates an operator with this email and password unless
// a user with the email exists (so a restart never resets a password
// changed since). It is how ADMIN_EMAIL and ADMIN_PASSWORD take effect.
func EnsureFirstAdmin(ctx context.Context, pool *pgxpool.Pool, email, password string) error {
	e, err := app.NormalizeEmail(email)
	if err != nil {
		return fmt.Errorf("ADMIN_EMAIL: %s", app.ErrorMessage(err))
	}
	hash, err := app.HashPassword(password)
	if err != nil {
		return fmt.Errorf("ADMIN_PASSWORD: %s", app.ErrorMessage(err))
	}
	now := app.StorageTime(time.Now())
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	created, err := db.InsertAdminUserIfAbsent(ctx, tx, e, hash, app.RoleOperator, now)
	if err != nil {
		return err
	}
	if created {
		if err := db.InsertAudit(ctx, tx, db.AuditEntry{At: now, ActorEmail: "env", Action: "user.create",
			Target: "user " + e, After: jsonOf(map[string]string{"role": string(app.RoleOperator)}),
			Detail: "first admin from ADMIN_EMAIL"}); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// CreateUser creates a user, or resets the password and role of an
// existing one, with an audit entry naming actor. A reset ends every
// session the user had, in the same transaction: whoever knew the old
// password, or holds a cookie from it, must sign in with the new one.
func CreateUser(ctx context.Context, pool *pgxpool.Pool, email, password string, role app.Role, actor string) (string, error) {
	e, err := app.NormalizeEmail(email)
	if err != nil {
		return "", err
	}
	hash, err := app.HashPassword(password)
	if err != nil {
		return "", err
	}
	now := app.StorageTime(time.Now())
	tx, err := pool.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	var before *app.AdminUser
	if u, err := db.GetAdminUserByEmail(ctx, tx, e); err == nil {
		before = u
	} else if app.ErrorCode(err) != app.ENOTFOUND {
		return "", err
	}
	if _, err := db.UpsertAdminUser(ctx, tx, e, hash, role, now); err != nil {
		return "", err
	}
	entry := db.AuditEntry{At: now, ActorEmail: actor, Action: "user.create", Target: "user " + e,
		After: jsonOf(map[string]string{"role": string(role)})}
	if before != nil {
		ended, err := db.DeleteUserAdminSessions(ctx, tx, before.ID)
		if err != nil {
			return "", err
		}
		entry.Action = "user.reset"
		entry.Before = jsonOf(map[string]string{"role": string(before.Role)})
		entry.Detail = fmt.Sprintf("password replaced; %d %s signed out", ended, plural(ended, "session", "sessions"))
	}
	if err := db.InsertAudit(ctx, tx, entry); err != nil {
		return "", err
	}
	return e, tx.Commit(ctx)
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func (s *server) clientIP(r *http.Request) string { return clientIP(r, s.cfg.TrustedProxies) }

// clientIP is the address a request is attributed to: what sign-in limits
// count and sessions and audit entries record.
//
// It is the connection's address unless that is a trusted proxy. Then it
// is the right-most X-Forwarded-For entry that is not itself a trusted
// proxy: each trusted proxy appends the address it heard from, so entries
// are believed walking right to left only as far as the first address
// nobody trusted vouches for; everything left of it was written by the
// client and could be anything (forging it would escape the per-address
// limit). If every entry is trusted the left-most is the client. An
// unreadable entry on the walk means the chain cannot be followed, so the
// connection's address is used: at worst clients behind a proxy share its
// limit, and none escapes it. Entries are addresses, optionally with a
// port ("192.0.2.1:4711", "[2001:db8::1]:80"), as some proxies write them.
func clientIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			return peer.String()
		}
		client = a
		if !isTrusted(a, trusted) {
			break
		}
	}
	return client.String()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHop reads one X-Forwarded-For entry: an address, perhaps with a
// port.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

func (s *server) handleSignInForm(w http.ResponseWriter, r *http.Request) {
	if _, err := s.session(r); err == nil {
		http.Redirect(w, r, s.base+"/", http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, signInPage(s.page(r, "Sign in", ""), signInForm{Next: safeNext(s.base, r.URL.Query().Get("next"))}))
}

// handleSignIn checks a sign-in form (readForm has parsed it). At most
// Limits.PerEmail wrong passwords per account and Limits.PerAddress per
// client address are checked in a window, counted across instances and
// exactly, even when guesses arrive at once: db.ClaimSignIn admits and
// records each attempt as failed under locks before its password is
// compared. Refused attempts are not recorded, so the window runs from the
// last guess that was checked.
func (s *server) handleSignIn(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	form := signInForm{Email: strings.TrimSpace(r.PostForm.Get("email")), Next: safeNext(s.base, r.PostForm.Get("next"))}
	password := r.PostForm.Get("password")
	email := app.ClipText(strings.ToLower(form.Email), 254)
	ip := s.clientIP(r)
	now := s.now()
	lim := s.cfg.Limits
	attempt, err := db.ClaimSignIn(ctx, s.cfg.Pool, email, ip, lim, now)
	if errors.Is(err, db.ErrSignInLimited) {
		form.Error = fmt.Sprintf("Too many failed sign-ins. Wait %s and try again.", lim.Window)
		s.render(w, r, http.StatusTooManyRequests, signInPage(s.page(r, "Sign in", ""), form))
		return
	}
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	var hash string
	u, err := db.GetAdminUserByEmail(ctx, s.cfg.Pool, email)
	switch {
	case err == nil && u.DisabledAt == nil:
		hash = u.PasswordHash
	case err != nil && app.ErrorCode(err) != app.ENOTFOUND:
		s.renderError(w, r, err)
		return
	}
	// An unknown or disabled account compares against a dummy hash, so
	// a wrong email takes as long as a wrong password.
	if !app.PasswordMatches(hash, password) {
		form.Error = "Wrong email or password."
		s.render(w, r, http.StatusUnauthorized, signInPage(s.page(r, "Sign in", ""), form))
		return
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	token := base64.RawURLEncoding.EncodeToString(raw[:])
	expires := now.Add(lim.SessionLife)
	err = s.inTx(ctx, func(tx pgxTx) error {
		if err := db.MarkSignInOK(ctx, tx, attempt); err != nil {
			return err
		}
		if err := db.CreateAdminSession(ctx, tx, hashToken(token), u.ID, ip, r.UserAgent(), now, expires); err != nil {
			return err
		}
		if err := db.PruneAdminSessions(ctx, tx, now, now.Add(-s.idle)); err != nil {
			return err
		}
		return db.InsertAudit(ctx, tx, s.audit(r, u, "signin", "user "+u.Email, nil, nil, ""))
	})
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	http.SetCookie(w, s.cookie(token, expires))
	http.Redirect(w, r, form.Next, http.StatusSeeOther)
}

func (s *server) handleSignOut(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if c, err := r.Cookie(sessionCookie); err == nil {
		u := userFrom(ctx)
		err := s.inTx(ctx, func(tx pgxTx) error {
			if err := db.DeleteAdminSession(ctx, tx, hashToken(c.Value)); err != nil {
				return err
			}
			return db.InsertAudit(ctx, tx, s.audit(r, u, "signout", "user "+u.Email, nil, nil, ""))
		})
		if err != nil {
			s.renderError(w, r, err)
			return
		}
	}
	c := s.cookie("", time.Unix(0, 0))
	c.MaxAge = -1
	http.SetCookie(w, c)
	http.Redirect(w, r, s.base+"/signin", http.StatusSeeOther)
}

func (s *server) cookie(value string, expires time.Time) *http.Cookie {
	return &http.Cookie{Name: sessionCookie, Value: value, Path: s.base, Expires: expires,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode}
}

// errNoSession is session's answer when the request has no live session:
// ENOTFOUND, as a read of a row that does not exist answers.
var errNoSession = app.Errorf(app.ENOTFOUND, "no session")

// session returns the request's live session, or errNoSession. A
// session unused for longer than the idle time is refused and deleted.
// Use is recorded in last_seen_at at most every touchEvery (a tenth of the
// idle time, a minute at most), so last_seen_at lags the last use by less
// than that and a session used at least every nine tenths of the idle time
// never expires.
func (s *server) session(r *http.Request) (*db.AdminSession, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || len(c.Value) != 43 { // 32 bytes, base64url without padding
		return nil, errNoSession
	}
	ctx := r.Context()
	token := hashToken(c.Value)
	now := s.now()
	sess, err := db.GetAdminSession(ctx, s.cfg.Pool, token, now)
	if err != nil {
		return nil, err
	}
	if idleSince := now.Add(-s.idle); sess.LastSeen.Before(idleSince) {
		if err := db.DeleteIdleAdminSession(ctx, s.cfg.Pool, token, idleSince); err != nil {
			return nil, err
		}
		return nil, errNoSession
	}
	if now.Sub(sess.LastSeen) >= s.touchEvery {
		if err := db.TouchAdminSession(ctx, s.cfg.Pool, token, now); err != nil {
			s.log.Warn("touch admin session", "error", err)
		}
	}
	return sess, nil
}

// requireSession lets signed-in users through and sends everyone else to
// sign in, remembering where they were going.
func (s *server) requireSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.session(r)
		if app.ErrorCode(err) == app.ENOTFOUND {
			target := s.base + "/signin"
			if r.Method == http.MethodGet {
				target += "?next=" + urlQueryEscape(r.URL.RequestURI())
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		if err != nil {
			s.renderError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey, &sess.User)))
	})
}

// requireOperator refuses changes from anyone who is not an operator. The
// pages hide the buttons from viewers too, but this is the check that
// counts.
func (s *server) requireOperator(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u := userFrom(r.Context()); u == nil || !u.Role.CanAct() {
			s.renderError(w, r, &app.Error{Code: codeForbidden,
				Message: "Your role (viewer) may look at everything but change nothing. Ask an operator."})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// safeNext keeps a post-sign-in redirect inside the admin UI.
func safeNext(base, next string) string {
	if strings.HasPrefix(next, base+"/") && !strings.HasPrefix(next, "//") && !strings.ContainsAny(next, "\\\r\n") {
		return next
	}
	return base + "/"
}
