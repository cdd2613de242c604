package server

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
)

// TestRetentionAppliedAtStart: a table's embedded topics kept the
// retention they were created with, so lowering log.retention and
// log.event_retention and restarting (the disk-full runbook) removed
// nothing from existing tables. Now each start gives the existing topics
// the configured retentions, and they are stored (read back from the
// topics' meta files after the server stopped).
func TestRetentionAppliedAtStart(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Log.NoSync, cfg.Store.NoSync = true, true
	stopRun(t, runServer(t, cfg, seams{})) // retention 168h, events and dead letters forever

	cfg.Log.Retention, cfg.Log.EventRetention, cfg.Log.DLQRetention = time.Hour, 2*time.Hour, 3*time.Hour
	stopRun(t, runServer(t, cfg, seams{}))
	for topic, want := range map[string]time.Duration{
		intent.Topic("t"): time.Hour, eventbus.Topic("t"): 2 * time.Hour, dlq.Topic("t"): 3 * time.Hour,
	} {
		b, err := os.ReadFile(filepath.Join(cfg.DataDir, "log", topic, "meta"))
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			RetentionNanos int64 `json:"retention_ns"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if got := time.Duration(m.RetentionNanos); got != want {
			t.Errorf("topic %s keeps records for %s after a start with %s", topic, got, want)
		}
	}
}
