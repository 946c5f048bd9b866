package app_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/spillway/spillway/app"
)

func TestParseOrderRequest(t *testing.T) {
	t.Parallel()
	manyLines := func(n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"sku": "sku-%d", "quantity": 1}`, i)
		}
		return `{"lines": [` + b.String() + `], "currency": "usd"}`
	}
	tests := []struct {
		name, body string
		code       string // "" means valid
		field, msg string
	}{
		{"one line", `{"lines": [{"sku": "sku-tea", "quantity": 2}], "currency": "USD"}`, "", "", ""},
		{"with customer and callback", `{"lines": [{"sku": "sku-tea", "quantity": 1}, {"sku": "sku-mug", "quantity": 3}],
			"currency": "usd", "customer": {"email": "a@b.example"}, "callback_url": "https://shop.example/hook"}`, "", "", ""},
		{"not JSON", `{"lines": [`, app.EBADREQUEST, "", "not valid JSON"},
		{"empty body", ``, app.EBADREQUEST, "", "empty"},
		{"an array", `[]`, app.EINVALID, "", "JSON object"},
		{"no lines", `{"currency": "usd"}`, app.EINVALID, "lines", "required"},
		{"empty lines", `{"lines": [], "currency": "usd"}`, app.EINVALID, "lines", "at least one line"},
		{"lines not an array", `{"lines": {"sku": "sku-tea"}, "currency": "usd"}`, app.EINVALID, "lines", "array"},
		{"too many lines", manyLines(app.MaxOrderLines + 1), app.EINVALID, "lines", "at most 20 lines"},
		{"as many lines as allowed", manyLines(app.MaxOrderLines), "", "", ""},
		{"duplicate lines", `{"lines": [{"sku": "sku-tea", "quantity": 1}, {"sku": "sku-tea", "quantity": 2}], "currency": "usd"}`,
			app.EINVALID, "lines[1].sku", "already line 0"},
		{"zero quantity", `{"lines": [{"sku": "sku-tea", "quantity": 0}], "currency": "usd"}`, app.EINVALID, "lines[0].quantity", "1 to 1000"},
		{"negative quantity", `{"lines": [{"sku": "sku-tea", "quantity": -3}], "currency": "usd"}`, app.EINVALID, "lines[0].quantity", "1 to 1000"},
		{"huge quantity", `{"lines": [{"sku": "sku-tea", "quantity": 1000000000000000000000}], "currency": "usd"}`, app.EINVALID, "lines[0].quantity", "1 to 1000"},
		{"quantity over the limit", `{"lines": [{"sku": "sku-tea", "quantity": 1001}], "currency": "usd"}`, app.EINVALID, "lines[0].quantity", "1 to 1000"},
		{"fractional quantity", `{"lines": [{"sku": "sku-tea", "quantity": 1.5}], "currency": "usd"}`, app.EINVALID, "lines[0].quantity", "whole number"},
		{"quantity as text", `{"lines": [{"sku": "sku-tea", "quantity": "2"}], "currency": "usd"}`, app.EINVALID, "lines[0].quantity", "whole number"},
		{"no quantity", `{"lines": [{"sku": "sku-tea"}], "currency": "usd"}`, app.EINVALID, "lines[0].quantity", "required"},
		{"no sku", `{"lines": [{"quantity": 1}], "currency": "usd"}`, app.EINVALID, "lines[0].sku", "required"},
		{"bad sku", `{"lines": [{"sku": "Tea Bags!", "quantity": 1}], "currency": "usd"}`, app.EINVALID, "lines[0].sku", "not a SKU"},
		{"line not an object", `{"lines": [5], "currency": "usd"}`, app.EINVALID, "lines[0]", "object"},
		{"unknown line field", `{"lines": [{"sku": "sku-tea", "quantity": 1, "colour": "red"}], "currency": "usd"}`, app.EINVALID, "lines[0].colour", "unknown field"},
		{"price on a line", `{"lines": [{"sku": "sku-tea", "quantity": 1, "price": 1}], "currency": "usd"}`, app.EINVALID, "lines[0].price", "from our catalog"},
		{"amount on a line", `{"lines": [{"sku": "sku-tea", "quantity": 1, "amount": 1}], "currency": "usd"}`, app.EINVALID, "lines[0].price", "from our catalog"},
		{"a total", `{"lines": [{"sku": "sku-tea", "quantity": 1}], "currency": "usd", "amount": 1}`, app.EINVALID, "amount", "computed from our catalog"},
		{"no currency", `{"lines": [{"sku": "sku-tea", "quantity": 1}]}`, app.EINVALID, "currency", "required"},
		{"unknown currency", `{"lines": [{"sku": "sku-tea", "quantity": 1}], "currency": "usx"}`, app.EINVALID, "currency", "ISO 4217"},
		{"bad callback", `{"lines": [{"sku": "sku-tea", "quantity": 1}], "currency": "usd", "callback_url": "ftp://x"}`, app.EINVALID, "callback_url", ""},
		{"unknown field", `{"lines": [{"sku": "sku-tea", "quantity": 1}], "currency": "usd", "coupon": "FREE"}`, app.EINVALID, "coupon", "unknown field"},
	}
	for _, tt := range tests {
		o, err := app.ParseOrderRequest([]byte(tt.body))
		if tt.code == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			} else if len(o.Lines) == 0 || o.Currency != strings.ToLower(o.Currency) {
				t.Errorf("%s: parsed %+v", tt.name, o)
			}
			continue
		}
		var e *app.Error
		if !errors.As(err, &e) || e.Code != tt.code || e.Field != tt.field || !strings.Contains(e.Message, tt.msg) {
			t.Errorf("%s: %v (%+v), want %s on %q mentioning %q", tt.name, err, e, tt.code, tt.field, tt.msg)
		}
	}
}

// Formatting and currency case do not change an order's meaning; the
// lines, their order and their quantities do.
func TestOrderFingerprint(t *testing.T) {
	t.Parallel()
	fp := func(body string) []byte {
		o, err := app.ParseOrderRequest([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return o.Fingerprint()
	}
	a := fp(`{"lines": [{"sku": "sku-tea", "quantity": 1}, {"sku": "sku-mug", "quantity": 2}], "currency": "usd"}`)
	if !bytes.Equal(a, fp(`{"currency":"USD","lines":[{"quantity":1,"sku":"sku-tea"},{"sku":"sku-mug","quantity":2}]}`)) {
		t.Error("formatting changed the fingerprint")
	}
	for _, other := range []string{
		`{"lines": [{"sku": "sku-mug", "quantity": 2}, {"sku": "sku-tea", "quantity": 1}], "currency": "usd"}`,
		`{"lines": [{"sku": "sku-tea", "quantity": 2}, {"sku": "sku-mug", "quantity": 2}], "currency": "usd"}`,
		`{"lines": [{"sku": "sku-tea", "quantity": 1}, {"sku": "sku-mug", "quantity": 2}], "currency": "eur"}`,
	} {
		if bytes.Equal(a, fp(other)) {
			t.Errorf("%s has the same fingerprint", other)
		}
	}
}

func FuzzParseOrderRequest(f *testing.F) {
	for _, s := range []string{
		`{"lines": [{"sku": "sku-tea", "quantity": 2}], "currency": "usd"}`,
		`{"lines": [{"sku": "sku-tea", "quantity": 1, "price": 1}], "currency": "usd", "customer": {"email": "a@b.example"}}`,
		`{"lines": [], "currency": "usd"}`, `{"lines": [5]}`, `[]`, `null`, `{"lines": [{"quantity": 1e400}]}`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := app.ParseOrderRequest(body)
		if err != nil {
			var e *app.Error
			if !errors.As(err, &e) || (e.Code != app.EINVALID && e.Code != app.EBADREQUEST) {
				t.Fatalf("uncoded error %v", err)
			}
			return
		}
		if len(o.Lines) == 0 || len(o.Lines) > app.MaxOrderLines || !app.KnownCurrency(o.Currency) {
			t.Fatalf("invalid order accepted: %+v", o)
		}
		seen := map[string]bool{}
		for _, l := range o.Lines {
			if !app.ValidSKU(l.SKU) || l.Quantity < 1 || l.Quantity > app.MaxQuantity || seen[l.SKU] {
				t.Fatalf("invalid line accepted: %+v", o)
			}
			seen[l.SKU] = true
		}
	})
}

func TestPriceOrder(t *testing.T) {
	t.Parallel()
	catalog := map[string]app.Product{
		"sku-tea":  {SKU: "sku-tea", Price: 450, Currency: "usd", Active: true},
		"sku-mug":  {SKU: "sku-mug", Price: 1200, Currency: "usd", Active: true},
		"sku-old":  {SKU: "sku-old", Price: 100, Currency: "usd", Active: false},
		"sku-euro": {SKU: "sku-euro", Price: 100, Currency: "eur", Active: true},
		"sku-gold": {SKU: "sku-gold", Price: app.MaxAmount / 10, Currency: "usd", Active: true},
	}
	order := func(lines ...app.OrderLine) app.OrderRequest { return app.OrderRequest{Lines: lines, Currency: "usd"} }
	tests := []struct {
		name  string
		order app.OrderRequest
		total int64
		field string // "" means priced
	}{
		{"two lines", order(app.OrderLine{SKU: "sku-tea", Quantity: 2}, app.OrderLine{SKU: "sku-mug", Quantity: 1}), 2100, ""},
		{"unknown sku", order(app.OrderLine{SKU: "sku-tea", Quantity: 1}, app.OrderLine{SKU: "sku-nope", Quantity: 1}), 0, "lines[1].sku"},
		{"not for sale", order(app.OrderLine{SKU: "sku-old", Quantity: 1}), 0, "lines[0].sku"},
		{"other currency", order(app.OrderLine{SKU: "sku-euro", Quantity: 1}), 0, "currency"},
		{"total too large", order(app.OrderLine{SKU: "sku-gold", Quantity: 11}), 0, "lines"},
	}
	for _, tt := range tests {
		lines, total, err := app.PriceOrder(tt.order, catalog)
		var e *app.Error
		switch {
		case tt.field == "" && (err != nil || total != tt.total || len(lines) != len(tt.order.Lines)):
			t.Errorf("%s: %v %d %v", tt.name, lines, total, err)
		case tt.field != "" && (!errors.As(err, &e) || e.Code != app.EINVALID || e.Field != tt.field || lines != nil):
			t.Errorf("%s: %v %v, want EINVALID on %s", tt.name, lines, err, tt.field)
		}
	}
	lines, _, _ := app.PriceOrder(order(app.OrderLine{SKU: "sku-tea", Quantity: 2}), catalog)
	if lines[0].UnitPrice != 450 {
		t.Errorf("the line carries the catalog's price: %+v", lines[0])
	}
}
