// Package tracing owns Spillway's OpenTelemetry set-up: the tracer
// provider and its OTLP/HTTP exporter, built from the standard OTEL_*
// environment (app.Config reads and checks it), the W3C propagator, the
// instrumented HTTP transports and handlers, and the slog handler that
// stamps every record with the trace it was logged in.
//
// Off (no OTLP endpoint) is the default, and off costs nothing on the hot
// path: Provider is OpenTelemetry's no-op, Tracer returns nil, and the
// wrappers (Handler, Transport) hand back what they were given, so no
// request allocates a span or a context for tracing that is not there.
package tracing

import (
	"context"
	"errors"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Config says where spans go.
type Config struct {
	// TracesURL is the OTLP/HTTP traces endpoint, e.g.
	// http://127.0.0.1:4318/v1/traces; "" turns tracing off.
	TracesURL string
	// ServiceName (OTEL_SERVICE_NAME) and Instance name this process in
	// every span's resource.
	ServiceName, Instance string
}

// Tracing is one process's tracer provider. The zero value is off.
type Tracing struct {
	sdk        *sdktrace.TracerProvider // nil: off
	propagator propagation.TextMapPropagator
}

// New builds the tracer provider cfg describes; without a TracesURL it is
// off and touches nothing.
func New(ctx context.Context, cfg Config) (*Tracing, error) {
	t := &Tracing{propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}
	if cfg.TracesURL == "" {
		return t, nil
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(cfg.TracesURL))
	if err != nil {
		return nil, err
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", cfg.ServiceName)}
	if cfg.Instance != "" {
		attrs = append(attrs, attribute.String("service.instance.id", cfg.Instance))
	}
	// OTEL_RESOURCE_ATTRIBUTES adds to the resource; ours win on conflict.
	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK(), resource.WithAttributes(attrs...))
	if err != nil && res == nil {
		return nil, err
	}
	// Batched: a request never waits on the collector (OTEL_BSP_* tune it).
	t.sdk = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return t, nil
}

// On reports whether spans are recorded and exported.
func (t *Tracing) On() bool { return t != nil && t.sdk != nil }

// Provider is the tracer provider: the SDK's, or the no-op one when off.
func (t *Tracing) Provider() trace.TracerProvider {
	if !t.On() {
		return noop.NewTracerProvider()
	}
	return t.sdk
}

// Tracer is a named tracer, or nil when off; Start treats nil as off.
func (t *Tracing) Tracer(name string) trace.Tracer {
	if !t.On() {
		return nil
	}
	return t.sdk.Tracer(name)
}

// Propagator carries W3C trace context (and baggage) across processes.
func (t *Tracing) Propagator() propagation.TextMapPropagator { return t.propagator }

// Handler wraps an inbound HTTP handler in a server span that continues
// the caller's traceparent; off, it returns h itself.
func (t *Tracing) Handler(h http.Handler, operation string) http.Handler {
	if !t.On() {
		return h
	}
	return otelhttp.NewHandler(h, operation, otelhttp.WithTracerProvider(t.sdk), otelhttp.WithPropagators(t.propagator),
		// Scrapes and health checks come every few seconds and tell no
		// story; a trace each would bury the ones that do.
		otelhttp.WithFilter(func(r *http.Request) bool { return r.URL.Path != "/metrics" && r.URL.Path != "/healthz" }))
}

// Transport wraps an outbound transport so each request is a client span
// named after the dependency it calls and carries traceparent; off, it
// returns rt itself. A nil rt is http.DefaultTransport.
func (t *Tracing) Transport(rt http.RoundTripper, dependency string) http.RoundTripper {
	if !t.On() {
		return rt
	}
	if rt == nil {
		rt = http.DefaultTransport
	}
	return otelhttp.NewTransport(rt, otelhttp.WithTracerProvider(t.sdk), otelhttp.WithPropagators(t.propagator),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return dependency + " " + r.Method }))
}

// WrapTransport is Transport for one dependency, in the shape adapters'
// configs take; nil when off, so they keep their transport untouched.
func (t *Tracing) WrapTransport(dependency string) func(http.RoundTripper) http.RoundTripper {
	if !t.On() {
		return nil
	}
	return func(rt http.RoundTripper) http.RoundTripper { return t.Transport(rt, dependency) }
}

// ForceFlush exports the spans that have ended and wait in the batch.
func (t *Tracing) ForceFlush(ctx context.Context) error {
	if !t.On() {
		return nil
	}
	return t.sdk.ForceFlush(ctx)
}

// Shutdown flushes what is left and stops exporting.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if !t.On() {
		return nil
	}
	return errors.Join(t.sdk.ForceFlush(ctx), t.sdk.Shutdown(ctx))
}
