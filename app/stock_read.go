package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/google/uuid"
)

// DefaultReadDeadline bounds a live read of a degraded read (READ_DEADLINE).
const DefaultReadDeadline = 300 * time.Millisecond

// StockSource says which layer answered a stock read (DESIGN.md, Degraded
// reads).
type StockSource string

const (
	// StockLive: read from the inventory dependency within the read budget.
	StockLive StockSource = "live"
	// StockCache: the live read failed, was slow or was skipped (breaker
	// open); this is the last value a live read stored, AsOf says when.
	StockCache StockSource = "cache"
	// StockDefault: no live read and no stored value. Nothing is claimed:
	// availability is confirmed when the customer orders.
	StockDefault StockSource = "default"
)

// StockDefaultText is how a default answer reads to a customer.
const StockDefaultText = "availability confirmed after you order"

// StockReading is one SKU's stock as a degraded read answers it.
type StockReading struct {
	SKU string
	// Available is nil with StockDefault: we do not know.
	Available *int
	Source    StockSource
	// AsOf is when the value was read live (ours, not the dependency's
	// clock, so an age is measured on one clock); zero with StockDefault.
	AsOf time.Time
	// Age is how long before the answer the value was read: zero when
	// live or default.
	Age time.Duration
}

// CachedStock is a stored stock value: what a live read saw at AsOf.
type CachedStock struct {
	SKU       string
	Available int
	AsOf      time.Time
}

// StockCacheStore keeps the last known stock per SKU and the claims that
// let one refresh per SKU run at a time across instances: db.Store.
type StockCacheStore interface {
	// GetCachedStock returns the stored values of skus, by SKU; a SKU
	// never read is absent.
	GetCachedStock(ctx context.Context, skus []string) (map[string]CachedStock, error)
	// PutCachedStock stores values read live, never replacing a newer one.
	PutCachedStock(ctx context.Context, values []CachedStock) error
	// ClaimStockRefresh claims sku's refresh under token until until, and
	// reports whether it did: false while another claim holds it (one
	// whose until has not passed at now).
	ClaimStockRefresh(ctx context.Context, sku, token string, now, until time.Time) (bool, error)
	// ReleaseStockRefresh gives back the claim token holds on sku.
	ReleaseStockRefresh(ctx context.Context, sku, token string) error
}

// StockReadsConfig configures StockReads.
type StockReadsConfig struct {
	Inventory InventoryService
	Cache     StockCacheStore
	// Breakers guards the reads with the inventory's breaker; nil: none.
	Breakers *Breakers
	Metrics  *Metrics
	// ReadDeadline bounds the live read a request waits for; zero:
	// DefaultReadDeadline.
	ReadDeadline time.Duration
	// RefreshTimeout bounds a background refresh's call (the inventory's
	// deadline); zero: a second. A refresh's claim lasts this long and a
	// bit more, so a claimant that died frees it by itself.
	RefreshTimeout time.Duration
	// Live says whether to read live now; nil: always. When it says no
	// (the live_stock_refresh feature is off under distress), reads are
	// served from the cache, or as the default, and nothing is refreshed.
	Live func() bool
	// Instance names this instance in refresh claims.
	Instance string
	Logger   *slog.Logger
	Now      func() time.Time
}

// StockReads is the degraded read of stock: live within the read budget,
// through the inventory's breaker; else the last stored value with its
// age; else the safe default. A request's failed or slow read leaves a
// background refresh behind, one per SKU at a time across instances, so
// the stored value catches up without a stampede on a struggling
// dependency.
type StockReads struct {
	cfg StockReadsConfig
	wg  sync.WaitGroup
}

// NewStockReads validates cfg and returns the service.
func NewStockReads(cfg StockReadsConfig) (*StockReads, error) {
	if cfg.Inventory == nil || cfg.Cache == nil {
		return nil, errors.New("stock reads: Inventory and Cache are required")
	}
	if cfg.ReadDeadline <= 0 {
		cfg.ReadDeadline = DefaultReadDeadline
	}
	if cfg.RefreshTimeout <= 0 {
		cfg.RefreshTimeout = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Now = orNow(cfg.Now)
	return &StockReads{cfg: cfg}, nil
}

// Read answers the stock of skus, one reading per SKU in skus' order. It
// fails only when neither the dependency nor the database can be read,
// with an EUNAVAILABLE *Error; a SKU the dependency does not know is
// served from the cache or as the default, never as an error.
func (s *StockReads) Read(ctx context.Context, skus []string) ([]StockReading, error) {
	if len(skus) == 0 {
		return nil, nil
	}
	var (
		levels []StockLevel
		tried  bool
		err    = errLiveOff
	)
	if s.cfg.Live == nil || s.cfg.Live() {
		levels, tried, err = s.live(ctx, skus, s.cfg.ReadDeadline)
	}
	now := StorageTime(s.cfg.Now())
	if err == nil {
		got := make(map[string]int, len(levels))
		for _, l := range levels {
			got[l.SKU] = l.Available
		}
		if err := s.store(ctx, levels, now); err != nil {
			s.cfg.Logger.Warn("store stock read live", "error", err)
		}
		var missing []string
		for _, sku := range skus {
			if _, ok := got[sku]; !ok {
				missing = append(missing, sku)
			}
		}
		fallback, ferr := s.fallback(ctx, missing, now)
		if ferr != nil {
			return nil, ferr
		}
		out := make([]StockReading, len(skus))
		for i, sku := range skus {
			if n, ok := got[sku]; ok {
				out[i] = StockReading{SKU: sku, Available: &n, Source: StockLive, AsOf: now}
			} else {
				out[i] = fallback[sku]
			}
		}
		return out, nil
	}
	if tried {
		// The read failed or was slow: refresh behind the answer, with the
		// dependency's own budget, so the next reader finds a newer value.
		// With the breaker open nothing is tried, and nothing refreshed.
		s.RefreshInBackground(skus)
	}
	fallback, ferr := s.fallback(ctx, skus, now)
	if ferr != nil {
		return nil, ferr
	}
	out := make([]StockReading, len(skus))
	for i, sku := range skus {
		out[i] = fallback[sku]
	}
	return out, nil
}

// errLiveOff says live reads are switched off (StockReadsConfig.Live).
var errLiveOff = errors.New("live stock reads are switched off")

// live reads skus from the dependency within timeout, through its breaker;
// tried is false when the breaker let no call through.
func (s *StockReads) live(ctx context.Context, skus []string, timeout time.Duration) ([]StockLevel, bool, error) {
	permit, _ := s.cfg.Breakers.Acquire(ctx, DepInventory)
	if permit == nil {
		return nil, false, ErrBreakerOpen
	}
	var levels []StockLevel
	pe, _ := guardedCall(ctx, permit, timeout, s.cfg.Metrics, DepInventory, "read", func(ctx context.Context) error {
		var err error
		levels, err = s.cfg.Inventory.Stock(ctx, skus)
		return err
	})
	if pe != nil {
		return nil, true, pe
	}
	return levels, true, nil
}

func (s *StockReads) store(ctx context.Context, levels []StockLevel, now time.Time) error {
	if len(levels) == 0 {
		return nil
	}
	values := make([]CachedStock, len(levels))
	for i, l := range levels {
		values[i] = CachedStock{SKU: l.SKU, Available: max(l.Available, 0), AsOf: now}
	}
	return s.cfg.Cache.PutCachedStock(ctx, values)
}

// fallback answers skus from the cache, or as the default.
func (s *StockReads) fallback(ctx context.Context, skus []string, now time.Time) (map[string]StockReading, error) {
	out := make(map[string]StockReading, len(skus))
	if len(skus) == 0 {
		return out, nil
	}
	cached, err := s.cfg.Cache.GetCachedStock(ctx, skus)
	if err != nil {
		return nil, &Error{Code: EUNAVAILABLE, Message: "stock cannot be read right now", Err: err}
	}
	for _, sku := range skus {
		out[sku] = ChooseStock(sku, cached, now)
	}
	return out, nil
}

// ChooseStock is the answer for sku when the live read did not answer for
// it: the stored value with its age at now, or the default.
func ChooseStock(sku string, cached map[string]CachedStock, now time.Time) StockReading {
	c, ok := cached[sku]
	if !ok {
		return StockReading{SKU: sku, Source: StockDefault}
	}
	n := c.Available
	return StockReading{SKU: sku, Available: &n, Source: StockCache, AsOf: c.AsOf, Age: max(now.Sub(c.AsOf), 0)}
}

// CacheStatus is the RFC 9211 Cache-Status value for an answer served by
// source; age is how stale a cached answer is. Stock is fresh only while
// it is read live (its freshness lifetime is zero), so a cached answer's
// ttl is minus its age in whole seconds, rounded up: a value served from
// the cache is always past fresh (RFC 5861 stale-if-error).
func CacheStatus(source StockSource, age time.Duration) string {
	switch source {
	case StockLive:
		return "spillway; fwd=miss; stored"
	case StockCache:
		return fmt.Sprintf("spillway; hit; ttl=-%d; detail=stale-if-error", int64(math.Ceil(max(age, 0).Seconds())))
	}
	return "spillway; fwd=miss; fwd-status=503; detail=default"
}

// ResponseCacheStatus is the one Cache-Status of a response that carries
// the readings rs: that of the least live of them (WorstSource).
func ResponseCacheStatus(rs []StockReading) string {
	src, age := WorstSource(rs)
	return CacheStatus(src, age)
}

// WorstSource is the source a response that carries several readings
// reports in its one Cache-Status header: the least live of them, so the
// header never claims more than the weakest answer.
func WorstSource(rs []StockReading) (StockSource, time.Duration) {
	src, age := StockLive, time.Duration(0)
	for _, r := range rs {
		switch {
		case r.Source == StockDefault:
			return StockDefault, 0
		case r.Source == StockCache && (src == StockLive || r.Age > age):
			src, age = StockCache, r.Age
		}
	}
	return src, age
}

// RefreshInBackground refreshes skus off the caller's path (see Refresh);
// Wait waits for every refresh started so.
func (s *StockReads) RefreshInBackground(skus []string) {
	skus = append([]string(nil), skus...)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if _, err := s.Refresh(context.Background(), skus); err != nil {
			s.cfg.Logger.Warn("refresh stock", "skus", skus, "error", err)
		}
	}()
}

// Wait waits for the background refreshes this service started.
func (s *StockReads) Wait() { s.wg.Wait() }

// Refresh reads the skus it can claim live, within the dependency's own
// budget, and stores what it read. A SKU another refresh holds, on this
// instance or another, is left to it: one refresh per SKU at a time, so a
// crowd of readers of a struggling dependency sends it one call per SKU,
// not one each. It returns the SKUs it refreshed.
func (s *StockReads) Refresh(ctx context.Context, skus []string) ([]string, error) {
	token := s.token()
	now := StorageTime(s.cfg.Now())
	// The claim outlives the call by a margin, so it cannot lapse while
	// its own refresh is still storing.
	until := now.Add(s.cfg.RefreshTimeout + time.Second)
	var claimed []string
	for _, sku := range skus {
		ok, err := s.cfg.Cache.ClaimStockRefresh(ctx, sku, token, now, until)
		if err != nil {
			s.release(claimed, token)
			return nil, err
		}
		if ok {
			claimed = append(claimed, sku)
		}
	}
	if len(claimed) == 0 {
		return nil, nil
	}
	defer s.release(claimed, token)
	levels, _, err := s.live(ctx, claimed, s.cfg.RefreshTimeout)
	if err != nil {
		return nil, err
	}
	if err := s.store(ctx, levels, StorageTime(s.cfg.Now())); err != nil {
		return nil, err
	}
	return claimed, nil
}

func (s *StockReads) release(skus []string, token string) {
	for _, sku := range skus {
		// On a context of its own: a cancelled refresh still frees its claim.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.cfg.Cache.ReleaseStockRefresh(ctx, sku, token); err != nil {
			s.cfg.Logger.Warn("release stock refresh", "sku", sku, "error", err)
		}
		cancel()
	}
}

// token names one refresh, so a claim is released only by the refresh
// that holds it; the instance's name is for whoever reads the row.
func (s *StockReads) token() string { return s.cfg.Instance + "#" + uuid.NewString() }
