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

	"github.com/spillway/spillway/cmd/internal/loadgen"
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
	// Replayed: the answer carried Idempotent-Replayed: true, the stored
	// answer of an earlier attempt under the same key.
	Replayed bool
	// Detail is a problem answer's detail: what a 503 says was done.
	Detail string
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
		if !loadgen.SleepUntil(ctx, due) {
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
			kind := "payment"
			if i%2 == 1 {
				kind = "order"
			}
			a := send(ctx, client, base, kind, fmt.Sprintf("%s-%d", cfg.Prefix, i), due)
			mu.Lock()
			answers = append(answers, a)
			mu.Unlock()
		})
	}
	wg.Wait()
	return answers
}

// send makes one request of kind ("payment" or "order") under key. The
// load alternates the kinds, so both dependencies see traffic in every
// scenario.
func send(ctx context.Context, client *http.Client, base, kind, key string, due time.Time) answer {
	a := answer{Kind: kind, Key: key, Sent: due}
	path, body := "/api/v1/payments", paymentBody
	if kind == "order" {
		path, body = "/api/v1/orders", orderBody
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
	a.Replayed = res.Header.Get("Idempotent-Replayed") == "true"
	if a.acknowledged() {
		var doc struct {
			ID   string `json:"id"`
			Mode string `json:"mode"`
		}
		_ = json.Unmarshal(b, &doc)
		a.OpID, a.Mode = doc.ID, doc.Mode
	} else {
		var p struct {
			Detail string `json:"detail"`
		}
		_ = json.Unmarshal(b, &p)
		a.Detail = p.Detail
	}
	return a
}

// retryUnanswered sends again, with the same key and body, every request
// that got no answer or a 5xx, as a client told "nothing was acknowledged"
// (or told nothing) does. A request whose first attempt did commit must
// now get that attempt's answer replayed, and no second effect.
func retryUnanswered(ctx context.Context, answers []answer, targets func() []string) []answer {
	var todo []answer
	for _, a := range answers {
		if a.Status == 0 || a.Status >= 500 {
			todo = append(todo, a)
		}
	}
	client := &http.Client{Timeout: clientTimeout}
	defer client.CloseIdleConnections()
	out := make([]answer, len(todo))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8) // a client's retries, not a second burst
	for i, a := range todo {
		ts := targets()
		if len(ts) == 0 {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i] = send(ctx, client, ts[i%len(ts)], a.Kind, a.Key, time.Now())
			out[i].Detail = a.Detail // what the first attempt was told, to judge it by the replay
		})
	}
	wg.Wait()
	return out
}
