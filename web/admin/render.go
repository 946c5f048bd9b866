package admin

import (
	"bytes"
	"net/http"
	"net/url"
	"time"

	"github.com/a-h/templ"

	"github.com/spillway/spillway/app"
)

// Codes only the admin UI uses, beside app's.
const (
	codeForbidden = "forbidden"
	codeMethod    = "method_not_allowed"
)

// statusFor maps an error's code to its HTTP status: the one place that
// does so for the admin UI.
func statusFor(err error) int {
	switch app.ErrorCode(err) {
	case app.EINVALID, app.EBADREQUEST:
		return http.StatusUnprocessableEntity
	case app.ENOTFOUND:
		return http.StatusNotFound
	case app.ECONFLICT:
		return http.StatusConflict
	case app.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case codeForbidden:
		return http.StatusForbidden
	case codeMethod:
		return http.StatusMethodNotAllowed
	}
	return http.StatusInternalServerError
}

// page is what the layout needs to know about the page it frames.
type page struct {
	Title     string
	Nav       string
	Base      string
	User      *app.AdminUser
	Flash     string
	Live      int // seconds between live refreshes; 0: none
	Now       time.Time
	RequestID string
}

func (p page) CanAct() bool { return p.User != nil && p.User.Role.CanAct() }

func (p page) URL(path string) templ.SafeURL { return templ.URL(p.Base + path) }

func (s *server) page(r *http.Request, title, nav string) page {
	return page{Title: title, Nav: nav, Base: s.base, User: userFrom(r.Context()), Now: s.now()}
}

// render writes a component with status, buffering it so a failure part
// way renders the error page instead of half a page.
func (s *server) render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	var buf bytes.Buffer
	if err := c.Render(r.Context(), &buf); err != nil {
		s.log.Error("render admin page", "path", r.URL.Path, "error", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderError shows a readable error page; internal details go to the log
// only.
func (s *server) renderError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusFor(err)
	msg := app.ErrorMessage(err)
	if status == http.StatusInternalServerError {
		s.log.Error("admin", "method", r.Method, "path", r.URL.Path, "error", err)
		msg = "Something went wrong on our side. It has been logged; try again in a moment."
	}
	p := s.page(r, http.StatusText(status), "")
	p.RequestID = requestID(r.Context())
	s.render(w, r, status, errorPage(p, status, msg))
}

const flashCookie = "spillway_admin_flash"

// redirect answers a POST with 303 to a GET, carrying a one-time message.
func (s *server) redirect(w http.ResponseWriter, r *http.Request, to, flash string) {
	if flash != "" {
		http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: url.QueryEscape(flash), Path: s.base, MaxAge: 60,
			HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// takeFlash reads and clears the one-time message, if any. Live refreshes
// leave it for the page itself.
func (s *server) takeFlash(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(flashCookie)
	if err != nil || r.Header.Get("X-Live") != "" {
		return ""
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Path: s.base, MaxAge: -1, HttpOnly: true,
		Secure: s.secure, SameSite: http.SameSiteLaxMode})
	msg, _ := url.QueryUnescape(c.Value)
	return app.ClipText(msg, 300)
}

// actor is who makes the request, for the operator service's audit
// entries.
func (s *server) actor(r *http.Request) app.Actor {
	a := app.Actor{IP: s.clientIP(r), RequestID: requestID(r.Context())}
	if u := userFrom(r.Context()); u != nil {
		a.UserID, a.Email = u.ID, u.Email
	}
	return a
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
