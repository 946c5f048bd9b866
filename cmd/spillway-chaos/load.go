package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// answer is one request the load sent and what came back.
type answer struct {
	Kind    string        // "payment" or "order"
	Key     string        // its Idempotency-Key
	Sent    time.Time     // when it was due (open loop: the schedule, not the send)
	Latency time.Duration // from Sent to the end of the answer
	Status  int           // 0: no answer (refused, reset, client timeout)
	OpID    string        // the operation's id, from a 2xx body
	Mode    string        // "sync" or "async", from a 2xx body
}

// acknowledged is the promise's trigger: a 2xx, after which the request
// must never be lost.
func (a answer) acknowledged() bool { return a.Status >= 200 && a.Status < 300 }

// loadConfig is one scenario's traffic.
type loadConfig struct {
	Rate     float64       // requests per second, payments and orders alternating
	Duration time.Duration // how long to send
	Prefix   string        // starts every Idempotency-Key, unique per run and scenario
	// Targets returns the API base URLs to spread requests over, read per
	// request: an instance that is down is left out, as a load balancer's
	// health check would.
	Targets func() []string
}

// maxInFlight bounds the goroutines an unresponsive server can pile up;
// past it a due request waits, and its latency counts the wait.
const maxInFlight = 512

// clientTimeout is far above every server budget, so a server that
// overruns its budget shows as a long latency rather than a missing answer.
const clientTimeout = 20 * time.Second

var (
	paymentBody = []byte(`{"amount":1999,"currency":"usd","description":"chaos"}`)
	orderBody   = []byte(`{"lines":[{"sku":"` + chaosSKU + `","quantity":1}],"currency":"usd"}`)
)

// runLoad sends cfg's requests open-loop (on a fixed schedule, so a slow
// server is charged for the queueing it causes) and returns every answer.
func runLoad(ctx context.Context, cfg loadConfig) []answer {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: clientTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	var (
		mu      sync.Mutex
		answers []answer
		wg      sync.WaitGroup
		rr      atomic.Int64
	)
	sem := make(chan struct{}, maxInFlight)
	start := time.Now()
	n := int(cfg.Rate * cfg.Duration.Seconds())
	for i := range n {
		due := start.Add(time.Duration(float64(i) / cfg.Rate * float64(time.Second)))
		if !sleepUntil(ctx, due) {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			targets := cfg.Targets()
			if len(targets) == 0 {
				return
			}
			base := targets[int(rr.Add(1))%len(targets)]
			a := send(ctx, client, base, cfg.Prefix, i, due)
			mu.Lock()
			answers = append(answers, a)
			mu.Unlock()
		})
	}
	wg.Wait()
	return answers
}

// send makes request i: even ones are payments, odd ones orders, so both
// dependencies see traffic in every scenario.
func send(ctx context.Context, client *http.Client, base, prefix string, i int, due time.Time) answer {
	a := answer{Kind: "payment", Key: fmt.Sprintf("%s-%d", prefix, i), Sent: due}
	path, body := "/api/v1/payments", paymentBody
	if i%2 == 1 {
		a.Kind, path, body = "order", "/api/v1/orders", orderBody
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
	if err != nil {
		return a
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", a.Key)
	res, err := client.Do(req)
	if err != nil {
		a.Latency = time.Since(due)
		return a
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	a.Latency = time.Since(due)
	if err != nil {
		return a // a cut body is no answer: the client cannot know it was acknowledged
	}
	a.Status = res.StatusCode
	if a.acknowledged() {
		var doc struct {
			ID   string `json:"id"`
			Mode string `json:"mode"`
		}
		_ = json.Unmarshal(b, &doc)
		a.OpID, a.Mode = doc.ID, doc.Mode
	}
	return a
}

// sleepUntil waits until t or until ctx ends, reporting whether it was t.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
