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
func (p *HTTP) Health(ctx context.Context) error { return p.health(ctx, p.healthURL) }

// health asks target, a dependency's health URL, whether it is up.
func (p caller) health(ctx context.Context, target string) error {
	status, body, pe := p.exchange(ctx, http.MethodGet, target, "", nil, "health")
	if pe != nil {
		return pe
	}
	if status != http.StatusOK {
		return &app.ProviderError{Kind: statusKind(status), StatusCode: status,
			Err: fmt.Errorf("health answered %d: %s", status, excerpt(body))}
	}
	return nil
}
