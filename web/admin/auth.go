package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/spillway/spillway/app"
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

// handleSignIn checks a sign-in form (readForm has parsed it) through the
// operator service, which counts failed attempts, and sets the session
// cookie.
func (s *server) handleSignIn(w http.ResponseWriter, r *http.Request) {
	form := signInForm{Email: strings.TrimSpace(r.PostForm.Get("email")), Next: safeNext(s.base, r.PostForm.Get("next"))}
	in, err := s.operator.SignIn(r.Context(), app.SignInRequest{Email: form.Email, Password: r.PostForm.Get("password"),
		IP: s.clientIP(r), UserAgent: r.UserAgent(), RequestID: requestID(r.Context())})
	switch {
	case errors.Is(err, app.ErrSignInLimited):
		form.Error = fmt.Sprintf("Too many failed sign-ins. Wait %s and try again.", s.operator.SignInLimits().Window)
		s.render(w, r, http.StatusTooManyRequests, signInPage(s.page(r, "Sign in", ""), form))
		return
	case errors.Is(err, app.ErrWrongPassword):
		form.Error = "Wrong email or password."
		s.render(w, r, http.StatusUnauthorized, signInPage(s.page(r, "Sign in", ""), form))
		return
	case err != nil:
		s.renderError(w, r, err)
		return
	}
	http.SetCookie(w, s.cookie(in.Token, in.Expires))
	http.Redirect(w, r, form.Next, http.StatusSeeOther)
}

func (s *server) handleSignOut(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := s.operator.SignOut(r.Context(), s.actor(r), c.Value); err != nil {
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

// session returns the request's live session (app.Operator.Session), or
// an ENOTFOUND error.
func (s *server) session(r *http.Request) (*app.AdminSession, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, app.Errorf(app.ENOTFOUND, "no session cookie")
	}
	return s.operator.Session(r.Context(), c.Value)
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
