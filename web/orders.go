package web

import (
	"log/slog"
	"net/http"

	"github.com/spillway/spillway/app"
)

// handleCreateOrder serves POST /api/v1/orders. Its answers are those of
// payments (201 done, 202 captured with Location, 402 payment declined,
// 409 in flight, 422 bad input or key reuse, 503 nothing acknowledged),
// and an order refused for want of stock answers 422 out-of-stock with the
// operation inside: nothing was charged, and any reservation was released.
func handleCreateOrder(orders Submitter, log *slog.Logger, retryAfter int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, key, err := readKeyedJSON(w, r)
		var req app.OrderRequest
		if err == nil {
			req, err = app.ParseOrderRequest(body)
		}
		if err != nil {
			writeProblem(w, r, problemFor(err, retryAfter))
			return
		}
		out, err := orders.Submit(r.Context(), app.KindOrder, key, req)
		if err != nil {
			p := problemFor(err, retryAfter)
			if p.Status >= 500 {
				log.Error("order not captured", "error", err, "request_id", RequestID(r.Context()))
			}
			writeProblem(w, r, p)
			return
		}
		if d := out.Document; d.Status == app.StatusDeclined && d.Error != nil && d.Error.Code == "out_of_stock" {
			w.Header().Set("Location", "/api/v1/operations/"+d.ID)
			writeProblem(w, r, problem{Type: "out-of-stock", Title: "Out of stock", Status: http.StatusUnprocessableEntity,
				Detail: "a line is out of stock; nothing was charged", Operation: &d})
			return
		}
		writeOutcome(w, r, out, retryAfter)
	}
}
