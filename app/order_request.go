package app

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Limits on an order request.
const (
	MaxOrderLines = 20
	MaxQuantity   = 1000
)

// OrderRequest is the body of POST /api/v1/orders, validated and
// normalised. It names products and quantities only: prices come from
// our catalog, in the transaction that records the order.
type OrderRequest struct {
	Lines       []OrderLine `json:"lines"`
	Currency    string      `json:"currency"`
	Customer    *Customer   `json:"customer,omitempty"`
	CallbackURL string      `json:"callback_url,omitempty"`
}

type orderWire struct {
	Lines       json.RawMessage `json:"lines"`
	Currency    json.RawMessage `json:"currency"`
	Customer    json.RawMessage `json:"customer"`
	CallbackURL json.RawMessage `json:"callback_url"`
	// Named so a client that sends a price hears why it is refused, rather
	// than "unknown field".
	Amount json.RawMessage `json:"amount"`
	Total  json.RawMessage `json:"total"`
}

type orderLineWire struct {
	SKU      json.RawMessage `json:"sku"`
	Quantity json.RawMessage `json:"quantity"`
	Price    json.RawMessage `json:"price"`
	Amount   json.RawMessage `json:"amount"`
}

// ParseOrderRequest decodes and validates an untrusted order body.
// Malformed JSON is EBADREQUEST; anything well-formed but wrong is EINVALID
// naming the field (lines[2].quantity). Whether each SKU is in the catalog
// is checked when the order is recorded.
func ParseOrderRequest(body []byte) (OrderRequest, error) {
	var w orderWire
	if err := decodeStrict(body, &w); err != nil {
		return OrderRequest{}, err
	}
	var o OrderRequest
	for name, raw := range map[string]json.RawMessage{"amount": w.Amount, "total": w.Total} {
		if raw != nil {
			return o, FieldErrorf(name, "an order's total is computed from our catalog's prices; do not send %s", name)
		}
	}
	if w.Lines == nil || isJSONNull(w.Lines) {
		return o, FieldErrorf("lines", "lines is required: at least one {\"sku\", \"quantity\"}")
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(w.Lines, &raws); err != nil {
		return o, FieldErrorf("lines", "lines must be an array of {\"sku\", \"quantity\"}")
	}
	switch {
	case len(raws) == 0:
		return o, FieldErrorf("lines", "an order needs at least one line")
	case len(raws) > MaxOrderLines:
		return o, FieldErrorf("lines", "an order has at most %d lines, not %d", MaxOrderLines, len(raws))
	}
	seen := map[string]int{}
	for i, raw := range raws {
		l, err := parseOrderLine(raw, i)
		if err != nil {
			return o, err
		}
		if j, dup := seen[l.SKU]; dup {
			return o, FieldErrorf(fmt.Sprintf("lines[%d].sku", i),
				"%s is already line %d; order it once with the total quantity", l.SKU, j)
		}
		seen[l.SKU] = i
		o.Lines = append(o.Lines, l)
	}

	cur, err := requiredString(w.Currency, "currency")
	if err != nil {
		return o, err
	}
	o.Currency = strings.ToLower(cur)
	if !KnownCurrency(o.Currency) {
		return o, FieldErrorf("currency", "currency %q is not a supported ISO 4217 code", ElideText(cur, 16))
	}
	if o.CallbackURL, err = optionalString(w.CallbackURL, "callback_url"); err != nil {
		return o, err
	}
	if o.CallbackURL != "" {
		if err := checkCallbackURL(o.CallbackURL); err != nil {
			return o, err
		}
	}
	if w.Customer != nil && !isJSONNull(w.Customer) {
		c, err := parseCustomer(w.Customer)
		if err != nil {
			return o, err
		}
		if c.Email != "" || c.Phone != "" {
			o.Customer = &c
		}
	}
	return o, nil
}

func parseOrderLine(raw json.RawMessage, i int) (OrderLine, error) {
	field := func(name string) string { return fmt.Sprintf("lines[%d].%s", i, name) }
	var w orderLineWire
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			f = strings.Trim(f, `"`)
			return OrderLine{}, FieldErrorf(field(ElideText(f, 32)), "unknown field %q", ElideText(f, 32))
		}
		return OrderLine{}, FieldErrorf(fmt.Sprintf("lines[%d]", i), "each line must be an object {\"sku\", \"quantity\"}")
	}
	if w.Price != nil || w.Amount != nil {
		return OrderLine{}, FieldErrorf(field("price"), "prices come from our catalog; do not send one")
	}
	var l OrderLine
	sku, err := requiredString(w.SKU, field("sku"))
	if err != nil {
		return l, err
	}
	if !ValidSKU(sku) {
		return l, FieldErrorf(field("sku"), "%q is not a SKU (lower-case letters, digits and dashes)", ElideText(sku, 64))
	}
	l.SKU = sku
	if w.Quantity == nil || isJSONNull(w.Quantity) {
		return l, FieldErrorf(field("quantity"), "%s is required", field("quantity"))
	}
	q := strings.TrimSpace(string(w.Quantity))
	n, err := strconv.Atoi(q)
	switch {
	case err != nil && strings.ContainsAny(q, ".eE") && !strings.HasPrefix(q, `"`):
		return l, FieldErrorf(field("quantity"), "quantity must be a whole number, not %s", ElideText(q, 32))
	case err != nil && len(q) > 0 && (q[0] == '-' || (q[0] >= '0' && q[0] <= '9')):
		return l, FieldErrorf(field("quantity"), "quantity must be 1 to %d", MaxQuantity)
	case err != nil:
		return l, FieldErrorf(field("quantity"), "quantity must be a whole number")
	case n < 1 || n > MaxQuantity:
		return l, FieldErrorf(field("quantity"), "quantity must be 1 to %d, not %d", MaxQuantity, n)
	}
	l.Quantity = n
	return l, nil
}

// Fingerprint identifies the order's meaning, as PaymentRequest's does:
// whitespace, key order and currency case do not change it; the lines'
// order does, since it is the order the steps run in.
func (o OrderRequest) Fingerprint() []byte {
	b, _ := json.Marshal(o) // struct of plain fields: cannot fail
	sum := sha256.Sum256(append([]byte("order\x00"), b...))
	return sum[:]
}

// Callback is the webhook URL to vet before the order is recorded.
func (o OrderRequest) Callback() string { return o.CallbackURL }

// PriceOrder prices an order's lines from the catalog (the products with
// its SKUs, read in the transaction that records the order) and returns
// them with the total. A SKU that is not in the catalog, or not for sale,
// or priced in another currency than the order's, is an EINVALID error on
// that line: nothing is recorded for such an order.
func PriceOrder(o OrderRequest, catalog map[string]Product) ([]PricedLine, int64, error) {
	lines := make([]PricedLine, 0, len(o.Lines))
	var total int64
	for i, l := range o.Lines {
		field := fmt.Sprintf("lines[%d].sku", i)
		p, ok := catalog[l.SKU]
		switch {
		case !ok:
			return nil, 0, FieldErrorf(field, "we have no product %s", l.SKU)
		case !p.Active:
			return nil, 0, FieldErrorf(field, "%s is no longer for sale", l.SKU)
		case p.Currency != o.Currency:
			return nil, 0, FieldErrorf("currency", "%s is priced in %s, not %s", l.SKU, strings.ToUpper(p.Currency), strings.ToUpper(o.Currency))
		}
		// Quantities are at most MaxQuantity and prices at most MaxAmount,
		// so the product cannot overflow; the sum is checked as it grows.
		total += p.Price * int64(l.Quantity)
		if total > MaxAmount {
			return nil, 0, FieldErrorf("lines", "the order's total is more than the most we charge at once (%d)", MaxAmount)
		}
		lines = append(lines, PricedLine{SKU: l.SKU, Quantity: l.Quantity, UnitPrice: p.Price})
	}
	return lines, total, nil
}
