package shop

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/spillway/spillway/app"
)

// CheckoutForm is the checkout form as the customer filled it in, kept
// as typed so a form with errors comes back with what they wrote.
type CheckoutForm struct {
	Lines   []FormLine
	Email   string
	Phone   string
	FormKey string
	// Errors are the form's problems by field: "email", "phone",
	// "line-<i>" for a line, "lines" and "form" for the form as a whole.
	Errors map[string]string
}

// FormLine is one line as typed.
type FormLine struct {
	SKU      string
	Quantity string
}

// Field limits that keep a hostile form from costing us anything: a form
// longer than this is refused before any field is looked at.
const (
	maxFieldLen = 320
	maxFormKey  = 64
)

// ParseCheckout reads a submitted checkout form (its fields: sku and
// quantity repeated, one pair per line; email; phone; form_key) and
// validates every field, so each error can be shown beside its field. A
// line whose quantity is empty or zero is left out: the form offers more
// lines than a customer fills in. The request is valid only when Errors is
// empty; currency is the catalog's (all our products share one).
func ParseCheckout(v url.Values, currency string) (CheckoutForm, app.OrderRequest) {
	f := CheckoutForm{
		Email:   clip(strings.TrimSpace(v.Get("email"))),
		Phone:   clip(strings.TrimSpace(v.Get("phone"))),
		FormKey: clip(v.Get("form_key")),
		Errors:  map[string]string{},
	}
	req := app.OrderRequest{Currency: currency}
	skus, qtys := v["sku"], v["quantity"]
	if len(skus) != len(qtys) {
		f.Errors["lines"] = "Each line needs a product and a quantity."
	}
	seen := map[string]int{}
	for i := range min(len(skus), len(qtys), app.MaxOrderLines+1) {
		l := FormLine{SKU: clip(strings.TrimSpace(skus[i])), Quantity: clip(strings.TrimSpace(qtys[i]))}
		if l.SKU == "" && (l.Quantity == "" || l.Quantity == "0") {
			continue // a line offered and not filled in
		}
		f.Lines = append(f.Lines, l)
		field := fmt.Sprintf("line-%d", len(f.Lines)-1)
		n, err := strconv.Atoi(l.Quantity)
		switch {
		case !app.ValidSKU(l.SKU):
			f.Errors[field] = "Choose a product for this line."
		case l.Quantity == "" || l.Quantity == "0":
			f.Errors[field] = "How many? Enter a quantity, or clear the line."
		case err != nil || n < 1 || n > app.MaxQuantity:
			f.Errors[field] = fmt.Sprintf("The quantity must be a whole number from 1 to %d.", app.MaxQuantity)
		case seen[l.SKU] > 0:
			f.Errors[field] = fmt.Sprintf("This product is already on line %d: change the quantity there.", seen[l.SKU])
		default:
			seen[l.SKU] = len(f.Lines)
			req.Lines = append(req.Lines, app.OrderLine{SKU: l.SKU, Quantity: n})
		}
	}
	switch {
	case len(skus) > app.MaxOrderLines+1 || len(f.Lines) > app.MaxOrderLines:
		f.Errors["lines"] = fmt.Sprintf("An order has at most %d lines.", app.MaxOrderLines)
	case len(f.Lines) == 0 && f.Errors["lines"] == "":
		f.Errors["lines"] = "Add at least one product."
	}
	switch {
	case f.Email == "":
		f.Errors["email"] = "Enter your email address: we send the order's outcome there."
	case !app.ValidEmail(f.Email):
		f.Errors["email"] = "This does not look like an email address (name@example.com)."
	}
	if f.Phone != "" && !app.ValidPhone(f.Phone) {
		f.Errors["phone"] = "Write the number in international form, like +15551234567, or leave it empty."
	}
	if _, err := uuid.Parse(f.FormKey); err != nil || len(f.FormKey) > maxFormKey {
		// The key comes from the form we served; without it a double
		// submit could order twice, so a form without one is served
		// again, with a fresh one.
		f.Errors["form"] = "This form has expired. Please check the details and submit it again."
		f.FormKey = ""
	}
	if len(f.Errors) == 0 {
		req.Customer = &app.Customer{Email: f.Email, Phone: f.Phone}
	}
	return f, req
}

// clip bounds one field as kept for display.
func clip(s string) string {
	if len(s) > maxFieldLen {
		return s[:maxFieldLen]
	}
	return s
}
