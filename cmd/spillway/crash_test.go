package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/spillway/spillway/db/dbtest"
	"github.com/spillway/spillway/web/notify/notifytest"
	"github.com/spillway/spillway/web/sim"
)

// TestMain lets the test binary stand in for the spillway binary: a child
// started with SPILLWAY_TEST_CHILD=1 runs `serve` and nothing else. It
// handles signals exactly as main does (signalContext, the same exit
// statuses), so a test that signals the child exercises the real shutdown.
func TestMain(m *testing.M) {
	if os.Getenv("SPILLWAY_TEST_CHILD") == "1" {
		ctx, stop := signalContext()
		err := run(ctx, []string{"serve"}, os.Getenv, os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "spillway:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func startChild(t *testing.T, env []string, api string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, "SPILLWAY_TEST_CHILD=1")...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		if res, err := http.Get(api + "/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return cmd
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("child never became healthy")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSIGKILLBetweenCaptureAndCompletion: a payment captured by one process
// that is then killed with SIGKILL is completed by the next one, and the
// customer hears of it exactly once on every channel.
func TestSIGKILLBetweenCaptureAndCompletion(t *testing.T) {
	t.Parallel()
	pool, dbURL := dbtest.NewWithURL(t)
	ctx := context.Background()
	provider := sim.New(sim.Config{})
	simSrv := httptest.NewServer(provider)
	t.Cleanup(simSrv.Close)
	smtpBackend := &notifytest.SMTPBackend{}
	cert, _ := notifytest.TestCert(t)
	smtpAddr := notifytest.StartSMTP(t, smtpBackend, notifytest.PlainSMTP, cert)
	sms := notifytest.NewSMSReceiver(t, "AC1", "secret")
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	hooks := notifytest.NewWebhookReceiver(t, secret)

	addr := freeAddr(t)
	api := "http://" + addr
	env := []string{
		"DATABASE_URL=" + dbURL, "SPILLWAY_ADDR=" + addr, "PAYMENT_PROVIDER=http", "PAYMENT_PROVIDER_URL=" + simSrv.URL,
		"SMTP_URL=smtp://" + smtpAddr, "SMTP_TLS=none", "SMS_PROVIDER_URL=" + sms.URL, "WEBHOOK_SECRET=" + secret,
		"WEBHOOK_ALLOW_PRIVATE=true", "PAYMENT_RETRY_BASE=50ms", "PAYMENT_RETRY_MAX=200ms", "PAYMENT_ASYNC_TIMEOUT=2s",
		"DB_MAX_CONNS=20", "SYNC_CONCURRENCY=8", "WORKERS=4", "LOG_LEVEL=error",
	}
	first := startChild(t, env, api)
	// An operator holds the breaker open: the payment is captured without
	// a call and the paused queue keeps it waiting when the process dies.
	if _, err := pool.Exec(ctx, `UPDATE breakers SET state = 'forced_open', generation = generation + 1 WHERE name = 'payment'`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `SELECT pg_notify('spillway_breakers', 'payment')`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	body := fmt.Sprintf(`{"amount": 4200, "currency": "usd", "customer": {"email": "a@b.example", "phone": "+15551234567"}, "callback_url": %q}`, hooks.URL)
	status, doc, _ := call(t, "POST", api+"/api/v1/payments", "kill-1", body)
	if status != http.StatusAccepted {
		t.Fatalf("capture: %d %v", status, doc)
	}
	id := doc["id"].(string)

	if err := first.Process.Kill(); err != nil { // SIGKILL: no shutdown, no flush
		t.Fatal(err)
	}
	_ = first.Wait()
	if _, err := pool.Exec(ctx, `UPDATE breakers SET state = 'closed', generation = generation + 1 WHERE name = 'payment'`); err != nil {
		t.Fatal(err)
	}
	startChild(t, env, api)

	// The live status stream of the new process sees the payment through.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api+"/api/v1/operations/"+id+"/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	done := make(chan bool, 1)
	go func() {
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") && strings.Contains(sc.Text(), `"status":"succeeded"`) {
				done <- true
				return
			}
		}
		done <- false
	}()
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("stream ended without succeeded")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no succeeded event on the stream")
	}
	if got := provider.Effects(id); got != 1 {
		t.Fatalf("provider effects %d, want 1", got)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(smtpBackend.Messages()) < 1 || len(sms.Requests()) < 1 || len(hooks.Received()) < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("deliveries: %d emails, %d SMS, %d webhooks", len(smtpBackend.Messages()), len(sms.Requests()), len(hooks.Received()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // room for a duplicate to show itself
	if e, s, w := len(smtpBackend.Messages()), len(sms.Requests()), hooks.Received(); e != 1 || s != 1 || len(w) != 1 || !w[0].Verified {
		t.Fatalf("want each channel exactly once: %d emails, %d SMS, %d webhooks (verified %v)", e, s, len(w), len(w) > 0 && w[0].Verified)
	}
}
