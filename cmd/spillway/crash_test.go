package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/spillway/spillway/app/apptest"
	"github.com/spillway/spillway/app/sim"
	"github.com/spillway/spillway/db/dbtest"
	"github.com/spillway/spillway/jobs/notify/notifytest"
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

// startChild runs the test binary as `spillway serve` with env added,
// listening on a port of the kernel's choosing, and returns it once it is
// healthy with the API's base URL, read from what it prints.
func startChild(t *testing.T, env []string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, "SPILLWAY_ADDR=127.0.0.1:0", "SPILLWAY_TEST_CHILD=1")...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := apiLine.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
				break
			}
		}
		close(addr)
		// Keep reading so the child never blocks on a full pipe.
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var api string
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatal("child exited before it printed its address")
		}
		api = "http://" + a
	case <-time.After(apptest.Patience):
		t.Fatalf("child printed no address within %s", apptest.Patience)
	}
	waitHealthy(t, api)
	return cmd, api
}

// metricLine reports whether api's /metrics has line exactly.
func metricLine(t *testing.T, api, line string) bool {
	t.Helper()
	res, err := http.Get(api + "/metrics")
	if err != nil {
		return false
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if l == line {
			return true
		}
	}
	return false
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

	env := []string{
		"DATABASE_URL=" + dbURL, "PAYMENT_PROVIDER=http", "PAYMENT_PROVIDER_URL=" + simSrv.URL,
		"SMTP_URL=smtp://" + smtpAddr, "SMTP_TLS=none", "SMS_PROVIDER_URL=" + sms.URL, "WEBHOOK_SECRET=" + secret,
		"WEBHOOK_ALLOW_PRIVATE=true", "PAYMENT_RETRY_BASE=50ms", "PAYMENT_RETRY_MAX=200ms", "PAYMENT_ASYNC_TIMEOUT=2s",
		// A failure guard: a capture on a loaded machine must not be
		// refused for a slow BEGIN.
		"CAPTURE_TIMEOUT=30s",
		"DB_MAX_CONNS=20", "SYNC_CONCURRENCY=8", "WORKERS=4", "LOG_LEVEL=error",
	}
	first, api := startChild(t, env)
	// An operator holds the breaker open: the payment is captured without
	// a call and the paused queue keeps it waiting when the process dies.
	if _, err := pool.Exec(ctx, `UPDATE breakers SET state = 'forced_open', generation = generation + 1 WHERE name = 'payment'`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `SELECT pg_notify('spillway_breakers', 'payment')`); err != nil {
		t.Fatal(err)
	}
	// The child reports the state it holds in /metrics, set together with
	// the copy its requests are decided from; its queue gate pauses the
	// payments queue from the same news.
	apptest.WaitFor(t, "the child to see the breaker forced open", func() bool {
		return metricLine(t, api, `spillway_breaker_state{dependency="payment",state="forced_open"} 1`)
	})
	apptest.WaitFor(t, "the payments queue to be paused", func() bool {
		var paused bool
		err := pool.QueryRow(ctx, `SELECT paused_at IS NOT NULL FROM river_queue WHERE name = 'payments'`).Scan(&paused)
		return err == nil && paused
	})
	body := fmt.Sprintf(`{"amount": 4200, "currency": "usd", "customer": {"email": "a@b.example", "phone": "+15551234567"}, "callback_url": %q}`, hooks.URL)
	status, doc, _ := call(t, "POST", api+"/api/v1/payments", "kill-1", body)
	if status != http.StatusAccepted || doc["reason"] != "breaker_open" {
		t.Fatalf("capture: %d %v, want 202 breaker_open", status, doc)
	}
	id := doc["id"].(string)

	if err := first.Process.Kill(); err != nil { // SIGKILL: no shutdown, no flush
		t.Fatal(err)
	}
	_ = first.Wait()
	if _, err := pool.Exec(ctx, `UPDATE breakers SET state = 'closed', generation = generation + 1 WHERE name = 'payment'`); err != nil {
		t.Fatal(err)
	}
	_, api = startChild(t, env)

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
	// A failure guard. It outlasts River's rescue of a job left running
	// (twice the longest async timeout + 40s), the slow path should the first child
	// have fetched the job before its queue pause took hold.
	const streamGuard = 2 * time.Minute
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("stream ended without succeeded")
		}
	case <-time.After(streamGuard):
		t.Fatalf("no succeeded event on the stream within %s", streamGuard)
	}
	if got := provider.Effects(id); got != 1 {
		t.Fatalf("provider effects %d, want 1", got)
	}
	// Every payment and delivery job has ended, so nothing is left that
	// could send again: what the receivers hold now is all they will get.
	// (Each receiver records a message before answering it, so before its
	// job can end.)
	apptest.WaitFor(t, "a delivery on every channel and every job ended", func() bool {
		if len(smtpBackend.Messages()) < 1 || len(sms.Requests()) < 1 || len(hooks.Received()) < 1 {
			return false
		}
		var unfinished int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM river_job
			WHERE kind IN ('payment', 'delivery') AND state NOT IN ('completed', 'discarded', 'cancelled')`).Scan(&unfinished)
		return err == nil && unfinished == 0
	})
	if e, s, w := len(smtpBackend.Messages()), len(sms.Requests()), hooks.Received(); e != 1 || s != 1 || len(w) != 1 || !w[0].Verified {
		t.Fatalf("want each channel exactly once: %d emails, %d SMS, %d webhooks (verified %v)", e, s, len(w), len(w) > 0 && w[0].Verified)
	}
}
