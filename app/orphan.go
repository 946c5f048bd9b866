package app

import (
	"time"

	"github.com/google/uuid"
)

// OrphanStatus is where a charge the sweep found with no operation of ours
// stands.
type OrphanStatus string

const (
	OrphanOpen     OrphanStatus = "open"     // found, not refunded
	OrphanRefunded OrphanStatus = "refunded" // refunded by the sweep (ORPHAN_REFUND=true)
	OrphanAdopted  OrphanStatus = "adopted"  // the client's retry recorded its operation after all
)

// OrphanCharge is a charge the provider holds that no operation of ours
// accounts for: typically a sync charge that succeeded while our commit
// was lost, and whose client never retried.
type OrphanCharge struct {
	ChargeID   string
	Reference  string
	Amount     int64
	Currency   string
	Status     OrphanStatus
	CreatedAt  time.Time
	FoundAt    time.Time
	ResolvedAt *time.Time
	RefundID   string
	Error      string
}

// OrphanVerdict is what the sweep makes of one provider charge.
type OrphanVerdict int

const (
	ChargeAccounted OrphanVerdict = iota // an operation records this charge (or it took no money)
	ChargeUnsettled                      // its operation is still open: not ours to judge yet
	ChargeOrphaned                       // no operation of ours accounts for it
)

// JudgeCharge decides whether a succeeded charge is an orphan. op is the
// operation its reference names, nil when there is none. A charge is
// accounted for only by an operation that succeeded with this very charge:
// one that succeeded with another (a stray second charge under an earlier
// key) or ended without charging (declined, failed, cancelled) leaves this
// charge with nobody's request behind it.
func JudgeCharge(c ProviderCharge, op *Operation) OrphanVerdict {
	if c.Status != "succeeded" {
		return ChargeAccounted // declined or already refunded: no money held
	}
	if op == nil {
		return ChargeOrphaned
	}
	if !op.Status.Terminal() {
		return ChargeUnsettled
	}
	if op.Status == StatusSucceeded && op.ProviderRef() == c.ID {
		return ChargeAccounted
	}
	return ChargeOrphaned
}

// ReferenceID parses a charge's reference as an operation id.
func ReferenceID(ref string) (uuid.UUID, bool) {
	id, err := uuid.Parse(ref)
	return id, err == nil
}
