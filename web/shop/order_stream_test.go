package shop_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/spillway/spillway/app"
	"github.com/spillway/spillway/web/shop"
)

// eventsReader holds one operation and as many recorded events, paged as
// the database pages them (100 at a time).
type eventsReader struct {
	op     *app.Operation
	events int64
}

func (r eventsReader) GetOperation(_ context.Context, id uuid.UUID) (*app.Operation, error) {
	if id != r.op.ID {
		return nil, app.Errorf(app.ENOTFOUND, "no operation")
	}
	return r.op, nil
}

func (r eventsReader) OperationEvents(_ context.Context, _ uuid.UUID, after int64) ([]app.OperationEvent, error) {
	var evs []app.OperationEvent
	for id := after + 1; id <= r.events && len(evs) < 100; id++ {
		evs = append(evs, app.OperationEvent{ID: id, Status: "queued"})
	}
	return evs, nil
}

// An open order's page follows its stream from after the last event it
// shows: the stream's history would otherwise read as changes, and the
// script would reload the page over and over.
func TestTheOrderPageFollowsTheStreamFromItsLastEvent(t *testing.T) {
	t.Parallel()
	now := time.Now()
	op := &app.Operation{ID: uuid.New(), Kind: app.KindOrder, Status: app.StatusProcessing, Mode: app.ModeAsync,
		Steps: app.NewOrderSteps([]app.OrderLine{{SKU: "sku-tea", Quantity: 1}}), CreatedAt: now, UpdatedAt: now}
	for _, tt := range []struct {
		events int64
		want   string
	}{
		{0, `data-stream="/api/v1/operations/` + op.ID.String() + `/events"`},
		{7, `data-stream="/api/v1/operations/` + op.ID.String() + `/events?last_event_id=7"`},
		{250, `data-stream="/api/v1/operations/` + op.ID.String() + `/events?last_event_id=250"`},
	} {
		s, err := shop.New(shop.Config{Operations: eventsReader{op: op, events: tt.events}})
		if err != nil {
			t.Fatal(err)
		}
		r := chi.NewRouter()
		s.Register(r)
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/orders/"+op.ID.String(), nil))
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), tt.want) {
			t.Errorf("%d events: %d, want %s in\n%s", tt.events, rec.Code, tt.want, rec.Body.String())
		}
	}
}
