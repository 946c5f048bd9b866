package tracing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/spillway/spillway/app/tracing"
)

// A record logged inside a span names the trace, the span, the request
// and the operation, once each, in JSON.
func TestLogRecordsNameTraceSpanRequestAndOperation(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(tracing.NewLogHandler(slog.NewJSONHandler(&buf, nil)))
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("test").Start(context.Background(), "work")
	ctx = tracing.WithOperationID(tracing.WithRequestID(ctx, "req-1"), "op-1")
	log.With("dependency", "payment").InfoContext(ctx, "step failed", "operation_id", "op-1")
	span.End()

	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not one JSON record: %q", buf.String())
	}
	sc := span.SpanContext()
	for k, want := range map[string]string{"trace_id": sc.TraceID().String(), "span_id": sc.SpanID().String(),
		"request_id": "req-1", "operation_id": "op-1", "dependency": "payment"} {
		if got[k] != want {
			t.Errorf("%s = %v, want %s (record %s)", k, got[k], want, buf.String())
		}
	}
	if n := bytes.Count(buf.Bytes(), []byte(`"operation_id"`)); n != 1 {
		t.Errorf("operation_id appears %d times, want once: %s", n, buf.String())
	}
}

// Without a span or ids in the context a record is as the handler wrote it.
func TestLogRecordsWithoutContextAreUnchanged(t *testing.T) {
	var plain, wrapped bytes.Buffer
	opts := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}
	slog.New(slog.NewJSONHandler(&plain, opts)).Info("hello", "n", 1)
	slog.New(tracing.NewLogHandler(slog.NewJSONHandler(&wrapped, opts))).Info("hello", "n", 1)
	if plain.String() != wrapped.String() {
		t.Errorf("wrapped %q, want %q", wrapped.String(), plain.String())
	}
}

// Off, tracing hands back what it wraps and no tracer.
func TestOffWrapsNothing(t *testing.T) {
	tr, err := tracing.New(context.Background(), tracing.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if tr.On() || tr.Tracer("x") != nil || tr.WrapTransport("payment") != nil {
		t.Errorf("off tracing is on: %v", tr.On())
	}
	if rt := tr.Transport(nil, "payment"); rt != nil {
		t.Errorf("off Transport(nil) = %v, want nil", rt)
	}
}
