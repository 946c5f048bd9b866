package app

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// startSpan starts a span with tracer, or, when tracer is nil (tracing
// off), returns ctx as it is and a no-op span without allocating: the sync
// path pays nothing for spans nobody records. It takes no options, whose
// variadic slice would escape to the heap at every call site.
func startSpan(ctx context.Context, tracer trace.Tracer, name string) (context.Context, trace.Span) {
	if tracer == nil {
		return ctx, trace.SpanFromContext(context.Background())
	}
	return tracer.Start(ctx, name)
}

// endSpan records on span how its work ended and what it was about.
func endSpan(span trace.Span, err error, attrs ...attribute.KeyValue) {
	span.SetAttributes(attrs...)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
}
