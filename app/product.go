package app

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// Product is one entry of our catalog: what an order line names, and the
// price the order is charged at. Price is in minor units of Currency.
type Product struct {
	SKU      string `json:"sku"`
	Name     string `json:"name"`
	Price    int64  `json:"price"`
	Currency string `json:"currency"`
	// Active products can be ordered; an inactive one stays in the
	// catalog for the orders that named it.
	Active bool `json:"active"`
}

// skuPattern is what a SKU may look like: lower-case letters, digits and
// dashes, as the products table's check constraint says.
var skuPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

// ValidSKU reports whether s has the form of a SKU.
func ValidSKU(s string) bool { return skuPattern.MatchString(s) }

// Validate checks a product before it is stored; the error names the field.
func (p Product) Validate() error {
	switch {
	case !ValidSKU(p.SKU):
		return FieldErrorf("sku", "sku must be 1 to 64 lower-case letters, digits or dashes, starting with a letter or digit")
	case strings.TrimSpace(p.Name) == "" || utf8.RuneCountInString(p.Name) > 200:
		return FieldErrorf("name", "name must be 1 to 200 characters")
	case p.Price <= 0 || p.Price > MaxAmount:
		return FieldErrorf("price", "price must be a positive amount in minor units, at most %d", MaxAmount)
	case !KnownCurrency(p.Currency):
		return FieldErrorf("currency", "currency must be a lower-case ISO 4217 code")
	}
	return nil
}
