// Package telemetry holds what wail's components share to be observed:
// the shape of its latency histograms (Prometheus) and the tracing of a
// write from the proxy to its event (OpenTelemetry; trace.go).
//
// The metrics themselves live with the components that count them
// (proxy/metrics.go, resolver/metrics.go, ...); docs/operations.md lists
// every one, checked against the server's registry by a test.
package telemetry
