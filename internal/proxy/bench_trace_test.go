package proxy

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/wail-cdc/wail/internal/telemetry"
)

// BenchmarkProxyWriteTracing is BenchmarkProxyWrite with tracing on: no
// write sampled (ratio 0, no traceparent), and every write sampled (spans
// recorded, not exported: the proxy's cost only). Tracing off is
// BenchmarkProxyWrite.
func BenchmarkProxyWriteTracing(b *testing.B) {
	for _, tc := range []struct {
		name    string
		sampler sdktrace.Sampler
	}{
		{"unsampled", sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0))},
		{"sampled", sdktrace.AlwaysSample()},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(tc.sampler))
			defer func() { _ = tp.Shutdown(context.Background()) }()
			benchBatches(b, benchProxy(b).WithTracing(telemetry.NewTracingWith(tp)))
		})
	}
}
