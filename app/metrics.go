package app

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the service's Prometheus collectors. A nil *Metrics records
// nothing, so tests and tools need not build one.
type Metrics struct {
	Requests     *prometheus.CounterVec   // payments by outcome status, mode and reason
	KindRequests *prometheus.CounterVec   // every kind's requests, by kind, status, mode and reason
	ProviderCall *prometheus.HistogramVec // provider call latency by dependency, path and outcome
	BreakerState *prometheus.GaugeVec     // 1 for the current state of each breaker
	BreakerSince *prometheus.GaugeVec     // when each breaker entered its current state
	Transitions  *prometheus.CounterVec   // breaker transitions this instance saw
	SyncInFlight prometheus.Gauge         // synchronous provider calls under way
	Unresolved   prometheus.Gauge         // operations flagged for an operator (outcome still unknown)
	BacklogJobs  *prometheus.GaugeVec     // captured jobs waiting, by dependency
	BacklogAge   *prometheus.GaugeVec     // how long the oldest has waited, by dependency
	BacklogShed  *prometheus.CounterVec   // captures refused because a backlog was over its bound
	Deliveries   *prometheus.CounterVec   // delivery attempts by channel and outcome
	// QueueWait is how long a job attempt waited in its queue once due,
	// by queue and kind; TimeToTerminal how long an acknowledged async
	// operation took to end, by kind and terminal status.
	QueueWait      *prometheus.HistogramVec
	TimeToTerminal *prometheus.HistogramVec
}

// deliveryOutcomes are the outcomes a delivery attempt is recorded with.
var deliveryOutcomes = []string{"sent", "failed", "disabled", "skipped"}

// NewMetrics creates the collectors and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spillway_payment_requests_total",
			Help: "Payment requests answered, by resulting status, mode (sync/async) and async reason.",
		}, []string{"status", "mode", "reason"}),
		KindRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spillway_requests_total",
			Help: "Requests of every operation kind (payment, order, …) answered, by kind, resulting status, mode and async reason.",
		}, []string{"kind", "status", "mode", "reason"}),
		ProviderCall: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "spillway_provider_call_seconds",
			Help:    "Latency of calls to a downstream provider, by dependency, path (sync/async) and outcome.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"dependency", "path", "outcome"}),
		BreakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "spillway_breaker_state",
			Help: "1 for the state each dependency's circuit breaker is in, 0 for the others.",
		}, []string{"dependency", "state"}),
		Transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spillway_breaker_transitions_total",
			Help: "Breaker state changes seen by this instance, by dependency and new state.",
		}, []string{"dependency", "to"}),
		SyncInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spillway_sync_calls_in_flight",
			Help: "Synchronous provider calls under way in this instance.",
		}),
		Unresolved: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spillway_operations_unresolved",
			Help: "Open operations whose outcome the provider has not settled for longer than RECONCILE_AFTER, as the reconciler last counted them.",
		}),
	}
	m.BacklogJobs = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "spillway_backlog_jobs",
		Help: "Captured calls waiting for each dependency, as this instance last read them.",
	}, []string{"dependency"})
	m.BacklogAge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "spillway_backlog_oldest_seconds",
		Help: "How long the oldest captured call waiting for each dependency has waited.",
	}, []string{"dependency"})
	m.BacklogShed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "spillway_backlog_refusals_total",
		Help: "Requests answered 503 because their dependency's backlog was over its bound (<DEP>_MAX_BACKLOG).",
	}, []string{"dependency"})
	m.Deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "spillway_delivery_attempts_total",
		Help: "Attempts to tell a client how its operation ended, by channel (email, sms, webhook) and outcome (sent, failed, disabled, skipped).",
	}, []string{"channel", "outcome"})
	// Every series exists from the start at 0, so a rate over them is
	// defined before the first failure and an alert can compare.
	for _, ch := range []Channel{ChannelEmail, ChannelSMS, ChannelWebhook} {
		for _, o := range deliveryOutcomes {
			m.Deliveries.WithLabelValues(string(ch), o)
		}
	}
	for _, d := range Dependencies() {
		m.BacklogShed.WithLabelValues(d.Name)
	}
	m.BreakerSince = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "spillway_breaker_state_since_timestamp_seconds",
		Help: "When each dependency's circuit breaker entered the state spillway_breaker_state reports (Unix seconds): time() minus it is how long it has been so.",
	}, []string{"dependency"})
	// Buckets from 10 ms (a worker free at once) to hours (an outage
	// waited out): the questions are "is the queue keeping up" and "how
	// long did customers wait", and both span that range.
	m.QueueWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "spillway_job_queue_wait_seconds",
		Help:    "How long a job attempt waited from when it was due (enqueued, or its retry or snooze came due) to when a worker started it, by queue and job kind.",
		Buckets: []float64{.01, .05, .1, .5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 4 * 3600},
	}, []string{"queue", "kind"})
	m.TimeToTerminal = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "spillway_async_operation_seconds",
		Help:    "How long an operation answered 202 took from its acknowledgement to its terminal status (succeeded, declined, failed, cancelled), by kind and that status, observed by the worker or the reconciler that ended it.",
		Buckets: []float64{.1, .5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600},
	}, []string{"kind", "outcome"})
	reg.MustRegister(m.Deliveries, m.BreakerSince, m.QueueWait, m.TimeToTerminal)
	reg.MustRegister(m.Requests, m.KindRequests, m.ProviderCall, m.BreakerState, m.Transitions, m.SyncInFlight, m.Unresolved,
		m.BacklogJobs, m.BacklogAge, m.BacklogShed)
	return m
}

var breakerStates = []BreakerState{BreakerClosed, BreakerOpen, BreakerHalfOpen, BreakerForcedOpen, BreakerForcedClosed}

// BreakerChanged sets the state gauge and counts the transition.
func (m *Metrics) BreakerChanged(b Breaker, transition bool) {
	if m == nil {
		return
	}
	for _, s := range breakerStates {
		v := 0.0
		if s == b.State {
			v = 1
		}
		m.BreakerState.WithLabelValues(b.Name, string(s)).Set(v)
	}
	if !b.Since.IsZero() {
		m.BreakerSince.WithLabelValues(b.Name).Set(float64(b.Since.UnixNano()) / 1e9)
	}
	if transition {
		m.Transitions.WithLabelValues(b.Name, string(b.State)).Inc()
	}
}

// Answered counts one payment request's answer.
func (m *Metrics) Answered(d OperationDocument) {
	if m == nil {
		return
	}
	// The payment series stays as it was, payments only; every kind,
	// payments too, is counted by kind beside it.
	if d.Kind == KindPayment {
		m.Requests.WithLabelValues(string(d.Status), string(d.Mode), string(d.Reason)).Inc()
	}
	m.KindRequests.WithLabelValues(d.Kind, string(d.Status), string(d.Mode), string(d.Reason)).Inc()
}

// Called observes one provider call.
func (m *Metrics) Called(dependency, path string, seconds float64, pe *ProviderError) {
	if m == nil {
		return
	}
	outcome := "ok"
	if pe != nil {
		outcome = string(pe.Kind)
	}
	m.ProviderCall.WithLabelValues(dependency, path, outcome).Observe(seconds)
}

func (m *Metrics) syncStarted() {
	if m != nil {
		m.SyncInFlight.Inc()
	}
}

func (m *Metrics) syncEnded() {
	if m != nil {
		m.SyncInFlight.Dec()
	}
}

func (m *Metrics) backlogRead(dependency string, b Backlog, now time.Time) {
	if m == nil {
		return
	}
	m.BacklogJobs.WithLabelValues(dependency).Set(float64(b.Jobs))
	age := 0.0
	if !b.Oldest.IsZero() {
		age = max(0, now.Sub(b.Oldest).Seconds())
	}
	m.BacklogAge.WithLabelValues(dependency).Set(age)
}

func (m *Metrics) backlogRefused(dependency string) {
	if m == nil {
		return
	}
	m.BacklogShed.WithLabelValues(dependency).Inc()
}

// Delivered counts one delivery attempt's outcome on a channel.
func (m *Metrics) Delivered(channel Channel, outcome string) {
	if m == nil {
		return
	}
	m.Deliveries.WithLabelValues(string(channel), outcome).Inc()
}

// JobStarted observes how long a job attempt waited in its queue: from
// when it was due (scheduledAt: its insert, or the end of its backoff or
// snooze) to when a worker fetched it (attemptedAt). Both are the
// database's clock, as River stamps them, so no instance's skew enters.
func (m *Metrics) JobStarted(queue, kind string, scheduledAt time.Time, attemptedAt *time.Time) {
	if m == nil || attemptedAt == nil {
		return
	}
	m.QueueWait.WithLabelValues(queue, kind).Observe(max(0, attemptedAt.Sub(scheduledAt).Seconds()))
}

// OperationEnded observes an async operation's time from acknowledgement
// (its creation, committed with its job) to its terminal status. A sync
// one, or one not ended, is not observed.
func (m *Metrics) OperationEnded(o *Operation) {
	if m == nil || o.Mode != ModeAsync || !o.Status.Terminal() || o.CompletedAt == nil {
		return
	}
	m.TimeToTerminal.WithLabelValues(o.Kind, string(o.Status)).Observe(max(0, o.CompletedAt.Sub(o.CreatedAt).Seconds()))
}
