package app

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is everything Spillway reads from its environment. LoadConfig
// validates it all at start so a bad value stops the process with a message
// naming the variable, instead of failing on the first request.
type Config struct {
	DatabaseURL string // empty: a project-local cluster under .data/
	// DatabaseDirectURL (DATABASE_DIRECT_URL) is Postgres itself when
	// DatabaseURL is a pooler such as PgBouncer in transaction mode: what
	// must keep a session goes there (LISTEN, the migrations' session
	// lock). Empty: DatabaseURL is Postgres and serves for both.
	DatabaseDirectURL string
	Addr              string // SPILLWAY_ADDR

	PaymentProvider    string // sim | http | stripe
	PaymentProviderURL string
	SimAddr            string // where the in-process simulator listens
	// InventoryURL is the inventory dependency's base URL (INVENTORY_URL);
	// empty with PAYMENT_PROVIDER=sim means the embedded simulator's.
	InventoryURL        string
	StripeAPIBase       string
	StripeSecretKey     string
	StripePaymentMethod string

	// Deps are each declared dependency's settings, by name (see
	// Dependencies); Dep reads one.
	Deps           map[string]DependencySettings
	CaptureTimeout time.Duration
	// OrderDeadline bounds an order's synchronous steps together
	// (ORDER_DEADLINE).
	OrderDeadline time.Duration
	// ReadDeadline bounds a degraded read's live call (READ_DEADLINE):
	// past it the last known value is served instead.
	ReadDeadline    time.Duration
	HighValueAmount int64

	// DBMaxConns is every connection this instance may open: the request
	// and worker pool, BreakerConns for the breakers, AdminConns for the
	// admin pages and River's LISTEN connection (see PoolConns).
	DBMaxConns      int
	DBMinConns      int
	SyncConcurrency int
	// SyncHighValueReserve is how many sync slots only high-value work may
	// take (SYNC_HIGH_VALUE_RESERVE).
	SyncHighValueReserve int
	Workers              int

	// ShutdownGrace is how long running jobs may take to finish after a
	// SIGTERM before they are cancelled.
	ShutdownGrace time.Duration
	// PaymentKeyRetention is how long the provider remembers an
	// idempotency key (Stripe: 24 h); past it a retry looks up first.
	PaymentKeyRetention time.Duration
	// ReconcileEvery is how often open operations whose job ended are
	// reconciled; ReconcileAfter flags one still unresolved for operators.
	ReconcileEvery time.Duration
	ReconcileAfter time.Duration
	// Orphan sweep: how often, how old a charge must be before it counts
	// (a sync request may still be committing it), and whether to refund.
	OrphanSweepEvery time.Duration
	OrphanGrace      time.Duration
	OrphanRefund     bool
	// FeatureHold is how long distress must stay below an optional
	// feature's level before it comes back on (FEATURE_HOLD).
	FeatureHold time.Duration

	// Delivery channels; each is configured when its variable is set.
	SMTPURL             string
	SMTPFrom            string
	SMTPTLS             string // mandatory | opportunistic | none
	SMSProviderURL      string
	SMSFrom             string
	WebhookSecret       string
	WebhookAllowPrivate bool
	// PublicURL is the base of links sent to customers.
	PublicURL string

	Offpeak        OffpeakWindow
	PaymentDefer   string // "" or DeferOffpeak: the kind's default
	IdempotencyTTL time.Duration

	AdminEmail    string
	AdminPassword string
	// AdminSessionIdle ends a session unused this long.
	AdminSessionIdle time.Duration
	// TrustedProxies are the addresses whose X-Forwarded-For is believed
	// when finding a client's address (sign-in limits, audit).
	TrustedProxies []netip.Prefix

	// SSEMaxStreams caps this instance's open event streams.
	SSEMaxStreams int
	// MetricsToken, when set, is the bearer token /metrics requires.
	MetricsToken string

	// Instance names this process in breaker history; default host:pid.
	Instance string

	// Drills are the failover drills' settings (DRILL_*, app/drill.go).
	Drills DrillSettings

	LogLevel  string
	LogFormat string

	// Traces is where spans are exported (the OTEL_* environment; see
	// config_traces.go); its zero value is tracing off.
	Traces TracesConfig
}

// Provider names.
const (
	ProviderSim    = "sim"
	ProviderHTTP   = "http"
	ProviderStripe = "stripe"
)

// LoadConfig reads and validates the configuration. It reports every bad
// variable at once, each by name.
func LoadConfig(getenv func(string) string) (Config, error) {
	l := loader{getenv: getenv}
	c := Config{
		DatabaseURL:         l.str("DATABASE_URL", ""),
		DatabaseDirectURL:   l.str("DATABASE_DIRECT_URL", ""),
		Addr:                l.addr("SPILLWAY_ADDR", "127.0.0.1:8080"),
		PaymentProvider:     l.oneOf("PAYMENT_PROVIDER", ProviderSim, ProviderSim, ProviderHTTP, ProviderStripe),
		PaymentProviderURL:  l.str("PAYMENT_PROVIDER_URL", ""),
		SimAddr:             l.addr("SIM_ADDR", "127.0.0.1:8081"),
		InventoryURL:        l.str("INVENTORY_URL", ""),
		StripeAPIBase:       l.str("STRIPE_API_BASE", ""),
		StripeSecretKey:     l.str("STRIPE_SECRET_KEY", ""),
		StripePaymentMethod: l.str("STRIPE_PAYMENT_METHOD", "pm_card_visa"),
		CaptureTimeout:      l.duration("CAPTURE_TIMEOUT", time.Second, time.Millisecond, time.Minute),
		OrderDeadline:       l.duration("ORDER_DEADLINE", DefaultOrderDeadline, time.Millisecond, time.Minute),
		ReadDeadline:        l.duration("READ_DEADLINE", DefaultReadDeadline, time.Millisecond, time.Minute),
		HighValueAmount:     int64(l.integer("HIGH_VALUE_AMOUNT", 100000, 1, MaxAmount)),
		DBMaxConns:          l.integer("DB_MAX_CONNS", 30, minDBConns, 1000),
		DBMinConns:          l.integer("DB_MIN_CONNS", 4, 0, 1000),
		SyncConcurrency:     l.integer("SYNC_CONCURRENCY", 16, 1, 1000),
		Workers:             l.integer("WORKERS", DefaultWorkers, 1, 1000),
		PaymentKeyRetention: l.duration("PAYMENT_KEY_RETENTION", 24*time.Hour, time.Minute, 365*24*time.Hour),
		ReconcileEvery:      l.duration("RECONCILE_EVERY", time.Minute, time.Second, 24*time.Hour),
		ReconcileAfter:      l.duration("RECONCILE_AFTER", 30*time.Minute, time.Second, 30*24*time.Hour),
		OrphanSweepEvery:    l.duration("ORPHAN_SWEEP_EVERY", 10*time.Minute, 100*time.Millisecond, 24*time.Hour),
		OrphanGrace:         l.duration("ORPHAN_GRACE", 5*time.Minute, 0, 7*24*time.Hour),
		OrphanRefund:        l.boolean("ORPHAN_REFUND"),
		FeatureHold:         l.duration("FEATURE_HOLD", DefaultFeatureHold, time.Second, 24*time.Hour),
		SMTPURL:             l.str("SMTP_URL", ""),
		SMTPFrom:            l.str("SMTP_FROM", "Spillway <payments@spillway.localhost>"),
		SMTPTLS:             l.oneOf("SMTP_TLS", "opportunistic", "mandatory", "opportunistic", "none"),
		SMSProviderURL:      l.str("SMS_PROVIDER_URL", ""),
		SMSFrom:             l.str("SMS_FROM", "Spillway"),
		WebhookSecret:       l.str("WEBHOOK_SECRET", ""),
		WebhookAllowPrivate: l.boolean("WEBHOOK_ALLOW_PRIVATE"),
		PublicURL:           l.str("PUBLIC_URL", ""),
		PaymentDefer:        l.oneOf("PAYMENT_DEFER", "", "", DeferOffpeak),
		IdempotencyTTL:      l.duration("IDEMPOTENCY_TTL", 24*time.Hour, time.Minute, 365*24*time.Hour),
		AdminEmail:          l.str("ADMIN_EMAIL", ""),
		AdminPassword:       l.str("ADMIN_PASSWORD", ""),
		AdminSessionIdle:    l.duration("ADMIN_SESSION_IDLE", 30*time.Minute, time.Minute, 7*24*time.Hour),
		TrustedProxies:      l.prefixes("TRUSTED_PROXIES"),
		SSEMaxStreams:       l.integer("SSE_MAX_STREAMS", 1000, 1, 1_000_000),
		MetricsToken:        l.str("METRICS_TOKEN", ""),
		Instance:            l.str("SPILLWAY_INSTANCE", ""),
		Drills:              l.drills(),
		LogLevel:            l.oneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error"),
		LogFormat:           l.oneOf("LOG_FORMAT", "text", "text", "json"),
	}
	for _, v := range []struct{ name, url string }{{"DATABASE_URL", c.DatabaseURL}, {"DATABASE_DIRECT_URL", c.DatabaseDirectURL}} {
		if v.url == "" {
			continue
		}
		if u, err := url.Parse(v.url); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			l.fail(v.name, "must be a postgres:// URL")
		}
	}
	if c.DatabaseDirectURL != "" && c.DatabaseURL == "" {
		l.fail("DATABASE_DIRECT_URL", "is set but DATABASE_URL is not: it is the direct way to the server DATABASE_URL pools")
	}
	switch c.PaymentProvider {
	case ProviderHTTP:
		if c.PaymentProviderURL == "" {
			l.fail("PAYMENT_PROVIDER_URL", "is required when PAYMENT_PROVIDER=http")
		} else if !isHTTPURL(c.PaymentProviderURL) {
			l.fail("PAYMENT_PROVIDER_URL", "must be an absolute http or https URL")
		}
	case ProviderStripe:
		if c.StripeSecretKey == "" {
			l.fail("STRIPE_SECRET_KEY", "is required when PAYMENT_PROVIDER=stripe")
		}
		if c.StripeAPIBase != "" && !isHTTPURL(c.StripeAPIBase) {
			l.fail("STRIPE_API_BASE", "must be an absolute http or https URL")
		}
	}
	c.Deps = map[string]DependencySettings{}
	var longest Dependency
	for _, d := range Dependencies() {
		c.Deps[d.Name] = l.dependency(d)
		if c.Deps[d.Name].AsyncTimeout > c.Deps[longest.Name].AsyncTimeout {
			longest = d
		}
	}
	// Running jobs get the grace to finish their call, whichever
	// dependency it is to, so a SIGTERM never spends an attempt.
	async := c.Deps[longest.Name].AsyncTimeout
	c.ShutdownGrace = l.duration("SHUTDOWN_GRACE", async+5*time.Second, time.Millisecond, time.Hour)
	if c.ShutdownGrace < async {
		l.fail("SHUTDOWN_GRACE", fmt.Sprintf("must be at least %sASYNC_TIMEOUT (%s) so a running call can finish", longest.EnvPrefix(), async))
	}
	if c.DBMinConns > c.PoolConns() {
		l.fail("DB_MIN_CONNS", fmt.Sprintf("must be at most DB_MAX_CONNS-%d (%d)", outsidePoolConns, c.PoolConns()))
	}
	// Each sync call holds a pooled connection for up to the deadline;
	// leave connections for captures, workers and River's own maintenance.
	if c.SyncConcurrency > c.PoolConns()-reservedConns {
		l.fail("SYNC_CONCURRENCY", fmt.Sprintf("must be at most DB_MAX_CONNS-%d (%d) so sync calls cannot exhaust the pool", outsidePoolConns+reservedConns, c.PoolConns()-reservedConns))
	}
	c.SyncHighValueReserve = l.integer("SYNC_HIGH_VALUE_RESERVE", int64(DefaultHighValueReserve(c.SyncConcurrency)), 0, 1000)
	if c.SyncHighValueReserve >= c.SyncConcurrency {
		l.fail("SYNC_HIGH_VALUE_RESERVE", fmt.Sprintf("must be less than SYNC_CONCURRENCY (%d), so ordinary work keeps a sync slot", c.SyncConcurrency))
	}
	if w, err := ParseOffpeakWindow(l.str("OFFPEAK_WINDOW", "01:00-05:00"), l.str("OFFPEAK_TZ", "UTC")); err != nil {
		l.fail("OFFPEAK_WINDOW/OFFPEAK_TZ", err.Error())
	} else {
		c.Offpeak = w
	}
	if c.InventoryURL != "" && !isHTTPURL(c.InventoryURL) {
		l.fail("INVENTORY_URL", "must be an absolute http or https URL")
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Addr
	} else if !isHTTPURL(c.PublicURL) {
		l.fail("PUBLIC_URL", "must be an absolute http or https URL")
	}
	if c.SMTPURL != "" {
		if u, err := url.Parse(c.SMTPURL); err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Host == "" {
			l.fail("SMTP_URL", "must be smtp://[user:pass@]host:port or smtps://…")
		}
	}
	if c.SMSProviderURL != "" && !isHTTPURL(c.SMSProviderURL) {
		l.fail("SMS_PROVIDER_URL", "must be an absolute http or https URL")
	}
	if c.WebhookSecret != "" && !strings.HasPrefix(c.WebhookSecret, "whsec_") {
		l.fail("WEBHOOK_SECRET", "must look like whsec_<base64>")
	}
	if (c.AdminEmail == "") != (c.AdminPassword == "") {
		l.fail("ADMIN_EMAIL/ADMIN_PASSWORD", "must be set together")
	}
	c.Traces = l.traces()
	return c, l.err()
}

// Dep is the settings of the dependency named name; the zero value for a
// name that is not declared.
func (c Config) Dep(name string) DependencySettings { return c.Deps[name] }

// dependency reads one dependency's settings: <NAME>_DEADLINE,
// <NAME>_ASYNC_TIMEOUT, <NAME>_MAX_ATTEMPTS, <NAME>_RETRY_BASE,
// <NAME>_RETRY_MAX, <NAME>_DRAIN_RATE, <NAME>_MAX_BACKLOG,
// <NAME>_MAX_BACKLOG_AGE and BREAKER_<NAME>_*.
func (l *loader) dependency(d Dependency) DependencySettings {
	p, def := d.EnvPrefix(), d.Defaults
	s := DependencySettings{
		Deadline:      l.duration(p+"DEADLINE", def.Deadline, time.Millisecond, time.Minute),
		AsyncTimeout:  l.duration(p+"ASYNC_TIMEOUT", def.AsyncTimeout, time.Millisecond, 10*time.Minute),
		MaxAttempts:   l.integer(p+"MAX_ATTEMPTS", int64(def.MaxAttempts), 1, 1000),
		RetryBase:     l.duration(p+"RETRY_BASE", def.RetryBase, time.Millisecond, 24*time.Hour),
		RetryMax:      l.duration(p+"RETRY_MAX", def.RetryMax, time.Millisecond, 7*24*time.Hour),
		Breaker:       l.breakerOverride(d.BreakerEnvPrefix()),
		MaxBacklog:    l.integer(p+"MAX_BACKLOG", int64(def.MaxBacklog), 0, 100_000_000),
		MaxBacklogAge: l.duration(p+"MAX_BACKLOG_AGE", def.MaxBacklogAge, 0, 30*24*time.Hour),
	}
	drain := p + "DRAIN_RATE"
	if d.Name == DepPayment && l.getenv(drain) == "" {
		// DRAIN_RATE named the payment's rate before there were others.
		drain = "DRAIN_RATE"
	}
	s.DrainRate = l.float(drain, def.DrainRate, 0, 1_000_000)
	if s.RetryMax < s.RetryBase {
		l.fail(p+"RETRY_MAX", "must not be less than "+p+"RETRY_BASE")
	}
	if !s.Breaker.Empty() {
		if err := s.Breaker.Apply(DefaultBreakerPolicy()).Validate(); err != nil {
			l.fail(d.BreakerEnvPrefix()+"*", err.Error())
		}
	}
	return s
}

// breakerOverride reads one dependency's BREAKER_<DEP>_* variables.
func (l *loader) breakerOverride(prefix string) PolicyOverride {
	var o PolicyOverride
	o.Window = l.optDuration(prefix+"WINDOW", time.Second, 10*time.Minute)
	o.MinCalls = l.optInt(prefix+"MIN_CALLS", 1, 1_000_000)
	o.FailureRate = l.optRate(prefix + "FAILURE_RATE")
	o.SlowRate = l.optRate(prefix + "SLOW_RATE")
	o.SlowCall = l.optDuration(prefix+"SLOW_CALL", time.Millisecond, 10*time.Minute)
	o.OpenWait = l.optDuration(prefix+"OPEN_WAIT", 10*time.Millisecond, time.Hour)
	o.MaxOpenWait = l.optDuration(prefix+"MAX_OPEN_WAIT", 10*time.Millisecond, 24*time.Hour)
	o.Probes = l.optInt(prefix+"PROBES", 1, 100)
	o.ProbeLease = l.optDuration(prefix+"PROBE_LEASE", 10*time.Millisecond, time.Hour)
	o.ConsecutiveFailures = l.optInt(prefix+"CONSECUTIVE_FAILURES", 0, 1_000_000)
	return o
}

func (l *loader) boolean(name string) bool {
	switch v := strings.ToLower(l.str(name, "false")); v {
	case "true", "1", "yes":
		return true
	case "false", "0", "no":
		return false
	default:
		l.fail(name, fmt.Sprintf("must be true or false, not %q", v))
		return false
	}
}

// prefixes reads a comma-separated list of CIDR prefixes or addresses.
func (l *loader) prefixes(name string) []netip.Prefix {
	s := l.str(name, "")
	if s == "" {
		return nil
	}
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			l.fail(name, fmt.Sprintf("must be addresses or CIDR prefixes like 10.0.0.0/8, not %q", f))
			return nil
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out
}

func (l *loader) float(name string, def, min, max float64) float64 {
	s := l.str(name, "")
	if s == "" {
		return def
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < min || f > max {
		l.fail(name, fmt.Sprintf("must be a number between %g and %g, not %q", min, max, s))
		return def
	}
	return f
}

func (l *loader) optDuration(name string, min, max time.Duration) *time.Duration {
	if l.str(name, "") == "" {
		return nil
	}
	d := l.duration(name, 0, min, max)
	return &d
}

func (l *loader) optInt(name string, min, max int64) *int {
	if l.str(name, "") == "" {
		return nil
	}
	n := l.integer(name, 0, min, max)
	return &n
}

func (l *loader) optRate(name string) *float64 {
	s := l.str(name, "")
	if s == "" {
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f > 0 && f <= 1) {
		l.fail(name, fmt.Sprintf("must be a fraction above 0 and at most 1, like 0.1, not %q", s))
		return nil
	}
	return &f
}

// DB_MAX_CONNS is a hard ceiling on the connections one instance holds,
// so that N instances need at most N×DB_MAX_CONNS slots and the start-up
// check can compare it with what the server allows. pgxpool's MaxConns is
// a hard cap, so the ceiling is what each pool may hold plus the one
// connection River takes outside them (nothing else opens any: goose runs
// on the pool through stdlib.OpenDBFromPool, River's migrator and driver
// use the pool, and LISTENs borrow pooled connections):
//
//	DB_MAX_CONNS = PoolConns + BreakerConns + AdminConns + RiverListenerConns
//	          30 =        24 +            3 +          2 +                  1  (defaults)
//
// With the defaults, per instance:
//   - River's notifier: 1, held for the life of the process (LISTEN).
//   - The breakers' pool: 3; one held for good (LISTEN for other
//     instances' transitions), two for probe claims and count flushes.
//   - The admin pages' pool: 2, for their reads, so an operator can see
//     an overload while requests queue for the pool below.
//   - The request and worker pool: 24; one held for good (the event hub's
//     LISTEN). At peak SYNC_CONCURRENCY (16) request transactions each
//     hold one across their provider call, up to PAYMENT_DEADLINE +
//     CAPTURE_TIMEOUT; the other 8 serve captures, replays, reads, the
//     workers' short transactions (a worker holds none during its call,
//     so WORKERS may exceed the pool) and River's producers, completer,
//     elector and maintenance. While starting, goose's session lock and
//     the migration hold two.
//
// An ordinary role on a stock server (max_connections 100, 3 reserved for
// superusers: 97 slots) so fits three instances (90), with 7 to spare for
// psql and `spillway migrate`; a fourth would need 120.

// DefaultWorkers is WORKERS unset: how many payment jobs one process
// works at once. A drained job spends most of its time waiting (on the
// provider, on its batched read and write, on River's fetch), not on the
// CPU, and holds no connection while it waits (jobs.opBatch writes for
// many workers on one), so the drain grows with the count: on 2 cores
// 32 workers drained about 960 jobs/s and 128 1 300-1 800 (issue 13).
// Past 128 it no longer grew there, while each running job is a call the
// provider must take at once. The connection budget does not change with
// it (see DB_MAX_CONNS below).
const DefaultWorkers = 128

// reservedConns are pool connections sync calls may never take: they
// are the captures', the workers' and River's own. They were 8 while the
// admin pages read from this pool; those reads have AdminConns of their
// own now, so SYNC_CONCURRENCY's bound (DB_MAX_CONNS−12) is unchanged.
const reservedConns = 6

// BreakerConns are the connections of the breakers' own small pool, apart
// from the requests': a request holding its transaction's connection
// must never wait for a second one to claim or finish a probe.
const BreakerConns = 3

// AdminConns are the connections of the admin pages' own pool: their
// reads (each bounded by a statement_timeout) never queue behind requests
// for the request pool, which is exactly when an operator needs them.
const AdminConns = 2

// DirectConns are the connections an instance behind a pooler opens
// straight to Postgres (DATABASE_DIRECT_URL), besides River's listener:
// the event hub's and the breakers' LISTEN, which at start first serve
// goose's session lock and the migration. With River's listener that is
// 3 server connections per instance outside the pooler; the pooled ones
// are the pooler's to bound (its default_pool_size).
const DirectConns = 2

// RiverListenerConns is the connection River's notifier takes for LISTEN.
// riverpgxv5 acquires it from the pool and then hijacks it, which frees
// its place in the pool: the pool may open another, so it counts on top
// of PoolConns.
const RiverListenerConns = 1

// outsidePoolConns are the instance's connections not in the request and
// worker pool.
const outsidePoolConns = BreakerConns + AdminConns + RiverListenerConns

// minDBConns is the smallest DB_MAX_CONNS that leaves a sync slot.
const minDBConns = outsidePoolConns + reservedConns + 1

// PoolConns is the size of the request and worker pool: DB_MAX_CONNS less
// the connections held outside it.
func (c Config) PoolConns() int { return c.DBMaxConns - outsidePoolConns }

type loader struct {
	getenv func(string) string
	errs   []string
}

func (l *loader) fail(name, msg string) { l.errs = append(l.errs, name+" "+msg) }

func (l *loader) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	return errors.New("invalid configuration: " + strings.Join(l.errs, "; "))
}

func (l *loader) str(name, def string) string {
	if v := strings.TrimSpace(l.getenv(name)); v != "" {
		return v
	}
	return def
}

func (l *loader) oneOf(name, def string, allowed ...string) string {
	v := strings.ToLower(l.str(name, def))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	l.fail(name, fmt.Sprintf("must be one of %s, not %q", strings.Join(allowed, ", "), v))
	return def
}

func (l *loader) duration(name string, def, min, max time.Duration) time.Duration {
	s := l.str(name, "")
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		l.fail(name, fmt.Sprintf("must be a Go duration like 3s or 250ms, not %q", s))
		return def
	}
	if d < min || d > max {
		l.fail(name, fmt.Sprintf("must be between %s and %s, not %s", min, max, d))
		return def
	}
	return d
}

func (l *loader) integer(name string, def, min, max int64) int {
	s := l.str(name, "")
	if s == "" {
		return int(def)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < min || n > max {
		l.fail(name, fmt.Sprintf("must be an integer between %d and %d, not %q", min, max, s))
		return int(def)
	}
	return int(n)
}

func (l *loader) addr(name, def string) string {
	s := l.str(name, def)
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		l.fail(name, fmt.Sprintf("must be host:port like 127.0.0.1:8080, not %q", s))
		return def
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		l.fail(name, fmt.Sprintf("has a bad port in %q", s))
	}
	return s
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
