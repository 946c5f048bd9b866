package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/web"
	"github.com/spillway/spillway/web/shop"
)

// fakeReader serves operations from a map: the reads behind the API and
// the status page go through app.OperationReader, so their handlers are
// tested without a database.
type fakeReader struct {
	ops map[uuid.UUID]*app.Operation
	err error // returned by every read when set
}

func (f *fakeReader) GetOperation(_ context.Context, id uuid.UUID) (*app.Operation, error) {
	if f.err != nil {
		return nil, f.err
	}
	if op, ok := f.ops[id]; ok {
		return op, nil
	}
	return nil, app.Errorf(app.ENOTFOUND, "not found")
}

func (f *fakeReader) OperationEvents(context.Context, uuid.UUID, int64) ([]app.OperationEvent, error) {
	return nil, f.err
}

func TestGetOperationThroughReader(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	op := &app.Operation{ID: uuid.New(), Kind: app.KindPayment, Status: app.StatusQueued, Mode: app.ModeAsync,
		Reason: "provider_timeout", Payment: app.PaymentRequest{Amount: 500, Currency: "JPY"}, CreatedAt: at, UpdatedAt: at}
	reader := &fakeReader{ops: map[uuid.UUID]*app.Operation{op.ID: op}}
	failing := &fakeReader{err: errors.New("connection refused")}

	tests := []struct {
		name     string
		reader   app.OperationReader
		path     string
		status   int
		contains string
	}{
		{"found", reader, "/api/v1/operations/" + op.ID.String(), http.StatusOK, `"status":"queued"`},
		{"unknown id", reader, "/api/v1/operations/" + uuid.NewString(), http.StatusNotFound, "no operation has that id"},
		{"not a uuid", reader, "/api/v1/operations/nope", http.StatusNotFound, "no operation has that id"},
		{"database down", failing, "/api/v1/operations/" + op.ID.String(), http.StatusServiceUnavailable, "retry later"},
		{"status page", reader, "/orders/" + op.ID.String(), http.StatusOK, "JPY 500"},
		{"status page, unknown", reader, "/orders/" + uuid.NewString(), http.StatusNotFound, "no order or payment with that reference"},
		{"status page, database down", failing, "/orders/" + op.ID.String(), http.StatusServiceUnavailable, "try again"},
		{"old status link", reader, "/status/" + op.ID.String(), http.StatusMovedPermanently, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			customer, err := shop.New(shop.Config{Operations: tt.reader})
			if err != nil {
				t.Fatal(err)
			}
			h := web.NewServer(web.Config{Operations: tt.reader, Shop: customer})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			body, _ := io.ReadAll(rec.Body)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, body)
			}
			if !strings.Contains(string(body), tt.contains) {
				t.Fatalf("body lacks %q: %s", tt.contains, body)
			}
			if tt.status != http.StatusOK && strings.HasPrefix(tt.path, "/api/") {
				var p struct{ Type, Title string }
				if err := json.Unmarshal(body, &p); err != nil || p.Title == "" {
					t.Fatalf("not a problem document (%v): %s", err, body)
				}
			}
		})
	}
}
