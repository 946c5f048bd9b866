package admin_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/web/admin"
)

// refreshFeatures has the harness's feature switch read the signals now,
// as its loop would within a second.
func (h *harness) refreshFeatures() {
	h.t.Helper()
	if err := h.features.Refresh(context.Background()); err != nil {
		h.t.Fatal(err)
	}
}

// featureRow is the overview's table row of the named feature.
func featureRow(t *testing.T, page, name string) string {
	t.Helper()
	i := strings.Index(page, `id="feature-`+name+`"`)
	if i < 0 {
		t.Fatalf("overview has no row for feature %s", name)
	}
	j := strings.Index(page[i:], "</tr>")
	return page[i : i+j]
}

func TestOverviewShowsFeaturesOffUnderDistressAndWhy(t *testing.T) {
	t.Parallel()
	sync := app.NewAdmission(4, 0)
	for range 4 {
		sync.TryAcquire(false)
	}
	h := newHarness(t, harnessOpts{bulkheads: map[string]admin.Bulkhead{app.DepPayment: sync}})
	c := h.signedIn("look@example.com", app.RoleViewer)
	h.refreshFeatures()
	page := c.mustGet("/admin/")
	// One signal (the saturated bulkhead): the least important goes.
	if row := featureRow(t, page, app.FeatureRecommendations); !strings.Contains(row, `data-on="false"`) ||
		!strings.Contains(row, "off (distress)") || !strings.Contains(row, "payment bulkhead saturated") {
		t.Fatalf("recommendations row: %s", row)
	}
	if row := featureRow(t, page, app.FeatureRichContent); !strings.Contains(row, `data-on="true"`) {
		t.Fatalf("rich content off at level 1: %s", row)
	}
	if row := featureRow(t, page, app.FeatureCheckout); !strings.Contains(row, "essential, always on") {
		t.Fatalf("checkout row: %s", row)
	}
	if !strings.Contains(page, `id="features-off"`) || !strings.Contains(page, "Distress level <strong>1</strong>") {
		t.Fatal("overview does not say how many features are off and why")
	}
	if strings.Contains(page, `action="/admin/features/`) {
		t.Fatal("a viewer is shown the feature controls")
	}

	// A breaker forced open is a second signal.
	ops := h.signedIn("ops@example.com", app.RoleOperator)
	ops.mustPost("/admin/breakers/payment/force", url.Values{"state": {"forced_open"}})
	h.refreshFeatures()
	page = ops.mustGet("/admin/")
	if row := featureRow(t, page, app.FeatureRichContent); !strings.Contains(row, `data-on="false"`) ||
		!strings.Contains(row, "payment breaker forced_open") {
		t.Fatalf("rich content row at level 2: %s", row)
	}
	if !featureOn(page, app.FeatureLiveStockRefresh) {
		t.Fatal("live stock refresh off at level 2")
	}
}

// featureOn reports whether the overview shows the named feature on.
func featureOn(page, name string) bool {
	return strings.Contains(page, `id="feature-`+name+`" data-on="true"`)
}

func TestOperatorSwitchesAFeatureOffAndBackToAutomatic(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	c := h.signedIn("ops@example.com", app.RoleOperator)
	h.refreshFeatures()
	page := c.mustGet("/admin/")
	if !strings.Contains(page, `action="/admin/features/recommendations"`) || strings.Contains(page, `action="/admin/features/checkout"`) {
		t.Fatal("overview does not offer a switch for each optional feature only")
	}
	if loc := c.mustPost("/admin/features/recommendations", url.Values{"state": {"off"}, "reason": {"slow query"}}); loc != "/admin/#features" {
		t.Fatalf("redirect to %q", loc)
	}
	if h.features.Enabled(app.FeatureRecommendations) {
		t.Fatal("feature still on after the switch")
	}
	if n := h.count(`SELECT count(*) FROM feature_overrides WHERE name = 'recommendations' AND actor = 'ops@example.com'`); n != 1 {
		t.Fatal("the override is not stored for the other instances")
	}
	page = c.mustGet("/admin/")
	row := featureRow(t, page, app.FeatureRecommendations)
	if !strings.Contains(row, "off by hand") || !strings.Contains(row, "switched off by ops@example.com: slow query") {
		t.Fatalf("row: %s", row)
	}
	if !strings.Contains(page, "Feature recommendations switched off") || !strings.Contains(page, "Return recommendations to automatic") {
		t.Fatal("no message or no way back")
	}
	c.mustPost("/admin/features/recommendations", url.Values{"state": {"auto"}})
	if !h.features.Enabled(app.FeatureRecommendations) {
		t.Fatal("feature still off after returning to automatic")
	}
	offs, autos := h.audits("feature.off"), h.audits("feature.auto")
	if len(offs) != 1 || len(autos) != 1 || offs[0].Target != "feature recommendations" || offs[0].Detail != "slow query" ||
		string(offs[0].Before) != `{"state": "auto"}` || offs[0].IP == "" || offs[0].RequestID == "" {
		t.Fatalf("audit: %+v %+v", offs, autos)
	}
	for _, tt := range []struct {
		path   string
		form   url.Values
		status int
	}{
		{"/admin/features/checkout", url.Values{"state": {"off"}}, http.StatusUnprocessableEntity},
		{"/admin/features/nope", url.Values{"state": {"off"}}, http.StatusNotFound},
		{"/admin/features/recommendations", url.Values{"state": {"on"}}, http.StatusUnprocessableEntity},
	} {
		if r := c.post(tt.path, tt.form); r.status != tt.status {
			t.Errorf("POST %s %v: %d, want %d", tt.path, tt.form, r.status, tt.status)
		}
	}
}

func TestFeatureSwitchNeedsAnOperatorAndTheSameSite(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	viewer := h.signedIn("look@example.com", app.RoleViewer)
	if r := viewer.post("/admin/features/recommendations", url.Values{"state": {"off"}}); r.status != http.StatusForbidden {
		t.Fatalf("viewer: %d", r.status)
	}
	ops := h.signedIn("ops@example.com", app.RoleOperator)
	ops.header.Set("Sec-Fetch-Site", "cross-site")
	if r := ops.post("/admin/features/recommendations", url.Values{"state": {"off"}}); r.status != http.StatusForbidden {
		t.Fatalf("cross-site: %d", r.status)
	}
	if r := h.client().post("/admin/features/recommendations", url.Values{"state": {"off"}}); r.status != http.StatusSeeOther ||
		!strings.HasPrefix(r.location, "/admin/signin") {
		t.Fatalf("anonymous: %d %q", r.status, r.location)
	}
	if n := h.count(`SELECT count(*) FROM feature_overrides`); n != 0 {
		t.Fatal("a refused post switched a feature off")
	}
	if len(h.audits("feature.off")) != 0 {
		t.Fatal("a refused post was audited")
	}
}
