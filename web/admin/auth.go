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
	now := app.StorageClock(nil)()
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
// existing one, with an audit entry naming actor.
func CreateUser(ctx context.Context, pool *pgxpool.Pool, email, password string, role app.Role, actor string) (string, error) {
	e, err := app.NormalizeEmail(email)
	if err != nil {
		return "", err
	}
	hash, err := app.HashPassword(password)
	if err != nil {
		return "", err
	}
	now := app.StorageClock(nil)()
	tx, err := pool.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	var before *app.AdminUser
	if u, err := db.GetAdminUserByEmail(ctx, tx, e); err == nil {
		before = u
	} else if !errors.Is(err, db.ErrNotFound) {
		return "", err
	}
	if _, err := db.UpsertAdminUser(ctx, tx, e, hash, role, now); err != nil {
		return "", err
	}
	entry := db.AuditEntry{At: now, ActorEmail: actor, Action: "user.create", Target: "user " + e,
		After: jsonOf(map[string]string{"role": string(role)})}
	if before != nil {
		entry.Action = "user.reset"
		entry.Before = jsonOf(map[string]string{"role": string(before.Role)})
		entry.Detail = "password replaced"
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

// clientIP is the connection's address. Forwarded headers are not trusted:
// anyone could set them to escape the per-address sign-in limit.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *server) handleSignInForm(w http.ResponseWriter, r *http.Request) {
	if _, err := s.session(r); err == nil {
		http.Redirect(w, r, s.base+"/", http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, signInPage(s.page(r, "Sign in", ""), signInForm{Next: safeNext(s.base, r.URL.Query().Get("next"))}))
}

func (s *server) handleSignIn(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		s.renderError(w, r, app.Errorf(app.EINVALID, "The sign-in form could not be read."))
		return
	}
	form := signInForm{Email: strings.TrimSpace(r.PostForm.Get("email")), Next: safeNext(s.base, r.PostForm.Get("next"))}
	password := r.PostForm.Get("password")
	email := app.ClipText(strings.ToLower(form.Email), 254)
	ip := clientIP(r)
	now := s.now()
	lim := s.cfg.Limits
	byEmail, byIP, err := db.CountSignInFailures(ctx, s.cfg.Pool, email, ip, now.Add(-lim.Window))
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	if byEmail >= lim.PerEmail || byIP >= lim.PerAddress {
		form.Error = fmt.Sprintf("Too many failed sign-ins. Wait %s and try again.", lim.Window)
		s.render(w, r, http.StatusTooManyRequests, signInPage(s.page(r, "Sign in", ""), form))
		return
	}
	var hash string
	u, err := db.GetAdminUserByEmail(ctx, s.cfg.Pool, email)
	switch {
	case err == nil && u.DisabledAt == nil:
		hash = u.PasswordHash
	case err != nil && !errors.Is(err, db.ErrNotFound):
		s.renderError(w, r, err)
		return
	}
	ok := app.PasswordMatches(hash, password)
	if err := db.RecordSignIn(ctx, s.cfg.Pool, email, ip, ok, now); err != nil {
		s.renderError(w, r, err)
		return
	}
	if !ok {
		form.Error = "Wrong email or password."
		s.render(w, r, http.StatusUnauthorized, signInPage(s.page(r, "Sign in", ""), form))
		return
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	token := base64.RawURLEncoding.EncodeToString(raw[:])
	expires := now.Add(lim.SessionLife)
	err = s.inTx(ctx, func(tx pgxTx) error {
		if err := db.CreateAdminSession(ctx, tx, hashToken(token), u.ID, ip, r.UserAgent(), now, expires); err != nil {
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
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode}
}

// session returns the request's live session, or db.ErrNotFound.
func (s *server) session(r *http.Request) (*db.AdminSession, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || len(c.Value) != 43 { // 32 bytes, base64url without padding
		return nil, db.ErrNotFound
	}
	sess, err := db.GetAdminSession(r.Context(), s.cfg.Pool, hashToken(c.Value), s.now())
	if err != nil {
		return nil, err
	}
	if now := s.now(); now.Sub(sess.LastSeen) > time.Minute {
		if err := db.TouchAdminSession(r.Context(), s.cfg.Pool, hashToken(c.Value), now); err != nil {
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
		if errors.Is(err, db.ErrNotFound) {
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
