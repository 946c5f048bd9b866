package app

import "context"

// Flush is the Run loop's flush and judgement, for tests that drive the
// breakers step by step without its tickers.
func (bs *Breakers) Flush(ctx context.Context) { bs.flush(ctx) }
