package app

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on a payment request. MaxAmount keeps amounts exact in any JSON
// client (below 2^53) and well above any single real charge.
const (
	MaxAmount         = 99_999_999_999
	MaxDescriptionLen = 1000
	MaxEmailLen       = 254
	MaxCallbackURLLen = 2048
)

// PaymentRequest is the body of POST /api/v1/payments, validated and
// normalised (currency lower case, strings trimmed).
type PaymentRequest struct {
	Amount      int64     `json:"amount"`
	Currency    string    `json:"currency"`
	Customer    *Customer `json:"customer,omitempty"`
	Description string    `json:"description,omitempty"`
	CallbackURL string    `json:"callback_url,omitempty"`
	// Defer is "offpeak" to run in the off-peak window, "none" to run now
	// even where the kind defaults to off-peak, or "" for the default.
	Defer string `json:"defer,omitempty"`
}

// Defer values.
const (
	DeferOffpeak = "offpeak"
	DeferNone    = "none"
)

// Customer is who pays and how they want to hear back.
type Customer struct {
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// wire types use json.RawMessage so a wrong type is reported against the
// field that has it, not as an opaque decode failure.
type paymentWire struct {
	Amount      json.RawMessage `json:"amount"`
	Currency    json.RawMessage `json:"currency"`
	Customer    json.RawMessage `json:"customer"`
	Description json.RawMessage `json:"description"`
	CallbackURL json.RawMessage `json:"callback_url"`
	Defer       json.RawMessage `json:"defer"`
}

type customerWire struct {
	Email json.RawMessage `json:"email"`
	Phone json.RawMessage `json:"phone"`
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)

// ParsePaymentRequest decodes and validates an untrusted request body.
// Malformed JSON is EBADREQUEST; anything well-formed but wrong is EINVALID
// naming the field.
func ParsePaymentRequest(body []byte) (PaymentRequest, error) {
	var w paymentWire
	if err := decodeStrict(body, &w); err != nil {
		return PaymentRequest{}, err
	}
	var p PaymentRequest
	if w.Amount == nil {
		return p, FieldErrorf("amount", "amount is required")
	}
	amount, err := parseAmount(w.Amount)
	if err != nil {
		return p, err
	}
	p.Amount = amount

	cur, err := requiredString(w.Currency, "currency")
	if err != nil {
		return p, err
	}
	p.Currency = strings.ToLower(cur)
	if !KnownCurrency(p.Currency) {
		return p, FieldErrorf("currency", "currency %q is not a supported ISO 4217 code", ElideText(cur, 16))
	}

	if p.Description, err = optionalString(w.Description, "description"); err != nil {
		return p, err
	}
	if err := checkText(p.Description, "description", MaxDescriptionLen); err != nil {
		return p, err
	}

	if p.CallbackURL, err = optionalString(w.CallbackURL, "callback_url"); err != nil {
		return p, err
	}
	if p.CallbackURL != "" {
		if err := checkCallbackURL(p.CallbackURL); err != nil {
			return p, err
		}
	}

	if p.Defer, err = optionalString(w.Defer, "defer"); err != nil {
		return p, err
	}
	if p.Defer != "" && p.Defer != DeferOffpeak && p.Defer != DeferNone {
		return p, FieldErrorf("defer", "defer must be %q or %q", DeferOffpeak, DeferNone)
	}

	if w.Customer != nil && !isJSONNull(w.Customer) {
		c, err := parseCustomer(w.Customer)
		if err != nil {
			return p, err
		}
		if c.Email != "" || c.Phone != "" {
			p.Customer = &c
		}
	}
	return p, nil
}

// Fingerprint identifies the request's meaning: two bodies that differ only
// in whitespace, key order or currency case have the same fingerprint, so a
// client's faithful retry is never mistaken for key reuse.
func (p PaymentRequest) Fingerprint() []byte {
	b, _ := json.Marshal(p) // struct of plain fields: cannot fail
	sum := sha256.Sum256(append([]byte("payment\x00"), b...))
	return sum[:]
}

func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		switch {
		case errors.As(err, &ute) && ute.Field == "":
			return Errorf(EINVALID, "the request body must be a JSON object")
		case errors.As(err, &ute):
			// Only the RawMessage fields' parents can mistype here.
			return FieldErrorf(ute.Field, "%s has the wrong type", ute.Field)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return FieldErrorf(ElideText(f, 64), "unknown field %q", ElideText(f, 64))
		case errors.Is(err, io.EOF):
			return Errorf(EBADREQUEST, "the request body is empty")
		}
		return &Error{Code: EBADREQUEST, Message: "the request body is not valid JSON", Err: err}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Errorf(EBADREQUEST, "the request body has data after the JSON value")
	}
	return nil
}

func parseCustomer(raw json.RawMessage) (Customer, error) {
	var w customerWire
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return Customer{}, FieldErrorf("customer", "customer must be an object")
		}
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return Customer{}, FieldErrorf("customer."+ElideText(f, 64), "unknown field %q", "customer."+ElideText(f, 64))
		}
		return Customer{}, FieldErrorf("customer", "customer must be an object")
	}
	var c Customer
	var err error
	if c.Email, err = optionalString(w.Email, "customer.email"); err != nil {
		return c, err
	}
	if c.Email != "" && !ValidEmail(c.Email) {
		return c, FieldErrorf("customer.email", "customer.email must be a plain email address")
	}
	if c.Phone, err = optionalString(w.Phone, "customer.phone"); err != nil {
		return c, err
	}
	if c.Phone != "" && !ValidPhone(c.Phone) {
		return c, FieldErrorf("customer.phone", "customer.phone must be in E.164 form, like +15551234567")
	}
	return c, nil
}

// ValidEmail reports whether s is a plain email address we will write to
// (no display name, at most MaxEmailLen).
func ValidEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && len(s) <= MaxEmailLen && a.Name == ""
}

// ValidPhone reports whether s is a phone number in E.164 form.
func ValidPhone(s string) bool { return e164.MatchString(s) }

func parseAmount(raw json.RawMessage) (int64, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) {
		return 0, FieldErrorf("amount", "amount must be an integer number of minor units")
	}
	// Reject fractions and exponents outright: 19.99 is a common client
	// mistake (major units) and must not be rounded into a charge.
	if strings.ContainsAny(s, ".eE") {
		return 0, FieldErrorf("amount", "amount must be an integer number of minor units, not %s", ElideText(s, 32))
	}
	var n json.Number = json.Number(s)
	v, err := n.Int64()
	if err != nil {
		return 0, FieldErrorf("amount", "amount must be at most %d", MaxAmount)
	}
	if v <= 0 {
		return 0, FieldErrorf("amount", "amount must be greater than zero")
	}
	if v > MaxAmount {
		return 0, FieldErrorf("amount", "amount must be at most %d", MaxAmount)
	}
	return v, nil
}

func requiredString(raw json.RawMessage, field string) (string, error) {
	if raw == nil || isJSONNull(raw) {
		return "", FieldErrorf(field, "%s is required", field)
	}
	s, err := optionalString(raw, field)
	if err == nil && s == "" {
		return "", FieldErrorf(field, "%s is required", field)
	}
	return s, err
}

func optionalString(raw json.RawMessage, field string) (string, error) {
	if raw == nil || isJSONNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", FieldErrorf(field, "%s must be a string", field)
	}
	if !utf8.ValidString(s) {
		return "", FieldErrorf(field, "%s must be valid UTF-8", field)
	}
	return strings.TrimSpace(s), nil
}

func checkText(s, field string, max int) error {
	if utf8.RuneCountInString(s) > max {
		return FieldErrorf(field, "%s must be at most %d characters", field, max)
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return FieldErrorf(field, "%s must not contain control characters", field)
		}
	}
	return nil
}

func checkCallbackURL(s string) error {
	if len(s) > MaxCallbackURLLen {
		return FieldErrorf("callback_url", "callback_url must be at most %d bytes", MaxCallbackURLLen)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return FieldErrorf("callback_url", "callback_url must be an absolute http or https URL without credentials")
	}
	return nil
}

func isJSONNull(raw json.RawMessage) bool {
	return strings.TrimSpace(string(raw)) == "null"
}

// String is for logs: it leaves out the customer's contact details.
func (p PaymentRequest) String() string {
	return fmt.Sprintf("payment %d %s", p.Amount, p.Currency)
}
