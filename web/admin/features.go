package admin

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/spillway/spillway/app"
)

// featuresView is the feature hierarchy as the overview shows it.
type featuresView struct {
	Features []app.FeatureStatus
	Off      int
	Level    int
	Reasons  []string
}

func newFeaturesView(fs *app.FeatureSwitch) *featuresView {
	if fs == nil {
		return nil
	}
	snap := fs.Snapshot()
	return &featuresView{Features: snap.Features, Off: len(snap.Off()), Level: snap.Distress.Level(), Reasons: snap.Distress.Reasons()}
}

// featureState is a feature's state in a word, for the table.
func featureState(f app.FeatureStatus) string {
	switch {
	case f.Essential:
		return "essential, always on"
	case f.Manual:
		return "off by hand"
	case !f.On:
		return "off (distress)"
	}
	return "on (automatic)"
}

// handleFeature switches an optional feature off by hand, or returns it
// to automatic (app.Operator).
func (s *server) handleFeature(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	var off bool
	switch r.PostForm.Get("state") {
	case "off":
		off = true
	case "auto":
	default:
		s.renderError(w, r, app.Errorf(app.EINVALID, "A feature can be switched off or returned to automatic, not %q.", r.PostForm.Get("state")))
		return
	}
	changed, err := s.operator.SetFeatureOff(r.Context(), s.actor(r), name, off, r.PostForm.Get("reason"))
	if err != nil {
		s.renderError(w, r, err)
		return
	}
	msg := fmt.Sprintf("Feature %s returned to automatic; every instance follows within a second.", name)
	if off {
		msg = fmt.Sprintf("Feature %s switched off on every instance within a second.", name)
	}
	if !changed {
		msg = "Nothing changed."
	}
	s.redirect(w, r, s.base+"/#features", msg)
}

// joinComma lists reasons for a sentence.
func joinComma(ss []string) string { return strings.Join(ss, "; ") }

// boolWord is a data attribute's value for b.
func boolWord(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
