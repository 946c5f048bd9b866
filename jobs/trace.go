package jobs

import (
	"context"
	"encoding/json"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/riverqueue/rivercontrib/otelriver"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/spillway/spillway/app/tracing"
)

// tracerName names the spans this package starts.
const tracerName = "github.com/spillway/spillway/jobs"

// traceMiddleware is River's middleware when tracing is on: otelriver's
// insert side stores the inserting span's traceparent in the job's
// metadata, and workSpans makes each attempt a span.
//
// Why not otelriver's work side too: it starts every attempt as a new
// trace linked to the insert. Spillway wants a captured payment's story in
// one trace, so the first attempt is a child of the request that captured
// it (request → capture → attempt → provider call), and only a retry,
// which may come hours later, starts a trace of its own with a span link
// back to that first trace.
func traceMiddleware(t *tracing.Tracing) []rivertype.Middleware {
	if !t.On() {
		return nil
	}
	ins := otelriver.NewMiddleware(&otelriver.MiddlewareConfig{
		TracerProvider: t.Provider(), MeterProvider: metricnoop.NewMeterProvider(),
		EnableTracePropagation: true, EnableWorkSpanJobKindSuffix: true,
	})
	return []rivertype.Middleware{&insertSpans{m: ins}, &workSpans{tracer: t.Tracer(tracerName)}}
}

// insertSpans is otelriver's insert middleware alone.
type insertSpans struct {
	river.MiddlewareDefaults
	m *otelriver.Middleware
}

// InsertMany traces inserts made within a span (a request's capture, an
// attempt's follow-ups). River's periodic jobs and the batched writes are
// inserted on contexts of their own: a root trace for each would only be
// noise, and a batch's jobs carry their own traceparent (insertedWithin),
// which otelriver's would overwrite.
func (i *insertSpans) InsertMany(ctx context.Context, params []*rivertype.JobInsertParams,
	doInner func(context.Context) ([]*rivertype.JobInsertResult, error)) ([]*rivertype.JobInsertResult, error) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return doInner(ctx)
	}
	return i.m.InsertMany(ctx, params, doInner)
}

// insertedWithin stores span's traceparent in each job's metadata, as
// otelriver does for the span of the inserting context, for jobs inserted
// on a context that is not span's (a batch's); jobs as they are when span
// is invalid (tracing off).
func insertedWithin(span trace.SpanContext, jobs []river.InsertManyParams) []river.InsertManyParams {
	if !span.IsValid() {
		return jobs
	}
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), span), carrier)
	for i := range jobs {
		opts := river.InsertOpts{}
		if jobs[i].InsertOpts != nil {
			opts = *jobs[i].InsertOpts
		}
		meta := map[string]any{}
		if len(opts.Metadata) > 0 && json.Unmarshal(opts.Metadata, &meta) != nil {
			continue // not ours to rewrite
		}
		for k, v := range carrier {
			meta[k] = v
		}
		b, err := json.Marshal(meta)
		if err != nil {
			continue
		}
		opts.Metadata = b
		jobs[i].InsertOpts = &opts
	}
	return jobs
}

// workSpans makes each attempt of a job a span, river.work/<kind>: the
// first attempt's parent is the span that inserted the job (the request's
// capture), every later attempt is the root of a new trace with a link to
// it.
type workSpans struct {
	river.MiddlewareDefaults
	tracer trace.Tracer
}

func (w *workSpans) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
	if inserted := insertedBy(job.Metadata); inserted.IsValid() {
		if job.Attempt <= 1 {
			ctx = trace.ContextWithRemoteSpanContext(ctx, inserted)
		} else {
			opts = append(opts, trace.WithNewRoot(), trace.WithLinks(trace.Link{SpanContext: inserted,
				Attributes: []attribute.KeyValue{attribute.String("spillway.link", "first attempt's trace")}}))
		}
	}
	ctx, span := w.tracer.Start(ctx, "river.work/"+job.Kind, opts...)
	defer span.End()
	span.SetAttributes(attribute.Int64("river.job.id", job.ID), attribute.Int("river.job.attempt", job.Attempt),
		attribute.String("river.job.kind", job.Kind), attribute.String("river.job.queue", job.Queue))
	err := doInner(ctx)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}

// insertedBy is the span context otelriver stored in the job's metadata
// when it was inserted; invalid when there is none.
func insertedBy(metadata []byte) trace.SpanContext {
	var m map[string]any
	if len(metadata) == 0 || json.Unmarshal(metadata, &m) != nil {
		return trace.SpanContext{}
	}
	carrier := propagation.MapCarrier{}
	for k, v := range m {
		if s, ok := v.(string); ok {
			carrier[k] = s
		}
	}
	return trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), carrier))
}

// startSpan starts a span with tracer, or, when tracer is nil (tracing
// off), returns ctx and a no-op span without allocating.
func startSpan(ctx context.Context, tracer trace.Tracer, name string) (context.Context, trace.Span) {
	if tracer == nil {
		return ctx, trace.SpanFromContext(context.Background())
	}
	return tracer.Start(ctx, name)
}
