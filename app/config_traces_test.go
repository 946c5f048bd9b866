package app_test

import (
	"strings"
	"testing"

	"github.com/spillway/spillway/app"
)

func TestTracesConfigFromOTELEnvironment(t *testing.T) {
	for _, c := range []struct {
		name    string
		env     map[string]string
		wantURL string
		wantErr string // a variable the error must name
	}{
		{name: "unset is off"},
		{name: "base endpoint gets the signal path", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318/"},
			wantURL: "http://127.0.0.1:4318/v1/traces"},
		{name: "signal endpoint as given", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:1",
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:9/x"}, wantURL: "http://127.0.0.1:9/x"},
		{name: "exporter none is off", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:1", "OTEL_TRACES_EXPORTER": "none"}},
		{name: "sdk disabled is off", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:1", "OTEL_SDK_DISABLED": "true"}},
		{name: "grpc is refused", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
			wantErr: "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{name: "the signal's protocol wins", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
			"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}},
		{name: "bad endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "127.0.0.1:4318"}, wantErr: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "bad exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, wantErr: "OTEL_TRACES_EXPORTER"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := app.LoadConfig(func(k string) string { return c.env[k] })
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Traces.URL != c.wantURL || cfg.Traces.ServiceName != "spillway" {
				t.Errorf("traces = %+v, want URL %q and service spillway", cfg.Traces, c.wantURL)
			}
		})
	}
}
