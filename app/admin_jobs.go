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
}

// ParsePriority accepts River priorities 1 (highest) to 4.
func ParsePriority(s string) (int, error) {
	p, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || p < 1 || p > 4 {
		return 0, FieldErrorf("priority", "priority must be 1 (highest) to 4, not %q", s)
	}
	return p, nil
}
