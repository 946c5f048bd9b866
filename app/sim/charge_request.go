package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

const (
	// maxBodyBytes caps request bodies; a charge is a few dozen bytes.
	maxBodyBytes = 64 << 10
	// maxKeyLen matches what real providers accept for idempotency keys.
	maxKeyLen = 255
	// maxReferenceLen bounds what we store per key.
	maxReferenceLen = 255
)

// chargeRequest is the POST /charges body. Unknown fields are ignored so the
// contract can grow without breaking older callers.
type chargeRequest struct {
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
	Reference string `json:"reference"`
}

// decodeChargeRequest parses and validates a charge body. The returned
// request has its currency lower-cased.
func decodeChargeRequest(body []byte) (chargeRequest, error) {
	var req chargeRequest
	if err := decodeBody(body, &req, "charge"); err != nil {
		return chargeRequest{}, err
	}
	if req.Amount <= 0 {
		return chargeRequest{}, fmt.Errorf("amount must be a positive integer in minor units, got %d", req.Amount)
	}
	if !isCurrency(req.Currency) {
		return chargeRequest{}, fmt.Errorf("currency must be a 3-letter ISO 4217 code, got %q", req.Currency)
	}
	req.Currency = strings.ToLower(req.Currency)
	if len(req.Reference) > maxReferenceLen {
		return chargeRequest{}, fmt.Errorf("reference must be at most %d bytes, got %d", maxReferenceLen, len(req.Reference))
	}
	return req, nil
}

func isCurrency(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := range len(s) {
		c := s[i] | 0x20 // ASCII lower-case
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// decodeBody decodes one JSON value of a what request body into v, and
// nothing after it. Unknown fields are ignored so the contract can grow
// without breaking older callers.
func decodeBody(body []byte, v any, what string) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode %s body: %w", what, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("decode %s body: trailing data after JSON object", what)
	}
	return nil
}

func validateKey(key string) error {
	if key == "" {
		return errors.New("Idempotency-Key header is required")
	}
	if len(key) > maxKeyLen {
		return fmt.Errorf("Idempotency-Key must be at most %d bytes, got %d", maxKeyLen, len(key))
	}
	return nil
}

// validateChargeID bounds a charge id taken from a path. It need not be
// one of ours: an unknown id is answered 404 by the ledger.
func validateChargeID(id string) error {
	if id == "" {
		return errors.New("charge id is required")
	}
	if len(id) > maxKeyLen {
		return fmt.Errorf("charge id must be at most %d bytes, got %d", maxKeyLen, len(id))
	}
	return nil
}
