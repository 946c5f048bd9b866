package tracing

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	operationIDKey
)

// WithRequestID returns ctx carrying the id of the request being served,
// which every record logged with it then names (request_id).
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

// RequestID is the request id ctx carries, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// WithOperationID returns ctx carrying the operation being worked, which
// every record logged with it then names (operation_id).
func WithOperationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, operationIDKey, id)
}

// OperationID is the operation id ctx carries, or "".
func OperationID(ctx context.Context) string {
	id, _ := ctx.Value(operationIDKey).(string)
	return id
}

// NewLogHandler wraps h so that a record logged with a context names what
// the context knows: trace_id and span_id of the span it was logged in,
// request_id and operation_id. A log line then leads to its trace in
// Jaeger and back. A field the record already has is not repeated. Only
// records that are written pay for it: Enabled is h's own.
func NewLogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	for _, f := range [...]struct{ key, value string }{
		{"request_id", RequestID(ctx)}, {"operation_id", OperationID(ctx)},
	} {
		if f.value != "" && !hasAttr(r, f.key) {
			r.AddAttrs(slog.String(f.key, f.value))
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return logHandler{h.Handler.WithAttrs(as)}
}
func (h logHandler) WithGroup(name string) slog.Handler { return logHandler{h.Handler.WithGroup(name)} }

func hasAttr(r slog.Record, key string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == key
		return !found
	})
	return found
}
