package sim_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// reserveBody is what a client sends to reserve quantity of sku.
func reserveBody(sku string, quantity int) string {
	b, _ := json.Marshal(map[string]any{"sku": sku, "quantity": quantity, "reference": "op-1"})
	return string(b)
}

// reserve posts a reservation and fails the test on transport errors.
func reserve(t *testing.T, srv *httptest.Server, key, body string) reply {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json"}
	if key != "" {
		h["Idempotency-Key"] = key
	}
	r, err := do(context.Background(), t, http.MethodPost, srv.URL+"/inventory/reservations", h, body)
	if err != nil {
		t.Fatalf("POST /inventory/reservations: %v", err)
	}
	return r
}

// get sends a GET (or another body-less method) and fails the test on
// transport errors.
func get(t *testing.T, srv *httptest.Server, method, path string) reply {
	t.Helper()
	r, err := do(context.Background(), t, method, srv.URL+path, nil, "")
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

type reservationJSON struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	SKU       string `json:"sku"`
	Quantity  int    `json:"quantity"`
	Reference string `json:"reference"`
	Available int    `json:"available"`
}

// available returns sku's stock or fails the test for an unknown SKU.
func available(t *testing.T, s interface{ Available(string) (int, bool) }, sku string) int {
	t.Helper()
	n, ok := s.Available(sku)
	if !ok {
		t.Fatalf("sku %q unknown", sku)
	}
	return n
}
