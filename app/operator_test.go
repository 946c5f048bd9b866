package app_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/rivertype"

	"github.com/spillway/spillway/app"
)

// fakeTx is a transaction that only records how it ended.
type fakeTx struct {
	pgx.Tx
	committed bool
}

func (t *fakeTx) Commit(context.Context) error   { t.committed = true; return nil }
func (t *fakeTx) Rollback(context.Context) error { return nil }

// fakeStore holds River jobs that all match whatever filter is asked
// about; a method no test expects panics (the nil embedded interface).
type fakeStore struct {
	app.OperatorStore
	jobs []app.JobRef
	// lockFails makes the nth LockJobsTx call (from 1) fail.
	lockFails int

	pages  [][2]int64 // MatchingJobIDs calls: afterID, limit
	nows   []time.Time
	states [][]rivertype.JobState
	locks  int
	txs    []*fakeTx
	audits []app.AuditEntry
}

func (s *fakeStore) BeginTx(context.Context) (pgx.Tx, error) {
	tx := &fakeTx{}
	s.txs = append(s.txs, tx)
	return tx, nil
}

func (s *fakeStore) MatchingJobIDs(_ context.Context, _ app.JobFilter, states []rivertype.JobState, afterID int64, limit int, now time.Time) ([]int64, error) {
	s.pages = append(s.pages, [2]int64{afterID, int64(limit)})
	s.nows = append(s.nows, now)
	s.states = append(s.states, states)
	var ids []int64
	for _, j := range s.jobs {
		if j.ID > afterID && len(ids) < limit {
			ids = append(ids, j.ID)
		}
	}
	return ids, nil
}

func (s *fakeStore) LockJobsTx(_ context.Context, _ pgx.Tx, ids []int64, _ []rivertype.JobState) ([]app.JobRef, error) {
	s.locks++
	if s.locks == s.lockFails {
		return nil, errors.New("lock timeout")
	}
	var out []app.JobRef
	for _, j := range s.jobs {
		if slices.Contains(ids, j.ID) {
			out = append(out, j)
		}
	}
	return out, nil
}

func (s *fakeStore) SetJobPriorityTx(context.Context, pgx.Tx, []int64, int, time.Time) error {
	return nil
}

func (s *fakeStore) InsertAuditTx(_ context.Context, _ pgx.Tx, e app.AuditEntry) error {
	s.audits = append(s.audits, e)
	return nil
}

// fakeRiver stands in for River where no job is really moved.
type fakeRiver struct{ app.JobController }

func waitingJobs(n int) []app.JobRef {
	out := make([]app.JobRef, n)
	for i := range out {
		out[i] = app.JobRef{ID: int64(10 * (i + 1)), State: rivertype.JobStateAvailable, Priority: 3}
	}
	return out
}

// An action on a filter pages through the matching jobs in id order, one
// transaction and one audit entry per batch, against one "now", and adds
// up what each batch did; a failing batch says how far it got.
func TestApplyToFilterPagesInBatches(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		jobs      int
		batch     int
		lockFails int
		wantPages [][2]int64
		changed   int
		batches   int
		err       string
	}{
		{name: "nothing matches", jobs: 0, batch: 3, wantPages: [][2]int64{{0, 3}}},
		{name: "fewer than a batch", jobs: 2, batch: 3, wantPages: [][2]int64{{0, 3}, {20, 3}}, changed: 2, batches: 1},
		{name: "exactly two batches", jobs: 6, batch: 3, wantPages: [][2]int64{{0, 3}, {30, 3}, {60, 3}}, changed: 6, batches: 2},
		{name: "a part batch last", jobs: 7, batch: 3, wantPages: [][2]int64{{0, 3}, {30, 3}, {60, 3}, {70, 3}}, changed: 7, batches: 3},
		{name: "the second batch fails", jobs: 7, batch: 3, lockFails: 2, wantPages: [][2]int64{{0, 3}, {30, 3}},
			changed: 3, batches: 1, err: "bulk reprioritize after 1 batches (3 jobs done): lock timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := &fakeStore{jobs: waitingJobs(tc.jobs), lockFails: tc.lockFails}
			op, err := app.NewOperator(app.OperatorConfig{Store: st, Jobs: fakeRiver{}, FilterBatch: tc.batch,
				Now: func() time.Time { return at }})
			if err != nil {
				t.Fatal(err)
			}
			req := app.JobRequest{Action: app.ActionReprioritize, Priority: 1, Detail: "all matching: pending jobs"}
			res, err := op.ApplyToFilter(context.Background(), app.Actor{Email: "ops@example.com"}, req,
				app.JobFilter{States: app.WaitingStates, Kind: "payment"})
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || err.Error() != tc.err) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
			if !slices.Equal(st.pages, tc.wantPages) {
				t.Errorf("pages asked for %v, want %v", st.pages, tc.wantPages)
			}
			if res.Changed != tc.changed || res.Batches != tc.batches {
				t.Errorf("changed %d in %d batches, want %d in %d", res.Changed, res.Batches, tc.changed, tc.batches)
			}
			for i, n := range st.nows {
				if !n.Equal(at) {
					t.Errorf("page %d filtered against %v, want %v", i, n, at)
				}
				if !slices.Equal(st.states[i], app.ActionReprioritize.States()) {
					t.Errorf("page %d asked for states %v", i, st.states[i])
				}
			}
			if len(st.audits) != tc.batches {
				t.Fatalf("%d audit entries for %d batches", len(st.audits), tc.batches)
			}
			for _, e := range st.audits {
				if e.Action != "job.reprioritize" || e.Detail != req.Detail || e.ActorEmail != "ops@example.com" {
					t.Errorf("audit entry %+v", e)
				}
			}
			committed := 0
			for _, tx := range st.txs {
				if tx.committed {
					committed++
				}
			}
			if committed != tc.batches {
				t.Errorf("%d transactions committed, want one per batch (%d)", committed, tc.batches)
			}
		})
	}
}

// A queue that follows a breaker is not paused or resumed by hand: the
// gate would undo it within a second. Nothing is written.
func TestGatedQueueIsNotPausedByHand(t *testing.T) {
	t.Parallel()
	st := &fakeStore{}
	op, err := app.NewOperator(app.OperatorConfig{Store: st, Jobs: fakeRiver{},
		GatedQueues: map[string]string{"payments": "payment"}})
	if err != nil {
		t.Fatal(err)
	}
	for name, act := range map[string]func(context.Context, app.Actor, string) error{
		"pause": op.PauseQueue, "resume": op.ResumeQueue} {
		err := act(context.Background(), app.Actor{Email: "ops@example.com"}, "payments")
		if app.ErrorCode(err) != app.ECONFLICT || !strings.Contains(app.ErrorMessage(err), "force the payment breaker open") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if len(st.txs) != 0 {
		t.Errorf("%d transactions begun for refused actions", len(st.txs))
	}
}

// A service wired for users only refuses job, queue and breaker actions
// with an error instead of reaching for what it was not given.
func TestOperatorWithoutRiverOrBreakersRefusesTheirActions(t *testing.T) {
	t.Parallel()
	op, err := app.NewOperator(app.OperatorConfig{Store: &fakeStore{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, a := context.Background(), app.Actor{}
	if _, err := op.ApplyJobs(ctx, a, app.JobRequest{Action: app.ActionRetry}, []int64{1}); err == nil {
		t.Error("job action without River")
	}
	if err := op.PauseQueue(ctx, a, "q"); err == nil {
		t.Error("queue pause without River")
	}
	if _, err := op.ForceBreaker(ctx, a, "payment", app.BreakerForcedOpen, ""); err == nil {
		t.Error("breaker force without breakers")
	}
	if _, err := app.NewOperator(app.OperatorConfig{}); err == nil {
		t.Error("a service without a store")
	}
}

func TestPolicyTextRoundTripsAndNamesBadFields(t *testing.T) {
	t.Parallel()
	p := app.DefaultBreakerPolicy()
	got, err := p.Text().Policy()
	if err != nil || got != p {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, p)
	}
	for _, tc := range []struct {
		edit func(*app.PolicyText)
		want []string
	}{
		{func(t *app.PolicyText) { t.Window = "ten seconds" }, []string{`window: "ten seconds" is not a duration`}},
		{func(t *app.PolicyText) { t.MinCalls, t.FailureRate = "many", "x%" },
			[]string{`min_calls: "many" is not a whole number`, `failure_rate: "x%" is not a percentage`}},
		{func(t *app.PolicyText) { t.FailureRate = "10%" }, nil}, // a % sign is fine
		{func(t *app.PolicyText) { t.Window = "1h" }, []string{"window must be between 1s and 10m"}},
	} {
		text := p.Text()
		tc.edit(&text)
		_, err := text.Policy()
		if tc.want == nil {
			if err != nil {
				t.Errorf("%+v: %v", text, err)
			}
			continue
		}
		if app.ErrorCode(err) != app.EINVALID {
			t.Errorf("%+v: %v, want EINVALID", text, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(app.ErrorMessage(err), w) {
				t.Errorf("%q lacks %q", app.ErrorMessage(err), w)
			}
		}
	}
}

// fakeBreakerStore holds one breaker, "payment", at the default policy;
// writes panic (the nil embedded interface) but SetPolicy, which counts.
type fakeBreakerStore struct {
	app.BreakerStore
	policySets int
	audits     []app.AuditEntry // written with a change, in its transaction
}

func (s *fakeBreakerStore) GetBreaker(_ context.Context, name string) (app.Breaker, error) {
	if name != "payment" {
		return app.Breaker{}, app.Errorf(app.ENOTFOUND, "not found")
	}
	return app.Breaker{Name: name, State: app.BreakerClosed, Policy: app.DefaultBreakerPolicy()}, nil
}

func (s *fakeBreakerStore) SetPolicy(_ context.Context, _ string, _ app.BreakerPolicy, t app.Transition, _ time.Time) error {
	s.policySets++
	if t.Audit != nil {
		s.audits = append(s.audits, *t.Audit)
	}
	return nil
}

// Breaker actions check what they are asked before they change anything:
// a state no operator sets, a breaker that does not exist, thresholds
// that do not parse or are what the breaker has already.
func TestBreakerActionsRefuseBeforeChanging(t *testing.T) {
	t.Parallel()
	bstore := &fakeBreakerStore{}
	bs, err := app.NewBreakers(app.BreakersConfig{Store: bstore, Instance: "test"})
	if err != nil {
		t.Fatal(err)
	}
	st := &fakeStore{}
	op, err := app.NewOperator(app.OperatorConfig{Store: st, Breakers: bs})
	if err != nil {
		t.Fatal(err)
	}
	ctx, a := context.Background(), app.Actor{Email: "ops@example.com"}
	bad := app.DefaultBreakerPolicy().Text()
	bad.Probes = "several"
	changed := app.DefaultBreakerPolicy().Text()
	changed.MinCalls = "50"
	for _, tc := range []struct {
		name string
		do   func() error
		code string
		msg  string
	}{
		{"force to half-open", func() error {
			_, err := op.ForceBreaker(ctx, a, "payment", app.BreakerHalfOpen, "")
			return err
		}, app.EINVALID, "forced open, forced closed or returned to auto"},
		{"force an unknown breaker", func() error {
			_, err := op.ForceBreaker(ctx, a, "crm", app.BreakerForcedOpen, "")
			return err
		}, app.ENOTFOUND, `There is no breaker "crm".`},
		{"thresholds of an unknown breaker", func() error {
			_, err := op.SetBreakerPolicy(ctx, a, "crm", bad)
			return err
		}, app.ENOTFOUND, `There is no breaker "crm".`},
		{"thresholds that do not parse", func() error {
			_, err := op.SetBreakerPolicy(ctx, a, "payment", bad)
			return err
		}, app.EINVALID, `probes: "several" is not a whole number`},
		{"thresholds already in force", func() error {
			ok, err := op.SetBreakerPolicy(ctx, a, "payment", app.DefaultBreakerPolicy().Text())
			if ok {
				return errors.New("reported a change")
			}
			return err
		}, "", ""},
	} {
		err := tc.do()
		if tc.code == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
		} else if app.ErrorCode(err) != tc.code || !strings.Contains(app.ErrorMessage(err), tc.msg) {
			t.Errorf("%s: %v, want %s %q", tc.name, err, tc.code, tc.msg)
		}
	}
	if bstore.policySets != 0 || len(st.audits)+len(bstore.audits) != 0 {
		t.Fatalf("refused actions wrote %d policies and %d audit entries", bstore.policySets, len(st.audits)+len(bstore.audits))
	}
	// A real change is written with its audit entry, in the same write,
	// carrying the thresholds as operators read them.
	if ok, err := op.SetBreakerPolicy(ctx, a, "payment", changed); err != nil || !ok {
		t.Fatalf("change: %v %v", ok, err)
	}
	if bstore.policySets != 1 || len(st.audits) != 0 || len(bstore.audits) != 1 || bstore.audits[0].Action != "breaker.policy" ||
		!strings.Contains(string(bstore.audits[0].After), `"MinCalls":"50"`) {
		t.Fatalf("%d policies written, audit with it %+v, audit apart %+v", bstore.policySets, bstore.audits, st.audits)
	}
}

// A cookie that cannot be a token opens no session and asks no store.
func TestSessionRefusesMalformedTokens(t *testing.T) {
	t.Parallel()
	op, err := app.NewOperator(app.OperatorConfig{Store: &fakeStore{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"", "short", strings.Repeat("a", 44)} {
		if _, err := op.Session(context.Background(), tok); app.ErrorCode(err) != app.ENOTFOUND {
			t.Errorf("%q: %v, want ENOTFOUND", tok, err)
		}
	}
}

// fakeUsers is a user store for sign-in: one user, and what was written.
type fakeUsers struct {
	fakeStore
	user     *app.AdminUser
	limited  bool
	claims   int
	marked   []int64
	sessions []app.NewSession
	pruned   []time.Time // idleSince of each prune
}

func (s *fakeUsers) ClaimSignIn(context.Context, string, string, app.SignInLimits, time.Time) (int64, error) {
	if s.limited {
		return 0, app.ErrSignInLimited
	}
	s.claims++
	return int64(s.claims), nil
}

func (s *fakeUsers) AdminUserByEmail(_ context.Context, email string) (*app.AdminUser, error) {
	if s.user == nil || s.user.Email != email {
		return nil, app.Errorf(app.ENOTFOUND, "no such user")
	}
	return s.user, nil
}

func (s *fakeUsers) MarkSignInOKTx(_ context.Context, _ pgx.Tx, id int64) error {
	s.marked = append(s.marked, id)
	return nil
}

func (s *fakeUsers) CreateSessionTx(_ context.Context, _ pgx.Tx, ns app.NewSession) error {
	s.sessions = append(s.sessions, ns)
	return nil
}

func (s *fakeUsers) PruneSessionsTx(_ context.Context, _ pgx.Tx, _, idleSince time.Time) error {
	s.pruned = append(s.pruned, idleSince)
	return nil
}

// Sign-in opens a session only for the right password of an enabled
// user who is not over the limit, and then stores only the token's hash,
// marks the attempt good and audits it.
func TestSignIn(t *testing.T) {
	t.Parallel()
	const pw = "correct horse battery"
	hash, err := app.HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	disabled := at.Add(-time.Hour)
	for _, tc := range []struct {
		name     string
		user     *app.AdminUser
		limited  bool
		email    string
		password string
		want     error
	}{
		{name: "right password", email: " OPS@example.com", password: pw},
		{name: "wrong password", email: "ops@example.com", password: "guess", want: app.ErrWrongPassword},
		{name: "unknown email", email: "nobody@example.com", password: pw, want: app.ErrWrongPassword},
		{name: "disabled user", user: &app.AdminUser{ID: 7, Email: "ops@example.com", PasswordHash: hash, DisabledAt: &disabled},
			email: "ops@example.com", password: pw, want: app.ErrWrongPassword},
		{name: "over the limit", limited: true, email: "ops@example.com", password: pw, want: app.ErrSignInLimited},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := tc.user
			if u == nil {
				u = &app.AdminUser{ID: 7, Email: "ops@example.com", PasswordHash: hash, Role: app.RoleOperator}
			}
			st := &fakeUsers{user: u, limited: tc.limited}
			op, err := app.NewOperator(app.OperatorConfig{Store: st, SessionIdle: 10 * time.Minute,
				Now: func() time.Time { return at }})
			if err != nil {
				t.Fatal(err)
			}
			in, err := op.SignIn(context.Background(), app.SignInRequest{Email: tc.email, Password: tc.password,
				IP: "192.0.2.1", UserAgent: "test", RequestID: "req-1"})
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if tc.want != nil {
				if in != nil || len(st.sessions)+len(st.marked)+len(st.audits) != 0 {
					t.Fatalf("refused sign-in wrote: %+v %v %+v", st.sessions, st.marked, st.audits)
				}
				return
			}
			if len(in.Token) != 43 || !in.Expires.Equal(at.Add(app.DefaultSignInLimits().SessionLife)) || in.User.ID != 7 {
				t.Fatalf("signed in %+v", in)
			}
			if len(st.sessions) != 1 || string(st.sessions[0].TokenHash) != string(app.HashSessionToken(in.Token)) ||
				st.sessions[0].IP != "192.0.2.1" {
				t.Fatalf("sessions stored %+v", st.sessions)
			}
			if len(st.marked) != 1 || st.marked[0] != 1 || len(st.pruned) != 1 || !st.pruned[0].Equal(at.Add(-10*time.Minute)) {
				t.Fatalf("marked %v, pruned %v", st.marked, st.pruned)
			}
			if len(st.audits) != 1 || st.audits[0].Action != "signin" || st.audits[0].ActorID != 7 ||
				st.audits[0].RequestID != "req-1" || st.audits[0].Target != "user ops@example.com" {
				t.Fatalf("audit %+v", st.audits)
			}
		})
	}
}
