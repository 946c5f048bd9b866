package app

import (
	"fmt"
	"strings"
)

// TracesConfig is where this process's spans go, read from the standard
// OpenTelemetry environment. Tracing is off when URL is "".
type TracesConfig struct {
	// URL is the OTLP/HTTP traces endpoint: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
	// as given, or OTEL_EXPORTER_OTLP_ENDPOINT with /v1/traces appended,
	// as the OTLP specification has it.
	URL string
	// ServiceName is OTEL_SERVICE_NAME (default spillway).
	ServiceName string
}

// otlpProtocol is the one OTLP protocol built in: the OTLP/HTTP exporter
// speaks protobuf, and gRPC would bring a second stack for no gain here.
const otlpProtocol = "http/protobuf"

// traces reads the OTEL_* variables Spillway honours. Those the exporter
// reads by itself (OTEL_EXPORTER_OTLP_HEADERS, …_TIMEOUT, …_COMPRESSION)
// and the SDK's (OTEL_TRACES_SAMPLER, OTEL_BSP_*, OTEL_RESOURCE_ATTRIBUTES)
// still apply as the specification says.
func (l *loader) traces() TracesConfig {
	c := TracesConfig{ServiceName: l.str("OTEL_SERVICE_NAME", "spillway")}
	// The signal's own variable wins over the general one.
	name := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	if l.str(name, "") == "" {
		name = "OTEL_EXPORTER_OTLP_PROTOCOL"
	}
	if p := l.str(name, otlpProtocol); p != otlpProtocol {
		l.fail(name, fmt.Sprintf("must be %s (the only OTLP protocol built in), not %q", otlpProtocol, p))
	}
	switch e := strings.ToLower(l.str("OTEL_TRACES_EXPORTER", "otlp")); e {
	case "otlp":
	case "none":
		return c
	default:
		l.fail("OTEL_TRACES_EXPORTER", fmt.Sprintf("must be otlp or none, not %q", e))
		return c
	}
	if l.boolean("OTEL_SDK_DISABLED") {
		return c
	}
	if u := l.str("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ""); u != "" {
		if !isHTTPURL(u) {
			l.fail("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "must be an absolute http or https URL")
			return c
		}
		c.URL = u
	} else if u := l.str("OTEL_EXPORTER_OTLP_ENDPOINT", ""); u != "" {
		if !isHTTPURL(u) {
			l.fail("OTEL_EXPORTER_OTLP_ENDPOINT", "must be an absolute http or https URL, e.g. http://127.0.0.1:4318")
			return c
		}
		c.URL = strings.TrimRight(u, "/") + "/v1/traces"
	}
	return c
}
