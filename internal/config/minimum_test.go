package config

import (
	"strings"
	"testing"
)

// TestIntervalMinimums: a positive interval too small to mean anything
// loaded (catalog_refresh: 1ns made the catalog reload in a loop that kept
// a core busy and hammered the store; log.retention: 1ns removed every
// intent at the next check). Each is refused at load with its key, its
// value and its minimum; the minimum itself, and 0s where 0s means "off"
// or "forever", load.
func TestIntervalMinimums(t *testing.T) {
	t.Parallel()
	tests := []struct {
		yaml    string
		wantErr string // "" loads
	}{
		{"catalog_refresh: 1ns\n", "catalog_refresh 1ns is below its minimum of 10ms"},
		{"catalog_refresh: 10ms\n", ""},
		{"catalog_refresh: 0s\n", "catalog_refresh 0s is below its minimum of 10ms"},
		{"resolver:\n  commit_interval: 1ns\n", "resolver.commit_interval 1ns is below its minimum of 1ms"},
		{"resolver:\n  commit_interval: 1ms\n", ""},
		{"resolver:\n  backoff_min: 1ns\n", "resolver.backoff_min 1ns is below its minimum of 100µs"},
		{"resolver:\n  backoff_min: 100us\n", ""},
		{"resolver:\n  retry_backoff_min: 1ns\n", "resolver.retry_backoff_min 1ns is below its minimum of 1ms"},
		{"resolver:\n  retry_backoff_min: 1ms\n", ""},
		{"sinks:\n  refresh: 1ns\n", "sinks.refresh 1ns is below its minimum of 10ms"},
		{"sinks:\n  refresh: 10ms\n", ""},
		{"log:\n  retention: 1ns\n", "log.retention 1ns is below its minimum of 1m0s (0s keeps them forever)"},
		{"log:\n  retention: 59s\n  event_retention: 0s\n", "log.retention 59s is below its minimum of 1m0s"},
		{"log:\n  retention: 1m\n", ""},
		{"log:\n  retention: 0s\n", ""},
		{"log:\n  retention: 1ns\n  event_retention: 1ns\n", "log.event_retention 1ns is below its minimum of 1m0s"},
		{"log:\n  retention: 1m\n  event_retention: 1m\n", ""},
		{"log:\n  dlq_retention: 1ns\n", "log.dlq_retention 1ns is below its minimum of 1m0s"},
		{"log:\n  dlq_retention: 1m\n", ""},
		{"log:\n  kafka:\n    retention_check: 1ms\n", "log.kafka.retention_check 1ms is below its minimum of 1s"},
		{"log:\n  kafka:\n    retention_check: 0s\n", ""},
		{"log:\n  kafka:\n    retention_check: 1s\n", ""},
		{"security:\n  auth:\n    enabled: true\n    jwt:\n      jwks_file: k.json\n      refresh: 1ns\n", "security.auth.jwt.refresh 1ns is below its minimum of 10ms"},
		{"security:\n  auth:\n    enabled: true\n    jwt:\n      jwks_file: k.json\n      refetch_interval: 1ns\n", "security.auth.jwt.refetch_interval 1ns is below its minimum of 10ms"},
		{"security:\n  auth:\n    enabled: true\n    jwt:\n      jwks_file: k.json\n      refresh: 10ms\n      refetch_interval: 10ms\n", ""},
	}
	for _, tc := range tests {
		_, err := Load(write(t, tc.yaml))
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tc.yaml, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%q: got %v, want an error with %q", tc.yaml, err, tc.wantErr)
		}
	}
}
