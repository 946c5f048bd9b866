package shop

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/spillway/spillway/app"
)

// formLines is how many lines the checkout form offers; a customer fills
// in as many as they need and leaves the rest empty.
const formLines = 4

// maxFormBytes bounds a posted form: far above any real checkout.
const maxFormBytes = 64 << 10

// checkoutPage is the model of /checkout.
type checkoutPage struct {
	page
	Form     CheckoutForm
	Products []productView
	// Notice is a message above the form (the order could not be placed
	// now: nothing was ordered).
	Notice string
}

func (s *Shop) handleCheckoutForm(w http.ResponseWriter, r *http.Request) {
	f := CheckoutForm{FormKey: uuid.NewString(), Errors: map[string]string{}}
	if sku := r.URL.Query().Get("sku"); app.ValidSKU(sku) {
		q := r.URL.Query().Get("quantity")
		if n, err := strconv.Atoi(q); err != nil || n < 1 || n > app.MaxQuantity {
			q = "1"
		}
		f.Lines = []FormLine{{SKU: sku, Quantity: q}}
	}
	s.renderCheckout(w, r, http.StatusOK, f, "")
}

// renderCheckout shows the form, with what was typed and its errors.
func (s *Shop) renderCheckout(w http.ResponseWriter, r *http.Request, status int, f CheckoutForm, notice string) {
	products, err := s.products(r)
	if err != nil {
		s.unavailable(w, r, "show the checkout", err)
		return
	}
	for len(f.Lines) < formLines {
		f.Lines = append(f.Lines, FormLine{})
	}
	s.render(w, r, status, checkoutTemplate(checkoutPage{page: s.frame("Checkout"), Form: f, Products: products, Notice: notice}))
}

// products are the products a form may name, without stock: the form
// must load even when stock cannot be read.
func (s *Shop) products(r *http.Request) ([]productView, error) {
	var ps []app.Product
	var err error
	if s.cfg.Products != nil {
		ps, err = s.cfg.Products.ListProducts(r.Context())
	} else {
		var items []app.CatalogItem
		items, err = s.cfg.Catalog.List(r.Context())
		for _, it := range items {
			ps = append(ps, it.Product)
		}
	}
	if err != nil {
		return nil, err
	}
	var out []productView
	for _, p := range ps {
		if p.Active {
			out = append(out, productView{SKU: p.SKU, Name: p.Name, Price: app.FormatAmount(p.Price, p.Currency)})
		}
	}
	return out, nil
}

// currency is the catalog's: every product of ours is priced in one.
func (s *Shop) currency(r *http.Request) string {
	if s.cfg.Products != nil {
		if ps, err := s.cfg.Products.ListProducts(r.Context()); err == nil && len(ps) > 0 {
			return ps[0].Currency
		}
	}
	return "usd"
}

// handleCheckout places the order. The form's key is the order's
// Idempotency-Key, so a resubmitted form, a double click or the back
// button lands on the same order: 303 to its page, whatever it became.
func (s *Shop) handleCheckout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		f := CheckoutForm{FormKey: uuid.NewString(), Errors: map[string]string{"form": "We could not read this form. Please fill it in again."}}
		s.renderCheckout(w, r, http.StatusBadRequest, f, "")
		return
	}
	f, req := ParseCheckout(r.PostForm, s.currency(r))
	if len(f.Errors) > 0 {
		if f.FormKey == "" {
			f.FormKey = uuid.NewString()
		}
		s.renderCheckout(w, r, http.StatusUnprocessableEntity, f, "")
		return
	}
	out, err := s.cfg.Orders.Submit(r.Context(), app.KindOrder, f.FormKey, req)
	orderURL := "/orders/" + app.OperationID(app.ScopeOrders, f.FormKey).String()
	switch code := app.ErrorCode(err); {
	case err == nil:
		http.Redirect(w, r, "/orders/"+out.Document.ID, http.StatusSeeOther)
	case code == app.EKEYREUSED || code == app.ECONFLICT:
		// The form was sent before, edited since (the back button), or is
		// still being placed (a double click): the order it placed is the
		// one; its page says how it stands.
		http.Redirect(w, r, orderURL, http.StatusSeeOther)
	case code == app.EINVALID:
		// The catalog refused a line (no longer for sale, say).
		f.Errors[checkoutField(err)] = app.ErrorMessage(err)
		s.renderCheckout(w, r, http.StatusUnprocessableEntity, f, "")
	case code == app.EUNAVAILABLE:
		// Nothing was ordered, or (the message says so) it may have been
		// and sending the same form again finds out: the form keeps its
		// key either way.
		s.cfg.Logger.Warn("checkout unavailable", "error", err)
		w.Header().Set("Retry-After", strconv.Itoa(s.cfg.RetryAfterSeconds))
		s.renderCheckout(w, r, http.StatusServiceUnavailable, f, unavailableNotice(err))
	default:
		s.cfg.Logger.Error("checkout", "error", err)
		s.renderCheckout(w, r, http.StatusInternalServerError, f,
			"Something went wrong on our side. Please send the form again: you will not be charged twice.")
	}
}

// checkoutField is the form field an order error is about: lines[2].sku
// is the form's line 2.
func checkoutField(err error) string {
	var e *app.Error
	if errors.As(err, &e) {
		var i int
		if _, serr := fmt.Sscanf(e.Field, "lines[%d]", &i); serr == nil {
			return fmt.Sprintf("line-%d", i)
		}
	}
	return "form"
}

// unavailableNotice is what a 503 says, in the customer's words.
func unavailableNotice(err error) string {
	if strings.Contains(app.ErrorMessage(err), "same Idempotency-Key") {
		return "We could not confirm your order just now. Please send this form again in a moment: " +
			"we will find the order you placed, and you will not be charged twice."
	}
	return "We are not taking new orders for a moment, and nothing was ordered. " +
		"Please send this form again shortly; it keeps your details."
}
