package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/db"
	"github.com/spillway/spillway/jobs"
	"github.com/spillway/spillway/jobs/notify"
	"github.com/spillway/spillway/jobs/notify/notifytest"
)

const testWebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// receivers are real loopback endpoints for each channel.
type receivers struct {
	smtp    *notifytest.SMTPBackend
	sms     *notifytest.SMSReceiver
	webhook *notifytest.WebhookReceiver
	senders *jobs.Senders
}

func newReceivers(t *testing.T) *receivers {
	t.Helper()
	r := &receivers{smtp: &notifytest.SMTPBackend{}}
	cert, _ := notifytest.TestCert(t)
	addr := notifytest.StartSMTP(t, r.smtp, notifytest.PlainSMTP, cert)
	r.sms = notifytest.NewSMSReceiver(t, "AC123", "token")
	r.webhook = notifytest.NewWebhookReceiver(t, testWebhookSecret)
	email, err := notify.NewEmail(notify.EmailConfig{URL: "smtp://" + addr, From: "Spillway <pay@spillway.localhost>", TLSPolicy: "none"})
	if err != nil {
		t.Fatal(err)
	}
	sms, err := notify.NewSMS(notify.SMSConfig{URL: r.sms.URL, From: "Spillway"})
	if err != nil {
		t.Fatal(err)
	}
	hook, err := notify.NewWebhook(notify.WebhookConfig{Secret: testWebhookSecret, AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	r.senders = &jobs.Senders{Email: email, SMS: sms, Webhook: hook}
	return r
}

// jobsEnded reports whether every payment and delivery job has ended:
// nothing is left that could send a message, a duplicate included.
func (h *harness) jobsEnded() bool {
	h.t.Helper()
	return h.count(`SELECT count(*) FROM river_job WHERE kind IN ('payment', 'delivery')
		AND state NOT IN ('completed', 'discarded', 'cancelled')`) == 0
}

// waitDelivered waits until every channel has had a message and every
// payment and delivery job has ended, so any duplicate would have arrived
// too, and checks each arrived once.
func (r *receivers) waitDelivered(t *testing.T, h *harness, id string) {
	t.Helper()
	apptest.WaitFor(t, "a delivery on every channel and every job ended", func() bool {
		return len(r.smtp.Messages()) >= 1 && len(r.sms.Requests()) >= 1 && len(r.webhook.Received()) >= 1 && h.jobsEnded()
	})
	mails, texts, hooks := r.smtp.Messages(), r.sms.Requests(), r.webhook.Received()
	if len(mails) != 1 || len(texts) != 1 || len(hooks) != 1 {
		t.Fatalf("want each channel once: %d emails, %d SMS, %d webhooks", len(mails), len(texts), len(hooks))
	}
	if m := mails[0]; len(m.To) != 1 || m.To[0] != "a@b.example" || !bytes.Contains(m.Data, []byte(id)) {
		t.Fatalf("email: to %v, mentions operation: %v", m.To, bytes.Contains(m.Data, []byte(id)))
	}
	if s := texts[0]; s.To != "+15551234567" || s.From != "Spillway" || !strings.Contains(s.Body, "succeeded") {
		t.Fatalf("sms: %+v", s)
	}
	w := hooks[0]
	var payload struct {
		Type string `json:"type"`
		Data struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"data"`
	}
	if err := json.Unmarshal(w.Payload, &payload); err != nil || !w.Verified || payload.Data.ID != id ||
		payload.Data.Status != "succeeded" || payload.Type != "operation.succeeded" {
		t.Fatalf("webhook: verified=%v %s", w.Verified, w.Payload)
	}
}

const notifiedPayment = `{"amount": 1999, "currency": "usd", "description": "<script>alert(1)</script>",
	"customer": {"email": "a@b.example", "phone": "+15551234567"}, "callback_url": "%s"}`

func TestNotificationsAfterAsyncCompletion(t *testing.T) {
	t.Parallel()
	rc := newReceivers(t)
	h := newHarness(t, harnessOpts{workers: 2, senders: rc.senders, publicURL: "http://127.0.0.1:8080"})
	h.sim.SetChaos(sim.Chaos{Down: true})
	r := h.pay("notify-1", keyf(notifiedPayment, rc.webhook.URL))
	if r.status != http.StatusAccepted {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)
	// The worker has failed twice against the dead provider: the
	// operation is still open, and nothing may have been told.
	apptest.WaitFor(t, "the worker to fail twice", func() bool {
		return h.count(`SELECT attempts FROM operations WHERE id = $1`, id) >= 3
	})
	if n := len(rc.smtp.Messages()) + len(rc.sms.Requests()) + len(rc.webhook.Received()); n != 0 {
		t.Fatalf("%d notifications before the operation ended", n)
	}
	if n := h.count(`SELECT count(*) FROM river_job WHERE kind = 'delivery'`); n != 0 {
		t.Fatalf("%d delivery jobs before the operation ended", n)
	}
	h.sim.SetChaos(sim.Chaos{})
	h.waitStatus(id, app.StatusSucceeded)
	rc.waitDelivered(t, h, id)
	// The plain-text part may carry the description as is; the HTML part
	// must carry it escaped.
	if msg := string(rc.smtp.Messages()[0].Data); !strings.Contains(msg, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatal("the description is not escaped in the email's HTML part")
	}
	if n := h.count(`SELECT count(*) FROM deliveries WHERE outcome = 'sent'`); n != 3 {
		t.Fatalf("deliveries recorded as sent: %d, want 3", n)
	}
}

func TestNotificationsAfterSyncCompletion(t *testing.T) {
	t.Parallel()
	rc := newReceivers(t)
	h := newHarness(t, harnessOpts{workers: 1, senders: rc.senders})
	r := h.pay("notify-sync", keyf(notifiedPayment, rc.webhook.URL))
	if r.status != http.StatusCreated {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	rc.waitDelivered(t, h, r.json(t)["id"].(string))
}

func TestCallbackURLToPrivateAddressRefused(t *testing.T) {
	t.Parallel()
	rc := newReceivers(t)
	h := newHarness(t, harnessOpts{senders: rc.senders, checkCallback: func(url string) error {
		return notify.CheckURL(url, false)
	}})
	r := h.pay("ssrf-1", `{"amount": 100, "currency": "usd", "callback_url": "http://169.254.169.254/latest/meta-data"}`)
	if r.status != http.StatusUnprocessableEntity || r.json(t)["field"] != "callback_url" {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	if n := h.count(`SELECT count(*) FROM operations`); n != 0 {
		t.Fatalf("a refused request wrote %d operations", n)
	}
}

// A payment that failed and was told so, then retried by an operator and
// succeeded, is told again: the new ending is news.
func TestRetriedFailureIsToldItsNewEnding(t *testing.T) {
	t.Parallel()
	rc := newReceivers(t)
	h := newHarness(t, harnessOpts{workers: 1, maxAttempts: 2, senders: rc.senders})
	h.sim.SetChaos(sim.Chaos{Down: true})
	r := h.pay("retry-told", keyf(notifiedPayment, rc.webhook.URL))
	id := r.json(t)["id"].(string)
	h.waitStatus(id, app.StatusFailed)
	apptest.WaitFor(t, "the failure to be told on every channel", func() bool {
		return len(rc.webhook.Received()) >= 1 && len(rc.smtp.Messages()) >= 1 && len(rc.sms.Requests()) >= 1
	})

	// The admin's Retry: the provider is asked first (it has nothing
	// under the key), then the job goes back in the queue and the
	// operation is reopened, in one transaction.
	h.sim.SetChaos(sim.Chaos{})
	ctx := context.Background()
	var jobID int64
	if err := h.pool.QueryRow(ctx, `SELECT job_id FROM operations WHERE id = $1`, id).Scan(&jobID); err != nil {
		t.Fatal(err)
	}
	// River marks the job discarded just after the worker records the
	// failure; an operator acts on what the admin UI shows as discarded.
	apptest.WaitFor(t, "the job to be discarded", func() bool {
		return h.count(`SELECT count(*) FROM river_job WHERE id = $1 AND state = 'discarded'`, jobID) == 1
	})
	op, err := app.NewOperator(app.OperatorConfig{Store: db.NewStore(h.pool), Jobs: h.river, Provider: h.provider,
		Channels: rc.senders.Channels()})
	if err != nil {
		t.Fatal(err)
	}
	res, err := op.ApplyJobs(ctx, app.Actor{Email: "ops@example.com"}, app.JobRequest{Action: app.ActionRetry}, []int64{jobID})
	if err != nil || len(res.Changed) != 1 {
		t.Fatalf("retry: %+v, %v", res, err)
	}
	h.waitStatus(id, app.StatusSucceeded)
	apptest.WaitFor(t, "the success after the retry to be told on every channel and every job ended", func() bool {
		return len(rc.webhook.Received()) >= 2 && len(rc.smtp.Messages()) >= 2 && len(rc.sms.Requests()) >= 2 && h.jobsEnded()
	})
	hooks := rc.webhook.Received()
	if len(hooks) != 2 || len(rc.smtp.Messages()) != 2 || len(rc.sms.Requests()) != 2 {
		t.Fatalf("want each channel told twice, once per ending: %d webhooks, %d emails, %d SMS",
			len(hooks), len(rc.smtp.Messages()), len(rc.sms.Requests()))
	}
	if !strings.Contains(string(hooks[0].Payload), `"operation.failed"`) || !strings.Contains(string(hooks[1].Payload), `"operation.succeeded"`) ||
		hooks[0].ID == hooks[1].ID {
		t.Fatalf("webhooks: %s / %s", hooks[0].Payload, hooks[1].Payload)
	}
}
