package admin

import (
	"bytes"
	_ "embed"
	"net/http"
	"sync"

	"github.com/a-h/templ"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/parser"

	"github.com/spillway/spillway/app"
)

// runbookSource is the runbook, kept beside the code it describes so a
// change to an alert or a page and its section travel in one commit. The
// alerts in testdata/prometheus link to its headings' anchors, written
// into the headings ({#breaker-open}) so that rewording a heading does not
// break a link; TestRunbookHasEverySectionTheAlertsLinkTo checks them.
//
//go:embed runbook.md
var runbookSource []byte

// The runbook sections the overview links its abnormal states to.
const (
	runbookBreakerOpen      = "breaker-open"
	runbookBreakerForced    = "breaker-forced"
	runbookUnknownOutcome   = "unknown-outcome"
	runbookOrphanCharge     = "orphan-charge"
	runbookBacklogOverBound = "backlog-over-bound"
	runbookBulkheadFull     = "bulkhead-full"
	runbookPauseQueue       = "pause-a-queue"
	runbookFeaturesOff      = "features-off"
	runbookBacklogGrowing   = "backlog-growing"
	runbookBacklogStalled   = "backlog-not-draining"
	runbookOldestJob        = "oldest-job"
)

// runbookForState is the section for a breaker state an operator should
// look at; "" for closed, which is normal.
func runbookForState(s app.BreakerState) string {
	switch s {
	case app.BreakerOpen, app.BreakerHalfOpen:
		return runbookBreakerOpen
	case app.BreakerForcedOpen, app.BreakerForcedClosed:
		return runbookBreakerForced
	}
	return ""
}

// runbookHTML renders the runbook once: it is compiled in, so it cannot
// change while the process runs. The source is ours, so raw HTML in it
// would be trusted; goldmark drops it anyway (no html.WithUnsafe), which
// keeps the page within the admin's Content-Security-Policy.
var runbookHTML = sync.OnceValues(func() (string, error) {
	md := goldmark.New(
		goldmark.WithExtensions(extension.Table),
		goldmark.WithParserOptions(parser.WithAttribute(), parser.WithAutoHeadingID()),
	)
	var buf bytes.Buffer
	if err := md.Convert(runbookSource, &buf); err != nil {
		return "", err
	}
	return buf.String(), nil
})

// handleRunbook shows the runbook to any signed-in user: viewers need to
// know what to do as much as operators do.
func (s *server) handleRunbook(w http.ResponseWriter, r *http.Request) {
	body, err := runbookHTML()
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, runbookPage(s.page(r, "Runbook", "runbook"), templ.Raw(body)))
}
