package app

import (
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river/rivertype"
)

// JobFilter chooses River jobs by what they are and what they work on:
// the set an operator lists, counts, or acts on all at once. Zero fields
// do not narrow.
type JobFilter struct {
	States      []rivertype.JobState // nil: any state
	MaxPriority int                  // only jobs at this priority or higher (1 is highest); 0: any
	Kind        string
	Queue       string
	Priority    int // 0: any
	OperationID *uuid.UUID
	Email       string // the operation's customer, lower-cased
	MinAmount   int64  // minor units; 0: no bound
	MaxAmount   int64
	Within      time.Duration // created within this long before now; 0: any time
	// Dependency, a declared dependency's name, chooses the jobs of
	// operations one of whose calls goes to it: a payment's charge, an
	// order's steps (each names its dependency). "": any.
	Dependency string
}

// JobKinds are the River job kinds Spillway itself inserts, in the order
// a kind filter offers them: the operations first, then their
// notifications. Other kinds found in River (periodic jobs) come after.
func JobKinds() []string {
	return []string{KindPayment, KindOrder, DeliveryArgs{}.Kind()}
}

// operationCalls is the dependency an operation of a one-call kind calls.
// An operation of a step kind (StepKind: an order) calls several, and its
// steps name them, so it is not here.
var operationCalls = map[string]string{KindPayment: DepPayment}

// KindsCalling lists the one-call operation kinds whose call goes to
// dependency dep; operations of step kinds are matched by their steps.
func KindsCalling(dep string) []string {
	var out []string
	for kind, d := range operationCalls {
		if d == dep {
			out = append(out, kind)
		}
	}
	return out
}

// ParseDependency accepts the name of a declared dependency.
func ParseDependency(s string) (string, error) {
	s = strings.TrimSpace(s)
	var names []string
	for _, d := range Dependencies() {
		if d.Name == s {
			return s, nil
		}
		names = append(names, d.Name)
	}
	return "", FieldErrorf("dependency", "dependency must be one of %s, not %q", strings.Join(names, ", "), s)
}

// ParsePriority accepts River priorities 1 (highest) to 4.
func ParsePriority(s string) (int, error) {
	p, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || p < 1 || p > 4 {
		return 0, FieldErrorf("priority", "priority must be 1 (highest) to 4, not %q", s)
	}
	return p, nil
}
