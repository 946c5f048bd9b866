package shop

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/spillway/spillway/app"
)

// orderPage is the model of /orders/{id}: an order, or a payment (the
// page older emails' /status/{id} links lead to).
type orderPage struct {
	page
	ID, Kind, Status string
	// Headline and Detail say what happened and what comes next.
	Headline, Detail string
	Amount           string
	Description      string
	Lines            []lineView
	Steps            []stepView
	Updated          string
	Terminal         bool
	// Refresh is how often the page reloads itself without JavaScript
	// while the order is open; StreamURL is what the script follows.
	Refresh   int
	StreamURL string
}

type lineView struct {
	Name, Quantity, Total string
}

type stepView struct {
	Name, Words, Status string
}

func (s *Shop) handleOrder(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		s.renderMessage(w, r, http.StatusNotFound, s.frame("Not found"), "We have no order or payment with that reference.")
		return
	}
	// The events are read before the operation, so the page shows at
	// least what the last of them says; the script then follows the
	// stream from after it, rather than from the operation's first state,
	// which would read as a change and reload the page over and over.
	last, err := s.lastEvent(r, id)
	if err != nil {
		s.unavailable(w, r, "look this order up", err)
		return
	}
	op, err := s.cfg.Operations.GetOperation(r.Context(), id)
	if app.ErrorCode(err) == app.ENOTFOUND {
		// A double click can land here while the first submit is still
		// being placed: say so, and look again shortly.
		w.Header().Set("Refresh", "2")
		s.renderMessage(w, r, http.StatusNotFound, s.frame("Not found"),
			"We have no order or payment with that reference (yet). If you have just placed it, this page looks again in a moment.")
		return
	}
	if err != nil {
		s.unavailable(w, r, "look this order up", err)
		return
	}
	m := s.orderModel(r, op)
	if last > 0 {
		m.StreamURL += "?last_event_id=" + strconv.FormatInt(last, 10)
	}
	s.render(w, r, http.StatusOK, orderTemplate(m))
}

// lastEvent is the id of the operation's latest recorded event; 0 when it
// has none (it is as it was created).
func (s *Shop) lastEvent(r *http.Request, id uuid.UUID) (int64, error) {
	var last int64
	for range 1000 { // pages of events; an operation has a handful
		evs, err := s.cfg.Operations.OperationEvents(r.Context(), id, last)
		if err != nil || len(evs) == 0 {
			return last, err
		}
		last = evs[len(evs)-1].ID
	}
	return last, nil
}

// orderModel turns an operation into its page.
func (s *Shop) orderModel(r *http.Request, op *app.Operation) orderPage {
	m := orderPage{
		page: s.frame("Your order"), ID: op.ID.String(), Kind: op.Kind, Status: string(op.Status),
		Amount: app.FormatAmount(op.Payment.Amount, op.Payment.Currency), Description: op.Payment.Description,
		Updated: op.UpdatedAt.UTC().Format(time.RFC1123), Terminal: op.Status.Terminal(),
		StreamURL: "/api/v1/operations/" + op.ID.String() + "/events",
	}
	m.Refresh = RefreshSeconds(m.Distress)
	if op.Kind != app.KindOrder {
		m.Title = "Your payment"
		m.Headline, m.Detail = paymentWords(op)
		return m
	}
	names := s.productNames(r)
	for _, l := range op.Lines {
		m.Lines = append(m.Lines, lineView{Name: nameOf(names, l.SKU), Quantity: fmt.Sprint(l.Quantity),
			Total: app.FormatAmount(l.UnitPrice*int64(l.Quantity), op.Payment.Currency)})
	}
	for _, st := range op.Steps {
		m.Steps = append(m.Steps, stepView{Name: st.Name, Words: stepWords(names, st), Status: stepStatusWords(st)})
	}
	m.Headline, m.Detail = orderWords(op)
	return m
}

func (s *Shop) productNames(r *http.Request) map[string]string {
	names := map[string]string{}
	if s.cfg.Products == nil {
		return names
	}
	if ps, err := s.cfg.Products.ListProducts(r.Context()); err == nil {
		for _, p := range ps {
			names[p.SKU] = p.Name
		}
	}
	return names
}

func nameOf(names map[string]string, sku string) string {
	if n := names[sku]; n != "" {
		return n
	}
	return sku
}

func stepWords(names map[string]string, st app.Step) string {
	typ, detail, _ := strings.Cut(st.Name, ":")
	switch typ {
	case app.StepTypeReserve:
		return "Reserve " + nameOf(names, detail)
	case app.StepCharge:
		return "Take the payment"
	}
	return st.Name
}

func stepStatusWords(st app.Step) string {
	if st.OutcomeUnknown {
		return "confirming"
	}
	switch st.Status {
	case app.StepPending:
		return "waiting"
	case app.StepProcessing:
		return "in progress"
	case app.StepSucceeded:
		return "done"
	case app.StepReleased:
		return "released"
	}
	return string(st.Status)
}

// waitingOn is the dependency an open order waits for: its first step
// not done.
func waitingOn(op *app.Operation) string {
	for _, st := range op.Steps {
		if st.Status != app.StepSucceeded {
			return st.Dependency
		}
	}
	return ""
}

// orderWords says, in plain words, how an order stands and what comes
// next. An order whose outcome we do not know is never said to have
// failed.
func orderWords(op *app.Operation) (headline, detail string) {
	hear := "this page updates by itself"
	if op.Payment.Customer != nil && op.Payment.Customer.Email != "" {
		hear = "we'll email you at " + op.Payment.Customer.Email
	}
	switch op.Status {
	case app.StatusSucceeded:
		return "Thank you: your order is confirmed.", "We have reserved your items and taken the payment of " +
			app.FormatAmount(op.Payment.Amount, op.Payment.Currency) + "."
	case app.StatusDeclined, app.StatusFailed, app.StatusCancelled:
		msg := "Nothing was charged."
		if op.Error != nil && op.Error.Message != "" {
			msg = sentence(op.Error.Message)
		}
		if op.Status == app.StatusCancelled {
			return "Your order was cancelled.", msg
		}
		return "Your order did not go through.", msg
	}
	if op.MayHaveCharged() {
		return "Your order is safe.", "We are confirming with the payment provider whether your payment went through; " +
			"you will not be charged twice, and " + hear + " when we know."
	}
	if op.Mode != app.ModeAsync {
		return "We are placing your order.", "This takes a moment."
	}
	switch waitingOn(op) {
	case app.DepPayment:
		return "Your order is safe.", "Your items are reserved. Payment is slow right now; " + hear +
			" when it goes through. There is nothing more you need to do."
	case app.DepInventory:
		return "Your order is safe.", "Our stock system is slow right now, so we will reserve your items shortly and then " +
			"take the payment; " + hear + " when your order is confirmed. There is nothing more you need to do."
	}
	return "Your order is safe.", "We are finishing it now; " + hear + " when it is done."
}

var paymentStatusWords = map[app.Status]string{
	app.StatusQueued: "Queued, we will finish it shortly", app.StatusProcessing: "Processing",
	app.StatusSucceeded: "Succeeded", app.StatusDeclined: "Declined", app.StatusFailed: "Failed",
	app.StatusCancelled: "Cancelled",
}

// paymentWords says how a payment stands.
func paymentWords(op *app.Operation) (headline, detail string) {
	if op.Status == app.StatusProcessing && op.MayHaveCharged() {
		return "Processing", "We are confirming with the payment provider whether it went through. You will not be charged twice."
	}
	return paymentStatusWords[op.Status], ""
}

// sentence makes an operation's message read as a sentence.
func sentence(s string) string {
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}
