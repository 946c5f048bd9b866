package sim

import (
	"net/http"
	"sync"
	"time"
)

// Both dependencies keep the same kind of books: an entry per idempotency
// key, the first decided answer stored and replayed, counts of calls,
// lookups and effects, and a key closed for good by a lookup that found
// nothing, so a request still on the wire does nothing. keyedLedger is
// those books once, for a record type R: chargeRecord for the payment
// provider, reserveOutcome for the inventory. What a request decides, and
// what a lookup answers when it finds R, stay with each dependency.

// keyedEntry is everything a ledger knows about one idempotency key.
type keyedEntry[R any] struct {
	// mu serializes the requests and lookups of this key, so two
	// concurrent first requests cannot both record an effect, and a
	// lookup either sees the record or closes the key before it is
	// decided — never "not found" and then an effect. It is never taken
	// while Sim.mu is held (Sim.mu may be taken while holding it), and
	// never held across the latency sleep.
	mu     sync.Mutex
	answer *answer // first stored answer; guarded by mu

	// Guarded by Sim.mu, so the control API can read them without waiting
	// behind a request that holds mu.
	calls   int
	lookups int
	effects int

	// Written holding both mu and Sim.mu, so either lock is enough to
	// read them.
	closed bool // a lookup found nothing and closed the key
	rec    *R   // what was decided under the key; nil before
}

// keyedLedger is one dependency's entries and their totals. Guarded by
// Sim.mu, except where keyedEntry says otherwise.
type keyedLedger[R any] struct {
	entries  map[string]*keyedEntry[R] // by idempotency key
	calls    int                       // valid keyed requests
	lookups  int                       // valid lookups
	effects  int                       // effects recorded
	seq      int                       // sequence number of the last effect
	failNext int                       // lookups still to fail, see FailNextLookups
}

func newKeyedLedger[R any]() keyedLedger[R] {
	return keyedLedger[R]{entries: make(map[string]*keyedEntry[R])}
}

// enterLocked returns key's entry, creating it.
func (l *keyedLedger[R]) enterLocked(key string) *keyedEntry[R] {
	e := l.entries[key]
	if e == nil {
		e = &keyedEntry[R]{}
		l.entries[key] = e
	}
	return e
}

// currentLocked reports whether e is still key's entry. After a Reset the
// entry is orphaned: its request still gets an answer, but what it does
// belongs to the old generation and must not leak into the new one.
func (l *keyedLedger[R]) currentLocked(key string, e *keyedEntry[R]) bool {
	return l.entries[key] == e
}

// effectLocked counts an effect under e, which must be current, and
// returns its sequence number: 1, 2, 3… in the order effects happened.
func (l *keyedLedger[R]) effectLocked(e *keyedEntry[R]) int {
	e.effects++
	l.effects++
	l.seq++
	return l.seq
}

// keyClosedBody answers a request whose key a lookup closed.
var keyClosedBody = []byte(`{"status":"key_closed"}`)

// notFoundBody answers a lookup that found nothing (and closed the key).
var notFoundBody = []byte(`{"status":"not_found"}`)

// begin opens a request or a lookup under key, holding Sim.mu, which
// guards the counts and the chaos: count counts it and may fail it first
// (FailNext…), then cs's chaos may. It returns key's entry, the latency
// to add, and the 503 if it failed. Nothing is decided yet, so the key's
// lock is not needed (and must not be taken under Sim.mu anyway).
func (l *keyedLedger[R]) begin(s *Sim, cs *chaosState, key string,
	count func(e *keyedEntry[R]) (answer, bool)) (e *keyedEntry[R], latency time.Duration, ans answer, failed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e = l.enterLocked(key)
	latency = cs.chaos.Latency
	if ans, failed = count(e); !failed {
		ans, failed = s.chaosFailureLocked(cs)
	}
	return e, latency, ans, failed
}

// countCallLocked counts a keyed request; nothing but chaos fails one.
func (l *keyedLedger[R]) countCallLocked(e *keyedEntry[R]) (answer, bool) {
	e.calls++
	l.calls++
	return answer{}, false
}

// post runs one valid keyed request: counted as a call, cs's chaos (503,
// no effect), then, holding the key's lock, the stored answer replayed,
// or 409 key_closed if a lookup closed the key, or else decide. decide is
// called holding e.mu and not Sim.mu (which it takes to record what it
// decides in e.rec); its answer is stored as the key's when it says so.
// It returns the answer plus the latency to add before sending it.
func (l *keyedLedger[R]) post(s *Sim, cs *chaosState, key string,
	decide func(e *keyedEntry[R]) (ans answer, store bool)) (answer, time.Duration) {
	e, latency, ans, failed := l.begin(s, cs, key, l.countCallLocked)
	if failed {
		return ans, latency
	}

	// Per-key critical section: a concurrent request for the same key waits
	// here and then finds the stored answer, and a concurrent lookup
	// either ran before (and closed the key) or runs after (and finds the
	// record).
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.answer != nil {
		return *e.answer, latency
	}
	if e.closed {
		// Not stored as the key's answer: nothing happened, and the key
		// stays closed for good anyway.
		return answer{status: http.StatusConflict, body: keyClosedBody}, latency
	}
	ans, store := decide(e)
	if store {
		e.answer = &ans
	}
	return ans, latency
}

// lookup answers what happened under key. Finding nothing closes the key,
// which is what makes "not found" a final answer: a request still on the
// wire finds the key closed and does nothing. Counted, then a failure
// asked for by FailNext… (503 failMsg), then cs's chaos (503), then found
// answers for the record, called holding both e.mu and Sim.mu.
func (l *keyedLedger[R]) lookup(s *Sim, cs *chaosState, key, failMsg string, found func(rec *R) answer) (answer, time.Duration) {
	countLookup := func(e *keyedEntry[R]) (answer, bool) {
		e.lookups++
		l.lookups++
		if l.failNext > 0 {
			l.failNext--
			return unavailable(failMsg), true
		}
		return answer{}, false
	}
	e, latency, ans, failed := l.begin(s, cs, key, countLookup)
	if failed {
		return ans, latency
	}

	// The key's lock orders this lookup against the key's requests: one
	// that holds it has recorded its effect before releasing it, so we see
	// that; one that has not taken it yet will find the key closed.
	e.mu.Lock()
	defer e.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.rec == nil {
		e.closed = true
		return answer{status: http.StatusNotFound, body: notFoundBody}, latency
	}
	return found(e.rec), latency
}

// serveKeyedPost serves a POST under an Idempotency-Key: the key and the
// body checked (400 otherwise), the request carried out by do, and its
// answer sent after the key's hold and the latency. The effect, if any, is
// recorded before the answer is delayed: that is what lets a timed-out
// client have caused an effect it never heard of.
func serveKeyedPost[T any](s *Sim, w http.ResponseWriter, r *http.Request, decode func([]byte) (T, error),
	do func(key string, req T) (answer, time.Duration)) {
	key := r.Header.Get("Idempotency-Key")
	if !keyValid(w, key) {
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	req, err := decode(body)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}
	ans, latency := do(key, req)
	s.answerHeld(w, r, key, ans, latency)
}

// serveKeyedLookup serves a GET of what happened under the key in the
// path. As for a POST, what the lookup did (closing the key) is recorded
// before the delay, so a client that gives up has still closed it.
func (s *Sim) serveKeyedLookup(w http.ResponseWriter, r *http.Request, do func(key string) (answer, time.Duration)) {
	key := r.PathValue("key")
	if !keyValid(w, key) {
		return
	}
	ans, latency := do(key)
	s.answerHeld(w, r, key, ans, latency)
}
