// Package admin is Spillway's operator UI under /admin: an overview of each
// dependency's mode and the queue, River's jobs with their operations,
// circuit breaker control and the audit log. Pages are server-rendered templ
// components that work without JavaScript (forms, POST then a 303 to a
// GET); a small vendored script refreshes live pages as an enhancement.
//
// Handlers parse, call and render: pages read through db, and every change
// (job, queue and breaker actions, users, sign-in and sessions) is made by
// app.Operator, which writes its audit entry. Every request but sign-in
// needs a session stored in Postgres; every change needs the operator
// role, checked here on the server. Cross-origin unsafe requests are
// refused by http.CrossOriginProtection.
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
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

// Config wires the admin UI.
type Config struct {
	// Pool serves the pages' reads.
	Pool *pgxpool.Pool
	// Operator carries out every change, with its audit entry: job,
	// queue and breaker actions, users, sign-in and sessions.
	Operator *app.Operator
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
	// BasePath is where the handler is mounted; "/admin" when empty.
	BasePath string
	// ReconcileAfter is how long an operation may stay unresolved before
	// the overview flags it; zero means 30 minutes.
	ReconcileAfter time.Duration
	// OrphanRefund says whether the orphan sweep refunds what it finds.
	OrphanRefund bool
	// Backlog is each dependency's backlog as last read and its bound
	// (app.BacklogBounds); nil leaves backlogs off the overview.
	Backlog Backlogs
	// Bulkheads are this instance's sync bulkheads by dependency (the
	// runner's app.Admission); a dependency without one shows none.
	Bulkheads map[string]Bulkhead
	// HighValueAmount is HIGH_VALUE_AMOUNT, in the words about the slots
	// the bulkhead keeps for high-value work.
	HighValueAmount int64
	// Features is the feature switch whose state the overview shows (the
	// one the operator switches features with); nil leaves it off.
	Features *app.FeatureSwitch
	// Drills are what the drills page offers to start and the overview's
	// last drills cover (app.Operator starts them); nil: drills are off.
	Drills *app.Drills
}

// Backlogs reads what app.BacklogBounds holds in memory: no query.
type Backlogs interface {
	Last(dependency string) (app.Backlog, bool)
	Bound(dependency string) (app.BacklogBound, bool)
	// Trend is how fast the backlog changed over its recent readings, in
	// jobs per second (app.BacklogBounds.Trend).
	Trend(dependency string) (perSecond float64, over time.Duration, ok bool)
}

// Bulkhead is what app.Admission says of itself.
type Bulkhead interface {
	InUse() int
	Limit() int
	Reserved() int
}

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
	// throughput holds the overview chart's minutes that are over.
	throughput *throughputCache
}

// New returns the admin UI's handler, to be mounted at cfg.BasePath.
func New(cfg Config) (http.Handler, error) {
	switch {
	case cfg.Pool == nil:
		return nil, errors.New("admin: Pool is required")
	case cfg.Operator == nil:
		return nil, errors.New("admin: Operator is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
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
	wall := cfg.Now
	if wall == nil {
		wall = time.Now
	}
	// Every reading the UI takes is stamped on a row or compared with one.
	stamp := func() time.Time { return app.StorageTime(wall()) }
	s := &server{cfg: cfg, operator: cfg.Operator, breakers: db.NewStore(cfg.Pool), now: stamp,
		log: cfg.Logger, base: cfg.BasePath, secure: secure, throughput: &throughputCache{}}
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
		r.Get("/runbook", s.handleRunbook)
		r.Get("/drills", s.handleDrills)
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
			r.Post("/features/{name}", s.handleFeature)
			r.Post("/drills", s.handleDrillStart)
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
