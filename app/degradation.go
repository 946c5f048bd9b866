package app

import "strings"

// DegradedServer is the name in Degradation.Names for a server that sheds
// load: it is not a dependency, but it slows the pages all the same.
const DegradedServer = "server"

// Degradation is what a customer page says of a degraded system: the
// dependencies whose breaker is not closed, whether the server sheds load,
// and a message in plain words naming what is slow and what still works.
// It is computed from the same Distress the feature switch and the admin
// overview read, so the banner and the overview never disagree.
type Degradation struct {
	// Dependencies are the degraded dependencies, in declaration order.
	Dependencies []string
	// Shedding is true when a bulkhead is saturated: new work is captured
	// rather than answered at once.
	Shedding bool
	// Message is the banner's text; "" when nothing is degraded.
	Message string
}

// Degraded reports whether the page needs the banner.
func (d Degradation) Degraded() bool { return len(d.Dependencies) > 0 || d.Shedding }

// Names is the banner's data-degraded attribute: the degraded
// dependencies, then "server" when it sheds load, space-separated.
func (d Degradation) Names() string {
	names := d.Dependencies
	if d.Shedding {
		names = append(names[:len(names):len(names)], DegradedServer)
	}
	return strings.Join(names, " ")
}

// depWords is how the banner speaks of a dependency: what is slow, and
// what a customer can still count on.
var depWords = map[string]struct{ slow, still string }{
	DepPayment:   {"payments", "we'll confirm by email when your payment goes through"},
	DepInventory: {"stock checks", "stock shown may be a few minutes old, and we'll confirm availability when we reserve your items"},
}

// Degrade is the banner for d. Pool pressure alone puts up no banner: it
// sheds optional features but nothing a customer would notice as slow.
func Degrade(d Distress) Degradation {
	out := Degradation{Shedding: len(d.Shedding) > 0}
	var slow, still []string
	for _, b := range d.Breakers {
		out.Dependencies = append(out.Dependencies, b.Name)
		w, ok := depWords[b.Name]
		if !ok {
			w.slow = strings.ReplaceAll(b.Name, "_", " ") + " calls"
		}
		slow = append(slow, w.slow)
		if w.still != "" {
			still = append(still, w.still)
		}
	}
	switch {
	case len(slow) > 0:
		out.Message = upperFirst(joinWords(slow)) + " are slow right now."
	case out.Shedding:
		out.Message = "We're busier than usual right now."
	default:
		return out
	}
	if out.Shedding && len(slow) > 0 {
		out.Message += " We're also busier than usual."
	}
	out.Message += " You can still order"
	if len(still) > 0 {
		out.Message += ": " + strings.Join(still, "; ")
	} else if out.Shedding {
		out.Message += ": your order is kept safe and confirmed by email, even if it takes a little longer"
	}
	out.Message += "."
	return out
}

// joinWords joins "a", "b" and "c" as "a, b and c".
func joinWords(ws []string) string {
	switch len(ws) {
	case 0:
		return ""
	case 1:
		return ws[0]
	}
	return strings.Join(ws[:len(ws)-1], ", ") + " and " + ws[len(ws)-1]
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// Degradation is the banner for the distress the switch last read: cheap,
// for every customer page. A nil switch reads no distress.
func (f *FeatureSwitch) Degradation() Degradation { return Degrade(f.Snapshot().Distress) }
