package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wail-cdc/wail/internal/config"
)

// BenchmarkGuard is the per-request cost of the budgets (size cap, read
// deadline, write timer) around a handler that reads a small body and
// writes a small answer, against the bare handler.
func BenchmarkGuard(b *testing.B) {
	cfg := config.Default()
	body := strings.Repeat("x", 200)
	answer := []byte(strings.Repeat("y", 100))
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write(answer)
	})
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"bare", bare}, {"guarded", newGuard(&cfg, newBodyBudget(prometheus.NewRegistry(), cfg.API.MaxRequestBytesInFlight), bare)}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, "/wail.v1.ProducerService/Get", strings.NewReader(body))
				tc.h.ServeHTTP(httptest.NewRecorder(), r)
			}
		})
	}
}
