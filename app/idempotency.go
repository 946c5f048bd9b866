package app

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// MaxIdempotencyKeyLen is the longest Idempotency-Key accepted (DESIGN.md).
const MaxIdempotencyKeyLen = 255

// IdempotencyRecord is the answer first given for a key, kept with the
// operation the key names so that a retry of the same request gets the
// same answer and never a second effect.
type IdempotencyRecord struct {
	Scope       string
	Key         string
	Fingerprint []byte
	OperationID uuid.UUID
	Response    json.RawMessage // the OperationDocument as first answered
	CreatedAt   time.Time
}

// KeyClaim is what claiming an idempotency key found.
type KeyClaim struct {
	Locked          bool               // false: another request holds the key
	Record          *IdempotencyRecord // the first answer, if any
	OperationExists bool               // the request's operation exists without an answer to replay
	// RefundedOrphans counts charges made for this operation id whose
	// commit was lost and which the orphan sweep has since refunded: a
	// request arriving now charges under the next key (Operation.KeyGen),
	// since the provider would replay the refunded charge under the old.
	RefundedOrphans int
}

// Matches reports whether a new request is the same as the recorded one.
func (r *IdempotencyRecord) Matches(fingerprint []byte) bool {
	return bytes.Equal(r.Fingerprint, fingerprint)
}

// CheckIdempotencyKey validates a client-supplied key.
func CheckIdempotencyKey(key string) error {
	switch {
	case key == "":
		return Errorf(EBADREQUEST, "the Idempotency-Key header is required")
	case len(key) > MaxIdempotencyKeyLen:
		return Errorf(EBADREQUEST, "the Idempotency-Key header must be at most %d bytes", MaxIdempotencyKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return Errorf(EBADREQUEST, "the Idempotency-Key header must be printable ASCII without spaces")
		}
	}
	return nil
}

// operationNamespace roots the ids derived from idempotency keys.
var operationNamespace = uuid.MustParse("8f4c1d0e-6b1a-4f51-9a57-5b0f3c2e7d11")

// OperationID derives an operation's id from the scope and the client's
// Idempotency-Key alone. It must be deterministic: if the process dies
// after the provider charged but before the commit, the client's retry
// produces the same id, which is the provider's idempotency key, so the
// provider answers with the first charge instead of making a second one.
// The body is deliberately left out: a retry after a lost commit has no
// record to be compared with, and one that edited the description must
// still reach the first charge rather than make a second. The body's
// fingerprint only decides the 422 for a key reused while its record
// exists.
func OperationID(scope, key string) uuid.UUID {
	h := sha256.New()
	h.Write([]byte(scope))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return uuid.NewSHA1(operationNamespace, h.Sum(nil))
}
