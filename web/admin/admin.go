// Package admin is Spillway's operator UI under /admin: an overview of each
// dependency's mode and the queue, River's jobs with their operations,
// circuit breaker control and the audit log. Pages are server-rendered templ
// components that work without JavaScript (forms, POST then a 303 to a
// GET); a small vendored script refreshes live pages as an enhancement.
//
// Every request but sign-in needs a session stored in Postgres; every
// change needs the operator role, is checked on the server, and writes an
// audit entry, in the change's own transaction where the change is ours.
// Cross-origin unsafe requests are refused by http.CrossOriginProtection.
package admin

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

// Config wires the admin UI.
type Config struct {
	Pool *pgxpool.Pool
	// River runs job actions (JobRetryTx, JobCancelTx, QueuePauseTx) in
	// our transactions; an insert-only client is enough.
	River *river.Client[pgx.Tx]
	// Breakers is this instance's breakers; forcing one goes through it so
	// every instance hears of it at once.
	Breakers *app.Breakers
	Logger   *slog.Logger
	Now      func() time.Time
	// SecureCookies marks the session cookie Secure; false only for plain
	// HTTP on localhost.
	SecureCookies bool
	// PublicURL is the service's public base URL (PUBLIC_URL). When its
	// scheme is https the cookies are Secure whatever SecureCookies says:
	// behind a TLS-terminating proxy the listener may be loopback while
	// browsers speak https. Empty leaves SecureCookies alone.
	PublicURL string
	// TrustedProxies are the addresses of the reverse proxies in front of
	// this service. A request from one of them is attributed (sign-in
	// limits, sessions, audit) to the address its X-Forwarded-For names;
	// see clientIP. Empty: forwarded headers are ignored.
	TrustedProxies []netip.Prefix
	// SessionIdle ends a session not used for this long; zero means
	// DefaultSessionIdle.
	SessionIdle time.Duration
	// BasePath is where the handler is mounted; "/admin" when empty.
	BasePath string
	// Instance names this process in breaker history; "admin" when empty.
	Instance string
	// Limits bound sign-in attempts and session life; zero means
	// app.DefaultSignInLimits.
	Limits app.SignInLimits
	// Channels are the configured notification channels: an operation an
	// operator cancels is announced on them like any other ending.
	Channels map[app.Channel]bool
	// ReconcileAfter is how long an operation may stay unresolved before
	// the overview flags it; zero means 30 minutes.
	ReconcileAfter time.Duration
	// OrphanRefund says whether the orphan sweep refunds what it finds.
	OrphanRefund bool
	// Provider answers the lookups an operator's cancel or retry makes
	// before it could lose a charge; nil refuses those that need one.
	Provider app.PaymentProvider
	// GatedQueues maps a queue to the dependency whose breaker pauses and
	// resumes it (jobs.QueueGate). Such a queue is not paused by hand: the
	// gate would undo it within a second; forcing the breaker is how.
	GatedQueues map[string]string
}

// DefaultSessionIdle is how long an unused session lasts when
// Config.SessionIdle is zero (ADMIN_SESSION_IDLE's default).
const DefaultSessionIdle = 30 * time.Minute

//go:embed static
var static embed.FS

type server struct {
	cfg      Config
	operator *app.Operator
	breakers *db.Store
	now      func() time.Time
	log      *slog.Logger
	base     string
	// secure marks cookies Secure: SecureCookies or an https PublicURL.
	secure bool
	// idle ends unused sessions; touchEvery is how stale last_seen_at may
	// get before a request refreshes it (see session).
	idle, touchEvery time.Duration
}

// New returns the admin UI's handler, to be mounted at cfg.BasePath.
func New(cfg Config) (http.Handler, error) {
	switch {
	case cfg.Pool == nil:
		return nil, errors.New("admin: Pool is required")
	case cfg.River == nil:
		return nil, errors.New("admin: River is required")
	case cfg.Breakers == nil:
		return nil, errors.New("admin: Breakers is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Limits == (app.SignInLimits{}) {
		cfg.Limits = app.DefaultSignInLimits()
	}
	if cfg.SessionIdle < 0 {
		return nil, errors.New("admin: SessionIdle must not be negative")
	}
	secure := cfg.SecureCookies
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil {
			return nil, fmt.Errorf("admin: PublicURL: %w", err)
		}
		secure = secure || u.Scheme == "https" // Parse lower-cases the scheme
	}
	for _, p := range cfg.TrustedProxies {
		if !p.IsValid() {
			return nil, fmt.Errorf("admin: TrustedProxies holds an invalid prefix %v", p)
		}
	}
	cfg.TrustedProxies = slices.Clone(cfg.TrustedProxies)
	cfg.BasePath = strings.TrimRight(cmp.Or(cfg.BasePath, "/admin"), "/")
	cfg.Instance = cmp.Or(cfg.Instance, "admin")
	op, err := app.NewOperator(app.OperatorConfig{Store: db.NewStore(cfg.Pool), Jobs: cfg.River, Provider: cfg.Provider,
		Channels: cfg.Channels, Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	idle := cmp.Or(cfg.SessionIdle, DefaultSessionIdle)
	wall := cfg.Now
	if wall == nil {
		wall = time.Now
	}
	// Every reading the UI takes is stamped on a row or compared with one.
	stamp := func() time.Time { return app.StorageTime(wall()) }
	s := &server{cfg: cfg, operator: op, breakers: db.NewStore(cfg.Pool), now: stamp,
		log: cfg.Logger, base: cfg.BasePath, secure: secure, idle: idle,
		// A tenth of the idle time, so someone who pauses for up to 90% of
		// it is never signed out; at most a minute, so a busy session is
		// not rewritten on every request.
		touchEvery: min(time.Minute, idle/10)}
	return s.routes(), nil
}

// routes is the admin UI's whole URL map, relative to BasePath.
func (s *server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(securityHeaders)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, app.Errorf(app.ENOTFOUND, "There is no admin page at %s.", r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, &app.Error{Code: codeMethod, Message: r.Method + " is not allowed here."})
	})
	r.Handle("/static/*", http.StripPrefix(s.base, staticHandler()))
	r.Get("/signin", s.handleSignInForm)
	r.With(s.readForm(signInFormMax)).Post("/signin", s.handleSignIn)

	r.Group(func(r chi.Router) {
		// The session is checked before a body is read: strangers' forms
		// are never parsed.
		r.Use(s.requireSession, s.readForm(formMax))
		r.Get("/", s.handleOverview)
		r.Get("/jobs", s.handleJobs)
		r.Get("/jobs/{id}", s.handleJob)
		r.Get("/jobs/bulk", s.handleBulkConfirm)
		r.Get("/breakers", s.handleBreakers)
		r.Get("/audit", s.handleAudit)
		r.Get("/operations/unresolved", s.handleUnresolved)
		r.Get("/orphans", s.handleOrphans)
		r.Post("/signout", s.handleSignOut)

		// Everything that changes something: operators only.
		r.Group(func(r chi.Router) {
			r.Use(s.requireOperator)
			// Profiles expose internals and cost CPU while they run:
			// operators only.
			r.Mount("/debug", middleware.Profiler())
			r.Post("/jobs/{id}/action", s.handleJobAction)
			r.Post("/jobs/action", s.handleSelectedAction)
			r.Post("/jobs/bulk", s.handleBulkAction)
			r.Post("/queues/{name}/pause", s.handleQueuePause(true))
			r.Post("/queues/{name}/resume", s.handleQueuePause(false))
			r.Post("/breakers/{name}/force", s.handleBreakerForce)
			r.Post("/breakers/{name}/policy", s.handleBreakerPolicy)
			r.Post("/operations/{id}/resolve", s.handleResolve)
		})
	})

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, &app.Error{Code: codeForbidden,
			Message: "This form came from another site, so it was refused. Reload the admin page and try again."})
	}))
	return cop.Handler(r)
}

func staticHandler() http.Handler {
	fs := http.FileServerFS(static)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		fs.ServeHTTP(w, r)
	})
}

// securityHeaders keeps pages from being framed or running scripts other
// than our own vendored one.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		// The service's middleware has set the response's X-Request-Id by
		// now; keep it for audit entries and error pages.
		ctx := context.WithValue(r.Context(), requestIDKey, h.Get("X-Request-Id"))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// Form bodies are capped before they are read. Sign-in is open to anyone,
// so its form gets room for an email, a password and a next URL and no
// more. The signed-in forms get room for the largest, maxSelected ticked
// job ids at up to 23 bytes each ("id=", 19 digits, "&") beside the
// action and the return URL; TestSelectedFormOfMostJobsFitsTheCap checks it.
const (
	signInFormMax = 8 << 10
	formMax       = 64 << 10
)

// readForm caps the body of a POST, PUT or PATCH at limit bytes and parses
// its form, so handlers read r.PostForm and never see a body half-read: a
// form over the cap gets a 413 page and one that cannot be parsed a 422
// page, before the handler runs. The cap also bounds bodies that are not
// forms (net/http/pprof's symbol lookup).
func (s *server) readForm(limit int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.Method {
			case http.MethodPost, http.MethodPut, http.MethodPatch:
			default:
				next.ServeHTTP(w, r)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, limit)
			if err := r.ParseForm(); err != nil {
				if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
					s.renderError(w, r, app.Errorf(app.ETOOLARGE,
						"The form sent was larger than the %d KiB this page accepts, so nothing was done. Go back, reload the page and try again.",
						limit>>10))
					return
				}
				s.renderError(w, r, app.Errorf(app.EINVALID, "The form could not be read."))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// inTx runs fn in a transaction and commits it when fn succeeds.
func (s *server) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.cfg.Pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}
