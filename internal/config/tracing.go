package config

import (
	"fmt"
	"net/url"
)

// Tracing sends a trace of sampled writes, from the proxy to their event,
// to an OpenTelemetry collector (OTLP over HTTP). Off by default: then
// nothing is traced and no intent or event carries a trace context.
type Tracing struct {
	// Enabled turns tracing on.
	Enabled bool `yaml:"enabled"`
	// Endpoint is the collector's OTLP/HTTP traces URL. The standard
	// OTEL_EXPORTER_OTLP_* variables (headers, certificates) apply too.
	Endpoint string `yaml:"endpoint"`
	// SampleRatio is the share of writes traced that come without a
	// trace context (0..1); a write whose W3C traceparent header says
	// sampled is always traced, one that says not sampled never.
	SampleRatio float64 `yaml:"sample_ratio"`
	// ServiceName names this process's spans (service.name).
	ServiceName string `yaml:"service_name"`
}

func defaultTracing() Tracing {
	return Tracing{Endpoint: "http://127.0.0.1:4318/v1/traces", SampleRatio: 0.01, ServiceName: "wail"}
}

func (c *Config) validateTracing() []error {
	t := c.Tracing
	var errs []error
	if t.SampleRatio < 0 || t.SampleRatio > 1 {
		errs = append(errs, fmt.Errorf("tracing.sample_ratio %v out of range 0..1", t.SampleRatio))
	}
	if !t.Enabled {
		return errs
	}
	if u, err := url.Parse(t.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("tracing.endpoint %q is not an http(s) URL (e.g. http://127.0.0.1:4318/v1/traces)", t.Endpoint))
	}
	if t.ServiceName == "" {
		errs = append(errs, fmt.Errorf("tracing.service_name is empty"))
	}
	return errs
}
