package app_test

import (
	"testing"

	"github.com/spillway/spillway/app"
)

func TestProductValidate(t *testing.T) {
	t.Parallel()
	good := app.Product{SKU: "sku-tea", Name: "Tea", Price: 450, Currency: "usd", Active: true}
	tests := []struct {
		name  string
		edit  func(*app.Product)
		field string // "" means valid
	}{
		{"good", func(*app.Product) {}, ""},
		{"upper-case sku", func(p *app.Product) { p.SKU = "SKU-TEA" }, "sku"},
		{"empty sku", func(p *app.Product) { p.SKU = "" }, "sku"},
		{"sku with a space", func(p *app.Product) { p.SKU = "sku tea" }, "sku"},
		{"sku starting with a dash", func(p *app.Product) { p.SKU = "-tea" }, "sku"},
		{"blank name", func(p *app.Product) { p.Name = "  " }, "name"},
		{"free", func(p *app.Product) { p.Price = 0 }, "price"},
		{"negative", func(p *app.Product) { p.Price = -1 }, "price"},
		{"too dear", func(p *app.Product) { p.Price = app.MaxAmount + 1 }, "price"},
		{"unknown currency", func(p *app.Product) { p.Currency = "usx" }, "currency"},
		{"upper-case currency", func(p *app.Product) { p.Currency = "USD" }, "currency"},
	}
	for _, tt := range tests {
		p := good
		tt.edit(&p)
		err := p.Validate()
		var field string
		if e, ok := err.(*app.Error); ok {
			field = e.Field
		}
		if (err == nil) != (tt.field == "") || field != tt.field {
			t.Errorf("%s: %v (field %q), want field %q", tt.name, err, field, tt.field)
		}
	}
}
