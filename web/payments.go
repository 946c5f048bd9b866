package web

import (
	"errors"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"strconv"

	"github.com/spillway/spillway/app"
)

// handleCreatePayment serves POST /api/v1/payments.
func handleCreatePayment(runner Submitter, log *slog.Logger, retryAfter int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req, key, err := decodePayment(w, r)
		if err != nil {
			writeProblem(w, r, problemFor(err, retryAfter))
			return
		}
		out, err := runner.Submit(r.Context(), app.KindPayment, key, req)
		if err != nil {
			p := problemFor(err, retryAfter)
			if p.Status >= 500 {
				log.Error("payment not captured", "error", err, "request_id", RequestID(r.Context()))
			}
			writeProblem(w, r, p)
			return
		}
		writeOutcome(w, r, out, retryAfter)
	}
}

// decodePayment checks the headers and reads and validates the body.
func decodePayment(w http.ResponseWriter, r *http.Request) (app.PaymentRequest, string, error) {
	body, key, err := readKeyedJSON(w, r)
	if err != nil {
		return app.PaymentRequest{}, "", err
	}
	req, err := app.ParsePaymentRequest(body)
	return req, key, err
}

// readKeyedJSON checks a create request's headers (a JSON body, an
// Idempotency-Key) and reads its body, capped at MaxBodyBytes.
func readKeyedJSON(w http.ResponseWriter, r *http.Request) ([]byte, string, error) {
	if !isJSON(r.Header.Get("Content-Type")) {
		return nil, "", app.Errorf(app.EUNSUPPORTED, "send the body as application/json")
	}
	key := r.Header.Get("Idempotency-Key")
	if err := app.CheckIdempotencyKey(key); err != nil {
		return nil, "", err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, "", app.Errorf(app.ETOOLARGE, "the request body must be at most %d bytes", MaxBodyBytes)
		}
		return nil, "", &app.Error{Code: app.EBADREQUEST, Message: "the request body could not be read", Err: err}
	}
	return body, key, nil
}

func isJSON(contentType string) bool {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/json" {
		return false
	}
	cs, ok := params["charset"]
	return !ok || cs == "utf-8" || cs == "UTF-8"
}

// statusFor is the HTTP status an operation's document is answered with.
func statusFor(d app.OperationDocument) int {
	switch {
	case d.Status == app.StatusDeclined:
		return http.StatusPaymentRequired
	case d.Status == app.StatusSucceeded && d.Mode == app.ModeSync:
		return http.StatusCreated
	case !d.Status.Terminal():
		return http.StatusAccepted
	}
	return http.StatusOK
}

func writeOutcome(w http.ResponseWriter, r *http.Request, out *app.Outcome, retryAfter int) {
	d := out.Document
	w.Header().Set("Location", "/api/v1/operations/"+d.ID)
	if out.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	status := statusFor(d)
	switch status {
	case http.StatusPaymentRequired:
		// A decline is a business outcome, answered as a problem so
		// clients handle it like other refusals, with the operation inside.
		writeProblem(w, r, problem{Type: "payment-declined", Title: "Payment declined", Status: status,
			Detail: "the provider declined the payment", Operation: &d})
		return
	case http.StatusAccepted:
		if out.RetryAfter > 0 {
			retryAfter = max(1, int(math.Ceil(out.RetryAfter.Seconds())))
		}
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	if out.Body == nil {
		writeJSON(w, status, d)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(out.Body)
	_, _ = w.Write([]byte("\n"))
}
