package app

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// OperationEvent is one recorded status change of an operation.
type OperationEvent struct {
	ID       int64     `json:"-"`
	Status   string    `json:"status"`
	Attempts int       `json:"attempts"`
	At       time.Time `json:"at"`
}

// OperationReader is how the inbound side reads operations: the JSON API's
// GET /api/v1/operations/{id}, its event stream and the status page. It
// is an interface so their handlers can be tested with a fake; db.Store is
// the real one.
type OperationReader interface {
	// GetOperation reads one operation; an ENOTFOUND error if none has
	// that id.
	GetOperation(ctx context.Context, id uuid.UUID) (*Operation, error)
	// OperationEvents returns up to a page of an operation's recorded
	// status changes after the event id after, oldest first.
	OperationEvents(ctx context.Context, id uuid.UUID, after int64) ([]OperationEvent, error)
}

// OperationWatcher is what follows changes made by any instance: an
// instance registers its interest in an operation and listens for the
// announcements. db.Store is one.
type OperationWatcher interface {
	// WatchOperation registers, or refreshes, instance's interest in id
	// until ttl from now.
	WatchOperation(ctx context.Context, id uuid.UUID, instance string, ttl time.Duration) error
	// UnwatchOperation drops it.
	UnwatchOperation(ctx context.Context, id uuid.UUID, instance string) error
	// ListenOperations calls fn with an operation's id (as text) whenever
	// a watched operation changes, until ctx ends, calling ready each time
	// it starts listening (changes may have been missed before that).
	ListenOperations(ctx context.Context, ready func(), fn func(id string)) error
}
