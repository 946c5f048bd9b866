package app

import (
	"context"
	"testing"
)

// Off, a span costs the sync path nothing: no allocation, and the context
// is the caller's own.
func TestSpanOffAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		c, span := startSpan(ctx, nil, "runner.submit")
		if span.IsRecording() || c != ctx {
			t.Fatal("an off span records")
		}
		span.End()
	})
	if allocs != 0 {
		t.Errorf("an off span allocates %v times", allocs)
	}
}
