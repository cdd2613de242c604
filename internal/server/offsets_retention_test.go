package server

import (
	"strings"
	"testing"
	"time"
)

// TestOffsetsRetentionProblem: the brokers' offsets.retention.minutes is
// reported when it is shorter than three api.group_commit_refresh.
func TestOffsetsRetentionProblem(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		retention, refresh time.Duration
		want               bool
	}{
		{7 * 24 * time.Hour, time.Hour, false}, // Kafka's default, wail's default
		{3 * time.Hour, time.Hour, false},
		{2 * time.Hour, time.Hour, true},
		{24 * time.Hour, 12 * time.Hour, true},
	} {
		got := offsetsRetentionProblem(tc.retention, tc.refresh)
		if (got != "") != tc.want || (got != "" && !strings.Contains(got, "offsets.retention.minutes")) {
			t.Errorf("retention %s, refresh %s: %q, want a problem: %v", tc.retention, tc.refresh, got, tc.want)
		}
	}
}
