package demo

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/logbuf"
	"github.com/wail-cdc/wail/internal/server/servertest"
)

func TestRunAgainstServer(t *testing.T) {
	t.Parallel()
	url := servertest.Start(t, nil)
	hc := http.DefaultClient
	admin := wailv1connect.NewAdminServiceClient(hc, url)
	if _, err := admin.CreateTable(context.Background(), connect.NewRequest(&wailv1.CreateTableRequest{Name: "orders", Partitions: 4})); err != nil {
		t.Fatal(err)
	}
	var out logbuf.Buffer
	sum, err := Run(context.Background(), Config{
		Producer: wailv1connect.NewProducerServiceClient(hc, url), Admin: admin,
		Events: wailv1connect.NewEventServiceClient(hc, url), Out: &out,
		Duration: 700 * time.Millisecond, Rate: 400, Keys: 50, Tick: 200 * time.Millisecond,
		SampleEvery: 400 * time.Millisecond, Drain: 2 * time.Second, Seed: 1,
	})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	if sum.Writes < 100 || sum.Errors != 0 || sum.Unmatched != 0 {
		t.Errorf("summary %+v", sum)
	}
	// Coalescing may fold several writes into one event, but every write
	// is matched by an event at or above its version.
	if sum.Events == 0 || sum.Events > sum.Writes || sum.Latency.Count != sum.Writes {
		t.Errorf("events %d, matched %d, writes %d", sum.Events, sum.Latency.Count, sum.Writes)
	}
	text := out.String()
	for _, want := range []string{header, `  event {"partition":`, "coalescing", "unmatched   0"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}
