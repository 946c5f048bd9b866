package db

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// QueryTracer makes each query and batch a span, as pgx's QueryTracer and
// BatchTracer hooks see them. No OpenTelemetry tracer for pgx is served
// here, and this is all of one.
//
// It records only queries made inside a recording span (a request's, a
// job attempt's): River polls and the periodic work run on contexts of
// their own, and a root trace for each of their queries would bury the
// stories an operator looks for.
type QueryTracer struct {
	tracer trace.Tracer
}

var (
	_ pgx.QueryTracer = (*QueryTracer)(nil)
	_ pgx.BatchTracer = (*QueryTracer)(nil)
)

// NewQueryTracer returns a tracer recording with t.
func NewQueryTracer(t trace.Tracer) *QueryTracer { return &QueryTracer{tracer: t} }

// maxStatement bounds the statement text kept on a span: the SQL is ours
// (arguments are never recorded), and the long ones are batch inserts.
const maxStatement = 2000

func (q *QueryTracer) start(ctx context.Context, name, sql string) context.Context {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx
	}
	ctx, span := q.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient))
	span.SetAttributes(attribute.String("db.system.name", "postgresql"))
	if sql != "" {
		if len(sql) > maxStatement {
			sql = sql[:maxStatement]
		}
		span.SetAttributes(attribute.String("db.query.text", sql))
	}
	return ctx
}

func end(ctx context.Context, err error) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// TraceQueryStart opens a span named after the statement's verb ("db
// SELECT"), so a trace reads as what the database was asked.
func (q *QueryTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return q.start(ctx, "db "+verb(data.SQL), data.SQL)
}

func (q *QueryTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	end(ctx, data.Err)
}

// TraceBatchStart opens one span for the batch; its queries are events on it.
func (q *QueryTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	ctx = q.start(ctx, "db batch", "")
	if span := trace.SpanFromContext(ctx); span.IsRecording() && data.Batch != nil {
		span.SetAttributes(attribute.Int("db.operation.batch.size", data.Batch.Len()))
	}
	return ctx
}

func (q *QueryTracer) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	sql := data.SQL
	if len(sql) > maxStatement {
		sql = sql[:maxStatement]
	}
	span.AddEvent("query", trace.WithAttributes(attribute.String("db.query.text", sql)))
	if data.Err != nil {
		span.RecordError(data.Err)
	}
}

func (q *QueryTracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchEndData) {
	end(ctx, data.Err)
}

// verb is what a statement is called: the name in a leading sqlc-style
// "-- name: JobInsertFastMany :many" comment (River's queries have one),
// otherwise its first word in capitals: SELECT, INSERT, WITH…
func verb(sql string) string {
	for {
		sql = strings.TrimSpace(sql)
		if !strings.HasPrefix(sql, "--") {
			break
		}
		line, rest, _ := strings.Cut(sql, "\n")
		if name, ok := strings.CutPrefix(strings.TrimSpace(strings.TrimPrefix(line, "--")), "name:"); ok {
			if f := strings.Fields(name); len(f) > 0 {
				return f[0]
			}
		}
		sql = rest
	}
	word, _, _ := strings.Cut(sql, " ")
	if word = strings.TrimSpace(word); word == "" {
		return "query"
	}
	return strings.ToUpper(word)
}
