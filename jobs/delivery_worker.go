package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/jobs/notify"
)

// Senders are the configured channels' senders; a nil one is a channel
// this deployment does not send on.
type Senders struct {
	Email   EmailSender
	SMS     SMSSender
	Webhook WebhookSender
}

// EmailSender, SMSSender and WebhookSender are jobs/notify's senders as the
// delivery worker uses them.
type (
	EmailSender interface {
		Send(ctx context.Context, m notify.EmailMessage) (notify.Result, error)
	}
	SMSSender interface {
		Send(ctx context.Context, m notify.SMSMessage) (notify.Result, error)
	}
	WebhookSender interface {
		Send(ctx context.Context, m notify.WebhookMessage) (notify.Result, error)
	}
)

// Channels reports which channels s can send on.
func (s *Senders) Channels() map[app.Channel]bool {
	if s == nil {
		return nil
	}
	return map[app.Channel]bool{
		app.ChannelEmail: s.Email != nil, app.ChannelSMS: s.SMS != nil, app.ChannelWebhook: s.Webhook != nil,
	}
}

// DeliveryWorker tells a client how its operation ended on one channel.
// Every attempt is recorded in deliveries; the job completes in the same
// transaction as the record of the attempt that succeeded. A crash between
// the send and that commit means one more send, which receivers can drop:
// the email's Message-ID, the SMS's Idempotency-Key and the webhook-id are
// the same on every attempt.
type DeliveryWorker struct {
	river.WorkerDefaults[app.DeliveryArgs]
	pool      *pgxpool.Pool
	senders   *Senders
	publicURL string
	log       *slog.Logger
	now       func() time.Time
	metrics   *app.Metrics
	tracer    trace.Tracer // nil: tracing off
}

// NewDeliveryWorker returns the worker for cfg.
func NewDeliveryWorker(cfg Config) *DeliveryWorker {
	return &DeliveryWorker{pool: cfg.Pool, senders: cfg.Senders, publicURL: strings.TrimRight(cfg.PublicURL, "/"),
		log: cfg.Logger, now: cfg.Now, metrics: cfg.Metrics, tracer: cfg.Tracing.Tracer(tracerName)}
}

// maxRetryAfterSnoozes bounds how often a receiver's Retry-After may
// postpone a delivery without spending an attempt.
const maxRetryAfterSnoozes = 20

func (w *DeliveryWorker) Work(ctx context.Context, job *river.Job[app.DeliveryArgs]) error {
	op, err := db.GetOperation(ctx, w.pool, job.Args.OperationID)
	if app.ErrorCode(err) == app.ENOTFOUND {
		return river.JobCancel(fmt.Errorf("operation %s does not exist", job.Args.OperationID))
	}
	if err != nil {
		return err
	}
	if job.Args.Status != "" && op.Status != job.Args.Status {
		// An operator reopened the operation since; its next ending will
		// be told on its own.
		return river.JobCancel(fmt.Errorf("operation %s is %s now, not %s", op.ID, op.Status, job.Args.Status))
	}
	target, send, err := w.prepare(op, job)
	if err != nil {
		w.record(ctx, op, job, target, "skipped", 0, err)
		return river.JobCancel(err)
	}
	// A 410 Gone disables the endpoint for the operation, not only for the
	// job that got it: a later ending (an operator retried the operation)
	// is a new job, and must not knock on the door that was closed. When
	// this cannot be read the job is retried rather than sent blind.
	disabled, err := db.TargetDisabled(ctx, w.pool, op.ID, string(job.Args.Channel), target)
	if err != nil {
		return err
	}
	if disabled {
		err := fmt.Errorf("not sent: the %s target refused an earlier delivery of this operation for good (410 Gone)", job.Args.Channel)
		w.record(ctx, op, job, target, "skipped", 0, err)
		return river.JobCancel(err)
	}
	// The send is a span of its own (deliver email|sms|webhook), so a
	// trace shows the customer being told; the webhook's and SMS's
	// requests are its children and carry its traceparent.
	sctx, span := startSpan(ctx, w.tracer, "deliver")
	res, err := send(sctx)
	if span.IsRecording() {
		span.SetName("deliver " + string(job.Args.Channel))
		span.SetAttributes(attribute.String("spillway.channel", string(job.Args.Channel)),
			attribute.String("spillway.operation_id", op.ID.String()), attribute.Int("http.response.status_code", res.StatusCode))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
	if err == nil {
		return w.complete(ctx, op, job, target, res)
	}

	var de *notify.DeliveryError
	errors.As(err, &de)
	code := res.StatusCode
	if de != nil && de.StatusCode != 0 {
		code = de.StatusCode
	}
	switch {
	case de != nil && de.Disable:
		w.record(ctx, op, job, target, "disabled", code, err)
		return river.JobCancel(err)
	case de != nil && de.Permanent:
		w.record(ctx, op, job, target, "failed", code, err)
		return river.JobCancel(err)
	}
	w.record(ctx, op, job, target, "failed", code, err)
	if de != nil && de.RetryAfter > 0 && snoozes(job.Metadata) < maxRetryAfterSnoozes {
		return river.JobSnooze(de.RetryAfter)
	}
	return err
}

// prepare renders the message for the job's channel and returns its target
// and a function that sends it.
func (w *DeliveryWorker) prepare(op *app.Operation, job *river.Job[app.DeliveryArgs]) (string, func(context.Context) (notify.Result, error), error) {
	notice := notify.PaymentNotice{
		OperationID: op.ID.String(), Status: string(op.Status), Amount: op.Payment.Amount,
		Currency: op.Payment.Currency, Description: op.Payment.Description,
		StatusURL: w.publicURL + "/orders/" + op.ID.String(),
	}
	if op.CompletedAt != nil {
		notice.CompletedAt = *op.CompletedAt
	}
	// One id per operation, channel and ending, the same on every attempt.
	deliveryID := fmt.Sprintf("%s-%s-%s", op.ID, job.Args.Channel, op.Status)
	var c app.Customer
	if op.Payment.Customer != nil {
		c = *op.Payment.Customer
	}
	s := w.senders
	switch job.Args.Channel {
	case app.ChannelEmail:
		if s == nil || s.Email == nil || c.Email == "" {
			return c.Email, nil, errors.New("email is not configured or not requested")
		}
		subject, text, html, err := notify.RenderPaymentEmail(notice)
		if err != nil {
			return c.Email, nil, err
		}
		m := notify.EmailMessage{To: c.Email, Subject: subject, Text: text, HTML: html, MessageID: deliveryID}
		return c.Email, func(ctx context.Context) (notify.Result, error) { return s.Email.Send(ctx, m) }, nil
	case app.ChannelSMS:
		if s == nil || s.SMS == nil || c.Phone == "" {
			return c.Phone, nil, errors.New("SMS is not configured or not requested")
		}
		m := notify.SMSMessage{To: c.Phone, Body: notify.RenderPaymentSMS(notice), IdempotencyKey: deliveryID}
		return c.Phone, func(ctx context.Context) (notify.Result, error) { return s.SMS.Send(ctx, m) }, nil
	case app.ChannelWebhook:
		url := op.Payment.CallbackURL
		if s == nil || s.Webhook == nil || url == "" {
			return url, nil, errors.New("webhooks are not configured or not requested")
		}
		payload, err := json.Marshal(struct {
			Type string                `json:"type"`
			Data app.OperationDocument `json:"data"`
		}{"operation." + string(op.Status), op.Document()})
		if err != nil {
			return url, nil, err
		}
		m := notify.WebhookMessage{URL: url, ID: "msg_" + deliveryID, Payload: payload}
		return url, func(ctx context.Context) (notify.Result, error) { return s.Webhook.Send(ctx, m) }, nil
	}
	return "", nil, fmt.Errorf("unknown channel %q", job.Args.Channel)
}

// complete records the successful attempt and completes the job together.
func (w *DeliveryWorker) complete(ctx context.Context, op *app.Operation, job *river.Job[app.DeliveryArgs], target string, res notify.Result) error {
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if err := db.InsertDelivery(ctx, tx, db.DeliveryRecord{
		OperationID: op.ID, Channel: string(job.Args.Channel), Target: target, Attempt: job.Attempt,
		Outcome: "sent", ResponseCode: res.StatusCode,
	}); err != nil {
		return err
	}
	if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
		return fmt.Errorf("complete delivery job: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	w.metrics.Delivered(job.Args.Channel, "sent")
	return nil
}

// record notes a failed or skipped attempt; losing the note must not lose
// the delivery, so errors are only logged.
func (w *DeliveryWorker) record(ctx context.Context, op *app.Operation, job *river.Job[app.DeliveryArgs], target, outcome string, code int, cause error) {
	w.metrics.Delivered(job.Args.Channel, outcome)
	err := db.InsertDelivery(ctx, w.pool, db.DeliveryRecord{
		OperationID: op.ID, Channel: string(job.Args.Channel), Target: target, Attempt: job.Attempt,
		Outcome: outcome, ResponseCode: code, Error: cause.Error(),
	})
	if err != nil {
		w.log.WarnContext(ctx, "record delivery", "operation_id", op.ID, "error", err)
	}
	w.log.WarnContext(ctx, "delivery failed", "operation_id", op.ID, "channel", job.Args.Channel, "attempt", job.Attempt, "error", cause)
}

// NextRetry follows the Standard Webhooks schedule for webhooks (5 s, 5 min,
// 30 min, 2 h, …) and a gentler exponential one for email and SMS.
func (w *DeliveryWorker) NextRetry(job *river.Job[app.DeliveryArgs]) time.Time {
	if job.Args.Channel == app.ChannelWebhook {
		return w.now().Add(notify.RetryDelay(job.Attempt, rand.Float64()))
	}
	return w.now().Add(Backoff(job.Attempt, 10*time.Second, time.Hour, rand.Float64()))
}

// Timeout bounds one send.
func (w *DeliveryWorker) Timeout(*river.Job[app.DeliveryArgs]) time.Duration { return time.Minute }

func snoozes(metadata []byte) int {
	var m struct {
		Snoozes int `json:"snoozes"`
	}
	_ = json.Unmarshal(metadata, &m)
	return m.Snoozes
}
