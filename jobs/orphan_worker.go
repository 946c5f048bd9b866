package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/db"
)

// OrphanSweepArgs is the periodic job that looks for charges no operation
// of ours accounts for.
type OrphanSweepArgs struct{}

func (OrphanSweepArgs) Kind() string { return "sweep_orphan_charges" }

// orphanSweepName keys the payment provider's watermark.
const orphanSweepName = "payment"

// orphanPage is how many charges one listing call asks for, and
// maxOrphanPages how many pages one sweep walks at most.
const (
	orphanPage     = 100
	maxOrphanPages = 200
)

// OrphanSweeper finds charges that no operation of ours accounts for. A
// sync charge can succeed while our commit is lost, and if the client
// never retries, nothing else would ever notice the money was taken. The
// sweep pages through the provider's charges created since its watermark,
// judges each one old enough that no request can still be
// committing it (Grace), records the orphans for operators and, when
// Refund is set, refunds them, each once (the refund's idempotency key is
// derived from the charge).
type OrphanSweeper struct {
	pool     *pgxpool.Pool
	provider app.PaymentProvider
	grace    time.Duration
	refund   bool
	timeout  time.Duration
	now      func() time.Time
	log      *slog.Logger
}

// OrphanConfig sets up the sweep.
type OrphanConfig struct {
	// Every is how often the sweep runs; zero means no sweep.
	Every time.Duration
	// Grace is how old a charge must be to be judged; it must exceed the
	// longest a sync request can take to commit (deadline + capture).
	Grace time.Duration
	// Refund refunds the orphans found (ORPHAN_REFUND).
	Refund bool
}

// NewOrphanSweeper returns the sweeper for cfg.
func NewOrphanSweeper(cfg Config) *OrphanSweeper {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &OrphanSweeper{pool: cfg.Pool, provider: cfg.Provider, grace: cfg.Orphans.Grace, refund: cfg.Orphans.Refund,
		timeout: cfg.CallTimeout, now: cfg.Now, log: cfg.Logger}
}

// OrphanSweepWorker runs the sweep as a River job.
type OrphanSweepWorker struct {
	river.WorkerDefaults[OrphanSweepArgs]
	sweeper *OrphanSweeper
}

func (w *OrphanSweepWorker) Work(ctx context.Context, _ *river.Job[OrphanSweepArgs]) error {
	_, err := w.sweeper.Sweep(ctx)
	return err
}

// SweepResult is what one sweep did.
type SweepResult struct {
	Judged, Found, Refunded, Adopted int
}

// Sweep judges the charges created since the watermark and older than
// Grace, then refunds the open orphans when enabled.
func (s *OrphanSweeper) Sweep(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	now := app.StorageTime(s.now())
	upTo := now.Add(-s.grace)
	since, ok, err := db.OrphanWatermark(ctx, s.pool, orphanSweepName)
	if err != nil {
		return res, err
	}
	if !ok {
		// First run: as far back as a provider keeps idempotency keys,
		// which is as far back as a lost commit could still be retried.
		since = now.Add(-24 * time.Hour)
	}
	// Walk every page, in whatever order the provider lists: judge the
	// charges old enough, and keep the next watermark below the youngest
	// judged and the oldest not yet judged.
	var (
		newest, oldestYoung time.Time
		complete            bool
	)
	after := ""
	for range maxOrphanPages {
		lctx, cancel := context.WithTimeout(ctx, s.timeout)
		page, err := s.provider.ListCharges(lctx, since, after, orphanPage)
		cancel()
		if err != nil {
			return res, fmt.Errorf("list charges: %w", err)
		}
		var judge []app.ProviderCharge
		for _, c := range page.Charges {
			if !c.CreatedAt.Before(upTo) {
				if oldestYoung.IsZero() || c.CreatedAt.Before(oldestYoung) {
					oldestYoung = c.CreatedAt
				}
				continue
			}
			judge = append(judge, c)
			if c.CreatedAt.After(newest) {
				newest = c.CreatedAt
			}
		}
		found, err := s.judge(ctx, judge, now)
		if err != nil {
			return res, err
		}
		res.Judged += len(judge)
		res.Found += found
		if page.Next == "" || len(page.Charges) == 0 {
			complete = true
			break
		}
		after = page.Next
	}
	watermark := newest
	if !oldestYoung.IsZero() && oldestYoung.Before(watermark) {
		watermark = oldestYoung
	}
	switch {
	case !complete:
		// Too many to judge in one sweep: in a provider's newest-first
		// order the oldest are still unjudged, so the watermark stays.
		s.log.Warn("orphan sweep stopped before the end of the listing; it goes on next time", "pages", maxOrphanPages)
	case watermark.After(since):
		// The next sweep starts a little before: charges created in the
		// same instant may sit on either side, and judging one twice is
		// harmless.
		if err := db.SetOrphanWatermark(ctx, s.pool, orphanSweepName, watermark.Add(-time.Second), now); err != nil {
			return res, err
		}
	}
	if s.refund {
		refunded, adopted, err := s.refundOpen(ctx)
		res.Refunded, res.Adopted = refunded, adopted
		if err != nil {
			return res, err
		}
	}
	if res.Found > 0 || res.Refunded > 0 {
		s.log.Warn("orphan charges", "found", res.Found, "refunded", res.Refunded, "adopted", res.Adopted)
	}
	return res, nil
}

// judge records the orphans among cs.
func (s *OrphanSweeper) judge(ctx context.Context, cs []app.ProviderCharge, now time.Time) (int, error) {
	if len(cs) == 0 {
		return 0, nil
	}
	var ids []uuid.UUID
	for _, c := range cs {
		if id, ok := app.ReferenceID(c.Reference); ok {
			ids = append(ids, id)
		}
	}
	ops, err := db.GetOperations(ctx, s.pool, ids)
	if err != nil {
		return 0, err
	}
	found := 0
	for _, c := range cs {
		var op *app.Operation
		if id, ok := app.ReferenceID(c.Reference); ok {
			op = ops[id]
		}
		if app.JudgeCharge(c, op) != app.ChargeOrphaned {
			continue
		}
		added, err := db.InsertOrphan(ctx, s.pool, app.OrphanCharge{ChargeID: c.ID, Reference: c.Reference,
			Amount: c.Amount, Currency: c.Currency, CreatedAt: c.CreatedAt, FoundAt: now})
		if err != nil {
			return found, err
		}
		if added {
			found++
		}
	}
	return found, nil
}

// refundOpen refunds every open orphan nobody has claimed meanwhile. Each
// is decided under the lock a request for its operation would hold, so a
// client retrying right now either records the operation first (the
// charge is adopted, not refunded) or finds the refund recorded and
// charges under a fresh key.
func (s *OrphanSweeper) refundOpen(ctx context.Context) (refunded, adopted int, err error) {
	open, err := db.ListOrphans(ctx, s.pool, app.OrphanOpen, 1000)
	if err != nil {
		return 0, 0, err
	}
	for _, o := range open {
		r, a, err := s.refundOne(ctx, o)
		if err != nil {
			return refunded, adopted, err
		}
		refunded, adopted = refunded+r, adopted+a
	}
	return refunded, adopted, nil
}

func (s *OrphanSweeper) refundOne(ctx context.Context, o app.OrphanCharge) (refunded, adopted int, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	var opID *uuid.UUID
	if id, ok := app.ReferenceID(o.Reference); ok {
		opID = &id
	}
	locked, err := db.LockOrphanTx(ctx, tx, o.ChargeID, opID)
	if err != nil || !locked {
		return 0, 0, err // busy: the next sweep decides
	}
	now := app.StorageTime(s.now())
	if opID != nil {
		op, err := db.GetOperation(ctx, tx, *opID)
		if err != nil && app.ErrorCode(err) != app.ENOTFOUND {
			return 0, 0, err
		}
		c := app.ProviderCharge{ID: o.ChargeID, Reference: o.Reference, Status: "succeeded"}
		switch app.JudgeCharge(c, op) {
		case app.ChargeAccounted:
			if err := db.ResolveOrphanTx(ctx, tx, o.ChargeID, app.OrphanAdopted, "", "", now); err != nil {
				return 0, 0, err
			}
			return 0, 1, tx.Commit(ctx)
		case app.ChargeUnsettled:
			return 0, 0, nil // its operation is open now: wait for it to settle
		}
	}
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	r, rerr := s.provider.Refund(rctx, o.ChargeID, "refund-"+o.ChargeID)
	cancel()
	if rerr != nil {
		// Keep it open with the reason; the same key makes the next try safe.
		if err := db.ResolveOrphanTx(ctx, tx, o.ChargeID, app.OrphanOpen, "", rerr.Error(), now); err != nil {
			return 0, 0, err
		}
		return 0, 0, tx.Commit(ctx)
	}
	if err := db.ResolveOrphanTx(ctx, tx, o.ChargeID, app.OrphanRefunded, r.ID, "", now); err != nil {
		return 0, 0, err
	}
	return 1, 0, tx.Commit(ctx)
}
