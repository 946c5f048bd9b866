package provider

import (
	"context"
	"fmt"
	"net/http"

	"github.com/spillway/spillway/app"
)

// Health asks {BaseURL}/health whether the provider is up: nil for a 200,
// an *app.ProviderError otherwise. It is not part of app.PaymentProvider;
// drills' canaries use it, as a zero-effect call to the dependency.
func (p *HTTP) Health(ctx context.Context) error {
	status, body, pe := p.exchange(ctx, http.MethodGet, p.healthURL, "", nil, "health")
	if pe != nil {
		return pe
	}
	if status != http.StatusOK {
		return &app.ProviderError{Kind: statusKind(status), StatusCode: status,
			Err: fmt.Errorf("health answered %d: %s", status, excerpt(body))}
	}
	return nil
}
